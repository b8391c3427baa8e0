"""Resource facts IAM conditions need, read from the local cloud's backends (moto and Client VPN).

Everything answers "unknown" (None, or the ARN IAM would use for a resource that does not exist)
rather than raising: a lookup that fails leaves the condition key out, as for a missing resource.
"""

from __future__ import annotations

from typing import Any

from localcloud.iam_resources import Call

__all__ = ["MotoLookups"]


class MotoLookups:
    """:class:`localcloud.iam_resources.Lookups` on the backends of this process's moto."""

    def resource_tags(self, call: Call, arn: str) -> dict[str, str] | None:
        try:
            service = arn.split(":")[2]
            if service == "ec2":
                return self._ec2_tags(call, arn)
            if service == "dynamodb":
                return self._dynamodb_tags(call, arn)
        except Exception:
            return None
        return None

    @staticmethod
    def _ec2_tags(call: Call, arn: str) -> dict[str, str] | None:
        resource_id = arn.rsplit("/", 1)[-1]
        if resource_id == "*":
            return None
        if resource_id.startswith("cvpn-endpoint-"):
            from localcloud.clientvpn.models import clientvpn_backends

            backend = clientvpn_backends[call.account_id][call.region]
            endpoint = backend.endpoints.get(resource_id)
            return dict(endpoint.tags) if endpoint is not None else None
        from moto.ec2.models import ec2_backends

        tags = ec2_backends[call.account_id][call.region].tags.get(resource_id)
        return dict(tags) if tags else None

    @staticmethod
    def _dynamodb_tags(call: Call, arn: str) -> dict[str, str] | None:
        from moto.dynamodb.models import dynamodb_backends

        table_arn = arn.split("/index/", 1)[0]
        tags = dynamodb_backends[call.account_id][call.region].list_tags_of_resource(table_arn)
        return {tag["Key"]: tag["Value"] for tag in tags} or None

    def secret_arn(self, call: Call, secret_id: str) -> str:
        if secret_id.startswith("arn:"):
            return secret_id
        try:
            from moto.secretsmanager.models import secretsmanager_backends

            secrets = secretsmanager_backends[call.account_id][call.region].secrets
            if secret_id in secrets:
                return str(secrets[secret_id].arn)
        except Exception:
            pass
        # A secret that does not exist yet (CreateSecret) gets its random six-character suffix on
        # creation; IAM sees the ARN it will have, which a "-??????" pattern matches.
        return f"arn:aws:secretsmanager:{call.region}:{call.account_id}:secret:{secret_id}-AbCdEf"

    def kms_key_arn(self, call: Call, key_id: str) -> str | None:
        try:
            from moto.kms.models import kms_backends

            backend = kms_backends[call.account_id][call.region]
            return str(backend.describe_key(backend.any_id_to_key_id(key_id)).arn)
        except Exception:
            return None

    def topic_kms_key(self, call: Call, topic_arn: str) -> str | None:
        try:
            from moto.sns.models import sns_backends

            topic: Any = sns_backends[call.account_id][call.region].get_topic(topic_arn)
        except Exception:
            return None
        key_id = str(getattr(topic, "kms_master_key_id", "") or "")
        if not key_id:
            return None
        return self.kms_key_arn(call, key_id)

    def table_partition_key(self, call: Call, table_name: str) -> str | None:
        try:
            from moto.dynamodb.models import dynamodb_backends

            name = table_name.rsplit("/", 1)[-1]
            table = dynamodb_backends[call.account_id][call.region].get_table(name)
            return str(table.hash_key_attr)
        except Exception:
            return None

"""Data access for client certificates: AWS Private CA, its published CRL in S3, the certificate
records in the grants table, the endpoint's configuration and revocation list, the encrypted bucket."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.access.certificates.records import CertificateRecord, certificate_key, normal_serial
from cvpn_shared.core.aws_errors import error_code

__all__ = [
    "ClientVpnCertificateEndpoints",
    "DynamoDbCertificateRecords",
    "PrivateCaAuthority",
]

CLIENT_TEMPLATE = "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1"
_ISSUE_WAIT_SECONDS = 20.0


class PrivateCaAuthority:
    """AWS Private CA: issuance, revocation, and the CRL it writes to its S3 bucket."""

    def __init__(self, pca_client: Any, s3_client: Any) -> None:
        self._pca = pca_client
        self._s3 = s3_client

    def issue(self, ca_arn: str, csr_pem: str, not_after: datetime) -> str:
        answer = self._pca.issue_certificate(
            CertificateAuthorityArn=ca_arn,
            Csr=csr_pem.encode(),
            SigningAlgorithm=self._signing_algorithm(ca_arn),
            TemplateArn=CLIENT_TEMPLATE,
            Validity={"Type": "END_DATE", "Value": int(not_after.strftime("%Y%m%d%H%M%S"))},
        )
        return str(answer["CertificateArn"])

    def _signing_algorithm(self, ca_arn: str) -> str:
        described = self._pca.describe_certificate_authority(CertificateAuthorityArn=ca_arn)
        configuration = described["CertificateAuthority"]["CertificateAuthorityConfiguration"]
        return str(configuration.get("SigningAlgorithm") or "SHA256WITHRSA")

    def certificate(self, ca_arn: str, certificate_arn: str) -> str:
        """The issued certificate (PEM); Private CA answers RequestInProgressException for a moment."""
        deadline = time.monotonic() + _ISSUE_WAIT_SECONDS
        while True:
            try:
                answer = self._pca.get_certificate(
                    CertificateAuthorityArn=ca_arn, CertificateArn=certificate_arn
                )
                return str(answer["Certificate"])
            except ClientError as error:
                if error_code(error) != "RequestInProgressException" or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def revoke(self, ca_arn: str, serial: str, reason: str) -> None:
        digits = normal_serial(serial)
        digits = "0" * (len(digits) % 2) + digits
        try:
            self._pca.revoke_certificate(
                CertificateAuthorityArn=ca_arn,
                CertificateSerial=":".join(digits[i : i + 2] for i in range(0, len(digits), 2)),
                RevocationReason=reason,
            )
        except ClientError as error:
            if error_code(error) != "RequestAlreadyProcessedException":
                raise

    def revocation_list_pem(self, ca_arn: str) -> str | None:
        """The CRL Private CA last wrote (``crl/<CA id>.crl``, DER) as PEM; None without one."""
        described = self._pca.describe_certificate_authority(CertificateAuthorityArn=ca_arn)
        configuration = (described["CertificateAuthority"].get("RevocationConfiguration") or {}).get(
            "CrlConfiguration"
        ) or {}
        bucket = configuration.get("S3BucketName")
        if not configuration.get("Enabled") or not bucket:
            return None
        path = str(configuration.get("CustomPath") or "crl").strip("/")
        key = f"{path}/{ca_arn.rsplit('/', 1)[-1]}.crl"
        try:
            der = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        body = base64.encodebytes(der).decode().replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN X509 CRL-----\n" + "\n".join(lines) + "\n-----END X509 CRL-----\n"


class DynamoDbCertificateRecords:
    """Certificate records in the grants table (``pk = cert#<serial>``, the record as JSON)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name

    def put(self, record: CertificateRecord) -> None:
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": certificate_key(record.serial)},
                "certificate": {"S": record.model_dump_json()},
                "cert_state": {"S": record.state},
            },
        )

    def get(self, serial: str) -> CertificateRecord | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"pk": {"S": certificate_key(serial)}}, ConsistentRead=True
        ).get("Item")
        return CertificateRecord.model_validate_json(item["certificate"]["S"]) if item else None

    def every(self) -> list[CertificateRecord]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :cert)",
            "ExpressionAttributeValues": {":cert": {"S": "cert#"}},
            "ConsistentRead": True,
        }
        found: list[CertificateRecord] = []
        while True:
            page = self._dynamodb.scan(**params)
            found.extend(
                CertificateRecord.model_validate_json(item["certificate"]["S"]) for item in page["Items"]
            )
            if "LastEvaluatedKey" not in page:
                return found
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class ClientVpnCertificateEndpoints:
    """The endpoint's exported configuration and revocation list, and its sessions."""

    def __init__(self, ec2_client: Any, sessions: Any) -> None:
        self._ec2 = ec2_client
        self._sessions = sessions

    def client_configuration(self, endpoint_id: str) -> str:
        answer = self._ec2.export_client_vpn_client_configuration(ClientVpnEndpointId=endpoint_id)
        return str(answer["ClientConfiguration"])

    def revocation_list(self, endpoint_id: str) -> str | None:
        answer = self._ec2.export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id
        )
        return str(answer.get("CertificateRevocationList") or "") or None

    def import_revocation_list(self, endpoint_id: str, crl_pem: str) -> None:
        self._ec2.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, CertificateRevocationList=crl_pem
        )

    def terminate(self, endpoint_id: str, vpn_user: str) -> int:
        return int(self._sessions.terminate(endpoint_id, vpn_user))

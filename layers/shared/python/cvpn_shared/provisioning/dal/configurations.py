"""Data access to the client-configuration bucket (S3): encrypted writes and presigned links."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code

__all__ = ["ConfigurationStore", "configuration_key"]


def configuration_key(request_id: str, endpoint_id: str) -> str:
    """Where the client configuration of ``endpoint_id`` (provisioned by ``request_id``) is stored."""
    return f"client-configurations/{request_id}/{endpoint_id}.ovpn"


class ConfigurationStore:
    """Client configurations in one bucket, encrypted with KMS, shared through presigned URLs."""

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def put(self, key: str, body: str, metadata: dict[str, str]) -> None:
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body.encode(),
            ContentType="application/x-openvpn-profile",
            ServerSideEncryption="aws:kms",
            Metadata=metadata,
        )

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored (an export that failed left nothing to link to)."""
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def presigned_url(self, key: str, ttl_seconds: int, filename: str) -> str:
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=ttl_seconds,
            )
        )

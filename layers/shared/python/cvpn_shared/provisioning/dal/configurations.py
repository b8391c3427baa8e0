"""Data access to the client-configuration bucket (S3): encrypted writes and presigned links."""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigurationStore"]


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

"""The links to client configurations are presigned with Signature Version 4.

S3 refuses Signature Version 2 for objects encrypted with KMS, as the configurations are, and the local
cloud counts a link's lifetime from its SigV4 signing time; botocore presigns S3 URLs with SigV2 unless
the client says otherwise.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from cvpn_shared.core.aws_clients import client
from cvpn_shared.provisioning.dal.configurations import ConfigurationStore


def test_configuration_links_are_signature_version_4_with_their_lifetime() -> None:
    url = ConfigurationStore(client("s3"), "configs-bucket").presigned_url(
        "configs/REQ-1.ovpn", 900, filename="REQ-1.ovpn"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert "/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert "Signature" not in query and "AWSAccessKeyId" not in query


def test_other_clients_keep_their_own_signature_version() -> None:
    assert client("dynamodb").meta.config.signature_version != "s3v4"

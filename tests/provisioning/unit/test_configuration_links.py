"""The links to client configurations are presigned with Signature Version 4.

S3 refuses Signature Version 2 for objects encrypted with KMS, as the configurations are, and the local
cloud counts a link's lifetime from its SigV4 signing time; botocore presigns S3 URLs with SigV2 unless
the client says otherwise.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from cvpn.provision import configuration_link, find_configuration
from cvpn_shared.core.aws_clients import client
from cvpn_shared.provisioning.dal.configurations import ConfigurationStore
from cvpn_shared.provisioning.outcome import fail_state_error


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


def test_cvpn_makes_a_link_to_where_the_output_says_the_configuration_is() -> None:
    """The workflow's output names the object; `cvpn status` signs a link to it with the caller's
    credentials, wherever the result sits in the output (provisioning or intake)."""
    output = {
        "provisioning": {"output": {"result": {"client_configuration": {"bucket": "b", "key": "c/R/e.ovpn"}}}}
    }
    link = configuration_link(client("s3"), output, ttl_seconds=600)
    assert link is not None
    url, key = link
    assert key == "c/R/e.ovpn"
    parts = urlsplit(url)
    assert parts.path.endswith("/c/R/e.ovpn") and "b" in (
        parts.netloc.split(".")[0],
        parts.path.split("/")[1],
    )
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["600"] and query["X-Amz-Signature"]
    assert query["response-content-disposition"] == ['attachment; filename="e.ovpn"']


def test_no_link_without_a_stored_configuration() -> None:
    assert find_configuration({"result": {"client_configuration": {"key": ""}}}) is None
    assert configuration_link(client("s3"), [1, "x", {"a": None}]) is None


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        ("AssociationFailed", "subnet-1", {"error": "AssociationFailed", "cause": "subnet-1"}),
        ("States.Timeout", "", {"error": "ProvisioningFailed", "cause": "States.Timeout: "}),
        ("", "x", {"error": "ProvisioningFailed", "cause": "Unknown: x"}),
    ],
)
def test_the_workflow_fails_with_a_name_step_functions_accepts(
    error: str, cause: str, expected: dict[str, str]
) -> None:
    """A Fail state refuses names that begin with States. (the execution would end States.Runtime)."""
    assert fail_state_error(error, cause) == expected

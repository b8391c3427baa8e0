"""The network `cvpn local up` builds has the ids the documents in events/ name: the local cloud honours a
``_custom_id_`` tag on the create calls of VPCs, subnets, security groups, directories and imported
certificates, and refuses one it cannot honour."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud import custom_ids
from localcloud.sample_network import EXAMPLE_IDS, build_sample_network
from tests.fixtures import REPO_ROOT

EVENTS = REPO_ROOT / "events"


@pytest.fixture
def clients(aws: None) -> Any:
    custom_ids.install()
    return lambda service: boto3.client(service, region_name="us-east-1")


def _ids_named_in(document: dict[str, Any]) -> set[str]:
    """Every network id a request (or a source's defaults) names."""
    names = {document["vpc_id"], *document["subnet_ids"], document["server_certificate_arn"]}
    names.update(document.get("security_group_ids") or [])
    for method in document.get("authentication") or []:
        names.update(value for key, value in method.items() if key != "type")
    return names


def test_every_id_the_examples_name_exists_in_the_example_network(clients: Any) -> None:
    """Given the example network built with EXAMPLE_IDS, every VPC, subnet, security group,
    certificate, directory and SAML provider the example requests and webhook sources name is there."""
    network = build_sample_network(clients, ids=EXAMPLE_IDS)
    built = {
        network.vpc_id,
        *network.subnet_ids,
        network.security_group_id,
        network.directory_id,
        network.server_certificate_arn,
        network.client_root_certificate_arn,
        network.saml_provider_arn,
    }
    documents = [json.loads(path.read_text()) for path in sorted((EVENTS / "requests").glob("*.json"))]
    sources = [
        json.loads(path.read_text()) for path in sorted((EVENTS / "webhooks" / "sources").glob("*.json"))
    ]
    # A grants source names no network: its tickets ask for access to a profile's shared endpoint.
    documents += [source["defaults"] for source in sources if source.get("kind") != "grants"]
    assert len(documents) >= 7
    for document in documents:
        assert _ids_named_in(document) <= built, document.get("request_id")
    ec2 = clients("ec2")
    subnets = ec2.describe_subnets(SubnetIds=list(EXAMPLE_IDS.subnet_ids))["Subnets"]
    assert {s["VpcId"] for s in subnets} == {EXAMPLE_IDS.vpc_id}
    assert len({s["AvailabilityZone"] for s in subnets}) == 3
    assert clients("ds").describe_directories(DirectoryIds=[EXAMPLE_IDS.directory_id])[
        "DirectoryDescriptions"
    ]
    assert clients("acm").describe_certificate(CertificateArn=network.server_certificate_arn)["Certificate"]


def test_without_the_tag_ids_stay_random(clients: Any) -> None:
    first = build_sample_network(clients, name="one")
    second = build_sample_network(clients, name="two", vpc_cidr="10.1.0.0/16")
    assert first.vpc_id != second.vpc_id and first.vpc_id != EXAMPLE_IDS.vpc_id
    assert first.directory_id != EXAMPLE_IDS.directory_id
    # The directory's own security group did not take the chosen id of another call.
    assert first.security_group_id != second.security_group_id


def test_an_id_taken_or_malformed_is_refused_not_replaced(clients: Any) -> None:
    ec2 = clients("ec2")

    def create_vpc(custom_id: str) -> str:
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": "_custom_id_", "Value": custom_id}]}]
        return str(ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"])

    assert create_vpc("vpc-00000000000000001") == "vpc-00000000000000001"
    with pytest.raises(ClientError) as taken:
        create_vpc("vpc-00000000000000001")
    assert taken.value.response["Error"]["Code"] == "InvalidVpcID.Duplicate"
    with pytest.raises(ClientError) as malformed:
        create_vpc("subnet-0123")
    assert malformed.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "is not a vpc id" in malformed.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "tags,expected",
    [
        ({"_custom_id_": "vpc-1"}, "vpc-1"),
        ([{"Key": "Name", "Value": "x"}, {"Key": "_custom_id_", "Value": "sg-2"}], "sg-2"),
        ({"subnet": {"Name": "x", "_custom_id_": "subnet-3"}}, "subnet-3"),
        ([{"ResourceType": "vpc", "Tags": [{"Key": "_custom_id_", "Value": "vpc-4"}]}], "vpc-4"),
        ({"Name": "x"}, None),
        (None, None),
    ],
)
def test_the_tag_is_found_in_every_shape_moto_passes_tags(tags: Any, expected: str | None) -> None:
    assert custom_ids.custom_id_in(tags) == expected

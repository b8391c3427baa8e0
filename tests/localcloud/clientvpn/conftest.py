"""Fixtures for the Client VPN emulator tests: moto in-process, a frozen emulated clock, a network."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from moto import mock_aws

from localcloud.clientvpn import install
from localcloud.clientvpn.models import ClientVpnBackend, clientvpn_backends
from localcloud.clock import Clock, get_clock, set_clock
from localcloud.faults import FaultInjector, reset_api_call_counts, set_fault_injector
from tests.localcloud.clientvpn.support import (
    ACCOUNT_ID,
    REGION,
    CertificateMaterial,
    Network,
    endpoint_request,
)

SAML_METADATA = (
    '<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
    'entityID="https://idp.example.com"><md:IDPSSODescriptor '
    'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>'
    # CreateSAMLProvider wants at least 1,000 characters of metadata.
    + "<!--"
    + "x" * 800
    + "-->"
)


@pytest.fixture(scope="session")
def server_certificate() -> CertificateMaterial:
    """A self-signed CA-style certificate, generated once per test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server.vpn.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CertificateMaterial(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture
def frozen_clock() -> Iterator[Clock]:
    """An emulated clock that (practically) stands still unless the test advances it."""
    previous = get_clock()
    clock = set_clock(Clock(time_scale=1e-9))
    yield clock
    set_clock(previous)


@pytest.fixture
def fault_injector() -> Iterator[FaultInjector]:
    """A fresh, seeded fault injector and zeroed API call counters for one test."""
    from localcloud.faults import get_fault_injector

    previous = get_fault_injector()
    injector = set_fault_injector(FaultInjector(seed=7))
    reset_api_call_counts()
    yield injector
    set_fault_injector(previous)


@pytest.fixture(scope="session")
def aws_clients() -> dict[str, Any]:
    """boto3 clients built once (building a client costs ~0.1 s); moto intercepts them when active."""
    session = boto3.session.Session(region_name=REGION)
    return {name: session.client(name) for name in ("ec2", "acm", "logs", "ds", "iam", "lambda")}


@pytest.fixture
def aws(
    frozen_clock: Clock, fault_injector: FaultInjector, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """moto in-process with the Client VPN operations installed."""
    # Loading moto's ~2,600 default AMIs costs 0.3 s per EC2 backend; these tests need none.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    install()
    with mock_aws():
        yield


@pytest.fixture
def ec2(aws: None, aws_clients: dict[str, Any]) -> Any:
    return aws_clients["ec2"]


@pytest.fixture
def backend(aws: None) -> ClientVpnBackend:
    return clientvpn_backends[ACCOUNT_ID][REGION]


@pytest.fixture
def network(ec2: Any, aws_clients: dict[str, Any], server_certificate: CertificateMaterial) -> Network:
    """A VPC with subnets in 3 AZs, a security group, an ACM certificate, logs, AD and SAML."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for index, zone in enumerate("abc", start=1)
    ]
    group_id = ec2.create_security_group(GroupName="vpn", Description="vpn clients", VpcId=vpc_id)["GroupId"]
    default_group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    other_subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGION}d")[
        "Subnet"
    ]["SubnetId"]
    certificate_arn = aws_clients["acm"].import_certificate(
        Certificate=server_certificate.certificate_pem, PrivateKey=server_certificate.private_key_pem
    )["CertificateArn"]
    aws_clients["logs"].create_log_group(logGroupName="/clientvpn/connections")
    directory_id = aws_clients["ds"].create_directory(
        Name="corp.example.com",
        Password="Passw0rd!Secret",
        Size="Small",
        VpcSettings={"VpcId": vpc_id, "SubnetIds": subnet_ids[:2]},
    )["DirectoryId"]
    saml_arn = aws_clients["iam"].create_saml_provider(SAMLMetadataDocument=SAML_METADATA, Name="corp-idp")[
        "SAMLProviderArn"
    ]
    return Network(
        vpc_id=vpc_id,
        vpc_cidr="10.0.0.0/16",
        subnet_ids=subnet_ids,
        security_group_id=group_id,
        default_security_group_id=default_group,
        certificate_arn=certificate_arn,
        log_group="/clientvpn/connections",
        directory_id=directory_id,
        saml_provider_arn=saml_arn,
        other_vpc_id=other_vpc,
        other_subnet_id=other_subnet,
    )


@pytest.fixture
def create_endpoint(ec2: Any, network: Network) -> Callable[..., str]:
    """Create an endpoint from ``endpoint_request`` and return its id."""

    def create(**overrides: Any) -> str:
        response = ec2.create_client_vpn_endpoint(**endpoint_request(network, **overrides))
        return str(response["ClientVpnEndpointId"])

    return create

"""A realistic network to put a Client VPN endpoint in, built through the AWS APIs.

Used by the demo and the tests: a VPC with subnets in three Availability Zones, a security group, an
AWS Managed Microsoft AD directory, a server certificate (and a client root CA for mutual TLS)
generated with ``cryptography`` and imported into ACM, a SAML provider and a connection log group.
Everything goes through boto3, so the same code would build it on AWS.

``EXAMPLE_IDS`` are the ids the documents in ``events/`` name. ``build_sample_network(ids=EXAMPLE_IDS)``
asks for them with a ``_custom_id_`` tag on each create call, which the local cloud honours
(:mod:`localcloud.custom_ids`); that is what `cvpn local up` builds, so the examples provision as written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "EXAMPLE_IDS",
    "CertificateBundle",
    "NetworkIds",
    "SampleNetwork",
    "build_sample_network",
    "issue_certificates",
]

CUSTOM_ID_TAG = "_custom_id_"  # localcloud.custom_ids honours it

SAML_METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
      Location="https://idp.example.com/sso"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
      Location="https://idp.example.com/sso/post"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
      Location="https://idp.example.com/slo"/>
  </md:IDPSSODescriptor>
  <md:Organization>
    <md:OrganizationName xml:lang="en">Example Corp identity provider (local cloud)</md:OrganizationName>
    <md:OrganizationDisplayName xml:lang="en">Example Corp</md:OrganizationDisplayName>
    <md:OrganizationURL xml:lang="en">https://idp.example.com/</md:OrganizationURL>
  </md:Organization>
</md:EntityDescriptor>"""


@dataclass(frozen=True)
class CertificateBundle:
    """PEM texts of a CA and of a certificate it signed."""

    ca_pem: str
    certificate_pem: str
    private_key_pem: str


@dataclass(frozen=True)
class NetworkIds:
    """Ids to create the network's resources with (certificates: the id after ``certificate/``)."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str
    directory_id: str
    server_certificate_id: str
    client_root_certificate_id: str


# The ids the example requests and webhook sources of events/ name.
EXAMPLE_IDS = NetworkIds(
    vpc_id="vpc-0a1b2c3d4e5f60718",
    subnet_ids=("subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"),
    security_group_id="sg-0a1b2c3d4e5f60718",
    directory_id="d-0613d679c7",
    server_certificate_id="0d36a9e8-e764-4cd4-886d-5aef5f4cd28f",
    client_root_certificate_id="1dbe33e6-812c-4f15-8f1d-94ea1df4618e",
)


def _tags(name: str | None, custom_id: str | None) -> list[dict[str, str]]:
    tags = [{"Key": "Name", "Value": name}] if name else []
    if custom_id:
        tags.append({"Key": CUSTOM_ID_TAG, "Value": custom_id})
    return tags


@dataclass
class SampleNetwork:
    """Ids and ARNs of what ``build_sample_network`` created."""

    region: str
    vpc_id: str
    vpc_cidr: str
    subnet_ids: list[str]
    availability_zones: list[str]
    security_group_id: str
    directory_id: str
    server_certificate_arn: str
    client_root_certificate_arn: str
    saml_provider_arn: str
    log_group_name: str
    extra: dict[str, Any] = field(default_factory=dict)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Client VPN Autopilot (local)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue_certificates(
    server_name: str = "server.vpn.example.internal", *, ip_addresses: Sequence[str] = ()
) -> tuple[CertificateBundle, str]:
    """A CA and a server certificate it signed (ACM wants the server one with its chain), for
    ``server_name`` and any ``ip_addresses`` (a server on 127.0.0.1, say).

    Returns the bundle and the CA's private key PEM (to sign client certificates for mutual TLS).
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Client VPN Autopilot Local CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_name))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(server_name), *(x509.IPAddress(ip_address(a)) for a in ip_addresses)]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    bundle = CertificateBundle(
        ca_pem=ca_cert.public_bytes(pem).decode(),
        certificate_pem=server_cert.public_bytes(pem).decode(),
        private_key_pem=server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
    ca_key_pem = ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return bundle, ca_key_pem.decode()


def build_sample_network(
    client_factory: Any,
    *,
    region: str = "us-east-1",
    vpc_cidr: str = "10.0.0.0/16",
    zones: int = 3,
    log_group_name: str = "/cvpn-autopilot/connections",
    name: str = "cvpn-demo",
    ids: NetworkIds | None = None,
) -> SampleNetwork:
    """Create the network through boto3 clients from ``client_factory(service)``, with ``ids`` when
    given (one subnet id per zone)."""
    if ids is not None and len(ids.subnet_ids) < zones:
        raise ValueError(f"ids.subnet_ids: {zones} zones need {zones} subnet ids, got {len(ids.subnet_ids)}")
    ec2 = client_factory("ec2")
    azs = [
        zone["ZoneName"]
        for zone in ec2.describe_availability_zones()["AvailabilityZones"]
        if zone.get("State", "available") == "available"
    ][:zones]
    if len(azs) < zones:
        raise ValueError(f"zones: the region {region} has only {len(azs)} Availability Zones")
    vpc_id = ec2.create_vpc(
        CidrBlock=vpc_cidr,
        TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(name, ids.vpc_id if ids else None)}],
    )["Vpc"]["VpcId"]
    base = vpc_cidr.split("/")[0].split(".")
    subnet_ids = []
    for index, zone in enumerate(azs):
        cidr = f"{base[0]}.{base[1]}.{index + 1}.0/24"
        subnet = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=zone,
            TagSpecifications=[
                {
                    "ResourceType": "subnet",
                    "Tags": _tags(f"{name}-private-{zone}", ids.subnet_ids[index] if ids else None),
                }
            ],
        )
        subnet_ids.append(subnet["Subnet"]["SubnetId"])
    group_tags = _tags(f"{name}-clientvpn", ids.security_group_id if ids else None)
    security_group_id = ec2.create_security_group(
        GroupName=f"{name}-clientvpn",
        Description="Client VPN endpoint",
        VpcId=vpc_id,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": group_tags}],
    )["GroupId"]

    ds = client_factory("ds")
    directory_id = ds.create_microsoft_ad(
        Name="corp.example.com",
        ShortName="CORP",
        Password="Local-Demo-Passw0rd!",
        Description="Corporate directory (local cloud)",
        VpcSettings={"VpcId": vpc_id, "SubnetIds": subnet_ids[:2]},
        Edition="Standard",
        **({"Tags": _tags(None, ids.directory_id)} if ids else {}),
    )["DirectoryId"]

    bundle, _ca_key = issue_certificates()
    acm = client_factory("acm")
    server_certificate_arn = acm.import_certificate(
        Certificate=bundle.certificate_pem.encode(),
        PrivateKey=bundle.private_key_pem.encode(),
        CertificateChain=bundle.ca_pem.encode(),
        Tags=_tags(f"{name}-server", ids.server_certificate_id if ids else None),
    )["CertificateArn"]
    client_bundle, _ = issue_certificates(server_name="clients.vpn.example.internal")
    client_root_certificate_arn = acm.import_certificate(
        Certificate=client_bundle.certificate_pem.encode(),
        PrivateKey=client_bundle.private_key_pem.encode(),
        CertificateChain=client_bundle.ca_pem.encode(),
        Tags=_tags(f"{name}-client-root", ids.client_root_certificate_id if ids else None),
    )["CertificateArn"]

    saml_provider_arn = client_factory("iam").create_saml_provider(
        SAMLMetadataDocument=SAML_METADATA, Name=f"{name}-idp"
    )["SAMLProviderArn"]

    logs = client_factory("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=log_group_name)
    logs.put_retention_policy(logGroupName=log_group_name, retentionInDays=90)

    return SampleNetwork(
        region=region,
        vpc_id=vpc_id,
        vpc_cidr=vpc_cidr,
        subnet_ids=subnet_ids,
        availability_zones=azs,
        security_group_id=security_group_id,
        directory_id=directory_id,
        server_certificate_arn=server_certificate_arn,
        client_root_certificate_arn=client_root_certificate_arn,
        saml_provider_arn=saml_provider_arn,
        log_group_name=log_group_name,
    )

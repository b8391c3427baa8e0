"""The local cloud's AWS Private CA: validity on the emulated clock, revocation, published CRLs, and
the connection simulator judging client certificates against the endpoint's root and CRL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from localcloud import acmpca, moto_clock
from localcloud.clientvpn.connections import (
    MUTUAL_TLS_AUTHENTICATION_FAILED,
    authentication_failure_count,
    simulate_connect,
)
from localcloud.clock import Clock, get_clock, set_clock
from tests.localcloud.connections.support import CERTIFICATE, REGION, FakeEndpoint, read_records

BUCKET = "crl-bucket"
ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"


@pytest.fixture
def clock() -> Iterator[Clock]:
    previous = get_clock()
    frozen = set_clock(Clock(time_scale=1e-9, start=float(int(time.time()) // 60 * 60)))
    moto_clock.install()
    acmpca.install()
    yield frozen
    acmpca.uninstall()
    moto_clock.uninstall()
    set_clock(previous)


@pytest.fixture
def pca(clock: Clock) -> Iterator[tuple[object, str]]:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/clientvpn/connections")
        client = boto3.client("acm-pca", region_name=REGION)
        arn = client.create_certificate_authority(
            CertificateAuthorityConfiguration={
                "KeyAlgorithm": "RSA_2048",
                "SigningAlgorithm": "SHA256WITHRSA",
                "Subject": {"CommonName": "vpn clients"},
            },
            RevocationConfiguration={
                "CrlConfiguration": {"Enabled": True, "ExpirationInDays": 2, "S3BucketName": BUCKET}
            },
            CertificateAuthorityType="ROOT",
        )["CertificateAuthorityArn"]
        csr = client.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        root = client.issue_certificate(
            CertificateAuthorityArn=arn,
            Csr=csr.encode(),
            SigningAlgorithm="SHA256WITHRSA",
            TemplateArn=ROOT_TEMPLATE,
            Validity={"Type": "YEARS", "Value": 10},
        )["CertificateArn"]
        body = client.get_certificate(CertificateAuthorityArn=arn, CertificateArn=root)["Certificate"]
        client.import_certificate_authority_certificate(
            CertificateAuthorityArn=arn, Certificate=body.encode()
        )
        yield client, arn


def _issue(client: object, arn: str, name: str, days: int = 1) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    certificate_arn = client.issue_certificate(  # type: ignore[attr-defined]
        CertificateAuthorityArn=arn,
        Csr=csr,
        SigningAlgorithm="SHA256WITHRSA",
        TemplateArn="arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1",
        Validity={"Type": "DAYS", "Value": days},
    )["CertificateArn"]
    answer = client.get_certificate(CertificateAuthorityArn=arn, CertificateArn=certificate_arn)  # type: ignore[attr-defined]
    return answer["Certificate"], answer["CertificateChain"]


def _crl() -> x509.CertificateRevocationList:
    body = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)["Contents"][0]["Key"]
    data = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=body)["Body"].read()
    return x509.load_der_x509_crl(data)


def test_issued_certificate_lasts_the_requested_days_from_the_emulated_now(
    pca: tuple[object, str], clock: Clock
) -> None:
    client, arn = pca
    clock.advance(86400 * 30)
    certificate = x509.load_pem_x509_certificate(_issue(client, arn, "alice", days=3)[0].encode())
    assert certificate.not_valid_before_utc == clock.now().replace(microsecond=0)
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == timedelta(days=3)


def test_short_lived_ca_refuses_more_than_seven_days(clock: Clock) -> None:
    with mock_aws():
        client = boto3.client("acm-pca", region_name=REGION)
        arn = client.create_certificate_authority(
            CertificateAuthorityConfiguration={
                "KeyAlgorithm": "RSA_2048",
                "SigningAlgorithm": "SHA256WITHRSA",
                "Subject": {"CommonName": "short"},
            },
            CertificateAuthorityType="ROOT",
            UsageMode="SHORT_LIVED_CERTIFICATE",
        )["CertificateAuthorityArn"]
        csr = client.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        root = client.issue_certificate(
            CertificateAuthorityArn=arn,
            Csr=csr.encode(),
            SigningAlgorithm="SHA256WITHRSA",
            TemplateArn=ROOT_TEMPLATE,
            Validity={"Type": "YEARS", "Value": 1},
        )["CertificateArn"]
        body = client.get_certificate(CertificateAuthorityArn=arn, CertificateArn=root)["Certificate"]
        client.import_certificate_authority_certificate(
            CertificateAuthorityArn=arn, Certificate=body.encode()
        )
        _issue(client, arn, "ok", days=7)
        with pytest.raises(ClientError, match="at most 7 days"):
            _issue(client, arn, "too-long", days=8)


def test_revocation_publishes_a_signed_crl_and_refuses_twice(pca: tuple[object, str]) -> None:
    client, arn = pca
    kept, _ = _issue(client, arn, "bob")
    revoked, _ = _issue(client, arn, "alice")
    serial = x509.load_pem_x509_certificate(revoked.encode()).serial_number
    client.revoke_certificate(  # type: ignore[attr-defined]
        CertificateAuthorityArn=arn, CertificateSerial=f"{serial:x}", RevocationReason="PRIVILEGE_WITHDRAWN"
    )
    crl = _crl()
    ca_pem = client.get_certificate_authority_certificate(CertificateAuthorityArn=arn)["Certificate"]  # type: ignore[attr-defined]
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(ca_pem.encode()).public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert (
        crl.get_revoked_certificate_by_serial_number(
            x509.load_pem_x509_certificate(kept.encode()).serial_number
        )
        is None
    )
    with pytest.raises(ClientError, match="RequestAlreadyProcessed"):
        client.revoke_certificate(  # type: ignore[attr-defined]
            CertificateAuthorityArn=arn, CertificateSerial=f"{serial:x}", RevocationReason="SUPERSEDED"
        )
    with pytest.raises(ClientError, match="ResourceNotFound"):
        client.revoke_certificate(  # type: ignore[attr-defined]
            CertificateAuthorityArn=arn, CertificateSerial="abcdef", RevocationReason="SUPERSEDED"
        )


def test_crl_is_refreshed_when_read_past_half_its_validity(pca: tuple[object, str], clock: Clock) -> None:
    client, arn = pca
    revoked, _ = _issue(client, arn, "alice", days=30)
    serial = x509.load_pem_x509_certificate(revoked.encode()).serial_number
    client.revoke_certificate(  # type: ignore[attr-defined]
        CertificateAuthorityArn=arn, CertificateSerial=f"{serial:x}", RevocationReason="UNSPECIFIED"
    )
    first = _crl()
    clock.advance(86400 * 0.4)
    assert _crl().next_update_utc == first.next_update_utc
    clock.advance(86400 * 0.7)
    later = _crl()
    assert later.next_update_utc > first.next_update_utc
    assert later.get_revoked_certificate_by_serial_number(serial) is not None


def test_simulated_client_connects_only_with_a_valid_unrevoked_certificate(
    pca: tuple[object, str], clock: Clock
) -> None:
    client, arn = pca
    good, chain = _issue(client, arn, "alice")
    endpoint = FakeEndpoint(
        authentication_options=[
            {**CERTIFICATE, "MutualAuthentication": {"ClientRootCertificateChain": _import_root(chain)}}
        ]
    )
    endpoint.certificate_revocation_list = None  # type: ignore[attr-defined]
    accepted = simulate_connect(endpoint, client_certificate=good)
    assert accepted.connected and accepted.record is not None
    assert accepted.record["common-name"] == "alice"

    stranger = _self_signed("alice")
    refused = simulate_connect(endpoint, client_certificate=stranger)
    assert not refused.connected and refused.failure_reason == MUTUAL_TLS_AUTHENTICATION_FAILED
    assert "does not chain" in refused.detail

    serial = x509.load_pem_x509_certificate(good.encode()).serial_number
    client.revoke_certificate(  # type: ignore[attr-defined]
        CertificateAuthorityArn=arn, CertificateSerial=f"{serial:x}", RevocationReason="PRIVILEGE_WITHDRAWN"
    )
    endpoint.certificate_revocation_list = _crl().public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[attr-defined]
    again = simulate_connect(endpoint, client_certificate=good)
    assert not again.connected and "revoked" in again.detail
    assert authentication_failure_count(endpoint) == 2
    assert [record["common-name"] for record in read_records()] == ["alice"]

    clock.advance(86400 * 2)
    fresh, _ = _issue(client, arn, "carol")
    clock.advance(86400 * 1.5)
    assert "valid" in simulate_connect(endpoint, client_certificate=fresh).detail


def _import_root(chain: str) -> str:
    """The CA certificate into ACM, as the client root chain (a key of its own: ACM wants one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca = x509.load_pem_x509_certificate(chain.encode())
    return boto3.client("acm", region_name=REGION).import_certificate(
        Certificate=ca.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )["CertificateArn"]


def _self_signed(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = get_clock().now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "vpn clients")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )

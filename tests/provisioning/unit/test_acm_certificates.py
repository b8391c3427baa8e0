"""The ACM data access of the server certificate check, against moto's ACM: names, dates, the CA chain,
and the listing of every key type (ListCertificates lists only RSA_1024/2048 unless told)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from cvpn_shared.provisioning.dal.acm_certificates import AcmCertificates, CertificateNotFound

NOW = dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _import(acm: Any, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], domain: str, days: int) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(domain))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(ca[0], hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return str(
        acm.import_certificate(
            Certificate=certificate.public_bytes(pem),
            PrivateKey=key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            CertificateChain=ca[1].public_bytes(pem),
        )["CertificateArn"]
    )


@pytest.fixture
def acm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("acm", region_name="us-east-1")


def test_describe_reads_names_dates_type_and_the_ca_chain(acm: Any) -> None:
    one, two = _ca("CA one"), _ca("CA two")
    first = _import(acm, one, "vpn.example.com", 10)
    same_ca = _import(acm, one, "vpn.example.com", 400)
    other_ca = _import(acm, two, "vpn.example.com", 400)
    certificates = AcmCertificates(acm)
    facts = certificates.describe(first)
    assert (facts.domain_name, facts.type, facts.status) == ("vpn.example.com", "IMPORTED", "ISSUED")
    assert "vpn.example.com" in facts.names and not facts.managed_by_acm
    assert facts.not_after is not None and abs(
        facts.not_after - (NOW + dt.timedelta(days=10))
    ) < dt.timedelta(seconds=2)
    assert facts.chain and facts.chain == certificates.describe(same_ca).chain
    assert facts.chain != certificates.describe(other_ca).chain


def test_issued_for_lists_every_key_type_of_that_domain_only(acm: Any) -> None:
    ca = _ca("CA")
    wanted = {_import(acm, ca, "vpn.example.com", 100), _import(acm, ca, "VPN.example.com", 200)}
    _import(acm, ca, "other.example.com", 100)
    assert set(AcmCertificates(acm).issued_for("vpn.example.com")) == wanted  # EC keys, not only RSA


def test_an_unknown_certificate_is_not_found(acm: Any) -> None:
    with pytest.raises(CertificateNotFound, match="does not exist in ACM"):
        AcmCertificates(acm).describe(
            "arn:aws:acm:us-east-1:123456789012:certificate/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
        )

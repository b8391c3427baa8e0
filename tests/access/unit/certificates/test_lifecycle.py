"""The pure parts of the certificate lifecycle: the personal profile, serials, statuses, and when a
revocation list is imported (fakes for Private CA and the endpoint)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cvpn_shared.access.certificates.lifecycle import ClientCertificates, new_key_pair, personal_profile
from cvpn_shared.access.certificates.records import CertificateRecord, normal_serial

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BASE = "client\ndev tun\nremote cvpn-endpoint-1.prod.clientvpn.us-east-1.amazonaws.com 443\n<ca>\nCA\n</ca>\n"


def test_the_key_pair_matches_its_csr_which_names_the_user() -> None:
    keys = new_key_pair("alice@example.com")
    csr = x509.load_pem_x509_csr(keys.csr_pem.encode())
    key = serialization.load_pem_private_key(keys.private_key_pem.encode(), password=None)
    assert csr.is_signature_valid and csr.public_key() == key.public_key()
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alice@example.com"


def test_the_personal_profile_replaces_any_cert_and_key_the_export_carried() -> None:
    exported = BASE + "<cert>\nOLD CERT\n</cert>\n<key>\nOLD KEY\n</key>\nreneg-sec 0\n"
    text = personal_profile(exported, "CERT-PEM\n", "KEY-PEM")
    assert "OLD" not in text and text.count("<cert>") == 1 and text.count("<key>") == 1
    assert text.endswith("<cert>\nCERT-PEM\n</cert>\n<key>\nKEY-PEM\n</key>\n")
    assert "reneg-sec 0" in text and "<ca>\nCA\n</ca>" in text


@pytest.mark.parametrize(
    ("given", "serial"), [("5F:3A:00:01", "5f3a0001"), ("0a1b", "a1b"), ("  ABCDEF ", "abcdef")]
)
def test_serials_are_keyed_as_lower_case_hex(given: str, serial: str) -> None:
    assert normal_serial(given) == serial


@pytest.mark.parametrize("given", ["", "xyz", "12-34"])
def test_a_serial_that_is_not_hex_is_refused_by_name(given: str) -> None:
    with pytest.raises(ValueError, match="is not hexadecimal"):
        normal_serial(given)


def _record(**changes: object) -> CertificateRecord:
    fields: dict[str, object] = {
        "serial": "a1",
        "person_key": "https://issuer#00u1",
        "vpn_user": "alice",
        "grant_id": "g-" + "0" * 32,
        "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
        "certificate_authority_arn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x",
        "certificate_arn": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x/certificate/y",
        "issued_at": NOW,
        "not_after": NOW + timedelta(days=3),
    }
    fields.update(changes)
    return CertificateRecord.model_validate(fields)


def test_status_is_issued_expiring_expired_or_revoked() -> None:
    assert _record().status_at(NOW) == "issued"
    assert _record().status_at(NOW + timedelta(days=2, hours=1)) == "expiring"
    assert _record().status_at(NOW + timedelta(days=3)) == "expired"
    assert _record(state="revoked").status_at(NOW) == "revoked"


class _Authority:
    def __init__(self, crl: str | None) -> None:
        self.crl = crl

    def revocation_list_pem(self, ca_arn: str) -> str | None:
        return self.crl


class _Endpoints:
    def __init__(self, imported: str | None) -> None:
        self.imported = imported
        self.imports = 0

    def revocation_list(self, endpoint_id: str) -> str | None:
        return self.imported

    def import_revocation_list(self, endpoint_id: str, crl_pem: str) -> None:
        self.imported, self.imports = crl_pem, self.imports + 1


def _certificates(authority: _Authority, endpoints: _Endpoints) -> ClientCertificates:
    return ClientCertificates(
        authority=authority,  # type: ignore[arg-type]
        records=None,  # type: ignore[arg-type]
        endpoints=endpoints,  # type: ignore[arg-type]
        deliveries=None,  # type: ignore[arg-type]
        ca_of_profile=lambda name: None,
        clock=lambda: NOW,
    )


def test_a_revocation_list_is_imported_only_when_the_ca_published_another() -> None:
    same = "-----BEGIN X509 CRL-----\nAAAA\nBBBB\n-----END X509 CRL-----\n"
    endpoints = _Endpoints("-----BEGIN X509 CRL-----\nAAAABBBB\n-----END X509 CRL-----")
    assert _certificates(_Authority(same), endpoints).refresh_revocation_list("e", "ca") is False
    assert endpoints.imports == 0
    newer = same.replace("BBBB", "CCCC")
    assert _certificates(_Authority(newer), endpoints).refresh_revocation_list("e", "ca") is True
    assert endpoints.imported == newer and endpoints.imports == 1
    assert _certificates(_Authority(None), endpoints).refresh_revocation_list("e", "ca") is False

"""Data access to AWS Certificate Manager: the server certificates of managed endpoints.

Reads only public material: DescribeCertificate (dates, names, status, type), GetCertificate (the
certificate and its chain, to tell whether two certificates chain to the same CA) and
ListCertificates (the candidates a renewed certificate is chosen from). No private key is read.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.provisioning.models.certificate_facts import CertificateFacts

__all__ = ["ALL_KEY_TYPES", "AcmCertificates", "CertificateNotFound", "chain_fingerprints"]

# ListCertificates returns only RSA_1024 and RSA_2048 certificates unless told every key type.
ALL_KEY_TYPES = [
    "RSA_1024",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "EC_prime256v1",
    "EC_secp384r1",
    "EC_secp521r1",
]
_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)


class CertificateNotFound(Exception):
    """ACM knows no certificate with this ARN (deleted, or in another account or Region)."""


def chain_fingerprints(chain_pem: str) -> frozenset[str]:
    """SHA-256 of each certificate in a PEM chain: the CAs a certificate chains to, in any order."""
    prints = set()
    for match in _PEM_BLOCK.finditer(chain_pem or ""):
        try:
            der = base64.b64decode("".join(match.group("body").split()), validate=True)
        except ValueError:
            continue
        prints.add(hashlib.sha256(der).hexdigest())
    return frozenset(prints)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


class AcmCertificates:
    """DescribeCertificate, GetCertificate and ListCertificates in one Region."""

    def __init__(self, acm_client: Any) -> None:
        self._acm = acm_client

    def describe(self, arn: str, *, with_chain: bool = True) -> CertificateFacts:
        """What ACM says about ``arn``; ``chain`` holds the fingerprints of its CA certificates."""
        try:
            certificate = self._acm.describe_certificate(CertificateArn=arn)["Certificate"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CertificateNotFound(f"{arn} does not exist in ACM") from None
            raise
        chain: frozenset[str] = frozenset()
        if with_chain:
            # An expired certificate's chain still says which CA users trust; a certificate ACM will
            # not hand out (pending, failed) has none to compare.
            try:
                chain = self.chain(arn)
            except ClientError:
                chain = frozenset()
        return CertificateFacts(
            arn=arn,
            domain_name=str(certificate.get("DomainName") or ""),
            subject_alternative_names=list(certificate.get("SubjectAlternativeNames") or []),
            status=str(certificate.get("Status") or ""),
            type=str(certificate.get("Type") or ""),
            not_before=_moment(certificate.get("NotBefore")),
            not_after=_moment(certificate.get("NotAfter")),
            issuer=str(certificate.get("Issuer") or ""),
            imported_at=_moment(certificate.get("ImportedAt")),
            renewal_status=str((certificate.get("RenewalSummary") or {}).get("RenewalStatus") or ""),
            chain=chain,
        )

    def chain(self, arn: str) -> frozenset[str]:
        """The fingerprints of the CA certificates ``arn`` chains to (GetCertificate's chain)."""
        try:
            answer = self._acm.get_certificate(CertificateArn=arn)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CertificateNotFound(f"{arn} does not exist in ACM") from None
            raise
        return chain_fingerprints(str(answer.get("CertificateChain") or ""))

    def issued_for(self, domain_name: str) -> list[str]:
        """The ARNs of the ISSUED certificates whose domain name is ``domain_name`` (every key type)."""
        arns: list[str] = []
        token: str | None = None
        while True:
            page = self._acm.list_certificates(
                CertificateStatuses=["ISSUED"],
                Includes={"keyTypes": ALL_KEY_TYPES},
                **({"NextToken": token} if token else {}),
            )
            arns.extend(
                str(summary["CertificateArn"])
                for summary in page.get("CertificateSummaryList", [])
                if str(summary.get("DomainName", "")).lower() == domain_name.lower()
            )
            token = page.get("NextToken")
            if not token:
                return arns

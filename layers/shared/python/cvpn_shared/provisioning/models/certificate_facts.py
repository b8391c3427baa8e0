"""What ACM says about a server certificate, as the rotation check uses it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CertificateFacts"]


class CertificateFacts(BaseModel):
    """One ACM certificate: its names, dates, status and the CA certificates it chains to."""

    model_config = ConfigDict(frozen=True)

    arn: str
    domain_name: str = ""
    subject_alternative_names: list[str] = []
    status: str = Field(default="", description="ISSUED, EXPIRED, INACTIVE, REVOKED, ...")
    type: str = Field(default="", description="IMPORTED, AMAZON_ISSUED or PRIVATE")
    not_before: datetime | None = None
    not_after: datetime | None = None
    issuer: str = ""
    imported_at: datetime | None = None
    renewal_status: str = Field(default="", description="RenewalSummary.RenewalStatus (ACM-managed only)")
    chain: frozenset[str] = Field(
        default=frozenset(), description="SHA-256 of each CA certificate of GetCertificate's chain"
    )

    @property
    def names(self) -> frozenset[str]:
        """Every name the certificate is for, lower case."""
        return frozenset(name.lower() for name in [self.domain_name, *self.subject_alternative_names] if name)

    @property
    def managed_by_acm(self) -> bool:
        """ACM renews it itself and keeps the ARN (AMAZON_ISSUED, or PRIVATE from AWS Private CA)."""
        return self.type in ("AMAZON_ISSUED", "PRIVATE")

"""What the product remembers of a client certificate it issued (never its private key).

Stored in the grants table as ``pk = "cert#<serial>"`` (serial: lower-case hex, no colons), with
attributes of its own names so that the grants' indexes (person_key, user_key, endpoint_id,
created_at) never see it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

__all__ = ["EXPIRING_WITHIN", "CertificateRecord", "CertificateState", "certificate_key", "normal_serial"]

CertificateState = Literal["issued", "revoked"]
EXPIRING_WITHIN = timedelta(hours=24)
"""``cvpn cert list`` calls an issued certificate ``expiring`` when it ends within this."""

Serial = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{1,40}$")]


def normal_serial(text: str) -> str:
    """A serial as the product keys it: lower-case hex without colons or leading zeros; ValueError
    naming the value when it is not hexadecimal."""
    digits = str(text).replace(":", "").strip().lower()
    try:
        return format(int(digits, 16), "x")
    except ValueError:
        raise ValueError(f"serial {text!r} is not hexadecimal (e.g. 5f:3a:... or 5f3a...)") from None


def certificate_key(serial: str) -> str:
    return f"cert#{normal_serial(serial)}"


class CertificateRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: Serial
    person_key: str
    vpn_user: str
    grant_id: str
    endpoint_id: str
    certificate_authority_arn: str
    certificate_arn: str
    issued_at: AwareDatetime
    not_after: AwareDatetime
    state: CertificateState = "issued"
    revoked_at: AwareDatetime | None = None
    revocation_reason: str | None = None

    def status_at(self, moment: datetime) -> str:
        """issued, expiring (within ``EXPIRING_WITHIN``), expired or revoked."""
        if self.state == "revoked":
            return "revoked"
        if self.not_after <= moment:
            return "expired"
        if self.not_after - moment <= EXPIRING_WITHIN:
            return "expiring"
        return "issued"

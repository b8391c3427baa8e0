"""Server certificates of managed endpoints: which expire soon, which renewed certificate replaces
them, and the rotation through the update workflow.

The daily check reads, for each managed endpoint (a SUCCEEDED request with its desired state), the
server certificate its document names in ACM. One that expires within the threshold (or has expired)
raises an alarm, and then:

* ACM-managed certificates (``AMAZON_ISSUED``, ``PRIVATE``): ACM renews them in place and keeps the
  ARN, so there is nothing to apply; the alarm says so, with ACM's renewal status.
* Imported certificates: the renewed certificate is the ACM certificate, in the same account and
  Region, that is ``ISSUED``, already valid, covers every name the current one covers (domain name
  and subject alternative names), expires later than the current one and not within the threshold
  itself. Of several, the one that expires last wins (then the one imported last, then the ARN).
  When the document allows it (``server_certificate_rotation.automatic``) the check makes the
  renewed ARN the desired state and starts the update workflow (ModifyClientVpnEndpoint
  ServerCertificateArn, recorded as a revision); a renewed certificate that chains to another
  certificate authority only with ``allow_new_certificate_authority``.

Whether users need a new configuration: the configuration AWS exports holds the server certificate's
CA chain (``<ca>``), so users keep theirs when the renewed certificate chains to the same CA
certificates (GetCertificate's chain, compared certificate by certificate), and must download a new one
otherwise. Either way AWS resets the connections when the server certificate changes, and says a
change to an endpoint can take up to 4 hours to take effect.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from cvpn_shared.core.notifications import Notifier
from cvpn_shared.provisioning.dal.acm_certificates import CertificateNotFound
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.drift import ManagedEndpoint, managed_endpoints
from cvpn_shared.provisioning.models.certificate_facts import CertificateFacts
from cvpn_shared.provisioning.models.request import ProvisionRequest

__all__ = [
    "APPLIED_BY",
    "CERTIFICATE_DETAIL_TYPE",
    "CertificateReport",
    "check_certificate",
    "choose_replacement",
    "days_left",
    "expiry_status",
    "needs_new_configuration",
    "rotation_execution_name",
    "run_server_certificate_check",
]

CERTIFICATE_DETAIL_TYPE = "Client VPN Server Certificate Expiring"
APPLIED_BY = "server-certificate-rotation"
_DAY = 86400.0

Status = Literal["valid", "expiring", "expired", "missing", "unreadable"]
Action = Literal[
    "none",
    "alarm-only",  # the document does not allow an automatic rotation
    "awaiting-acm-renewal",  # ACM renews the certificate in place
    "no-renewed-certificate",  # nothing in ACM qualifies yet
    "renewed-certificate-found",  # found, but this document may not apply it by itself
    "rotation-due",  # allowed, and left to the scheduled check (a read-only look)
    "rotation-started",
]


class CertificateApi(Protocol):
    def describe(self, arn: str, *, with_chain: bool = True) -> CertificateFacts: ...

    def issued_for(self, domain_name: str) -> list[str]: ...


class UpdateStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]: ...


class EventPublisher(Protocol):
    def publish(
        self, detail: dict[str, Any], resources: list[str] | None = None, *, detail_type: str = ...
    ) -> str: ...


# ------------------------------------------------------------------------------------ decisions
def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days from ``now`` until ``not_after`` (negative once it has passed)."""
    seconds = (not_after - now).total_seconds()
    return int(seconds // _DAY)


def expiry_status(certificate: CertificateFacts, now: datetime, threshold_days: int) -> Status:
    """``expired`` when past NotAfter (or ACM says EXPIRED), ``expiring`` within ``threshold_days``."""
    if certificate.not_after is None:
        return "expired" if certificate.status == "EXPIRED" else "valid"
    if certificate.status == "EXPIRED" or certificate.not_after <= now:
        return "expired"
    if certificate.not_after - now <= timedelta(days=threshold_days):
        return "expiring"
    return "valid"


def choose_replacement(
    current: CertificateFacts,
    candidates: list[CertificateFacts],
    now: datetime,
    threshold_days: int,
) -> CertificateFacts | None:
    """The renewed certificate for ``current`` among ``candidates`` (the module's rule), or None."""
    if current.not_after is None:
        return None
    eligible = [
        candidate
        for candidate in candidates
        if candidate.arn != current.arn
        and candidate.status == "ISSUED"
        and candidate.not_after is not None
        and candidate.not_after > current.not_after
        and candidate.not_after - now > timedelta(days=threshold_days)
        and (candidate.not_before is None or candidate.not_before <= now)
        and current.names <= candidate.names
    ]
    if not eligible:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(
        eligible,
        key=lambda candidate: (candidate.not_after or epoch, candidate.imported_at or epoch, candidate.arn),
    )


def needs_new_configuration(current: CertificateFacts, replacement: CertificateFacts) -> bool:
    """Users need a new configuration unless both certificates chain to the same CA certificates."""
    return not (current.chain and current.chain == replacement.chain)


def users_message(new_configuration: bool) -> str:
    if new_configuration:
        return (
            "Every user must download a new client configuration once the renewed certificate is in "
            "place: it chains to another certificate authority, and the configuration users hold "
            "(its <ca> block) trusts only the current one."
        )
    return (
        "Users keep their client configuration: the renewed certificate chains to the same certificate "
        "authority. Connected users are disconnected once when it is applied and reconnect."
    )


def rotation_execution_name(request_id: str, revision: int, certificate_arn: str) -> str:
    """The update execution of a rotation: one per request, revision and renewed certificate, so a
    check that runs again follows the same execution instead of starting another."""
    digest = hashlib.sha256(certificate_arn.encode()).hexdigest()[:10]
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", request_id)[:52]
    return f"rotate-{cleaned}-r{revision}-{digest}"


# ------------------------------------------------------------------------------------ reports
class CertificateReport(BaseModel):
    """What the check found for one endpoint's server certificate, and what it did."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    endpoint_id: str
    revision: int
    certificate_arn: str = ""
    status: Status
    action: Action = "none"
    not_after: datetime | None = None
    days_left: int | None = None
    threshold_days: int
    certificate_type: str = ""
    renewal_status: str = ""
    replacement_arn: str = ""
    replacement_not_after: datetime | None = None
    new_configuration_needed: bool | None = None
    execution_arn: str = ""
    execution_is_new: bool = False
    error: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.status in ("expiring", "expired", "missing")

    def subject(self) -> str:
        if self.status == "missing":
            return f"Client VPN server certificate of {self.endpoint_id} is missing from ACM"
        if self.status == "expired":
            return f"Client VPN server certificate of {self.endpoint_id} has expired"
        return f"Client VPN server certificate of {self.endpoint_id} expires in {self.days_left} day(s)"

    def remedy(self) -> str:
        if self.action == "rotation-started" and not self.execution_is_new:
            return (
                f"an earlier check started the update that applies {self.replacement_arn} as revision "
                f"{self.revision + 1} and it has not made it the desired state: `cvpn history "
                f"{self.request_id}` shows why; fix it and `cvpn apply` the document with that ARN"
            )
        if self.action == "rotation-started":
            return (
                f"the update workflow applies {self.replacement_arn} as revision {self.revision + 1} "
                f"(`cvpn history {self.request_id}` follows it)"
            )
        if self.action == "rotation-due":
            return f"the daily check applies {self.replacement_arn} with the update workflow"
        if self.action == "awaiting-acm-renewal":
            return (
                "ACM renews this certificate itself and keeps its ARN; if the renewal does not complete "
                f"(status {self.renewal_status or 'unknown'}), check its validation in the ACM console"
            )
        if self.replacement_arn:
            return (
                f"set server_certificate_arn to {self.replacement_arn} in the document of "
                f"{self.request_id} and run `cvpn apply` (or allow it in server_certificate_rotation)"
            )
        return (
            "import the renewed certificate into ACM (same Region, every name the current one covers, a "
            "later expiry); the next check applies it when server_certificate_rotation.automatic is "
            f"true, or set its ARN in the document of {self.request_id} and run `cvpn apply`"
        )

    def event_detail(self, checked_at: str) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "request_id": self.request_id,
            "endpoint_id": self.endpoint_id,
            "revision": self.revision,
            "checked_at": checked_at,
            "certificate_arn": self.certificate_arn,
            "certificate_type": self.certificate_type,
            "status": self.status,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "days_left": self.days_left,
            "threshold_days": self.threshold_days,
            "action": self.action,
            "remedy": self.remedy(),
        }
        if self.error:
            detail["error"] = self.error
        if self.replacement_arn:
            detail["replacement_arn"] = self.replacement_arn
            detail["replacement_not_after"] = (
                self.replacement_not_after.isoformat() if self.replacement_not_after else None
            )
            detail["new_configuration_needed"] = self.new_configuration_needed
            detail["users"] = users_message(bool(self.new_configuration_needed))
        if self.execution_arn:
            detail["execution_arn"] = self.execution_arn
            detail["execution_is_new"] = self.execution_is_new
        return detail


def check_certificate(
    acm: CertificateApi,
    updates: UpdateStarter | None,
    managed: ManagedEndpoint,
    *,
    threshold_days: int,
    now: datetime,
) -> CertificateReport:
    """Check one endpoint's server certificate; rotate it when the document allows it (reports
    ``rotation-due`` instead without ``updates``: a look that changes nothing)."""
    common: dict[str, Any] = {
        "request_id": managed.request_id,
        "endpoint_id": managed.endpoint_id,
        "revision": managed.revision,
        "threshold_days": threshold_days,
    }
    try:
        desired = ProvisionRequest.model_validate(managed.request)
    except ValidationError as error:
        return CertificateReport(
            **common,
            status="unreadable",
            error=f"the recorded document of {managed.request_id} is not a valid request: "
            f"{error.error_count()} error(s), first {error.errors()[0]['msg']}",
        )
    common["certificate_arn"] = desired.server_certificate_arn
    try:
        current = acm.describe(desired.server_certificate_arn)
    except CertificateNotFound as error:
        return CertificateReport(
            **common, status="missing", action="no-renewed-certificate", error=str(error)
        )
    status = expiry_status(current, now, threshold_days)
    facts: dict[str, Any] = {
        "not_after": current.not_after,
        "days_left": days_left(current.not_after, now) if current.not_after else None,
        "certificate_type": current.type,
        "renewal_status": current.renewal_status,
    }
    if status == "valid":
        return CertificateReport(**common, **facts, status=status)
    if current.managed_by_acm:
        return CertificateReport(**common, **facts, status=status, action="awaiting-acm-renewal")
    candidates = []
    for arn in acm.issued_for(current.domain_name):
        if arn == current.arn:
            continue
        try:
            candidates.append(acm.describe(arn))
        except CertificateNotFound:
            continue  # deleted between the listing and the look
    replacement = choose_replacement(current, candidates, now, threshold_days)
    if replacement is None:
        return CertificateReport(**common, **facts, status=status, action="no-renewed-certificate")
    new_configuration = needs_new_configuration(current, replacement)
    found: dict[str, Any] = {
        "replacement_arn": replacement.arn,
        "replacement_not_after": replacement.not_after,
        "new_configuration_needed": new_configuration,
    }
    rotation = desired.server_certificate_rotation
    if rotation is None or not rotation.automatic:
        return CertificateReport(**common, **facts, **found, status=status, action="alarm-only")
    if new_configuration and not rotation.allow_new_certificate_authority:
        return CertificateReport(
            **common, **facts, **found, status=status, action="renewed-certificate-found"
        )
    if updates is None:
        return CertificateReport(**common, **facts, **found, status=status, action="rotation-due")
    document = {**managed.request, "server_certificate_arn": replacement.arn}
    revision = managed.revision + 1
    execution_arn, started = updates.start(
        rotation_execution_name(managed.request_id, revision, replacement.arn),
        {
            "request": document,
            "applied_by": APPLIED_BY,
            "revision": revision,
            "users_notice": users_message(new_configuration),
            "new_configuration_needed": new_configuration,
        },
    )
    return CertificateReport(
        **common,
        **facts,
        **found,
        status=status,
        action="rotation-started",
        execution_arn=execution_arn,
        execution_is_new=started,
    )


def run_server_certificate_check(
    acm: CertificateApi,
    records: RequestRecords,
    updates: UpdateStarter,
    events: EventPublisher,
    notifier: Notifier,
    *,
    threshold_days: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check every managed endpoint's server certificate; an event and a notification for each that
    expires within ``threshold_days``, has expired or is gone, and a rotation where allowed."""
    moment = now or datetime.now(UTC)
    checked_at = moment.isoformat()
    reports = [
        check_certificate(acm, updates, managed, threshold_days=threshold_days, now=moment)
        for managed in managed_endpoints(records)
    ]
    for report in reports:
        if not report.needs_attention:
            continue
        detail = report.event_detail(checked_at)
        events.publish(detail, [report.certificate_arn], detail_type=CERTIFICATE_DETAIL_TYPE)
        notifier.publish(
            report.subject(),
            detail,
            {"status": "SERVER_CERTIFICATE_EXPIRING", "request_id": report.request_id},
        )
    attention = [report for report in reports if report.needs_attention]
    known_days = [report.days_left for report in attention if report.days_left is not None]
    return {
        "checked_at": checked_at,
        "checked": len(reports),
        "threshold_days": threshold_days,
        "expiring": [report.endpoint_id for report in attention],
        "rotations_started": [
            report.endpoint_id for report in reports if report.action == "rotation-started"
        ],
        "unreadable": [report.request_id for report in reports if report.status == "unreadable"],
        "fewest_days_left": min(known_days) if known_days else None,
        "reports": [report.model_dump(mode="json") for report in reports],
    }

"""Issue, deliver, list and revoke the personal client certificates of grants on mutual-TLS endpoints.

Lifecycle: the key pair is generated here, in the function's memory; a CSR (common name = the grant's
VPN user name) goes to the profile's AWS Private CA for a certificate valid until the grant's end plus
``VALIDITY_MARGIN``; the personal .ovpn (the endpoint's exported configuration with ``<cert>`` and
``<key>``) is written once to the KMS-encrypted configuration bucket and handed out only through a
short-lived presigned link to the grant's owner. The key is kept nowhere else: not in the records, the
logs, the answers. A lost download means a new certificate; the grant's earlier ones are revoked
(``superseded``).

Revocation (a grant revoked or expired, offboarding, ``cvpn cert revoke``): RevokeCertificate in
Private CA, then the CA's current revocation list (which Private CA writes to its S3 bucket) is
imported into the endpoint when it differs from the imported one, then the person's sessions are cut.
Private CA publishes a revocation about 30 minutes later on AWS: until then the list imported still
lacks the serial, and ``refresh_revocation_lists`` (scheduled) imports it when it appears; a grant
that ended is refused at connect meanwhile by the grants check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from cvpn_shared.access.certificates.records import CertificateRecord, normal_serial

if TYPE_CHECKING:
    from cvpn_shared.access.grants.models import Grant

__all__ = [
    "CRL_RENEW_BEFORE",
    "VALIDITY_MARGIN",
    "CertificateNotFound",
    "ClientCertificates",
    "IssuedCertificate",
    "KeyPair",
    "MutualTlsUnavailable",
    "new_key_pair",
    "personal_profile",
]

logger = logging.getLogger(__name__)

VALIDITY_MARGIN = timedelta(hours=1)
"""A certificate outlives its grant by this much: clocks differ, and the grant check at connect
already ends access at the grant's end."""
CRL_RENEW_BEFORE = timedelta(days=1)
"""The schedule imports a list again when the imported one expires within this."""
PROFILE_PREFIX = "personal-configurations"


class CertificateNotFound(LookupError):
    """No certificate the product issued has that serial."""


class MutualTlsUnavailable(Exception):
    """The grant's profile names no Private CA (or its endpoint cannot take certificates)."""


@dataclass(frozen=True)
class KeyPair:
    private_key_pem: str
    csr_pem: str


def new_key_pair(common_name: str) -> KeyPair:
    """An RSA 2048 key (what Client VPN's OpenVPN clients all accept) and a CSR naming ``common_name``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(),
    )


def _without_block(text: str, tag: str) -> str:
    start, end = f"<{tag}>", f"</{tag}>"
    while start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = head.rstrip("\n") + "\n" + tail.lstrip("\n")
    return text


def personal_profile(base_configuration: str, certificate_pem: str, private_key_pem: str) -> str:
    """The endpoint's exported configuration with this person's ``<cert>`` and ``<key>``, replacing
    any the export carried."""
    text = base_configuration
    for tag in ("cert", "key"):
        text = _without_block(text, tag)
    return (
        text.rstrip("\n")
        + f"\n<cert>\n{certificate_pem.strip()}\n</cert>\n<key>\n{private_key_pem.strip()}\n</key>\n"
    )


def serial_of(certificate_pem: str) -> str:
    from cryptography import x509

    return format(x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number, "x")


# ------------------------------------------------------------------------------------------ ports
class Authority(Protocol):
    """AWS Private CA."""

    def issue(self, ca_arn: str, csr_pem: str, not_after: datetime) -> str: ...
    def certificate(self, ca_arn: str, certificate_arn: str) -> str: ...
    def revoke(self, ca_arn: str, serial: str, reason: str) -> None: ...
    def revocation_list_pem(self, ca_arn: str) -> str | None: ...


class Records(Protocol):
    def put(self, record: CertificateRecord) -> None: ...
    def get(self, serial: str) -> CertificateRecord | None: ...
    def every(self) -> list[CertificateRecord]: ...


class Endpoints(Protocol):
    """The Client VPN side."""

    def client_configuration(self, endpoint_id: str) -> str: ...
    def revocation_list(self, endpoint_id: str) -> str | None: ...
    def import_revocation_list(self, endpoint_id: str, crl_pem: str) -> None: ...
    def terminate(self, endpoint_id: str, vpn_user: str) -> int: ...


class Deliveries(Protocol):
    """The encrypted configuration bucket."""

    def put(self, key: str, body: str, metadata: dict[str, str]) -> None: ...
    def exists(self, key: str) -> bool: ...
    def presigned_url(self, key: str, ttl_seconds: int, filename: str) -> str: ...


@dataclass(frozen=True)
class IssuedCertificate:
    record: CertificateRecord
    object_key: str


@dataclass(frozen=True)
class Revocation:
    record: CertificateRecord
    revocation_list_imported: bool
    sessions_terminated: int


def profile_object_key(record: CertificateRecord) -> str:
    return f"{PROFILE_PREFIX}/{record.grant_id}/{record.serial}.ovpn"


def _next_update(crl_pem: str | None) -> datetime | None:
    from cryptography import x509

    if not crl_pem:
        return None
    try:
        return x509.load_pem_x509_crl(crl_pem.encode()).next_update_utc
    except ValueError:
        return None


def _pem_body(text: str | None) -> str:
    return "".join(
        line.strip() for line in (text or "").splitlines() if line and not line.startswith("-----")
    )


class ClientCertificates:
    """Certificates against Private CA, their records, the endpoints and the configuration bucket."""

    def __init__(
        self,
        *,
        authority: Authority,
        records: Records,
        endpoints: Endpoints,
        deliveries: Deliveries,
        ca_of_profile: Callable[[str], str | None],
        clock: Callable[[], datetime],
    ) -> None:
        self._authority = authority
        self._records = records
        self._endpoints = endpoints
        self._deliveries = deliveries
        self._ca_of_profile = ca_of_profile
        self._clock = clock

    # ------------------------------------------------------------------------------------ issue
    def ca_for(self, grant: Grant) -> str | None:
        """The Private CA ARN of the grant's profile; None when the profile is not mutual TLS."""
        return self._ca_of_profile(grant.profile)

    def issue(self, grant: Grant) -> IssuedCertificate:
        """A new certificate and personal profile for an active grant; the grant's earlier
        certificates are revoked as superseded."""
        ca_arn = self.ca_for(grant)
        if not ca_arn:
            raise MutualTlsUnavailable(f"profile {grant.profile} names no client_certificate_authority_arn")
        if grant.state != "active" or grant.ends_at is None:
            raise MutualTlsUnavailable(f"grant {grant.grant_id} is {grant.state}, not active")
        earlier = self.of_grant(grant.grant_id)
        keys = new_key_pair(grant.person.vpn_user)
        not_after = grant.ends_at + VALIDITY_MARGIN
        certificate_arn = self._authority.issue(ca_arn, keys.csr_pem, not_after)
        certificate_pem = self._authority.certificate(ca_arn, certificate_arn)
        record = CertificateRecord(
            serial=serial_of(certificate_pem),
            person_key=grant.person.key,
            vpn_user=grant.person.vpn_user,
            grant_id=grant.grant_id,
            endpoint_id=grant.endpoint_id,
            certificate_authority_arn=ca_arn,
            certificate_arn=certificate_arn,
            issued_at=self._clock(),
            not_after=not_after,
        )
        self._records.put(record)
        text = personal_profile(
            self._endpoints.client_configuration(grant.endpoint_id), certificate_pem, keys.private_key_pem
        )
        key = profile_object_key(record)
        self._deliveries.put(key, text, {"grant-id": grant.grant_id, "serial": record.serial})
        logger.info(
            "client certificate issued",
            extra={"serial": record.serial, "grant_id": grant.grant_id, "endpoint_id": grant.endpoint_id},
        )
        for old in earlier:
            if old.state == "issued":
                self.revoke(old.serial, reason="SUPERSEDED", cut_sessions=False)
        return IssuedCertificate(record, key)

    def personal_configuration(self, grant: Grant, ttl_seconds: int) -> dict[str, str]:
        """The link the grant's owner downloads their personal .ovpn from (the caller checked the
        owner): the profile of the grant's newest certificate while it is stored, else a new
        certificate (a lost download means a new one; the old one is revoked)."""
        current = [
            record
            for record in self.of_grant(grant.grant_id)
            if record.state == "issued" and record.not_after > self._clock()
        ]
        key = profile_object_key(current[0]) if current else None
        if key is None or not self._deliveries.exists(key):
            key = self.issue(grant).object_key
        filename = f"{grant.profile}-{grant.person.vpn_user}.ovpn"
        expires_at = self._clock() + timedelta(seconds=ttl_seconds)
        return {
            "url": self._deliveries.presigned_url(key, ttl_seconds, filename),
            "expires_at": expires_at.isoformat(),
            "filename": filename,
        }

    # ----------------------------------------------------------------------------------- revoke
    def revoke(self, serial: str, *, reason: str, cut_sessions: bool = True) -> Revocation:
        """Revoke in Private CA, import the CA's list into the endpoint, cut the person's sessions."""
        record = self._records.get(normal_serial(serial))
        if record is None:
            raise CertificateNotFound(f"no certificate with serial {serial} was issued by this stack")
        if record.state != "revoked":
            self._authority.revoke(record.certificate_authority_arn, record.serial, reason)
            record = record.model_copy(
                update={"state": "revoked", "revoked_at": self._clock(), "revocation_reason": reason}
            )
            self._records.put(record)
        imported = self.refresh_revocation_list(record.endpoint_id, record.certificate_authority_arn)
        cut = self._endpoints.terminate(record.endpoint_id, record.vpn_user) if cut_sessions else 0
        logger.info(
            "client certificate revoked",
            extra={"serial": record.serial, "endpoint_id": record.endpoint_id, "crl_imported": imported},
        )
        return Revocation(record, imported, cut)

    def grant_ended(self, grant: Grant, reason: str = "PRIVILEGE_WITHDRAWN") -> list[Revocation]:
        """Revoke every certificate still issued for a grant that was revoked or expired."""
        return [
            self.revoke(record.serial, reason=reason)
            for record in self.of_grant(grant.grant_id)
            if record.state == "issued"
        ]

    # ------------------------------------------------------------------------ revocation lists
    def refresh_revocation_list(self, endpoint_id: str, ca_arn: str, *, force: bool = False) -> bool:
        """Import the CA's current list into the endpoint when it differs from the imported one (or
        ``force``); False when there is nothing newer (or the CA publishes none)."""
        published = self._authority.revocation_list_pem(ca_arn)
        if not published:
            logger.warning("the CA publishes no revocation list", extra={"ca_arn": ca_arn})
            return False
        imported = self._endpoints.revocation_list(endpoint_id)
        if not force and _pem_body(published) == _pem_body(imported):
            return False
        self._endpoints.import_revocation_list(endpoint_id, published)
        return True

    def refresh_revocation_lists(self) -> list[dict[str, str]]:
        """What the schedule runs: every endpoint a certificate was issued for gets its CA's newest
        list; one whose imported list expires within ``CRL_RENEW_BEFORE`` and whose CA has no newer
        one is reported (the endpoint would refuse every client once it expires)."""
        now = self._clock()
        pairs = sorted(
            {(record.endpoint_id, record.certificate_authority_arn) for record in self._records.every()}
        )
        results = []
        for endpoint_id, ca_arn in pairs:
            try:
                imported = self.refresh_revocation_list(endpoint_id, ca_arn)
            except Exception as error:  # one endpoint gone must not stop the others
                logger.exception("revocation list refresh failed", extra={"endpoint_id": endpoint_id})
                results.append({"endpoint_id": endpoint_id, "result": f"failed: {error}"})
                continue
            next_update = _next_update(self._endpoints.revocation_list(endpoint_id))
            result = "imported" if imported else "current"
            if next_update is not None and next_update - now <= CRL_RENEW_BEFORE:
                result = "expiring"
                logger.error(
                    "the endpoint's revocation list expires soon and the CA has no newer one",
                    extra={"endpoint_id": endpoint_id, "next_update": next_update.isoformat()},
                )
            results.append({"endpoint_id": endpoint_id, "result": result})
        return results

    # ---------------------------------------------------------------------------------- listing
    def of_grant(self, grant_id: str) -> list[CertificateRecord]:
        """The grant's certificates, newest first."""
        return sorted(
            (record for record in self._records.every() if record.grant_id == grant_id),
            key=lambda record: record.issued_at,
            reverse=True,
        )

    def listing(self, *, endpoint_id: str | None = None) -> list[tuple[CertificateRecord, str]]:
        """(record, status at now) newest first, on ``endpoint_id`` when given."""
        now = self._clock()
        found: Iterable[CertificateRecord] = self._records.every()
        if endpoint_id:
            found = [record for record in found if record.endpoint_id == endpoint_id]
        return [
            (record, record.status_at(now))
            for record in sorted(found, key=lambda record: (record.issued_at, record.serial), reverse=True)
        ]


class GrantCertificates:
    """The grants' hook: a grant on a mutual-TLS profile that becomes active gets its certificate
    (``issue_on_activation``: where the key pair may be made, i.e. in a function of the stack; the
    command line leaves it to the person's first download, which runs in one); a grant that ends
    has its certificates revoked."""

    def __init__(self, certificates: Callable[[], ClientCertificates], *, issue_on_activation: bool) -> None:
        self._make = certificates  # built on first use: most grants' functions never need its clients
        self._built: ClientCertificates | None = None
        self._issue_on_activation = issue_on_activation

    @property
    def _certificates(self) -> ClientCertificates:
        if self._built is None:
            self._built = self._make()
        return self._built

    def activated(self, grant: Grant, now: datetime) -> None:
        if not self._issue_on_activation or not self._certificates.ca_for(grant):
            return
        try:
            self._certificates.issue(grant)
        except Exception:  # the person's download issues it again; the grant itself stands
            logger.exception(
                "client certificate not issued at activation", extra={"grant_id": grant.grant_id}
            )

    def extended(self, grant: Grant, now: datetime) -> None:
        # The certificate keeps its validity (the old end): once that passes, the owner's next
        # download issues one until the new end.
        return None

    def ended(self, grant: Grant, now: datetime) -> None:
        self._certificates.grant_ended(grant)

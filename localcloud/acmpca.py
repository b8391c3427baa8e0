"""AWS Private CA (ACM PCA) in the local cloud: what moto's backend lacks for client certificates.

moto issues and revokes certificates but never publishes a revocation list, ignores the requested
validity (every certificate lasts 365 days) and the CA's usage mode. :func:`install` adds, on the
emulated clock:

* ``IssueCertificate`` honours ``Validity`` (``DAYS``, ``MONTHS``, ``YEARS``, ``END_DATE``,
  ``ABSOLUTE``) and ``ValidityNotBefore``; a CA created with ``UsageMode=SHORT_LIVED_CERTIFICATE``
  refuses a validity beyond 7 days (AWS: short-lived mode issues certificates of up to seven days),
  one created without it is ``GENERAL_PURPOSE`` (AWS's default; moto says short-lived).
* ``RevokeCertificate`` refuses a serial the CA never issued (ResourceNotFoundException) and one
  already revoked (RequestAlreadyProcessedException), as AWS does, and accepts the serial as hex
  with or without colons.
* A CA whose ``RevocationConfiguration.CrlConfiguration`` is enabled with an ``S3BucketName`` writes
  its CRL, DER, signed by the CA's key, to ``crl/<CA id>.crl`` in that bucket (AWS's object name):
  every revoked, unexpired certificate it issued, ``nextUpdate`` = now + ``ExpirationInDays``
  (default 7). AWS writes it about 30 minutes after a revocation; the local cloud writes it at once,
  so a test need not wait. AWS also refreshes the list at half its validity: here it is refreshed
  when read (GetObject) past that point, which a reader cannot tell apart.
"""

from __future__ import annotations

import calendar
import contextvars
import datetime as _datetime
import json
import threading
from typing import Any

from localcloud.clock import get_clock

__all__ = ["SHORT_LIVED_MAX_DAYS", "crl_object_key", "install", "installed", "uninstall", "write_crl"]

SHORT_LIVED_MAX_DAYS = 7
DEFAULT_CRL_EXPIRATION_DAYS = 7

_originals: dict[tuple[type, str], Any] = {}
_lock = threading.RLock()
_validity: contextvars.ContextVar[tuple[_datetime.datetime, _datetime.datetime] | None] = (
    contextvars.ContextVar("acmpca_validity", default=None)
)
_REASONS = {
    "UNSPECIFIED": "unspecified",
    "KEY_COMPROMISE": "key_compromise",
    "CERTIFICATE_AUTHORITY_COMPROMISE": "ca_compromise",
    "AFFILIATION_CHANGED": "affiliation_changed",
    "SUPERSEDED": "superseded",
    "CESSATION_OF_OPERATION": "cessation_of_operation",
    "PRIVILEGE_WITHDRAWN": "privilege_withdrawn",
    "A_A_COMPROMISE": "aa_compromise",
}


def _now() -> _datetime.datetime:
    return get_clock().now().astimezone(_datetime.UTC)


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(code, message)
    error.code = 400
    return error


def _serial_number(text: Any) -> int:
    """A serial as AWS takes it: hex, with or without colons."""
    digits = str(text or "").replace(":", "").strip()
    try:
        return int(digits, 16)
    except ValueError:
        raise _error("InvalidRequestException", f"CertificateSerial {text!r} is not hexadecimal") from None


def _add_months(moment: _datetime.datetime, months: int) -> _datetime.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _validity_end(validity: dict[str, Any], start: _datetime.datetime) -> _datetime.datetime:
    kind = str(validity.get("Type") or "")
    try:
        value = int(validity.get("Value"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _error("ValidationException", "Validity.Value must be an integer") from None
    if value <= 0:
        raise _error("ValidationException", "Validity.Value must be positive")
    if kind == "DAYS":
        return start + _datetime.timedelta(days=value)
    if kind == "MONTHS":
        return _add_months(start, value)
    if kind == "YEARS":
        return _add_months(start, 12 * value)
    if kind == "ABSOLUTE":
        return _datetime.datetime.fromtimestamp(value, tz=_datetime.UTC)
    if kind == "END_DATE":
        try:
            return _datetime.datetime.strptime(str(value), "%Y%m%d%H%M%S").replace(tzinfo=_datetime.UTC)
        except ValueError:
            raise _error("ValidationException", "Validity.Value of END_DATE is YYYYMMDDHHMMSS") from None
    raise _error(
        "ValidationException", f"Validity.Type {kind!r} is not one of DAYS, MONTHS, YEARS, END_DATE, ABSOLUTE"
    )


def _authority(response: Any, arn: str) -> Any:
    return response.acmpca_backend.describe_certificate_authority(arn)


# --------------------------------------------------------------------------------------- responses
def _create_certificate_authority(self: Any) -> str:
    answer = _originals[(type(self), "create_certificate_authority")](self)
    mode = json.loads(self.body).get("UsageMode") or "GENERAL_PURPOSE"
    if mode not in ("GENERAL_PURPOSE", "SHORT_LIVED_CERTIFICATE"):
        raise _error(
            "ValidationException", f"UsageMode {mode!r} is not GENERAL_PURPOSE or SHORT_LIVED_CERTIFICATE"
        )
    _authority(self, json.loads(answer)["CertificateAuthorityArn"]).usage_mode = mode
    return str(answer)


def _issue_certificate(self: Any) -> str:
    params = json.loads(self.body)
    ca = _authority(self, params.get("CertificateAuthorityArn"))
    root = str(params.get("TemplateArn") or "").endswith(":template/RootCACertificate/V1")
    if ca.status != "ACTIVE" and not root:
        raise _error(
            "InvalidStateException", f"The certificate authority {ca.arn} is {ca.status}, not ACTIVE"
        )
    start = _now()
    not_before = params.get("ValidityNotBefore")
    if not_before:
        if not_before.get("Type") not in ("ABSOLUTE", "END_DATE"):
            raise _error("ValidationException", "ValidityNotBefore.Type must be ABSOLUTE or END_DATE")
        start = _validity_end(not_before, start)
    end = _validity_end(params.get("Validity") or {}, start)
    if end <= start:
        raise _error("ValidationException", "Validity ends before it starts")
    short_lived = getattr(ca, "usage_mode", "") == "SHORT_LIVED_CERTIFICATE" and not root
    if short_lived and end - start > _datetime.timedelta(days=SHORT_LIVED_MAX_DAYS):
        raise _error(
            "ValidationException",
            f"A short-lived certificate CA issues certificates valid for at most {SHORT_LIVED_MAX_DAYS} days",
        )
    ca_certificate = ca.certificate
    if ca_certificate is not None and not root and end > ca_certificate.not_valid_after_utc:
        raise _error("ValidationException", "The certificate would outlive the CA certificate")
    token = _validity.set((start, end))
    try:
        return str(_originals[(type(self), "issue_certificate")](self))
    finally:
        _validity.reset(token)


# ----------------------------------------------------------------------------------------- models
def _generate_cert(self: Any, subject: Any, public_key: Any, extensions: Any) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    window = _validity.get()
    start, end = window if window is not None else (_now(), _now() + _datetime.timedelta(days=365))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(self.issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    present = {type(extension) for extension, _ in extensions}
    if self.certificate is not None and x509.AuthorityKeyIdentifier not in present:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
        )
    return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _issued_serials(ca: Any) -> dict[int, Any]:
    from cryptography import x509

    found = {}
    for pem in ca.issued_certificates.values():
        certificate = x509.load_pem_x509_certificate(pem)
        found[certificate.serial_number] = certificate
    return found


def _revoke_certificate(
    self: Any, certificate_authority_arn: str, certificate_serial: str, revocation_reason: str
) -> None:
    ca = self.describe_certificate_authority(certificate_authority_arn)
    serial = _serial_number(certificate_serial)
    with _lock:
        if serial not in _issued_serials(ca):
            raise _error(
                "ResourceNotFoundException",
                f"Certificate with serial {certificate_serial} was not issued by {certificate_authority_arn}",
            )
        revoked = {_serial_number(key) for key in ca.revoked_certificates}
        if serial in revoked:
            raise _error(
                "RequestAlreadyProcessedException", f"Certificate {certificate_serial} is already revoked"
            )
        if revocation_reason not in _REASONS:
            raise _error("ValidationException", f"RevocationReason {revocation_reason!r} is not valid")
        digits = format(serial, "X")
        digits = "0" * (len(digits) % 2) + digits
        key = ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
        _originals[(type(self), "revoke_certificate")](
            self, certificate_authority_arn, key, revocation_reason
        )
        ca.revoked_certificates[key]["revocation_time"] = _now().timestamp()
        write_crl(ca)


def _update_certificate_authority(
    self: Any, certificate_authority_arn: str, *args: Any, **kwargs: Any
) -> None:
    _originals[(type(self), "update_certificate_authority")](self, certificate_authority_arn, *args, **kwargs)
    write_crl(self.describe_certificate_authority(certificate_authority_arn))


# -------------------------------------------------------------------------------------------- CRL
def _crl_configuration(ca: Any) -> dict[str, Any] | None:
    configuration = (ca.revocation_configuration or {}).get("CrlConfiguration") or {}
    if not configuration.get("Enabled") or not configuration.get("S3BucketName"):
        return None
    return dict(configuration)


def crl_object_key(ca: Any) -> str:
    """Where AWS writes a CA's revocation list in its bucket."""
    return f"crl/{ca.id}.crl"


def write_crl(ca: Any) -> bytes | None:
    """Sign and publish the CA's current revocation list (DER); None when it publishes none."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from moto.s3.models import s3_backends

    configuration = _crl_configuration(ca)
    if configuration is None or ca.certificate is None:
        return None
    now = _now()
    days = int(configuration.get("ExpirationInDays") or DEFAULT_CRL_EXPIRATION_DAYS)
    issued = _issued_serials(ca)
    with _lock:
        number = int(getattr(ca, "_crl_number", 0)) + 1
        ca._crl_number = number
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.certificate.subject)
            .last_update(now)
            .next_update(now + _datetime.timedelta(days=days))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
            )
        )
        for key, details in ca.revoked_certificates.items():
            serial = _serial_number(key)
            certificate = issued.get(serial)
            if certificate is not None and certificate.not_valid_after_utc < now:
                continue
            revoked_at = _datetime.datetime.fromtimestamp(float(details["revocation_time"]), tz=_datetime.UTC)
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
            reason = _REASONS.get(str(details.get("revocation_reason")), "unspecified")
            if reason != "unspecified":
                entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags[reason]), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        der = builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        ca._crl_refresh_at = now + _datetime.timedelta(days=days) / 2
    partition = "aws"
    s3 = s3_backends[ca.account_id][partition]
    _originals[(type(s3), "put_object")](s3, configuration["S3BucketName"], crl_object_key(ca), der)
    return der


def _refresh_if_due(account_id: str, bucket_name: str, key_name: str) -> None:
    from moto.acmpca.models import acmpca_backends

    if not key_name.startswith("crl/") or not key_name.endswith(".crl"):
        return
    for backend in list(acmpca_backends[account_id].values()):
        for ca in list(backend.certificate_authorities.values()):
            configuration = _crl_configuration(ca)
            if configuration is None or configuration["S3BucketName"] != bucket_name:
                continue
            if crl_object_key(ca) != key_name:
                continue
            due = getattr(ca, "_crl_refresh_at", None)
            if due is None or _now() >= due:
                write_crl(ca)


def _get_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        _refresh_if_due(self.account_id, bucket_name, key_name)
    except Exception:  # a refresh must never break a read
        import logging

        logging.getLogger(__name__).exception("refreshing the CRL %s/%s failed", bucket_name, key_name)
    return _originals[(type(self), "get_object")](self, bucket_name, key_name, *args, **kwargs)


def _put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
    return _originals[(type(self), "put_object")](self, *args, **kwargs)


# ------------------------------------------------------------------------------------------ install
def _targets() -> list[tuple[type, str, Any]]:
    from moto.acmpca.models import ACMPCABackend, CertificateAuthority
    from moto.acmpca.responses import ACMPCAResponse
    from moto.s3.models import S3Backend

    return [
        (ACMPCAResponse, "create_certificate_authority", _create_certificate_authority),
        (ACMPCAResponse, "issue_certificate", _issue_certificate),
        (CertificateAuthority, "generate_cert", _generate_cert),
        (ACMPCABackend, "revoke_certificate", _revoke_certificate),
        (ACMPCABackend, "update_certificate_authority", _update_certificate_authority),
        (S3Backend, "get_object", _get_object),
        (S3Backend, "put_object", _put_object),
    ]


def install() -> None:
    """Patch moto's ACM PCA (idempotent)."""
    with _lock:
        for owner, name, replacement in _targets():
            if (owner, name) not in _originals:
                _originals[(owner, name)] = getattr(owner, name)
                setattr(owner, name, replacement)


def uninstall() -> None:
    with _lock:
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()


def installed() -> bool:
    return bool(_originals)

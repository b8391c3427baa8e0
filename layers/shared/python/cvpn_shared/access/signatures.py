"""Webhook signatures of the systems that call the intake, verified on the raw body.

| scheme    | header(s)                                              | signed                   |
|-----------|--------------------------------------------------------|--------------------------|
| ``jira``    | ``X-Hub-Signature: sha256=<hex>``                        | raw body                 |
| ``github``  | ``X-Hub-Signature-256: sha256=<hex>``                    | raw body                 |
| ``slack``   | ``X-Slack-Signature: v0=<hex>``, ``X-Slack-Request-Timestamp`` | ``v0:{ts}:{raw body}`` |
| ``generic`` | ``X-Signature: t=<unix>,v1=<hex>[,v1=...]`` (Stripe style) | ``{t}.{raw body}``       |

All are HMAC-SHA256, compared in constant time (``hmac.compare_digest``) against the current and the
previous secret (rotation). A timestamp, where the scheme signs one, must be within 300 s of now.
Header names are case-insensitive. Without a secret every delivery is refused (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "SIGNATURE_TOLERANCE_SECONDS",
    "SignatureRejected",
    "SignatureScheme",
    "SigningSecretMissing",
    "SigningSecrets",
    "VerifiedDelivery",
    "sign",
    "verify_signature",
]

SIGNATURE_TOLERANCE_SECONDS = 300
MAX_GENERIC_SIGNATURES = 8  # v1 entries looked at in one X-Signature header
MAX_DELIVERY_ID_LENGTH = 200

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_DELIVERY_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_DELIVERY_ID_LENGTH}}}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureScheme(StrEnum):
    """How a source signs its deliveries."""

    JIRA = "jira"
    GITHUB = "github"
    SLACK = "slack"
    GENERIC = "generic"

    @property
    def signature_header(self) -> str:
        return _SIGNATURE_HEADERS[self]

    @property
    def delivery_id_header(self) -> str | None:
        """The header that names a delivery (the same across the sender's retries), if the sender has one."""
        return _DELIVERY_ID_HEADERS.get(self)


_SIGNATURE_HEADERS = {
    SignatureScheme.JIRA: "X-Hub-Signature",
    SignatureScheme.GITHUB: "X-Hub-Signature-256",
    SignatureScheme.SLACK: "X-Slack-Signature",
    SignatureScheme.GENERIC: "X-Signature",
}
_DELIVERY_ID_HEADERS = {
    SignatureScheme.JIRA: "X-Atlassian-Webhook-Identifier",
    SignatureScheme.GITHUB: "X-GitHub-Delivery",
}
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


@dataclass(frozen=True)
class SigningSecrets:
    """The current secret and, during a rotation, the previous one (both accepted)."""

    current: str
    previous: str | None = None

    def candidates(self) -> tuple[bytes, ...]:
        return tuple(secret.encode() for secret in (self.current, self.previous) if secret)


class SignatureRejected(Exception):
    """The delivery is not proven to come from the source: the message says which header and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SigningSecretMissing(SignatureRejected):
    """No secret is configured for the source: every delivery is refused (fail closed)."""


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery whose signature matched; ``delivery_id`` names it for deduplication."""

    scheme: SignatureScheme
    delivery_id: str
    signed_at: int | None = None
    matched_previous_secret: bool = False


def _digest(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _matching_secret(secrets: SigningSecrets, message: bytes, provided: list[str]) -> int | None:
    """Index of the secret (0 current, 1 previous) whose HMAC matches one of ``provided``, else None.

    Every candidate is compared (no early exit on the secrets), each with ``hmac.compare_digest``.
    """
    found: int | None = None
    for index, secret in enumerate(secrets.candidates()):
        expected = _digest(secret, message)
        for signature in provided:
            if hmac.compare_digest(expected, signature.lower()) and found is None:
                found = index
    return found


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = _header(headers, name)
    if value is None or not value.strip():
        raise SignatureRejected(f"header {name} is missing")
    return value.strip()


def _prefixed_digest(value: str, prefix: str, header: str) -> str:
    if not value.startswith(prefix) or not _HEX_DIGEST.fullmatch(value[len(prefix) :]):
        raise SignatureRejected(f"{header}: expected {prefix}<64 hex digits>")
    return value[len(prefix) :]


def _fresh_timestamp(text: str, header: str, now: float) -> int:
    if not _TIMESTAMP.fullmatch(text):
        raise SignatureRejected(f"{header}: the timestamp must be Unix seconds, got {text[:40]!r}")
    timestamp = int(text)
    skew = abs(now - timestamp)
    if skew > SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureRejected(
            f"{header}: the timestamp is {skew:.0f} s away from the server clock "
            f"(tolerance {SIGNATURE_TOLERANCE_SECONDS} s); replayed or the sender's clock is wrong"
        )
    return timestamp


def _parse_generic(value: str) -> tuple[str, list[str]]:
    header = SignatureScheme.GENERIC.signature_header
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        key, separator, text = item.strip().partition("=")
        if not separator:
            raise SignatureRejected(f"{header}: expected t=<unix>,v1=<hex>[,v1=<hex>...]")
        if key == "t":
            timestamps.append(text)
        elif key == "v1":
            if not _HEX_DIGEST.fullmatch(text):
                raise SignatureRejected(f"{header}: v1 must be 64 hex digits")
            signatures.append(text)
    if len(timestamps) != 1:
        raise SignatureRejected(f"{header}: exactly one t=<unix> is required")
    if not signatures:
        raise SignatureRejected(f"{header}: at least one v1=<hex> is required")
    if len(signatures) > MAX_GENERIC_SIGNATURES:
        raise SignatureRejected(f"{header}: at most {MAX_GENERIC_SIGNATURES} v1 signatures")
    return timestamps[0], signatures


def verify_signature(
    scheme: SignatureScheme,
    headers: Mapping[str, str],
    body: bytes,
    secrets: SigningSecrets | None,
    *,
    now: float,
    delivery_id_header: str | None = None,
) -> VerifiedDelivery:
    """Prove that ``body`` (the raw bytes received) was signed by the source; raise SignatureRejected.

    ``delivery_id_header`` overrides the scheme's own delivery id header. Without one, the signature
    names the delivery.
    """
    if secrets is None or not secrets.current:
        raise SigningSecretMissing(
            "no signing secret is configured for this source; every delivery is refused"
        )
    header = scheme.signature_header
    signed_at: int | None = None
    if scheme in (SignatureScheme.JIRA, SignatureScheme.GITHUB):
        provided = [_prefixed_digest(_required_header(headers, header), "sha256=", header)]
        message = body
    elif scheme is SignatureScheme.SLACK:
        provided = [_prefixed_digest(_required_header(headers, header), "v0=", header)]
        stamp = _required_header(headers, SLACK_TIMESTAMP_HEADER)
        signed_at = _fresh_timestamp(stamp, SLACK_TIMESTAMP_HEADER, now)
        message = b"v0:" + stamp.encode() + b":" + body
    else:
        stamp, provided = _parse_generic(_required_header(headers, header))
        signed_at = _fresh_timestamp(stamp, header, now)
        message = stamp.encode() + b"." + body
    matched = _matching_secret(secrets, message, provided)
    if matched is None:
        raise SignatureRejected(f"{header}: does not match the body signed with the source's secret")
    id_header = delivery_id_header or scheme.delivery_id_header
    named = _header(headers, id_header) if id_header else None
    if named is not None and _DELIVERY_ID.fullmatch(named.strip()):
        delivery_id = named.strip()
    else:
        delivery_id = "sig:" + _digest(secrets.candidates()[matched], message)
    return VerifiedDelivery(
        scheme=scheme, delivery_id=delivery_id, signed_at=signed_at, matched_previous_secret=matched == 1
    )


def sign(scheme: SignatureScheme, body: bytes, secret: str, *, timestamp: int) -> dict[str, str]:
    """The signature headers a sender of ``scheme`` would send with ``body``."""
    key = secret.encode()
    if scheme in (SignatureScheme.JIRA, SignatureScheme.GITHUB):
        return {scheme.signature_header: "sha256=" + _digest(key, body)}
    if scheme is SignatureScheme.SLACK:
        message = b"v0:" + str(timestamp).encode() + b":" + body
        return {
            scheme.signature_header: "v0=" + _digest(key, message),
            SLACK_TIMESTAMP_HEADER: str(timestamp),
        }
    digest = _digest(key, str(timestamp).encode() + b"." + body)
    return {scheme.signature_header: f"t={timestamp},v1={digest}"}

"""Webhook signature schemes: each verified on the raw body, in constant time, with rotation and a
timestamp tolerance where the scheme signs one; fail closed without a secret."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from cvpn_shared.access import signatures
from cvpn_shared.access.signatures import (
    SIGNATURE_TOLERANCE_SECONDS,
    SignatureRejected,
    SignatureScheme,
    SigningSecretMissing,
    SigningSecrets,
    sign,
    verify_signature,
)

NOW = 1_800_000_000
BODY = b'{"issue": {"key": "NET-1"}}'
SECRET = SigningSecrets("current-secret", "previous-secret")


def test_github_published_test_vector() -> None:
    """GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!"."""
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"X-Hub-Signature-256": expected}
    verified = verify_signature(
        SignatureScheme.GITHUB,
        headers,
        b"Hello, World!",
        SigningSecrets("It's a Secret to Everybody"),
        now=NOW,
    )
    assert verified.scheme is SignatureScheme.GITHUB
    assert (
        sign(SignatureScheme.GITHUB, b"Hello, World!", "It's a Secret to Everybody", timestamp=0) == headers
    )


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_each_scheme_accepts_what_its_sender_signs(scheme: SignatureScheme) -> None:
    headers = sign(scheme, BODY, "current-secret", timestamp=NOW)
    verified = verify_signature(scheme, headers, BODY, SECRET, now=NOW)
    assert not verified.matched_previous_secret


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_header_names_are_case_insensitive(scheme: SignatureScheme) -> None:
    """API Gateway (payload 2.0) lower-cases header names; other proxies upper-case them."""
    headers = sign(scheme, BODY, "current-secret", timestamp=NOW)
    verify_signature(scheme, {k.lower(): v for k, v in headers.items()}, BODY, SECRET, now=NOW)
    verify_signature(scheme, {k.upper(): v for k, v in headers.items()}, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_a_changed_body_is_rejected(scheme: SignatureScheme) -> None:
    headers = sign(scheme, BODY, "current-secret", timestamp=NOW)
    with pytest.raises(SignatureRejected, match="does not match the body"):
        verify_signature(scheme, headers, BODY.replace(b"NET-1", b"NET-2"), SECRET, now=NOW)


def test_a_reserialised_body_is_rejected() -> None:
    """Verifying a parsed and re-serialised body instead of the raw bytes fails (the pitfall)."""
    raw = b'{"issue":{"key":"NET-1"}}'
    headers = sign(SignatureScheme.JIRA, raw, "current-secret", timestamp=NOW)
    with pytest.raises(SignatureRejected):
        verify_signature(SignatureScheme.JIRA, headers, b'{"issue": {"key": "NET-1"}}', SECRET, now=NOW)


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_another_secret_is_rejected(scheme: SignatureScheme) -> None:
    headers = sign(scheme, BODY, "somebody-else", timestamp=NOW)
    with pytest.raises(SignatureRejected):
        verify_signature(scheme, headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_previous_secret_is_accepted_during_rotation(scheme: SignatureScheme) -> None:
    headers = sign(scheme, BODY, "previous-secret", timestamp=NOW)
    assert verify_signature(scheme, headers, BODY, SECRET, now=NOW).matched_previous_secret


def test_previous_secret_is_refused_once_removed() -> None:
    headers = sign(SignatureScheme.GITHUB, BODY, "previous-secret", timestamp=NOW)
    with pytest.raises(SignatureRejected):
        verify_signature(SignatureScheme.GITHUB, headers, BODY, SigningSecrets("current-secret"), now=NOW)


def test_generic_scheme_passes_when_any_v1_matches() -> None:
    """A sender mid-rotation sends one v1 per secret; one matching is enough."""
    old = sign(SignatureScheme.GENERIC, BODY, "retired", timestamp=NOW)["X-Signature"].split(",")[1]
    new = sign(SignatureScheme.GENERIC, BODY, "current-secret", timestamp=NOW)["X-Signature"]
    headers = {"X-Signature": f"{new.split(',')[0]},{old},{new.split(',')[1]}"}
    verify_signature(SignatureScheme.GENERIC, headers, BODY, SigningSecrets("current-secret"), now=NOW)


@pytest.mark.parametrize("scheme", [SignatureScheme.GENERIC, SignatureScheme.SLACK])
@pytest.mark.parametrize("skew", [-SIGNATURE_TOLERANCE_SECONDS - 1, SIGNATURE_TOLERANCE_SECONDS + 1])
def test_timestamps_beyond_the_tolerance_are_rejected(scheme: SignatureScheme, skew: int) -> None:
    """A replayed (old) or future-dated signature is refused even though the HMAC matches."""
    headers = sign(scheme, BODY, "current-secret", timestamp=NOW + skew)
    with pytest.raises(SignatureRejected, match="tolerance 300 s"):
        verify_signature(scheme, headers, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("scheme", [SignatureScheme.GENERIC, SignatureScheme.SLACK])
@pytest.mark.parametrize("skew", [-SIGNATURE_TOLERANCE_SECONDS, SIGNATURE_TOLERANCE_SECONDS])
def test_timestamps_within_the_tolerance_pass(scheme: SignatureScheme, skew: int) -> None:
    headers = sign(scheme, BODY, "current-secret", timestamp=NOW + skew)
    assert verify_signature(scheme, headers, BODY, SECRET, now=NOW).signed_at == NOW + skew


def test_a_changed_timestamp_is_rejected() -> None:
    """The timestamp is signed: moving it into the window breaks the signature."""
    value = sign(SignatureScheme.GENERIC, BODY, "current-secret", timestamp=NOW - 3600)["X-Signature"]
    moved = value.replace(f"t={NOW - 3600}", f"t={NOW}")
    with pytest.raises(SignatureRejected, match="does not match"):
        verify_signature(SignatureScheme.GENERIC, {"X-Signature": moved}, BODY, SECRET, now=NOW)


@pytest.mark.parametrize("secrets", [None, SigningSecrets(""), SigningSecrets("", "previous-secret")])
def test_fails_closed_without_a_secret(secrets: SigningSecrets | None) -> None:
    headers = sign(SignatureScheme.JIRA, BODY, "", timestamp=NOW)
    with pytest.raises(SigningSecretMissing, match="every delivery is refused"):
        verify_signature(SignatureScheme.JIRA, headers, BODY, secrets, now=NOW)


@pytest.mark.parametrize(
    "scheme,headers,reason",
    [
        (SignatureScheme.JIRA, {}, "header X-Hub-Signature is missing"),
        (SignatureScheme.GITHUB, {"X-Hub-Signature-256": "  "}, "header X-Hub-Signature-256 is missing"),
        (SignatureScheme.GITHUB, {"X-Hub-Signature-256": "sha1=" + "0" * 40}, "expected sha256="),
        (SignatureScheme.JIRA, {"X-Hub-Signature": "sha256=" + "g" * 64}, "expected sha256="),
        (SignatureScheme.JIRA, {"X-Hub-Signature": "sha256=" + "0" * 63}, "expected sha256="),
        (SignatureScheme.JIRA, {"X-Hub-Signature": "sha256=" + "\u0660" * 64}, "expected sha256="),
        (
            SignatureScheme.SLACK,
            {"X-Slack-Signature": "v0=" + "0" * 64},
            "X-Slack-Request-Timestamp is missing",
        ),
        (
            SignatureScheme.SLACK,
            {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "soon"},
            "must be Unix seconds",
        ),
        (SignatureScheme.GENERIC, {"X-Signature": "v1=" + "0" * 64}, "exactly one t=<unix>"),
        (SignatureScheme.GENERIC, {"X-Signature": f"t={NOW}"}, "at least one v1"),
        (SignatureScheme.GENERIC, {"X-Signature": f"t={NOW},v1=abc"}, "v1 must be 64 hex digits"),
        (SignatureScheme.GENERIC, {"X-Signature": "garbage"}, "expected t=<unix>,v1=<hex>"),
        (
            SignatureScheme.GENERIC,
            {"X-Signature": f"t={NOW}," + ",".join(["v1=" + "0" * 64] * 9)},
            "at most 8 v1 signatures",
        ),
    ],
)
def test_malformed_headers_are_rejected_with_the_reason(
    scheme: SignatureScheme, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(SignatureRejected) as raised:
        verify_signature(scheme, headers, BODY, SECRET, now=NOW)
    assert reason in raised.value.reason


def test_delivery_is_named_by_its_id_header_else_by_the_signature() -> None:
    headers = sign(SignatureScheme.JIRA, BODY, "current-secret", timestamp=NOW)
    by_signature = verify_signature(SignatureScheme.JIRA, headers, BODY, SECRET, now=NOW)
    expected = hmac.new(b"current-secret", BODY, hashlib.sha256).hexdigest()
    assert by_signature.delivery_id == f"sig:{expected}"
    named = {**headers, "x-atlassian-webhook-identifier": "d9b1f0c2"}
    assert verify_signature(SignatureScheme.JIRA, named, BODY, SECRET, now=NOW).delivery_id == "d9b1f0c2"
    custom = {**headers, "X-Request-Id": "abc-1"}
    verified = verify_signature(
        SignatureScheme.JIRA, custom, BODY, SECRET, now=NOW, delivery_id_header="X-Request-Id"
    )
    assert verified.delivery_id == "abc-1"


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every comparison of a signature goes through hmac.compare_digest (never ==)."""
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signatures.hmac, "compare_digest", spy)
    headers = sign(SignatureScheme.GITHUB, BODY, "previous-secret", timestamp=NOW)
    verify_signature(SignatureScheme.GITHUB, headers, BODY, SECRET, now=NOW)
    assert len(calls) == 2  # current and previous both compared, whichever matches

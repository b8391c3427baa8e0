"""The local OIDC issuer: discovery, keys, the code flow with PKCE, and tokens the gateway accepts."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from localcloud.clock import Clock
from localcloud.gateway import DefaultJwtVerifier, JwtAuthorizerConfig, JwtVerificationError
from localcloud.oidc import LocalOidcIssuer

REDIRECT = "http://127.0.0.1:3000/"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalOidcIssuer]:
    with LocalOidcIssuer() as running:
        yield running


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _token_request(issuer: LocalOidcIssuer, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{issuer.issuer_url}/token", data=urlencode(form).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _authorize(issuer: LocalOidcIssuer, verifier: str, **changes: str) -> dict[str, list[str]]:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": issuer.audience,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    status, headers, _ = _get(f"{issuer.issuer_url}/authorize?{urlencode(query)}")
    assert status == 302
    location = urlsplit(headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return parse_qs(location.query)


def _verifier() -> DefaultJwtVerifier:
    return DefaultJwtVerifier()  # finds the keys through the issuer's discovery document


def _config(issuer: LocalOidcIssuer) -> JwtAuthorizerConfig:
    return JwtAuthorizerConfig(name="OidcAuthorizer", issuer=issuer.issuer_url, audience=(issuer.audience,))


def test_discovery_names_the_endpoints_and_answers_cors(issuer: LocalOidcIssuer) -> None:
    status, headers, body = _get(f"{issuer.issuer_url}/.well-known/openid-configuration")
    document = json.loads(body)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert document["issuer"] == issuer.issuer_url
    assert document["token_endpoint"] == f"{issuer.issuer_url}/token"
    assert document["code_challenge_methods_supported"] == ["S256"]
    keys = json.loads(_get(document["jwks_uri"])[2])["keys"]
    assert [key["kty"] for key in keys] == ["RSA"] and all("d" not in key for key in keys)


def test_the_code_flow_gives_tokens_the_gateway_accepts_once(issuer: LocalOidcIssuer) -> None:
    issuer.sign_in_as("grace", "grace@example.com")
    answer = _authorize(issuer, "v" * 43)
    assert answer["state"] == ["s1"]
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": issuer.audience,
        "code_verifier": "v" * 43,
    }
    status, tokens = _token_request(issuer, form)
    assert status == 200, tokens
    claims = _verifier().verify(tokens["access_token"], _config(issuer))
    assert (claims["email"], claims["sub"], claims["iss"]) == (
        "grace@example.com",
        "grace",
        issuer.issuer_url,
    )
    assert _token_request(issuer, form) == (
        400,
        {"error": "invalid_grant", "error_description": "unknown, used or expired code"},
    )


def test_a_wrong_code_verifier_gets_no_token(issuer: LocalOidcIssuer) -> None:
    code = _authorize(issuer, "right-verifier-" + "x" * 30)["code"][0]
    status, answer = _token_request(
        issuer,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": issuer.audience,
            "code_verifier": "wrong-verifier-" + "x" * 30,
        },
    )
    assert (status, answer["error_description"]) == (400, "code_verifier does not match")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "someone-else"}, "unauthorized_client"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_authorization_requests_come_back_with_an_error(
    issuer: LocalOidcIssuer, change: dict[str, str], error: str
) -> None:
    assert _authorize(issuer, "v" * 43, **change)["error"] == [error]


def test_redirects_only_to_https_or_loopback(issuer: LocalOidcIssuer) -> None:
    query = urlencode({"redirect_uri": "http://evil.example/", "client_id": issuer.audience})
    status, _, body = _get(f"{issuer.issuer_url}/authorize?{query}")
    assert status == 400 and b"redirect_uri" in body


@pytest.mark.parametrize("ahead", [2 * 3600, 3 * 86400], ids=["hours", "days"])
def test_tokens_expire_on_the_emulated_clock(
    issuer: LocalOidcIssuer, emulated_clock: Clock, ahead: int
) -> None:
    """Given an hour-long token, when the clock moves hours or days on, the gateway refuses it; a token
    minted after the move carries emulated times and is accepted."""
    token = issuer.mint_token("ada", "ada@example.com", ttl=3600)
    assert _verifier().verify(token, _config(issuer))["sub"] == "ada"
    emulated_clock.advance(ahead)
    with pytest.raises(JwtVerificationError, match="expired"):
        _verifier().verify(token, _config(issuer))
    fresh = issuer.mint_token("ada", "ada@example.com", ttl=3600)
    claims = _verifier().verify(fresh, _config(issuer))
    assert abs(claims["iat"] - emulated_clock.timestamp()) < 5
    assert claims["exp"] - claims["iat"] == 3600


def test_an_hour_long_token_lasts_a_real_second_at_time_scale_3600(
    issuer: LocalOidcIssuer, emulated_clock: Clock
) -> None:
    emulated_clock.time_scale = 3600
    token = issuer.mint_token("ada", "ada@example.com", ttl=3600)
    assert _verifier().verify(token, _config(issuer))["sub"] == "ada"
    time.sleep(1.1)
    with pytest.raises(JwtVerificationError, match="expired"):
        _verifier().verify(token, _config(issuer))


def test_an_authorization_code_expires_on_the_emulated_clock(
    issuer: LocalOidcIssuer, emulated_clock: Clock
) -> None:
    code = _authorize(issuer, "v" * 43)["code"][0]
    emulated_clock.advance(issuer.code_ttl_seconds + 1)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": issuer.audience,
        "code_verifier": "v" * 43,
    }
    assert _token_request(issuer, form) == (
        400,
        {"error": "invalid_grant", "error_description": "unknown, used or expired code"},
    )

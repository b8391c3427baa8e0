"""A tiny OpenID Connect issuer on loopback, so the request form is used and tested signed in.

``LocalOidcIssuer`` generates an RSA key at start and serves:

- ``GET /.well-known/openid-configuration``: discovery (the gateway's ``DefaultJwtVerifier`` finds the
  keys through it, as API Gateway does);
- ``GET /jwks.json``: the public key;
- ``GET /authorize``: the authorization-code flow with PKCE (S256 only). There is no login page: the
  issuer signs in its current user (``sign_in_as``) at once and redirects back with a code;
- ``POST /token``: exchanges the code (single use, ``code_ttl_seconds``, PKCE verified) for an access
  and an ID token.

Discovery, keys and the token endpoint answer CORS requests from any origin (the page runs on the
gateway's origin). ``mint_token`` signs a token directly, for tests and scripts.

The issuer is part of the local cloud and keeps its clock (:func:`localcloud.clock.get_clock`): a
token's ``iat`` and ``exp`` are emulated times, and its lifetime and the code's are emulated seconds, as
the gateway judges them. At time scale 60 an hour-long token lasts a real minute; advancing the clock
past ``exp`` expires it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from localcloud.clock import get_clock

__all__ = ["DEFAULT_AUDIENCE", "LocalOidcIssuer", "SignedInUser"]

logger = logging.getLogger(__name__)

DEFAULT_AUDIENCE = "cvpn-request-form"
# RFC 6749's recommended longest: at the local cloud's default time scale a code still lasts the real
# seconds a page needs to load and exchange it.
CODE_TTL_SECONDS = 600
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class SignedInUser:
    """Who the issuer signs in at /authorize."""

    subject: str = "alice"
    email: str = "alice@example.com"
    name: str = "Alice Example"
    claims: tuple[tuple[str, Any], ...] = ()  # more claims of the ID token (groups, email_verified)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    user: SignedInUser
    expires_at: float


@dataclass
class LocalOidcIssuer:
    """An OIDC issuer on ``http://127.0.0.1:<port>``. Use as a context manager or ``start()``/``stop()``."""

    port: int = 0
    audience: str = DEFAULT_AUDIENCE
    user: SignedInUser = field(default_factory=SignedInUser)
    token_ttl_seconds: int = 3600
    code_ttl_seconds: int = CODE_TTL_SECONDS

    def __post_init__(self) -> None:
        self._key = RSAKey.generate_key(
            2048, parameters={"kid": f"local-{secrets.token_hex(4)}", "use": "sig", "alg": "RS256"}
        )
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.issued: list[dict[str, Any]] = []  # claims of every token issued, for tests

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalOidcIssuer:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _make_handler(self))
            self._server.daemon_threads = True
            self.port = int(self._server.server_address[1])
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="localcloud-oidc", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalOidcIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def issuer_url(self) -> str:
        """The issuer identifier (the ``iss`` of its tokens); no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def template_parameters(self) -> dict[str, str]:
        """The template parameters that point a deployed stack's JWT authorizer at this issuer."""
        return {"OidcIssuerUrl": self.issuer_url, "OidcAudience": self.audience}

    def sign_in_as(self, subject: str, email: str, name: str = "", **claims: Any) -> None:
        """Make /authorize sign in this user from now on (``claims`` go into their ID token)."""
        self.user = SignedInUser(
            subject=subject, email=email, name=name or subject, claims=tuple(claims.items())
        )

    # ------------------------------------------------------------------ documents and tokens
    def discovery(self) -> dict[str, Any]:
        base = self.issuer_url
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks.json",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["none"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def mint_token(
        self,
        subject: str,
        email: str | None,
        audience: str | None = None,
        ttl: int | None = None,
        **claims: Any,
    ) -> str:
        """A signed token for ``subject`` (``email`` left out when None); extra ``claims`` override."""
        now = int(get_clock().timestamp())
        payload: dict[str, Any] = {
            "iss": self.issuer_url,
            "sub": subject,
            "aud": audience or self.audience,
            "client_id": audience or self.audience,
            "username": subject,
            "scope": "openid email profile",
            "iat": now,
            "exp": now + (self.token_ttl_seconds if ttl is None else ttl),
            **({"email": email} if email is not None else {}),
            **claims,
        }
        with self._lock:
            self.issued.append(payload)
        return jwt.encode({"alg": "RS256", "kid": self._key.kid}, payload, self._key)

    # ------------------------------------------------------------------ the code flow
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Answer /authorize: a redirect with a code (or an error), or 400 when the redirect is unsafe."""
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or (
            target.scheme == "http" and target.hostname not in _LOOPBACK_HOSTS
        ):
            return _text(400, "redirect_uri: must be an https URL or an http URL on loopback")
        state = query.get("state", "")

        def redirect(params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
            separator = "&" if target.query else "?"
            return 302, {"Location": f"{redirect_uri}{separator}{urlencode(params)}"}, b""

        if query.get("client_id") != self.audience:
            return redirect(
                {"error": "unauthorized_client", "error_description": "unknown client_id", "state": state}
            )
        if query.get("response_type") != "code":
            return redirect({"error": "unsupported_response_type", "state": state})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return redirect(
                {
                    "error": "invalid_request",
                    "error_description": "PKCE with S256 is required",
                    "state": state,
                }
            )
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                client_id=self.audience,
                redirect_uri=redirect_uri,
                code_challenge=query["code_challenge"],
                scope=query.get("scope", "openid"),
                user=self.user,
                expires_at=get_clock().timestamp() + self.code_ttl_seconds,
            )
        return redirect({"code": code, "state": state})

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer /token: the tokens for a valid code, or an OAuth error."""
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < get_clock().timestamp():
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if form.get("client_id") != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "client_id or redirect_uri differ"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not secrets.compare_digest(challenge, grant.code_challenge):
            return 400, {"error": "invalid_grant", "error_description": "code_verifier does not match"}
        user = grant.user
        access_token = self.mint_token(user.subject, user.email, scope=grant.scope, token_use="access")
        id_token = self.mint_token(
            user.subject, user.email, **{"name": user.name, "token_use": "id", **dict(user.claims)}
        )
        return 200, {
            "access_token": access_token,
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": self.token_ttl_seconds,
            "scope": grant.scope,
        }


def _text(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, message.encode()


_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "content-type",
}


def _make_handler(issuer: LocalOidcIssuer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "localcloud-oidc"

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: dict[str, Any]) -> None:
            self._send(status, {"Content-Type": "application/json", **_CORS}, json.dumps(document).encode())

        def do_OPTIONS(self) -> None:
            self._send(204, {**_CORS, "Access-Control-Max-Age": "600"}, b"")

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            if split.path == "/.well-known/openid-configuration":
                self._json(200, issuer.discovery())
            elif split.path == "/jwks.json":
                self._json(200, issuer.jwks())
            elif split.path == "/authorize":
                self._send(*issuer.authorize(dict(parse_qsl(split.query))))
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            status, document = issuer.token(dict(parse_qsl(body)))
            self._json(status, document)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("oidc: " + format, *args)

    return _Handler

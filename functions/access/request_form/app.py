"""GET /: the request form, a public static page (no authorizer) that carries no secrets.

The page signs the person in with the OIDC issuer (authorization code + PKCE, a public client) and
calls the API with the bearer token. Its only configuration is public: the issuer, the client id and
the scopes. Script and style are inlined under a per-response CSP nonce, so the page loads nothing
from anywhere else.
"""

import html
import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.settings import get_settings
from cvpn_shared.access.sign_in_page import with_sign_in
from cvpn_shared.core.observability import logger

STATIC = Path(__file__).resolve().parent / "static"


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    return (
        (STATIC / "index.html").read_text(),
        (STATIC / "app.css").read_text(),
        with_sign_in((STATIC / "app.js").read_text()),
    )


def render_page(nonce: str) -> tuple[str, str]:
    """The page and its Content-Security-Policy for one response."""
    settings = get_settings()
    page, style, script = _assets()
    config = {
        "issuer": settings.oidc_issuer_url.rstrip("/"),
        "clientId": settings.oidc_client_id,
        "scope": settings.oidc_scopes,
    }
    # JSON inside <script type="application/json">: "<" escaped so no "</script>" can close it.
    config_json = json.dumps(config).replace("<", "\\u003c")
    issuer = urlsplit(settings.oidc_issuer_url)
    issuer_origin = f"{issuer.scheme}://{issuer.netloc}" if issuer.scheme and issuer.netloc else ""
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'nonce-{nonce}'",
            # the issuer's discovery and token endpoints (Cognito's token endpoint is on its https domain)
            f"connect-src 'self' https: {issuer_origin}".strip(),
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    body = (
        page.replace("{{NONCE}}", html.escape(nonce, quote=True))
        .replace("{{CONFIG_JSON}}", config_json)
        .replace("{{STYLE}}", style)
        .replace("{{SCRIPT}}", script)
    )
    return body, policy


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body, policy = render_page(secrets.token_urlsafe(16))
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": policy,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
        "body": body,
    }

"""An approver's link: GET shows the request and asks to confirm; only the POST of that page decides.

GET  /approvals/{approval_id}?decision=...&expires=...&signature=...  (public: links travel by e-mail)
     checks the link and shows the request; decides nothing, so scanners and previews change nothing.
POST /approvals/{approval_id}  {decision, expires, signature}  (behind the API's JWT authorizer)
     decides once, for a signed-in member of the approver group who is not the requester.

The rules live in ``cvpn_shared.access.approval``.
"""

import json
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.approval import DecisionPage, approval_page, decide
from cvpn_shared.access.sign_in_page import with_sign_in
from cvpn_shared.access.wiring import (
    approval_context,
    approval_link_secret,
    approval_records,
    task_callbacks,
)
from cvpn_shared.core.observability import logger, metrics

app = APIGatewayHttpResolver()
STATIC = Path(__file__).resolve().parent / "static"
_LINK_FIELDS = ("decision", "expires", "signature")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@lru_cache(maxsize=1)
def _script() -> str:
    return with_sign_in((STATIC / "approve.js").read_text())


@app.get("/approvals/<approval_id>")
def show_approval(approval_id: str) -> Response:
    page = approval_page(
        approval_id,
        dict(app.current_event.query_string_parameters or {}),
        records=approval_records(),
        context=approval_context(),
        link_secret=approval_link_secret(),
        now=int(time.time()),
    )
    metrics.add_metric(name=f"ApprovalPage-{page.status}", unit="Count", value=1)
    nonce = secrets.token_urlsafe(16)
    policy = "; ".join(
        [
            "default-src 'none'",
            "style-src 'unsafe-inline'",
            f"script-src 'nonce-{nonce}'",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return Response(
        status_code=page.status,
        content_type="text/html; charset=utf-8",
        body=page.html(nonce, _script()),
        headers={**_HEADERS, "Content-Security-Policy": policy},
    )


def _link_fields(body: str | None) -> dict[str, str]:
    """The signed link's fields from a JSON or form-encoded body (anything else gives none)."""
    text = (body or "").strip()
    raw: Any
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError:
            raw = {}
    else:
        raw = dict(parse_qsl(text))
    if not isinstance(raw, dict):
        return {}
    return {name: raw[name] for name in _LINK_FIELDS if isinstance(raw.get(name), str)}


@app.post("/approvals/<approval_id>")
def decide_approval(approval_id: str) -> Response:
    event = app.current_event
    http = event.request_context.http
    claims = dict(event.request_context.authorizer.jwt_claim or {})
    page: DecisionPage = decide(
        approval_id,
        _link_fields(event.decoded_body),
        records=approval_records(),
        tasks=task_callbacks(),
        context=approval_context(),
        link_secret=approval_link_secret(),
        claims=claims,
        now=int(time.time()),
        decided_via=f"confirmed from {http.source_ip} ({http.user_agent})",
    )
    metrics.add_metric(name=f"ApprovalDecision-{page.status}", unit="Count", value=1)
    logger.info(
        "approval decision",
        extra={"status": page.status, "title": page.title, "approver_sub": claims.get("sub", "")},
    )
    return Response(
        status_code=page.status,
        content_type="application/json",
        body=json.dumps(page.as_json()),
        headers=_HEADERS,
    )


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""`cvpn request submit`: sign a webhook payload as a ticket system would and send it to the intake;
`cvpn request reopen`: let a ticket a webhook started start once more.

    cvpn request submit events/webhooks/jira-issue-updated.json --source jira --secret "$SECRET" \\
        [--base-url https://abc123.execute-api.eu-west-1.amazonaws.com] [--scheme jira] [--delivery-id ID]
    cvpn request submit events/webhooks/jira-issue-updated.json --source jira --local

The file's bytes are sent exactly as they are (the signature covers the raw body). The scheme follows
the source name (jira, github, slack; anything else is the generic ``X-Signature: t=..,v1=..``) unless
``--scheme`` says otherwise. The secret may come from ``CVPN_WEBHOOK_SECRET`` instead of ``--secret``.
``--local`` sends to the API of the local cloud `cvpn local up` runs, signed with the secret it gave
the example sources.

    cvpn request reopen NET-2001 --source jira [--stack-name S] [--local | --endpoint-url URL] [--region R]

A ticket starts once; a delivery for it starts it again only when the ticket system re-opened it (the
source's ``reopen_marker``) or an administrator granted one more start with ``reopen``: the grant is
recorded on the ticket (``IntakeTicketsTable``) and used by the ticket's next delivery.
The command line ships without the product's layer, so the schemes are written out here too; a unit
test checks that the layer's verifier accepts what this signs.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

__all__ = ["SCHEMES", "grant_reopen", "register", "signed_headers", "submit_webhook"]

DEFAULT_BASE_URL = "http://127.0.0.1:3000"  # `cvpn local up` serves the HTTP API here
SECRET_ENVIRONMENT = "CVPN_WEBHOOK_SECRET"
SCHEMES = ("jira", "github", "slack", "generic")
_DELIVERY_HEADERS = {
    "jira": "X-Atlassian-Webhook-Identifier",
    "github": "X-GitHub-Delivery",
    "generic": "X-Request-Id",
}


class SubmitError(Exception):
    """A user-facing error of `cvpn request submit` (exit status 2)."""


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    scheme: str, body: bytes, secret: str, *, timestamp: int, delivery_id: str
) -> dict[str, str]:
    """The headers a sender of ``scheme`` sends with ``body``: signature and delivery id."""
    if scheme == "jira":
        headers = {"X-Hub-Signature": "sha256=" + _hmac(secret, body)}
    elif scheme == "github":
        headers = {"X-Hub-Signature-256": "sha256=" + _hmac(secret, body)}
    elif scheme == "slack":
        signature = _hmac(secret, f"v0:{timestamp}:".encode() + body)
        headers = {"X-Slack-Signature": f"v0={signature}", "X-Slack-Request-Timestamp": str(timestamp)}
    elif scheme == "generic":
        headers = {"X-Signature": f"t={timestamp},v1=" + _hmac(secret, f"{timestamp}.".encode() + body)}
    else:
        raise SubmitError(f"--scheme: must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if scheme in _DELIVERY_HEADERS:
        headers[_DELIVERY_HEADERS[scheme]] = delivery_id
    return headers


def submit_webhook(
    base_url: str, source: str, body: bytes, headers: dict[str, str], *, timeout: float = 30.0
) -> tuple[int, Any]:
    """POST the signed body to ``{base_url}/webhooks/{source}``; the status and the decoded answer."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/webhooks/{source}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cvpn-cli", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as error:
        status, raw = int(error.code), error.read()
    except urllib.error.URLError as error:
        raise SubmitError(
            f"--base-url: nothing answers at {base_url} ({error.reason}); is the local cloud running "
            "(`cvpn local up`)? For a stack on AWS give its IntakeApiUrl output with --base-url"
        ) from error
    except OSError as error:  # a reset or a timeout after the connection was made
        raise SubmitError(f"--base-url: {base_url} did not answer ({error}); try again") from error
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def cmd_submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        body = path.read_bytes()
    except OSError as error:
        raise SubmitError(f"FILE: cannot read {path}: {error.strerror}") from error
    from cvpn.common import read_local_state

    state = read_local_state() if args.local or not args.base_url else None
    if args.local and (state is None or not state.api_url):
        raise SubmitError(
            "--local: no local cloud serving the intake API is running; start one with `cvpn local up`"
        )
    base_url = args.base_url or (state.api_url if state and state.api_url else DEFAULT_BASE_URL)
    secret = args.secret or os.environ.get(SECRET_ENVIRONMENT, "")
    if not secret and args.local and state is not None:
        secret = state.webhook_secret or ""
    if not secret:
        local = "; with --local, a local cloud started without --empty" if args.local else ""
        raise SubmitError(f"--secret: required (or set {SECRET_ENVIRONMENT}{local})")
    scheme = args.scheme or (args.source if args.source in SCHEMES else "generic")
    headers = signed_headers(
        scheme,
        body,
        secret,
        timestamp=int(time.time()),
        delivery_id=args.delivery_id or str(uuid.uuid4()),
    )
    status, answer = submit_webhook(base_url, args.source, body, headers)
    print(f"HTTP {status}")
    print(json.dumps(answer, indent=2) if not isinstance(answer, str) else answer)
    return 0 if 200 <= status < 300 else 1


def grant_reopen(dynamodb: Any, table_name: str, source: str, ticket: str) -> dict[str, Any]:
    """Grant the ticket one more start; the ticket's record after it. SubmitError when no webhook ever
    started the ticket (nothing to re-open)."""
    from botocore.exceptions import ClientError

    grant = f"admin:{uuid.uuid4()}"
    try:
        answer = dynamodb.update_item(
            TableName=table_name,
            Key={"ticket_key": {"S": f"{source}#{ticket}"}},
            UpdateExpression="SET reopen_granted = :grant",
            ConditionExpression="attribute_exists(ticket_key)",
            ExpressionAttributeValues={":grant": {"S": grant}},
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise SubmitError(
                f"TICKET: no webhook from source {source!r} started ticket {ticket!r}; nothing to re-open"
            ) from None
        raise SubmitError(f"{table_name}: {error.response.get('Error', {}).get('Message', error)}") from None
    item = answer.get("Attributes", {})
    return {
        "source": source,
        "ticket": ticket,
        "run": int(item.get("run", {}).get("N", "1")),
        "execution_arn": item.get("execution_arn", {}).get("S", ""),
        "reopen_granted": grant,
    }


def cmd_reopen(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from cvpn.common import aws_client

    if not args.ticket.strip():
        raise SubmitError("TICKET: empty; give the ticket key the webhook started, e.g. NET-2001")
    try:
        stacks = aws_client(args, "cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        table = outputs.get("IntakeTicketsTableName")
        if not table:
            raise SubmitError(f"--stack-name: {args.stack_name} has no IntakeTicketsTableName output")
        granted = grant_reopen(aws_client(args, "dynamodb"), table, args.source, args.ticket)
    except ClientError as error:
        raise SubmitError(
            f"--stack-name {args.stack_name}: {error.response.get('Error', {}).get('Message', error)}"
        ) from None
    except BotoCoreError as error:
        raise SubmitError(f"AWS: {error}") from None
    print(
        f"ticket {args.ticket} of {args.source} may start once more: its next signed delivery starts run "
        f"{granted['run'] + 1} (run {granted['run']} was {granted['execution_arn'] or 'not recorded'})"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except SubmitError as error:
        print(f"cvpn: error: {error}", file=sys.stderr)
        return 2


def register(subparsers: Any) -> None:
    """Add `cvpn request submit` and `cvpn request reopen` to the command line's subparsers."""
    from cvpn.common import add_aws_options

    request = subparsers.add_parser("request", help="requests arriving from ticket systems")
    request_sub = request.add_subparsers(dest="request_command", required=True)
    submit = request_sub.add_parser(
        "submit", help="sign a webhook payload as a ticket system would and POST it to /webhooks/{source}"
    )
    submit.add_argument("file", metavar="FILE", help="the webhook payload (sent byte for byte)")
    submit.add_argument(
        "--source", required=True, help="the configured source, e.g. jira, github, servicenow"
    )
    submit.add_argument("--secret", help=f"the source's signing secret (default: ${SECRET_ENVIRONMENT})")
    submit.add_argument(
        "--base-url",
        help=f"the intake API (default: the local cloud `cvpn local up` runs, else {DEFAULT_BASE_URL})",
    )
    submit.add_argument(
        "--local",
        action="store_true",
        help="the local cloud `cvpn local up` runs: its API, and the secret it gave the example sources",
    )
    submit.add_argument("--scheme", choices=SCHEMES, help="signature scheme (default: from the source name)")
    submit.add_argument("--delivery-id", help="delivery id header value (default: a new UUID)")
    submit.set_defaults(func=_run, run=cmd_submit)

    reopen = request_sub.add_parser(
        "reopen", help="let a ticket a webhook started start once more (its next delivery starts it)"
    )
    reopen.add_argument("ticket", metavar="TICKET", help="the ticket key, e.g. NET-2001")
    reopen.add_argument("--source", required=True, help="the source that started it, e.g. jira")
    add_aws_options(reopen)
    reopen.set_defaults(func=_run, run=cmd_reopen)

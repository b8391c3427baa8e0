"""``POST /webhooks/{source}``: a ticket system's signed delivery becomes one intake execution.

Every caller is unauthenticated until its signature is checked, so the checks that come before cost
no AWS call a caller can multiply. In order, each failure answering at once and starting nothing:

1. the source is a name of the fixed pattern that is configured: else 404 (a broken configuration is
   500, and logged); the configuration is read as one bounded catalog, never per name asked for;
2. the raw body (``isBase64Encoded`` bodies decoded) is at most ``max_body_bytes``: else 413;
3. the signature matches the raw body with the source's current or previous secret: else 401
   (fail closed without a secret); a mismatch reads the secret again at most once a minute;
4. the body is JSON: else 400; a delivery the source's ``accept_when`` leaves out: 200, ignored;
5. the mapped request is valid: else 422 with every field and why (a grants source's ticket is also
   told, see below, as it is of a 409 or 429 further on);
6. the ticket was never started, or this delivery re-opens it (``reopen_marker`` gives a marker no
   earlier start carried): else 200, ``already-started``, with the latest execution, nothing written;
7. the delivery was not received before (conditional write, TTL of days): else 200 with the original;
8. the ticket's run is claimed in the permanent ticket record (conditional write) and its execution,
   named after source + ticket key (+ run), starts: 202.

The ticket record, not the execution name, is what keeps a replayed delivery from starting again: an
execution name is free again 90 days after it closed, and Jira and GitHub sign no timestamp.

A signed delivery of a grants source that starts nothing is also answered on its ticket, when the
payload names the ticket and its callback: no valid request (422), a comment naming each field and
why; a valid one not started, too many of its reporter's requests waiting (429: which, the limit) or
its key colliding with another ticket's execution name (409). Each is sent once per signed body and
answer (a replay finds the claim ``<source>#<invalid|too-many-pending|name-conflict>#<SHA-256 of the
body>`` and sends nothing, whatever delivery id it carries: Jira and GitHub do not sign that header,
and Jira Cloud sends a 409 or 429 again for a while).
Only a delivery whose signature matched gets there, so nobody else can make the intake comment on a
ticket. The webhook function holds no callback credentials: the ticket callback function posts it.

A request it starts is recorded in the same submission store as the request form's, so its requester
follows it at ``GET /requests/{id}`` (signed in) as a form request is followed. The answer gives the
ticket system no status URL: it could not sign in to read it; the ticket gets the result as a comment.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cvpn_shared.access.callback import INVALID_REQUEST_NOTICE, NOT_STARTED_NOTICE
from cvpn_shared.access.form import TooManyPending
from cvpn_shared.access.grants.models import GrantInvalid
from cvpn_shared.access.mapping import (
    MappingFailed,
    accepts,
    callback_target,
    map_access_request,
    map_request,
    reopen_marker,
    ticket_key,
)
from cvpn_shared.access.signatures import (
    SignatureRejected,
    SigningSecretMissing,
    SigningSecrets,
    VerifiedDelivery,
    verify_signature,
)
from cvpn_shared.access.sources import SOURCE_NAME, SourceConfig, SourceConfigInvalid, parse_source_config
from cvpn_shared.access.start import ExecutionNameConflict, StartResult, status_url_path
from cvpn_shared.access.ticket_request import TicketAccessRequest

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "RESUME_STARTING_SECONDS",
    "UNKNOWN_SOURCE",
    "DeliveryLedger",
    "GrantStarter",
    "RequestStarter",
    "SecretReader",
    "SourceReader",
    "SubmissionRecorder",
    "TicketLedger",
    "TicketNotifier",
    "WebhookAnswer",
    "WebhookIntake",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 256 * 1024
UNKNOWN_SOURCE = "unknown"  # the metric dimension of every name that is not a configured source
# A ticket claimed but not known to have started (the function stopped in between) is started again
# by the sender's retry within this time; after it, only a re-open starts the ticket.
RESUME_STARTING_SECONDS = 86400


class SourceReader(Protocol):
    def get(self, source: str) -> Any: ...


class SecretReader(Protocol):
    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None: ...


class DeliveryLedger(Protocol):
    def claim(self, record: dict[str, Any], *, now: int) -> dict[str, Any] | None: ...

    def release(self, delivery_key: str) -> None: ...


class TicketLedger(Protocol):
    """The permanent record of the tickets started (see dal/tickets.py)."""

    def get(self, ticket_key: str) -> dict[str, Any] | None: ...

    def claim(self, record: dict[str, Any], *, previous_run: int) -> bool: ...

    def mark_started(self, ticket_key: str, run: int) -> None: ...

    def release(self, ticket_key: str, run: int, previous: dict[str, Any] | None) -> None: ...


class TicketNotifier(Protocol):
    """Hands a notice to the function that posts to tickets (``dal/callback_invoker.py``)."""

    def notify(self, notice: dict[str, Any]) -> None: ...


class SubmissionRecorder(Protocol):
    """Where requests are recorded for ``GET /requests/{id}`` (the request form's SubmissionStore)."""

    def put(self, submission: dict[str, Any], *, replace: bool = False) -> None: ...


class RequestStarter(Protocol):
    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str: ...

    def start(
        self,
        source: str,
        request: dict[str, Any],
        approval_required: bool,
        callback: dict[str, Any] | None,
        run: int = 1,
    ) -> StartResult: ...


class GrantStarter(Protocol):
    """Starts a grants source's ticket as an access request (``ticket_grants.TicketGrantStarter``)."""

    def execution_arn(self, source: str, request_id: str, run: int = 1) -> str: ...

    def start(
        self, source: str, access: TicketAccessRequest, callback: dict[str, Any] | None, run: int = 1
    ) -> StartResult: ...


@dataclass(frozen=True)
class WebhookAnswer:
    """The HTTP answer: status, JSON body, extra headers, an outcome name for metrics, and the source
    as a metric dimension (a configured source's name, else ``UNKNOWN_SOURCE``: never what was sent)."""

    status: int
    body: dict[str, Any]
    outcome: str
    headers: dict[str, str] = field(default_factory=dict)
    source: str = UNKNOWN_SOURCE
    # why a valid ticket was not started, for its comment (never sent in the HTTP answer)
    notice: dict[str, Any] | None = None


def _error(status: int, outcome: str, message: str, **extra: Any) -> WebhookAnswer:
    return WebhookAnswer(status, {"message": message, **extra}, outcome)


def _started(result: StartResult, *, duplicate: bool) -> WebhookAnswer:
    # No status URL: the ticket system holds no sign-in for the request API, and a bearer link to the
    # status would travel in its delivery logs. The result is posted to the ticket when the request ends.
    body = {
        "request_id": result.request_id,
        "execution_arn": result.execution_arn,
        "result": "posted to the ticket when the request ends",
    }
    if duplicate:
        return WebhookAnswer(200, {**body, "duplicate": True}, "duplicate")
    return WebhookAnswer(202, body, "started")


def _already_started(source: str, ticket: dict[str, Any]) -> WebhookAnswer:
    request_id = str(ticket.get("request_id") or "")
    return WebhookAnswer(
        200,
        {
            "request_id": request_id,
            "execution_arn": str(ticket.get("execution_arn") or ""),
            "result": "posted to the ticket when the request ends",
            "duplicate": True,
            "message": (
                f"ticket {request_id!r} of {source} was started before; a delivery starts it again "
                "only when the ticket is re-opened"
            ),
        },
        "already-started",
    )


def _mapped_from(error: dict[str, Any], config: SourceConfig) -> dict[str, Any]:
    """A refusal of the profile's (``access_groups[1]``, ``hours``) with the expression it came from."""
    name = str(error.get("field", "")).split("[", 1)[0].split(".", 1)[0]
    if name in config.fields:
        return {**error, "mapped_from": config.fields[name]}
    if name in config.defaults:
        return {**error, "mapped_from": "defaults"}
    return dict(error)


_MAX_NOTICE_ERRORS = 50  # an asynchronous invocation's payload is bounded; a comment lists fewer
_MAX_NOTICE_CHARS = 300
_MAX_NOTICE_PENDING = 100


def _bounded(error: dict[str, Any]) -> dict[str, str]:
    """An error as a notice carries it: its field, message and origin, each cut to a length."""
    return {
        name: str(error[name])[:_MAX_NOTICE_CHARS]
        for name in ("field", "message", "mapped_from")
        if error.get(name) is not None
    }


def _invalid_notice(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "notice": INVALID_REQUEST_NOTICE,
        "errors": [_bounded(error) for error in errors[:_MAX_NOTICE_ERRORS]],
    }


def _signing_secrets(value: dict[str, Any] | None) -> SigningSecrets | None:
    if not value or not isinstance(value.get("current"), str) or not value["current"]:
        return None
    previous = value.get("previous")
    return SigningSecrets(value["current"], previous if isinstance(previous, str) and previous else None)


@dataclass(frozen=True)
class _Plan:
    """Which run of a ticket a delivery starts, and what the ticket record was before."""

    ticket_key: str
    run: int
    previous: dict[str, Any] | None
    resume: bool  # the run was claimed before and may not have started: start it (idempotent by name)
    new_markers: tuple[str, ...]  # recorded with the run: never a re-open again


@dataclass
class WebhookIntake:
    """Verifies, maps, deduplicates and starts; every dependency is handed in (see wiring.py)."""

    sources: SourceReader
    secrets: SecretReader
    deliveries: DeliveryLedger
    starter: RequestStarter
    submissions: SubmissionRecorder
    tickets: TicketLedger
    delivery_ttl_days: int = 7
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    clock: Callable[[], float] = time.time
    grants: GrantStarter | None = None  # for sources of kind grants
    notices: TicketNotifier | None = None  # tells a grants source's ticket why it made no request

    def receive(
        self, source: str, headers: Mapping[str, str], body: str | bytes | None, *, is_base64_encoded: bool
    ) -> WebhookAnswer:
        """Answer one delivery (see the module docstring for the order of checks)."""
        config = self._source(source)
        if isinstance(config, WebhookAnswer):
            return config
        answer = self._receive(source, config, headers, body, is_base64_encoded)
        return dataclasses.replace(answer, source=source)

    def _receive(
        self,
        source: str,
        config: SourceConfig | None,
        headers: Mapping[str, str],
        body: str | bytes | None,
        is_base64_encoded: bool,
    ) -> WebhookAnswer:
        if config is None:
            return _error(500, "bad-configuration", f"the configuration of source {source!r} is invalid")
        raw = self._raw_body(body, is_base64_encoded)
        if isinstance(raw, WebhookAnswer):
            return raw
        delivery = self._verify(source, config, headers, raw)
        if isinstance(delivery, WebhookAnswer):
            return delivery
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError) as error:
            return _error(400, "not-json", f"body: not JSON ({str(error)[:200]})")
        try:
            if not accepts(config, payload):
                return WebhookAnswer(
                    200,
                    {"ignored": True, "message": f"not a request for {source}: accept_when is false"},
                    "ignored",
                )
            access: TicketAccessRequest | None = None
            if config.grants:
                access = map_access_request(config, payload)
                request: dict[str, Any] = {"request_id": access.request_id}
            else:
                request = map_request(config, payload)
            callback = callback_target(config, payload, str(request["request_id"]))
            marker = reopen_marker(config, payload)
        except MappingFailed as error:
            answer = _error(
                422, "invalid-request", "the payload does not make a valid request", errors=error.errors
            )
            if config.grants and error.errors:
                invalid = _invalid_notice(error.errors)
                self._tell_ticket(source, config, delivery, raw, payload, None, "invalid", invalid)
            return answer
        except RecursionError:
            return _error(400, "not-json", "body: nested too deeply")
        if access is not None and self.grants is None:
            logger.error(
                "webhook source %s: asks for grants, but this intake starts no access requests", source
            )
            return _error(500, "bad-configuration", f"source {source!r} cannot start access requests here")
        answer = self._deduplicate_and_start(source, config, delivery, request, callback, marker, access)
        if access is not None and answer.status == 422 and answer.body.get("errors"):
            invalid = _invalid_notice(answer.body["errors"])
            self._tell_ticket(source, config, delivery, raw, payload, access.request_id, "invalid", invalid)
        elif access is not None and answer.notice is not None:
            not_started = {"notice": NOT_STARTED_NOTICE, **answer.notice}
            self._tell_ticket(
                source, config, delivery, raw, payload, access.request_id, answer.outcome, not_started
            )
        return answer

    # ------------------------------------------------------------------ steps
    def _raw_body(self, body: str | bytes | None, is_base64_encoded: bool) -> bytes | WebhookAnswer:
        if body is None:
            return b""
        if isinstance(body, bytes):
            raw = body
        elif is_base64_encoded:
            if len(body) > (self.max_body_bytes * 4) // 3 + 4:
                return self._too_large()
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return _error(400, "bad-encoding", "body: isBase64Encoded is true but the body is not base64")
        else:
            if len(body) > self.max_body_bytes:  # each character is at least one byte
                return self._too_large()
            raw = body.encode("utf-8", "surrogatepass")
        return self._too_large() if len(raw) > self.max_body_bytes else raw

    def _too_large(self) -> WebhookAnswer:
        return _error(413, "too-large", f"body: larger than {self.max_body_bytes} bytes")

    def _source(self, source: str) -> SourceConfig | WebhookAnswer | None:
        """The source's configuration; None when it is configured but invalid (logged); an answer
        (404) when the name is not a configured source. Names off the pattern are never looked up."""
        if not isinstance(source, str) or not SOURCE_NAME.fullmatch(source):
            shown = source[:64] if isinstance(source, str) else ""
            return _error(
                404,
                "unknown-source",
                f"source: no webhook source named {shown!r} is configured "
                "(a name is 1 to 32 of a-z, 0-9 and -, starting with a letter or digit)",
            )
        raw_config = self.sources.get(source)
        if raw_config is None:
            return _error(404, "unknown-source", f"source: no webhook source named {source!r} is configured")
        try:
            return parse_source_config(source, raw_config)
        except SourceConfigInvalid as error:
            logger.error("webhook source %s: %s", source, error)
            return None

    def _verify(
        self, source: str, config: SourceConfig, headers: Mapping[str, str], raw: bytes
    ) -> VerifiedDelivery | WebhookAnswer:
        secrets = _signing_secrets(self.secrets.get_json(config.secret_id))
        try:
            return self._check(config, headers, raw, secrets)
        except SigningSecretMissing as missing:
            logger.error(
                "webhook source %s: secret %s is missing or has no 'current'", source, config.secret_id
            )
            return _error(401, "no-secret", missing.reason)
        except SignatureRejected as rejected:
            reason = rejected.reason
        # Rotated since it was cached? The reader reads it again at most once a minute per secret.
        refreshed = _signing_secrets(self.secrets.get_json(config.secret_id, refresh=True))
        if refreshed is not None and refreshed != secrets:
            try:
                return self._check(config, headers, raw, refreshed)
            except SignatureRejected as retried:
                reason = retried.reason
        logger.warning("webhook source %s: signature rejected: %s", source, reason)
        return _error(401, "bad-signature", reason)

    def _check(
        self, config: SourceConfig, headers: Mapping[str, str], raw: bytes, secrets: SigningSecrets | None
    ) -> VerifiedDelivery:
        return verify_signature(
            config.signature,
            headers,
            raw,
            secrets,
            now=self.clock(),
            delivery_id_header=config.delivery_id_header,
        )

    def _plan(self, source: str, request_id: str, marker: str | None, now: int) -> _Plan | WebhookAnswer:
        """The run this delivery starts, or the answer to a ticket already started (nothing written)."""
        ticket_key = f"{source}#{request_id}"
        ticket = self.tickets.get(ticket_key)
        if ticket is None:
            return _Plan(ticket_key, 1, None, resume=False, new_markers=(marker,) if marker else ())
        run = int(ticket.get("run") or 1)
        claimed_at = int(ticket.get("claimed_at") or 0)
        if ticket.get("state") != "started" and now - claimed_at < RESUME_STARTING_SECONDS:
            return _Plan(ticket_key, run, ticket, resume=True, new_markers=())
        used = set(ticket.get("markers") or [])
        # An administrator's grant (``cvpn request reopen``) is a marker too, used by the next start.
        granted = str(ticket.get("reopen_granted") or "")
        new_markers = tuple(m for m in dict.fromkeys((marker or "", granted)) if m and m not in used)
        if new_markers:
            logger.info(
                "webhook source %s: ticket %s re-opened (%s): run %d",
                source,
                request_id,
                ", ".join(new_markers),
                run + 1,
            )
            return _Plan(ticket_key, run + 1, ticket, resume=False, new_markers=new_markers)
        logger.info(
            "webhook source %s: ticket %s was started before and is not re-opened", source, request_id
        )
        return _already_started(source, ticket)

    def _deduplicate_and_start(
        self,
        source: str,
        config: SourceConfig,
        delivery: VerifiedDelivery,
        request: dict[str, Any],
        callback: dict[str, Any] | None,
        marker: str | None,
        access: TicketAccessRequest | None = None,
    ) -> WebhookAnswer:
        request_id = str(request["request_id"])
        now = int(self.clock())
        plan = self._plan(source, request_id, marker, now)
        if isinstance(plan, WebhookAnswer):
            return plan
        starter = self.grants if access is not None and self.grants is not None else self.starter
        execution_arn = starter.execution_arn(source, request_id, plan.run)
        delivery_key = f"{source}#{delivery.delivery_id}"
        claim = {
            "delivery_key": delivery_key,
            "source": source,
            "request_id": request_id,
            "execution_arn": execution_arn,
            "received_at": now,
            "expires_at": now + self.delivery_ttl_days * 86400,
        }
        original = self.deliveries.claim(claim, now=now)
        if original is not None:
            logger.info("webhook source %s: delivery %s received before", source, delivery.delivery_id)
            original_id = str(original.get("request_id") or request_id)
            return _started(
                StartResult(
                    original_id,
                    str(original.get("execution_arn") or execution_arn),
                    status_url_path(original_id),
                    duplicate=True,
                ),
                duplicate=True,
            )
        if not plan.resume and not self._claim_ticket(source, request_id, plan, execution_arn, now):
            ticket = self.tickets.get(plan.ticket_key) or {"request_id": request_id, "execution_arn": ""}
            return _already_started(source, ticket)  # another delivery claimed it a moment ago
        try:
            if access is not None and self.grants is not None:
                result = self.grants.start(source, access, callback, plan.run)
            else:
                result = self.starter.start(source, request, config.approval_required, callback, plan.run)
        except ExecutionNameConflict as error:
            self._release(delivery_key, plan)
            conflict = {
                "reason": "name-conflict",
                "other_request_id": error.other_request_id[:_MAX_NOTICE_CHARS],
            }
            return dataclasses.replace(_error(409, "name-conflict", str(error)), notice=conflict)
        except GrantInvalid as error:
            # Nothing was started: the ticket, once fixed, is sent again and starts then.
            self._release(delivery_key, plan)
            return _error(
                422,
                "invalid-request",
                "the ticket does not make a valid access request",
                errors=[_mapped_from(item, config) for item in error.errors],
            )
        except TooManyPending as error:
            self._release(delivery_key, plan)
            waiting = {
                "reason": "too-many-pending",
                "pending": [item[:_MAX_NOTICE_CHARS] for item in error.pending[:_MAX_NOTICE_PENDING]],
                "limit": error.limit,
            }
            return dataclasses.replace(_error(429, "too-many-pending", str(error)), notice=waiting)
        except Exception:
            self._release(delivery_key, plan)  # let the sender's retry start it
            raise
        self.tickets.mark_started(plan.ticket_key, plan.run)
        if not result.duplicate and access is None:  # an access request records itself
            self._record(source, request, result, now, replace=plan.run > 1)
        return _started(result, duplicate=result.duplicate)

    def _tell_ticket(
        self,
        source: str,
        config: SourceConfig,
        delivery: VerifiedDelivery,
        raw: bytes,
        payload: Any,
        request_id: str | None,
        claim: str,
        notice: dict[str, Any],
    ) -> None:
        """Hand the ticket callback function ``notice`` (why the ticket started nothing) to comment
        on the ticket, once per signed body and ``claim`` (what went wrong); nothing when the payload
        names no ticket or no callback. A failure is logged: the sender still gets its answer."""
        if self.notices is None:
            return
        key = request_id or ticket_key(config, payload)
        try:
            callback = callback_target(config, payload, key) if key else None
        except (MappingFailed, RecursionError):
            callback = None
        if key is None or callback is None:
            logger.info("webhook source %s: a ticket that started nothing names no ticket to tell", source)
            return
        now = int(self.clock())
        claim_key = f"{source}#{claim}#{hashlib.sha256(raw).hexdigest()}"
        record = {
            "delivery_key": claim_key,
            "source": source,
            "request_id": key,
            "execution_arn": "",
            "received_at": now,
            "expires_at": now + self.delivery_ttl_days * 86400,
        }
        try:
            if self.deliveries.claim(record, now=now) is not None:
                logger.info("webhook source %s: ticket %s was told about this delivery", source, key)
                return
        except Exception:
            logger.exception("webhook source %s: ticket %s not told why it started nothing", source, key)
            return
        told = {
            **notice,
            "callback": callback,
            "source": source,
            "request_id": key,
            "delivery_id": delivery.delivery_id,
        }
        try:
            self.notices.notify(told)
        except Exception:
            logger.exception("webhook source %s: ticket %s not told why it started nothing", source, key)
            try:
                self.deliveries.release(claim_key)  # the sender's retry tells it
            except Exception:
                logger.exception("webhook source %s: claim %s not released", source, claim_key)

    def _claim_ticket(self, source: str, request_id: str, plan: _Plan, execution_arn: str, now: int) -> bool:
        markers = [*((plan.previous or {}).get("markers") or []), *plan.new_markers]
        record = {
            "ticket_key": plan.ticket_key,
            "source": source,
            "request_id": request_id,
            "run": plan.run,
            "markers": markers,
            "execution_arn": execution_arn,
            "state": "starting",
            "claimed_at": now,
        }
        return self.tickets.claim(record, previous_run=plan.run - 1)

    def _release(self, delivery_key: str, plan: _Plan) -> None:
        self.deliveries.release(delivery_key)
        if not plan.resume:
            self.tickets.release(plan.ticket_key, plan.run, plan.previous)

    def _record(
        self, source: str, request: dict[str, Any], result: StartResult, now: int, *, replace: bool
    ) -> None:
        """Record a started request for its requester to follow at the status URL.

        Its client CIDR came from the ticket, not from the form's pool: the record holds no pool block.
        A re-opened ticket's record is replaced by its new run's. The execution has started, so a
        failure here is logged and the sender still gets 202 (a 5xx would make it retry a delivery that
        can only be a duplicate now).
        """
        submission = {
            "request_id": result.request_id,
            "requester": str(request["requester"]),
            "source": source,
            "ticket_key": result.request_id,
            "execution_arn": result.execution_arn,
            "status_url_path": result.status_url_path,
            "submitted_at": datetime.fromtimestamp(now, UTC).isoformat(),
        }
        try:
            if replace:
                self.submissions.put(submission, replace=True)
            else:
                self.submissions.put(submission)
        except Exception:
            logger.exception(
                "webhook source %s: request %s started but not recorded; its status URL answers 404",
                source,
                result.request_id,
            )

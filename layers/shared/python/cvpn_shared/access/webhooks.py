"""``POST /webhooks/{source}``: a ticket system's signed delivery becomes one intake execution.

In order, each failure answering at once and starting nothing:

1. the raw body (``isBase64Encoded`` bodies decoded) is at most ``max_body_bytes``: else 413;
2. the source is configured: else 404 (a broken configuration is 500, and logged);
3. the signature matches the raw body with the source's current or previous secret: else 401
   (fail closed without a secret);
4. the body is JSON: else 400; a delivery the source's ``accept_when`` leaves out: 200, ignored;
5. the mapped request is valid: else 422 with every field and why;
6. the delivery was not received before (conditional write, TTL of days): else 200 with the original;
7. the execution named after source + ticket key starts: 202 (already there: 200 with the original).

A request it starts is recorded in the same submission store as the request form's, so its requester
follows it at ``GET /requests/{id}`` (signed in) as a form request is followed. The answer gives the
ticket system no status URL: it could not sign in to read it; the ticket gets the result as a comment.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cvpn_shared.access.mapping import MappingFailed, accepts, callback_target, map_request
from cvpn_shared.access.signatures import (
    SignatureRejected,
    SigningSecretMissing,
    SigningSecrets,
    VerifiedDelivery,
    verify_signature,
)
from cvpn_shared.access.sources import SOURCE_NAME, SourceConfig, SourceConfigInvalid, parse_source_config
from cvpn_shared.access.start import ExecutionNameConflict, StartResult, status_url_path

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DeliveryLedger",
    "RequestStarter",
    "SecretReader",
    "SourceReader",
    "SubmissionRecorder",
    "WebhookAnswer",
    "WebhookIntake",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 256 * 1024


class SourceReader(Protocol):
    def get(self, source: str) -> Any: ...


class SecretReader(Protocol):
    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None: ...


class DeliveryLedger(Protocol):
    def claim(self, record: dict[str, Any], *, now: int) -> dict[str, Any] | None: ...

    def release(self, delivery_key: str) -> None: ...


class SubmissionRecorder(Protocol):
    """Where requests are recorded for ``GET /requests/{id}`` (the request form's SubmissionStore)."""

    def put(self, submission: dict[str, Any]) -> None: ...


class RequestStarter(Protocol):
    def execution_arn(self, source: str, request_id: str) -> str: ...

    def start(
        self, source: str, request: dict[str, Any], approval_required: bool, callback: dict[str, Any] | None
    ) -> StartResult: ...


@dataclass(frozen=True)
class WebhookAnswer:
    """The HTTP answer: status, JSON body, extra headers, and an outcome name for metrics."""

    status: int
    body: dict[str, Any]
    outcome: str
    headers: dict[str, str] = field(default_factory=dict)


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


def _signing_secrets(value: dict[str, Any] | None) -> SigningSecrets | None:
    if not value or not isinstance(value.get("current"), str) or not value["current"]:
        return None
    previous = value.get("previous")
    return SigningSecrets(value["current"], previous if isinstance(previous, str) and previous else None)


@dataclass
class WebhookIntake:
    """Verifies, maps, deduplicates and starts; every dependency is handed in (see wiring.py)."""

    sources: SourceReader
    secrets: SecretReader
    deliveries: DeliveryLedger
    starter: RequestStarter
    submissions: SubmissionRecorder
    delivery_ttl_days: int = 7
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    clock: Callable[[], float] = time.time

    def receive(
        self, source: str, headers: Mapping[str, str], body: str | bytes | None, *, is_base64_encoded: bool
    ) -> WebhookAnswer:
        """Answer one delivery (see the module docstring for the order of checks)."""
        raw = self._raw_body(body, is_base64_encoded)
        if isinstance(raw, WebhookAnswer):
            return raw
        config = self._source(source)
        if isinstance(config, WebhookAnswer):
            return config
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
            request = map_request(config, payload)
            callback = callback_target(config, payload, str(request["request_id"]))
        except MappingFailed as error:
            return _error(
                422, "invalid-request", "the payload does not make a valid request", errors=error.errors
            )
        except RecursionError:
            return _error(400, "not-json", "body: nested too deeply")
        return self._deduplicate_and_start(source, config, delivery, request, callback)

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
            raw = body.encode("utf-8", "surrogatepass")
        return self._too_large() if len(raw) > self.max_body_bytes else raw

    def _too_large(self) -> WebhookAnswer:
        return _error(413, "too-large", f"body: larger than {self.max_body_bytes} bytes")

    def _source(self, source: str) -> SourceConfig | WebhookAnswer:
        unknown = _error(
            404, "unknown-source", f"source: no webhook source named {source[:64]!r} is configured"
        )
        if not SOURCE_NAME.fullmatch(source):
            return unknown
        raw_config = self.sources.get(source)
        if raw_config is None:
            return unknown
        try:
            return parse_source_config(source, raw_config)
        except SourceConfigInvalid as error:
            logger.error("webhook source %s: %s", source, error)
            return _error(500, "bad-configuration", f"the configuration of source {source!r} is invalid")

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
        refreshed = _signing_secrets(self.secrets.get_json(config.secret_id, refresh=True))
        if refreshed is not None and refreshed != secrets:  # rotated since it was cached
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

    def _deduplicate_and_start(
        self,
        source: str,
        config: SourceConfig,
        delivery: VerifiedDelivery,
        request: dict[str, Any],
        callback: dict[str, Any] | None,
    ) -> WebhookAnswer:
        request_id = str(request["request_id"])
        now = int(self.clock())
        delivery_key = f"{source}#{delivery.delivery_id}"
        claim = {
            "delivery_key": delivery_key,
            "source": source,
            "request_id": request_id,
            "execution_arn": self.starter.execution_arn(source, request_id),
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
                    str(original.get("execution_arn") or claim["execution_arn"]),
                    status_url_path(original_id),
                    duplicate=True,
                ),
                duplicate=True,
            )
        try:
            result = self.starter.start(source, request, config.approval_required, callback)
        except ExecutionNameConflict as error:
            self.deliveries.release(delivery_key)
            return _error(409, "name-conflict", str(error))
        except Exception:
            self.deliveries.release(delivery_key)  # let the sender's retry start it
            raise
        if not result.duplicate:
            self._record(source, request, result, now)
        return _started(result, duplicate=result.duplicate)

    def _record(self, source: str, request: dict[str, Any], result: StartResult, now: int) -> None:
        """Record a started request for its requester to follow at the status URL.

        Its client CIDR came from the ticket, not from the form's pool: the record holds no pool block.
        The execution has started, so a failure here is logged and the sender still gets 202 (a 5xx
        would make it retry a delivery that can only be a duplicate now).
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
            self.submissions.put(submission)
        except Exception:
            logger.exception(
                "webhook source %s: request %s started but not recorded; its status URL answers 404",
                source,
                result.request_id,
            )

"""EventBridge rules deliver to Lambda (and Step Functions) targets on the local cloud.

moto's ``Rule.send_to_targets`` (moto 5.2.5) handles log groups, archives, SQS, event buses and API
destinations, and raises ``NotImplementedError`` for any other target service, Lambda included (which
fails the whole PutEvents call). ``install()`` wraps it: Lambda targets of a matching rule are invoked
asynchronously through moto's Lambda backend in-process (so whatever runs the function behind
``LambdaBackend.invoke`` - moto's simple Lambda or the local cloud's real runtime - receives the
event); Step Functions targets start an execution through the backend moto's Step Functions API
uses; the targets moto knows still go through moto's own code; any other target service is logged and
skipped instead of failing PutEvents. DISABLED rules and schedule-only rules receive no events (as
on AWS; moto would match them against every event). The payload honours the target's ``Input``,
``InputPath`` and ``InputTransformer`` as EventBridge does; without them the target gets the whole
event with an ISO ``time``.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "install",
    "invoke_lambda_async",
    "is_installed",
    "start_execution_async",
    "target_payload",
    "uninstall",
]

logger = logging.getLogger(__name__)

_original_send_to_targets: Callable[..., None] | None = None
_install_lock = threading.Lock()


def _json_path(document: Any, path: str) -> Any:
    """The simple JSONPath EventBridge allows in InputPath (``$``, ``$.a.b``, ``$.a[0]``)."""
    if path in ("$", ""):
        return document
    value = document
    for key, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path.removeprefix("$")):
        value = value[key] if key else value[int(index)]
    return value


def _iso_time(event: dict[str, Any]) -> dict[str, Any]:
    if isinstance(event.get("time"), int | float):
        event["time"] = datetime.fromtimestamp(event["time"], tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def target_payload(target: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
    """What EventBridge sends to ``target`` (a rule target: Input / InputPath / InputTransformer)."""
    full_event = _iso_time({key: value for key, value in event.items() if key != "ingestion-time"})
    if target.get("Input") is not None:
        return json.loads(str(target["Input"]))
    if target.get("InputPath"):
        return _json_path(full_event, str(target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventTemplateParser

        with_ingestion = dict(full_event)
        with_ingestion.setdefault("ingestion-time", event.get("ingestion-time", 0))
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=with_ingestion,  # type: ignore[arg-type]
        )
    return full_event


def _split_function_arn(arn: str) -> tuple[str, str, str, str | None]:
    """(account, region, function name, qualifier) of a Lambda function ARN."""
    parts = arn.split(":")
    qualifier = parts[7] if len(parts) > 7 else None
    return parts[4], parts[3], parts[6], qualifier


def invoke_lambda_async(function_arn: str, payload: Any) -> threading.Thread:
    """Invoke ``function_arn`` with InvocationType Event through moto's Lambda backend, in a thread."""
    from moto.awslambda.utils import get_backend

    account_id, region, name, qualifier = _split_function_arn(function_arn)
    body = payload if isinstance(payload, str) else json.dumps(payload)
    headers = {"X-Amz-Invocation-Type": "Event", "x-amz-invocation-type": "Event"}

    def invoke() -> None:
        try:
            get_backend(account_id, region).invoke(name, qualifier, body, headers, {})
        except Exception:
            logger.exception("EventBridge delivery to %s failed", function_arn)

    thread = threading.Thread(target=invoke, name=f"eventbridge-{name}", daemon=True)
    thread.start()
    return thread


def start_execution_async(state_machine_arn: str, payload: Any) -> threading.Thread:
    """Start an execution of ``state_machine_arn`` with ``payload`` as input, in a thread."""
    from moto.stepfunctions.responses import get_backend

    parts = state_machine_arn.split(":")
    account_id, region = parts[4], parts[3]
    execution_input = payload if isinstance(payload, str) else json.dumps(payload)

    def start() -> None:
        try:
            backend = get_backend(account_id, region)
            backend.start_execution(state_machine_arn, str(uuid.uuid4()), execution_input)
        except Exception:
            logger.exception("EventBridge delivery to %s failed", state_machine_arn)

    thread = threading.Thread(target=start, name="eventbridge-states", daemon=True)
    thread.start()
    return thread


def _target_kind(target: Mapping[str, Any]) -> str:
    """'lambda', 'states', 'moto' (moto delivers it) or 'unsupported'."""
    parts = str(target.get("Arn", "")).split(":")
    service = parts[2] if len(parts) > 2 else ""
    resource = parts[5] if len(parts) > 5 else ""
    if service in ("lambda", "states"):
        return service
    if service == "sqs" or (service == "logs" and resource == "log-group") or service == "events":
        return "moto"
    return "unsupported"


def _receives_events(rule: Any) -> bool:
    """Whether ``rule`` takes part in event matching at all.

    On AWS a DISABLED rule delivers nothing and a schedule-only rule (no event pattern) matches no
    event; moto treats an empty pattern as "match everything" and ignores the state, which would send
    every event to every scheduled rule's targets.
    """
    if str(getattr(rule, "state", "ENABLED")).upper() == "DISABLED":
        return False
    return not (getattr(rule, "scheduled_expression", None) and not rule.event_pattern.get_pattern())


def _send_to_targets(rule: Any, original_event: Any, transform_input: bool = True) -> None:
    """moto's delivery for the targets it knows, plus Lambda and Step Functions targets."""
    assert _original_send_to_targets is not None
    if not _receives_events(rule):
        return
    moto_targets = [target for target in rule.targets if _target_kind(target) == "moto"]
    if moto_targets:
        moto_view = copy.copy(rule)
        moto_view.targets = moto_targets
        _original_send_to_targets(moto_view, original_event, transform_input)
    if not rule.event_pattern.matches_event(original_event):
        return
    for target in rule.targets:
        kind = _target_kind(target)
        if kind == "moto":
            continue
        if kind == "unsupported":
            logger.warning("rule %s: target %s is not delivered by the local cloud", rule.name, target["Arn"])
            continue
        if transform_input:
            payload = target_payload(target, original_event)
        else:
            payload = _iso_time(dict(original_event))
        logger.info("rule %s delivers to %s", rule.name, target["Arn"])
        if kind == "lambda":
            invoke_lambda_async(str(target["Arn"]), payload)
        else:
            start_execution_async(str(target["Arn"]), payload)


def install() -> None:
    """Patch moto's ``Rule.send_to_targets`` so Lambda targets are invoked (idempotent)."""
    global _original_send_to_targets
    from moto.events.models import Rule

    with _install_lock:
        if _original_send_to_targets is not None:
            return
        _original_send_to_targets = Rule.send_to_targets
        Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Restore moto's own ``Rule.send_to_targets``."""
    global _original_send_to_targets
    from moto.events.models import Rule

    with _install_lock:
        if _original_send_to_targets is not None:
            Rule.send_to_targets = _original_send_to_targets  # type: ignore[method-assign]
            _original_send_to_targets = None


def is_installed() -> bool:
    """Whether ``install()`` is in effect."""
    return _original_send_to_targets is not None

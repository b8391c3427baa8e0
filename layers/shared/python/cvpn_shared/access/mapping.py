"""A ticket system's payload turned into a provisioning request, as its source configuration says.

Each configured field is a JMESPath expression on the payload; a field the payload does not have
(the expression gives ``null``) falls back to the source's constant default. The result is validated
against the request model; every problem is reported with the field, the reason and, for a mapped
field, the expression it came from, so the fix is obvious in the ticket system or the configuration.

Beyond JMESPath's built-ins, expressions may call ``split(text, separator)`` (trimmed, empty items
dropped), for ticket fields that hold lists as text (``subnet-a, subnet-b``).
"""

from __future__ import annotations

import copy
import re
from typing import Any, TypeVar

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ValidationError

from cvpn_shared.access.sources import SourceConfig, compiled_expression
from cvpn_shared.access.ticket_request import TICKET_KEY, TicketAccessRequest
from cvpn_shared.core.field_errors import describe_field_errors, field_errors
from cvpn_shared.provisioning.models.request import ProvisionRequest

__all__ = [
    "MAX_REOPEN_MARKER_LENGTH",
    "MappingFailed",
    "accepts",
    "callback_target",
    "map_access_request",
    "map_request",
    "reopen_marker",
    "ticket_key",
]


class MappingFailed(Exception):
    """The payload does not make a valid request: ``errors`` is [{field, message, mapped_from?}]."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"the payload does not make a valid request: {describe_field_errors(errors)}")


class _IntakeFunctions(functions.Functions):
    @functions.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text: str, separator: str) -> list[str]:
        if not separator:
            return [text.strip()] if text.strip() else []
        return [item.strip() for item in text.split(separator) if item.strip()]


_OPTIONS = jmespath.Options(custom_functions=_IntakeFunctions())


def _search(expression: str, payload: Any) -> Any:
    return compiled_expression(expression).search(payload, options=_OPTIONS)


def accepts(config: SourceConfig, payload: Any) -> bool:
    """Whether the delivery is one the source means as a request (``accept_when``; all when unset)."""
    if config.accept_when is None:
        return True
    try:
        return bool(_search(config.accept_when, payload))
    except JMESPathError:
        return False


MAX_REOPEN_MARKER_LENGTH = 200


def reopen_marker(config: SourceConfig, payload: Any) -> str | None:
    """What names this delivery as a re-open of its ticket (``reopen_marker``), None when nothing does.

    Only a non-empty string or a number counts (``false``, ``null``, ``[]`` mean "not a re-open");
    a marker longer than ``MAX_REOPEN_MARKER_LENGTH`` is refused rather than cut (cut markers could
    collide).
    """
    if config.reopen_marker is None:
        return None
    try:
        value = _search(config.reopen_marker, payload)
    except JMESPathError:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) > MAX_REOPEN_MARKER_LENGTH:
        raise MappingFailed(
            [
                {
                    "field": "reopen_marker",
                    "message": f"longer than {MAX_REOPEN_MARKER_LENGTH} characters",
                    "mapped_from": config.reopen_marker,
                }
            ]
        )
    return text


_TICKET_KEY = re.compile(TICKET_KEY)


def ticket_key(config: SourceConfig, payload: Any) -> str | None:
    """The ticket's key alone (its ``request_id`` field), None when the payload gives no valid one:
    a ticket whose other fields are wrong can still be told so."""
    expression = config.fields.get("request_id")
    value: Any = None
    if expression is not None:
        try:
            value = _search(expression, payload)
        except JMESPathError:
            return None
    if value is None:
        value = config.defaults.get("request_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if _TICKET_KEY.fullmatch(text) else None


def _place(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    target[parts[-1]] = value


def map_request(config: SourceConfig, payload: Any) -> dict[str, Any]:
    """The validated request (JSON-ready) the payload makes; raise MappingFailed naming each field."""
    return _mapped(config, payload, ProvisionRequest).model_dump(mode="json")


def map_access_request(config: SourceConfig, payload: Any) -> TicketAccessRequest:
    """The access request a grants source's payload makes; raise MappingFailed naming each field."""
    return _mapped(config, payload, TicketAccessRequest)


_Request = TypeVar("_Request", bound=BaseModel)


def _mapped(config: SourceConfig, payload: Any, model: type[_Request]) -> _Request:
    request: dict[str, Any] = copy.deepcopy(config.defaults)
    errors: list[dict[str, Any]] = []
    for path, expression in config.fields.items():
        try:
            value = _search(expression, payload)
        except JMESPathError as error:
            errors.append(
                {
                    "field": path,
                    "message": f"the mapping failed on this payload ({error})",
                    "mapped_from": expression,
                }
            )
            continue
        if value is not None:
            _place(request, path, value)
    validated: _Request | None = None
    try:
        validated = model.model_validate(request)
    except ValidationError as error:
        failed = {item["field"] for item in errors}
        errors.extend(
            _with_origin(item, config)
            for item in field_errors(error)
            if not any(item["field"] == path or item["field"].startswith(path + ".") for path in failed)
        )
    if errors or validated is None:
        raise MappingFailed(errors)
    return validated


def _with_origin(error: dict[str, Any], config: SourceConfig) -> dict[str, Any]:
    """Add the expression a field came from (the longest configured path that prefixes it)."""
    field = str(error["field"])
    origins = [path for path in config.fields if field == path or field.startswith((path + ".", path + "["))]
    if origins:
        return {**error, "mapped_from": config.fields[max(origins, key=len)]}
    if field.split(".", 1)[0].split("[", 1)[0] in config.defaults:
        return {**error, "mapped_from": "defaults"}
    return error


def callback_target(config: SourceConfig, payload: Any, request_id: str) -> dict[str, Any] | None:
    """The request's callback (kind, URL, credentials) with the URL's fields read from the payload."""
    if config.callback is None:
        return None
    values: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for name, expression in config.callback.url_fields.items():
        try:
            value = _search(expression, payload)
        except JMESPathError as error:
            value, problem = None, f"the mapping failed on this payload ({error})"
        else:
            problem = "must give a string or a number for the callback URL"
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            errors.append(
                {"field": f"callback.url_fields.{name}", "message": problem, "mapped_from": expression}
            )
        else:
            values[name] = str(value)
    if errors:
        raise MappingFailed(errors)
    return config.callback.target(request_id, values)

"""What the intake knows about a ticket system that sends webhooks: configuration, not code.

Each source has one JSON parameter in SSM Parameter Store (``<INTAKE_SOURCES_PARAMETER_PATH>/<source>``)::

    {
      "signature": "jira",                      # jira | github | slack | generic (signatures.py)
      "secret_id": "cvpn/intake/jira",          # Secrets Manager: {"current": "...", "previous": "..."}
      "approval": "pre-approved",               # or "required": approvers decide through signed links
      "fields": {"request_id": "issue.key", "client_cidr_block": "issue.fields.customfield_10051"},
      "defaults": {"vpc_id": "vpc-...", "subnet_ids": ["subnet-..."], "server_certificate_arn": "..."},
      "accept_when": "issue.fields.status.name == 'Approved'",   # optional: other deliveries are ignored
      "delivery_id_header": "X-Request-Id",     # optional: overrides the scheme's own
      "reopen_marker": "ticket.reopen_count",   # optional: what tells a re-open of the ticket apart
      "callback": {"kind": "jira-comment",      # optional: the result goes back to the ticket
                   "url_template": "https://acme.atlassian.net/rest/api/3/issue/{request_id}/comment",
                   "url_fields": {},                  # more placeholders: {name: JMESPath on the payload}
                   "credentials_secret_id": "cvpn/intake/jira-callback"}
    }

``fields`` maps a request field (a dotted path such as ``connection_log.log_group_name`` reaches inside)
to a JMESPath expression evaluated on the webhook payload; ``defaults`` are constants (a network
profile's VPC, subnets and certificate) that mapped values override.

A source of ``"kind": "grants"`` maps tickets to access requests on a grants profile instead of
endpoint requests: its ``fields`` and ``defaults`` name the fields of ``TicketAccessRequest``
(``request_id``, ``issuer``, ``sub``, ``vpn_user``, ``profile``, ``access_groups``, ``hours``,
``reason``, ``requester``); the issuer is usually a default (the ticket system's base URL) and ``sub``
the reporter's account id. Its requests always wait for the profile's approvers (``approval``
``required``), and its callback gets a comment when the ticket makes no valid request (a signed
delivery only), when the request got no access (rejected, expired, not activated), when the grant is
active, a day before its end and when it ended::

    {"kind": "grants", "signature": "jira", "secret_id": "...", "approval": "required",
     "fields": {"request_id": "issue.key", "sub": "issue.fields.reporter.accountId",
                "vpn_user": "issue.fields.customfield_10060",
                "profile": "issue.fields.customfield_10061.value",
                "access_groups": "issue.fields.customfield_10062[].value",
                "hours": "issue.fields.customfield_10063", "reason": "issue.fields.summary"},
     "defaults": {"issuer": "https://acme.atlassian.net"}, "callback": {...}}

A ticket starts once. ``reopen_marker`` (JMESPath on the signed payload) names a re-open of the ticket:
a delivery for a ticket already started starts it again only when the marker gives a string or a number
that no earlier start of that ticket carried (a replayed delivery carries a used one). Without it, a
ticket never starts twice.
"""

from __future__ import annotations

import re
import string
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cvpn_shared.access.signatures import SignatureScheme
from cvpn_shared.access.ticket_request import TicketAccessRequest
from cvpn_shared.core.field_errors import describe_field_errors, field_errors
from cvpn_shared.provisioning.models.request import ProvisionRequest

__all__ = [
    "SOURCE_NAME",
    "CallbackConfig",
    "CallbackKind",
    "SourceConfig",
    "SourceConfigInvalid",
    "compiled_expression",
    "parse_source_config",
]

# A source is a path segment of POST /webhooks/{source}.
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class SourceConfigInvalid(Exception):
    """The stored configuration of a source is unusable: each problem names its key."""

    def __init__(self, source: str, errors: list[dict[str, Any]]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"configuration of source {source!r} is invalid: {describe_field_errors(errors)}")


class CallbackKind(StrEnum):
    """How the result goes back to the ticket."""

    JIRA_COMMENT = "jira-comment"  # Jira Cloud REST: add a comment (Basic auth: email + API token)
    GITHUB_COMMENT = "github-comment"  # GitHub REST: issue comment (Bearer token)
    GENERIC = "generic"  # POST the result as JSON, signed with the generic scheme when a secret is set


@lru_cache(maxsize=1024)
def compiled_expression(expression: str) -> Any:
    """A compiled JMESPath expression (cached: sources reuse theirs on every delivery)."""
    return jmespath.compile(expression)


def _expression(value: str) -> str:
    try:
        compiled_expression(value)
    except JMESPathError as error:
        raise ValueError(f"not a valid JMESPath expression ({error})") from None
    return value


class CallbackConfig(BaseModel):
    """Where and how to post the result of a request back to its ticket.

    ``url_template`` is filled with ``{request_id}`` and the ``url_fields`` (JMESPath on the payload,
    e.g. a GitHub issue number); every value is URL-quoted, so the host stays the configured one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CallbackKind
    url_template: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    url_fields: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")], str] = {}
    credentials_secret_id: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None

    @field_validator("url_fields")
    @classmethod
    def _url_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            try:
                _expression(expression)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return value

    @model_validator(mode="after")
    def _url(self) -> CallbackConfig:
        if not self.url_template.startswith(("https://", "http://")):
            raise ValueError("url_template: must be an http(s) URL")
        names = {name for _, name, _, _ in string.Formatter().parse(self.url_template) if name is not None}
        allowed = {"request_id", *self.url_fields}
        unknown = sorted(names - allowed)
        if unknown:
            raise ValueError(
                f"url_template: unknown placeholder(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(allowed))} (add url_fields for more)"
            )
        return self

    def target(self, request_id: str, values: dict[str, str] | None = None) -> dict[str, Any]:
        """The callback of one request (what the intake workflow carries): kind, URL, credentials."""
        from urllib.parse import quote

        filled = {name: quote(value, safe="") for name, value in (values or {}).items()}
        return {
            "kind": self.kind.value,
            "url": self.url_template.format(request_id=quote(request_id, safe=""), **filled),
            "credentials_secret_id": self.credentials_secret_id,
        }


class SourceConfig(BaseModel):
    """One ticket system's configuration (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["endpoint", "grants"] = "endpoint"
    signature: SignatureScheme
    secret_id: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    approval: Literal["pre-approved", "required"]
    fields: Annotated[dict[str, str], Field(min_length=1)]
    defaults: dict[str, Any] = {}
    accept_when: str | None = None
    delivery_id_header: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = None
    reopen_marker: str | None = None
    callback: CallbackConfig | None = None

    @property
    def approval_required(self) -> bool:
        return self.approval == "required"

    @property
    def grants(self) -> bool:
        """Whether tickets of this source ask for access on a grants profile."""
        return self.kind == "grants"

    @field_validator("approval")
    @classmethod
    def _grants_are_approved(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("kind") == "grants" and value != "required":
            raise ValueError(
                "a grants source's requests wait for the profile's approvers: set it to 'required'"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        known = set(_request_model(info.data.get("kind")).model_fields)
        if info.data.get("kind") == "grants":
            # An access request has no nested fields: a dotted path names nothing.
            unknown = [path for path in value if path not in known]
            if unknown:
                raise ValueError(
                    f"{unknown[0]}: not a field of an access request (known: {', '.join(sorted(known))})"
                )
        for path, expression in value.items():
            if path.split(".", 1)[0] not in known:
                raise ValueError(f"{path}: not a field of the request (known: {', '.join(sorted(known))})")
            try:
                _expression(expression)
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None
        return value

    @field_validator("defaults")
    @classmethod
    def _defaults(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        unknown = sorted(set(value) - set(_request_model(info.data.get("kind")).model_fields))
        if unknown:
            raise ValueError(f"not fields of the request: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _grants_name_the_person(self) -> SourceConfig:
        if self.kind != "grants":
            return self
        # Each ticket names its own ticket, reporter and VPN user: a constant would give every
        # ticket's access to one person.
        for name in ("request_id", "sub", "vpn_user"):
            if name not in self.fields:
                raise ValueError(f"fields.{name}: a grants source maps it from each ticket")
            if name in self.defaults:
                raise ValueError(f"defaults.{name}: comes from each ticket, never a constant")
        if "issuer" not in self.fields and "issuer" not in self.defaults:
            raise ValueError(
                "defaults.issuer: the ticket system's https base URL names whose accounts sub are"
            )
        return self

    @field_validator("accept_when", "reopen_marker")
    @classmethod
    def _optional_expression(cls, value: str | None) -> str | None:
        return None if value is None else _expression(value)


def _request_model(kind: Any) -> type[BaseModel]:
    """What a source's deliveries become: an access request (grants) or an endpoint request."""
    return TicketAccessRequest if kind == "grants" else ProvisionRequest


def parse_source_config(source: str, raw: Any) -> SourceConfig:
    """Validate a stored configuration; raise SourceConfigInvalid naming every bad key."""
    try:
        return SourceConfig.model_validate(raw)
    except ValidationError as error:
        raise SourceConfigInvalid(source, field_errors(error)) from None

"""The client-connect handler's decision: refuse blocked addresses and users, and on an endpoint that
enforces grants, users without an active grant there; allow the rest.

Client VPN invokes the handler synchronously after authentication and before authorization rules,
waits at most 30 seconds and refuses the connection on any error, throttle or malformed answer. The
answer always carries the four documented keys: ``allow``, ``error-msg-on-denied-connection`` (at
most 255 characters), ``posture-compliance-statuses`` (at most 10) and ``schema-version`` (the version
the request came with; v2 when it names none or a malformed one).

What is looked up: the source address (``source#``), the user name and the certificate's common name
(``user#``: a user blocked from anywhere, an administrator's choice), and each name from this address
(``user_source#``: the usual block of a user whose account an attacker got into from there).

Grants: when the endpoint's access-policy item says ``grants`` (``dal.connect_lookup``), the user
needs an active grant there: a connect-time item whose ``active_until`` is later than now. The name
that holds a grant is the user name (Active Directory or SAML), else the certificate's common name
(mutual TLS alone). A refusal says why (no grant, or the grant ended when) and where to ask (the
request form's URL). An endpoint without that item keeps the blocklist-only behaviour.

A request that is not the documented shape (not an object, a field that is not text, a public-ip
that is not an address, a name too long to be a blocklist key) is refused with the reason, naming
the field.

When the blocklist (and grants) cannot be read within the lookup's time budget
(``dal.blocklist.LookupBudget``), the answer follows the ``fail_mode`` the operator chose: ``open``
(the default) allows the connection, since the endpoint's own authentication has already passed
and a blocklist outage must not lock every user out; ``closed`` refuses it, since a blocked
attacker must not get in while the table is throttled. Either way the caller records it (a metric,
which an alarm watches). Open also admits users of grants endpoints without checking their grant:
fail closed suits an endpoint whose access is by grant.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from cvpn_shared.monitoring.dal.blocklist import BlockEntry, blocklist_key, user_source_key
from cvpn_shared.monitoring.dal.connect_lookup import ConnectFacts, GrantGate
from cvpn_shared.monitoring.names import bounded_text

__all__ = [
    "MAX_DENIAL_MESSAGE_CHARS",
    "MAX_NAME_BYTES",
    "ClientConnectRequest",
    "ClientConnectResponse",
    "ConnectDecision",
    "FailMode",
    "MalformedRequest",
    "authorize_connection",
    "decide",
    "denial_message",
    "grant_refusal",
]

MAX_DENIAL_MESSAGE_CHARS = 255
DEFAULT_SCHEMA_VERSION = "v2"
# A name longer than this could not be a blocklist key (DynamoDB: 2048 bytes with its prefix and
# address), so it could never be blocked: such a request is refused as malformed.
MAX_NAME_BYTES = 1024
MAX_FIELD_CHARS = 4096
# How many of a request's problems its refusal names.
MAX_PROBLEMS = 3
FailMode = Literal["open", "closed"]
_SCHEMA_VERSION = re.compile(r"v[0-9]{1,3}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NOT_APPLICABLE = frozenset({"", "NA"})
_NOT_TEXT = "Input should be a valid string"
_NOT_UNICODE = "Input should be a valid string, unable to parse raw data as a unicode string"


class MalformedRequest(ValueError):
    """Grants: when the endpoint's access-policy item says ``grants`` (``dal.connect_lookup``), the user
    needs an active grant there: a connect-time item whose ``active_until`` is later than now. The name
    that holds a grant is the user name (Active Directory or SAML), else the certificate's common name
    (mutual TLS alone). A refusal says why (no grant, or the grant ended when) and where to ask (the
    request form's URL). An endpoint without that item keeps the blocklist-only behaviour.

    A request that is not the documented shape; ``reason`` names each field and what is wrong
        (``public-ip: not an IPv4 or IPv6 address``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _an_address(value: str) -> str | None:
    if value:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return "not an IPv4 or IPv6 address"
    return None


def _a_key_fits(value: str) -> str | None:
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    return None


def _a_version(value: str) -> str | None:
    if value and not _SCHEMA_VERSION.fullmatch(value):
        return "not a schema version such as v2"
    return None


# (attribute, key in the request, most characters, a check of the value): the documented fields in
# the order their problems are named. A field may also be given under its attribute name.
_FIELDS: tuple[tuple[str, str, int, Callable[[str], str | None] | None], ...] = (
    ("connection_id", "connection-id", MAX_FIELD_CHARS, None),
    ("endpoint_id", "endpoint-id", MAX_FIELD_CHARS, None),
    ("common_name", "common-name", MAX_FIELD_CHARS, _a_key_fits),
    ("username", "username", MAX_FIELD_CHARS, _a_key_fits),
    ("platform", "platform", MAX_FIELD_CHARS, None),
    ("platform_version", "platform-version", MAX_FIELD_CHARS, None),
    ("public_ip", "public-ip", 64, _an_address),
    ("client_openvpn_version", "client-openvpn-version", MAX_FIELD_CHARS, None),
    ("schema_version", "schema-version", 8, _a_version),
)


def _text(value: Any) -> tuple[str, str | None]:
    """``value`` as text, or the problem: not text, or text that is not Unicode (a lone surrogate)."""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8"), None
        except UnicodeDecodeError:
            return "", _NOT_UNICODE
    if not isinstance(value, str):
        return "", _NOT_TEXT
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "", _NOT_UNICODE
    return str(value), None


# Named tuples, not dataclasses: ``dataclasses`` loads ``inspect``, a cost on every login's cold start.
class ClientConnectRequest(NamedTuple):
    """What Client VPN sends the handler (documented keys; unknown ones ignored)."""

    connection_id: str = ""
    endpoint_id: str = ""
    common_name: str = ""
    username: str = ""
    platform: str = ""
    platform_version: str = ""
    public_ip: str = ""
    client_openvpn_version: str = ""
    groups: Any = ""
    schema_version: str = DEFAULT_SCHEMA_VERSION

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ClientConnectRequest:
        """The request in ``event``; ``MalformedRequest`` naming the first few fields that are not
        text, too long, or not what the field holds (an address, a version, a name that fits a key)."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for attribute, key, most, check in _FIELDS:
            if key in event:
                given, where = event[key], key
            elif attribute in event:
                given, where = event[attribute], attribute
            else:
                continue
            text, problem = _text(given)
            if problem is None and len(text) > most:
                problem = f"String should have at most {most} characters"
            if problem is None and check is not None:
                problem = check(text)
            if problem is None:
                values[attribute] = text
            else:
                problems.append(f"{where}: {problem}")
        if "groups" in event:
            values["groups"] = event["groups"]
        if problems:
            raise MalformedRequest(_printable("; ".join(problems[:MAX_PROBLEMS])))
        return cls(**values)


class ClientConnectResponse(NamedTuple):
    """The handler's answer, given to Client VPN with its key names (``to_answer``); the message is
    at most ``MAX_DENIAL_MESSAGE_CHARS`` (see ``_refusal``)."""

    allow: bool
    error_msg_on_denied_connection: str = ""
    posture_compliance_statuses: tuple[str, ...] = ()
    schema_version: str = DEFAULT_SCHEMA_VERSION

    def to_answer(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "error-msg-on-denied-connection": self.error_msg_on_denied_connection,
            "posture-compliance-statuses": list(self.posture_compliance_statuses),
            "schema-version": self.schema_version,
        }


class Blocklist(Protocol):
    def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]: ...


class AccessLookup(Protocol):
    """The blocklist and the grants read together (``dal.connect_lookup.ConnectLookup``)."""

    def look_up(
        self, block_keys: Sequence[str], endpoint_id: str, vpn_user: str, now: int
    ) -> ConnectFacts: ...


def grant_holder(request: ClientConnectRequest) -> str:
    """The name a grant is held under: the user name, else the certificate's common name."""
    for typed in (request.username, request.common_name):
        if typed not in _NOT_APPLICABLE and typed.strip():
            return bounded_text(typed).strip()
    return ""


def _facts(lookup: Blocklist | AccessLookup, request: ClientConnectRequest, now: int) -> ConnectFacts:
    keys = _subject_keys(request)
    look_up = getattr(lookup, "look_up", None)
    if look_up is not None:
        facts: ConnectFacts = look_up(keys, request.endpoint_id, grant_holder(request), now)
        return facts
    return ConnectFacts(lookup.active_blocks(keys, now), None, now)  # type: ignore[union-attr]


def _when(moment: int) -> str:
    return f"{datetime.fromtimestamp(moment, tz=UTC):%Y-%m-%d %H:%M} UTC"


def grant_refusal(gate: GrantGate, *, now: int, form_url: str) -> str | None:
    """Why a login is refused for want of a grant (at most 255 characters, the form's URL kept whole
    when it fits), or None when the endpoint does not enforce grants or the user holds one."""
    if not gate.enforced or gate.active_until > now:
        return None
    why = (
        f"your access grant for this VPN ended at {_when(gate.active_until)}"
        if gate.active_until
        else "you have no active access grant for this VPN"
    )
    profile = f" (profile {_printable(gate.profile)[:63]})" if gate.profile else ""
    url = _printable(form_url.strip())
    ask = f"Ask for access at {url}" if url else "Ask an administrator for access"
    for message in (f"Access refused: {why}. {ask}{profile}.", f"Access refused: {why}. {ask}"):
        if len(message) <= MAX_DENIAL_MESSAGE_CHARS:
            return message
    # REQUEST_FORM_URL is at most 200 characters (client_connect_wiring): this fits 255 with it whole.
    return f"Access refused: no VPN access grant. {'Ask at ' + url if url else ask}"


def _subject_keys(request: ClientConnectRequest) -> list[str]:
    keys = []
    address = request.public_ip
    if address:
        keys.append(blocklist_key("source", address))
    for typed in (request.username, request.common_name):
        if typed not in _NOT_APPLICABLE and typed.strip():
            name = bounded_text(typed)  # as the parser kept it, so a block of this name matches
            keys.append(blocklist_key("user", name))
            if address:
                keys.append(user_source_key(name, address))
    return keys


def _described(entry: BlockEntry) -> str:
    if entry.kind == "source":
        return f"your address {entry.value}"
    if entry.kind == "user_source":
        return f"the account {entry.value} from your address {entry.source}"
    return f"the account {entry.value}"


def denial_message(blocks: Sequence[BlockEntry]) -> str:
    """What the user is told (at most 255 characters): what is blocked, until when, what to do."""
    what = " and ".join(_printable(_described(entry)) for entry in blocks)
    until = max(entry.expires_at for entry in blocks)
    reference = blocks[0].finding_id[:12]
    message = (
        f"Access refused: {what} is temporarily blocked after suspicious sign-in attempts, until "
        f"{datetime.fromtimestamp(until, tz=UTC):%Y-%m-%d %H:%M} UTC. Contact the service desk"
        f"{f' and quote {reference}' if reference else ''}."
    )
    if len(message) > MAX_DENIAL_MESSAGE_CHARS:
        message = message[: MAX_DENIAL_MESSAGE_CHARS - 3] + "..."
    return message


def _printable(text: str) -> str:
    """``text`` without control characters (a name is whatever a client sent)."""
    return _UNPRINTABLE.sub("?", text)


class ConnectDecision(NamedTuple):
    """The answer for Client VPN, the blocks behind a refusal, and what went wrong if anything:
    the lookup's error (then ``fail_mode`` decided), or the reason a request was malformed."""

    response: ClientConnectResponse
    blocks: tuple[BlockEntry, ...] = ()
    blocklist_error: str | None = None
    malformed: str | None = None
    fail_mode: FailMode = "open"
    gate: GrantGate | None = None  # what the grants table said (None: not read)
    no_grant: bool = False  # refused: the endpoint enforces grants and the user holds no active one


def _refusal(message: str, version: str) -> ClientConnectResponse:
    if len(message) > MAX_DENIAL_MESSAGE_CHARS:
        message = message[: MAX_DENIAL_MESSAGE_CHARS - 3] + "..."
    return ClientConnectResponse(allow=False, error_msg_on_denied_connection=message, schema_version=version)


def _answer_version(event: Any) -> str:
    """The schema version to answer a request with: its own when well formed, else v2."""
    version = event.get("schema-version") if isinstance(event, dict) else None
    if isinstance(version, str) and _SCHEMA_VERSION.fullmatch(version):
        return version
    return DEFAULT_SCHEMA_VERSION


def decide(
    event: Any,
    blocklist: Blocklist | AccessLookup,
    *,
    now: datetime,
    fail_mode: FailMode = "open",
    form_url: str = "",
) -> ConnectDecision:
    """The answer to any event the handler is given: a malformed one is refused with its reason;
    a well-formed one is judged by ``authorize_connection``."""
    if not isinstance(event, dict):
        reason = f"request: an object was expected, not {type(event).__name__}"
        return ConnectDecision(
            _refusal(f"Access refused: malformed connection request ({reason}).", DEFAULT_SCHEMA_VERSION),
            malformed=reason,
            fail_mode=fail_mode,
        )
    try:
        request = ClientConnectRequest.from_event(event)
    except MalformedRequest as error:
        reason = error.reason
        return ConnectDecision(
            _refusal(f"Access refused: malformed connection request ({reason}).", _answer_version(event)),
            malformed=reason,
            fail_mode=fail_mode,
        )
    return authorize_connection(request, blocklist, now=now, fail_mode=fail_mode, form_url=form_url)


def authorize_connection(
    request: ClientConnectRequest,
    blocklist: Blocklist | AccessLookup,
    *,
    now: datetime,
    fail_mode: FailMode = "open",
    form_url: str = "",
) -> ConnectDecision:
    """Allow unless the address, the user, or the user from this address is blocked now, or the
    endpoint enforces grants and the user holds no active one there; when the lookup fails, allow
    (``fail_mode`` open) or refuse (closed)."""
    version = request.schema_version or DEFAULT_SCHEMA_VERSION
    try:
        facts = _facts(blocklist, request, int(now.timestamp()))
    except Exception as error:  # the operator's choice decides: see the module docstring
        problem = f"{type(error).__name__}: {error}"
        if fail_mode == "closed":
            response = _refusal(
                "Access refused: the access check is unavailable right now. Try again in a few minutes "
                "or contact the service desk.",
                version,
            )
        else:
            response = ClientConnectResponse(allow=True, schema_version=version)
        return ConnectDecision(response, blocklist_error=problem, fail_mode=fail_mode)
    blocks = facts.blocks
    if blocks:
        return ConnectDecision(
            _refusal(denial_message(blocks), version),
            blocks=tuple(blocks),
            fail_mode=fail_mode,
            gate=facts.gate,
        )
    refusal = grant_refusal(facts.gate, now=facts.now, form_url=form_url) if facts.gate else None
    if refusal is not None:
        return ConnectDecision(
            _refusal(refusal, version), fail_mode=fail_mode, gate=facts.gate, no_grant=True
        )
    return ConnectDecision(
        ClientConnectResponse(allow=True, schema_version=version), fail_mode=fail_mode, gate=facts.gate
    )

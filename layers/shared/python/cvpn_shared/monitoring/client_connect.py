"""The client-connect handler's decision: refuse blocklisted sources and users, allow the rest.

Client VPN invokes the handler synchronously after authentication and before authorization rules,
waits at most 30 seconds and refuses the connection on any error, throttle or malformed answer. The
answer always carries the four documented keys: ``allow``, ``error-msg-on-denied-connection`` (at
most 255 characters), ``posture-compliance-statuses`` (at most 10) and ``schema-version`` (the version
the request came with; v2 when it names none).

When the blocklist cannot be read the handler allows the connection (and says so in its logs):
the endpoint's own authentication has already passed, and a blocklist outage must not lock every
user out of the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from cvpn_shared.monitoring.dal.blocklist import BlockEntry, blocklist_key

__all__ = [
    "MAX_DENIAL_MESSAGE_CHARS",
    "ClientConnectRequest",
    "ClientConnectResponse",
    "ConnectDecision",
    "authorize_connection",
    "denial_message",
]

MAX_DENIAL_MESSAGE_CHARS = 255
DEFAULT_SCHEMA_VERSION = "v2"


class ClientConnectRequest(BaseModel):
    """What Client VPN sends the handler (documented keys; unknown ones tolerated)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    connection_id: str = Field(default="", alias="connection-id")
    endpoint_id: str = Field(default="", alias="endpoint-id")
    common_name: str = Field(default="", alias="common-name")
    username: str = Field(default="", alias="username")
    platform: str = Field(default="", alias="platform")
    platform_version: str = Field(default="", alias="platform-version")
    public_ip: str = Field(default="", alias="public-ip")
    client_openvpn_version: str = Field(default="", alias="client-openvpn-version")
    groups: Any = Field(default="", alias="groups")
    schema_version: str = Field(default=DEFAULT_SCHEMA_VERSION, alias="schema-version")


class ClientConnectResponse(BaseModel):
    """The handler's answer, serialised with Client VPN's key names."""

    allow: bool
    error_msg_on_denied_connection: str = Field(
        default="", max_length=MAX_DENIAL_MESSAGE_CHARS, serialization_alias="error-msg-on-denied-connection"
    )
    posture_compliance_statuses: list[str] = Field(
        default_factory=list, max_length=10, serialization_alias="posture-compliance-statuses"
    )
    schema_version: str = Field(default=DEFAULT_SCHEMA_VERSION, serialization_alias="schema-version")

    def to_answer(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class Blocklist(Protocol):
    def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]: ...


def _subject_keys(request: ClientConnectRequest) -> list[str]:
    keys = []
    if request.public_ip:
        keys.append(blocklist_key("source", request.public_ip))
    for name in (request.username, request.common_name):
        if name and name != "NA":
            keys.append(blocklist_key("user", name))
    return keys


def denial_message(blocks: Sequence[BlockEntry]) -> str:
    """What the user is told (at most 255 characters): what is blocked, until when, what to do."""
    what = " and ".join(
        f"your address {entry.value}" if entry.kind == "source" else f"the account {entry.value}"
        for entry in blocks
    )
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


@dataclass(frozen=True)
class ConnectDecision:
    """The answer for Client VPN, the blocks behind a refusal, and a blocklist error if any."""

    response: ClientConnectResponse
    blocks: tuple[BlockEntry, ...] = ()
    blocklist_error: str | None = None


def authorize_connection(
    request: ClientConnectRequest, blocklist: Blocklist, *, now: datetime
) -> ConnectDecision:
    """Allow unless the source address or the user is on the blocklist now (allow if unreadable)."""
    version = request.schema_version or DEFAULT_SCHEMA_VERSION
    try:
        blocks = blocklist.active_blocks(_subject_keys(request), int(now.timestamp()))
    except Exception as error:  # fail open: see the module docstring
        return ConnectDecision(
            ClientConnectResponse(allow=True, schema_version=version),
            blocklist_error=f"{type(error).__name__}: {error}",
        )
    if not blocks:
        return ConnectDecision(ClientConnectResponse(allow=True, schema_version=version))
    return ConnectDecision(
        ClientConnectResponse(
            allow=False, error_msg_on_denied_connection=denial_message(blocks), schema_version=version
        ),
        blocks=tuple(blocks),
    )

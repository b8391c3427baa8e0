"""The client-connect handler's entry point under arbitrary events: never an unhandled exception
(Client VPN would refuse with a handler error, and operations would be paged), always the four keys
Client VPN reads, a malformed event refused naming the field, a well-formed one judged by the
blocklist (which a malformed one never reaches)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvpn_shared.monitoring.client_connect import MAX_DENIAL_MESSAGE_CHARS, MAX_NAME_BYTES
from cvpn_shared.monitoring.dal.blocklist import BlockEntry
from tests.fixtures.handlers import LambdaContext, load_handler_module

BLOCKED_SOURCE = "203.0.113.66"
EXPIRES = int((datetime.now(UTC) + timedelta(days=365)).timestamp())
DOCUMENTED = (
    "connection-id",
    "endpoint-id",
    "common-name",
    "username",
    "platform",
    "platform-version",
    "public-ip",
    "client-openvpn-version",
    "groups",
    "schema-version",
)


@dataclass
class MemoryBlocklist:
    entries: dict[str, BlockEntry] = field(default_factory=dict)
    lookups: list[list[str]] = field(default_factory=list)

    def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]:
        self.lookups.append(keys)
        return [
            self.entries[k]
            for k in sorted(set(keys))
            if k in self.entries and self.entries[k].expires_at > now
        ]


@pytest.fixture(scope="module")
def handler() -> Iterator[tuple[ModuleType, MemoryBlocklist]]:
    """The handler module with a blocklist in memory that blocks ``BLOCKED_SOURCE``; the Powertools
    settings the template sets, for as long as the module's tests run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
        patch.setenv("POWERTOOLS_SERVICE_NAME", "cvpn-autopilot")
        patch.delenv("CLIENT_CONNECT_FAIL_MODE", raising=False)
        module = load_handler_module("monitoring/client_connect")
        if not module.metrics.namespace:  # observability imported earlier, without the setting
            patch.setattr(module.metrics, "namespace", "Test")
        blocklist = MemoryBlocklist()
        entry = BlockEntry("source", BLOCKED_SOURCE, EXPIRES, 1, "R4", "f" * 64)
        blocklist.entries[entry.key] = entry
        patch.setattr(module, "connect_lookup", lambda: blocklist)
        yield module, blocklist


addresses = st.one_of(st.ip_addresses().map(str), st.just(BLOCKED_SOURCE), st.text(max_size=50), st.just(""))
# Names around the blocklist key limit, in one-, two- and four-byte characters.
long_names = st.builds(
    lambda character, count: character * count, st.sampled_from(["a", "é", "𝄞"]), st.integers(200, 1100)
)
names = st.one_of(st.text(max_size=40), long_names, st.just("NA"))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
anything = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)
# What a field holds instead of text: something of another JSON type.
not_text = st.one_of(st.none(), st.booleans(), st.integers(), st.lists(st.integers(), max_size=2))
field_values = {
    "public-ip": st.one_of(addresses, not_text),
    "username": st.one_of(names, not_text),
    "common-name": st.one_of(names, not_text),
    "schema-version": st.one_of(st.sampled_from(["v1", "v2", "v3"]), st.text(max_size=12), not_text),
}
documented_events = st.fixed_dictionaries(
    {}, optional={key: field_values.get(key, st.one_of(st.text(max_size=30), not_text)) for key in DOCUMENTED}
)
events = st.one_of(
    anything,
    documented_events,
    st.builds(
        lambda documented, extra: {**extra, **documented},
        documented_events,
        st.dictionaries(st.text(max_size=12), scalars, max_size=3),
    ),
)


def well_formed(event: Any) -> bool:
    """Whether the event is what Client VPN documents: an object whose known fields are text, with
    a public-ip that is an address, names short enough to be blocklist keys, a schema version."""
    if not isinstance(event, dict):
        return False
    for key in DOCUMENTED:
        if key == "groups" or key not in event:
            continue
        if not isinstance(event[key], str):
            return False
    ip = event.get("public-ip", "")
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return False
    if len(ip) > 64 or len(event.get("schema-version", "v2")) > 8:
        return False
    for name in ("username", "common-name"):
        if len(event.get(name, "").encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
            return False
    version = event.get("schema-version", "v2")
    if version and not (
        version[0] == "v" and version[1:].isascii() and version[1:].isdigit() and len(version) <= 4
    ):
        return False
    return all(len(event.get(key, "")) <= 4096 for key in DOCUMENTED if key not in ("groups",))


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events)
def test_any_event_gets_a_valid_answer_and_a_malformed_one_a_reason(
    handler: tuple[ModuleType, MemoryBlocklist], event: Any
) -> None:
    module, blocklist = handler
    lookups = len(blocklist.lookups)

    answer = module.lambda_handler(event, LambdaContext("AWSClientVPN-cvpn"))

    assert set(answer) == {
        "allow",
        "error-msg-on-denied-connection",
        "posture-compliance-statuses",
        "schema-version",
    }
    assert isinstance(answer["allow"], bool)
    message = answer["error-msg-on-denied-connection"]
    assert isinstance(message, str) and len(message) <= MAX_DENIAL_MESSAGE_CHARS
    assert not any(ord(character) < 32 for character in message)
    assert answer["posture-compliance-statuses"] == []
    if well_formed(event):
        assert len(blocklist.lookups) == lookups + 1
        blocked = event.get("public-ip") == BLOCKED_SOURCE
        assert answer["allow"] is not blocked
        assert answer["schema-version"] == (event.get("schema-version") or "v2")
    else:
        assert len(blocklist.lookups) == lookups  # a refused event reads nothing
        assert answer["allow"] is False
        assert message.startswith("Access refused: malformed connection request (")
        if isinstance(event, dict):
            assert any(key in message for key in (*DOCUMENTED, "request"))

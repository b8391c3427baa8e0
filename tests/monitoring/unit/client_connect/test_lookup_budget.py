"""The blocklist lookup ends within its time budget whatever DynamoDB does, and the handler then
applies the operator's fail mode; user@address blocks refuse that user from that address only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cvpn_shared.monitoring.client_connect import ClientConnectRequest, authorize_connection, decide
from cvpn_shared.monitoring.dal.blocklist import (
    BlockEntry,
    BlocklistLookup,
    BlocklistUnavailable,
    LookupBudget,
    user_source_key,
)
from cvpn_shared.monitoring.dal.dynamodb_json import (
    BatchGetWithinBudget,
    DynamoDbError,
    DynamoDbTransportError,
)
from tests.fixtures.blocklist import MemoryBlocklist

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TABLE = "blocklist"


@dataclass
class FakeClock:
    """Monotonic time that moves only when something sleeps or a call takes time."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def throttled(code: str = "ProvisionedThroughputExceededException", status: int = 400) -> DynamoDbError:
    return DynamoDbError(code, "slow down", status)


@dataclass
class ScriptedDynamoDb:
    """batch_get_item answering from ``script`` in turn (the last one again when it runs out); each
    call takes ``call_seconds`` of the fake clock (an SDK call bounded by its socket timeouts)."""

    clock: FakeClock
    script: list[Any]
    call_seconds: float = 0.01
    calls: list[dict[str, Any]] = field(default_factory=list)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(RequestItems)
        self.clock.now += self.call_seconds
        answer = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if answer == "unprocessed":
            return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}
        return {"Responses": {TABLE: answer}, "UnprocessedKeys": {}}


def item(pk: str, kind: str, subject: str, expires_at: int, source: str = "") -> dict[str, Any]:
    found = {
        "pk": {"S": pk},
        "kind": {"S": kind},
        "subject": {"S": subject},
        "expires_at": {"N": str(expires_at)},
        "blocked_at": {"N": "1"},
        "reason": {"S": "R6"},
        "finding_id": {"S": "f" * 64},
        "endpoint_id": {"S": "-"},
        "severity": {"S": "CRITICAL"},
    }
    if source:
        found["source"] = {"S": source}
    return found


def lookup(
    script: list[Any], *, call_seconds: float = 0.01
) -> tuple[BlocklistLookup, ScriptedDynamoDb, FakeClock]:
    clock = FakeClock()
    dynamodb = ScriptedDynamoDb(clock, script, call_seconds)
    reader = BatchGetWithinBudget(dynamodb, budget=LookupBudget(), clock=clock, sleep=clock.sleep)
    return BlocklistLookup(reader, TABLE), dynamodb, clock


@pytest.mark.parametrize(
    ("answer", "call_seconds"),
    [
        (throttled(), 0.01),
        (throttled("ThrottlingException"), 0.01),
        (throttled("InternalServerError", 500), 0.3),
        (throttled("HTTP503", 503), 0.3),
        (DynamoDbTransportError("TimeoutError: timed out"), LookupBudget().call_seconds),
        ("unprocessed", 0.05),
    ],
    ids=[
        "provisioned-throughput",
        "throttling",
        "server-error",
        "unnamed-5xx",
        "read-timeouts",
        "unprocessed-keys",
    ],
)
def test_a_lookup_that_never_succeeds_gives_up_within_the_budget(answer: Any, call_seconds: float) -> None:
    """Given a table that throttles, fails, times out or leaves every key unprocessed on every call,
    when the blocklist is read, then it retries with backoff and raises BlocklistUnavailable before
    the budget (2 s) is spent, each call included."""
    blocklist, dynamodb, clock = lookup([answer], call_seconds=call_seconds)
    started = clock()

    with pytest.raises(BlocklistUnavailable, match="not read within 2 s"):
        blocklist.active_blocks(["source#198.51.100.7", "user#ann"], int(NOW.timestamp()))

    assert clock() - started <= LookupBudget().total_seconds
    assert len(dynamodb.calls) >= (2 if call_seconds < 0.5 else 1)


def test_a_throttle_then_an_answer_returns_the_blocks() -> None:
    """Given a throttle, then unprocessed keys, then the items, when read, then the active blocks come
    back (expired ones left out), after three calls."""
    expires = int(NOW.timestamp()) + 3600
    found = [
        item("source#198.51.100.7", "source", "198.51.100.7", expires),
        item("user#ann", "user", "ann", int(NOW.timestamp()) - 1),
    ]
    blocklist, dynamodb, _ = lookup([throttled(), "unprocessed", found])

    blocks = blocklist.active_blocks(["source#198.51.100.7", "user#ann"], int(NOW.timestamp()))

    assert [block.key for block in blocks] == ["source#198.51.100.7"]
    assert len(dynamodb.calls) == 3


@pytest.mark.parametrize(
    "code", ["ValidationException", "AccessDeniedException", "ResourceNotFoundException"]
)
def test_a_request_dynamodb_refuses_is_not_retried(code: str) -> None:
    blocklist, dynamodb, _ = lookup([throttled(code)])

    with pytest.raises(BlocklistUnavailable, match=code):
        blocklist.active_blocks(["user#ann"], int(NOW.timestamp()))
    assert len(dynamodb.calls) == 1


def test_the_backoff_doubles_up_to_its_bound() -> None:
    """Given a table that throttles every call, when read, then the waits between calls double from
    the first backoff and stop growing at the bound."""
    clock = FakeClock()
    dynamodb = ScriptedDynamoDb(clock, [throttled()], 0.0)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.sleep(seconds)

    reader = BatchGetWithinBudget(dynamodb, budget=LookupBudget(), clock=clock, sleep=sleep)
    with pytest.raises(BlocklistUnavailable):
        BlocklistLookup(reader, TABLE).active_blocks(["user#ann"], int(NOW.timestamp()))

    assert waits[:5] == [0.02, 0.04, 0.08, 0.16, 0.2]
    assert max(waits) == 0.2


def test_a_budget_must_leave_room_for_one_call() -> None:
    with pytest.raises(ValueError, match="total_seconds"):
        LookupBudget(total_seconds=1.0, connect_timeout=0.5, read_timeout=0.7)
    assert LookupBudget().call_seconds == pytest.approx(1.2)


class Unreadable:
    def active_blocks(self, keys: list[str], now: int) -> list[BlockEntry]:
        raise BlocklistUnavailable("blocklist not read within 2 s (9 attempts; last: keys unprocessed)")


def request(**fields: str) -> ClientConnectRequest:
    return ClientConnectRequest.from_event(
        {"connection-id": "cvpn-connection-1", "username": "ann", "public-ip": "198.51.100.7", **fields}
    )


def test_fail_open_allows_and_fail_closed_refuses_when_the_blocklist_is_unreadable() -> None:
    opened = authorize_connection(request(), Unreadable(), now=NOW, fail_mode="open")
    closed = authorize_connection(request(), Unreadable(), now=NOW, fail_mode="closed")

    assert opened.response.allow and opened.blocklist_error and "unprocessed" in opened.blocklist_error
    assert not closed.response.allow and closed.blocklist_error
    assert "access check is unavailable" in closed.response.error_msg_on_denied_connection
    assert len(closed.response.error_msg_on_denied_connection) <= 255


def test_a_user_blocked_from_one_address_is_refused_there_only() -> None:
    """Given ann blocked from 203.0.113.9 (an address that attacked her), when ann connects from there
    she is refused with a message naming both; ann from her office and bob from 203.0.113.9 get in."""
    blocklist = MemoryBlocklist()
    expires = int((NOW + timedelta(hours=24)).timestamp())
    blocklist.block(BlockEntry("user_source", "Ann", expires, 1, "R6", "f" * 64, source="203.0.113.9"))
    assert user_source_key("ANN", "203.0.113.9") == "user_source#203.0.113.9#ann"

    there = authorize_connection(request(**{"public-ip": "203.0.113.9"}), blocklist, now=NOW)
    office = authorize_connection(request(**{"public-ip": "198.51.100.7"}), blocklist, now=NOW)
    other = authorize_connection(request(username="bob", **{"public-ip": "203.0.113.9"}), blocklist, now=NOW)
    by_certificate = authorize_connection(
        request(username="", **{"common-name": "ann", "public-ip": "203.0.113.9"}), blocklist, now=NOW
    )

    assert not there.response.allow
    assert "the account Ann from your address 203.0.113.9" in there.response.error_msg_on_denied_connection
    assert office.response.allow and other.response.allow
    assert not by_certificate.response.allow


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("not an object", "request: an object was expected, not str"),
        ({"public-ip": "999.1.1.1", "username": "ann"}, "public-ip: not an IPv4 or IPv6 address"),
        ({"username": 42}, "username: Input should be a valid string"),
        ({"username": "a" * 1025}, "username: longer than 1024 bytes"),
        ({"common-name": "é" * 600}, "common-name: longer than 1024 bytes"),
        ({"schema-version": "latest"}, "schema-version: not a schema version such as v2"),
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(event: Any, reason: str) -> None:
    decision = decide(event, MemoryBlocklist(), now=NOW)

    assert not decision.response.allow
    assert decision.malformed is not None and reason in decision.malformed
    assert reason in decision.response.error_msg_on_denied_connection
    assert decision.response.to_answer()["schema-version"] == "v2"

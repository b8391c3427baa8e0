"""Grants enforced at connect: on an endpoint whose access-policy item says ``grants``, only a user
with an active grant there connects, and a refusal says why and where to ask; an endpoint without it
keeps the blocklist-only behaviour. The blocklist and the grants are read in one BatchGetItem, and a
lookup that fails within its budget follows the fail mode."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from cvpn_shared.access.grants.dal import DynamoDbGrants
from cvpn_shared.access.grants.logic import break_glass, request
from cvpn_shared.access.grants.models import Actor, Person
from cvpn_shared.access.profiles import parse_profile
from cvpn_shared.core.connect_keys import connect_key, endpoint_policy_key
from cvpn_shared.monitoring.client_connect import (
    MAX_DENIAL_MESSAGE_CHARS,
    ClientConnectRequest,
    authorize_connection,
    decide,
    grant_refusal,
)
from cvpn_shared.monitoring.dal.blocklist import BlockEntry, BlocklistLookup, blocklist_key
from cvpn_shared.monitoring.dal.connect_lookup import ConnectLookup, GrantGate
from cvpn_shared.monitoring.dal.dynamodb_json import (
    BatchGetWithinBudget,
    Credentials,
    DynamoDbError,
    DynamoDbJsonClient,
    LookupBudget,
    http_date,
)
from localcloud.sam import load_template
from tests.fixtures import REPO_ROOT

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())
ENDPOINT = "cvpn-endpoint-0123456789abcdef0"
BLOCKS = "blocklist"
GRANTS = "access-grants"
FORM = "https://abc123.execute-api.eu-west-1.amazonaws.com/"


@dataclass
class Tables:
    """BatchGetItem over tables in memory: the keys found come back, absent ones are left out."""

    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: list[Mapping[str, Any]] = field(default_factory=list)
    failure: Exception | None = None
    last_answer_time: float | None = None

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.items.setdefault(table, {})[item["pk"]["S"]] = item

    def batch_get_item(self, RequestItems: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(RequestItems)
        if self.failure is not None:
            raise self.failure
        return {
            "Responses": {
                table: [
                    self.items[table][key["pk"]["S"]]
                    for key in request["Keys"]
                    if key["pk"]["S"] in self.items.get(table, {})
                ]
                for table, request in RequestItems.items()
            },
            "UnprocessedKeys": {},
        }


def lookup_over(tables: Tables, grants_table: str = GRANTS) -> ConnectLookup:
    reader = BatchGetWithinBudget(tables, budget=LookupBudget(), sleep=lambda seconds: None)
    return ConnectLookup(reader, BlocklistLookup(reader, BLOCKS), grants_table)


def enforced(tables: Tables, profile: str = "engineering") -> None:
    tables.put(
        GRANTS,
        {"pk": {"S": endpoint_policy_key(ENDPOINT)}, "access": {"S": "grants"}, "profile": {"S": profile}},
    )


def granted(tables: Tables, user: str, until: int) -> None:
    tables.put(GRANTS, {"pk": {"S": connect_key(ENDPOINT, user)}, "active_until": {"N": str(until)}})


def blocked(tables: Tables, entry: BlockEntry) -> None:
    tables.put(
        BLOCKS,
        {
            "pk": {"S": entry.key},
            "kind": {"S": entry.kind},
            "subject": {"S": entry.value},
            "expires_at": {"N": str(entry.expires_at)},
            "blocked_at": {"N": "1"},
            "reason": {"S": "R6"},
            "finding_id": {"S": "f" * 64},
        },
    )


def login(username: str = "Alice", **fields: str) -> ClientConnectRequest:
    values = {
        "connection_id": "cvpn-connection-1",
        "endpoint_id": ENDPOINT,
        "username": username,
        "public_ip": "198.51.100.7",
        **fields,
    }
    return ClientConnectRequest(**values)


def judge(tables: Tables, request: ClientConnectRequest, **options: Any) -> Any:
    return authorize_connection(request, lookup_over(tables), now=NOW, form_url=FORM, **options)


# ------------------------------------------------------------------------------- the decision table
def test_an_endpoint_without_a_policy_item_admits_as_before_without_a_grant() -> None:
    tables = Tables()

    decision = judge(tables, login())

    assert decision.response.allow and decision.gate is not None and not decision.gate.enforced
    assert len(tables.calls) == 1 and set(tables.calls[0]) == {BLOCKS, GRANTS}
    assert {key["pk"]["S"] for key in tables.calls[0][GRANTS]["Keys"]} == {
        endpoint_policy_key(ENDPOINT),
        connect_key(ENDPOINT, "alice"),
    }


def test_a_user_with_an_active_grant_connects_whatever_the_case_of_the_name() -> None:
    tables = Tables()
    enforced(tables)
    granted(tables, "alice", EPOCH + 60)

    decision = judge(tables, login("ALICE"))

    assert decision.response.allow, decision.response
    assert decision.gate.active_until == EPOCH + 60 and not decision.no_grant


def test_a_user_whose_grant_ended_is_refused_with_when_and_where_to_ask() -> None:
    tables = Tables()
    enforced(tables)
    granted(tables, "alice", EPOCH)  # ended this very second: the end is exclusive

    decision = judge(tables, login())

    message = decision.response.error_msg_on_denied_connection
    assert not decision.response.allow and decision.no_grant
    assert message == (
        "Access refused: your access grant for this VPN ended at 2026-12-07 09:00 UTC. "
        f"Ask for access at {FORM} (profile engineering)."
    )


def test_a_user_without_a_grant_is_refused_with_where_to_ask() -> None:
    tables = Tables()
    enforced(tables)
    granted(tables, "bob", EPOCH + 3600)  # someone else's grant lets nobody else in

    decision = judge(tables, login())

    assert not decision.response.allow and decision.no_grant
    assert decision.response.error_msg_on_denied_connection == (
        f"Access refused: you have no active access grant for this VPN. Ask for access at {FORM} "
        "(profile engineering)."
    )


def test_a_blocked_user_with_a_grant_is_refused_for_the_block() -> None:
    tables = Tables()
    enforced(tables)
    granted(tables, "alice", EPOCH + 3600)
    blocked(tables, BlockEntry("user", "alice", EPOCH + 900, 1, "R6", "f" * 64))

    decision = judge(tables, login())

    assert not decision.response.allow and not decision.no_grant
    assert [entry.key for entry in decision.blocks] == [blocklist_key("user", "alice")]
    assert "temporarily blocked" in decision.response.error_msg_on_denied_connection
    assert len(tables.calls) == 1


@pytest.mark.parametrize(("mode", "allowed"), [("open", True), ("closed", False)])
def test_a_lookup_that_fails_follows_the_fail_mode_grants_unchecked(mode: Any, allowed: bool) -> None:
    tables = Tables(failure=DynamoDbError("AccessDeniedException", "no", 400))
    enforced(tables)

    decision = judge(tables, login(), fail_mode=mode)

    assert decision.response.allow is allowed
    assert decision.blocklist_error and "blocklist and grants" in decision.blocklist_error
    assert not decision.no_grant and decision.gate is None


def test_without_a_grants_table_no_endpoint_enforces_grants_and_grants_are_not_read() -> None:
    tables = Tables()
    enforced(tables)
    lookup = lookup_over(tables, grants_table="")

    decision = authorize_connection(login(), lookup, now=NOW, form_url=FORM)

    assert decision.response.allow and decision.gate is None
    assert set(tables.calls[0]) == {BLOCKS}


def test_a_certificate_user_holds_a_grant_under_the_common_name() -> None:
    tables = Tables()
    enforced(tables)
    granted(tables, "laptop-17.example.com", EPOCH + 60)

    allowed = judge(tables, login("", common_name="Laptop-17.example.com"))
    refused = judge(tables, login("NA", common_name="laptop-18.example.com"))

    assert allowed.response.allow
    assert not refused.response.allow and refused.no_grant


def test_a_user_name_does_not_borrow_the_common_names_grant() -> None:
    tables = Tables()
    enforced(tables)
    granted(tables, "shared-client-cert", EPOCH + 60)

    decision = judge(tables, login("mallory", common_name="shared-client-cert"))

    assert not decision.response.allow and decision.no_grant


def test_expiry_is_judged_at_the_services_time_when_it_is_later_than_the_functions() -> None:
    tables = Tables(last_answer_time=EPOCH + 120.0)  # the table's clock (an emulated one) ran ahead
    enforced(tables)
    granted(tables, "alice", EPOCH + 60)

    decision = judge(tables, login())

    assert not decision.response.allow and "ended at 2026-12-07 09:01 UTC" in (
        decision.response.error_msg_on_denied_connection
    )


def test_a_service_clock_behind_the_functions_does_not_extend_a_grant() -> None:
    tables = Tables(last_answer_time=EPOCH - 3600.0)
    enforced(tables)
    granted(tables, "alice", EPOCH - 1)

    assert not judge(tables, login()).response.allow


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://" + "very-long-host-name." * 8 + "example.com/forms/vpn-access/",
        "https://vpn.example.com/" + "x" * 170,
    ],
)
def test_the_refusal_fits_client_vpns_limit_and_keeps_the_url_whole_when_it_fits(url: str) -> None:
    tables = Tables()
    enforced(tables, profile="p" * 63)

    decision = authorize_connection(login(), lookup_over(tables), now=NOW, form_url=url)

    message = decision.response.error_msg_on_denied_connection
    assert not decision.response.allow and len(message) <= MAX_DENIAL_MESSAGE_CHARS
    assert len(url) <= 200  # what REQUEST_FORM_URL accepts
    if url:
        assert url in message
    else:
        assert "Ask an administrator for access" in message


@settings(max_examples=1000, deadline=None, database=None)
@given(
    profile=st.text(max_size=300),
    url=st.one_of(
        st.just(""),
        st.builds(lambda path: "https://vpn.example.com/" + path, st.text(max_size=176)).filter(
            lambda url: url.isprintable()
        ),
    ),
    active_until=st.integers(min_value=0, max_value=EPOCH),
)
def test_any_refusal_for_want_of_a_grant_fits_and_keeps_the_url(
    profile: str, url: str, active_until: int
) -> None:
    message = grant_refusal(GrantGate(True, active_until, profile), now=EPOCH, form_url=url)

    assert message is not None and len(message) <= MAX_DENIAL_MESSAGE_CHARS
    assert not any(ord(character) < 0x20 or 0x7F <= ord(character) <= 0x9F for character in message)
    assert url.strip() in message if url.strip() else "administrator" in message  # kept whole, trimmed
    assert grant_refusal(GrantGate(True, EPOCH + 1, profile), now=EPOCH, form_url=url) is None
    assert grant_refusal(GrantGate(False, active_until, profile), now=EPOCH, form_url=url) is None


def test_a_malformed_request_is_refused_before_any_read() -> None:
    tables = Tables()
    enforced(tables)

    decision = decide({"endpoint-id": 7}, lookup_over(tables), now=NOW, form_url=FORM)

    assert not decision.response.allow and decision.malformed and not tables.calls


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon, 07 Dec 2026 09:00:00 GMT", EPOCH),
        ("Mon, 07 Dec 2026 09:00:00 +0100", None),
        ("Mon, 07 Foo 2026 09:00:00 GMT", None),
        ("Mon, 31 Feb 2026 09:00:00 GMT", None),
        ("Mon, 07 Dec 2026 09:00 GMT", None),
        ("", None),
    ],
)
def test_an_http_date_is_read_or_ignored(text: str, expected: int | None) -> None:
    assert http_date(text) == expected


# ------------------------------------------------------- the JSON client against DynamoDB (moto)
@pytest.fixture(scope="module")
def dynamodb_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _create_tables(url: str) -> Any:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    resources = load_template(REPO_ROOT / "template.yaml")["Resources"]
    for name, logical in ((GRANTS, "AccessGrantsTable"), (BLOCKS, "BlocklistTable")):
        properties = resources[logical]["Properties"]
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            **{
                key: properties[key]
                for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
                if key in properties
            },
        )
    return client


@dataclass
class Counting:
    client: DynamoDbJsonClient
    calls: int = 0

    @property
    def last_answer_time(self) -> float | None:
        return self.client.last_answer_time

    def batch_get_item(self, RequestItems: Mapping[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return self.client.batch_get_item(RequestItems=RequestItems)


def test_the_json_client_reads_the_blocklist_and_grants_as_the_access_area_writes_them(
    dynamodb_url: str,
) -> None:
    """Given the grants table written by the access area (the endpoint enforced, a break-glass grant
    of Alice) and a block of Bob, when the handler's botocore-free client looks up each login, then
    one BatchGetItem reads both tables, with the service's time from its answer."""
    dynamodb = _create_tables(dynamodb_url)
    now = datetime.now(UTC)
    store = DynamoDbGrants(dynamodb, GRANTS)
    document = json.loads((REPO_ROOT / "events" / "profiles" / "engineering.json").read_text())
    profile = parse_profile("engineering", {**document, "endpoint_request_id": "NET-100"})
    admin = Actor(kind="aws", id="arn:aws:iam::123456789012:user/admin", name="admin")
    asked = request(
        person=Person(issuer="https://login.example.com", sub="00u-alice", vpn_user="Alice"),
        profile=profile,
        endpoint_id=ENDPOINT,
        access_groups=[],
        hours=2,
        reason="incident 4711",
        by=admin,
        now=now,
    )
    grant = break_glass(asked, by=admin, now=now)
    assert store.enforce(ENDPOINT, profile="engineering", by="admin", at=now)
    assert not store.enforce(ENDPOINT, profile="other", by="someone else", at=now)  # the first is kept
    store.write(None, grant)
    dynamodb.put_item(
        TableName=BLOCKS,
        Item={
            "pk": {"S": "user#bob"},
            "kind": {"S": "user"},
            "subject": {"S": "bob"},
            "expires_at": {"N": str(int(now.timestamp()) + 900)},
            "blocked_at": {"N": "1"},
            "reason": {"S": "R6"},
        },
    )
    counting = Counting(
        DynamoDbJsonClient(
            region="us-east-1",
            endpoint=dynamodb_url,
            connect_timeout=0.5,
            read_timeout=2.0,
            credentials=lambda: Credentials("testing", "testing"),
        )
    )
    reader = BatchGetWithinBudget(counting, budget=LookupBudget(total_seconds=5.0, read_timeout=2.0))
    lookup = ConnectLookup(reader, BlocklistLookup(reader, BLOCKS), GRANTS)

    alice = authorize_connection(login("alice"), lookup, now=now, form_url=FORM)
    carol = authorize_connection(login("carol"), lookup, now=now, form_url=FORM)
    bob = authorize_connection(login("bob", public_ip="203.0.113.9"), lookup, now=now, form_url=FORM)
    later = authorize_connection(login("alice"), lookup, now=now + timedelta(hours=3), form_url=FORM)

    assert counting.calls == 4  # one BatchGetItem per login, both tables in it
    assert alice.response.allow and alice.gate.profile == "engineering"
    assert alice.gate.active_until == int(grant.ends_at.timestamp())  # type: ignore[union-attr]
    assert not carol.response.allow and carol.no_grant
    assert not bob.response.allow and [entry.key for entry in bob.blocks] == ["user#bob"]
    assert not later.response.allow and "ended at" in later.response.error_msg_on_denied_connection
    answered = counting.last_answer_time
    assert answered is not None and abs(answered - now.timestamp()) < 60
    assert store.enforcement(ENDPOINT) == {
        "access": "grants",
        "profile": "engineering",
        "enforced_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "enforced_by": "admin",
    }
    assert store.relax(ENDPOINT) and not store.relax(ENDPOINT)
    assert authorize_connection(login("carol"), lookup, now=now, form_url=FORM).response.allow

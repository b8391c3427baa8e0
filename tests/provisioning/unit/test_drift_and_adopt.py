"""The drift check over the requests table, and the adoption record, with in-memory stand-ins for AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cvpn_shared.provisioning.adopt import AlreadyManaged, adopt_endpoint, adoption_revision, ensure_adoptable
from cvpn_shared.provisioning.drift import check_endpoint, managed_endpoints, run_drift_check
from cvpn_shared.provisioning.errors import EndpointNotYetVisible
from cvpn_shared.provisioning.live_state import desired_state_from_live, read_live_endpoint
from cvpn_shared.provisioning.monitored_log_groups import MONITORED_LOG_GROUP
from cvpn_shared.provisioning.tags import MANAGED_BY_TAG, REQUEST_ID_TAG, REQUESTER_TAG

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-1111-1111-1111-111111111111"
GROUP = "S-1-5-21-1-2-3-1001"
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def document(request_id: str = "NET-1", **overrides: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "requester": "alice@example.com",
        "name": "office",
        "vpc_id": "vpc-00000001",
        "subnet_ids": ["subnet-0000000a"],
        "client_cidr_block": "172.16.0.0/22",
        "server_certificate_arn": CERT,
        "authentication": [{"type": "active-directory", "directory_id": "d-0123456789"}],
        "authorization_rules": [{"target_network_cidr": "10.0.0.0/16", "access_group_id": GROUP}],
        "routes": [{"destination_cidr": "10.50.0.0/16"}],
        "connection_log": {"enabled": True, "log_group_name": "/cvpn/NET-1"},
        **overrides,
    }


class FakeClientVpn:
    """Describe answers of endpoints in botocore's shapes (what read_live_endpoint reads)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.tagged: list[tuple[str, dict[str, str]]] = []

    def add(self, endpoint_id: str, *, tags: dict[str, str] | None = None, session_hours: int = 24) -> None:
        self.endpoints[endpoint_id] = {
            "endpoint": {
                "ClientVpnEndpointId": endpoint_id,
                "Status": {"Code": "available"},
                "Description": "office",
                "VpcId": "vpc-00000001",
                "ClientCidrBlock": "172.16.0.0/22",
                "ServerCertificateArn": CERT,
                "AuthenticationOptions": [
                    {
                        "Type": "directory-service-authentication",
                        "ActiveDirectory": {"DirectoryId": "d-0123456789"},
                    }
                ],
                "ConnectionLogOptions": {"Enabled": True, "CloudwatchLogGroup": "/cvpn/NET-1"},
                "TransportProtocol": "udp",
                "VpnPort": 443,
                "SessionTimeoutHours": session_hours,
                "Tags": [
                    {"Key": key, "Value": value}
                    for key, value in (tags if tags is not None else {"Name": "office"}).items()
                ],
            },
            "networks": [
                {
                    "AssociationId": "cvpn-assoc-a",
                    "TargetNetworkId": "subnet-0000000a",
                    "VpcId": "vpc-00000001",
                    "Status": {"Code": "associated"},
                }
            ],
            "rules": [{"DestinationCidr": "10.0.0.0/16", "GroupId": GROUP, "Status": {"Code": "active"}}],
            "routes": [
                {
                    "DestinationCidr": "10.50.0.0/16",
                    "TargetSubnet": "subnet-0000000a",
                    "Origin": "add-route",
                    "Status": {"Code": "active"},
                }
            ],
            "connections": [{"Status": {"Code": "active"}}, {"Status": {"Code": "terminated"}}],
        }

    def _get(self, endpoint_id: str) -> dict[str, Any]:
        if endpoint_id not in self.endpoints:
            raise EndpointNotYetVisible(f"{endpoint_id} not found")
        return self.endpoints[endpoint_id]

    def describe_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self._get(endpoint_id)["endpoint"])

    def target_networks(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(self._get(endpoint_id)["networks"])

    def authorization_rules(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(self._get(endpoint_id)["rules"])

    def routes(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(self._get(endpoint_id)["routes"])

    def connections(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(self._get(endpoint_id)["connections"])

    def revocation_list(self, endpoint_id: str) -> str | None:
        return None

    def tag_endpoint(self, endpoint_id: str, tags: dict[str, str]) -> None:
        self.tagged.append((endpoint_id, tags))


class FakeRecords:
    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        self.items = {item["request_id"]: item for item in items or []}

    def managed_endpoints(self) -> list[dict[str, Any]]:
        return [
            item
            for item in self.items.values()
            if item.get("status") == "SUCCEEDED" and item.get("endpoint_id") and item.get("request")
        ]

    def find_by_endpoint(self, endpoint_id: str) -> list[dict[str, Any]]:
        return [item for item in self.managed_endpoints() if item["endpoint_id"] == endpoint_id]

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self.items.get(request_id)

    def put_adopted(self, item: dict[str, Any]) -> bool:
        if item["request_id"] in self.items:
            return False
        self.items[item["request_id"]] = item
        return True


class Sent:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.notifications: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.revisions: list[dict[str, Any]] = []

    def publish(self, *args: Any) -> str:
        if len(args) == 1:
            self.events.append(args[0])
        else:
            self.notifications.append(args)  # type: ignore[arg-type]
        return "id"

    def start(self, item: dict[str, Any]) -> None:
        self.revisions.append(item)


def item(request_id: str, endpoint_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "status": "SUCCEEDED",
        "endpoint_id": endpoint_id,
        "request": document(request_id),
        **fields,
    }


# ------------------------------------------------------------------------------------------ drift
def test_only_succeeded_requests_with_an_endpoint_and_a_document_are_checked() -> None:
    records = FakeRecords(
        [
            item("NET-1", "cvpn-endpoint-0000000000000000a", revision=3),
            item("NET-2", "cvpn-endpoint-0000000000000000b", status="DECOMMISSIONED"),
            {"request_id": "NET-3", "status": "SUCCEEDED", "endpoint_id": "cvpn-endpoint-0000000000000000c"},
        ]
    )
    found = managed_endpoints(records)  # type: ignore[arg-type]
    assert [(m.request_id, m.revision) for m in found] == [("NET-1", 3)]


def test_an_endpoint_as_recorded_is_in_sync_and_nothing_is_published() -> None:
    api, sent = FakeClientVpn(), Sent()
    api.add("cvpn-endpoint-0000000000000000a")
    records = FakeRecords([item("NET-1", "cvpn-endpoint-0000000000000000a")])
    summary = run_drift_check(api, records, sent, sent, now=NOW)  # type: ignore[arg-type]
    assert summary == {
        "checked_at": NOW.isoformat(),
        "checked": 1,
        "drifted": [],
        "unreadable": [],
        "differences": 0,
    }
    assert sent.events == [] and sent.notifications == []


def test_a_drifted_endpoint_publishes_one_event_and_one_notification_naming_each_difference() -> None:
    api, sent = FakeClientVpn(), Sent()
    api.add("cvpn-endpoint-0000000000000000a", session_hours=8)
    api.endpoints["cvpn-endpoint-0000000000000000a"]["routes"].append(
        {
            "DestinationCidr": "192.168.0.0/24",
            "TargetSubnet": "subnet-0000000a",
            "Origin": "add-route",
            "Status": {"Code": "active"},
        }
    )
    api.add("cvpn-endpoint-0000000000000000b")
    records = FakeRecords(
        [
            item("NET-1", "cvpn-endpoint-0000000000000000a", revision=2),
            item("NET-2", "cvpn-endpoint-0000000000000000b"),
        ]
    )
    summary = run_drift_check(api, records, sent, sent, now=NOW)  # type: ignore[arg-type]
    assert summary["drifted"] == ["cvpn-endpoint-0000000000000000a"] and summary["differences"] == 2
    (event,) = sent.events
    assert event["request_id"] == "NET-1" and event["revision"] == 2 and event["live_connections"] == 1
    assert [(d["field"], d["action"]) for d in event["differences"]] == [
        ("session_timeout_hours", "modify-endpoint"),
        ("routes", "delete-route"),
    ]
    assert "revision 2" in event["remedy"]
    ((subject, message, attributes),) = sent.notifications
    assert "cvpn-endpoint-0000000000000000a" in subject and message == event
    assert attributes == {"status": "DRIFTED", "request_id": "NET-1"}


def test_an_endpoint_deleted_out_of_band_is_reported_missing() -> None:
    api, sent = FakeClientVpn(), Sent()
    records = FakeRecords([item("NET-1", "cvpn-endpoint-0000000000000000a")])
    summary = run_drift_check(api, records, sent, sent, now=NOW)  # type: ignore[arg-type]
    assert summary["drifted"] == ["cvpn-endpoint-0000000000000000a"]
    (event,) = sent.events
    assert event["status"] == "endpoint-missing"
    assert event["differences"][0]["summary"].endswith("no longer exists (deleted out of band?)")


def test_an_unreadable_document_is_reported_not_published() -> None:
    api, sent = FakeClientVpn(), Sent()
    api.add("cvpn-endpoint-0000000000000000a")
    broken = item(
        "NET-1", "cvpn-endpoint-0000000000000000a", request=document(client_cidr_block="10.0.0.0/8")
    )
    summary = run_drift_check(api, FakeRecords([broken]), sent, sent, now=NOW)  # type: ignore[arg-type]
    assert summary["unreadable"] == ["NET-1"] and sent.events == []
    report = check_endpoint(api, managed_endpoints(FakeRecords([broken]))[0])  # type: ignore[arg-type]
    assert report.status == "unreadable" and "not a valid request" in report.error


# ------------------------------------------------------------------------------------------ adopt
def test_adopting_tags_records_and_writes_revision_one() -> None:
    api, records, sent = FakeClientVpn(), FakeRecords(), Sent()
    api.add("cvpn-endpoint-0000000000000000a")
    live = read_live_endpoint(api, "cvpn-endpoint-0000000000000000a")  # type: ignore[arg-type]
    request = desired_state_from_live(live, "NET-9", "bob@example.com")
    written = adopt_endpoint(api, records, request, live, adopted_by="bob", revisions=sent, now=NOW)  # type: ignore[arg-type]
    assert api.tagged == [
        (
            "cvpn-endpoint-0000000000000000a",
            {
                MANAGED_BY_TAG: "client-vpn-autopilot",
                REQUEST_ID_TAG: "NET-9",
                REQUESTER_TAG: "bob@example.com",
            },
        )
    ]
    assert written["status"] == "SUCCEEDED" and written["revision"] == 1
    assert written[MONITORED_LOG_GROUP] == "/cvpn/NET-1"
    assert records.get("NET-9") == written
    assert sent.revisions == [adoption_revision(written)]
    assert sent.revisions[0]["document"]["endpoint_id"] == "cvpn-endpoint-0000000000000000a"


def test_an_endpoint_without_name_or_description_is_adopted_and_planned_without_change() -> None:
    from cvpn_shared.provisioning.planning import plan_update

    api, records = FakeClientVpn(), FakeRecords()
    api.add("cvpn-endpoint-0000000000000000a", tags={})
    del api.endpoints["cvpn-endpoint-0000000000000000a"]["endpoint"]["Description"]
    live = read_live_endpoint(api, "cvpn-endpoint-0000000000000000a")  # type: ignore[arg-type]
    request = desired_state_from_live(live, "NET-9", "bob@example.com")
    assert request.name == "cvpn-endpoint-0000000000000000a"
    adopt_endpoint(api, records, request, live, adopted_by="bob", now=NOW)  # type: ignore[arg-type]
    assert api.tagged[0][1]["Name"] == "cvpn-endpoint-0000000000000000a"
    api.endpoints["cvpn-endpoint-0000000000000000a"]["endpoint"]["Tags"] = [
        {"Key": key, "Value": value} for key, value in api.tagged[0][1].items()
    ]
    after = read_live_endpoint(api, "cvpn-endpoint-0000000000000000a")  # type: ignore[arg-type]
    assert plan_update(request, after, revision=2, live_connections=0).no_changes


def test_an_endpoint_already_managed_is_refused_naming_its_request() -> None:
    api = FakeClientVpn()
    api.add(
        "cvpn-endpoint-0000000000000000a",
        tags={MANAGED_BY_TAG: "client-vpn-autopilot", REQUEST_ID_TAG: "NET-1"},
    )
    live = read_live_endpoint(api, "cvpn-endpoint-0000000000000000a")  # type: ignore[arg-type]
    with pytest.raises(AlreadyManaged, match="already managed by request NET-1"):
        ensure_adoptable(live, FakeRecords(), "NET-9")  # type: ignore[arg-type]


def test_an_endpoint_recorded_under_a_request_or_a_taken_request_id_is_refused() -> None:
    api = FakeClientVpn()
    api.add("cvpn-endpoint-0000000000000000a")
    live = read_live_endpoint(api, "cvpn-endpoint-0000000000000000a")  # type: ignore[arg-type]
    recorded = FakeRecords([item("NET-1", "cvpn-endpoint-0000000000000000a")])
    with pytest.raises(AlreadyManaged, match="endpoint of request NET-1"):
        ensure_adoptable(live, recorded, "NET-9")  # type: ignore[arg-type]
    taken = FakeRecords([item("NET-9", "cvpn-endpoint-0000000000000000z", status="DECOMMISSIONED")])
    with pytest.raises(AlreadyManaged, match="--request-id NET-9: the requests table already holds"):
        ensure_adoptable(live, taken, "NET-9")  # type: ignore[arg-type]

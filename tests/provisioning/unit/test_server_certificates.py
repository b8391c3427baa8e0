"""The server certificate check: expiring or not, rotation allowed or not, which renewed certificate,
and whether users need a new configuration; with in-memory stand-ins for ACM and Step Functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cvpn_shared.provisioning.dal.acm_certificates import CertificateNotFound, chain_fingerprints
from cvpn_shared.provisioning.models.certificate_facts import CertificateFacts
from cvpn_shared.provisioning.models.request import ProvisionRequest
from cvpn_shared.provisioning.server_certificates import (
    APPLIED_BY,
    CERTIFICATE_DETAIL_TYPE,
    choose_replacement,
    days_left,
    expiry_status,
    needs_new_configuration,
    rotation_execution_name,
    run_server_certificate_check,
)

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/{:08d}-1111-1111-1111-111111111111"
CURRENT = ARN.format(1)
CA_ONE = frozenset({"ca-one"})
CA_TWO = frozenset({"ca-two"})


def cert(
    number: int,
    *,
    days: float,
    names: tuple[str, ...] = ("vpn.example.com",),
    status: str = "ISSUED",
    kind: str = "IMPORTED",
    chain: frozenset[str] = CA_ONE,
    valid_from_days: float = -1,
    imported_days_ago: float = 1,
) -> CertificateFacts:
    return CertificateFacts(
        arn=ARN.format(number),
        domain_name=names[0],
        subject_alternative_names=list(names),
        status=status,
        type=kind,
        not_before=NOW + timedelta(days=valid_from_days),
        not_after=NOW + timedelta(days=days),
        imported_at=NOW - timedelta(days=imported_days_ago),
        chain=chain,
    )


def document(request_id: str = "NET-1", **overrides: Any) -> dict[str, Any]:
    return {
        "schema_version": "2",
        "request_id": request_id,
        "requester": "alice@example.com",
        "name": "office",
        "vpc_id": "vpc-00000001",
        "subnet_ids": ["subnet-0000000a"],
        "client_cidr_block": "172.16.0.0/22",
        "server_certificate_arn": CURRENT,
        "authentication": [{"type": "active-directory", "directory_id": "d-0123456789"}],
        "authorization_rules": [{"target_network_cidr": "10.0.0.0/16", "authorize_all_groups": True}],
        "connection_log": {"enabled": False},
        **overrides,
    }


class FakeAcm:
    def __init__(self, *certificates: CertificateFacts) -> None:
        self.certificates = {c.arn: c for c in certificates}
        self.listed: list[str] = []

    def describe(self, arn: str, *, with_chain: bool = True) -> CertificateFacts:
        if arn not in self.certificates:
            raise CertificateNotFound(f"{arn} does not exist in ACM")
        return self.certificates[arn]

    def issued_for(self, domain_name: str) -> list[str]:
        self.listed.append(domain_name)
        return [
            a for a, c in self.certificates.items() if c.status == "ISSUED" and c.domain_name == domain_name
        ]


class FakeUpdates:
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []

    def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
        self.started.append((name, payload))
        return f"arn:aws:states:us-east-1:123456789012:execution:update:{name}", True


class FakeRecords:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = list(items)

    def managed_endpoints(self) -> list[dict[str, Any]]:
        return self.items


class FakeEvents:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any], list[str]]] = []

    def publish(
        self, detail: dict[str, Any], resources: list[str] | None = None, *, detail_type: str = ""
    ) -> str:
        self.published.append((detail_type, detail, list(resources or [])))
        return "event-1"


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def publish(self, subject: str, message: dict[str, Any], attributes: dict[str, str]) -> str:
        self.sent.append((subject, message, attributes))
        return "message-1"


def managed(
    request: dict[str, Any], endpoint_id: str = "cvpn-endpoint-0123456789abcdef0", revision: int = 3
) -> dict[str, Any]:
    return {
        "request_id": request["request_id"],
        "endpoint_id": endpoint_id,
        "revision": revision,
        "request": request,
        "status": "SUCCEEDED",
    }


def run(
    acm: FakeAcm, *items: dict[str, Any], threshold: int = 30
) -> tuple[dict[str, Any], FakeUpdates, FakeEvents, FakeNotifier]:
    updates, events, notifier = FakeUpdates(), FakeEvents(), FakeNotifier()
    summary = run_server_certificate_check(
        acm,
        FakeRecords(*items),
        updates,
        events,
        notifier,
        threshold_days=threshold,
        now=NOW,  # type: ignore[arg-type]
    )
    return summary, updates, events, notifier


# ----------------------------------------------------------------------------- expiring or not
@pytest.mark.parametrize(
    ("days", "status"),
    [
        (31, "valid"),
        (30.01, "valid"),
        (30, "expiring"),
        (10, "expiring"),
        (0.5, "expiring"),
        (0, "expired"),
        (-3, "expired"),
    ],
)
def test_expiry_status_follows_the_threshold(days: float, status: str) -> None:
    assert expiry_status(cert(1, days=days), NOW, 30) == status


def test_acm_saying_expired_is_expired_whatever_the_date() -> None:
    assert expiry_status(cert(1, days=100, status="EXPIRED"), NOW, 30) == "expired"


@given(seconds=st.integers(min_value=-400 * 86400, max_value=400 * 86400), threshold=st.integers(1, 365))
@settings(max_examples=1000, deadline=None, database=None)
def test_days_left_and_status_agree(seconds: int, threshold: int) -> None:
    facts = cert(1, days=seconds / 86400)
    left = days_left(facts.not_after, NOW)  # type: ignore[arg-type]
    assert left * 86400 <= seconds < (left + 1) * 86400
    status = expiry_status(facts, NOW, threshold)
    assert status == ("expired" if seconds <= 0 else "expiring" if seconds <= threshold * 86400 else "valid")


# ----------------------------------------------------------------------------- candidate selection
def test_the_renewed_certificate_is_the_one_that_expires_last() -> None:
    current = cert(1, days=10)
    later, latest = cert(2, days=200), cert(3, days=390)
    assert choose_replacement(current, [later, latest], NOW, 30) == latest


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        (cert(2, days=400, status="EXPIRED"), "not issued"),
        (cert(2, days=400, status="INACTIVE"), "not issued"),
        (cert(2, days=20), "expires within the threshold itself"),
        (cert(2, days=5), "expires before the current one"),
        (cert(2, days=400, names=("other.example.com",)), "another name"),
        (cert(2, days=400, valid_from_days=2), "not valid yet"),
        (cert(1, days=400), "the current certificate itself"),
    ],
)
def test_what_is_never_a_renewed_certificate(candidate: CertificateFacts, why: str) -> None:
    assert choose_replacement(cert(1, days=10), [candidate], NOW, 30) is None, why


def test_the_renewed_certificate_covers_every_name_of_the_current_one() -> None:
    current = cert(1, days=10, names=("vpn.example.com", "vpn2.example.com"))
    fewer = cert(2, days=400, names=("vpn.example.com",))
    more = cert(3, days=300, names=("vpn.example.com", "VPN2.example.com", "vpn3.example.com"))
    assert choose_replacement(current, [fewer, more], NOW, 30) == more


def test_ties_go_to_the_certificate_imported_last() -> None:
    older, newer = cert(2, days=400, imported_days_ago=5), cert(3, days=400, imported_days_ago=1)
    assert choose_replacement(cert(1, days=10), [older, newer], NOW, 30) == newer
    assert choose_replacement(cert(1, days=10), [newer, older], NOW, 30) == newer


def test_users_keep_their_configuration_only_with_the_same_ca_chain() -> None:
    assert needs_new_configuration(cert(1, days=10), cert(2, days=400)) is False
    assert needs_new_configuration(cert(1, days=10), cert(2, days=400, chain=CA_TWO)) is True
    assert needs_new_configuration(cert(1, days=10, chain=frozenset()), cert(2, days=400, chain=frozenset()))


def test_chain_fingerprints_read_every_pem_certificate_in_any_order() -> None:
    one = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----"
    two = "-----BEGIN CERTIFICATE-----\nMAMCAQI=\n-----END CERTIFICATE-----"
    assert chain_fingerprints(f"{one}\n{two}\n") == chain_fingerprints(f"{two}\r\n{one}")
    assert len(chain_fingerprints(f"{one}\n{two}")) == 2 and chain_fingerprints("") == frozenset()


# ----------------------------------------------------------------------------- the check
def test_a_valid_certificate_raises_nothing() -> None:
    summary, updates, events, notifier = run(FakeAcm(cert(1, days=90)), managed(document()))
    assert summary["checked"] == 1 and summary["expiring"] == [] and summary["fewest_days_left"] is None
    assert (updates.started, events.published, notifier.sent) == ([], [], [])


def test_allowed_rotation_starts_the_update_workflow_with_the_renewed_arn() -> None:
    request = document(server_certificate_rotation={"automatic": True})
    renewed = cert(2, days=395)
    summary, updates, events, notifier = run(FakeAcm(cert(1, days=10), renewed), managed(request, revision=3))
    ((name, payload),) = updates.started
    assert name == rotation_execution_name("NET-1", 4, renewed.arn)
    assert payload["request"] == {**request, "server_certificate_arn": renewed.arn}
    assert (payload["applied_by"], payload["revision"], payload["new_configuration_needed"]) == (
        APPLIED_BY,
        4,
        False,
    )
    assert "keep their client configuration" in payload["users_notice"]
    assert (
        summary["rotations_started"] == ["cvpn-endpoint-0123456789abcdef0"]
        and summary["fewest_days_left"] == 10
    )
    ((detail_type, detail, resources),) = events.published
    assert detail_type == CERTIFICATE_DETAIL_TYPE and resources == [CURRENT]
    assert (detail["days_left"], detail["action"], detail["replacement_arn"]) == (
        10,
        "rotation-started",
        renewed.arn,
    )
    assert detail["new_configuration_needed"] is False and detail["execution_arn"].endswith(name)
    ((subject, message, attributes),) = notifier.sent
    assert subject == "Client VPN server certificate of cvpn-endpoint-0123456789abcdef0 expires in 10 day(s)"
    assert message == detail and attributes == {
        "status": "SERVER_CERTIFICATE_EXPIRING",
        "request_id": "NET-1",
    }


@pytest.mark.parametrize(
    "rotation", [None, {"automatic": False}, {"automatic": False, "allow_new_certificate_authority": True}]
)
def test_not_allowed_is_only_alarmed(rotation: dict[str, Any] | None) -> None:
    request = document(**({"server_certificate_rotation": rotation} if rotation else {}))
    summary, updates, events, _ = run(FakeAcm(cert(1, days=10), cert(2, days=395)), managed(request))
    assert updates.started == [] and summary["expiring"] == ["cvpn-endpoint-0123456789abcdef0"]
    ((_, detail, _),) = events.published
    assert detail["action"] == "alarm-only" and detail["replacement_arn"] == ARN.format(2)
    assert "cvpn apply" in detail["remedy"]


def test_another_ca_needs_its_own_permission_and_says_users_need_a_new_configuration() -> None:
    acm = FakeAcm(cert(1, days=10), cert(2, days=395, chain=CA_TWO))
    _, updates, events, _ = run(acm, managed(document(server_certificate_rotation={"automatic": True})))
    ((_, detail, _),) = events.published
    assert updates.started == [] and detail["action"] == "renewed-certificate-found"
    assert (
        detail["new_configuration_needed"] is True
        and "must download a new client configuration" in detail["users"]
    )
    allowed = document(
        server_certificate_rotation={"automatic": True, "allow_new_certificate_authority": True}
    )
    _, updates, _, _ = run(acm, managed(allowed))
    ((_, payload),) = updates.started
    assert payload["new_configuration_needed"] is True and "must download" in payload["users_notice"]


def test_no_renewed_certificate_in_acm_tells_what_to_import() -> None:
    _, updates, events, _ = run(
        FakeAcm(cert(1, days=3), cert(2, days=20)),
        managed(document(server_certificate_rotation={"automatic": True})),
    )
    ((_, detail, _),) = events.published
    assert (
        updates.started == []
        and detail["action"] == "no-renewed-certificate"
        and "import the renewed" in detail["remedy"]
    )


def test_acm_managed_certificates_are_renewed_in_place_not_rotated() -> None:
    acm = FakeAcm(cert(1, days=10, kind="AMAZON_ISSUED"), cert(2, days=395))
    _, updates, events, _ = run(acm, managed(document(server_certificate_rotation={"automatic": True})))
    ((_, detail, _),) = events.published
    assert updates.started == [] and acm.listed == [] and detail["action"] == "awaiting-acm-renewal"


def test_a_certificate_gone_from_acm_and_an_unreadable_document_are_reported() -> None:
    gone = managed(document("NET-2"), endpoint_id="cvpn-endpoint-0123456789abcdef2")
    broken = managed({**document("NET-3"), "vpn_port": 8443}, endpoint_id="cvpn-endpoint-0123456789abcdef3")
    summary, updates, events, notifier = run(FakeAcm(), gone, broken)
    assert summary["expiring"] == ["cvpn-endpoint-0123456789abcdef2"] and summary["unreadable"] == ["NET-3"]
    ((_, detail, _),) = events.published
    assert detail["status"] == "missing" and "does not exist" in detail["error"]
    assert "missing from ACM" in notifier.sent[0][0] and updates.started == []


def test_several_endpoints_each_get_their_own_finding() -> None:
    items = [
        managed(document("NET-1"), endpoint_id="cvpn-endpoint-0123456789abcdef1"),
        managed(
            document("NET-2", server_certificate_arn=ARN.format(5)),
            endpoint_id="cvpn-endpoint-0123456789abcdef2",
        ),
    ]
    summary, _, events, _ = run(FakeAcm(cert(1, days=12), cert(5, days=200)), *items)
    assert summary["checked"] == 2 and [d["endpoint_id"] for _, d, _ in events.published] == [
        "cvpn-endpoint-0123456789abcdef1"
    ]


# ----------------------------------------------------------------------------- the document field
def test_rotation_is_a_version_two_field_with_clear_errors() -> None:
    ok = ProvisionRequest.model_validate(document(server_certificate_rotation={"automatic": True}))
    assert ok.server_certificate_rotation is not None and ok.server_certificate_rotation.automatic
    assert ok.server_certificate_rotation.allow_new_certificate_authority is False
    with pytest.raises(ValidationError) as version_one:
        ProvisionRequest.model_validate(
            document(schema_version="1", server_certificate_rotation={"automatic": True})
        )
    assert "server_certificate_rotation" in str(version_one.value) and 'schema_version "2"' in str(
        version_one.value
    )
    with pytest.raises(ValidationError) as unknown:
        ProvisionRequest.model_validate(
            document(server_certificate_rotation={"automatic": True, "source": "tag"})
        )
    assert "server_certificate_rotation.source" in str(unknown.value)
    with pytest.raises(ValidationError) as wrong_type:
        ProvisionRequest.model_validate(document(server_certificate_rotation={"automatic": "sometimes"}))
    assert "server_certificate_rotation.automatic" in str(wrong_type.value)


@pytest.mark.parametrize("request_id", ["NET-1", "a" * 128, "ticket:with.dots_and-dashes"])
def test_execution_names_are_names_step_functions_takes(request_id: str) -> None:
    name = rotation_execution_name(request_id, 12, CURRENT)
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)
    assert name != rotation_execution_name(request_id, 12, ARN.format(2))


def test_a_look_without_the_update_workflow_names_the_rotation_and_starts_nothing() -> None:
    from cvpn_shared.provisioning.drift import ManagedEndpoint
    from cvpn_shared.provisioning.server_certificates import check_certificate

    item = managed(document(server_certificate_rotation={"automatic": True}))
    report = check_certificate(
        FakeAcm(cert(1, days=10), cert(2, days=395)),
        None,
        ManagedEndpoint.model_validate(item),
        threshold_days=30,
        now=NOW,
    )
    assert (report.action, report.replacement_arn, report.execution_arn) == (
        "rotation-due",
        ARN.format(2),
        "",
    )
    assert "the daily check applies" in report.remedy()


def test_a_rotation_an_earlier_check_started_is_not_started_again_and_says_where_to_look() -> None:
    class Taken(FakeUpdates):
        def start(self, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
            self.started.append((name, payload))
            return f"arn:aws:states:us-east-1:123456789012:execution:update:{name}", False

    updates, events = Taken(), FakeEvents()
    run_server_certificate_check(
        FakeAcm(cert(1, days=10), cert(2, days=395)),
        FakeRecords(managed(document(server_certificate_rotation={"automatic": True}))),  # type: ignore[arg-type]
        updates,
        events,
        FakeNotifier(),  # type: ignore[arg-type]
        threshold_days=30,
        now=NOW,
    )
    ((_, detail, _),) = events.published
    assert detail["action"] == "rotation-started" and detail["execution_is_new"] is False
    assert "an earlier check started" in detail["remedy"] and "cvpn history NET-1" in detail["remedy"]

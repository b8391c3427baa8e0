"""The update state machine on the local cloud: each kind of change alone and all together, a change
applied twice, a failure in each step restoring the previous state.

One endpoint is provisioned for the module; every test starts from its base document and leaves the
endpoint as the base document describes it (checked by the next test's plan being empty).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.live_state import read_live_endpoint
from localcloud.faults import api_call_counts, get_fault_injector, reset_api_call_counts
from tests.fixtures.crl import make_crl_pem
from tests.provisioning.workflow.harness import ExecutionProgress, Provisioning

GROUP_B = "S-1-5-21-1004336348-1177238915-682003330-1105"
MUTATIONS = {
    "ModifyClientVpnEndpoint",
    "ApplySecurityGroupsToClientVpnTargetNetwork",
    "AssociateClientVpnTargetNetwork",
    "DisassociateClientVpnTargetNetwork",
    "AuthorizeClientVpnIngress",
    "RevokeClientVpnIngress",
    "CreateClientVpnRoute",
    "DeleteClientVpnRoute",
    "CreateTags",
    "DeleteTags",
}


class Updates:
    def __init__(self, product: Provisioning, base: dict[str, Any], endpoint_id: str) -> None:
        self.product = product
        self.base = base
        self.endpoint_id = endpoint_id

    @property
    def arn(self) -> str:
        return self.product.stack.outputs["UpdateEndpointStateMachineArn"]

    def doc(self, **changes: Any) -> dict[str, Any]:
        document = json.loads(json.dumps(self.base))
        document.update(json.loads(json.dumps(changes)))
        return document

    def apply(self, document: dict[str, Any], **extra: Any) -> ExecutionProgress:
        return self.product.run(self.arn, {"request": document, "applied_by": "alice@example.com", **extra})

    def live(self) -> dict[str, Any]:
        """The endpoint as a comparable snapshot: present associations by subnet, rules, routes, options."""
        live = read_live_endpoint(ClientVpnApi(self.product.cloud.client("ec2")), self.endpoint_id)
        snapshot = live.model_dump(exclude={"associations", "authorization_rules", "routes", "status"})
        snapshot["subnets"] = sorted(a.subnet_id for a in live.associations if a.present)
        snapshot["rules"] = sorted(
            (r.target_network_cidr, r.access_group_id or "*") for r in live.authorization_rules
        )
        snapshot["routes"] = sorted(
            (r.destination_cidr, r.subnet_id) for r in live.routes if r.origin == "add-route"
        )
        return snapshot

    def revisions(self) -> list[dict[str, Any]]:
        from cvpn_shared.provisioning.dal.revisions import RevisionRecords

        records = RevisionRecords(
            self.product.cloud.client("dynamodb"), self.product.stack.outputs["EndpointRevisionsTableName"]
        )
        return records.history(self.base["request_id"])


@pytest.fixture(scope="module")
def updates(product: Provisioning) -> Iterator[Updates]:
    base = product.request(zones=2)
    base["schema_version"] = "1"
    progress = product.provision(base)
    assert progress.status == "SUCCEEDED", progress.cause
    endpoint_id = product.endpoints_for(base["request_id"])[0]["ClientVpnEndpointId"]
    yield Updates(product, base, endpoint_id)


@pytest.fixture
def second_group(product: Provisioning) -> str:
    ec2 = product.cloud.client("ec2")
    name = "cvpn-update-second-group"
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    if found:
        return str(found[0]["GroupId"])
    return str(
        ec2.create_security_group(GroupName=name, Description="second", VpcId=product.network.vpc_id)[
            "GroupId"
        ]
    )


def _changed(updates: Updates, kind: str, second_group: str) -> dict[str, Any]:
    base = updates.base
    network = updates.product.network
    if kind == "option":
        return updates.doc(session_timeout_hours=24, dns_servers=["10.0.0.2"], login_banner="Be kind.")
    if kind == "association-add":
        return updates.doc(subnet_ids=network.subnet_ids[:3])
    if kind == "association-remove":
        return updates.doc(subnet_ids=network.subnet_ids[:1])
    if kind == "rule-add":
        rule = {"target_network_cidr": "10.30.0.0/16", "access_group_id": GROUP_B, "description": "B"}
        return updates.doc(authorization_rules=[*base["authorization_rules"], rule])
    if kind == "rule-revoke":
        return updates.doc(
            authorization_rules=[{"target_network_cidr": "10.200.0.0/24", "access_group_id": GROUP_B}]
        )
    if kind == "route-add":
        return updates.doc(
            routes=[*base["routes"], {"destination_cidr": "10.40.0.0/16", "description": "Office"}]
        )
    if kind == "route-delete":
        return updates.doc(routes=base["routes"][:1])
    if kind == "security-groups":
        return updates.doc(security_group_ids=[second_group])
    raise AssertionError(kind)


KINDS = [
    "option",
    "association-add",
    "association-remove",
    "rule-add",
    "rule-revoke",
    "route-add",
    "route-delete",
    "security-groups",
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_change_alone_and_back(updates: Updates, kind: str, second_group: str) -> None:
    before = updates.live()
    changed = _changed(updates, kind, second_group)

    progress = updates.apply(changed)
    assert progress.status == "SUCCEEDED", progress.cause
    after = updates.live()
    assert after != before
    assert after["endpoint_id"] == before["endpoint_id"] and after["dns_name"] == before["dns_name"]
    assert progress.output["changes"], progress.output
    newest = updates.revisions()[0]
    assert newest["status"] == "SUCCEEDED" and newest["document"] == _normalised(changed)
    assert newest["applied_by"] == "alice@example.com"
    item = updates.product.record(updates.base["request_id"])
    assert item is not None and int(item["revision"]["N"]) == newest["revision"]

    back = updates.apply(updates.base)
    assert back.status == "SUCCEEDED", back.cause
    assert updates.live() == before


def test_all_together_then_the_same_again_changes_nothing(updates: Updates, second_group: str) -> None:
    before = updates.live()
    everything = _all_changes(updates, second_group)

    progress = updates.apply(everything)
    assert progress.status == "SUCCEEDED", progress.cause
    summary = " | ".join(progress.output["changes"])
    for expected in ("associate", "disassociate", "10.30.0.0/16", "10.40.0.0/16", "security groups"):
        assert expected in summary, summary
    revisions = len(updates.revisions())

    reset_api_call_counts()
    again = updates.apply(everything)
    assert again.status == "SUCCEEDED", again.cause
    assert again.output["status"] == "NO_CHANGES"
    assert not MUTATIONS & {op for op, count in api_call_counts().items() if count}
    assert len(updates.revisions()) == revisions  # the same document again leaves no revision

    assert updates.apply(updates.base).status == "SUCCEEDED"
    assert updates.live() == before


def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    from cvpn_shared.provisioning.models.request import ProvisionRequest

    return ProvisionRequest.model_validate(document).model_dump(mode="json")


def _all_changes(updates: Updates, second_group: str) -> dict[str, Any]:
    network = updates.product.network
    return updates.doc(
        session_timeout_hours=24,
        subnet_ids=[network.subnet_ids[0], network.subnet_ids[2]],
        authorization_rules=[
            {"target_network_cidr": "10.30.0.0/16", "access_group_id": GROUP_B, "description": "B"}
        ],
        routes=[{"destination_cidr": "10.40.0.0/16", "description": "Office"}],
        security_group_ids=[second_group],
    )


# The failure each step meets: an error AWS answers at once (not retried), or an association that fails.
FAILURES: list[tuple[str, dict[str, Any]]] = [
    ("ModifyClientVpnEndpoint", {"fail_with": "InvalidParameterValue"}),
    ("ApplySecurityGroupsToClientVpnTargetNetwork", {"fail_with": "InvalidParameterValue"}),
    ("AssociateClientVpnTargetNetwork", {"fail_with": "InvalidParameterValue"}),
    ("AssociateClientVpnTargetNetwork", {"association_failures": 1}),
    ("AuthorizeClientVpnIngress", {"fail_with": "InvalidParameterValue"}),
    ("CreateClientVpnRoute", {"fail_with": "InvalidParameterValue"}),
    ("RevokeClientVpnIngress", {"fail_with": "InvalidParameterValue"}),
    ("DeleteClientVpnRoute", {"fail_with": "InvalidParameterValue"}),
    ("DisassociateClientVpnTargetNetwork", {"fail_with": "InvalidParameterValue"}),
    # a rule or a route that AWS accepted but that ends failed while the workflow waits for it
    ("AuthorizeClientVpnIngress", {"settle_failures": 1}),
    ("CreateClientVpnRoute", {"settle_failures": 1}),
    # RecordSuccess cannot close the revision (its first write): every change, the disassociation
    # last, is made by then, so the undo re-associates the subnet and re-creates its routes
    ("dynamodb:UpdateItem", {"fail_with": "ValidationException"}),
]


@pytest.mark.parametrize(
    ("operation", "knobs"), FAILURES, ids=[f"{op}-{next(iter(k))}" for op, k in FAILURES]
)
def test_a_failure_in_any_step_restores_the_previous_state(
    updates: Updates, second_group: str, operation: str, knobs: dict[str, Any]
) -> None:
    before = updates.live()
    item_before = updates.product.record(updates.base["request_id"])
    get_fault_injector().configure(operation, **knobs)

    progress = updates.apply(_all_changes(updates, second_group))

    assert progress.status == "FAILED"
    assert "UndoChanges" in progress.steps and "RecordFailure" in progress.steps, progress.steps
    assert "restored the previous state" in (progress.cause or ""), progress.cause
    get_fault_injector().clear()
    assert updates.live() == before
    newest = updates.revisions()[0]
    assert newest["status"] == "FAILED" and newest["outcome"]["rolled_back"] is True
    assert newest["outcome"]["error"]["name"] == progress.error
    item_after = updates.product.record(updates.base["request_id"])
    assert item_after is not None and item_before is not None
    assert item_after["request"] == item_before["request"]  # the desired state stays the previous one


def test_a_failure_after_a_tag_change_restores_the_tags(updates: Updates, second_group: str) -> None:
    before = updates.live()
    document = _all_changes(updates, second_group)
    document["tags"] = {**updates.base.get("tags", {}), "Team": "networks"}
    document["name"] = "renamed-by-the-update"
    get_fault_injector().configure("AuthorizeClientVpnIngress", fail_with="InvalidParameterValue")

    progress = updates.apply(document)

    get_fault_injector().clear()
    assert progress.status == "FAILED", progress.output
    assert "restored the previous state" in (progress.cause or ""), progress.cause
    assert updates.live() == before  # name and tags among the rest
    newest = updates.revisions()[0]
    assert newest["status"] == "FAILED" and newest["outcome"]["rolled_back"] is True
    assert any("tag Team" in undone for undone in newest["outcome"]["undone"]), newest["outcome"]
    assert newest["outcome"]["error"]["name"] == progress.error
    assert "AuthorizeClientVpnIngress: InvalidParameterValue" in newest["outcome"]["error"]["message"]


def test_a_configuration_that_cannot_be_exported_keeps_the_settled_update(updates: Updates) -> None:
    """The export runs once every change settled: a failed read is no reason to undo the update
    (users would reconnect twice); the revision succeeds and says the configuration is to export."""
    before = updates.live()
    document = updates.doc(vpn_port=1194)
    get_fault_injector().configure("ExportClientVpnClientConfiguration", fail_with="InvalidParameterValue")

    progress = updates.apply(document)

    get_fault_injector().clear()
    assert progress.status == "SUCCEEDED", progress.cause
    assert "UndoChanges" not in progress.steps and "ConfigurationNotExported" in progress.steps
    assert updates.live()["vpn_port"] == 1194
    result = progress.output["result"]
    assert result["client_configuration"] is None
    assert "ExportClientVpnClientConfiguration: InvalidParameterValue" in result["export_error"]["Cause"]
    newest = updates.revisions()[0]
    assert newest["status"] == "SUCCEEDED" and newest["document"] == _normalised(document)
    item = updates.product.record(updates.base["request_id"])
    assert item is not None and int(item["revision"]["N"]) == newest["revision"]

    assert updates.apply(updates.base).status == "SUCCEEDED"
    assert updates.live() == before


def test_a_failure_after_a_new_revocation_list_reimports_the_previous_one(product: Provisioning) -> None:
    """An endpoint with certificate and directory authentication and a revocation list; an update to
    another list and a new rule, whose authorization fails: the previous list is imported again."""
    previous_crl, next_crl = make_crl_pem([1, 2]), make_crl_pem([1, 2, 3])
    authentication = [
        {
            "type": "mutual-tls",
            "client_root_certificate_chain_arn": product.network.client_root_certificate_arn,
        },
        {"type": "active-directory", "directory_id": product.network.directory_id},
    ]
    base = product.request(
        schema_version="2", authentication=authentication, certificate_revocation_list=previous_crl
    )
    assert product.provision(base).status == "SUCCEEDED"
    endpoint_id = product.endpoints_for(base["request_id"])[0]["ClientVpnEndpointId"]
    updates = Updates(product, base, endpoint_id)
    before = updates.live()
    rule = {"target_network_cidr": "10.30.0.0/16", "access_group_id": GROUP_B, "description": "B"}
    document = updates.doc(
        certificate_revocation_list=next_crl, authorization_rules=[*base["authorization_rules"], rule]
    )
    get_fault_injector().configure("AuthorizeClientVpnIngress", fail_with="InvalidParameterValue")

    progress = updates.apply(document)

    get_fault_injector().clear()
    assert progress.status == "FAILED", progress.output
    assert "restored the previous state" in (progress.cause or ""), progress.cause
    exported = product.cloud.client("ec2").export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint_id
    )
    assert exported["CertificateRevocationList"].strip() == previous_crl.strip()
    assert updates.live() == before
    newest = updates.revisions()[0]
    assert newest["status"] == "FAILED" and newest["outcome"]["not_undone"] == []
    assert any("revocation list" in undone for undone in newest["outcome"]["undone"]), newest["outcome"]

"""Source configuration and the payload-to-request mapping (JMESPath per field, constant defaults)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cvpn_shared.access.mapping import MappingFailed, accepts, callback_target, map_request
from cvpn_shared.access.sources import SourceConfigInvalid, parse_source_config

from .conftest import example_payload, source_config


def _jira(**changes: Any) -> Any:
    config = source_config("jira")
    config.update(changes)
    return parse_source_config("jira", config)


def test_jira_issue_maps_to_a_valid_request() -> None:
    """Custom fields, a comma-separated text field (split) and a nested tag land where configured."""
    request = map_request(_jira(), example_payload("jira"))
    assert request["request_id"] == "NET-2001"
    assert request["requester"] == "grace.hopper@example.com"
    assert request["client_cidr_block"] == "172.20.0.0/22"
    assert request["transport_protocol"] == "udp"
    assert request["routes"] == [
        {"destination_cidr": "10.200.0.0/24", "description": "on-premises"},
        {"destination_cidr": "10.201.0.0/24", "description": "on-premises"},
    ]
    assert request["authorization_rules"][0]["access_group_id"].endswith("-1105")
    assert request["tags"] == {"ticket": "NET-2001"}
    assert request["vpc_id"] == "vpc-0a1b2c3d4e5f60718"  # a default


@pytest.mark.parametrize("source", ["jira", "github", "servicenow"])
def test_every_example_source_maps_its_example_payload(source: str) -> None:
    config = parse_source_config(source, source_config(source))
    payload = example_payload(source)
    assert accepts(config, payload)
    assert map_request(config, payload)["schema_version"] == "1"


def test_a_mapped_value_overrides_the_default_and_null_falls_back_to_it() -> None:
    config = source_config("jira")
    config["defaults"]["transport_protocol"] = "tcp"
    payload = example_payload("jira")
    assert map_request(parse_source_config("jira", config), payload)["transport_protocol"] == "udp"
    del payload["issue"]["fields"]["customfield_10053"]
    assert map_request(parse_source_config("jira", config), payload)["transport_protocol"] == "tcp"


def test_field_errors_name_the_field_the_reason_and_the_expression() -> None:
    payload = example_payload("jira")
    payload["issue"]["fields"]["customfield_10051"] = "172.20.0.0/30"
    del payload["issue"]["fields"]["reporter"]
    with pytest.raises(MappingFailed) as raised:
        map_request(_jira(), payload)
    errors = {error["field"]: error for error in raised.value.errors}
    assert set(errors) == {"client_cidr_block", "requester"}
    assert errors["client_cidr_block"]["mapped_from"] == "issue.fields.customfield_10051"
    assert "/12 and /22" in errors["client_cidr_block"]["message"]
    assert errors["requester"]["message"] == "Field required"
    assert errors["requester"]["mapped_from"] == "issue.fields.reporter.emailAddress"


def test_an_error_inside_a_list_points_at_the_item_and_its_expression() -> None:
    payload = example_payload("jira")
    payload["issue"]["fields"]["customfield_10054"] = "10.200.0.0/24, not-a-cidr"
    with pytest.raises(MappingFailed) as raised:
        map_request(_jira(), payload)
    [error] = raised.value.errors
    assert error["field"] == "routes[1].destination_cidr"
    assert error["mapped_from"].startswith("split(issue.fields.customfield_10054")


def test_a_default_that_is_wrong_is_named_as_a_default() -> None:
    config = source_config("jira")
    config["defaults"]["vpc_id"] = "vpc-nope"
    with pytest.raises(MappingFailed) as raised:
        map_request(parse_source_config("jira", config), example_payload("jira"))
    assert raised.value.errors == [
        {
            "field": "vpc_id",
            "message": "String should match pattern '^vpc-[0-9a-f]{8}([0-9a-f]{9})?$'",
            "mapped_from": "defaults",
        }
    ]


def test_an_expression_failing_on_the_payload_is_a_field_error() -> None:
    """JMESPath type errors (split on a number) come back as 422 field errors, not as a crash."""
    payload = example_payload("jira")
    payload["issue"]["fields"]["customfield_10054"] = 42
    with pytest.raises(MappingFailed) as raised:
        map_request(_jira(), payload)
    [error] = raised.value.errors
    assert error["field"] == "routes"
    assert error["message"].startswith("the mapping failed on this payload")


def test_payloads_that_are_not_objects_give_field_errors() -> None:
    for payload in ([], "text", 7, None):
        with pytest.raises(MappingFailed) as raised:
            map_request(_jira(), payload)
        assert {error["field"] for error in raised.value.errors} >= {"request_id", "requester"}


def test_accept_when_filters_deliveries() -> None:
    config = _jira()
    payload = example_payload("jira")
    assert accepts(config, payload)
    payload["issue"]["fields"]["status"]["name"] = "In Review"
    assert not accepts(config, payload)
    assert not accepts(config, ["not", "an", "object"])


@pytest.mark.parametrize(
    "change,field",
    [
        ({"fields": {"colour": "issue.key"}}, "fields"),
        ({"fields": {"request_id": "issue.[key"}}, "fields"),
        ({"defaults": {"favourite": 1}}, "defaults"),
        ({"approval": "sometimes"}, "approval"),
        ({"signature": "md5"}, "signature"),
        ({"accept_when": "=="}, "accept_when"),
        ({"callback": {"kind": "jira-comment", "url_template": "ftp://x/{request_id}"}}, "callback"),
        ({"callback": {"kind": "jira-comment", "url_template": "https://x/{issue}"}}, "callback"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_a_bad_configuration_names_the_key(change: dict[str, Any], field: str) -> None:
    config = source_config("jira")
    config.update(change)
    with pytest.raises(SourceConfigInvalid) as raised:
        parse_source_config("jira", config)
    assert raised.value.errors[0]["field"] == field


def test_callback_url_is_filled_from_the_payload_and_quoted() -> None:
    config = source_config("github")
    payload = example_payload("github")
    target = callback_target(parse_source_config("github", config), payload, "GH-42")
    assert target == {
        "kind": "github-comment",
        "url": "https://api.github.com/repos/example/infra-requests/issues/42/comments",
        "credentials_secret_id": "cvpn-autopilot/intake-callback/github",
    }
    hostile = copy.deepcopy(payload)
    hostile["issue"]["number"] = "../../../../evil.example/x?"
    url = callback_target(parse_source_config("github", config), hostile, "GH-42")["url"]  # type: ignore[index]
    assert url.startswith("https://api.github.com/repos/example/infra-requests/issues/..%2F")
    del hostile["issue"]["number"]
    with pytest.raises(MappingFailed) as raised:
        callback_target(parse_source_config("github", config), hostile, "GH-42")
    assert raised.value.errors[0]["field"] == "callback.url_fields.number"

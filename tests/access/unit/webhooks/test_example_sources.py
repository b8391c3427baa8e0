"""Every example source under events/webhooks/sources is a valid configuration and maps the example
payload beside it: an endpoint source to a provisioning request, a grants source to an access request
on a profile that offers what it asks (the example profile)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cvpn_shared.access.mapping import accepts, callback_target, map_access_request, map_request
from cvpn_shared.access.profiles import parse_profile
from cvpn_shared.access.sources import parse_source_config
from tests.fixtures import REPO_ROOT

WEBHOOKS = REPO_ROOT / "events" / "webhooks"
SOURCES = sorted((WEBHOOKS / "sources").glob("*.json"))
# The example delivery of each example source (a file of events/webhooks).
PAYLOADS = {
    "github": "github-issues-labeled.json",
    "jira": "jira-issue-updated.json",
    "jira-access": "jira-access-issue-created.json",
    "servicenow": "generic-servicenow.json",
}


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_every_example_source_has_an_example_payload_and_the_readme_lists_both() -> None:
    assert {path.stem for path in SOURCES} == set(PAYLOADS)
    readme = (WEBHOOKS / "README.md").read_text()
    for name in [*PAYLOADS.values(), *(f"sources/{path.name}" for path in SOURCES)]:
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.stem)
def test_an_example_source_maps_its_example_payload(path: Path) -> None:
    config = parse_source_config(path.stem, _json(path))
    payload = _json(WEBHOOKS / PAYLOADS[path.stem])
    assert accepts(config, payload)
    if config.grants:
        access = map_access_request(config, payload)
        request_id = access.request_id
        document = _json(REPO_ROOT / "events" / "profiles" / f"{access.profile}.json")
        profile = parse_profile(access.profile, document)
        assert set(access.access_groups) <= {group.id for group in profile.access_groups}
        assert access.hours is not None and access.hours <= profile.max_grant_hours
    else:
        request_id = map_request(config, payload)["request_id"]
    callback = callback_target(config, payload, request_id)
    assert callback is not None and "{" not in callback["url"]  # every placeholder filled

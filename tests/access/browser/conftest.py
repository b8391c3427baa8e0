"""The request form in a real browser: template.yaml on a local cloud, a local OIDC issuer, Debian's chromium.

Chromium comes from Debian (``make browser`` installs it; ``playwright install`` is never used) and is
driven through Playwright's bundled driver. Outside CI a missing chromium skips these tests with the
reason; in CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import DEFAULT_ACCOUNT_ID, LocalCloud
from localcloud.oidc import LocalOidcIssuer, SignedInUser
from localcloud.sample_network import SampleNetwork, build_sample_network
from localcloud.stack import DeployedStack
from tests.fixtures import REPO_ROOT
from tests.fixtures.access_stack import PARAMETERS
from tests.fixtures.shared_endpoints import put_profile

ROOT = REPO_ROOT
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIME_SCALE = 1200.0
PROFILE_NAME = "engineering"
ENGINEERING_GROUP = "S-1-5-21-1004336348-1177238915-682003330-512"
LAB_ROUTE = "172.16.0.0/22"  # the pool's first block: the form must skip it


@dataclass
class FormStack:
    """The deployed product, its network, and the URLs a person uses."""

    cloud: LocalCloud
    stack: DeployedStack
    network: SampleNetwork
    issuer: LocalOidcIssuer

    @property
    def api_url(self) -> str:
        assert self.cloud.gateway is not None
        return self.cloud.gateway.api_urls()["IntakeApi"]

    @property
    def gateway_url(self) -> str:
        assert self.cloud.gateway is not None
        return self.cloud.gateway.base_url


def profile_document(network: SampleNetwork) -> dict[str, Any]:
    """A network profile as an administrator writes it, for the sample network."""
    return {
        "display_name": "Engineering VPC",
        "description": "Build servers and internal tools",
        "vpc_id": network.vpc_id,
        "subnet_ids": network.subnet_ids[:2],
        "server_certificate_arn": network.server_certificate_arn,
        "authentication": [{"type": "active-directory", "directory_id": network.directory_id}],
        "connection_log": {"enabled": True, "log_group_name": network.log_group_name},
        "routes": [
            {"destination_cidr": "0.0.0.0/0", "description": "Default route"},
            {"destination_cidr": LAB_ROUTE, "description": "Lab network"},
        ],
        "security_group_ids": [network.security_group_id],
        "access_groups": [
            {"id": ENGINEERING_GROUP, "name": "Engineering", "description": "Build farm and tools"},
            {
                "id": "S-1-5-21-1004336348-1177238915-682003330-1105",
                "name": "Finance",
                "target_network_cidr": "10.0.2.0/24",
            },
        ],
    }


@pytest.fixture(scope="package")
def chromium_path() -> str:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed: run `make browser` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="package")
def form_stack() -> Iterator[FormStack]:
    """template.yaml deployed on a local cloud, whose own OIDC issuer the JWT authorizer trusts."""
    with LocalCloud(time_scale=TIME_SCALE, fault_seed=7) as cloud:
        assert cloud.oidc is not None, "the local cloud runs a sign-in issuer"
        stack = cloud.deploy(
            ROOT / "template.yaml",
            stack_name="cvpn-autopilot",
            parameter_overrides=PARAMETERS,
        )
        # Sign-in codes and tokens too: a week of emulated time (a few minutes of real time) outlasts
        # a signed-in test that also waits for an approver to sign in and confirm.
        cloud.oidc.code_ttl_seconds = cloud.oidc.token_ttl_seconds = 7 * 86400
        from localcloud.clientvpn.models import clientvpn_backends

        clientvpn_backends[DEFAULT_ACCOUNT_ID][cloud.region].quotas.endpoints_per_region = 100
        network = build_sample_network(cloud.client, region=cloud.region)
        deployed = FormStack(cloud=cloud, stack=stack, network=network, issuer=cloud.oidc)
        put_profile(deployed, PROFILE_NAME, profile_document(network))
        yield deployed


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Any]:
    """Debian's chromium through Playwright (which gives every launch a fresh, empty user-data-dir)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(autouse=True)
def _issuer_signs_in_the_default_user(request: pytest.FixtureRequest) -> None:
    """Each test starts with the issuer signing in its default user (Alice): a test that signs in
    as an approver leaves the shared issuer that way, whatever order the tests run in."""
    if "form_stack" in request.fixturenames:
        request.getfixturevalue("form_stack").issuer.user = SignedInUser()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()

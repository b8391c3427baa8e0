"""A person's page in headless chromium: ask for access on a grants profile, wait, approved, active with a
countdown, download the configuration, ask to extend it.

Given template.yaml on a local cloud and a grants profile served by a shared endpoint an administrator
provisioned, When a person signs in and asks for access, Then "My access" shows the request waiting
for approval by the profile's approvers; once an approver confirms on the approval page, the grant is
active with a countdown that goes down, its configuration downloads, and an extension waits for the
same approval and then moves the end.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from cvpn_shared.provisioning.dal.configurations import configuration_key
from tests.access.browser.conftest import FormStack
from tests.access.browser.test_request_form import ApprovalInbox, _http
from tests.fixtures.access_stack import APPROVER_GROUP
from tests.fixtures.shared_endpoints import shared_endpoint

pytestmark = pytest.mark.slow

GRANTS_PROFILE = "engineering-shared"
SHARED_REQUEST = "NET-SHARED1"
# The page's round trips through the local cloud's gateway and functions, on a busy machine.
WAIT = 30_000


@pytest.fixture(scope="module")
def shared_profile(form_stack: FormStack) -> Iterator[str]:
    """A grants profile on a shared endpoint as provisioning leaves it, its client configuration
    exported to the bucket; the clock runs at real speed meanwhile, so a grant of hours lasts hours
    and its countdown goes down a second a second."""
    endpoint_id = shared_endpoint(
        form_stack,
        profile=GRANTS_PROFILE,
        request_id=SHARED_REQUEST,
        cidr="10.240.0.0/22",
        display_name="Engineering (shared)",
        max_grant_hours=24,
        approver_group=APPROVER_GROUP,
    )
    exported = form_stack.cloud.client("ec2").export_client_vpn_client_configuration(
        ClientVpnEndpointId=endpoint_id
    )
    form_stack.cloud.client("s3").put_object(
        Bucket=form_stack.stack.outputs["ClientConfigBucketName"],
        Key=configuration_key(SHARED_REQUEST, endpoint_id),
        Body=exported["ClientConfiguration"].encode(),
        ContentType="application/x-openvpn-profile",
        ServerSideEncryption="aws:kms",
    )
    clock = form_stack.cloud.clock
    scale = clock.time_scale
    clock.time_scale = 1.0
    try:
        yield endpoint_id
    finally:
        clock.time_scale = scale


def _approve(form_stack: FormStack, inbox: ApprovalInbox, request_id: str, page: Any) -> None:
    """An approver opens the approve link of ``request_id`` in another tab, signs in and confirms."""
    links = [link for link in inbox.approval_links(request_id) if "decision=approve" in link]
    assert links, f"the approval message of {request_id} carries an approve link"
    approval = urlsplit(links[0])
    approver = page.context.new_page()
    try:
        approver.goto(f"{form_stack.gateway_url}{approval.path}?{approval.query}")
        form_stack.issuer.sign_in_as("grace", "grace@example.com", "Grace Hopper", groups=[APPROVER_GROUP])
        approver.get_by_role("button", name="Sign in and approve").click()
        expect(approver.locator("#who")).to_have_text("Signed in as Grace Hopper", timeout=30_000)
        approver.get_by_role("button", name="Confirm: approve").click()
        expect(approver.locator("#outcome")).to_contain_text("approved by Grace Hopper", timeout=30_000)
    finally:
        approver.close()


def _seconds_left(card: Any) -> int:
    countdown = card.locator(".countdown")
    expect(countdown).to_have_attribute("data-seconds", re.compile(r"^\d+$"))
    return int(countdown.get_attribute("data-seconds"))


def test_a_person_asks_waits_gets_access_downloads_and_extends(
    page: Any, form_stack: FormStack, shared_profile: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    inbox = ApprovalInbox(form_stack, queue_name="my-access-inbox")
    form_stack.issuer.sign_in_as("dana", "dana@example.com", "Dana Scully")
    page.goto(form_stack.api_url + "/")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(f"#profile option[value={GRANTS_PROFILE}]", state="attached")
    expect(page.locator("#grants-view")).to_be_visible()
    expect(page.locator("#grants-empty")).to_be_visible(timeout=WAIT)

    # Ask: a grants profile asks how long; a bad number is named next to the field.
    page.get_by_label("Network profile").select_option(GRANTS_PROFILE)
    expect(page.get_by_label("Hours")).to_be_visible()
    page.get_by_label(re.compile("^Engineering")).check()
    page.get_by_label("Justification").fill("Release night for the build farm")
    page.get_by_label("Hours").fill("30")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator("#hours-error")).to_contain_text(
        f"longer than profile {GRANTS_PROFILE}'s longest grant", timeout=WAIT
    )
    page.get_by_label("Hours").fill("6")
    page.get_by_role("button", name="Submit request").click()

    # Wait: the request shows under My access, waiting for the profile's approvers.
    card = page.locator("#grants .grant").first
    expect(card).to_have_attribute("data-state", "pending", timeout=WAIT)
    expect(card.locator(".grant-title")).to_have_text("Engineering (shared)")
    waiting = "Waiting for approval by a member of vpn-approvers"
    expect(card.locator(".phases")).to_contain_text(waiting, timeout=WAIT)
    expect(card.locator(".download")).to_be_hidden()
    grant_id = (card.get_attribute("id") or "").removeprefix("grant-")
    status, body = _http(
        "GET",
        form_stack.api_url + "/me/grants",
        headers={"Authorization": f"Bearer {form_stack.issuer.mint_token('dana', 'dana@example.com')}"},
    )
    grant = json.loads(body)["grants"][0]
    assert (status, grant["grant_id"], grant["state"]) == (200, grant_id, "pending")

    # Someone whose token carries Dana's e-mail (another sub) sees nothing of hers.
    other = form_stack.issuer.mint_token("mallory", "dana@example.com", email_verified=True)
    status, body = _http(
        "GET", form_stack.api_url + "/me/grants", headers={"Authorization": f"Bearer {other}"}
    )
    assert (status, json.loads(body)["grants"]) == (200, [])
    status, _ = _http(
        "GET",
        f"{form_stack.api_url}/grants/{grant_id}/configuration",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert status == 404

    # Approved: active, approved by Grace, with a countdown that goes down.
    _approve(form_stack, inbox, grant["request_id"], page)
    expect(card).to_have_attribute("data-state", "active", timeout=90_000)
    expect(card.locator(".grant-approver")).to_have_text("Grace Hopper")
    expect(card.locator(".phases")).to_contain_text("Approved by Grace Hopper")
    expect(card.locator(".phases")).to_contain_text("Active until")
    first = _seconds_left(card)
    assert 5 * 3600 < first <= 6 * 3600
    time.sleep(2.5)
    assert _seconds_left(card) < first
    expect(card.locator(".countdown")).to_contain_text(" left")

    # Download: the configuration of the shared endpoint, through a short-lived link.
    with page.expect_download() as started:
        card.get_by_role("button", name="Download configuration").click()
    download = started.value
    assert download.suggested_filename == f"{GRANTS_PROFILE}.ovpn"
    exported = form_stack.cloud.client("ec2").export_client_vpn_client_configuration(
        ClientVpnEndpointId=shared_profile
    )["ClientConfiguration"]
    assert Path(download.path()).read_text() == exported

    # Extend: the form names a bad field next to it, then the extension waits for the same approval.
    card.get_by_role("button", name="Extend").click()
    card.get_by_label("Hours from the approval").fill("0")
    card.get_by_label("Reason").fill("The release slipped a day")
    card.get_by_role("button", name="Ask to extend").click()
    expect(card.locator(".extend-hours-error")).to_contain_text("a number of hours above 0", timeout=WAIT)
    card.get_by_label("Hours from the approval").fill("12")
    card.get_by_role("button", name="Ask to extend").click()
    expect(card.locator(".phases")).to_contain_text(
        "Extension by 12 hours asked; waiting for approval by a member of vpn-approvers", timeout=WAIT
    )
    expect(card.get_by_role("button", name="Extend")).to_be_hidden(timeout=WAIT)
    status, body = _http(
        "GET",
        form_stack.api_url + "/me/grants",
        headers={"Authorization": f"Bearer {form_stack.issuer.mint_token('dana', 'dana@example.com')}"},
    )
    extension = json.loads(body)["grants"][0]["pending_extension"]
    assert extension["hours"] == 12

    _approve(form_stack, inbox, extension["request_id"], page)
    expect(card.locator(".phases")).to_contain_text("Extended until", timeout=90_000)
    expect(card.get_by_role("button", name="Extend")).to_be_visible(timeout=WAIT)
    assert _seconds_left(card) > 11 * 3600

    screenshot = Path(tmp_path_factory.getbasetemp()) / "my-access.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")

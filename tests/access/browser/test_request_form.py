"""A person requests remote access through the form in headless chromium, signed in with the local issuer.

Given template.yaml on a local cloud (the HTTP API served by the gateway, its JWT authorizer trusting a
local OIDC issuer) and an administrator's network profile in SSM, When a person signs in (code flow with
PKCE), picks the profile and a group, and an approver follows the approval link, Then the page follows
the request to ``available`` and the configuration downloads from its link.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.access.browser.conftest import ENGINEERING_GROUP, LAB_ROUTE, FormStack
from tests.fixtures.access_stack import APPROVER_GROUP

pytestmark = pytest.mark.slow

APPROVE_LINK = re.compile(r"https?://[^\s\"'<>]+/approvals/[^\s\"'<>]+")


def _http(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _sign_in(page: Any, form_stack: FormStack) -> None:
    page.goto(form_stack.api_url + "/")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#form-view:not([hidden])")
    page.wait_for_selector("#profile option[value=engineering]", state="attached")


class ApprovalInbox:
    """An SQS queue subscribed to the approvers' topic, as an approver's mailbox would be."""

    def __init__(self, form_stack: FormStack, queue_name: str = "approvers-inbox") -> None:
        self.sqs = form_stack.cloud.client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        form_stack.cloud.client("sns").subscribe(
            TopicArn=form_stack.stack.outputs["ApprovalRequestsTopicArn"], Protocol="sqs", Endpoint=queue_arn
        )

    def approval_links(self, request_id: str, timeout: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in answer.get("Messages", []):
                text = json.loads(message["Body"]).get("Message", "")
                if request_id in text:
                    return APPROVE_LINK.findall(text)
        raise AssertionError(f"no approval message about {request_id} within {timeout:g} s")


def test_requests_without_a_token_get_401(form_stack: FormStack) -> None:
    for method, path in (("GET", "/profiles"), ("POST", "/requests"), ("GET", "/requests/REQ-1")):
        status, body = _http(method, form_stack.api_url + path, body=b"{}" if method == "POST" else None)
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"}), (method, path)
    other_issuer_token = form_stack.issuer.mint_token("alice", "alice@example.com", audience="someone-else")
    status, _ = _http(
        "GET", form_stack.api_url + "/profiles", headers={"Authorization": f"Bearer {other_issuer_token}"}
    )
    assert status == 401
    status, body = _http("GET", form_stack.api_url + "/")
    assert status == 200 and b"Request remote access" in body  # the page itself is public


def test_a_bad_submission_shows_the_field_errors(page: Any, form_stack: FormStack) -> None:
    _sign_in(page, form_stack)
    page.get_by_label("Network profile").select_option("engineering")
    page.get_by_label("Justification").fill("short")
    page.get_by_role("button", name="Submit request").click()
    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    expect(summary).to_be_focused()  # focus moves to the errors
    text = summary.inner_text()
    assert "Access groups: List should have at least 1 item" in text
    assert "Justification: String should have at least 10 characters" in text
    assert page.locator("#justification").get_attribute("aria-invalid") == "true"
    assert page.locator("#justification-error").is_visible()


def test_a_person_requests_access_and_downloads_the_configuration(
    page: Any, form_stack: FormStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    inbox = ApprovalInbox(form_stack)
    _sign_in(page, form_stack)
    assert page.locator("#who").inner_text() == "Signed in as alice@example.com"

    page.get_by_label("Network profile").select_option("engineering")
    page.get_by_label(re.compile("^Engineering")).check()
    page.get_by_label("Justification").fill("On-call for the build farm this quarter")
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_selector("#progress-view:not([hidden])")
    request_id = page.locator("#request-id").inner_text()
    assert re.fullmatch(r"REQ-[0-9A-F]{12}", request_id)
    expect(page.locator("#request-status")).to_have_text("awaiting-approval")
    # The lab route holds the pool's first block: the form allocated the next one.
    assert page.locator("#request-cidr").inner_text() == "172.16.4.0/22" != LAB_ROUTE

    links = [link for link in inbox.approval_links(request_id) if "decision=approve" in link]
    assert links, "the approval message carries an approve link"
    approval = urlsplit(links[0])
    # The approver opens the link in another tab: the page shows the request and decides nothing.
    approver = page.context.new_page()
    approver.goto(f"{form_stack.gateway_url}{approval.path}?{approval.query}")
    expect(approver.locator("h1")).to_have_text(f"Approve request {request_id}?")
    expect(approver.locator("table")).to_contain_text("alice@example.com")
    expect(page.locator("#request-status")).to_have_text("awaiting-approval")
    # Confirming signs the approver in with the same issuer (through the form), then decides.
    form_stack.issuer.sign_in_as("grace", "grace@example.com", "Grace Hopper", groups=[APPROVER_GROUP])
    approver.get_by_role("button", name="Sign in and approve").click()
    # Back from the sign-in, on the same page, now signed in as the approver.
    expect(approver.locator("#who")).to_have_text("Signed in as Grace Hopper", timeout=30_000)
    approver.get_by_role("button", name="Confirm: approve").click()
    expect(approver.locator("#outcome")).to_contain_text("approved by Grace Hopper", timeout=30_000)
    approver.close()

    expect(page.locator("#request-status")).to_have_text("available", timeout=90_000)
    steps = page.locator("#steps li").all_inner_texts()
    # The intake's steps, with the provisioning's spliced in where the intake started it.
    order = [
        steps.index(name)
        for name in ("RequestApproval", "Provision", "CreateEndpoint", "ExportConfiguration")
    ]
    assert order == sorted(order), steps
    assert (
        page.locator("#status-message").inner_text()
        == "Your VPN is ready. Download your configuration below."
    )
    screenshot = Path(tmp_path_factory.getbasetemp()) / "request-form-available.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download your VPN configuration").click()
    configuration = Path(downloading.value.path()).read_text()
    assert downloading.value.suggested_filename == f"{request_id}.ovpn"
    assert "remote " in configuration and "client" in configuration

    # Reloading the page follows the same request (still signed in for this tab); then a new request.
    page.reload()
    expect(page.locator("#request-status")).to_have_text("available")
    page.get_by_role("button", name="Make another request").click()
    expect(page.locator("#form-view")).to_be_visible()
    expect(page.locator("#profile option[value=engineering]")).to_have_count(1)

    record = form_stack.cloud.client("dynamodb").get_item(
        TableName=form_stack.stack.outputs["RequestsTableName"], Key={"request_id": {"S": request_id}}
    )["Item"]
    assert record["requester"]["S"] == "alice@example.com"
    assert record["status"]["S"] == "SUCCEEDED"
    request = json.loads(record["request"]["S"])
    assert [rule["access_group_id"] for rule in request["authorization_rules"]] == [ENGINEERING_GROUP]

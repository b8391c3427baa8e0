"""Posting the result back to the ticket: Jira comment, GitHub comment, signed generic JSON; errors named
for the state machine's Retry (TicketUnreachable) and Catch (TicketCallbackRejected)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cvpn_shared.access.callback import (
    TicketCallbackRejected,
    TicketCallbackTask,
    TicketUnreachable,
    compose_message,
    post_result,
)
from cvpn_shared.access.dal.ticket_poster import HttpAnswer
from cvpn_shared.access.signatures import SignatureScheme, SigningSecrets, verify_signature

from .conftest import NOW, MemorySecrets

RESULT = {
    "endpoint_id": "cvpn-endpoint-0123456789abcdef0",
    "dns_name": "*.cvpn-endpoint-0123456789abcdef0.prod.clientvpn.us-east-1.amazonaws.com",
    "associations": [{"subnet_id": "subnet-1"}, {"subnet_id": "subnet-2"}],
    "cost": {"hourly_usd": 0.2},
    "client_configuration": {"url": "https://bucket.s3.amazonaws.com/secret-presigned-link"},
}


@dataclass
class RecordingPoster:
    answer: HttpAnswer = field(default_factory=lambda: HttpAnswer(201, "{}"))
    sent: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def post(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        self.sent.append((url, headers, body))
        return self.answer


def _task(kind: str, status: str = "SUCCEEDED", **outcome: Any) -> TicketCallbackTask:
    if status == "SUCCEEDED":
        outcome.setdefault("provisioning", {"status": "SUCCEEDED", "output": {"result": RESULT}})
    return TicketCallbackTask.model_validate(
        {
            "callback": {
                "kind": kind,
                "url": "https://tickets.example/comment",
                "credentials_secret_id": "creds",
            },
            "source": "jira",
            "request_id": "NET-7",
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:intake:jira-NET-7",
            "outcome": {"status": status, **outcome},
        }
    )


def _secrets(value: dict[str, Any] | None) -> MemorySecrets:
    return MemorySecrets({"creds": value} if value is not None else {})


def test_jira_comment_with_basic_auth_in_document_format() -> None:
    poster = RecordingPoster()
    answer = post_result(
        _task("jira-comment"),
        secrets=_secrets({"email": "bot@example.com", "api_token": "tok"}),
        http=poster,
        clock=lambda: NOW,
    )
    assert answer["delivered"] is True and answer["status_code"] == 201
    [(url, headers, body)] = poster.sent
    assert url == "https://tickets.example/comment"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"bot@example.com:tok").decode()
    document = json.loads(body)["body"]
    assert document["type"] == "doc" and document["version"] == 1
    text = document["content"][0]["content"][0]["text"]
    assert "cvpn-endpoint-0123456789abcdef0 is ready for NET-7" in text
    assert "presigned" not in text  # the configuration link never goes into a ticket


def test_github_comment_with_a_bearer_token() -> None:
    poster = RecordingPoster()
    post_result(_task("github-comment"), secrets=_secrets({"token": "ghp_x"}), http=poster, clock=lambda: NOW)
    [(_, headers, body)] = poster.sent
    assert headers["Authorization"] == "Bearer ghp_x"
    assert headers["Accept"] == "application/vnd.github+json"
    assert "NET-7" in json.loads(body)["body"]


def test_generic_result_is_signed_when_a_secret_is_configured() -> None:
    poster = RecordingPoster()
    post_result(_task("generic"), secrets=_secrets({"current": "cb-secret"}), http=poster, clock=lambda: NOW)
    [(_, headers, body)] = poster.sent
    verify_signature(SignatureScheme.GENERIC, headers, body, SigningSecrets("cb-secret"), now=NOW)
    result = json.loads(body)
    assert (result["status"], result["endpoint_id"]) == ("SUCCEEDED", RESULT["endpoint_id"])


def test_generic_result_without_credentials_is_sent_unsigned() -> None:
    poster = RecordingPoster()
    task = _task("generic").model_copy(
        update={"callback": _task("generic").callback.model_copy(update={"credentials_secret_id": None})}
    )
    post_result(task, secrets=_secrets(None), http=poster, clock=lambda: NOW)
    assert "X-Signature" not in poster.sent[0][1]


@pytest.mark.parametrize("kind,credentials", [("jira-comment", {"email": "x"}), ("github-comment", None)])
def test_missing_credentials_are_rejected_not_retried(kind: str, credentials: dict[str, Any] | None) -> None:
    with pytest.raises(TicketCallbackRejected, match=r"callback\.credentials_secret_id: creds must hold"):
        post_result(_task(kind), secrets=_secrets(credentials), http=RecordingPoster(), clock=lambda: NOW)


@pytest.mark.parametrize(
    "answer,error",
    [
        (HttpAnswer(0, "", "connection refused"), TicketUnreachable),
        (HttpAnswer(429, "slow down"), TicketUnreachable),
        (HttpAnswer(503, "maintenance"), TicketUnreachable),
        (HttpAnswer(404, "issue does not exist"), TicketCallbackRejected),
        (HttpAnswer(401, "bad token"), TicketCallbackRejected),
    ],
)
def test_answers_map_to_retry_or_give_up(answer: HttpAnswer, error: type[Exception]) -> None:
    with pytest.raises(error):
        post_result(
            _task("github-comment"),
            secrets=_secrets({"token": "t"}),
            http=RecordingPoster(answer),
            clock=lambda: NOW,
        )


def test_failure_message_unwraps_the_provisioning_error() -> None:
    """startExecution.sync:2 fails with States.TaskFailed whose cause is the child's description; the
    child's cause is the Lambda error. The ticket reads the real reason."""
    lambda_error = json.dumps({"errorType": "PreflightFailed", "errorMessage": "subnet-1 is not in vpc-2"})
    described = json.dumps({"Status": "FAILED", "Error": "PreflightFailed", "Cause": lambda_error})
    task = _task("generic", "FAILED", error={"Error": "States.TaskFailed", "Cause": described})
    message = compose_message(task)
    assert message.startswith("Provisioning for NET-7 failed: PreflightFailed: subnet-1 is not in vpc-2.")


@pytest.mark.parametrize(
    "status,expected",
    [
        ("REJECTED", "Request NET-7 was rejected by an approver; nothing was created."),
        ("EXPIRED", "No approver decided on request NET-7 in time; nothing was created."),
    ],
)
def test_messages_for_requests_that_never_provisioned(status: str, expected: str) -> None:
    assert compose_message(_task("generic", status, error={"Error": "x", "Cause": "y"})) == expected


def test_the_poster_does_not_follow_redirects() -> None:
    """A ticket system answering 302 elsewhere is not followed: the credentials stay where configured."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cvpn_shared.access.dal.ticket_poster import UrllibPoster

    paths: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(302)
            self.send_header("location", "/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/comment"
        answer = UrllibPoster(timeout_seconds=5).post(url, {"Authorization": "Bearer x"}, b"{}")
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status == 302
    assert paths == ["/comment"]
    with pytest.raises(TicketCallbackRejected):
        post_result(
            _task("github-comment"),
            secrets=_secrets({"token": "t"}),
            http=RecordingPoster(answer),
            clock=lambda: NOW,
        )

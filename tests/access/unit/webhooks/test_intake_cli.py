"""`cvpn request submit`: what it signs is what the intake verifies; it sends the file byte for byte."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cvpn.cli import main as cvpn_main
from cvpn.intake_cli import SCHEMES, signed_headers
from cvpn_shared.access.signatures import SignatureScheme, SigningSecrets, verify_signature

from .conftest import WEBHOOKS

NOW = 1_800_000_000


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_layer_verifies_what_the_cli_signs(scheme: str) -> None:
    body = (WEBHOOKS / "jira-issue-updated.json").read_bytes()
    headers = signed_headers(scheme, body, "s3cret", timestamp=NOW, delivery_id="d-1")
    verified = verify_signature(
        SignatureScheme(scheme),
        headers,
        body,
        SigningSecrets("s3cret"),
        now=NOW,
        delivery_id_header="X-Request-Id" if scheme == "generic" else None,
    )
    if scheme != "slack":  # Slack has no delivery id header: the signature names the delivery
        assert verified.delivery_id == "d-1"


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 202

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Receiver.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        answer = json.dumps({"request_id": "NET-2001"}).encode()
        self.send_response(_Receiver.status)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    _Receiver.status = 202
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_submit_sends_the_file_signed(receiver: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = WEBHOOKS / "jira-issue-updated.json"
    code = cvpn_main(
        ["request", "submit", str(path), "--source", "jira", "--secret", "s3cret", "--base-url", receiver]
    )
    assert code == 0
    [request] = _Receiver.received
    assert request["path"] == "/webhooks/jira"
    assert request["body"] == path.read_bytes()
    verify_signature(
        SignatureScheme.JIRA, request["headers"], request["body"], SigningSecrets("s3cret"), now=NOW
    )
    assert request["headers"]["X-Atlassian-Webhook-Identifier"]
    out = capsys.readouterr().out
    assert out.startswith("HTTP 202") and '"request_id": "NET-2001"' in out


def test_submit_exits_1_on_a_refusal_and_uses_the_secret_from_the_environment(
    receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Receiver.status = 401
    monkeypatch.setenv("CVPN_WEBHOOK_SECRET", "from-env")
    path = WEBHOOKS / "generic-servicenow.json"
    assert cvpn_main(["request", "submit", str(path), "--source", "servicenow", "--base-url", receiver]) == 1
    [request] = _Receiver.received
    verify_signature(
        SignatureScheme.GENERIC,
        request["headers"],
        request["body"],
        SigningSecrets("from-env"),
        now=time.time(),
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--secret", ""], "--secret: required (or set CVPN_WEBHOOK_SECRET)"),
        (["--secret", "x", "--base-url", "http://127.0.0.1:9"], "--base-url: nothing answers at"),
    ],
)
def test_submit_errors_name_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CVPN_WEBHOOK_SECRET", raising=False)
    path = WEBHOOKS / "jira-issue-updated.json"
    assert cvpn_main(["request", "submit", str(path), "--source", "jira", *argv]) == 2
    assert message in capsys.readouterr().err


def test_submit_names_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cvpn_main(
        ["request", "submit", str(tmp_path / "missing.json"), "--source", "jira", "--secret", "x"]
    )
    assert code == 2
    assert "FILE: cannot read" in capsys.readouterr().err

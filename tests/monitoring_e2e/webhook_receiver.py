"""A chat service's incoming webhook on 127.0.0.1: an HTTPS server that keeps every POST it receives
and answers as the test tells it (200, an error status, or too late).

The product posts only to https:// URLs, so the receiver serves TLS with a certificate for 127.0.0.1
signed by a throwaway CA (the local cloud's ``issue_certificates``); ``ca_file`` is that CA in PEM, for
the Lambda function to trust (the ``SSL_CERT_FILE`` a function is given to trust a private CA).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from localcloud.sample_network import issue_certificates

__all__ = ["PostedMessage", "WebhookReceiver"]

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class PostedMessage:
    """One POST the receiver got: its path, headers (lower-case names), JSON body and the status it
    answered (after the delay ``answer`` set, when the sender may have given up)."""

    path: str
    headers: dict[str, str]
    body: Any
    status: int


def _write_loopback_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 it signed: (CA PEM, certificate PEM, key PEM)."""
    bundle, _ca_key = issue_certificates("webhook.receiver.local", ip_addresses=[LOOPBACK])
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    for path, pem in zip(paths, (bundle.ca_pem, bundle.certificate_pem, bundle.private_key_pem), strict=True):
        path.write_text(pem)
    return paths


class WebhookReceiver:
    """Slack's or Teams' incoming webhook, on 127.0.0.1 over TLS. Use as a context manager."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file, certificate, key = _write_loopback_certificate(directory)
        self._lock = threading.Lock()
        self._received: list[PostedMessage] = []
        self._status = 200
        self._delay = 0.0
        self._location = ""
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    status, delay, location = receiver._status, receiver._delay, receiver._location
                    receiver._received.append(
                        PostedMessage(
                            path=self.path,
                            headers={name.lower(): value for name, value in self.headers.items()},
                            body=json.loads(raw) if raw else None,
                            status=status,
                        )
                    )
                if delay and receiver._release.wait(delay):
                    return  # closing: drop the connection unanswered
                answer = b"ok" if status == 200 else b"internal_error"
                with contextlib.suppress(OSError):  # a client that gave up has closed the connection
                    self.send_response(status)
                    self.send_header("content-type", "text/plain")
                    if location:
                        self.send_header("location", location)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        # The handshake happens in the request's thread, so a slow client never holds up the others.
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        """The webhook URL with ``path`` (e.g. ``/services/T0/B0/secret`` as Slack's look)."""
        return f"https://{LOOPBACK}:{self._server.server_address[1]}{path}"

    def answer(self, status: int = 200, *, delay: float = 0.0, location: str = "") -> None:
        """How the next POSTs are answered: ``status`` after ``delay`` s (a redirect to ``location``)."""
        with self._lock:
            self._status, self._delay, self._location = status, delay, location

    def received(self) -> list[PostedMessage]:
        with self._lock:
            return list(self._received)

    def posts_mentioning(self, text: str, *, timeout: float = 60.0, count: int = 1) -> list[PostedMessage]:
        """The POSTs whose body mentions ``text``, once at least ``count`` have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [post for post in self.received() if text in json.dumps(post.body)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} webhook POST(s) mentioning {text!r} after {timeout:g} s")
            time.sleep(0.05)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The client-connect handler's DynamoDB client: requests signed exactly as botocore signs them,
answers and errors read as DynamoDB sends them (over a real loopback HTTP server), and one
BatchGetItem reading keys of several tables."""

from __future__ import annotations

import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from cvpn_shared.monitoring.dal.dynamodb_json import (
    BatchGetWithinBudget,
    Credentials,
    DynamoDbError,
    DynamoDbJsonClient,
    DynamoDbTransportError,
    LookupBudget,
    LookupUnavailable,
    dynamodb_endpoint,
    sign_v4,
)

WHEN = datetime(2026, 12, 7, 9, 30, 15, tzinfo=UTC)
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")


def botocore_signed(
    url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str, when: datetime
) -> tuple[dict[str, str], str]:
    """What botocore's SigV4 signer makes of the same request at the same time."""
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    signer = botocore.auth.SigV4Auth(
        BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token or None),
        "dynamodb",
        region,
    )
    signed: list[str] = []
    canonical_request = signer.canonical_request

    def capture(request: AWSRequest) -> str:
        signed.append(canonical_request(request))
        return signed[-1]

    with (
        mock.patch.object(botocore.auth, "get_current_datetime", return_value=when.replace(tzinfo=None)),
        mock.patch.object(signer, "canonical_request", capture),
    ):
        signer.add_auth(request)
    return dict(request.headers.items()), signed[-1]


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=30)


@settings(max_examples=1000, deadline=None, database=None)
@given(
    body=st.binary(max_size=300),
    target=st.sampled_from(["DynamoDB_20120810.BatchGetItem", "DynamoDB_20120810.GetItem"]),
    url=st.sampled_from(
        [
            "https://dynamodb.us-east-1.amazonaws.com",
            "https://dynamodb.eu-west-3.amazonaws.com:443/",
            "http://127.0.0.1:4566",
            "http://localhost:5000/",
            "http://[::1]:8000",
        ]
    ),
    region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1"]),
    access_key=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=20),
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    token=st.one_of(st.just(""), header_text),
    extra=st.one_of(st.just(""), header_text),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
)
def test_a_request_is_signed_as_botocore_signs_it(
    body: bytes,
    target: str,
    url: str,
    region: str,
    access_key: str,
    secret: str,
    token: str,
    extra: str,
    when: datetime,
) -> None:
    """Given any body, endpoint, region, credentials (with or without a session token), headers
    (spaces included) and time, when signed, then the canonical request, the signed headers and the
    Authorization header are botocore's to the character."""
    credentials = Credentials(access_key, secret, token)
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target}
    if extra:
        headers["X-Extra-Header"] = f"  {extra}  with   spaces "
    moment = when.replace(tzinfo=UTC)

    ours, our_canonical = sign_v4(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        credentials=credentials,
        region=region,
        service="dynamodb",
        now=moment,
    )
    theirs, their_canonical = botocore_signed(url, headers, body, credentials, region, moment)

    assert our_canonical == their_canonical
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_the_signature_is_the_documented_one_for_a_fixed_example() -> None:
    """A known vector, so that a change in both signers at once would still be caught."""
    headers, canonical = sign_v4(
        method="POST",
        url="https://dynamodb.us-east-1.amazonaws.com",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.BatchGetItem",
        },
        body=b"{}",
        credentials=CREDENTIALS,
        region="us-east-1",
        service="dynamodb",
        now=WHEN,
    )
    theirs, their_canonical = botocore_signed(
        "https://dynamodb.us-east-1.amazonaws.com",
        {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.BatchGetItem"},
        b"{}",
        CREDENTIALS,
        "us-east-1",
        WHEN,
    )
    assert canonical == their_canonical
    assert canonical.splitlines()[:3] == ["POST", "/", ""]
    assert headers["Authorization"] == theirs["Authorization"]
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
    )


def test_the_endpoint_and_credentials_come_from_the_environment_lambda_sets() -> None:
    assert dynamodb_endpoint("eu-west-3", {}) == "https://dynamodb.eu-west-3.amazonaws.com"
    assert dynamodb_endpoint("cn-north-1", {}) == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    assert dynamodb_endpoint("us-east-1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    both = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:2"}
    assert dynamodb_endpoint("us-east-1", both) == "http://127.0.0.1:2"
    found = Credentials.from_environment(
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
    )
    assert (found.access_key, found.secret_key, found.token) == ("AKID", "secret", "token")
    with pytest.raises(DynamoDbError, match="AWS_ACCESS_KEY_ID") as missing:
        Credentials.from_environment({})
    assert not missing.value.retryable


# ------------------------------------------------------------------ over a loopback server
Answer = tuple[int, dict[str, str], bytes]


class Server:
    """A loopback HTTP/1.1 server that answers each POST with the next of ``answers`` (a function of
    the request's headers and body), and records what it was sent."""

    def __init__(self) -> None:
        self.answers: list[Callable[[dict[str, str], bytes], Answer | None]] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                outer.requests.append((headers, body))
                answer = outer.answers.pop(0)(headers, body) if outer.answers else (200, {}, b"{}")
                if answer is None:  # drop the connection without an answer
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, extra, payload = answer
                self.send_response(status)
                chunked = extra.pop("chunked", "") == "yes"
                for name, value in extra.items():
                    self.send_header(name, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(payload), 7):
                        piece = payload[start : start + 7]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def client_for(server: Server, *, read_timeout: float = 0.5) -> DynamoDbJsonClient:
    return DynamoDbJsonClient(
        region="us-east-1",
        endpoint=server.url,
        connect_timeout=0.5,
        read_timeout=read_timeout,
        credentials=lambda: CREDENTIALS,
    )


def json_answer(status: int, document: dict[str, Any], **extra: str) -> Callable[..., Answer]:
    return lambda headers, body: (
        status,
        {"Content-Type": "application/x-amz-json-1.0", **extra},
        json.dumps(document).encode(),
    )


ITEMS = {"Responses": {"blocklist": [{"pk": {"S": "user#ann"}}]}, "UnprocessedKeys": {}}


def test_a_call_is_signed_and_its_answer_read_over_one_kept_alive_connection(server: Server) -> None:
    """Given DynamoDB answering with and without a CRC32 and in chunks, when called three times, then
    each answer is read, one connection serves them all, and each request is a signed
    DynamoDB_20120810.BatchGetItem with the session token and a body that is the request's JSON."""
    payload = json.dumps(ITEMS).encode()
    server.answers = [
        json_answer(200, ITEMS, **{"x-amz-crc32": str(zlib.crc32(payload))}),
        lambda headers, body: (200, {"chunked": "yes"}, payload),
        json_answer(200, ITEMS),
    ]
    client = client_for(server)
    keys = {"blocklist": {"Keys": [{"pk": {"S": "user#ann"}}], "ConsistentRead": True}}

    answers = [client.batch_get_item(RequestItems=keys) for _ in range(3)]

    assert answers == [ITEMS] * 3
    assert server.connections == 1
    headers, body = server.requests[0]
    assert headers["x-amz-target"] == "DynamoDB_20120810.BatchGetItem"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amz-security-token"] == "session-token"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert headers["host"] == server.url.removeprefix("http://")
    assert json.loads(body) == {"RequestItems": keys}


@pytest.mark.parametrize(
    ("status", "document", "code", "retryable"),
    [
        (
            400,
            {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "x"},
            "ThrottlingException",
            True,
        ),
        (
            400,
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "x",
            },
            "ProvisionedThroughputExceededException",
            True,
        ),
        (
            500,
            {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"},
            "InternalServerError",
            True,
        ),
        (503, {}, "InternalServerError", True),
        (
            400,
            {"__type": "com.amazon.coral.validate#ValidationException", "Message": "bad key"},
            "ValidationException",
            False,
        ),
        (
            400,
            {"__type": "com.amazon.coral.service#UnrecognizedClientException"},
            "UnrecognizedClientException",
            False,
        ),
        (403, {"__type": "com.amazon.coral.service#AccessDeniedException"}, "AccessDeniedException", False),
    ],
)
def test_an_error_answer_is_read_as_dynamodb_sends_it(
    server: Server, status: int, document: dict[str, Any], code: str, retryable: bool
) -> None:
    server.answers = [json_answer(status, document)]

    with pytest.raises(DynamoDbError) as raised:
        client_for(server).batch_get_item(RequestItems={})

    assert (raised.value.code, raised.value.status, raised.value.retryable) == (code, status, retryable)


def test_a_corrupt_or_missing_answer_is_a_transport_error(server: Server) -> None:
    """A CRC32 that does not match, a body that is not JSON, a server that answers too slowly, a
    connection dropped without an answer, nothing listening: each a (retryable) transport error."""
    server.answers = [
        json_answer(200, ITEMS, **{"x-amz-crc32": "1"}),
        lambda headers, body: (200, {}, b"<html>"),
        lambda headers, body: (threading.Event().wait(1.0), (200, {}, b"{}"))[1],
        lambda headers, body: None,
    ]
    client = client_for(server, read_timeout=0.3)
    for problem in ("CRC32", "not a JSON object", "timed out", "closed"):
        with pytest.raises(DynamoDbTransportError, match=problem):
            client.batch_get_item(RequestItems={})

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    nowhere = DynamoDbJsonClient(
        region="us-east-1",
        endpoint=f"http://127.0.0.1:{port}",
        connect_timeout=0.3,
        read_timeout=0.3,
        credentials=lambda: CREDENTIALS,
    )
    with pytest.raises(DynamoDbTransportError, match="ConnectionRefused"):
        nowhere.batch_get_item(RequestItems={})


def test_a_kept_alive_connection_the_server_closed_is_opened_again(server: Server) -> None:
    client = client_for(server)
    server.answers = [json_answer(200, ITEMS, Connection="keep-alive")]
    client.batch_get_item(RequestItems={})
    assert client._connection is not None
    client._connection.sock.shutdown(socket.SHUT_RDWR)  # as if the server had timed it out
    server.answers = [json_answer(200, ITEMS)]

    assert client.batch_get_item(RequestItems={}) == ITEMS
    assert server.connections == 2


def test_one_batch_reads_keys_of_several_tables_and_retries_what_is_unprocessed(server: Server) -> None:
    """Given two tables' keys, when read, then one BatchGetItem asks for both; the keys DynamoDB left
    unprocessed are asked again; each table's items come back under its name."""
    grants = [{"pk": {"S": "grant#ann"}}]
    server.answers = [
        json_answer(
            200,
            {
                "Responses": {"blocklist": [{"pk": {"S": "user#ann"}}]},
                "UnprocessedKeys": {"grants": {"Keys": grants, "ConsistentRead": True}},
            },
        ),
        json_answer(200, {"Responses": {"grants": [{"pk": {"S": "grant#ann"}, "until": {"N": "1"}}]}}),
    ]
    reader = BatchGetWithinBudget(client_for(server), budget=LookupBudget())

    found = reader.get({"blocklist": [{"pk": {"S": "user#ann"}}], "grants": grants})

    assert found == {
        "blocklist": [{"pk": {"S": "user#ann"}}],
        "grants": [{"pk": {"S": "grant#ann"}, "until": {"N": "1"}}],
    }
    first = json.loads(server.requests[0][1])["RequestItems"]
    assert set(first) == {"blocklist", "grants"}
    assert json.loads(server.requests[1][1])["RequestItems"] == {
        "grants": {"Keys": grants, "ConsistentRead": True}
    }


def test_more_keys_than_one_call_takes_are_read_in_several(server: Server) -> None:
    keys = [{"pk": {"S": f"user#{number}"}} for number in range(150)]
    server.answers = [json_answer(200, {"Responses": {"t": []}}), json_answer(200, {"Responses": {"t": []}})]

    assert BatchGetWithinBudget(client_for(server)).get({"t": keys}) == {"t": []}
    sizes = [len(json.loads(body)["RequestItems"]["t"]["Keys"]) for _, body in server.requests]
    assert sizes == [100, 50]


def test_a_refused_call_ends_the_lookup_at_once(server: Server) -> None:
    server.answers = [json_answer(400, {"__type": "x#ValidationException", "message": "no"})]

    with pytest.raises(LookupUnavailable, match="ValidationException: no"):
        BatchGetWithinBudget(client_for(server)).get({"t": [{"pk": {"S": "a"}}]})
    assert len(server.requests) == 1

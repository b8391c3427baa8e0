"""DynamoDB's JSON protocol over a socket, signed with AWS Signature Version 4: the
client-connect handler's reads, without botocore.

Why not botocore: the client-connect handler runs while a person waits to connect, and importing
botocore (its loaders, endpoint rules and service models) costs more than the whole of the rest of
the handler's cold start. So does ``http.client`` (through the e-mail parser it loads), so the one
exchange DynamoDB needs, an HTTP/1.1 POST over a kept-alive connection whose answer has a
``Content-Length`` or is chunked, is written here over ``socket`` and ``ssl``. With ``hmac``,
``hashlib`` and ``json`` it does the one call the handler makes, ``BatchGetItem``, as the SDK would:

- **where**: ``AWS_ENDPOINT_URL_DYNAMODB``, else ``AWS_ENDPOINT_URL`` (how the local cloud points
  the functions it runs at itself), else DynamoDB's regional endpoint for ``AWS_REGION``;
- **who**: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``, as Lambda
  sets them for the execution role, read for each call;
- **errors**: an answer's ``__type`` gives its code (``...#ProvisionedThroughputExceededException``).
  Throttles and server errors (5xx) are ``DynamoDbError.retryable``; so is every transport failure
  (``DynamoDbTransportError``: refused or dropped connection, socket timeout, a response whose CRC32
  does not match); anything else is not.

Each answer's ``Date`` header is kept (``last_answer_time``): the time of the service that holds the
items, which the client-connect handler judges expiries at when it is later than its own clock (on
the local cloud, the emulated clock the services run on; on AWS, the same second).

``BatchGetWithinBudget`` reads keys from one or more tables in one ``BatchGetItem`` per round, to a
time budget (``LookupBudget``): one attempt per call with the budget's socket timeouts, throttles,
server errors and unprocessed keys retried with a bounded backoff, a call started only while a whole
call still fits. When the budget runs out it raises ``LookupUnavailable``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

__all__ = [
    "MAX_KEYS_PER_CALL",
    "BatchGetWithinBudget",
    "Credentials",
    "DynamoDbError",
    "DynamoDbJsonClient",
    "DynamoDbTransportError",
    "LookupBudget",
    "LookupUnavailable",
    "dynamodb_endpoint",
    "http_date",
    "sign_v4",
]

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
# DynamoDB's limit on the keys of one BatchGetItem, over all its tables.
MAX_KEYS_PER_CALL = 100
# Codes worth another attempt within the budget: throttles and server-side failures.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
    }
)


class DynamoDbError(Exception):
    """An error DynamoDB answered: its code (``ValidationException``), message and HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES or self.status >= 500


class DynamoDbTransportError(Exception):
    """No usable answer came back: connection refused or dropped, a socket timeout, a corrupt body."""


class LookupUnavailable(Exception):
    """The keys could not be read within the lookup's time budget."""


class Credentials:
    """An access key, its secret and the session token of temporary credentials."""

    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str = "") -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Credentials:
        """The credentials Lambda sets for the execution role (``AWS_ACCESS_KEY_ID``, ...)."""
        access_key = environ.get("AWS_ACCESS_KEY_ID", "")
        secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not access_key or not secret_key:
            raise DynamoDbError(
                "MissingCredentials", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: not set", 0
            )
        return cls(access_key, secret_key, environ.get("AWS_SESSION_TOKEN", ""))


def dynamodb_endpoint(region: str, environ: Mapping[str, str] = os.environ) -> str:
    """The URL DynamoDB is called at: the configured endpoint, else the region's own."""
    configured = environ.get("AWS_ENDPOINT_URL_DYNAMODB") or environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://dynamodb.{region}.{suffix}"


def _host_header(scheme: str, host: str, port: int | None) -> str:
    """The Host header as SigV4 signs it: the default port left out."""
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return host if ":" not in host else f"[{host}]"
    return f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign_v4(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    now: datetime,
) -> tuple[dict[str, str], str]:
    """``headers`` plus ``Host``, ``X-Amz-Date``, ``X-Amz-Security-Token`` (temporary credentials)
    and ``Authorization`` for the request, signed with Signature Version 4 at ``now`` (UTC); and
    the canonical request that was signed (what a test compares with botocore's)."""
    parts = urlsplit(url)
    timestamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    signed = dict(headers)
    signed["X-Amz-Date"] = timestamp
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    to_sign = {name.lower(): value for name, value in signed.items() if name.lower() != "user-agent"}
    if "host" not in to_sign:
        to_sign["host"] = _host_header(parts.scheme, parts.hostname or "", parts.port)
    names = sorted(to_sign)
    canonical_headers = "".join(f"{name}:{' '.join(to_sign[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    pairs = sorted(
        (key, value) for key, _, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    query = "&".join(f"{key}={value}" for key, value in pairs)
    canonical_request = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/~"),
            query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{timestamp[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), timestamp[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if "host" not in {name.lower() for name in signed}:
        signed["Host"] = to_sign["host"]
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return signed, canonical_request


class DynamoDbJsonClient:
    """Calls DynamoDB's JSON API at ``endpoint``, one attempt per call, over a kept-alive connection.

    ``connect_timeout`` bounds opening the connection, ``read_timeout`` each wait for the answer.
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint: str,
        connect_timeout: float,
        read_timeout: float,
        credentials: Callable[[], Credentials] = Credentials.from_environment,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint: not an http(s) URL: {endpoint!r}")
        self.region = region
        self.endpoint = endpoint
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path or "/"
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._credentials = credentials
        self._clock = clock
        self._connection: _Connection | None = None
        self.last_answer_time: float | None = None

    def batch_get_item(self, RequestItems: Mapping[str, Any]) -> dict[str, Any]:
        """``BatchGetItem``: DynamoDB's answer (``Responses``, ``UnprocessedKeys``) as a dict."""
        return self.call("BatchGetItem", {"RequestItems": RequestItems})

    def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """One call of ``operation``: the answer's JSON; ``DynamoDbError`` for an error answer,
        ``DynamoDbTransportError`` when no usable answer came back."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers, _ = sign_v4(
            method="POST",
            url=self.endpoint,
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}{operation}"},
            body=body,
            credentials=self._credentials(),
            region=self.region,
            service=SERVICE,
            now=self._clock(),
        )
        status, raw, crc, date = self._send(body, headers)
        self.last_answer_time = http_date(date) if date else None
        if crc is not None and crc.isdigit() and int(crc) != zlib.crc32(raw):
            raise DynamoDbTransportError("the answer's CRC32 does not match its body")
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = None
        if status >= 300 or not isinstance(answer, dict):
            raise _error_of(status, answer if isinstance(answer, dict) else {}, raw)
        return answer

    def _send(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, str | None, str | None]:
        head = f"POST {self._path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        reused = self._connection is not None
        try:
            try:
                return self._exchange(request)
            except (ConnectionError, _Closed):
                if not reused:
                    raise
                # A kept-alive connection the server had closed meanwhile: once more on a new one.
                self.close()
                return self._exchange(request)
        except (OSError, ValueError, _Closed) as error:  # socket timeouts are OSErrors
            self.close()
            raise DynamoDbTransportError(f"{type(error).__name__}: {error}") from error

    def _exchange(self, request: bytes) -> tuple[int, bytes, str | None, str | None]:
        connection = self._connection
        if connection is None:
            raw = socket.create_connection(
                (self._host, self._port or _DEFAULT_PORTS[self._scheme]), self._connect_timeout
            )
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._scheme == "https":
                    raw = _tls_context().wrap_socket(raw, server_hostname=self._host)
                raw.settimeout(self._read_timeout)
            except BaseException:
                raw.close()
                raise
            connection = _Connection(raw)
            self._connection = connection
        connection.sock.sendall(request)
        status, answer_headers = connection.read_head()
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            payload = connection.read_chunked()
        elif "content-length" in answer_headers:
            payload = connection.read_exactly(int(answer_headers["content-length"]))
        else:
            payload = connection.read_to_close()
            answer_headers["connection"] = "close"
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return status, payload, answer_headers.get("x-amz-crc32"), answer_headers.get("date")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.sock.close()
            self._connection = None


_DEFAULT_PORTS = {"http": 80, "https": 443}
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}


def http_date(text: str) -> float | None:
    """POSIX seconds of an HTTP ``Date`` (``Mon, 07 Dec 2026 16:28:17 GMT``); None when it is not one.
    Parsed here: ``email.utils`` would load the e-mail package on every login's cold start."""
    parts = text.replace(",", " ").split()
    if len(parts) != 6 or parts[5] not in ("GMT", "UTC") or parts[2] not in _MONTHS:
        return None
    clock = parts[4].split(":")
    if len(clock) != 3:
        return None
    try:
        hour, minute, second = (int(unit) for unit in clock)
        moment = datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return moment.timestamp()


_MAX_HEAD_BYTES = 65536


class _Closed(Exception):
    """The server closed the connection before a whole answer came."""


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """The process's TLS context (certificates verified against the system's CAs), made once."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


class _Connection:
    """An HTTP/1.1 connection's socket and what has been read from it past the last answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed("connection closed by the server")
        self._buffer += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > _MAX_HEAD_BYTES:
                raise ValueError("an answer's line is too long")
            self._more()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def read_head(self) -> tuple[int, dict[str, str]]:
        """The status and headers (names lower-cased) of the next answer; 1xx answers skipped."""
        while True:
            parts = self._line().split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ValueError(f"not an HTTP/1.x status line: {b' '.join(parts)[:80]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            while line := self._line():
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200:
                return status, headers

    def read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._more()
        payload, self._buffer = self._buffer[:count], self._buffer[count:]
        return payload

    def read_chunked(self) -> bytes:
        payload = b""
        while size := int(self._line().split(b";", 1)[0].strip() or b"0", 16):
            payload += self.read_exactly(size)
            self._line()
        while self._line():  # trailers, then the blank line that ends the answer
            pass
        return payload

    def read_to_close(self) -> bytes:
        try:
            while True:
                self._more()
        except _Closed:
            payload, self._buffer = self._buffer, b""
            return payload


def _error_of(status: int, answer: Mapping[str, Any], raw: bytes) -> Exception:
    """The error of a failed answer: DynamoDB's code from ``__type`` (after its ``#``)."""
    code = str(answer.get("__type", "")).rpartition("#")[2]
    message = str(answer.get("message", answer.get("Message", "")))
    if not code:
        if status < 300:
            return DynamoDbTransportError(f"HTTP {status}: not a JSON object: {raw[:80]!r}")
        code = "InternalServerError" if status >= 500 else f"HTTP{status}"
        message = message or raw[:200].decode("utf-8", errors="replace")
    return DynamoDbError(code, message, status)


class LookupBudget:
    """How long a lookup may take in all, and the socket timeouts of each call.

    A call is started only while ``connect_timeout + read_timeout`` still fits before the deadline,
    so the lookup ends within ``total_seconds`` (plus the time to raise) whatever DynamoDB does.
    """

    __slots__ = ("connect_timeout", "first_backoff", "max_backoff", "read_timeout", "total_seconds")

    def __init__(
        self,
        total_seconds: float = 2.0,
        connect_timeout: float = 0.5,
        read_timeout: float = 0.7,
        first_backoff: float = 0.02,
        max_backoff: float = 0.2,
    ) -> None:
        if total_seconds < connect_timeout + read_timeout:
            raise ValueError("total_seconds: must leave room for one call (connect + read timeouts)")
        self.total_seconds = total_seconds
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff

    @property
    def call_seconds(self) -> float:
        """The longest one call may take (connect, then read)."""
        return self.connect_timeout + self.read_timeout


class BatchGetClient(Protocol):
    def batch_get_item(self, RequestItems: Mapping[str, Any]) -> dict[str, Any]: ...


class BatchGetWithinBudget:
    """Reads keys from one or more tables with ``BatchGetItem``, within a ``LookupBudget``."""

    def __init__(
        self,
        client: BatchGetClient,
        *,
        budget: LookupBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.budget = budget or LookupBudget()
        self._clock = clock
        self._sleep = sleep
        self.last_answer_time: float | None = None

    def get(
        self, keys_by_table: Mapping[str, Sequence[Mapping[str, Any]]], *, consistent: bool = True
    ) -> dict[str, list[dict[str, Any]]]:
        """The items found under each table's keys (absent keys are left out), read in as few calls
        as DynamoDB's limits allow; ``LookupUnavailable`` when not read within the budget."""
        found: dict[str, list[dict[str, Any]]] = {table: [] for table in keys_by_table}
        self.last_answer_time = None
        pending = [(table, dict(key)) for table, keys in keys_by_table.items() for key in keys]
        if not pending:
            return found
        budget = self.budget
        deadline = self._clock() + budget.total_seconds
        backoff = budget.first_backoff
        attempts = 0
        last_problem = ""
        request: dict[str, Any] = {}
        while request or pending:
            if not request:
                request, pending = _next_request(pending, consistent)
            wait = backoff if last_problem else 0.0
            if attempts and self._clock() + wait + budget.call_seconds > deadline:
                raise LookupUnavailable(
                    f"not read within {budget.total_seconds:g} s ({attempts} attempts; last: {last_problem})"
                )
            if wait:
                self._sleep(wait)
                backoff = min(backoff * 2, budget.max_backoff)
            attempts += 1
            try:
                answer = self._client.batch_get_item(RequestItems=request)
            except DynamoDbError as error:
                if not error.retryable:
                    raise LookupUnavailable(str(error)) from error
                last_problem = error.code
                continue
            except DynamoDbTransportError as error:  # timeouts, connection errors: worth another try
                last_problem = str(error).partition(":")[0] or type(error).__name__
                continue
            self.last_answer_time = getattr(self._client, "last_answer_time", None)
            for table, items in (answer.get("Responses") or {}).items():
                found.setdefault(table, []).extend(items)
            request = answer.get("UnprocessedKeys") or {}
            last_problem = "keys unprocessed" if request else ""
        return found


def _next_request(
    pending: list[tuple[str, dict[str, Any]]], consistent: bool
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The next ``RequestItems`` (at most ``MAX_KEYS_PER_CALL`` keys) and the keys left after it."""
    request: dict[str, Any] = {}
    for table, key in pending[:MAX_KEYS_PER_CALL]:
        request.setdefault(table, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(key)
    return request, pending[MAX_KEYS_PER_CALL:]

"""Presigned S3 URLs expire on the local cloud's emulated clock.

moto serves a presigned URL however old it is. :func:`expiring_presigned_urls` wraps the embedded
AWS's WSGI application and answers as S3 does before moto sees the request:

- Signature Version 4 (``X-Amz-Algorithm``, ``X-Amz-Credential`` for service ``s3``, ``X-Amz-Date``,
  ``X-Amz-Expires``): the URL lasts ``X-Amz-Expires`` emulated seconds from the moment it was signed.
  Signers (boto3 in a Lambda function, the AWS CLI, your scripts) stamp ``X-Amz-Date`` with the
  machine's clock, so that moment is found with :meth:`Clock.at_wall_time`: advancing the clock past
  the lifetime expires the URL, and at time scale N it lasts 1/N of its lifetime in real seconds.
- Signature Version 2 (``AWSAccessKeyId``, ``Signature``, ``Expires``): ``Expires`` is the only time the
  URL carries (no signing moment to count from), compared with emulated now.

Expired: 403 ``AccessDenied`` "Request has expired" with ``Expires`` and ``ServerTime``. Malformed
parameters: 400 ``AuthorizationQueryParametersError`` naming the parameter, as S3 answers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from localcloud.clock import get_clock

__all__ = ["MAX_EXPIRES_SECONDS", "PresignedUrlError", "check_presigned_query", "expiring_presigned_urls"]

MAX_EXPIRES_SECONDS = 604_800  # a week: S3's limit for Signature Version 4
_V4_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


class PresignedUrlError(Exception):
    """How S3 refuses a presigned request: HTTP status, error code, message, extra error fields."""

    def __init__(self, status: int, code: str, message: str, **fields: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def xml(self) -> bytes:
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in self.fields.items())
        request_id = uuid.uuid4().hex[:16].upper()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _is_s3_v4(query: dict[str, list[str]]) -> bool:
    credential = _one(query, "X-Amz-Credential") or ""
    parts = credential.split("/")  # KEY/DATE/REGION/SERVICE/aws4_request
    return "X-Amz-Algorithm" in query and len(parts) >= 5 and parts[3] == "s3"


def _is_s3_v2(query: dict[str, list[str]]) -> bool:
    # Query APIs (EC2, SQS, ...) signed with Signature Version 2 name an Action and a SignatureVersion.
    return all(name in query for name in ("AWSAccessKeyId", "Signature", "Expires")) and not (
        "Action" in query or "SignatureVersion" in query
    )


def check_presigned_query(query_string: str) -> None:
    """Raise :class:`PresignedUrlError` when the query string is an S3 presigned URL that S3 would
    refuse at emulated now (expired or malformed); return quietly for anything else."""
    query = parse_qs(query_string, keep_blank_values=True)
    if _is_s3_v4(query):
        _check_v4(query)
    elif _is_s3_v2(query):
        _check_v2(query)


def _check_v4(query: dict[str, list[str]]) -> None:
    if any(not _one(query, name) for name in _V4_PARAMETERS):
        raise PresignedUrlError(
            400,
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the "
            + ", ".join(_V4_PARAMETERS[:-1])
            + f", and {_V4_PARAMETERS[-1]} parameters.",
        )
    raw_date = _one(query, "X-Amz-Date") or ""
    try:
        signed = datetime.strptime(raw_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise PresignedUrlError(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        ) from None
    raw_expires = _one(query, "X-Amz-Expires") or ""
    try:
        expires = int(raw_expires)
    except ValueError:
        raise PresignedUrlError(
            400, "AuthorizationQueryParametersError", "X-Amz-Expires should be a number"
        ) from None
    if expires < 0:
        raise PresignedUrlError(
            400, "AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative"
        )
    if expires > MAX_EXPIRES_SECONDS:
        raise PresignedUrlError(
            400,
            "AuthorizationQueryParametersError",
            f"X-Amz-Expires must be less than a week (in seconds) that is; {MAX_EXPIRES_SECONDS}",
        )
    clock = get_clock()
    now = clock.timestamp()
    # X-Amz-Date keeps whole seconds: the URL was signed within the second that follows. Counting from
    # the end of that second (or now) keeps a URL signed just after an advance from dating before it.
    expires_at = clock.at_wall_time(min(signed + 1.0, time.time())) + expires
    if now > expires_at:
        raise PresignedUrlError(
            403,
            "AccessDenied",
            "Request has expired",
            **{"X-Amz-Expires": str(expires), "Expires": _iso(expires_at), "ServerTime": _iso(now)},
        )


def _check_v2(query: dict[str, list[str]]) -> None:
    raw_expires = _one(query, "Expires") or ""
    try:
        expires_at = int(raw_expires)
    except ValueError:
        raise PresignedUrlError(
            403, "AccessDenied", f"Invalid date (should be seconds since epoch): {raw_expires}"
        ) from None
    now = get_clock().timestamp()
    if now > expires_at:
        raise PresignedUrlError(
            403, "AccessDenied", "Request has expired", Expires=_iso(expires_at), ServerTime=_iso(now)
        )


def expiring_presigned_urls(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap the embedded AWS's WSGI ``app``: presigned S3 requests S3 would refuse are answered here."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            check_presigned_query(str(environ.get("QUERY_STRING") or ""))
        except PresignedUrlError as error:
            body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else error.xml()
            reason = {400: "Bad Request", 403: "Forbidden"}[error.status]
            start_response(
                f"{error.status} {reason}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return app(environ, start_response)

    return application

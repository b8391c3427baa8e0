"""The client-connect handler checks a request without pydantic (its import is a cold-start cost on
every login): for any event, it accepts what the pydantic model it replaced accepted, with the same
values, and refuses what it refused with the same reason (the text the user is shown)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cvpn_shared.monitoring.client_connect import (
    MAX_NAME_BYTES,
    ClientConnectRequest,
    ClientConnectResponse,
    MalformedRequest,
)

_SCHEMA_VERSION = re.compile(r"v[0-9]{1,3}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class ReferenceRequest(BaseModel):
    """The pydantic model the handler used, kept here as the reference."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    connection_id: str = Field(default="", alias="connection-id", max_length=4096)
    endpoint_id: str = Field(default="", alias="endpoint-id", max_length=4096)
    common_name: str = Field(default="", alias="common-name", max_length=4096)
    username: str = Field(default="", alias="username", max_length=4096)
    platform: str = Field(default="", alias="platform", max_length=4096)
    platform_version: str = Field(default="", alias="platform-version", max_length=4096)
    public_ip: str = Field(default="", alias="public-ip", max_length=64)
    client_openvpn_version: str = Field(default="", alias="client-openvpn-version", max_length=4096)
    groups: Any = Field(default="", alias="groups")
    schema_version: str = Field(default="v2", alias="schema-version", max_length=8)

    @field_validator("public_ip")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if value:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("not an IPv4 or IPv6 address") from None
        return value

    @field_validator("username", "common_name")
    @classmethod
    def _a_key_fits(cls, value: str) -> str:
        if len(value.encode("utf-8", errors="surrogatepass")) > MAX_NAME_BYTES:
            raise ValueError(f"longer than {MAX_NAME_BYTES} bytes")
        return value

    @field_validator("schema_version")
    @classmethod
    def _a_version(cls, value: str) -> str:
        if value and not _SCHEMA_VERSION.fullmatch(value):
            raise ValueError("not a schema version such as v2")
        return value


def reference_reason(error: ValidationError) -> str:
    problems = []
    for problem in error.errors(include_url=False, include_input=False)[:3]:
        field = ".".join(str(part) for part in problem.get("loc", ())) or "request"
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return _UNPRINTABLE.sub("?", "; ".join(problems))


KEYS = [
    "connection-id",
    "endpoint-id",
    "common-name",
    "username",
    "platform",
    "platform-version",
    "public-ip",
    "client-openvpn-version",
    "groups",
    "schema-version",
]
ATTRIBUTES = [key.replace("-", "_") for key in KEYS]
texts = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(codec=None, categories=None), max_size=10),  # lone surrogates included
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["a", "é", "𝄞", "\x00"]),
        st.sampled_from([8, 9, 64, 65, 256, 257, 341, 342, 512, 513, 1024, 1025, 4096, 4097]),
    ),
    st.sampled_from(["", "NA", "v2", "v1234", "198.51.100.7", "2001:db8::1", "fe80::1%eth0", "999.1.1.1"]),
)
values = st.one_of(
    texts,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=10),
)
events = st.dictionaries(st.sampled_from([*KEYS, *ATTRIBUTES, "other"]), values, max_size=8)


@settings(max_examples=1000, deadline=None, database=None)
@given(event=events)
def test_a_request_is_judged_as_the_pydantic_model_judged_it(event: dict[str, Any]) -> None:
    try:
        expected: Any = ReferenceRequest.model_validate(event).model_dump()
    except ValidationError as error:
        expected = reference_reason(error)
    try:
        got: Any = ClientConnectRequest.from_event(event)._asdict()
    except MalformedRequest as error:
        got = error.reason
    assert got == expected


def test_an_answer_has_client_vpn_s_keys_in_order() -> None:
    answer = ClientConnectResponse(allow=False, error_msg_on_denied_connection="no", schema_version="v3")
    assert list(answer.to_answer().items()) == [
        ("allow", False),
        ("error-msg-on-denied-connection", "no"),
        ("posture-compliance-statuses", []),
        ("schema-version", "v3"),
    ]

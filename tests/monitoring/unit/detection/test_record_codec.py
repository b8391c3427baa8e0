"""The entity records' JSON codec (``encode_record`` / ``decode_record``): compact, the same text
the standard library would give for what it takes, and non-text keys written as text as ``json``
writes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cvpn_shared.monitoring.detection.entity_store import decode_record, encode_record

RECORD: dict[str, Any] = {
    "format": 2,
    "seen": {"cvpn-connection-0123456789abcdef0": 1_800_000_000_000},
    "recent": [
        (1_800_000_000_000, "cvpn-connection-0123456789abcdef0", "joe", "authentication-failed", False, True)
    ],
    "distinct": {"joe": 1_800_000_000_000},
    "episodes": {},
    "armed": None,
    "username": "jos\u00e9",
    "latest": 1_800_000_000_000,
}


def test_a_record_is_compact_json_that_decodes_to_itself() -> None:
    text = encode_record(RECORD)
    assert text == json.dumps(RECORD, separators=(",", ":"), ensure_ascii=False)
    assert decode_record(text) == json.loads(json.dumps(RECORD))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({1: "a", "b": 2}, '{"1":"a","b":2}'),
        ({"seen": {2: 3}}, '{"seen":{"2":3}}'),
        ({None: 1}, '{"null":1}'),
    ],
)
def test_keys_that_are_not_text_are_written_as_text(data: dict[Any, Any], expected: str) -> None:
    assert encode_record(data) == expected
    assert encode_record(data) == json.dumps(data, separators=(",", ":"))


def test_what_orjson_refuses_to_read_the_standard_library_decides() -> None:
    assert decode_record('{"value": NaN}')["value"] != decode_record('{"value": NaN}')["value"]  # NaN
    assert decode_record('  {"a": 1}\n') == {"a": 1}
    with pytest.raises(ValueError):
        decode_record('{"a": 1} trailing')

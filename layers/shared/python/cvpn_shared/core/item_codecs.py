"""DynamoDB items of plain values: strings, integers and booleans, one attribute each.

The approvals and webhook-deliveries tables store their records this way: ``None`` values are left
out, numbers are read back as integers, and any other value is stored as its text.
"""

from __future__ import annotations

from typing import Any

__all__ = ["decode_plain_item", "encode_plain_item"]


def encode_plain_item(record: dict[str, Any]) -> dict[str, Any]:
    """The DynamoDB item of ``record`` (its ``None`` values left out)."""
    return {key: _attribute(value) for key, value in record.items() if value is not None}


def decode_plain_item(item: dict[str, Any]) -> dict[str, Any]:
    """The record a DynamoDB item written by ``encode_plain_item`` holds."""
    return {key: _value(value) for key, value in item.items()}


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    return {"S": str(value)}


def _value(attribute: dict[str, Any]) -> Any:
    if "N" in attribute:
        return int(float(attribute["N"]))
    if "BOOL" in attribute:
        return bool(attribute["BOOL"])
    return attribute.get("S")

"""Field errors as every area reports them: ``[{field, message}]`` with dotted paths."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = ["describe_field_errors", "field_errors"]


def describe_field_errors(errors: list[dict[str, Any]]) -> str:
    """``[{field, message}]`` as one line for an error message: ``field: message; field: message``."""
    return "; ".join(f"{error['field']}: {error['message']}" for error in errors)


def field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as [{field, message}] with dotted paths such as routes[1].destination_cidr."""
    out = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part in ("function-after", "function-before") or str(part).startswith(
                ("function-", "tagged-union")
            ):
                continue
            else:
                path += f".{part}" if path else str(part)
        message = str(item["msg"]).removeprefix("Value error, ")
        out.append({"field": path or "request", "message": message})
    return out

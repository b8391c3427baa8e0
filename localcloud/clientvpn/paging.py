"""Paging and filtering for the Describe* Client VPN operations (EC2 semantics)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import TypeVar

from localcloud.clientvpn.exceptions import ClientVpnError, InvalidParameterValue

T = TypeVar("T")

MIN_RESULTS = 5
MAX_RESULTS = 1000


def paginate(
    items: Sequence[T], max_results: int | None, next_token: str | None
) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token of the next page (None on the last page).

    MaxResults must be 5..1000 as for every Client VPN Describe call; without it every item is
    returned. The token encodes the offset of the next item.
    """
    if max_results is not None and not MIN_RESULTS <= int(max_results) <= MAX_RESULTS:
        raise InvalidParameterValue(
            f"Value ( {max_results} ) for parameter maxResults is invalid. "
            f"Expecting a value between {MIN_RESULTS} and {MAX_RESULTS}."
        )
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except (ValueError, UnicodeDecodeError) as error:
            raise ClientVpnError(
                "InvalidPaginationToken", f"Invalid pagination token: {next_token}"
            ) from error
        if start < 0 or start > len(items):
            raise ClientVpnError("InvalidPaginationToken", f"Invalid pagination token: {next_token}")
    if max_results is None:
        return list(items[start:]), None
    end = start + int(max_results)
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return list(items[start:end]), token


def apply_filters(
    items: Sequence[T],
    filters: dict[str, list[str]],
    extractors: dict[str, Callable[[T], list[str]]],
) -> list[T]:
    """Items matching every filter; a filter matches when any of its values equals one of the item's.

    ``extractors`` maps each filter name the botocore model documents to the item's values for it;
    any other name is rejected as EC2 does.
    """
    for name in filters:
        if name not in extractors:
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
    return [
        item
        for item in items
        if all(set(values) & set(extractors[name](item)) for name, values in filters.items())
    ]

"""DynamoDB writes as atomic as DynamoDB makes them.

DynamoDB applies a conditional write (PutItem, UpdateItem, DeleteItem with a condition, and each
TransactWriteItems as a whole) atomically: two writers racing on ``attribute_not_exists(pk)``
cannot both succeed. moto checks the condition and then writes, in two Python steps, and the local
cloud serves requests on several threads, so two racing writers could both pass the check and the
later one silently overwrite the earlier: a client CIDR block handed to two requests, a ticket
started twice. The local cloud runs moto's writes one at a time per process, which is what a
condition needs; reads are left concurrent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install", "installed", "uninstall"]

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_LOCK = threading.RLock()
_originals: dict[str, Callable[..., Any]] = {}


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return write


def install() -> None:
    """Serialise moto's DynamoDB writes (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        if name not in _originals:
            _originals[name] = getattr(DynamoDBBackend, name)
            setattr(DynamoDBBackend, name, _serialised(_originals[name]))


def uninstall() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name, original in _originals.items():
        setattr(DynamoDBBackend, name, original)
    _originals.clear()


def installed() -> bool:
    return bool(_originals)

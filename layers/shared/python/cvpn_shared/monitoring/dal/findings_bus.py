"""Data access to the product's EventBridge bus: findings go out with PutEvents.

PutEvents takes at most 10 entries per call and may accept some entries and refuse others
(``FailedEntryCount``): the refused ones are sent again with backoff, a few times, and whatever
still fails raises ``FindingsNotPublished`` so the caller does not advance past it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_ENTRIES_PER_CALL", "BusEntry", "FindingsBus", "FindingsNotPublished"]

MAX_ENTRIES_PER_CALL = 10


class FindingsNotPublished(Exception):
    """Some entries were still refused after every retry."""

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        codes = sorted({str(failure.get("ErrorCode", "?")) for failure in failures})
        super().__init__(f"{len(failures)} event(s) not published to the bus: {', '.join(codes)}")
        self.failures = failures


@dataclass(frozen=True)
class BusEntry:
    """One event for the bus."""

    source: str
    detail_type: str
    detail: dict[str, Any]
    resources: tuple[str, ...] = ()


class FindingsBus:
    """Publishes entries to one event bus."""

    def __init__(
        self,
        events_client: Any,
        bus_name: str,
        *,
        attempts: int = 5,
        base_delay_seconds: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._events = events_client
        self._bus = bus_name
        self._attempts = attempts
        self._base_delay = base_delay_seconds
        self._sleep = sleep

    def publish(self, entries: Sequence[BusEntry]) -> int:
        """Put every entry on the bus; returns how many were published."""
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            self._put_batch([self._entry(entry) for entry in entries[start : start + MAX_ENTRIES_PER_CALL]])
        return len(entries)

    def _entry(self, entry: BusEntry) -> dict[str, Any]:
        return {
            "EventBusName": self._bus,
            "Source": entry.source,
            "DetailType": entry.detail_type,
            "Detail": json.dumps(entry.detail, default=str, sort_keys=True),
            "Resources": list(entry.resources),
        }

    def _put_batch(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        failures: list[dict[str, Any]] = []
        for attempt in range(self._attempts):
            answer = self._events.put_events(Entries=pending)
            if not answer.get("FailedEntryCount"):
                return
            results = answer.get("Entries", [])
            failures = [result for result in results if result.get("ErrorCode")]
            pending = [
                entry for entry, result in zip(pending, results, strict=False) if result.get("ErrorCode")
            ]
            if not pending:
                return
            if attempt + 1 < self._attempts:
                self._sleep(self._base_delay * (2**attempt) * (0.5 + random.random()))
        raise FindingsNotPublished(failures)

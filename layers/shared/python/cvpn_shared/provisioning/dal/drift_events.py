"""Data access to the product's EventBridge bus for provisioning: drift events (and the server
certificate check's) go out with PutEvents."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DRIFT_DETAIL_TYPE", "DriftEventNotPublished", "DriftEvents"]

DRIFT_DETAIL_TYPE = "Client VPN Drift Detected"


class DriftEventNotPublished(Exception):
    """EventBridge refused the event (``FailedEntryCount``)."""


class DriftEvents:
    """Publishes one event per finding to one bus: ``Client VPN Drift Detected`` unless told another
    detail type."""

    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish(
        self,
        detail: dict[str, Any],
        resources: list[str] | None = None,
        *,
        detail_type: str = DRIFT_DETAIL_TYPE,
    ) -> str:
        """Put the event on the bus; returns its event id."""
        answer = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str, sort_keys=True),
                    "Resources": list(resources or []),
                }
            ]
        )
        entry = (answer.get("Entries") or [{}])[0]
        if answer.get("FailedEntryCount") or entry.get("ErrorCode"):
            raise DriftEventNotPublished(
                f"{entry.get('ErrorCode', 'unknown')}: {entry.get('ErrorMessage', 'refused by EventBridge')}"
            )
        return str(entry.get("EventId", ""))

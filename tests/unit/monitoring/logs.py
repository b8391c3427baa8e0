"""Connection-log records as Client VPN writes them, for the monitoring tests.

``ConnectionLog`` hands out log events (``eventId``, ``timestamp`` in ms, ``message``) at chosen
offsets from a fixed start, and the attempts parsed from them, so every test goes through the parser.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from cvpn_shared.monitoring.attempts import ConnectionAttempt, parse_events

ENDPOINT_ID = "cvpn-endpoint-aaa111bbb222ccc33"
START = datetime(2026, 3, 26, 20, 0, 0, tzinfo=UTC)

# The AWS sample records of the connection-logs spec, verbatim.
AWS_SUCCESSFUL_RECORD = (
    '{"connection-log-type":"connection-attempt","connection-attempt-status":"successful",'
    '"connection-reset-status":"NA","connection-attempt-failure-reason":"NA",'
    '"connection-id":"cvpn-connection-abc123abc123abc12","client-vpn-endpoint-id":"cvpn-endpoint-aaa111bbb222ccc33",'
    '"transport-protocol":"udp","connection-start-time":"2020-03-26 20:37:15",'
    '"connection-last-update-time":"2020-03-26 20:37:15","client-ip":"10.0.1.2","common-name":"client1",'
    '"device-type":"mac","device-ip":"98.247.202.82","port":"50096","ingress-bytes":"0","egress-bytes":"0",'
    '"ingress-packets":"0","egress-packets":"0","connection-end-time":"NA","username":"joe"}'
)


def successful_record(**overrides: str) -> dict[str, str]:
    """A successful attempt as AWS logs it (the sample record), with ``overrides`` (log field names)."""
    record: dict[str, str] = json.loads(AWS_SUCCESSFUL_RECORD)
    record.update(overrides)
    return record


def failed_record(**overrides: str) -> dict[str, str]:
    """A failed attempt as AWS logs it: a reason, NA for the start time, client-ip and duration."""
    failed = {
        "connection-attempt-status": "failed",
        "connection-attempt-failure-reason": "authentication-failed",
        "connection-start-time": "NA",
        "client-ip": "NA",
        "connection-duration-seconds": "NA",
    }
    return successful_record(**{**failed, **overrides})


class ConnectionLog:
    """Builds log events of one endpoint, at seconds after ``START``."""

    def __init__(self, endpoint_id: str = ENDPOINT_ID, start: datetime = START) -> None:
        self.endpoint_id = endpoint_id
        self.start = start
        self._ids = count(1)

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def event(self, seconds: float, record: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        number = next(self._ids)
        return {
            "eventId": event_id or f"event-{number:08d}",
            "timestamp": int(self.at(seconds).timestamp() * 1000),
            "message": json.dumps(record),
        }

    def failure(
        self,
        seconds: float,
        *,
        ip: str | None = "203.0.113.7",
        user: str | None = "joe",
        reason: str = "authentication-failed",
        connection_id: str | None = None,
        common_name: str = "NA",
    ) -> dict[str, Any]:
        """A failed attempt logged ``seconds`` after the start."""
        record = failed_record(
            **{
                "connection-id": connection_id or f"cvpn-connection-{next(self._ids):017d}",
                "client-vpn-endpoint-id": self.endpoint_id,
                "connection-attempt-failure-reason": reason,
                "device-ip": ip or "NA",
                "username": user or "NA",
                "common-name": common_name,
            }
        )
        return self.event(seconds, record)

    def success(
        self,
        seconds: float,
        *,
        ip: str = "203.0.113.7",
        user: str = "joe",
        connection_id: str | None = None,
        started: float | None = None,
    ) -> dict[str, Any]:
        """A successful attempt logged at ``seconds``, started at ``started`` (default: the same)."""
        record = successful_record(
            **{
                "connection-id": connection_id or f"cvpn-connection-{next(self._ids):017d}",
                "client-vpn-endpoint-id": self.endpoint_id,
                "device-ip": ip,
                "username": user,
                "connection-start-time": self.at(seconds if started is None else started).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
            }
        )
        return self.event(seconds, record)

    def attempts(self, events: list[dict[str, Any]]) -> list[ConnectionAttempt]:
        """The events, parsed (every one must parse)."""
        attempts, stats = parse_events(events)
        assert stats.bad_lines == 0
        return attempts

    def failures(
        self, first_second: float, number: int, *, every: float = 10, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """``number`` failures ``every`` seconds apart from ``first_second``."""
        return [self.failure(first_second + index * every, **kwargs) for index in range(number)]


def mixed_runs(seed: int) -> list[list[dict[str, Any]]]:
    """Runs of mixed events: failures (typos, brute force, sprays), successes, periodic re-logs of
    sessions, notable reasons, events delivered again in a later run, and quiet gaps between runs."""
    rng = random.Random(seed)
    log = ConnectionLog()
    sources = [f"198.51.100.{index}" for index in range(1, 25)]
    users = [f"user{index}" for index in range(15)]
    sessions: list[tuple[str, str, str, float]] = []
    runs: list[list[dict[str, Any]]] = []
    earlier: list[dict[str, Any]] = []
    clock = 0.0
    for _ in range(14):
        clock += rng.choice((60.0, 180.0, 2400.0))
        events: list[dict[str, Any]] = []
        for _ in range(rng.randrange(20, 120)):
            at = clock + rng.uniform(0, 170)
            roll = rng.random()
            ip, user = rng.choice(sources[:6] if roll < 0.3 else sources), rng.choice(users)
            if roll < 0.55:
                reason = "authorization-policy-deny" if rng.random() < 0.05 else "authentication-failed"
                events.append(log.failure(at, ip=ip, user=user, reason=reason))
            elif roll < 0.8 or not sessions:
                connection_id = f"cvpn-connection-{seed:03d}{len(sessions):014d}"
                sessions.append((connection_id, ip, user, at))
                events.append(log.success(at, ip=ip, user=user, connection_id=connection_id))
            else:  # a session logged again, with its connection id and start time
                connection_id, ip, user, started = rng.choice(sessions)
                events.append(
                    log.success(
                        max(at, started), ip=ip, user=user, connection_id=connection_id, started=started
                    )
                )
        if earlier and rng.random() < 0.5:
            events += rng.sample(earlier, min(5, len(earlier)))  # delivered again
        earlier = events
        runs.append(events)
    return runs

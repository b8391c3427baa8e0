"""Schedule expressions the local scheduler understands (rate, at, AWS six-field cron)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from localcloud.scheduler import ScheduleError, next_fire_time

START = datetime(2026, 11, 28, 22, 30, 15, tzinfo=UTC)  # a Saturday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(1 minute)", "2026-11-28T22:31:15"),
        ("rate(5 minutes)", "2026-11-28T22:35:15"),
        ("rate(2 hours)", "2026-11-29T00:30:15"),
        ("rate(1 day)", "2026-11-29T22:30:15"),
        ("cron(0 3 * * ? *)", "2026-11-29T03:00:00"),
        ("cron(*/15 * * * ? *)", "2026-11-28T22:45:00"),
        ("cron(0 9 ? * MON-FRI *)", "2026-11-30T09:00:00"),
        ("cron(0 12 1 JAN ? *)", "2027-01-01T12:00:00"),
        ("cron(0 0 L * ? *)", "2026-11-30T00:00:00"),
        ("cron(0 0 LW * ? *)", "2026-11-30T00:00:00"),
        ("cron(0 0 15W * ? *)", "2026-12-15T00:00:00"),
        ("cron(0 10 ? * 6L *)", "2026-12-25T10:00:00"),
        ("cron(0 10 ? * 2#1 *)", "2026-12-07T10:00:00"),
        ("cron(0 8 1 * ? 2030)", "2030-01-01T08:00:00"),
        ("at(2026-12-24T18:00:00)", "2026-12-24T18:00:00"),
    ],
)
def test_next_fire_time(expression: str, expected: str) -> None:
    assert next_fire_time(expression, START) == at(expected)


def test_rate_keeps_its_cadence_from_the_start_and_coalesces_missed_runs() -> None:
    later = at("2026-11-28T22:40:00")
    assert next_fire_time("rate(1 minute)", later, started=START) == at("2026-11-28T22:40:15")


def test_cron_honours_the_schedule_timezone() -> None:
    assert next_fire_time("cron(0 9 * * ? *)", START, timezone="Europe/Paris") == at("2026-11-29T08:00:00")


def test_one_time_schedule_in_the_past_never_fires() -> None:
    assert next_fire_time("at(2020-01-01T00:00:00)", START) is None


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(1 week)",
        "cron(0 3 * * *)",
        "cron(0 3 * * MON *)",
        "cron(61 * * * ? *)",
        "every day",
    ],
)
def test_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        next_fire_time(expression, START)

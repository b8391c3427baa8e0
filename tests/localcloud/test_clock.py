"""The emulated clock: scale, advance, sleep."""

from __future__ import annotations

import threading
import time

import pytest

from localcloud.clock import Clock


def test_time_runs_at_the_time_scale() -> None:
    """Given scale 100, when 0.05 real seconds pass, then about 5 emulated seconds pass."""
    clock = Clock(time_scale=100)
    start = clock.timestamp()
    time.sleep(0.05)
    elapsed = clock.timestamp() - start
    assert 4.5 <= elapsed < 30


def test_advance_moves_time_forward_only() -> None:
    clock = Clock(time_scale=1)
    start = clock.timestamp()
    clock.advance(3600)
    assert clock.timestamp() - start >= 3600
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_sleep_counts_emulated_seconds() -> None:
    """A 60-emulated-second sleep at scale 1200 takes about 50 real milliseconds."""
    clock = Clock(time_scale=1200)
    started = time.monotonic()
    assert clock.sleep(60) is True
    real = time.monotonic() - started
    assert 0.04 <= real < 2


def test_advance_wakes_a_sleeper() -> None:
    """A sleeper for an emulated hour at scale 1 returns once the clock is advanced past it."""
    clock = Clock(time_scale=1)
    done = threading.Event()

    def sleeper() -> None:
        clock.sleep(3600)
        done.set()

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    clock.advance(3601)
    assert done.wait(timeout=5)


def test_sleep_stops_early_on_stop_event() -> None:
    clock = Clock(time_scale=1)
    stop = threading.Event()
    stop.set()
    assert clock.sleep(3600, stop=stop) is False


def test_change_of_scale_keeps_time_continuous() -> None:
    clock = Clock(time_scale=1)
    before = clock.timestamp()
    clock.time_scale = 1000
    after = clock.timestamp()
    assert 0 <= after - before < 1
    with pytest.raises(ValueError, match="time_scale"):
        clock.time_scale = 0
    with pytest.raises(ValueError):
        Clock(time_scale=-1)


def test_at_wall_time_reads_the_emulated_clock_of_that_moment() -> None:
    """A moment before an advance maps to before it; one after maps after it; scale changes count."""
    clock = Clock(time_scale=1)
    before = time.time()
    emulated_before = clock.timestamp()
    time.sleep(0.02)
    clock.advance(3 * 3600)
    after = time.time()
    assert abs(clock.at_wall_time(before) - emulated_before) < 0.5
    assert abs(clock.at_wall_time(after) - clock.timestamp()) < 0.5
    clock.time_scale = 1000
    time.sleep(0.05)
    assert clock.at_wall_time(after) < clock.timestamp() - 40
    assert abs(clock.at_wall_time(time.time()) - clock.timestamp()) < 5

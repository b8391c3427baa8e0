"""``cyclic_gc_paused``: the collector is off in the block, back on after it (unless it was off
before), the block's survivors are promoted without a young collection walking them, and cycles
made in the block are still collected."""

from __future__ import annotations

import gc
import threading
import weakref

from cvpn_shared.monitoring.gcpause import cyclic_gc_paused


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_the_collector_is_off_in_the_block_and_on_after_it() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_nested_pauses_switch_it_back_on_once_at_the_outer_end() -> None:
    with cyclic_gc_paused():
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_blocks_survivors_are_promoted_without_a_collection_walking_them() -> None:
    threshold = gc.get_threshold()[0]
    this_thread = threading.get_ident()
    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and threading.get_ident() == this_thread:  # not another thread's allocations
            started.append(info["generation"])

    gc.callbacks.append(record)
    try:
        with cyclic_gc_paused():
            kept = [[number] for number in range(threshold * 20)]
            assert gc.get_count()[0] > threshold  # a collection is long due
        collected_on_leaving = list(started)
    finally:
        gc.callbacks.remove(record)
    assert collected_on_leaving == []  # the survivors were promoted, not walked
    # In the oldest generation at once (a young collection would have put them in the middle one).
    assert any(item is kept[0] for item in gc.get_objects(generation=2))


def test_a_cycle_made_in_the_block_is_still_collected() -> None:
    with cyclic_gc_paused():
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        probe = weakref.ref(first)
        del first, second
    assert probe() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert probe() is None


def test_the_collector_comes_back_on_when_the_block_raises() -> None:
    try:
        with cyclic_gc_paused():
            raise KeyError("boom")
    except KeyError:
        pass
    assert gc.isenabled()

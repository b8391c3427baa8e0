"""Pausing Python's cyclic garbage collector around a batch that only builds acyclic objects.

Parsing a page of log lines and detecting in it keep tens of thousands of fresh objects alive
(tuples, lists, dicts, none of them in a reference cycle: reference counting frees them all). Each
of them counts towards the collector's thresholds, so the collector keeps walking the batch while it
is being built, for nothing: about a fifth of the CPU time of parse + detect (bench
``bench/monitoring_parse_detect.py``). ``cyclic_gc_paused`` switches the collector off for the
duration of such a batch and back on afterwards (only if it was on: nesting, or a caller that turned
it off itself, is respected). Cycles other code creates meanwhile are collected once it is back on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["cyclic_gc_paused"]


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (reference counting still frees memory)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

"""Pausing Python's cyclic garbage collector around a batch that only builds acyclic objects.

Parsing a page of log lines and detecting in it keep tens of thousands of fresh objects alive
(tuples, lists, dicts, none of them in a reference cycle: reference counting frees them all). Each
of them counts towards the collector's thresholds, so the collector keeps walking the batch while it
is being built, for nothing: about a fifth of the CPU time of parse + detect (bench
``bench/monitoring_parse_detect.py``). ``cyclic_gc_paused`` switches the collector off for the
duration of such a batch and back on afterwards (only if it was on: nesting, or a caller that turned
it off itself, is respected). Cycles other code creates meanwhile are collected once it is back on.

Switching it back on would not be the end of it: the first young collection afterwards would walk
every object the batch left alive (all of them are young), about a tenth of the CPU time of parse +
detect in 10,000-event runs. The block's survivors are promoted to the oldest generation instead
(``gc.freeze`` then ``gc.unfreeze``: two list splices), where they are looked at only by a full
collection, as any long-lived object is; most are freed by reference counting well before.
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
        # The batch's survivors would all be walked by the first young collection after
        # ``enable``: promote them to the oldest generation at once instead (freeze moves every
        # tracked object to the permanent generation and resets the young count; unfreeze puts
        # them back, as the oldest generation). Cycles among them are found by the next full
        # collection, as any long-lived object's are.
        gc.freeze()
        gc.unfreeze()
        gc.enable()

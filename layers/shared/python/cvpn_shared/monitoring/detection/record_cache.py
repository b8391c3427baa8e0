"""Entity records kept in memory between ingestion runs of a warm Lambda (the detector's read cache).

The scheduled ingest runs every minute in the same warm execution environment most of the time;
without a cache, each run reads every entity its events touch (one BatchGetItem key per entity, most
of them for successes of entities that never failed) and decodes the records it had itself written a
minute before. The cache keeps, per entity key, what this process last read or wrote: the version, the
expiry, ``armed_at`` and the record itself (the ``EntityRecord`` after a write, the undecoded
``StoredState`` after a read), or that the entity has no record.

When the cache may be believed (``begin_run``): the detection state table carries a *writer
generation* (one item holding a random token). Every run first replaces the token with a new one, in
one atomic call that answers the token it replaced. A process believes its cache only when the token
it replaced is the one it wrote itself last time: then no other process has run against the table
since, and the cache is exactly the table for the entities it holds (a new table, or another
table, cannot answer that token). Otherwise the cache is emptied and refilled by reading.

Two runs at the same time: the ingest holds each log group under a lease, and an entity's records
belong to one endpoint, whose logs are in one log group, so two runs never work on the same entity
at once; a run that believed its cache while another process ran meanwhile finds out at its next
run (the token is not its own) and reads again.

Even when believed, nothing the cache says is written blindly: every record write stays conditional
on the version, so a stale entry costs a conflict and a re-read, never a lost count. What the cache
decides without a write is only that a success-only entity needs no look (it has no record, or is
not armed within R6's window) - which is why it must be exact, hence the generation.

Bounds: the entries' estimated memory stays under ``capacity_bytes`` (default 128 MB of the ingest
function's 1024 MB; an entity that failed once takes about 2 KB, a user under a long attack some
50-100 KB); beyond that the cache is emptied (the next run reads again). A run that fails half way
empties it too (records it changed in memory may not have been written).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cvpn_shared.monitoring.detection.entities import EntityRecord
    from cvpn_shared.monitoring.detection.entity_store import StoredState

__all__ = ["CachedEntry", "GenerationStore", "RecordCache"]

# An entry's fields, in order: version (0: no record), expires_at (epoch s), armed_at (epoch ms or
# None), held (the record, or None when there is none).
CachedEntry = tuple[int, int, int | None, "EntityRecord | StoredState | None"]

DEFAULT_CAPACITY_BYTES = 128 * 1024 * 1024
# Estimated bytes of a held entry (measured with tracemalloc on the benchmark's records): a known
# absence, and an EntityRecord's base, per remembered attempt / failure / value, per episode.
_ABSENT_BYTES = 250
_RECORD_BYTES = 900
_ITEM_BYTES = 180
_EPISODE_BYTES = 3000


def _estimated_bytes(entry: CachedEntry) -> int:
    _, _, _, held = entry
    if held is None:
        return _ABSENT_BYTES
    seen = getattr(held, "seen", None)
    if seen is None:  # a StoredState read but not decoded: its JSON text, about 3 times over once decoded
        return _RECORD_BYTES + 3 * held.text_length()  # type: ignore[union-attr]
    record: EntityRecord = held  # type: ignore[assignment]
    items = len(seen) + len(record.recent) + len(record.distinct)
    return _RECORD_BYTES + _ITEM_BYTES * items + _EPISODE_BYTES * len(record.episodes)


class GenerationStore(Protocol):
    def advance_generation(self) -> tuple[str | None, str]:
        """Replace the writer generation's token: (the token before, or None; the token written)."""
        ...


class RecordCache:
    """What this process last read or wrote of each entity record (see the module docstring)."""

    def __init__(self, capacity_bytes: int = DEFAULT_CAPACITY_BYTES) -> None:
        self._capacity = capacity_bytes
        self._entries: dict[str, CachedEntry] = {}
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        # The same entities by kind as (endpoint, value): all of them, and those armed (R6 may follow).
        self._known: dict[str, set[tuple[str, str]]] = {"device_ip": set(), "user": set()}
        self._armed: dict[str, set[tuple[str, str]]] = {"device_ip": set(), "user": set()}
        self._generation: str | None = None
        self._settings: Any = None
        self.trusted = False

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def estimated_bytes(self) -> int:
        """What the entries are estimated to take in memory."""
        return self._bytes

    def begin_run(self, store: GenerationStore, settings: Any) -> bool:
        """Claim the next writer generation; whether the cache may be believed for this run."""
        if settings != self._settings:
            self.clear()
            self._settings = settings
        read, written = store.advance_generation()
        self.trusted = self._generation is not None and read == self._generation
        if not self.trusted:
            self._forget()
        self._generation = written
        return self.trusted

    @property
    def entries(self) -> dict[str, CachedEntry]:
        """The entries by entity key (read them only after ``begin_run`` answered true)."""
        return self._entries

    def known(self, kind: str) -> set[tuple[str, str]]:
        """The (endpoint, value) of every entity of ``kind`` held (after ``begin_run`` answered true)."""
        return self._known[kind]

    def armed(self, kind: str) -> set[tuple[str, str]]:
        """The (endpoint, value) of the entities of ``kind`` held as armed (an attack rule fired)."""
        return self._armed[kind]

    def update(self, entries: dict[str, CachedEntry]) -> None:
        """Remember what was just read (absent entities included)."""
        for key, entry in entries.items():
            self._hold(key, entry)

    def put(self, key: str, entry: CachedEntry, *, entity: tuple[str, str, str] | None = None) -> None:
        """Remember what was just written; ``entity`` is the key's (kind, endpoint, value) if known."""
        self._hold(key, entry, entity)

    def clear(self) -> None:
        """Forget everything (the next run reads what it needs)."""
        self._forget()
        self._generation = None
        self.trusted = False

    def _hold(self, key: str, entry: CachedEntry, parts: tuple[str, str, str] | None = None) -> None:
        size = _estimated_bytes(entry)
        self._bytes += size - self._sizes.get(key, 0)
        if self._bytes > self._capacity:
            self._forget()
            self._bytes = size
        self._sizes[key] = size
        self._entries[key] = entry
        if parts is None:
            endpoint_id, kind, value = key.split("#", 2)  # ``entity_key``: no "#" in an endpoint id
        else:
            kind, endpoint_id, value = parts
        entity = (endpoint_id, value)
        self._known[kind].add(entity)
        _, _, armed_at, _ = entry
        if armed_at is None:
            self._armed[kind].discard(entity)
        else:
            self._armed[kind].add(entity)

    def _forget(self) -> None:
        self._entries.clear()
        self._sizes.clear()
        self._bytes = 0
        for held in (*self._known.values(), *self._armed.values()):
            held.clear()

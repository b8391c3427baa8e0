"""What the detector keeps between ingestion runs, and the contract of the store that keeps it.

One record per watched entity (a source address or a user, on one endpoint): its recent failures
inside the rules' windows, the episodes of its rules (for cooldown, recurrence and stable finding
ids), and the connection attempts it already counted. The detector reads every record a run touches
at once (``load``) and writes each changed record once (``save``): writes grow with the distinct
entities of a run, not with its events.

Concurrency is optimistic: a record carries a version; ``save`` writes a record only if its version
is still the one ``load`` returned, and answers the keys that lost the race. The detector then reads
those again, re-applies the run's events to the fresher state (counting is idempotent: attempts
already counted are skipped) and saves again. Two runs that overlap therefore lose nothing.

Expiry: each record has ``expires_at`` (epoch seconds). A store never returns an expired record,
even before its backend deletes it (DynamoDB TTL deletes lazily).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = [
    "DetectionStateConflict",
    "DetectionStateStore",
    "InMemoryDetectionState",
    "StateWrite",
    "StoredState",
    "decode_record",
    "encode_record",
]


try:
    import orjson
except ImportError:  # pragma: no cover - the layer and the dev install carry it
    orjson = None  # type: ignore[assignment]

# One compact encoder for every record (``json.dumps`` with options builds a new encoder per call).
_json_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_raw_decode = json.JSONDecoder().raw_decode


def encode_record(data: dict[str, Any]) -> str:
    """A record's compact JSON text: orjson when present (several times faster than ``json``; UTF-8
    rather than ``\\u`` escapes, non-text keys written as text as ``json`` does). Records have text
    keys only, so orjson runs without ``OPT_NON_STR_KEYS`` (a third slower) unless it refuses one."""
    if orjson is not None:
        try:
            return orjson.dumps(data).decode()
        except orjson.JSONEncodeError:
            return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()
    return _json_encode(data)


def decode_record(text: str) -> dict[str, Any]:
    """A record's JSON text decoded (orjson when present; whitespace around is accepted)."""
    if orjson is not None:
        try:
            return orjson.loads(text)  # type: ignore[no-any-return]
        except orjson.JSONDecodeError:
            pass  # the standard library's verdict (it takes NaN and huge integers)
    try:
        data, end = _raw_decode(text)
    except ValueError:
        end = -1
    return data if end == len(text) else json.loads(text)  # type: ignore[no-any-return]


class StoredState:
    """An entity's record as read, with the version to write it back against.

    ``data`` is decoded on first use (``text`` is its JSON): a run that only needs ``armed_at`` (when
    an attack rule last fired for the entity) never pays for decoding the rest.
    """

    __slots__ = ("_data", "_text", "armed_at", "expires_at", "version")

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        version: int = 0,
        expires_at: int = 0,
        *,
        text: str | None = None,
        armed_at: int | None = None,
    ) -> None:
        if data is None and text is None:
            raise ValueError("a stored state needs its data or its JSON text")
        self._data = data
        self._text = text
        self.version = version
        self.expires_at = expires_at
        self.armed_at = armed_at

    def text_length(self) -> int:
        """The length of the record's JSON text as read (0 when it came decoded)."""
        return len(self._text) if self._text is not None else 0

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = decode_record(self._text or "{}")
        return self._data

    def __repr__(self) -> str:
        return f"StoredState(version={self.version}, expires_at={self.expires_at}, armed_at={self.armed_at})"


class StateWrite(NamedTuple):
    """A record to write: ``expected_version`` is the version read (0: the record must not exist).

    ``armed_at`` (epoch ms, or None) is stored beside the record so that it can be read without it.
    A named tuple: the detector builds one per changed entity and run.
    """

    key: str
    data: dict[str, Any]
    expected_version: int
    expires_at: int
    armed_at: int | None = None


class DetectionStateConflict(RuntimeError):
    """Records kept changing under the detector: it gave up after its retries (nothing half-written)."""


class DetectionStateStore(Protocol):
    """Where the detector keeps its per-entity records between runs."""

    def load(self, keys: Collection[str], *, now_epoch: int) -> dict[str, StoredState]:
        """The records that exist and have not expired at ``now_epoch``; absent keys are left out."""
        ...

    def save(self, writes: Sequence[StateWrite], *, now_epoch: int) -> list[str]:
        """Write each record whose version is still ``expected_version`` (stored as version + 1).

        ``expected_version`` 0 means "absent": it also matches a record expired at ``now_epoch``.
        Returns the keys not written because another writer changed them first (conflicts).
        """
        ...

    def advance_generation(self) -> tuple[str | None, str]:
        """Replace the store's writer generation with a new unique token, atomically: (the token
        before, or None; the token written). Only a detector with a ``RecordCache`` calls it
        (``cvpn_shared.monitoring.detection.record_cache``)."""
        ...


@dataclass
class InMemoryDetectionState:
    """A ``DetectionStateStore`` in a dict, for tests and the benchmark; counts reads and writes.

    Records are copied in and out (through JSON, as a real store would), so a caller never shares
    objects with the store.
    """

    # key -> (the record's JSON text, version, expires_at (epoch s), armed_at (epoch ms or None))
    records: dict[str, tuple[str, int, int, int | None]] = field(default_factory=dict)
    reads: int = 0
    writes: int = 0
    conflicts: int = 0
    generation: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self, keys: Collection[str], *, now_epoch: int) -> dict[str, StoredState]:
        found: dict[str, StoredState] = {}
        with self._lock:
            for key in keys:
                self.reads += 1
                record = self.records.get(key)
                if record is None:
                    continue
                text, version, expires_at, armed_at = record
                if expires_at <= now_epoch:
                    continue
                found[key] = StoredState(text=text, version=version, expires_at=expires_at, armed_at=armed_at)
        return found

    def save(self, writes: Sequence[StateWrite], *, now_epoch: int) -> list[str]:
        lost: list[str] = []
        with self._lock:
            for write in writes:
                current = self.records.get(write.key)
                current_version = 0
                if current is not None:
                    _, version, expires_at, _ = current
                    if expires_at > now_epoch:  # an expired record is as good as absent
                        current_version = version
                if current_version != write.expected_version:
                    self.conflicts += 1
                    lost.append(write.key)
                    continue
                self.writes += 1
                self.records[write.key] = (
                    encode_record(write.data),
                    write.expected_version + 1,
                    write.expires_at,
                    write.armed_at,
                )
        return lost

    def advance_generation(self) -> tuple[str | None, str]:
        """Replace the writer generation with a new token: (the token before, or None; the new one)."""
        with self._lock:
            previous, self.generation = self.generation, uuid.uuid4().hex
            return previous, self.generation

    def snapshot(self, key: str) -> dict[str, Any] | None:
        """A copy of a record's data (tests), expired or not."""
        record = self.records.get(key)
        if record is None:
            return None
        text, _, _, _ = record
        return copy.deepcopy(json.loads(text))

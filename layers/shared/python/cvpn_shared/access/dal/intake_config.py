"""Data access to the intake's configuration: source parameters (SSM) and secrets (Secrets Manager).

Both are read through short-lived, bounded caches (warm invocations reuse what they read), so a change
takes at most ``cache_seconds`` to apply. Callers who are not authenticated yet reach these reads, so
neither lets a caller choose how often AWS is called:

- sources are read as one catalog (every parameter under the path, ``GetParametersByPath``), not one
  parameter per name asked for: a name outside the catalog costs nothing, except that it may reload the
  catalog early (so a source configured a moment ago works at once) and those early reloads are
  rationed by a token bucket shared by all names;
- a secret is read again on demand (``refresh=True``, after a signature mismatch, in case it was just
  rotated) at most once per ``min_refresh_seconds``, whatever the number of bad signatures.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code

__all__ = ["MAX_SOURCES", "SecretsManagerSecrets", "SourceCatalog"]

logger = logging.getLogger(__name__)

_MISSING = object()
MAX_SOURCES = 200  # parameters read from the path; more are ignored (and logged)
_PAGE_SIZE = 10  # the most GetParametersByPath returns per page


class _BoundedTtlCache:
    """Values by key, each kept ``ttl_seconds``; the least recently used goes beyond ``max_entries``."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float], *, max_entries: int) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_entries
        self._values: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def age(self, key: str) -> float | None:
        with self._lock:
            entry = self._values.get(key)
        return None if entry is None else self._clock() - entry[0]

    def get(self, key: str) -> Any:
        with self._lock:
            entry = self._values.get(key)
            if entry is None:
                return _MISSING
            self._values.move_to_end(key)
        return entry[1] if self._clock() - entry[0] < self._ttl else _MISSING

    def put(self, key: str, value: Any) -> Any:
        with self._lock:
            self._values[key] = (self._clock(), value)
            self._values.move_to_end(key)
            while len(self._values) > self._max:
                self._values.popitem(last=False)
        return value


class _TokenBucket:
    """``burst`` tokens, one more every ``refill_seconds``: how often an optional call may be made."""

    def __init__(self, burst: int, refill_seconds: float, clock: Callable[[], float]) -> None:
        self._burst = float(burst)
        self._refill = refill_seconds
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            if self._refill > 0:
                self._tokens = min(self._burst, self._tokens + (now - self._at) / self._refill)
            else:
                self._tokens = self._burst
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # the caller's validation names it


class SourceCatalog:
    """Every source configured under ``path`` (one JSON parameter each), read as one catalog.

    ``get(name)`` answers from the catalog while it is younger than ``cache_seconds``. A name the
    catalog does not hold reloads it only when a token is left (``unknown_reload_burst`` tokens, one
    more every ``unknown_reload_seconds``): a newly configured source is found on its first delivery,
    and a flood of made-up names costs at most that many reads, never one per name, and stores nothing.
    """

    def __init__(
        self,
        ssm_client: Any,
        path: str,
        *,
        cache_seconds: float = 60.0,
        unknown_reload_burst: int = 3,
        unknown_reload_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssm = ssm_client
        self._path = "/" + path.strip("/")
        self._ttl = cache_seconds
        self._clock = clock
        self._reloads = _TokenBucket(unknown_reload_burst, unknown_reload_seconds, clock)
        self._catalog: dict[str, Any] | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many sources the catalog holds (what is configured: nothing a caller asks adds one)."""
        return len(self._catalog or {})

    def parameter_name(self, source: str) -> str:
        return f"{self._path}/{source}"

    def get(self, source: str) -> Any:
        """The parsed JSON value of the source's parameter (any JSON), None when it has none."""
        catalog = self._catalog
        # An unknown name reloads early only with a token: a newly configured source is found at once.
        if (
            catalog is None
            or self._clock() - self._loaded_at >= self._ttl
            or (source not in catalog and self._reloads.take())
        ):
            catalog = self._load(previous=catalog)
        return catalog.get(source)

    def _load(self, *, previous: dict[str, Any] | None) -> dict[str, Any]:
        try:
            catalog = self._read_all()
        except ClientError:
            if previous is None:
                raise
            logger.exception("webhook sources under %s: reload failed; keeping the last catalog", self._path)
            catalog = previous
        with self._lock:
            self._catalog, self._loaded_at = catalog, self._clock()
        return catalog

    def _read_all(self) -> dict[str, Any]:
        catalog: dict[str, Any] = {}
        token: str | None = None
        prefix = self._path + "/"
        while True:
            page = self._ssm.get_parameters_by_path(
                Path=self._path,
                Recursive=False,
                WithDecryption=True,
                MaxResults=_PAGE_SIZE,
                **({"NextToken": token} if token else {}),
            )
            for parameter in page.get("Parameters", []):
                name = str(parameter.get("Name", ""))
                if name.startswith(prefix):
                    catalog[name[len(prefix) :]] = _parsed(str(parameter.get("Value", "")))
            token = page.get("NextToken")
            if not token:
                return catalog
            if len(catalog) >= MAX_SOURCES:
                logger.error(
                    "webhook sources under %s: more than %d; the rest are ignored", prefix, MAX_SOURCES
                )
                return catalog


class SecretsManagerSecrets:
    """JSON secrets by name or ARN; None when the secret does not exist, is not readable by this
    function (outside its prefix) or holds no JSON object: every caller fails closed on None."""

    def __init__(
        self,
        secrets_client: Any,
        *,
        cache_seconds: float = 60.0,
        min_refresh_seconds: float = 0.0,
        max_entries: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secrets_client
        self._min_refresh = min_refresh_seconds
        self._cache = _BoundedTtlCache(cache_seconds, clock, max_entries=max_entries)

    def __len__(self) -> int:
        """How many secrets are cached (at most ``max_entries``)."""
        return len(self._cache)

    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None:
        """The secret's JSON object; ``refresh`` reads it again unless it was read within
        ``min_refresh_seconds`` (then the cached value is the answer)."""
        cached = self._cache.get(secret_id)
        if cached is not _MISSING and refresh:
            age = self._cache.age(secret_id)
            if age is not None and age >= self._min_refresh:
                cached = _MISSING
        if cached is not _MISSING:
            return dict(cached) if cached is not None else None
        return self._read(secret_id)

    def _read(self, secret_id: str) -> dict[str, Any] | None:
        try:
            answer = self._secrets.get_secret_value(SecretId=secret_id)
        except ClientError as error:
            code = error_code(error)
            if code == "AccessDeniedException":
                logger.error("secret %s is not readable by this function (outside its prefix?)", secret_id)
                return self._cache.put(secret_id, None)
            if code in ("ResourceNotFoundException", "InvalidRequestException"):
                return self._cache.put(secret_id, None)  # missing or scheduled for deletion: fail closed
            raise
        try:
            value = json.loads(answer.get("SecretString") or "null")
        except ValueError:
            value = None
        stored = self._cache.put(secret_id, value if isinstance(value, dict) else None)
        return dict(stored) if stored is not None else None

    def get_or_create_json(self, secret_id: str, initial: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The JSON secret ``secret_id``; created with ``initial()`` when it does not exist yet.

        Two creators racing both end up with the value the first one stored.
        """
        existing = self.get_json(secret_id)
        if existing is not None:
            return existing
        try:
            self._secrets.create_secret(
                Name=secret_id,
                Description="Created by Client VPN Autopilot on first use; {current, previous} for rotation.",
                SecretString=json.dumps(initial()),
            )
        except ClientError as error:
            if error_code(error) != "ResourceExistsException":
                raise
        created = self._read(secret_id)
        if created is None:
            raise RuntimeError(f"secret {secret_id} could not be read back after it was created")
        return created

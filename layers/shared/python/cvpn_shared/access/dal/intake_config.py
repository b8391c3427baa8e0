"""Data access to the intake's configuration: source parameters (SSM) and secrets (Secrets Manager).

Both are read through a short-lived cache (warm invocations reuse what they read), so a change takes
at most ``cache_seconds`` to apply; ``refresh=True`` reads again at once (after a signature mismatch,
in case the secret was just rotated).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from cvpn_shared.core.aws_errors import error_code

__all__ = ["SecretsManagerSecrets", "SourceParameters"]

_MISSING = object()


class _TtlCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, *, max_age: float | None = None) -> Any:
        with self._lock:
            entry = self._values.get(key)
        if entry is None:
            return _MISSING
        age = self._clock() - entry[0]
        return entry[1] if age < (self._ttl if max_age is None else min(max_age, self._ttl)) else _MISSING

    def put(self, key: str, value: Any) -> Any:
        with self._lock:
            self._values[key] = (self._clock(), value)
        return value


class SourceParameters:
    """One JSON parameter per source under ``path``; None when the source has none (unknown source)."""

    def __init__(
        self,
        ssm_client: Any,
        path: str,
        *,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssm = ssm_client
        self._path = "/" + path.strip("/")
        self._cache = _TtlCache(cache_seconds, clock)

    def parameter_name(self, source: str) -> str:
        return f"{self._path}/{source}"

    def get(self, source: str) -> Any:
        """The parsed JSON value of the source's parameter (any JSON), None when there is none.

        A value that is not JSON is returned as the string it is (the caller's validation names it).
        """
        cached = self._cache.get(source)
        if cached is not _MISSING:
            return cached
        try:
            answer = self._ssm.get_parameter(Name=self.parameter_name(source), WithDecryption=True)
        except ClientError as error:
            if error_code(error) in ("ParameterNotFound", "ValidationException"):
                return self._cache.put(source, None)
            raise
        text = str(answer["Parameter"]["Value"])
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        return self._cache.put(source, value)


class SecretsManagerSecrets:
    """JSON secrets by name or ARN; None when the secret does not exist or holds no JSON object."""

    def __init__(
        self, secrets_client: Any, *, cache_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._secrets = secrets_client
        self._cache = _TtlCache(cache_seconds, clock)

    def get_json(self, secret_id: str, *, refresh: bool = False) -> dict[str, Any] | None:
        cached = self._cache.get(secret_id, max_age=0 if refresh else None)
        if cached is not _MISSING:
            return dict(cached) if cached is not None else None
        try:
            answer = self._secrets.get_secret_value(SecretId=secret_id)
        except ClientError as error:
            if error_code(error) in ("ResourceNotFoundException", "InvalidRequestException"):
                return self._cache.put(secret_id, None)  # missing or scheduled for deletion: fail closed
            raise
        try:
            value = json.loads(answer.get("SecretString") or "null")
        except ValueError:
            value = None
        return self._cache.put(secret_id, value if isinstance(value, dict) else None)

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
        created = self.get_json(secret_id, refresh=True)
        if created is None:
            raise RuntimeError(f"secret {secret_id} could not be read back after it was created")
        return created

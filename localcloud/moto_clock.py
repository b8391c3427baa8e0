"""moto on the emulated clock: every time moto reads, it reads from :mod:`localcloud.clock`.

moto takes "now" in one place, ``moto.core.utils.utcnow`` (``unix_time`` and ``unix_time_millis``
call it too), which its services import by name. :func:`install` replaces that function and the
reference every moto module already imported, so the time rules moto applies follow the emulated
clock: CloudWatch Logs' PutLogEvents window, SQS visibility timeouts, delays and retention, ACM
validation and certificate expiry, object lock retention in S3; so do the times it stamps (creation
dates, execution and event times, the ``Date`` header).

A few modules read the wall clock directly (``datetime.datetime.now()``, ``time.time()``): the Step
Functions interpreter (execution and state times, Wait states with a ``Timestamp``), Secrets Manager
(creation, rotation and access dates), S3 (bucket creation, access log names), CloudWatch
(dashboards). ``WALL_CLOCK_MODULES`` lists them; each gets its ``datetime`` or ``time`` replaced by a
stand-in whose "now" is the emulated clock and whose every other attribute is the real one.
tests/localcloud/test_moto_hooks.py checks that the list still covers the moto version pinned.
"""

from __future__ import annotations

import datetime as _datetime
import importlib
import sys
import threading
import time as _time
import types
from typing import Any

from localcloud.clock import get_clock

__all__ = ["WALL_CLOCK_MODULES", "emulated_utcnow", "install", "installed", "uninstall"]

_STEP_FUNCTIONS_PARSER = "moto.stepfunctions.parser"
WALL_CLOCK_MODULES = (
    f"{_STEP_FUNCTIONS_PARSER}.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record",
    f"{_STEP_FUNCTIONS_PARSER}.asl.component.state.exec.state_parallel.branches_decl",
    f"{_STEP_FUNCTIONS_PARSER}.asl.component.state.wait.wait_function.timestamp",
    f"{_STEP_FUNCTIONS_PARSER}.asl.component.state.state",
    f"{_STEP_FUNCTIONS_PARSER}.asl.eval.event.event_manager",
    f"{_STEP_FUNCTIONS_PARSER}.backend.activity",
    f"{_STEP_FUNCTIONS_PARSER}.backend.alias",
    f"{_STEP_FUNCTIONS_PARSER}.backend.execution",
    f"{_STEP_FUNCTIONS_PARSER}.backend.state_machine",
    f"{_STEP_FUNCTIONS_PARSER}.models",
    "moto.awslambda.models",
    "moto.cloudwatch.models",
    "moto.s3.models",
    "moto.secretsmanager.models",
)

_lock = threading.Lock()
_original_utcnow: Any = None
_replaced: list[tuple[types.ModuleType, str, Any]] = []


def emulated_utcnow() -> _datetime.datetime:
    """moto's ``utcnow`` on the emulated clock: a naive UTC datetime, as moto's own returns."""
    return _datetime.datetime.fromtimestamp(get_clock().timestamp(), tz=_datetime.UTC).replace(tzinfo=None)


class _DatetimeType(type):
    """Keeps ``isinstance(value, datetime.datetime)`` true for every datetime where the stand-in is used."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, _datetime.datetime)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _datetime.datetime)


class EmulatedDatetime(_datetime.datetime, metaclass=_DatetimeType):
    """``datetime.datetime`` whose ``now``, ``utcnow`` and ``today`` read the emulated clock. Every
    constructor answers plain ``datetime.datetime`` values."""

    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> _datetime.datetime:  # type: ignore[override]
        return _datetime.datetime.fromtimestamp(get_clock().timestamp(), tz)

    @classmethod
    def utcnow(cls) -> _datetime.datetime:  # type: ignore[override]
        return emulated_utcnow()

    @classmethod
    def today(cls) -> _datetime.datetime:  # type: ignore[override]
        return cls.now()

    fromtimestamp = staticmethod(_datetime.datetime.fromtimestamp)  # type: ignore[assignment]
    utcfromtimestamp = staticmethod(_datetime.datetime.utcfromtimestamp)  # type: ignore[assignment]
    fromisoformat = staticmethod(_datetime.datetime.fromisoformat)  # type: ignore[assignment]
    strptime = staticmethod(_datetime.datetime.strptime)  # type: ignore[assignment]
    combine = staticmethod(_datetime.datetime.combine)  # type: ignore[assignment]
    fromordinal = staticmethod(_datetime.datetime.fromordinal)  # type: ignore[assignment]


class _ModuleStandIn(types.ModuleType):
    """A module whose attributes are the real module's, except those given."""

    def __init__(self, real: types.ModuleType, **overrides: Any) -> None:
        super().__init__(real.__name__, real.__doc__)
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _emulated_time() -> float:
    return get_clock().timestamp()


def _emulated_time_ns() -> int:
    return int(get_clock().timestamp() * 1_000_000_000)


EMULATED_DATETIME_MODULE = _ModuleStandIn(_datetime, datetime=EmulatedDatetime)
EMULATED_TIME_MODULE = _ModuleStandIn(_time, time=_emulated_time, time_ns=_emulated_time_ns)


def _stand_in_for(value: Any) -> Any:
    """The emulated stand-in for a module attribute that reads the wall clock, or None."""
    if value is _datetime:
        return EMULATED_DATETIME_MODULE
    if value is _datetime.datetime:
        return EmulatedDatetime
    if value is _time:
        return EMULATED_TIME_MODULE
    return None


def install() -> None:
    """Put moto on the emulated clock (safe to call more than once)."""
    global _original_utcnow
    with _lock:
        if _original_utcnow is not None:
            return
        import moto.core.utils as moto_utils

        _original_utcnow = moto_utils.utcnow
        # Modules imported from now on pick the emulated one up by name.
        moto_utils.utcnow = emulated_utcnow
        for name, module in list(sys.modules.items()):
            if name.startswith("moto.") and getattr(module, "utcnow", None) is _original_utcnow:
                _replaced.append((module, "utcnow", _original_utcnow))
                module.utcnow = emulated_utcnow  # type: ignore[attr-defined]
        for name in WALL_CLOCK_MODULES:
            module = importlib.import_module(name)
            for attribute in ("datetime", "time"):
                real = getattr(module, attribute, None)
                stand_in = _stand_in_for(real)
                if stand_in is not None:
                    _replaced.append((module, attribute, real))
                    setattr(module, attribute, stand_in)


def uninstall() -> None:
    """Give moto its wall clock back."""
    global _original_utcnow
    with _lock:
        if _original_utcnow is None:
            return
        import moto.core.utils as moto_utils

        for module, attribute, real in reversed(_replaced):
            setattr(module, attribute, real)
        _replaced.clear()
        moto_utils.utcnow = _original_utcnow
        # Modules first imported while installed took the emulated function by name.
        for name, module in list(sys.modules.items()):
            if name.startswith("moto.") and getattr(module, "utcnow", None) is emulated_utcnow:
                module.utcnow = _original_utcnow  # type: ignore[attr-defined]
        _original_utcnow = None


def installed() -> bool:
    return _original_utcnow is not None

"""Structured log lines and CloudWatch metrics (EMF) as Powertools writes them, without Powertools.

For the client-connect handler only, which runs while a person waits to connect: importing
Powertools' Logger and Metrics costs a large share of its cold start. Every other function uses
``core.observability``. What comes out is what Powertools would write, so that log queries, metric
filters and alarms read both alike:

- ``JsonLogger``: one JSON object a line on stdout with ``level``, ``location``, ``message``,
  ``timestamp`` (``2026-12-07 09:00:00,123+0000``), ``service`` (``POWERTOOLS_SERVICE_NAME``), and
  under ``inject_lambda_context`` ``cold_start``, ``function_name``, ``function_memory_size``,
  ``function_arn`` and ``function_request_id``; then the record's ``extra`` keys, then
  ``xray_trace_id`` under active tracing. The level threshold is ``POWERTOOLS_LOG_LEVEL`` (else
  ``AWS_LAMBDA_LOG_LEVEL``, else INFO);
- ``EmfMetrics``: after each invocation (``log_metrics``), one embedded-metric-format line with the
  namespace ``POWERTOOLS_METRICS_NAMESPACE`` and the single dimension ``service``.

Settings are read when first used, not at import.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

__all__ = ["EmfMetrics", "JsonLogger"]

Handler = TypeVar("Handler", bound=Callable[..., Any])
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


def _service() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or "service_undefined"


class JsonLogger:
    """A logger whose lines read as Powertools Logger's (see the module docstring)."""

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._write = write
        self._context: dict[str, Any] = {}
        self._cold_start = True
        self._threshold: int | None = None

    def _level_threshold(self) -> int:
        if self._threshold is None:
            name = os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "INFO"
            self._threshold = _LEVELS.get(name.strip().upper(), 20)
        return self._threshold

    def inject_lambda_context(self, handler: Handler) -> Handler:
        """Adds the invocation's context (function, request id, cold start) to each line it logs."""

        @wraps(handler)
        def decorate(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            self._context = {
                "cold_start": self._cold_start,
                "function_name": getattr(context, "function_name", ""),
                "function_memory_size": getattr(context, "memory_limit_in_mb", 0),
                "function_arn": getattr(context, "invoked_function_arn", ""),
                "function_request_id": getattr(context, "aws_request_id", ""),
            }
            self._cold_start = False
            return handler(event, context, *args, **kwargs)

        return decorate  # type: ignore[return-value]

    def debug(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        self._log("DEBUG", message, extra)

    def info(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        self._log("INFO", message, extra)

    def warning(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        self._log("WARNING", message, extra)

    def error(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        self._log("ERROR", message, extra)

    def _log(self, level: str, message: str, extra: dict[str, Any] | None) -> None:
        if _LEVELS[level] < self._level_threshold():
            return
        caller = sys._getframe(2)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        line: dict[str, Any] = {
            "level": level,
            "location": f"{caller.f_code.co_name}:{caller.f_lineno}",
            "message": message,
            "timestamp": f"{stamp},{int(now % 1 * 1000):03d}+0000",
            "service": _service(),
            **self._context,
            **(extra or {}),
        }
        trace = os.environ.get("_X_AMZN_TRACE_ID", "")
        if trace:
            root = next((part[5:] for part in trace.split(";") if part.startswith("Root=")), "")
            if root:
                line["xray_trace_id"] = root
        text = json.dumps(line, default=str, separators=(",", ":"), ensure_ascii=False)
        if self._write is not None:
            self._write(text)
        else:
            print(text, flush=True)


class EmfMetrics:
    """Metrics written as one CloudWatch embedded-metric-format line after each invocation."""

    def __init__(self, write: Callable[[str], Any] | None = None) -> None:
        self._write = write
        self._metrics: dict[str, tuple[str, list[float]]] = {}
        self.namespace: str | None = None  # else POWERTOOLS_METRICS_NAMESPACE, read at flush

    def add_metric(self, *, name: str, unit: str, value: float) -> None:
        _, values = self._metrics.setdefault(name, (unit, []))
        values.append(float(value))

    def log_metrics(self, handler: Handler) -> Handler:
        """Writes the invocation's metrics when the handler returns or raises."""

        @wraps(handler)
        def decorate(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return handler(event, context, *args, **kwargs)
            finally:
                self.flush()

        return decorate  # type: ignore[return-value]

    def flush(self) -> None:
        """Writes the metrics added since the last flush (nothing when there are none)."""
        if not self._metrics:
            return
        namespace = self.namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "")
        if not namespace:
            self._metrics.clear()
            raise ValueError("POWERTOOLS_METRICS_NAMESPACE: not set (a metric needs a namespace)")
        service = os.environ.get("POWERTOOLS_SERVICE_NAME", "")
        dimensions = {"service": service} if service else {}
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [
                            {"Name": name, "Unit": unit} for name, (unit, _) in self._metrics.items()
                        ],
                    }
                ],
            },
            **dimensions,
            **{name: values for name, (_, values) in self._metrics.items()},
        }
        self._metrics = {}
        text = json.dumps(document, separators=(",", ":"))
        if self._write is not None:
            self._write(text)
        else:
            print(text, flush=True)

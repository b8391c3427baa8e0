"""One place that builds the Powertools Logger, Tracer and Metrics for every function.

Service name, log level and metrics namespace come from the ``POWERTOOLS_*`` variables set in the
template's Globals, so nothing here is read at import time beyond what Powertools itself reads.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["logger", "metrics", "tracer"]

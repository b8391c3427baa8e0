"""One place that builds the Powertools Logger and Metrics for every function.

Service name, log level and metrics namespace come from the ``POWERTOOLS_*`` variables set in the
template's Globals, so nothing here is read at import time beyond what Powertools itself reads.

Traces come from Lambda's active tracing (the template's ``Tracing: Active``), which records each
invocation's segments without a tracing SDK in the function: Powertools' Tracer would load the X-Ray
SDK (in maintenance mode) and patch botocore on every cold start, including the client-connect
handler's, which runs while a person waits to connect.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

__all__ = ["logger", "metrics"]

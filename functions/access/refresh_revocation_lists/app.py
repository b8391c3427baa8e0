"""Scheduled: import into every endpoint with personal client certificates its CA's newest
revocation list (a revocation Private CA published since, or the list it renewed before the imported
one expires: an endpoint whose list expired refuses every client)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cvpn_shared.access.wiring import client_certificates
from cvpn_shared.core.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = client_certificates().refresh_revocation_lists()
    imported = sum(1 for item in results if item["result"] == "imported")
    expiring = sum(1 for item in results if item["result"] == "expiring")
    # Published only when not zero: a custom metric costs by the month once it has a data point, and
    # the alarm treats a missing one as all clear.
    if imported:
        metrics.add_metric(name="RevocationListsImported", unit="Count", value=imported)
    if expiring:
        metrics.add_metric(name="RevocationListsExpiring", unit="Count", value=expiring)
    logger.info("revocation lists refreshed", extra={"endpoints": results})
    return {"endpoints": results}

"""What monitoring reads of the audit trail: the sparse index of the live endpoints' log groups.

The connection log group of a request that SUCCEEDED with connection logging on: a top-level
attribute only such items carry, the key of the sparse index MONITORED_LOG_GROUPS_INDEX (template.yaml,
RequestsTable), which therefore holds exactly the endpoints the ingest reads. Provisioning writes
it (``provisioning.dal.requests_table``); monitoring queries it (``monitoring.dal.connection_logs``).
"""

__all__ = ["MONITORED_LOG_GROUP", "MONITORED_LOG_GROUPS_INDEX"]

MONITORED_LOG_GROUP = "monitored_log_group"
MONITORED_LOG_GROUPS_INDEX = "monitored-log-groups"

"""Settings of the monitoring functions (ingest, alerting), read lazily.

The client-connect handler's own settings are read by ``client_connect_wiring``, without pydantic.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field

from cvpn_shared.core.settings import EnvironmentSettings, split_list

__all__ = ["MonitoringSettings", "get_settings"]


class MonitoringSettings(EnvironmentSettings):
    """What the template passes to the ingest and alert delivery functions."""

    findings_bus_name: str = Field(default="", description="FINDINGS_BUS_NAME")
    finding_source: str = Field(default="example.clientvpn.monitor", description="FINDING_SOURCE")
    # The product's endpoints' log groups are listed from the requests table's sparse index.
    requests_table_name: str = Field(default="", description="REQUESTS_TABLE_NAME")
    notifications_topic_arn: str = Field(default="", description="NOTIFICATIONS_TOPIC_ARN")
    checkpoints_table_name: str = Field(default="", description="CHECKPOINTS_TABLE_NAME")
    detection_state_table_name: str = Field(default="", description="DETECTION_STATE_TABLE_NAME")
    blocklist_table_name: str = Field(default="", description="BLOCKLIST_TABLE_NAME")
    findings_table_name: str = Field(default="", description="FINDINGS_TABLE_NAME")
    alerts_topic_arn: str = Field(default="", description="ALERTS_TOPIC_ARN")
    connection_log_groups: str = Field(default="", description="CONNECTION_LOG_GROUPS")
    connection_log_groups_parameter: str = Field(default="", description="CONNECTION_LOG_GROUPS_PARAMETER")
    ingest_overlap_minutes: int = Field(default=15, ge=0, le=1440, description="INGEST_OVERLAP_MINUTES")
    ingest_initial_lookback_minutes: int = Field(
        default=60, ge=1, le=20160, description="INGEST_INITIAL_LOOKBACK_MINUTES"
    )
    block_duration_hours: int = Field(default=24, ge=1, le=8760, description="BLOCK_DURATION_HOURS")
    terminate_blocked_sessions: bool = Field(default=False, description="TERMINATE_BLOCKED_SESSIONS")
    alert_webhook_secret_arn: str = Field(default="", description="ALERT_WEBHOOK_SECRET_ARN")
    alert_webhook_parameter: str = Field(default="", description="ALERT_WEBHOOK_PARAMETER")
    alert_webhook_format: Literal["slack", "teams"] = Field(
        default="slack", description="ALERT_WEBHOOK_FORMAT"
    )
    security_hub_enabled: bool = Field(default=False, description="SECURITY_HUB_ENABLED")
    detection_settings: str = Field(default="", description="DETECTION_SETTINGS")
    block_users: bool = Field(default=False, description="BLOCK_USERS")

    @property
    def configured_log_groups(self) -> list[str]:
        """CONNECTION_LOG_GROUPS: comma-separated log groups of endpoints created elsewhere."""
        return split_list(self.connection_log_groups)


@lru_cache(maxsize=1)
def get_settings() -> MonitoringSettings:
    """The settings, read on first use."""
    return MonitoringSettings.from_environment()

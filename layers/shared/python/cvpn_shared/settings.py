"""Settings of the product's functions: one model, read from the environment lazily and cached.

Nothing is read at import time: ``get_settings()`` reads the environment on first use, and tests
call ``get_settings.cache_clear()`` after changing it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings", "get_settings"]


class Settings(BaseModel):
    """What the template passes to every function as environment variables."""

    model_config = ConfigDict(frozen=True)

    requests_table_name: str = Field(default="", description="REQUESTS_TABLE_NAME")
    config_bucket_name: str = Field(default="", description="CONFIG_BUCKET_NAME")
    notifications_topic_arn: str = Field(default="", description="NOTIFICATIONS_TOPIC_ARN")
    config_url_ttl_seconds: int = Field(default=900, ge=60, le=43200, description="CONFIG_URL_TTL_SECONDS")
    endpoint_quota: int = Field(default=5, ge=1, le=1000, description="CLIENT_VPN_ENDPOINT_QUOTA")
    client_connect_function_arn: str = Field(default="", description="CLIENT_CONNECT_FUNCTION_ARN")
    # Monitoring: connection-log ingest, alerting and the client-connect handler.
    findings_bus_name: str = Field(default="", description="FINDINGS_BUS_NAME")
    finding_source: str = Field(default="example.clientvpn.monitor", description="FINDING_SOURCE")
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
    # The request form (intake part B): profiles, the client CIDR pool, its table, the sign-in issuer.
    intake_state_machine_arn: str = Field(default="", description="INTAKE_STATE_MACHINE_ARN")
    profiles_parameter_path: str = Field(default="", description="PROFILES_PARAMETER_PATH")
    request_form_table_name: str = Field(default="", description="REQUEST_FORM_TABLE_NAME")
    client_cidr_pool: str = Field(default="172.16.0.0/12", description="CLIENT_CIDR_POOL")
    client_cidr_block_prefix_length: int = Field(
        default=22, ge=12, le=22, description="CLIENT_CIDR_BLOCK_PREFIX_LENGTH"
    )
    oidc_issuer_url: str = Field(default="", description="OIDC_ISSUER_URL")
    oidc_client_id: str = Field(default="", description="OIDC_CLIENT_ID")
    oidc_scopes: str = Field(default="openid email profile", description="OIDC_SCOPES")
    # Ticket webhooks and approvals (intake part A).
    intake_sources_parameter_path: str = Field(default="", description="INTAKE_SOURCES_PARAMETER_PATH")
    webhook_deliveries_table_name: str = Field(default="", description="WEBHOOK_DELIVERIES_TABLE_NAME")
    webhook_delivery_ttl_days: int = Field(default=7, ge=1, le=365, description="WEBHOOK_DELIVERY_TTL_DAYS")
    webhook_max_body_bytes: int = Field(
        default=262144, ge=1024, le=6 * 1024 * 1024, description="WEBHOOK_MAX_BODY_BYTES"
    )
    intake_config_cache_seconds: int = Field(
        default=60, ge=0, le=3600, description="INTAKE_CONFIG_CACHE_SECONDS"
    )
    approvals_table_name: str = Field(default="", description="APPROVALS_TABLE_NAME")
    approvals_topic_arn: str = Field(default="", description="APPROVALS_TOPIC_ARN")
    approval_link_secret_name: str = Field(default="", description="APPROVAL_LINK_SECRET_NAME")
    approval_link_ttl_seconds: int = Field(
        default=86400, ge=300, le=7 * 86400, description="APPROVAL_LINK_TTL_SECONDS"
    )
    intake_api_url: str = Field(default="", description="INTAKE_API_URL")

    @classmethod
    def from_environment(cls) -> Settings:
        values = {
            name: os.environ[str(info.description)]
            for name, info in cls.model_fields.items()
            if info.description and info.description in os.environ
        }
        return cls.model_validate(values)

    @property
    def configured_log_groups(self) -> list[str]:
        """CONNECTION_LOG_GROUPS: comma-separated log groups of endpoints created elsewhere."""
        return [name.strip() for name in self.connection_log_groups.split(",") if name.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read on first use."""
    return Settings.from_environment()

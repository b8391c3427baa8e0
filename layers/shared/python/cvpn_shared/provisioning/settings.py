"""Settings of the provisioning functions (the endpoint workflows), read lazily and cached."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from cvpn_shared.core.settings import EnvironmentSettings

__all__ = ["ProvisioningSettings", "get_settings"]


class ProvisioningSettings(EnvironmentSettings):
    """What the template passes to the provisioning and decommissioning functions."""

    requests_table_name: str = Field(default="", description="REQUESTS_TABLE_NAME")
    config_bucket_name: str = Field(default="", description="CONFIG_BUCKET_NAME")
    notifications_topic_arn: str = Field(default="", description="NOTIFICATIONS_TOPIC_ARN")
    endpoint_quota: int = Field(default=5, ge=1, le=1000, description="CLIENT_VPN_ENDPOINT_QUOTA")
    client_connect_function_arn: str = Field(default="", description="CLIENT_CONNECT_FUNCTION_ARN")
    findings_bus_name: str = Field(default="", description="FINDINGS_BUS_NAME")
    drift_event_source: str = Field(default="", description="DRIFT_EVENT_SOURCE")
    revisions_table_name: str = Field(default="", description="REVISIONS_TABLE_NAME")
    update_state_machine_arn: str = Field(default="", description="UPDATE_STATE_MACHINE_ARN")
    server_certificate_expiry_days: int = Field(
        default=30, ge=1, le=365, description="SERVER_CERTIFICATE_EXPIRY_DAYS"
    )


@lru_cache(maxsize=1)
def get_settings() -> ProvisioningSettings:
    """The settings, read on first use."""
    return ProvisioningSettings.from_environment()

"""Settings of the access functions (ticket webhooks, the request form, approvals), read lazily."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from cvpn_shared.core.settings import EnvironmentSettings

__all__ = ["AccessSettings", "get_settings"]


class AccessSettings(EnvironmentSettings):
    """What the template passes to the webhook, form, API, approval and callback functions."""

    intake_state_machine_arn: str = Field(default="", description="INTAKE_STATE_MACHINE_ARN")
    requests_table_name: str = Field(default="", description="REQUESTS_TABLE_NAME")
    config_bucket_name: str = Field(default="", description="CONFIG_BUCKET_NAME")
    config_url_ttl_seconds: int = Field(default=900, ge=60, le=43200, description="CONFIG_URL_TTL_SECONDS")
    # The request form: profiles, the client CIDR pool, its table, the sign-in issuer.
    profiles_parameter_path: str = Field(default="", description="PROFILES_PARAMETER_PATH")
    request_form_table_name: str = Field(default="", description="REQUEST_FORM_TABLE_NAME")
    client_cidr_pool: str = Field(default="172.16.0.0/12", description="CLIENT_CIDR_POOL")
    client_cidr_block_prefix_length: int = Field(
        default=22, ge=12, le=22, description="CLIENT_CIDR_BLOCK_PREFIX_LENGTH"
    )
    oidc_issuer_url: str = Field(default="", description="OIDC_ISSUER_URL")
    oidc_client_id: str = Field(default="", description="OIDC_CLIENT_ID")
    oidc_scopes: str = Field(default="openid email profile", description="OIDC_SCOPES")
    # Ticket webhooks, approvals and the answer back to the ticket.
    intake_sources_parameter_path: str = Field(default="", description="INTAKE_SOURCES_PARAMETER_PATH")
    webhook_deliveries_table_name: str = Field(default="", description="WEBHOOK_DELIVERIES_TABLE_NAME")
    intake_tickets_table_name: str = Field(default="", description="INTAKE_TICKETS_TABLE_NAME")
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
    # Where a ticket that got no access is told it may ask again; where the webhook function sends a
    # signed ticket's "not a valid request" comment (the function that holds callback credentials).
    request_form_url: str = Field(default="", max_length=200, description="REQUEST_FORM_URL")
    ticket_callback_function_arn: str = Field(default="", description="TICKET_CALLBACK_FUNCTION_ARN")
    # Who may decide a request whose profile names no approver group (a ticket's has no profile).
    approver_group_claim: str = Field(default="groups", description="APPROVER_GROUP_CLAIM")
    approver_group: str = Field(default="", description="APPROVER_GROUP")
    max_pending_requests: int = Field(default=3, ge=1, le=100, description="MAX_PENDING_REQUESTS")
    # Grants: their table, and the one-time schedules that expire them.
    access_grants_table_name: str = Field(default="", description="ACCESS_GRANTS_TABLE_NAME")
    grant_schedule_group: str = Field(default="", description="GRANT_SCHEDULE_GROUP")
    expire_grant_function_arn: str = Field(default="", description="EXPIRE_GRANT_FUNCTION_ARN")
    grant_scheduler_role_arn: str = Field(default="", description="GRANT_SCHEDULER_ROLE_ARN")
    # Comments on the ticket a grant came from (active, a day before its end, ended).
    grant_comment_function_arn: str = Field(default="", description="GRANT_COMMENT_FUNCTION_ARN")
    client_connect_function_arn: str = Field(default="", description="CLIENT_CONNECT_FUNCTION_ARN")


@lru_cache(maxsize=1)
def get_settings() -> AccessSettings:
    """The settings, read on first use."""
    return AccessSettings.from_environment()

"""Builds the data-access objects from the settings, once per process (warm invocations reuse them)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cvpn_shared.dal.alert_channels import AlertTopic, ChatWebhook, SecurityHubFindings, WebhookUrl
from cvpn_shared.dal.approvals import ApprovalRecords, ApproversTopic
from cvpn_shared.dal.blocklist import DynamoDbBlocklist
from cvpn_shared.dal.checkpoints import DynamoDbCheckpoints
from cvpn_shared.dal.client_connections import ClientVpnConnections
from cvpn_shared.dal.clients import client
from cvpn_shared.dal.clientvpn import ClientVpnApi
from cvpn_shared.dal.connection_logs import ConfiguredLogGroups, ConnectionLogReader, ManagedLogGroups
from cvpn_shared.dal.deliveries import WebhookDeliveries
from cvpn_shared.dal.executions import StepFunctionsExecutions
from cvpn_shared.dal.findings_archive import FindingsArchive
from cvpn_shared.dal.findings_bus import FindingsBus
from cvpn_shared.dal.intake_config import SecretsManagerSecrets, SourceParameters
from cvpn_shared.dal.intake_workflow import TaskCallbacks
from cvpn_shared.dal.inventory import AwsInventory
from cvpn_shared.dal.logs import ConnectionLogGroups
from cvpn_shared.dal.profiles import ParameterStoreProfiles
from cvpn_shared.dal.records import Notifier, RequestRecords
from cvpn_shared.dal.request_form import (
    AccountNetworks,
    ClientCidrAllocations,
    EndedRequests,
    FormSubmissions,
)
from cvpn_shared.dal.storage import ConfigurationStore
from cvpn_shared.dal.tickets import UrllibPoster
from cvpn_shared.intake.cidr_pool import CidrPool
from cvpn_shared.intake.form import FormServices, StartedExecution
from cvpn_shared.intake.signatures import SigningSecrets
from cvpn_shared.intake.start import IntakeStarter
from cvpn_shared.intake.webhooks import WebhookIntake
from cvpn_shared.settings import get_settings

if TYPE_CHECKING:  # monitoring is imported where it is used: provisioning functions never load it
    from cvpn_shared.monitoring.alerting import AlertChannels, FindingAlert, ResponsePolicy
    from cvpn_shared.monitoring.ingest import ConnectionLogIngest
    from cvpn_shared.monitoring.record_cache import RecordCache

__all__ = [
    "alert_channels",
    "alert_topic",
    "approval_link_secret",
    "approval_records",
    "approvers_topic",
    "asff_for",
    "blocklist",
    "chat_webhook",
    "client_cidr_allocations",
    "client_cidr_pool",
    "client_vpn_connections",
    "clientvpn_api",
    "configuration_store",
    "configured_log_groups",
    "connection_log_groups",
    "connection_log_ingest",
    "connection_log_reader",
    "detection_record_cache",
    "findings_archive",
    "findings_bus",
    "form_services",
    "form_submissions",
    "ingest_checkpoints",
    "intake_secrets",
    "inventory",
    "managed_log_groups",
    "monitored_log_groups",
    "notifier",
    "request_records",
    "response_policy",
    "security_hub_findings",
    "step_functions_executions",
    "task_callbacks",
    "ticket_poster",
    "webhook_intake",
]


@lru_cache(maxsize=1)
def clientvpn_api() -> ClientVpnApi:
    return ClientVpnApi(client("ec2"))


@lru_cache(maxsize=1)
def inventory() -> AwsInventory:
    return AwsInventory(client)


@lru_cache(maxsize=1)
def configuration_store() -> ConfigurationStore:
    return ConfigurationStore(client("s3"), get_settings().config_bucket_name)


@lru_cache(maxsize=1)
def request_records() -> RequestRecords:
    return RequestRecords(client("dynamodb"), get_settings().requests_table_name)


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    return Notifier(client("sns"), get_settings().notifications_topic_arn)


@lru_cache(maxsize=1)
def connection_log_groups() -> ConnectionLogGroups:
    return ConnectionLogGroups(client("logs"))


@lru_cache(maxsize=1)
def step_functions_executions() -> StepFunctionsExecutions:
    return StepFunctionsExecutions(client("stepfunctions"))


@lru_cache(maxsize=1)
def client_cidr_allocations() -> ClientCidrAllocations:
    return ClientCidrAllocations(client("dynamodb"), get_settings().request_form_table_name)


@lru_cache(maxsize=1)
def form_submissions() -> FormSubmissions:
    return FormSubmissions(client("dynamodb"), get_settings().request_form_table_name)


def client_cidr_pool() -> CidrPool:
    """The configured pool (ValueError naming the setting when it is malformed)."""
    settings = get_settings()
    return CidrPool.parse(settings.client_cidr_pool, settings.client_cidr_block_prefix_length)


def _start_form_request(request: dict[str, Any]) -> StartedExecution:
    """Start a form request through the intake (approval required) and keep what the form needs."""
    from cvpn_shared.intake.start import start_request

    result = start_request(
        step_functions_executions().client,
        get_settings().intake_state_machine_arn,
        source="request-form",
        request=request,
        approval_required=True,
    )
    return StartedExecution(
        request_id=result.request_id,
        execution_arn=result.execution_arn,
        status_url_path=result.status_url_path,
        duplicate=result.duplicate,
    )


@lru_cache(maxsize=1)
def form_services() -> FormServices:
    return FormServices(
        profiles=ParameterStoreProfiles(client("ssm"), get_settings().profiles_parameter_path),
        allocations=client_cidr_allocations(),
        submissions=form_submissions(),
        network=AccountNetworks(inventory()),
        start=_start_form_request,
        ended_requests=EndedRequests(client("dynamodb"), get_settings().requests_table_name),
    )


# ------------------------------------------------------------------------------------ monitoring
@lru_cache(maxsize=1)
def connection_log_reader() -> ConnectionLogReader:
    return ConnectionLogReader(client("logs"))


@lru_cache(maxsize=1)
def managed_log_groups() -> ManagedLogGroups:
    return ManagedLogGroups(client("dynamodb"), get_settings().requests_table_name)


@lru_cache(maxsize=1)
def configured_log_groups() -> ConfiguredLogGroups:
    return ConfiguredLogGroups(client("ssm"), get_settings().connection_log_groups_parameter)


@lru_cache(maxsize=1)
def ingest_checkpoints() -> DynamoDbCheckpoints:
    return DynamoDbCheckpoints(client("dynamodb"), get_settings().checkpoints_table_name)


@lru_cache(maxsize=1)
def findings_bus() -> FindingsBus:
    return FindingsBus(client("events"), get_settings().findings_bus_name)


@lru_cache(maxsize=1)
def blocklist() -> DynamoDbBlocklist:
    return DynamoDbBlocklist(client("dynamodb"), get_settings().blocklist_table_name)


@lru_cache(maxsize=1)
def findings_archive() -> FindingsArchive:
    return FindingsArchive(client("dynamodb"), get_settings().findings_table_name)


@lru_cache(maxsize=1)
def alert_topic() -> AlertTopic:
    return AlertTopic(client("sns"), get_settings().alerts_topic_arn)


@lru_cache(maxsize=1)
def chat_webhook() -> ChatWebhook | None:
    settings = get_settings()
    if not (settings.alert_webhook_secret_arn or settings.alert_webhook_parameter):
        return None
    url = WebhookUrl(
        client("secretsmanager") if settings.alert_webhook_secret_arn else None,
        client("ssm") if settings.alert_webhook_parameter else None,
        secret_arn=settings.alert_webhook_secret_arn,
        parameter=settings.alert_webhook_parameter,
    )
    return ChatWebhook(url)


@lru_cache(maxsize=1)
def security_hub_findings() -> SecurityHubFindings | None:
    return SecurityHubFindings(client("securityhub")) if get_settings().security_hub_enabled else None


@lru_cache(maxsize=1)
def client_vpn_connections() -> ClientVpnConnections:
    return ClientVpnConnections(client("ec2"))


def monitored_log_groups() -> list[str]:
    """Connection log groups to read: the product's endpoints plus those configured (read each run)."""
    from cvpn_shared.monitoring.ingest import log_groups_to_read

    return log_groups_to_read(
        managed_log_groups().log_group_names(),
        configured_log_groups().log_group_names(),
        get_settings().configured_log_groups,
    )


@lru_cache(maxsize=4)
def detection_record_cache(table_name: str) -> RecordCache:
    """The entity records this process last read or wrote, kept while it stays warm (per table)."""
    from cvpn_shared.monitoring.record_cache import RecordCache

    return RecordCache()


def connection_log_ingest(*, owner: str, function_arn: str) -> ConnectionLogIngest:
    """One run's ingest: a fresh detector over the stored detection state, the bus, the checkpoints."""
    from cvpn_shared.dal.detection_state import DynamoDbDetectionState
    from cvpn_shared.monitoring.detection import DetectionSettings, Detector
    from cvpn_shared.monitoring.ingest import ConnectionLogIngest, EndpointArns, IngestSettings
    from cvpn_shared.monitoring.records import parse_events

    settings = get_settings()
    detector = Detector(
        DetectionSettings.from_json(settings.detection_settings),
        DynamoDbDetectionState(client("dynamodb"), settings.detection_state_table_name),
        cache=detection_record_cache(settings.detection_state_table_name),
    )
    return ConnectionLogIngest(
        reader=connection_log_reader(),
        checkpoints=ingest_checkpoints(),
        publisher=findings_bus(),
        detector=detector,
        parse_events=parse_events,
        source=settings.finding_source,
        arns=EndpointArns.from_function_arn(function_arn),
        owner=owner,
        settings=IngestSettings(
            overlap=timedelta(minutes=settings.ingest_overlap_minutes),
            initial_lookback=timedelta(minutes=settings.ingest_initial_lookback_minutes),
        ),
        wall_clock_ms=lambda: int(time.time() * 1000),
    )


@lru_cache(maxsize=1)
def alert_channels() -> AlertChannels:
    from cvpn_shared.monitoring.alerting import AlertChannels

    settings = get_settings()
    return AlertChannels(
        findings=findings_archive(),
        topic=alert_topic(),
        blocklist=blocklist(),
        webhook=chat_webhook(),
        webhook_format=settings.alert_webhook_format,
        security_hub=security_hub_findings(),
        sessions=client_vpn_connections(),
    )


def response_policy() -> ResponsePolicy:
    from cvpn_shared.monitoring.alerting import ResponsePolicy

    settings = get_settings()
    return ResponsePolicy(
        block_duration=timedelta(hours=settings.block_duration_hours),
        terminate_sessions=settings.terminate_blocked_sessions,
    )


def asff_for(resources: list[str], function_arn: str) -> Callable[[FindingAlert], dict[str, Any]] | None:
    """How a finding becomes an ASFF finding for Security Hub in this account (None when disabled)."""
    from cvpn_shared.monitoring.findings import Finding
    from cvpn_shared.monitoring.ingest import EndpointArns

    if not get_settings().security_hub_enabled:
        return None
    arns = EndpointArns.from_function_arn(function_arn)
    product_arn = (
        f"arn:{arns.partition}:securityhub:{arns.region}:{arns.account_id}:product/{arns.account_id}/default"
    )

    def to_asff(alert: FindingAlert) -> dict[str, Any]:
        finding = Finding.from_event_detail(alert.model_dump(mode="json"))
        return finding.to_asff(
            account_id=arns.account_id,
            region=arns.region,
            product_arn=product_arn,
            endpoint_arn=resources[0] if resources else arns.endpoint(finding.endpoint_id),
            now=datetime.now(UTC),
        )

    return to_asff


# ---------------------------------------------------------------- intake: webhooks, approvals, callbacks
@lru_cache(maxsize=1)
def intake_secrets() -> SecretsManagerSecrets:
    """Signing secrets, callback credentials and the approval link secret (short-lived cache)."""
    return SecretsManagerSecrets(
        client("secretsmanager"), cache_seconds=get_settings().intake_config_cache_seconds
    )


@lru_cache(maxsize=1)
def webhook_intake() -> WebhookIntake:
    settings = get_settings()
    return WebhookIntake(
        sources=SourceParameters(
            client("ssm"),
            settings.intake_sources_parameter_path,
            cache_seconds=settings.intake_config_cache_seconds,
        ),
        secrets=intake_secrets(),
        deliveries=WebhookDeliveries(client("dynamodb"), settings.webhook_deliveries_table_name),
        starter=IntakeStarter(client("stepfunctions"), settings.intake_state_machine_arn),
        submissions=form_submissions(),  # where GET /requests/{id} finds the request
        delivery_ttl_days=settings.webhook_delivery_ttl_days,
        max_body_bytes=settings.webhook_max_body_bytes,
    )


@lru_cache(maxsize=1)
def approval_records() -> ApprovalRecords:
    return ApprovalRecords(client("dynamodb"), get_settings().approvals_table_name)


@lru_cache(maxsize=1)
def approvers_topic() -> ApproversTopic:
    return ApproversTopic(client("sns"), get_settings().approvals_topic_arn)


@lru_cache(maxsize=1)
def task_callbacks() -> TaskCallbacks:
    return TaskCallbacks(client("stepfunctions"))


def approval_link_secret(*, create: bool = False) -> SigningSecrets | None:
    """The approval link secret ({"current", "previous"}), None when missing.

    ``create=True`` (the function that issues links) creates it with a random value on first use.
    """
    name = get_settings().approval_link_secret_name
    if create:
        value: dict[str, Any] | None = intake_secrets().get_or_create_json(
            name, lambda: {"current": secrets.token_urlsafe(48), "previous": ""}
        )
    else:
        value = intake_secrets().get_json(name)
    if not value or not isinstance(value.get("current"), str) or not value["current"]:
        return None
    previous = value.get("previous")
    return SigningSecrets(value["current"], previous if isinstance(previous, str) and previous else None)


@lru_cache(maxsize=1)
def ticket_poster() -> UrllibPoster:
    return UrllibPoster(timeout_seconds=10.0)

"""Builds the monitoring functions' data access from their settings, once per process.

Detection and alerting are imported where they are used. The client-connect handler, which runs on
every VPN login, does not come here at all: ``client_connect_wiring`` builds its lookup without
botocore, pydantic or Powertools.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cvpn_shared.core.aws_clients import client
from cvpn_shared.core.notifications import Notifier
from cvpn_shared.monitoring.dal.blocklist import DynamoDbBlocklist
from cvpn_shared.monitoring.settings import get_settings

if TYPE_CHECKING:
    from cvpn_shared.monitoring.alerting import AlertChannels, ResponsePolicy
    from cvpn_shared.monitoring.dal.alert_channels import AlertTopic, ChatWebhook, SecurityHubFindings
    from cvpn_shared.monitoring.dal.checkpoints import DynamoDbCheckpoints
    from cvpn_shared.monitoring.dal.client_connections import ClientVpnConnections
    from cvpn_shared.monitoring.dal.connection_logs import (
        ConfiguredLogGroups,
        ConnectionLogReader,
        LogGroupOwners,
        ManagedLogGroups,
    )
    from cvpn_shared.monitoring.dal.findings_archive import FindingsArchive
    from cvpn_shared.monitoring.dal.findings_bus import FindingsBus
    from cvpn_shared.monitoring.detection.record_cache import RecordCache
    from cvpn_shared.monitoring.findings import Finding
    from cvpn_shared.monitoring.ingest import ConnectionLogIngest

__all__ = [
    "alert_channels",
    "alert_topic",
    "asff_for",
    "blocklist_writer",
    "chat_webhook",
    "client_vpn_connections",
    "configured_log_groups",
    "connection_log_ingest",
    "connection_log_reader",
    "detection_record_cache",
    "findings_archive",
    "findings_bus",
    "ingest_checkpoints",
    "log_group_owners",
    "managed_log_groups",
    "monitored_log_groups",
    "notifier",
    "response_policy",
    "security_hub_findings",
]


@lru_cache(maxsize=1)
def blocklist_writer() -> DynamoDbBlocklist:
    """The blocklist as the alert function writes it (the standard client and its retries)."""
    return DynamoDbBlocklist(client("dynamodb"), get_settings().blocklist_table_name)


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    """The operations topic: handler health alerts go where provisioning notifications go."""
    return Notifier(client("sns"), get_settings().notifications_topic_arn)


# -------------------------------------------------------------------------------- ingest
@lru_cache(maxsize=1)
def connection_log_reader() -> ConnectionLogReader:
    from cvpn_shared.monitoring.dal.connection_logs import ConnectionLogReader

    return ConnectionLogReader(client("logs"))


@lru_cache(maxsize=1)
def managed_log_groups() -> ManagedLogGroups:
    from cvpn_shared.monitoring.dal.connection_logs import ManagedLogGroups

    return ManagedLogGroups(client("dynamodb"), get_settings().requests_table_name)


@lru_cache(maxsize=1)
def configured_log_groups() -> ConfiguredLogGroups:
    from cvpn_shared.monitoring.dal.connection_logs import ConfiguredLogGroups

    return ConfiguredLogGroups(client("ssm"), get_settings().connection_log_groups_parameter)


@lru_cache(maxsize=1)
def log_group_owners() -> LogGroupOwners:
    from cvpn_shared.monitoring.dal.connection_logs import LogGroupOwners

    return LogGroupOwners(client("ec2"))


@lru_cache(maxsize=1)
def ingest_checkpoints() -> DynamoDbCheckpoints:
    from cvpn_shared.monitoring.dal.checkpoints import DynamoDbCheckpoints

    return DynamoDbCheckpoints(client("dynamodb"), get_settings().checkpoints_table_name)


@lru_cache(maxsize=1)
def findings_bus() -> FindingsBus:
    from cvpn_shared.monitoring.dal.findings_bus import FindingsBus

    return FindingsBus(client("events"), get_settings().findings_bus_name)


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
    from cvpn_shared.monitoring.detection.record_cache import RecordCache

    return RecordCache()


def connection_log_ingest(*, owner: str, function_arn: str) -> ConnectionLogIngest:
    """One run's ingest: a fresh detector over the stored detection state, the bus, the checkpoints."""
    from cvpn_shared.monitoring.attempts import parse_events
    from cvpn_shared.monitoring.dal.detection_table import DynamoDbDetectionState
    from cvpn_shared.monitoring.detection.config import DetectionSettings
    from cvpn_shared.monitoring.detection.detector import Detector
    from cvpn_shared.monitoring.ingest import ConnectionLogIngest, EndpointArns, IngestSettings

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


# -------------------------------------------------------------------------------- alerting
@lru_cache(maxsize=1)
def findings_archive() -> FindingsArchive:
    from cvpn_shared.monitoring.dal.findings_archive import FindingsArchive

    return FindingsArchive(client("dynamodb"), get_settings().findings_table_name)


@lru_cache(maxsize=1)
def alert_topic() -> AlertTopic:
    from cvpn_shared.monitoring.dal.alert_channels import AlertTopic

    return AlertTopic(client("sns"), get_settings().alerts_topic_arn)


@lru_cache(maxsize=1)
def chat_webhook() -> ChatWebhook | None:
    from cvpn_shared.monitoring.dal.alert_channels import ChatWebhook, WebhookUrl

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
    from cvpn_shared.monitoring.dal.alert_channels import SecurityHubFindings

    return SecurityHubFindings(client("securityhub")) if get_settings().security_hub_enabled else None


@lru_cache(maxsize=1)
def client_vpn_connections() -> ClientVpnConnections:
    from cvpn_shared.monitoring.dal.client_connections import ClientVpnConnections

    return ClientVpnConnections(client("ec2"))


@lru_cache(maxsize=1)
def alert_channels() -> AlertChannels:
    from cvpn_shared.monitoring.alerting import AlertChannels

    settings = get_settings()
    return AlertChannels(
        findings=findings_archive(),
        topic=alert_topic(),
        blocklist=blocklist_writer(),
        webhook=chat_webhook(),
        webhook_format=settings.alert_webhook_format,
        security_hub=security_hub_findings(),
        sessions=client_vpn_connections(),
    )


@lru_cache(maxsize=1)
def response_policy() -> ResponsePolicy:
    from cvpn_shared.monitoring.alerting import ResponsePolicy
    from cvpn_shared.monitoring.detection.config import DetectionSettings

    settings = get_settings()
    detection = DetectionSettings.from_json(settings.detection_settings)
    return ResponsePolicy(
        block_duration=timedelta(hours=settings.block_duration_hours),
        terminate_sessions=settings.terminate_blocked_sessions,
        block_users=settings.block_users,
        exempt_users=frozenset(user.strip().lower() for user in detection.allowlist_users),
        exempt_networks=detection.allowlist_networks,
    )


def asff_for(resources: list[str], function_arn: str) -> Callable[[Finding], dict[str, Any]] | None:
    """How a finding becomes an ASFF finding for Security Hub in this account (None when disabled)."""
    from cvpn_shared.monitoring.ingest import EndpointArns

    if not get_settings().security_hub_enabled:
        return None
    arns = EndpointArns.from_function_arn(function_arn)
    product_arn = (
        f"arn:{arns.partition}:securityhub:{arns.region}:{arns.account_id}:product/{arns.account_id}/default"
    )

    def to_asff(finding: Finding) -> dict[str, Any]:
        return finding.to_asff(
            account_id=arns.account_id,
            region=arns.region,
            product_arn=product_arn,
            endpoint_arn=resources[0] if resources else arns.endpoint(finding.endpoint_id),
            now=datetime.now(UTC),
        )

    return to_asff

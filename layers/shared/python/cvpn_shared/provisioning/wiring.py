"""Builds the provisioning functions' data access from their settings, once per process."""

from __future__ import annotations

from functools import lru_cache

from cvpn_shared.core.aws_clients import client
from cvpn_shared.core.notifications import Notifier
from cvpn_shared.provisioning.dal.acm_certificates import AcmCertificates
from cvpn_shared.provisioning.dal.clientvpn import ClientVpnApi
from cvpn_shared.provisioning.dal.configurations import ConfigurationStore
from cvpn_shared.provisioning.dal.drift_events import DriftEvents
from cvpn_shared.provisioning.dal.inventory import AwsInventory
from cvpn_shared.provisioning.dal.log_groups import ConnectionLogGroups
from cvpn_shared.provisioning.dal.requests_table import RequestRecords
from cvpn_shared.provisioning.dal.revisions import RevisionRecords
from cvpn_shared.provisioning.dal.update_workflow import UpdateWorkflow
from cvpn_shared.provisioning.settings import get_settings

__all__ = [
    "acm_certificates",
    "clientvpn_api",
    "configuration_store",
    "connection_log_groups",
    "drift_events",
    "inventory",
    "notifier",
    "request_records",
    "revision_records",
    "update_workflow",
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
def drift_events() -> DriftEvents:
    settings = get_settings()
    return DriftEvents(client("events"), settings.findings_bus_name, settings.drift_event_source)


@lru_cache(maxsize=1)
def revision_records() -> RevisionRecords:
    return RevisionRecords(client("dynamodb"), get_settings().revisions_table_name)


@lru_cache(maxsize=1)
def acm_certificates() -> AcmCertificates:
    return AcmCertificates(client("acm"))


@lru_cache(maxsize=1)
def update_workflow() -> UpdateWorkflow:
    return UpdateWorkflow(client("stepfunctions"), get_settings().update_state_machine_arn)

"""Builds the data-access objects from the settings, once per process (warm invocations reuse them)."""

from __future__ import annotations

from functools import lru_cache

from cvpn_shared.dal.clients import client
from cvpn_shared.dal.clientvpn import ClientVpnApi
from cvpn_shared.dal.inventory import AwsInventory
from cvpn_shared.dal.logs import ConnectionLogGroups
from cvpn_shared.dal.records import Notifier, RequestRecords
from cvpn_shared.dal.storage import ConfigurationStore
from cvpn_shared.settings import get_settings

__all__ = [
    "clientvpn_api",
    "configuration_store",
    "connection_log_groups",
    "inventory",
    "notifier",
    "request_records",
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

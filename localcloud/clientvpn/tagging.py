"""EC2's generic CreateTags / DeleteTags / DescribeTags, extended to Client VPN endpoint ids.

moto validates tag targets against its own table of EC2 id prefixes, which has no
``cvpn-endpoint-``. These wrappers take the Client VPN endpoint ids out of the request, tag the
endpoints in the Client VPN backend (the same tags DescribeClientVpnEndpoints shows), and hand the
rest to moto exactly as its own TagResponse would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.models import validate_resource_ids
from moto.ec2.responses.tags import TagResponse
from moto.ec2.utils import simple_aws_filter_to_re

from localcloud.clientvpn.models import BACKEND_LOCK, ClientVpnBackend, clientvpn_backends

ENDPOINT_ID_PREFIX = "cvpn-endpoint-"
RESOURCE_TYPE = "client-vpn-endpoint"

# moto's own implementations, taken from TagResponse so repeated installs never wrap a wrapper.
_moto_describe_tags: Callable[[Any], ActionResult] = TagResponse.describe_tags


def _backend(response: Any) -> ClientVpnBackend:
    return clientvpn_backends[response.current_account][response.region]


def _split(resource_ids: list[str]) -> tuple[list[str], list[str]]:
    endpoints = [r for r in resource_ids if r.startswith(ENDPOINT_ID_PREFIX)]
    return endpoints, [r for r in resource_ids if not r.startswith(ENDPOINT_ID_PREFIX)]


def create_tags(self: Any) -> ActionResult:
    endpoint_ids, others = _split(self._get_param("Resources", []))
    tags = {tag["Key"]: tag.get("Value", "") for tag in self._get_param("Tags", [])}
    backend = _backend(self)
    endpoints = [backend.get_endpoint(endpoint_id) for endpoint_id in endpoint_ids]
    if others or not endpoint_ids:
        validate_resource_ids(others)
        self.ec2_backend.do_resources_exist(others)
    self.error_on_dryrun()
    for endpoint in endpoints:
        endpoint.tags.update(tags)
    if others:
        self.ec2_backend.create_tags(others, tags)
    return EmptyResult()


def delete_tags(self: Any) -> ActionResult:
    endpoint_ids, others = _split(self._get_param("Resources", []))
    tags = {tag["Key"]: tag.get("Value") for tag in self._get_param("Tags", [])}
    backend = _backend(self)
    endpoints = [backend.get_endpoint(endpoint_id) for endpoint_id in endpoint_ids]
    if others or not endpoint_ids:
        validate_resource_ids(others)
    self.error_on_dryrun()
    for endpoint in endpoints:
        for key, value in tags.items():
            if key in endpoint.tags and value in (None, endpoint.tags[key]):
                del endpoint.tags[key]
    if others:
        self.ec2_backend.delete_tags(others, tags)
    return EmptyResult()


def describe_tags(self: Any) -> ActionResult:
    filters = self._filters_from_querystring()
    result = _moto_describe_tags(self)
    tags = list(result.result["Tags"])  # type: ignore[index]
    for endpoint in _backend(self).endpoints.values():
        for key, value in endpoint.tags.items():
            if _matches(filters, endpoint.id, key, value):
                tags.append(
                    {"resource_id": endpoint.id, "key": key, "value": value, "resource_type": RESOURCE_TYPE}
                )
    return ActionResult({"Tags": tags})


def _matches(filters: dict[str, list[str]], resource_id: str, key: str, value: str) -> bool:
    def any_pattern(name: str, candidate: str) -> bool:
        patterns = filters.get(name)
        return not patterns or any(re.match(simple_aws_filter_to_re(p), candidate) for p in patterns)

    if filters.get("resource-type") and RESOURCE_TYPE not in filters["resource-type"]:
        return False
    return any_pattern("key", key) and any_pattern("value", value) and any_pattern("resource-id", resource_id)


def _serialized(method: Callable[[Any], ActionResult]) -> Callable[[Any], ActionResult]:
    def locked(self: Any) -> ActionResult:
        with BACKEND_LOCK:
            return method(self)

    locked.__name__ = method.__name__
    locked.__doc__ = method.__doc__
    return locked


TAG_METHODS: dict[str, Callable[[Any], ActionResult]] = {
    "create_tags": _serialized(create_tags),
    "delete_tags": _serialized(delete_tags),
    "describe_tags": _serialized(describe_tags),
}

"""Chosen ids for the resources a network is built from: a ``_custom_id_`` tag on the create call.

moto honours a ``_custom_id_`` tag for a few services; the local cloud extends the same convention to
what a Client VPN endpoint is placed in, so a network can be built with the ids written in example
documents (``events/``) and those documents provision as written:

- EC2 ``CreateVpc``, ``CreateSubnet`` and ``CreateSecurityGroup`` (``TagSpecifications``): the id,
  e.g. ``vpc-0a1b2c3d4e5f60718``;
- Directory Service ``CreateMicrosoftAD`` (``Tags``): the directory id, e.g. ``d-0613d679c7``;
- ACM ``ImportCertificate`` (``Tags``): the certificate id, the ARN's last part after
  ``certificate/``.

The tag stays on the resource, as moto leaves it. An id already taken is refused with the error AWS
gives a duplicate (``InvalidVpcID.Duplicate`` ...), never silently replaced by a random one.
Each id generator moto calls by name is wrapped once (:func:`install`); the chosen id travels from the
create call to the generator through a thread-local, so concurrent calls on other threads keep their
random ids.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CUSTOM_ID_TAG", "custom_id_in", "install", "installed"]

CUSTOM_ID_TAG = "_custom_id_"

_pending = threading.local()
_lock = threading.Lock()
_installed = False

# the form a chosen id of each kind must have
_PATTERNS = {
    "vpc": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "security-group": re.compile(r"^sg-[0-9a-f]{8,17}$"),
    "directory": re.compile(r"^d-[0-9a-f]{10}$"),
    "certificate": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
}


class CustomIdError(Exception):
    """A ``_custom_id_`` tag that cannot be honoured (malformed, or the id exists already)."""


def custom_id_in(tags: Any) -> str | None:
    """The ``_custom_id_`` value anywhere in ``tags`` as moto passes them: ``{key: value}``,
    ``[{"Key": .., "Value": ..}]``, or those nested by resource type."""
    if isinstance(tags, dict):
        if tags.get("Key") == CUSTOM_ID_TAG:
            value = tags.get("Value")
            return str(value) if value else None
        if CUSTOM_ID_TAG in tags and not isinstance(tags[CUSTOM_ID_TAG], dict | list):
            return str(tags[CUSTOM_ID_TAG])
        values: Any = tags.values()
    elif isinstance(tags, list | tuple):
        values = tags
    else:
        return None
    for value in values:
        found = custom_id_in(value)
        if found:
            return found
    return None


@contextmanager
def _chosen(kind: str, tags: Any) -> Iterator[None]:
    chosen = custom_id_in(tags)
    if chosen is not None and not _PATTERNS[kind].match(chosen):
        raise _invalid_parameter(kind, f"{CUSTOM_ID_TAG}: {chosen!r} is not a {kind} id")
    previous = getattr(_pending, kind, None)
    setattr(_pending, kind, chosen)
    try:
        yield
    finally:
        setattr(_pending, kind, previous)


def _take(kind: str) -> str | None:
    chosen: str | None = getattr(_pending, kind, None)
    setattr(_pending, kind, None)  # only the resource the call creates, not what it creates besides
    return chosen


def _invalid_parameter(kind: str, message: str) -> Exception:
    if kind == "directory":
        from moto.ds.exceptions import InvalidParameterException

        return InvalidParameterException(message)
    if kind == "certificate":
        from moto.acm.exceptions import AWSValidationException

        return AWSValidationException(message)
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError("InvalidParameterValue", message)


def _wrap_generator(module_name: str, attribute: str, kind: str, make: Callable[[str, Any], str]) -> None:
    module = importlib.import_module(module_name)
    original = getattr(module, attribute)

    def generator(*args: Any, **kwargs: Any) -> Any:
        chosen = _take(kind)
        return make(chosen, (args, kwargs)) if chosen is not None else original(*args, **kwargs)

    setattr(module, attribute, generator)


def _wrap_create(cls: Any, method: str, kind: str, exists: Callable[[Any, str], bool]) -> None:
    original = getattr(cls, method)

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        tags = kwargs.get("tags")
        chosen = custom_id_in(tags)
        if chosen is not None and exists(self, chosen):
            raise _duplicate(kind, chosen)
        with _chosen(kind, tags):
            return original(self, *args, **kwargs)

    setattr(cls, method, create)


def _duplicate(kind: str, chosen: str) -> Exception:
    message = f"The {kind} id '{chosen}' already exists."
    codes = {
        "vpc": "InvalidVpcID.Duplicate",
        "subnet": "InvalidSubnet.Conflict",
        "security-group": "InvalidGroup.Duplicate",
    }
    if kind in codes:
        from moto.ec2.exceptions import EC2ClientError

        return EC2ClientError(codes[kind], message)
    if kind == "directory":
        from moto.ds.exceptions import EntityAlreadyExistsException

        return EntityAlreadyExistsException(message)
    return _invalid_parameter(kind, message)


class _PendingHex:
    """Directory Service's random source: a chosen directory id once, else moto's own."""

    def __init__(self, original: Any) -> None:
        self._original = original

    def get_random_hex(self, length: int = 8) -> str:
        chosen = _take("directory")
        return chosen[len("d-") :] if chosen is not None else str(self._original.get_random_hex(length))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def install() -> None:
    """Honour ``_custom_id_`` tags from now on (idempotent; the process keeps it)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.acm.models import AWSCertificateManagerBackend
        from moto.ds import models as ds_models
        from moto.ds.models import DirectoryServiceBackend
        from moto.ec2.models.security_groups import SecurityGroupBackend
        from moto.ec2.models.subnets import SubnetBackend
        from moto.ec2.models.vpcs import VPCBackend

        _wrap_generator("moto.ec2.models.vpcs", "random_vpc_id", "vpc", lambda chosen, _: chosen)
        _wrap_generator("moto.ec2.models.subnets", "random_subnet_id", "subnet", lambda chosen, _: chosen)
        _wrap_generator(
            "moto.ec2.models.security_groups",
            "random_security_group_id",
            "security-group",
            lambda chosen, _: chosen,
        )

        def certificate_arn(chosen: str, call: Any) -> str:
            (account_id, region), _kwargs = call
            return f"arn:aws:acm:{region}:{account_id}:certificate/{chosen}"

        _wrap_generator("moto.acm.models", "make_arn_for_certificate", "certificate", certificate_arn)
        ds_models.mock_random = _PendingHex(ds_models.mock_random)  # type: ignore[assignment]

        _wrap_create(VPCBackend, "create_vpc", "vpc", lambda backend, vpc_id: vpc_id in backend.vpcs)
        _wrap_create(
            SubnetBackend,
            "create_subnet",
            "subnet",
            lambda backend, subnet_id: any(subnet_id in zone for zone in backend.subnets.values()),
        )
        _wrap_create(
            SecurityGroupBackend,
            "create_security_group",
            "security-group",
            lambda backend, group_id: any(group_id in groups for groups in backend.groups.values()),
        )
        _wrap_create(
            DirectoryServiceBackend,
            "create_microsoft_ad",
            "directory",
            lambda backend, directory_id: directory_id in backend.directories,
        )
        _wrap_create(
            AWSCertificateManagerBackend,
            "import_certificate",
            "certificate",
            lambda backend, certificate_id: any(
                arn.endswith(f":certificate/{certificate_id}") for arn in backend._certificates
            ),
        )
        _installed = True


def installed() -> bool:
    return _installed

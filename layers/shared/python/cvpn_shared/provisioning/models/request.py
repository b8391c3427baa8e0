"""The provisioning request: what someone asks for, validated field by field.

A request is versioned (``schema_version``). Everything the Client VPN API would reject for its shape
alone is rejected here, with the field's path and the reason; rules that need AWS (overlap with the
VPC, subnets in distinct AZs, references that exist) are the pre-flight validation's job
(``cvpn_shared.provisioning.preflight``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

__all__ = [
    "ActiveDirectoryAuthentication",
    "Authentication",
    "AuthorizationRule",
    "ConnectionLog",
    "MutualTlsAuthentication",
    "ProvisionRequest",
    "Route",
    "SamlAuthentication",
]

SCHEMA_VERSION: Literal["1"] = "1"

RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")]
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")]
DirectoryId = Annotated[str, StringConstraints(pattern=r"^d-[0-9a-f]{10}$")]
AcmCertificateArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
]
SamlProviderArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:saml-provider/[A-Za-z0-9_+=,.@-]+$")
]
LogGroupName = Annotated[
    str, StringConstraints(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_\-./#]+$")
]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_ .:/=+\-@]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9_ .:/=+\-@]*$")]

# An Active Directory group's security identifier, as Client VPN authorization rules take it.
GROUP_SID = re.compile(r"^S-1-5-21-\d{1,10}-\d{1,10}-\d{1,10}-\d{1,10}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _ipv4_network(value: Any) -> ipaddress.IPv4Network:
    if isinstance(value, ipaddress.IPv4Network):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 CIDR string such as 10.0.0.0/16")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a valid IPv4 CIDR ({error})") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{value!r} is IPv6; Client VPN takes IPv4 CIDRs here")
    return network


class ActiveDirectoryAuthentication(_Model):
    """Users sign in with their Active Directory credentials (AWS Directory Service)."""

    type: Literal["active-directory"]
    directory_id: DirectoryId


class MutualTlsAuthentication(_Model):
    """Clients present a certificate issued by this root chain (imported into ACM)."""

    type: Literal["mutual-tls"]
    client_root_certificate_chain_arn: AcmCertificateArn


class SamlAuthentication(_Model):
    """Users sign in through a SAML 2.0 identity provider (IAM SAML provider)."""

    type: Literal["saml"]
    saml_provider_arn: SamlProviderArn
    self_service_saml_provider_arn: SamlProviderArn | None = None


Authentication = Annotated[
    ActiveDirectoryAuthentication | MutualTlsAuthentication | SamlAuthentication,
    Field(discriminator="type"),
]


class AuthorizationRule(_Model):
    """Who may reach a network: an AD group SID or SAML group, or every authenticated user."""

    target_network_cidr: ipaddress.IPv4Network
    access_group_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    authorize_all_groups: bool = False
    description: Annotated[str, StringConstraints(max_length=255)] = ""

    _cidr = field_validator("target_network_cidr", mode="before")(_ipv4_network)

    @model_validator(mode="after")
    def _one_grantee(self) -> AuthorizationRule:
        if self.authorize_all_groups and self.access_group_id:
            raise ValueError("give either access_group_id or authorize_all_groups: true, not both")
        if not self.authorize_all_groups and not self.access_group_id:
            raise ValueError(
                "give access_group_id (an AD group SID or SAML group) or authorize_all_groups: true"
            )
        return self


class Route(_Model):
    """A destination reached through every associated subnet."""

    destination_cidr: ipaddress.IPv4Network
    description: Annotated[str, StringConstraints(max_length=255)] = ""

    _cidr = field_validator("destination_cidr", mode="before")(_ipv4_network)


class ConnectionLog(_Model):
    """Where connection attempts are logged; the group is created with this retention if missing."""

    enabled: bool = True
    log_group_name: LogGroupName | None = None
    log_stream_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^:*]+$")] | None
    ) = None
    retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 90

    @model_validator(mode="after")
    def _group_when_enabled(self) -> ConnectionLog:
        if self.enabled and not self.log_group_name:
            raise ValueError("log_group_name is required when connection logging is enabled")
        return self


class ProvisionRequest(_Model):
    """A request for a Client VPN endpoint (schema version 1)."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    request_id: RequestId = Field(description="the ticket key, e.g. NET-1234")
    requester: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_ .:/=+\-@]+$")]
    description: Annotated[str, StringConstraints(max_length=255)] = ""

    vpc_id: VpcId
    subnet_ids: Annotated[list[SubnetId], Field(min_length=1, max_length=5)]
    client_cidr_block: ipaddress.IPv4Network
    server_certificate_arn: AcmCertificateArn
    authentication: Annotated[list[Authentication], Field(min_length=1, max_length=2)]
    authorization_rules: Annotated[list[AuthorizationRule], Field(min_length=1, max_length=200)]
    routes: Annotated[list[Route], Field(max_length=100)] = []
    security_group_ids: Annotated[list[SecurityGroupId], Field(max_length=5)] = []
    dns_servers: Annotated[list[ipaddress.IPv4Address], Field(max_length=2)] = []
    transport_protocol: Literal["udp", "tcp"] = "udp"
    vpn_port: Literal[443, 1194] = 443
    split_tunnel: bool = False
    session_timeout_hours: Literal[8, 10, 12, 24] = 24
    login_banner: Annotated[str, StringConstraints(max_length=1400)] | None = None
    self_service_portal: bool = False
    connection_log: ConnectionLog
    client_connect_handler: bool = False
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=40)] = {}

    _client_cidr = field_validator("client_cidr_block", mode="before")(_ipv4_network)

    @field_validator("client_cidr_block")
    @classmethod
    def _client_cidr_size(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if not 12 <= value.prefixlen <= 22:
            raise ValueError(f"must be between /12 and /22 inclusive, got /{value.prefixlen}")
        return value

    @field_validator("subnet_ids", "security_group_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        duplicates = sorted({item for item in value if value.count(item) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(key for key in value if key.lower().startswith("aws:"))
        if reserved:
            raise ValueError(f"tag keys starting with aws: are reserved by AWS: {', '.join(reserved)}")
        return value

    @field_validator("authentication")
    @classmethod
    def _authentication_combination(cls, value: list[Any]) -> list[Any]:
        types = [item.type for item in value]
        if len(types) == 2 and ("mutual-tls" not in types or types[0] == types[1]):
            raise ValueError(
                "two methods must be mutual-tls plus one user-based method (active-directory or saml), "
                f"got {' + '.join(types)}"
            )
        return value

    @model_validator(mode="after")
    def _rules_match_authentication(self) -> ProvisionRequest:
        types = {item.type for item in self.authentication}
        for index, rule in enumerate(self.authorization_rules):
            if rule.access_group_id is None:
                continue
            if types == {"mutual-tls"}:
                raise ValueError(
                    f"authorization_rules[{index}].access_group_id: mutual TLS alone has no groups; "
                    "use authorize_all_groups: true"
                )
            if "active-directory" in types and not GROUP_SID.match(rule.access_group_id):
                raise ValueError(
                    f"authorization_rules[{index}].access_group_id: {rule.access_group_id!r} is not an "
                    "Active Directory group SID (S-1-5-21-<domain>-<domain>-<domain>-<rid>)"
                )
        if self.self_service_portal and "saml" not in types:
            raise ValueError("self_service_portal: only meaningful with SAML authentication")
        return self

    @property
    def uses_user_authentication(self) -> bool:
        return any(item.type in ("active-directory", "saml") for item in self.authentication)

    def client_token(self, step: str, *parts: str) -> str:
        """A ClientToken for one API call of this request: the same request retries the same call."""
        digest = hashlib.sha256("|".join((self.request_id, step, *parts)).encode()).hexdigest()
        return f"{step[:16]}-{digest[:40]}"

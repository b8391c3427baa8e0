"""The provisioning request: what someone asks for, validated field by field.

A request is versioned (``schema_version``). Version 1 describes a new IPv4 endpoint. Version 2
is also the desired state of an endpoint the product manages (``endpoint_id`` names it) and adds
the newest endpoint options: client route enforcement, disconnect on session timeout, IPv6 and
dual-stack (``endpoint_ip_address_type``, ``traffic_ip_address_type``), a client certificate
revocation list and the authorization policy context in connection logs. Everything the Client VPN
API would reject for its shape alone is rejected here, with the field's path and the reason; rules
that need AWS (overlap with the VPC, subnets in distinct AZs, references that exist) are the
pre-flight validation's job (``cvpn_shared.provisioning.preflight``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "ActiveDirectoryAuthentication",
    "Authentication",
    "AuthorizationRule",
    "ConnectionLog",
    "IpAddressType",
    "MutualTlsAuthentication",
    "ProvisionRequest",
    "Route",
    "SamlAuthentication",
    "ServerCertificateRotation",
]

SCHEMA_VERSION: Literal["1"] = "1"
SchemaVersion = Literal["1", "2"]
IpAddressType = Literal["ipv4", "ipv6", "dual-stack"]

# What a version-1 document means for each field only version 2 knows: a version-1 document may
# carry these values (a stored version-1 document dumps them) but no other.
V2_FIELD_DEFAULTS: dict[str, Any] = {
    "endpoint_id": None,
    "client_route_enforcement": False,
    "disconnect_on_session_timeout": True,
    "endpoint_ip_address_type": "ipv4",
    "traffic_ip_address_type": "ipv4",
    "certificate_revocation_list": None,
    "server_certificate_rotation": None,
}
V2_CONNECTION_LOG_DEFAULTS: dict[str, Any] = {"include_authorization_policy_context": False}

# The request travels through Step Functions state, whose payload is at most 256 KiB: a larger
# revocation list must be imported by hand (aws ec2 import-client-vpn-client-certificate-revocation-list).
CRL_MAX_CHARACTERS = 200_000
_CRL_PEM = re.compile(
    r"^-----BEGIN X509 CRL-----\s*\n(?P<body>[A-Za-z0-9+/=\s]+?)\n?-----END X509 CRL-----\s*$"
)

RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")]
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")]
ClientVpnEndpointId = Annotated[str, StringConstraints(pattern=r"^cvpn-endpoint-[0-9a-f]{17}$")]
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


_MISSING = "Field required"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _fail(errors: list[tuple[tuple[str | int, ...], str, Any]]) -> None:
    """Raise every (field path, reason, input) at once, each at its own path."""
    if errors:
        raise ValidationError.from_exception_data(
            "ProvisionRequest",
            [
                {"type": "missing", "loc": loc, "input": value}
                if message == _MISSING
                else {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": message}}
                for loc, message, value in errors
            ],
        )


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR of either family; which family a document may use is the request's rule."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a CIDR string such as 10.0.0.0/16 (or 2001:db8::/56 for IPv6 traffic)")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a valid CIDR ({error})") from None


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


def _ip_address(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("Input is not a valid IPv4 address") from None
    return value


# Either family parses; which family a document may use is the request's rule.
DnsServer = Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address, BeforeValidator(_ip_address)]


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

    target_network_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    access_group_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    authorize_all_groups: bool = False
    description: Annotated[str, StringConstraints(max_length=255)] = ""

    _cidr = field_validator("target_network_cidr", mode="before")(_network)

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

    destination_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    description: Annotated[str, StringConstraints(max_length=255)] = ""

    _cidr = field_validator("destination_cidr", mode="before")(_network)


class ConnectionLog(_Model):
    """Where connection attempts are logged; the group is created with this retention if missing."""

    enabled: bool = True
    log_group_name: LogGroupName | None = None
    log_stream_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^:*]+$")] | None
    ) = None
    retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 90
    include_authorization_policy_context: bool = Field(
        default=False, description="log how the authorization policy decided (schema version 2)"
    )

    @model_validator(mode="after")
    def _group_when_enabled(self) -> ConnectionLog:
        if self.enabled and not self.log_group_name:
            raise ValueError("log_group_name is required when connection logging is enabled")
        return self


class ServerCertificateRotation(_Model):
    """What the daily server certificate check may do when the certificate nears its expiry.

    The check always alarms. With ``automatic`` it also applies the renewed certificate it finds in
    ACM (``cvpn_shared.provisioning.server_certificates`` states the rule) with the update workflow;
    one that chains to another certificate authority only with ``allow_new_certificate_authority``,
    because every user then needs a new client configuration.
    """

    automatic: bool = Field(default=False, description="apply the renewed certificate without a person")
    allow_new_certificate_authority: bool = Field(
        default=False,
        description="also when the renewed certificate chains to another CA (users then download a "
        "new configuration)",
    )


class ProvisionRequest(_Model):
    """A request for a Client VPN endpoint, and (version 2) the desired state of a managed one."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    request_id: RequestId = Field(description="the ticket key, e.g. NET-1234")
    requester: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_ .:/=+\-@]+$")]
    description: Annotated[str, StringConstraints(max_length=255)] = ""
    endpoint_id: ClientVpnEndpointId | None = Field(
        default=None, description="the managed endpoint this document is the desired state of (version 2)"
    )

    vpc_id: VpcId
    subnet_ids: Annotated[list[SubnetId], Field(min_length=1, max_length=5)]
    client_cidr_block: ipaddress.IPv4Network | None = Field(
        default=None,
        description="required unless traffic_ip_address_type is ipv6 (AWS then assigns IPv6 addresses)",
    )
    server_certificate_arn: AcmCertificateArn
    authentication: Annotated[list[Authentication], Field(min_length=1, max_length=2)]
    authorization_rules: Annotated[list[AuthorizationRule], Field(min_length=1, max_length=200)]
    routes: Annotated[list[Route], Field(max_length=100)] = []
    security_group_ids: Annotated[list[SecurityGroupId], Field(max_length=5)] = []
    dns_servers: Annotated[list[DnsServer], Field(max_length=2)] = []
    transport_protocol: Literal["udp", "tcp"] = "udp"
    vpn_port: Literal[443, 1194] = 443
    split_tunnel: bool = False
    session_timeout_hours: Literal[8, 10, 12, 24] = 24
    disconnect_on_session_timeout: bool = Field(
        default=True, description="end the session at the timeout instead of reconnecting (version 2)"
    )
    client_route_enforcement: bool = Field(
        default=False, description="ClientRouteEnforcementOptions.Enforced (version 2)"
    )
    endpoint_ip_address_type: IpAddressType = Field(
        default="ipv4", description="how clients reach the endpoint (version 2; fixed at creation)"
    )
    traffic_ip_address_type: IpAddressType = Field(
        default="ipv4", description="which families travel in the tunnel (version 2; fixed at creation)"
    )
    certificate_revocation_list: (
        Annotated[str, StringConstraints(min_length=1, max_length=CRL_MAX_CHARACTERS)] | None
    ) = Field(default=None, description="PEM client certificate revocation list to import (version 2)")
    server_certificate_rotation: ServerCertificateRotation | None = Field(
        default=None,
        description="whether the daily check may rotate the server certificate (version 2; absent: "
        "alarm only)",
    )
    login_banner: Annotated[str, StringConstraints(max_length=1400)] | None = None
    self_service_portal: bool = False
    connection_log: ConnectionLog
    client_connect_handler: bool = False
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=40)] = {}

    _client_cidr = field_validator("client_cidr_block", mode="before")(
        lambda value: None if value is None else _ipv4_network(value)
    )

    @field_validator("client_cidr_block")
    @classmethod
    def _client_cidr_size(cls, value: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
        if value is not None and not 12 <= value.prefixlen <= 22:
            raise ValueError(f"must be between /12 and /22 inclusive, got /{value.prefixlen}")
        return value

    @field_validator("certificate_revocation_list")
    @classmethod
    def _crl_pem(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.replace("\r\n", "\n")
        match = _CRL_PEM.match(value)
        if not match:
            raise ValueError(
                "must be one PEM certificate revocation list: -----BEGIN X509 CRL-----, base64, "
                "-----END X509 CRL-----"
            )
        try:
            der = base64.b64decode("".join(match.group("body").split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the PEM body is not valid base64") from None
        if not der or der[0] != 0x30:
            raise ValueError("the PEM body is not a DER-encoded CRL (it must start with a SEQUENCE)")
        return value + "\n"  # PEM ends with a line break (the model strips surrounding whitespace)

    @model_validator(mode="before")
    @classmethod
    def _version_two_fields(cls, data: Any) -> Any:
        """A version-1 document keeps its meaning: fields only version 2 knows are refused there."""
        if not isinstance(data, dict) or data.get("schema_version", SCHEMA_VERSION) != "1":
            return data
        errors: list[tuple[tuple[str | int, ...], str, Any]] = []
        for key, default in V2_FIELD_DEFAULTS.items():
            if key in data and data[key] != default:
                errors.append(
                    ((key,), 'only in schema_version "2" documents; set schema_version to "2"', data[key])
                )
        log = data.get("connection_log")
        if isinstance(log, dict):
            for key, default in V2_CONNECTION_LOG_DEFAULTS.items():
                if key in log and log[key] != default:
                    errors.append(
                        (
                            ("connection_log", key),
                            'only in schema_version "2" documents; set schema_version to "2"',
                            log[key],
                        )
                    )
        _fail(errors)
        return data

    @model_validator(mode="after")
    def _address_families(self) -> ProvisionRequest:
        """The client CIDR and each CIDR's family follow the traffic IP address type (AWS's rules)."""
        errors: list[tuple[tuple[str | int, ...], str, Any]] = []
        traffic = self.traffic_ip_address_type
        allowed = {"ipv4": {4}, "ipv6": {6}, "dual-stack": {4, 6}}[traffic]
        if self.client_cidr_block is None and 4 in allowed:
            if self.schema_version == "1":
                errors.append((("client_cidr_block",), _MISSING, None))
            else:
                errors.append(
                    (
                        ("client_cidr_block",),
                        f"required when traffic_ip_address_type is {traffic}: clients take their IPv4 "
                        "addresses from it (between /12 and /22)",
                        None,
                    )
                )
        if self.client_cidr_block is not None and 4 not in allowed:
            errors.append(
                (
                    ("client_cidr_block",),
                    "must be left out when traffic_ip_address_type is ipv6: AWS assigns clients IPv6 "
                    "addresses from the associated subnets",
                    str(self.client_cidr_block),
                )
            )

        def check(loc: tuple[str | int, ...], network: Any) -> None:
            if network.version in allowed:
                return
            if self.schema_version == "1":
                errors.append(
                    (loc, f"{str(network)!r} is IPv6; Client VPN takes IPv4 CIDRs here", str(network))
                )
            elif network.version == 6:
                errors.append(
                    (
                        loc,
                        f"{network} is IPv6 but traffic_ip_address_type is ipv4; "
                        "IPv6 needs traffic_ip_address_type ipv6 or dual-stack",
                        str(network),
                    )
                )
            else:
                errors.append(
                    (
                        loc,
                        f"{network} is IPv4 but traffic_ip_address_type is ipv6; "
                        "IPv4 needs traffic_ip_address_type ipv4 or dual-stack",
                        str(network),
                    )
                )

        for index, rule in enumerate(self.authorization_rules):
            check(("authorization_rules", index, "target_network_cidr"), rule.target_network_cidr)
        for index, route in enumerate(self.routes):
            check(("routes", index, "destination_cidr"), route.destination_cidr)
        for index, server in enumerate(self.dns_servers):
            if server.version not in allowed:
                reason = (
                    "Input is not a valid IPv4 address"
                    if self.schema_version == "1"
                    else f"{server} is IPv{server.version} but traffic_ip_address_type is {traffic}"
                )
                errors.append((("dns_servers", index), reason, str(server)))
        if self.certificate_revocation_list is not None and not any(
            item.type == "mutual-tls" for item in self.authentication
        ):
            errors.append(
                (
                    ("certificate_revocation_list",),
                    "revokes client certificates, so it needs mutual-tls authentication",
                    "...",
                )
            )
        _fail(errors)
        return self

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
    def carries_ipv4(self) -> bool:
        return self.traffic_ip_address_type in ("ipv4", "dual-stack")

    @property
    def carries_ipv6(self) -> bool:
        return self.traffic_ip_address_type in ("ipv6", "dual-stack")

    @property
    def uses_user_authentication(self) -> bool:
        return any(item.type in ("active-directory", "saml") for item in self.authentication)

    def client_token(self, step: str, *parts: str) -> str:
        """A ClientToken for one API call of this request: the same request retries the same call."""
        digest = hashlib.sha256("|".join((self.request_id, step, *parts)).encode()).hexdigest()
        return f"{step[:16]}-{digest[:40]}"

"""Network profiles: what administrators prepare so that a person only picks a profile and access groups.

A profile is one JSON document in SSM Parameter Store under the stack's profiles path
(``/<stack>/profiles/<name>``). It names the VPC, the subnets (one per Availability Zone), the server
certificate, the authentication, DNS, the connection log group, the default routes, and the access
groups a person may ask for. Nobody types a subnet id in the request form: the form names a profile,
and the request is built from it (``cvpn_shared.access.form``).

A profile that names the shared endpoint serving it (``endpoint_request_id``: the request that
provisioned that endpoint) gives people *grants* on that endpoint (``access: grants``, the default
for such a profile): time-bound, at most ``max_grant_hours`` long, ``default_grant_hours`` unless
asked otherwise (``cvpn_shared.access.grants``). A profile without one keeps the way requests worked
before grants (``access: legacy``: each request builds an endpoint of its own).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from cvpn_shared.core.field_errors import describe_field_errors, field_errors
from cvpn_shared.provisioning.models.request import (
    GROUP_SID,
    AcmCertificateArn,
    Authentication,
    ConnectionLog,
    RequestId,
    Route,
    SecurityGroupId,
    SubnetId,
    VpcId,
)

__all__ = [
    "LONGEST_GRANT_HOURS",
    "PROFILE_NAME",
    "AccessGroup",
    "NetworkProfile",
    "ProfileCatalog",
    "ProfileInvalid",
    "named_field_errors",
    "parse_profile",
]

_FIELD_IN_MESSAGE = re.compile(
    r"^(?P<field>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (?P<message>.+)$", re.S
)
PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ProfileName = Annotated[str, StringConstraints(pattern=PROFILE_NAME.pattern)]
# The longest grant any profile may allow (a year); an access review should come round before that.
LONGEST_GRANT_HOURS = 8760
# A claim name in an OpenID Connect token ("groups", "cognito:groups", "https://example.com/roles").
_CLAIM_NAME = r"^[A-Za-z0-9_:./-]{1,128}$"


class ProfileInvalid(Exception):
    """An administrator's profile document does not match the profile model (names each field)."""

    def __init__(self, name: str, errors: list[dict[str, Any]]) -> None:
        self.name = name
        self.errors = errors
        super().__init__(f"network profile {name!r} is invalid: {describe_field_errors(errors)}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AccessGroup(_Model):
    """A group a person may ask to join: the directory or SAML group, and the network it reaches."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="the Active Directory group SID or SAML group the authorization rule names"
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)] = Field(
        description="what people see in the form"
    )
    description: Annotated[str, StringConstraints(max_length=255)] = ""
    target_network_cidr: ipaddress.IPv4Network = Field(
        default=ipaddress.IPv4Network("0.0.0.0/0"), description="the network the group reaches"
    )


class NetworkProfile(_Model):
    """Everything a Client VPN endpoint needs that a person should not have to know."""

    name: ProfileName
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    vpc_id: VpcId
    subnet_ids: Annotated[list[SubnetId], Field(min_length=1, max_length=5)]
    server_certificate_arn: AcmCertificateArn
    authentication: Annotated[list[Authentication], Field(min_length=1, max_length=2)]
    dns_servers: Annotated[list[ipaddress.IPv4Address], Field(max_length=2)] = []
    connection_log: ConnectionLog
    routes: Annotated[list[Route], Field(max_length=100)] = []
    security_group_ids: Annotated[list[SecurityGroupId], Field(max_length=5)] = []
    access_groups: Annotated[list[AccessGroup], Field(min_length=1, max_length=50)]
    transport_protocol: Literal["udp", "tcp"] = "udp"
    vpn_port: Literal[443, 1194] = 443
    split_tunnel: bool = False
    session_timeout_hours: Literal[8, 10, 12, 24] = 12
    login_banner: Annotated[str, StringConstraints(max_length=1400)] | None = None
    tags: dict[str, str] = {}
    # Grants on a shared endpoint (see the module's docstring).
    endpoint_request_id: RequestId | None = Field(
        default=None, description="the request id that provisioned the shared endpoint serving this profile"
    )
    access: Literal["grants", "legacy"] | None = Field(
        default=None, description="grants (the default with endpoint_request_id) or legacy"
    )
    max_grant_hours: Annotated[float, Field(gt=0, le=LONGEST_GRANT_HOURS)] = 168
    default_grant_hours: Annotated[float, Field(gt=0, le=LONGEST_GRANT_HOURS)] = 8
    approver_group_claim: Annotated[str, StringConstraints(pattern=_CLAIM_NAME)] = "groups"
    approver_group: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None, description="the value of approver_group_claim an approver's token must carry"
    )
    vpn_user_claim: Annotated[str, StringConstraints(pattern=_CLAIM_NAME)] | None = Field(
        default=None,
        description="the sign-in token's claim holding the user name the VPN sees (default: "
        "preferred_username, username or cognito:username, the first present)",
    )
    client_certificate_authority_arn: (
        Annotated[
            str,
            StringConstraints(
                pattern=r"^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}$"
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="the AWS Private CA that issues each person's client certificate (mutual TLS)",
    )

    @model_validator(mode="after")
    def _client_ca_needs_mutual_tls(self) -> NetworkProfile:
        if self.client_certificate_authority_arn and not any(
            method.type == "mutual-tls" for method in self.authentication
        ):
            raise ValueError(
                "client_certificate_authority_arn: the endpoint must use mutual-tls authentication "
                "(its client_root_certificate_chain_arn the CA's certificate in ACM)"
            )
        return self

    @model_validator(mode="after")
    def _grant_settings_agree(self) -> NetworkProfile:
        if self.access is None:
            # frozen model: the effective mode is written once, here
            object.__setattr__(self, "access", "grants" if self.endpoint_request_id else "legacy")
        if self.access == "grants" and not self.endpoint_request_id:
            raise ValueError(
                "endpoint_request_id: required when access is grants (the request that provisioned "
                "the shared endpoint)"
            )
        if self.default_grant_hours > self.max_grant_hours:
            raise ValueError(
                f"default_grant_hours: {self.default_grant_hours:g} is longer than max_grant_hours "
                f"({self.max_grant_hours:g})"
            )
        return self

    @property
    def grants_access(self) -> bool:
        """True when people get grants on the shared endpoint rather than an endpoint each."""
        return self.access == "grants"

    @model_validator(mode="after")
    def _groups_fit_authentication(self) -> NetworkProfile:
        ids = [group.id for group in self.access_groups]
        duplicates = sorted({group_id for group_id in ids if ids.count(group_id) > 1})
        if duplicates:
            raise ValueError(f"access_groups: listed more than once: {', '.join(duplicates)}")
        types = {method.type for method in self.authentication}
        if types == {"mutual-tls"}:
            raise ValueError(
                "authentication: a profile with access groups needs a user-based method "
                "(active-directory or saml); mutual TLS alone has no groups"
            )
        if "active-directory" in types:
            for index, group in enumerate(self.access_groups):
                if not GROUP_SID.match(group.id):
                    raise ValueError(
                        f"access_groups[{index}].id: {group.id!r} is not an Active Directory group SID"
                    )
        return self

    def access_group(self, group_id: str) -> AccessGroup | None:
        """The access group with ``group_id``, or None when the profile does not offer it."""
        return next((group for group in self.access_groups if group.id == group_id), None)

    def public_view(self) -> dict[str, Any]:
        """What the form shows: the profile's name and description, and the groups one may pick."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            # a grants profile asks how long (the form's hours field); a legacy one builds an endpoint
            "access": self.access,
            "default_grant_hours": self.default_grant_hours,
            "max_grant_hours": self.max_grant_hours,
            "access_groups": [
                {
                    "id": group.id,
                    "name": group.name,
                    "description": group.description,
                    "target_network_cidr": str(group.target_network_cidr),
                }
                for group in self.access_groups
            ],
        }


def named_field_errors(error: ValidationError) -> list[dict[str, Any]]:
    """``field_errors``, with a whole-model error that names its field ("x[0].y: why") split into both."""
    errors = field_errors(error)
    for item in errors:
        match = _FIELD_IN_MESSAGE.match(item["message"]) if item["field"] == "request" else None
        if match:
            item["field"], item["message"] = match["field"], match["message"]
    return errors


def parse_profile(name: str, document: Any) -> NetworkProfile:
    """A profile from its parameter name and JSON document; raises ProfileInvalid naming each field."""
    if not isinstance(document, dict):
        raise ProfileInvalid(name, [{"field": "profile", "message": "must be a JSON object"}])
    try:
        return NetworkProfile.model_validate({**document, "name": name})
    except ValidationError as error:
        raise ProfileInvalid(name, named_field_errors(error)) from None


class ProfileCatalog(Protocol):
    """Where profiles are kept (the data access layer implements it over SSM Parameter Store)."""

    def list_profiles(self) -> list[NetworkProfile]:
        """Every valid profile, by name (invalid documents are left out and logged)."""
        ...

    def get_profile(self, name: str) -> NetworkProfile | None:
        """The profile called ``name``; None when there is none. Raises ProfileInvalid when broken."""
        ...

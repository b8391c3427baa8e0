"""Customer managed policies of a stack, attached to its roles as CloudFormation attaches them.

moto 5.2.5 creates an ``AWS::IAM::ManagedPolicy`` (attaching it to the roles its own ``Roles`` lists)
but its ``AWS::IAM::Role`` model ignores ``ManagedPolicyArns``, which is where SAM puts a function's
``Policies: - !Ref SomePolicy``; it cannot update a managed policy's document, and a stack deletion
stops at a role that still has a policy attached. The IAM enforcement reads a role's attached
policies (:meth:`localcloud.iam_enforcement.IamEnforcer.role_policies`), so without these hooks a
function would be refused what its shared policy allows. The hooks:

- attach every ``ManagedPolicyArns`` entry when a role is created, and attach or detach the
  difference when it is updated; an AWS managed policy (``arn:aws:iam::aws:policy/...``) that moto
  did not load is left out (the local cloud carries no copy of AWS's documents), a customer managed
  one that does not exist fails the resource as it does on AWS;
- make a policy document change a new default version (the oldest other version goes at the limit
  of five, as CloudFormation does);
- detach a role's policies before it is deleted, and a managed policy from everything before it is.

A managed policy's ``Roles``, ``Users`` and ``Groups`` are attached on create only; a new
``ManagedPolicyName`` or ``Path`` (a replacement on AWS) fails the update, naming the property.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["install_managed_policy_hooks"]

_MAX_VERSIONS = 5


def _backend(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["aws"]


def _aws_managed(arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) > 4 and parts[4] == "aws"


def _attach_arns(backend: Any, role: Any, wanted: list[str]) -> None:
    known = {policy.arn for policy in backend.managed_policies.values()}
    for arn in wanted:
        if arn in role.managed_policies or (arn not in known and _aws_managed(arn)):
            continue
        backend.attach_role_policy(arn, role.name)  # NoSuchEntity for an unknown customer policy


def _sync_arns(backend: Any, role: Any, wanted: list[str]) -> None:
    for arn in [arn for arn in role.managed_policies if arn not in wanted]:
        backend.detach_role_policy(arn, role.name)
    _attach_arns(backend, role, wanted)


def _wanted_arns(cloudformation_json: dict[str, Any]) -> list[str]:
    arns = (cloudformation_json.get("Properties") or {}).get("ManagedPolicyArns") or []
    return [str(arn) for arn in arns]


def _detach_everywhere(backend: Any, policy: Any) -> None:
    holders = [*backend.roles.values(), *backend.users.values(), *backend.groups.values()]
    for holder in holders:
        if policy.arn in holder.managed_policies:
            policy.detach_from(holder)


def _document(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def install_managed_policy_hooks() -> None:
    """Patch moto's Role and ManagedPolicy CloudFormation models (the caller makes it once)."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.iam.models import ManagedPolicy, Role

    create_role = Role.create_from_cloudformation_json
    update_role = Role.update_from_cloudformation_json
    delete_role = Role.delete_from_cloudformation_json

    def create_role_with_policies(
        cls: type[Role],
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Role:
        role = create_role(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        _attach_arns(_backend(account_id), role, _wanted_arns(cloudformation_json))
        return role

    def update_role_with_policies(
        cls: type[Role],
        original_resource: Role,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Role:
        role = update_role(original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        _sync_arns(_backend(account_id), role, _wanted_arns(cloudformation_json))
        return role

    def delete_role_and_detach(
        cls: type[Role], resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        backend = _backend(account_id)
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for arn in list(role.managed_policies):
                    backend.detach_role_policy(arn, role.name)
        delete_role(resource_name, cloudformation_json, account_id, region_name)

    def update_policy(
        cls: type[ManagedPolicy],
        original_resource: ManagedPolicy,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> ManagedPolicy:
        properties = cloudformation_json.get("Properties") or {}
        for key, current in (("ManagedPolicyName", original_resource.name), ("Path", original_resource.path)):
            if key in properties and properties[key] != current:
                raise ValidationError(
                    message=f"{key}: changing it replaces the policy on AWS, which the local cloud "
                    "does not do (delete the stack and deploy it again)"
                )
        wanted = properties.get("PolicyDocument")
        default = next(version for version in original_resource.versions if version.is_default)
        if _document(default.document) != _document(wanted):
            backend = _backend(account_id)
            while len(original_resource.versions) >= _MAX_VERSIONS:
                oldest = next(version for version in original_resource.versions if not version.is_default)
                backend.delete_policy_version(original_resource.arn, oldest.version_id)
            backend.create_policy_version(original_resource.arn, json.dumps(wanted), set_as_default=True)
        return original_resource

    def delete_policy(
        cls: type[ManagedPolicy],
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> None:
        backend = _backend(account_id)
        policy = backend.managed_policies.get(resource_name)  # the physical id is the ARN
        if policy is None:
            return
        _detach_everywhere(backend, policy)
        backend.delete_policy(policy.arn)

    Role.create_from_cloudformation_json = classmethod(create_role_with_policies)  # type: ignore[method-assign,assignment,arg-type]
    Role.update_from_cloudformation_json = classmethod(update_role_with_policies)  # type: ignore[method-assign,assignment,arg-type]
    Role.delete_from_cloudformation_json = classmethod(delete_role_and_detach)  # type: ignore[method-assign,assignment,arg-type]
    ManagedPolicy.update_from_cloudformation_json = classmethod(update_policy)  # type: ignore[method-assign,assignment,arg-type]
    ManagedPolicy.delete_from_cloudformation_json = classmethod(delete_policy)  # type: ignore[method-assign,assignment,arg-type]

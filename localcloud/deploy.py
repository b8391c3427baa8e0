"""Deploy a SAM template onto the local cloud.

``deploy_stack`` is ``sam package`` + ``sam deploy`` against the embedded AWS:

1. expand ``AWS::LanguageExtensions`` (``Fn::ForEach``), which CloudFormation runs before the SAM
   transform (``localcloud.language_extensions``); package local code into the embedded S3 and
   inline local definitions (``localcloud.sam``);
2. transform SAM to CloudFormation offline (``localcloud.sam``);
3. apply ``DefinitionSubstitutions`` of state machines (moto ignores them) by turning each
   definition into an ``Fn::Join`` whose parts are the substitution values, so moto resolves the
   intrinsics as CloudFormation would;
4. take out the resources moto's CloudFormation cannot create but the local cloud serves itself
   (HTTP APIs -> ``localcloud.gateway``, EventBridge Scheduler schedules -> ``localcloud.scheduler``),
   give them local physical ids and substitute every reference to them;
5. refuse any other resource type moto's CloudFormation has no model for, unless it is listed in
   ``IGNORED_RESOURCE_TYPES`` with the reason it is safe to leave out;
6. create the stack, or update it when it already exists (so ``cvpn local up`` twice works; the
   stack keeps its data, as on AWS), and report failures with logical id and reason.

The template is the only wiring: functions, routes, schedules and state machines are all read back
from the transformed template and the stack's resources.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from localcloud.gateway import parse_http_apis
from localcloud.iam_cloudformation import install_managed_policy_hooks
from localcloud.language_extensions import load_expanded_template
from localcloud.sam import SamError, package_sam_template, transform_sam_template
from localcloud.scheduler import parse_schedules
from localcloud.stack import DeployedStack, FunctionInfo

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "IGNORED_RESOURCE_TYPES",
    "LOCALLY_SERVED_RESOURCE_TYPES",
    "DeployError",
    "DeployedStack",
    "FunctionInfo",
    "TemplateResolver",
    "deploy_stack",
    "install_cloudformation_hooks",
    "moto_supported_resource_types",
    "template_parameter_values",
]

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account

# Served by the local cloud itself from the transformed template (moto's CloudFormation skips them).
LOCALLY_SERVED_RESOURCE_TYPES: dict[str, str] = {
    "AWS::ApiGatewayV2::Api": "localcloud.gateway serves the HTTP API's routes",
    "AWS::ApiGatewayV2::Stage": "localcloud.gateway serves the stage (path prefix unless $default)",
    "AWS::ApiGatewayV2::Route": "localcloud.gateway serves explicit routes",
    "AWS::ApiGatewayV2::Integration": "localcloud.gateway invokes Lambda proxy integrations",
    "AWS::ApiGatewayV2::Authorizer": "localcloud.gateway verifies JWT authorizers",
    "AWS::ApiGatewayV2::Deployment": "the local gateway serves the template's routes directly",
    "AWS::Scheduler::Schedule": "localcloud.scheduler fires the schedule on the emulated clock",
    "AWS::Scheduler::ScheduleGroup": "made in the embedded Scheduler, which localcloud.scheduler fires",
}

# Types that neither moto nor the local cloud run, and whose absence changes nothing a local run can
# observe. Each entry says why. Anything else unsupported fails the deploy.
IGNORED_RESOURCE_TYPES: dict[str, str] = {
    "AWS::CloudWatch::Alarm": "no metrics are emitted locally, so an alarm would never change state",
    "AWS::CloudWatch::CompositeAlarm": "no metrics are emitted locally, so an alarm never changes state",
    "AWS::Logs::MetricFilter": "no metrics are evaluated locally",
    "AWS::Logs::SubscriptionFilter": "log streaming to other services is not emulated locally",
    "AWS::Lambda::EventInvokeConfig": (
        "retry/destination settings of asynchronous invokes; the local runtime invokes once, no retries"
    ),
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::SNS::TopicPolicy": "moto does not enforce resource policies",
    "AWS::S3::BucketPolicy": "moto does not enforce resource policies",
    "AWS::XRay::Group": "no traces are collected locally",
    "AWS::XRay::SamplingRule": "no traces are collected locally",
    "AWS::ApiGatewayV2::ApiMapping": "custom domains do not exist on loopback",
    "AWS::ApiGatewayV2::DomainName": "custom domains do not exist on loopback",
    "AWS::CloudFormation::WaitCondition": "moto ignores it (NULL_MODELS); nothing signals locally",
    "AWS::CloudFormation::WaitConditionHandle": "moto ignores it (NULL_MODELS); nothing signals locally",
}

_JUNK_MODEL_TYPES = {"?", "AWS::SERVICE::RESOURCE"}  # base classes in moto's model list
_STACK_POLL_SECONDS = 0.2
_STACK_TIMEOUT_SECONDS = 120.0


class DeployError(Exception):
    """The template cannot be deployed onto the local cloud; the message names what and why."""


def moto_supported_resource_types() -> frozenset[str]:
    """The resource types moto's CloudFormation (as installed) has a model for."""
    from moto.cloudformation.parsing import get_model_map

    return frozenset(set(get_model_map()) - _JUNK_MODEL_TYPES)


_hooks_lock = threading.Lock()
_hooks_installed = False


def install_cloudformation_hooks() -> None:
    """Close the gaps of moto's CloudFormation models that a SAM app hits (idempotent).

    moto 5.2.5's ``StateMachine`` CloudFormation model always writes into ``stepfunctions_backends``,
    but with ``execute_state_machine`` configured the Step Functions API reads the parser backend, so
    a stack's state machines would be invisible (and unexecutable). The hook routes create, update and
    delete through the backend the API uses.

    moto's ``LayerVersion`` has no physical id, so ``{"Ref": Layer}`` resolved to the Python object
    and functions lost their layers; on AWS the Ref is the layer version ARN, which the hook provides.
    moto's ``Function`` model also drops ``Layers`` on create (its update keeps them); the hook sets them.
    moto's ``SSM::Parameter`` model crashes without ``Name``; AWS generates one, so does the hook.
    moto's ``Events::EventBus`` has no physical id either, so ``{"Ref": Bus}`` was the Python object
    (a rule naming it as ``EventBusName`` failed to create); on AWS the Ref is the bus name.
    A resource moto fails to create or update surfaces as a ``ValidationError`` naming its logical id
    and type (moto would answer a bare 500 or an unrelated service's error). Customer managed
    policies are attached to the roles that name them (:mod:`localcloud.iam_cloudformation`).

    The hooks affect the moto running in this process, which is where the local cloud runs it.
    """
    global _hooks_installed
    from moto.awslambda.models import LambdaFunction, LayerVersion
    from moto.cloudformation import parsing
    from moto.events.models import EventBus
    from moto.ssm.models import Parameter
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend
    from moto.stepfunctions.utils import cfn_to_api_tags

    with _hooks_lock:
        if _hooks_installed:
            return

        def create(
            cls: type[StateMachine],
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> StateMachine:
            properties = cloudformation_json["Properties"]
            return get_backend(account_id, region_name).create_state_machine(
                properties.get("StateMachineName", resource_name),
                properties.get("DefinitionString", ""),
                properties.get("RoleArn", ""),
                tags=cfn_to_api_tags(properties.get("Tags", [])),
            )

        def delete(
            cls: type[StateMachine],
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> None:
            get_backend(account_id, region_name).delete_state_machine(resource_name)

        def update(
            cls: type[StateMachine],
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> StateMachine:
            properties = cloudformation_json.get("Properties", {})
            name = properties.get("StateMachineName", original_resource.name)
            if name != original_resource.name:
                replacement = create(cls, name, cloudformation_json, account_id, region_name)
                delete(cls, original_resource.arn, cloudformation_json, account_id, region_name)
                return replacement
            return get_backend(account_id, region_name).update_state_machine(
                original_resource.arn,
                definition=properties.get("DefinitionString"),
                role_arn=properties.get("RoleArn"),
            )

        StateMachine.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment,arg-type]
        StateMachine.delete_from_cloudformation_json = classmethod(delete)  # type: ignore[method-assign,assignment,arg-type]
        StateMachine.update_from_cloudformation_json = classmethod(update)  # type: ignore[method-assign,assignment,arg-type]
        LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]
        EventBus.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]
        create_function = LambdaFunction.create_from_cloudformation_json

        def create_function_with_layers(
            cls: type[LambdaFunction],
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> LambdaFunction:
            function = create_function(resource_name, cloudformation_json, account_id, region_name, **kwargs)
            layers = cloudformation_json["Properties"].get("Layers")
            if layers:
                function.update_configuration({"Layers": layers})
            return function

        LambdaFunction.create_from_cloudformation_json = classmethod(create_function_with_layers)  # type: ignore[method-assign,assignment,arg-type]
        create_parameter = Parameter.create_from_cloudformation_json

        def create_parameter_with_name(
            cls: type[Parameter],
            resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Parameter:
            cloudformation_json["Properties"].setdefault("Name", resource_name)
            return create_parameter(resource_name, cloudformation_json, account_id, region_name, **kwargs)

        Parameter.create_from_cloudformation_json = classmethod(create_parameter_with_name)  # type: ignore[method-assign,assignment,arg-type]
        install_managed_policy_hooks()
        parsing.parse_and_create_resource = _naming_failures(parsing.parse_and_create_resource, "create")
        parsing.parse_and_update_resource = _naming_failures(parsing.parse_and_update_resource, "update")
        _hooks_installed = True


def _naming_failures(function: Callable[..., Any], action: str) -> Callable[..., Any]:
    """Wrap moto's parse_and_<action>_resource so failures carry the logical id, type and reason."""
    from moto.cloudformation.exceptions import ValidationError

    def wrapper(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return function(logical_id, resource_json, *args, **kwargs)
        except ValidationError as error:
            if getattr(error, "localcloud_attributed", False):
                raise
            raise _attributed(error, logical_id, resource_json, action) from error
        except Exception as error:
            raise _attributed(error, logical_id, resource_json, action) from error

    def _attributed(error: Exception, logical_id: str, resource_json: dict[str, Any], verb: str) -> Exception:
        reason = getattr(error, "message", None) or str(error) or type(error).__name__
        failure = ValidationError(
            message=f"{logical_id} ({resource_json.get('Type')}) failed to {verb}: {reason}"
        )
        failure.localcloud_attributed = True  # type: ignore[attr-defined]
        return failure

    return wrapper


def _local_api_id(stack_name: str, logical_id: str) -> str:
    """A stable 10-character id shaped like API Gateway's (lowercase letters and digits)."""
    digest = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    number = int(digest, 16)
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


@dataclass(frozen=True)
class _LocalResource:
    """A resource the local cloud serves or ignores: its Ref value and attribute values."""

    ref: str
    attributes: dict[str, str]


def _local_resources(
    template: dict[str, Any], *, stack_name: str, region: str, account_id: str
) -> dict[str, _LocalResource]:
    """Local physical ids for the resources taken out of moto's template."""
    local: dict[str, _LocalResource] = {}
    resources = template.get("Resources") or {}
    for logical_id, resource in resources.items():
        resource_type = resource.get("Type", "")
        if resource_type not in LOCALLY_SERVED_RESOURCE_TYPES and resource_type not in IGNORED_RESOURCE_TYPES:
            continue
        properties = resource.get("Properties") or {}
        local_id = _local_api_id(stack_name, logical_id)
        if resource_type == "AWS::ApiGatewayV2::Api":
            endpoint = f"https://{local_id}.execute-api.{region}.amazonaws.com"
            local[logical_id] = _LocalResource(local_id, {"ApiId": local_id, "ApiEndpoint": endpoint})
        elif resource_type == "AWS::ApiGatewayV2::Stage":
            stage = str(properties.get("StageName", "$default"))
            local[logical_id] = _LocalResource(stage, {})
        elif resource_type == "AWS::Scheduler::Schedule":
            name = str(properties.get("Name") or f"{stack_name}-{logical_id}")
            group = str(properties.get("GroupName") or "default")
            arn = f"arn:aws:scheduler:{region}:{account_id}:schedule/{group}/{name}"
            local[logical_id] = _LocalResource(name, {"Arn": arn})
        elif resource_type == "AWS::Scheduler::ScheduleGroup":
            name = str(properties.get("Name") or f"{stack_name}-{logical_id}")
            arn = f"arn:aws:scheduler:{region}:{account_id}:schedule-group/{name}"
            local[logical_id] = _LocalResource(name, {"Arn": arn})
        else:
            attributes = {"AuthorizerId": local_id} if resource_type.endswith("::Authorizer") else {}
            if resource_type.endswith("::Integration"):
                attributes = {"IntegrationId": local_id}
            local[logical_id] = _LocalResource(local_id, attributes)
    return local


def _check_resource_types(template: dict[str, Any], supported: frozenset[str]) -> None:
    unsupported = [
        f"{logical_id} ({resource.get('Type')})"
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") not in supported
        and resource.get("Type") not in LOCALLY_SERVED_RESOURCE_TYPES
        and resource.get("Type") not in IGNORED_RESOURCE_TYPES
    ]
    if unsupported:
        raise DeployError(
            "the local cloud can neither create nor serve these resources: "
            + ", ".join(unsupported)
            + " (moto's CloudFormation has no model for the type; serve it in the local cloud or list "
            "it in localcloud.deploy.IGNORED_RESOURCE_TYPES with the reason it is safe to leave out)"
        )


_SUB_REFERENCE = re.compile(r"\$\{([^}!][^}]*)\}")


def _replace_local_references(node: Any, local: Mapping[str, _LocalResource]) -> Any:
    """Replace Ref / GetAtt / Fn::Sub references to locally served resources by their local values."""
    if isinstance(node, list):
        return [_replace_local_references(item, local) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str) and value in local:
            return local[value].ref
        if key == "Fn::GetAtt":
            parts = value.split(".", 1) if isinstance(value, str) else value
            if isinstance(parts, list) and len(parts) == 2 and parts[0] in local:
                return _local_attribute(local, parts[0], str(parts[1]))
        if key == "Fn::Sub":
            return {"Fn::Sub": _replace_in_sub(value, local)}
    return {key: _replace_local_references(value, local) for key, value in node.items()}


def _local_attribute(local: Mapping[str, _LocalResource], logical_id: str, attribute: str) -> str:
    try:
        return local[logical_id].attributes[attribute]
    except KeyError:
        raise DeployError(
            f"{logical_id}: attribute {attribute} is not available on the local cloud"
        ) from None


def _replace_in_sub(value: Any, local: Mapping[str, _LocalResource]) -> Any:
    if isinstance(value, list) and len(value) == 2:
        text, variables = value
        variables = {name: _replace_local_references(v, local) for name, v in variables.items()}
        return [_substitute_sub_text(text, local, set(variables)), variables]
    if isinstance(value, str):
        return _substitute_sub_text(value, local, set())
    return value


def _substitute_sub_text(text: str, local: Mapping[str, _LocalResource], shadowed: set[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        reference = match.group(1)
        name, _, attribute = reference.partition(".")
        if reference in shadowed or name not in local:
            return match.group(0)
        return _local_attribute(local, name, attribute) if attribute else local[name].ref

    return _SUB_REFERENCE.sub(replace, text)


def _definition_text(definition: Any, logical_id: str) -> str:
    """The literal text of a DefinitionString (plain or SAM's Fn::Join of literal lines)."""
    if isinstance(definition, str):
        return definition
    if isinstance(definition, dict) and set(definition) == {"Fn::Join"}:
        separator, parts = definition["Fn::Join"]
        if all(isinstance(part, str) for part in parts):
            return str(separator).join(parts)
    raise DeployError(f"{logical_id}: DefinitionString must be literal to apply DefinitionSubstitutions")


def _apply_definition_substitutions(template: dict[str, Any]) -> None:
    """Turn DefinitionString + DefinitionSubstitutions into one Fn::Join that moto resolves."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        properties = resource.get("Properties") or {}
        if "DefinitionS3Location" in properties:
            raise DeployError(
                f"{logical_id}: DefinitionS3Location is not supported; use a local DefinitionUri"
            )
        if "Definition" in properties and "DefinitionString" not in properties:
            properties["DefinitionString"] = json.dumps(properties.pop("Definition"))
        substitutions: dict[str, Any] = properties.pop("DefinitionSubstitutions", None) or {}
        if not substitutions or "DefinitionString" not in properties:
            continue
        text = _definition_text(properties["DefinitionString"], logical_id)
        names = "|".join(re.escape(name) for name in sorted(substitutions, key=len, reverse=True))
        pieces: list[Any] = []
        position = 0
        for match in re.finditer(r"\$\{(" + names + r")\}", text):
            pieces.append(text[position : match.start()])
            pieces.append(substitutions[match.group(1)])
            position = match.end()
        pieces.append(text[position:])
        properties["DefinitionString"] = {"Fn::Join": ["", [piece for piece in pieces if piece != ""]]}


def _pseudo_parameters(region: str, account_id: str, stack_name: str) -> dict[str, str]:
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
        "AWS::StackName": stack_name,
        "AWS::URLSuffix": "amazonaws.com",
    }


def _active_template(template: dict[str, Any], resolver: TemplateResolver) -> dict[str, Any]:
    """``template`` without the resources and outputs whose Condition is false."""
    active = copy.deepcopy(template)
    for section in ("Resources", "Outputs"):
        entries = active.get(section) or {}
        for logical_id in [name for name, entry in entries.items() if entry.get("Condition")]:
            if not resolver.condition(str(entries[logical_id]["Condition"])):
                del entries[logical_id]
    return active


def _moto_template(transformed: dict[str, Any], local: Mapping[str, _LocalResource]) -> dict[str, Any]:
    """The template moto gets: served/ignored resources out, references to them resolved locally."""
    moto_template = copy.deepcopy(transformed)
    resources = moto_template.get("Resources") or {}
    for logical_id in local:
        resources.pop(logical_id, None)
    for resource in resources.values():
        depends_on = resource.get("DependsOn")
        if isinstance(depends_on, str) and depends_on in local:
            del resource["DependsOn"]
        elif isinstance(depends_on, list):
            resource["DependsOn"] = [name for name in depends_on if name not in local]
    replaced: dict[str, Any] = _replace_local_references(moto_template, local)
    return replaced


class TemplateResolver:
    """Resolves intrinsic functions of the transformed template against the deployed stack.

    Used to read back what CloudFormation resolved (integration URIs of HTTP APIs, schedule targets).
    ``Ref`` gives parameters, pseudo parameters and physical ids; ``Fn::GetAtt`` gives the ARNs of the
    resource types the local cloud needs to wire (Lambda, Step Functions, IAM roles, SQS, SNS, Events,
    DynamoDB) and the attributes of locally served resources.
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        physical_ids: Mapping[str, str],
        local_attributes: Mapping[str, Mapping[str, str]],
        parameters: Mapping[str, Any],
        region: str,
        account_id: str,
        conditions: Mapping[str, bool] | None = None,
    ) -> None:
        self._resources: dict[str, Any] = template.get("Resources") or {}
        self._conditions = dict(conditions or {})
        self._template_conditions: dict[str, Any] = template.get("Conditions") or {}
        self._physical_ids = physical_ids
        self._local_attributes = local_attributes
        self._parameters = parameters
        self._region = region
        self._account_id = account_id

    def resolve(self, node: Any) -> Any:
        """Resolve every intrinsic in ``node`` (a template fragment)."""
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                return self.get_att(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Join":
                separator, parts = value
                return str(separator).join(str(self.resolve(part)) for part in self.resolve(parts))
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key == "Fn::If":
                condition, when_true, when_false = value
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key == "Fn::Equals":
                left, right = value
                return str(self.resolve(left)) == str(self.resolve(right))
            if key == "Fn::And":
                return all(self._truth(item) for item in value)
            if key == "Fn::Or":
                return any(self._truth(item) for item in value)
            if key == "Fn::Not":
                return not self._truth(value[0])
            if key == "Condition" and isinstance(value, str):
                return self.condition(value)
        return {key: self.resolve(value) for key, value in node.items()}

    def _truth(self, node: Any) -> bool:
        return bool(self.resolve(node))

    def condition(self, name: str) -> bool:
        """The value of the template condition ``name`` (evaluated once, from parameters)."""
        if name not in self._conditions:
            definition = (self._template_conditions or {}).get(name)
            if definition is None:
                raise DeployError(f"condition {name} is not defined in the template")
            self._conditions[name] = self._truth(definition)
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        """The value of ``{"Ref": name}``."""
        if name == "AWS::NoValue":
            return None
        if name in self._parameters:
            return self._parameters[name]
        if name in self._physical_ids:
            return self._physical_ids[name]
        raise DeployError(f"cannot resolve Ref {name}: no such parameter or deployed resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        """The value of ``{"Fn::GetAtt": [logical_id, attribute]}`` for the types the local cloud wires."""
        if logical_id in self._local_attributes and attribute in self._local_attributes[logical_id]:
            return self._local_attributes[logical_id][attribute]
        resource_type = (self._resources.get(logical_id) or {}).get("Type", "")
        physical = self.ref(logical_id)
        arn_prefix = f"arn:aws:{{service}}:{self._region}:{self._account_id}:"
        arns = {
            "AWS::Lambda::Function": arn_prefix.format(service="lambda") + f"function:{physical}",
            "AWS::IAM::Role": f"arn:aws:iam::{self._account_id}:role/{physical}",
            "AWS::SNS::Topic": physical,
            "AWS::StepFunctions::StateMachine": physical,
            "AWS::Events::Rule": arn_prefix.format(service="events") + f"rule/{physical}",
            "AWS::DynamoDB::Table": arn_prefix.format(service="dynamodb") + f"table/{physical}",
            "AWS::SQS::Queue": arn_prefix.format(service="sqs") + str(physical).rsplit("/", 1)[-1],
            "AWS::Lambda::LayerVersion": physical,
        }
        if attribute == "Arn" and resource_type in arns:
            return arns[resource_type]
        if resource_type == "AWS::StepFunctions::StateMachine" and attribute == "Name":
            return str(physical).rsplit(":", 1)[-1]
        if resource_type == "AWS::SQS::Queue" and attribute == "QueueName":
            return str(physical).rsplit("/", 1)[-1]
        raise DeployError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute} ({resource_type}) locally")

    def _sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = value
            resolved_variables = {name: self.resolve(v) for name, v in variables.items()}
        else:
            text, resolved_variables = value, {}

        def replace(match: re.Match[str]) -> str:
            reference = match.group(1)
            if reference in resolved_variables:
                return str(resolved_variables[reference])
            name, _, attribute = reference.partition(".")
            return str(self.get_att(name, attribute) if attribute else self.ref(name))

        substituted = _SUB_REFERENCE.sub(replace, str(text))
        return substituted.replace("${!", "${")


def _stack_status(cloudformation: Any, stack_name: str) -> str | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _failure_reasons(cloudformation: Any, stack_name: str) -> str:
    try:
        events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    except ClientError:
        return "no stack events available"
    failures = [
        f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}): "
        f"{event.get('ResourceStatusReason', 'no reason given')}"
        for event in events
        if str(event.get("ResourceStatus", "")).endswith("FAILED")
        and event.get("LogicalResourceId") != stack_name
    ]
    return "; ".join(failures) or "no failed resource reported"


def _wait_for_stack(cloudformation: Any, stack_name: str, operation: str) -> None:
    deadline = time.monotonic() + _STACK_TIMEOUT_SECONDS
    while True:
        status = _stack_status(cloudformation, stack_name) or "MISSING"
        if status == f"{operation}_COMPLETE":
            return
        if status.endswith(("FAILED", "ROLLBACK_COMPLETE")) or status == "MISSING":
            reasons = _failure_reasons(cloudformation, stack_name)
            raise DeployError(f"stack {stack_name} {operation.lower()} ended in {status}: {reasons}")
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {_STACK_TIMEOUT_SECONDS:.0f}s")
        time.sleep(_STACK_POLL_SECONDS)


def _create_or_update_stack(
    cloudformation: Any, stack_name: str, template_body: str, parameters: dict[str, str]
) -> None:
    """Create the stack, or update it when a complete one exists; a failed or stuck one is replaced.

    A failed create is rolled back by deleting the stack (as CloudFormation's default rollback does),
    so the next deploy starts clean.
    """
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    cfn_parameters = [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()]
    status = _stack_status(cloudformation, stack_name)
    updatable = status is not None and status.endswith("_COMPLETE") and status not in _REPLACED_STATUSES
    if status is not None and status != "DELETE_COMPLETE" and not updatable:
        cloudformation.delete_stack(StackName=stack_name)
    operation = "UPDATE" if updatable else "CREATE"
    request = cloudformation.update_stack if updatable else cloudformation.create_stack
    try:
        request(
            StackName=stack_name,
            TemplateBody=template_body,
            Parameters=cfn_parameters,
            Capabilities=capabilities,
        )
    except (ClientError, BotoCoreError) as error:
        if operation == "UPDATE" and "No updates are to be performed" in str(error):
            return
        if operation == "CREATE" and _stack_status(cloudformation, stack_name) not in (
            None,
            "DELETE_COMPLETE",
        ):
            cloudformation.delete_stack(StackName=stack_name)
        raise DeployError(
            f"{operation.lower()} of stack {stack_name} failed: {_error_message(error)}"
        ) from error
    _wait_for_stack(cloudformation, stack_name, operation)


_REPLACED_STATUSES = frozenset({"ROLLBACK_COMPLETE", "DELETE_COMPLETE"})


def _error_message(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Message") or error)
    return str(error)


def template_parameter_values(template: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, str]:
    """The value of every parameter of ``template``: its override, else its ``Default``.

    Refused as CloudFormation refuses them, naming the parameter and the reason: an override for a
    parameter the template does not declare, a parameter with neither, and a value (given or
    default) outside the parameter's ``AllowedValues``, ``AllowedPattern``, ``MinLength``/``MaxLength``
    or ``MinValue``/``MaxValue``, or not a number for ``Number`` and ``List<Number>``.
    """
    declared = template.get("Parameters") or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DeployError("; ".join(_unknown_parameter(name, declared) for name in unknown))
    values: dict[str, str] = {}
    for name, definition in declared.items():
        definition = definition if isinstance(definition, dict) else {}
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in definition:
            values[name] = str(definition["Default"])
        else:
            raise DeployError(f"parameter {name} has no Default; give it a value in the parameter overrides")
        _check_parameter_value(name, definition, values[name], given=name in overrides)
    return values


def _unknown_parameter(name: str, declared: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(declared), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"parameter {name}: the template declares no such parameter{hint}"


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\Z")


def _check_parameter_value(name: str, definition: Mapping[str, Any], value: str, *, given: bool) -> None:
    """CloudFormation's checks of one parameter value. Types CloudFormation checks against the
    account (``AWS::EC2::VPC::Id``, SSM parameter types, ...) are not looked up locally."""
    kind = str(definition.get("Type", "String"))
    if kind in ("CommaDelimitedList", "List<Number>"):
        items = [item.strip() for item in value.split(",")]
    elif kind in ("String", "Number"):
        items = [value]
    else:
        return
    shown = "****" if str(definition.get("NoEcho", "")).lower() == "true" else None
    origin = "" if given else " (its Default)"
    constraint = definition.get("ConstraintDescription")

    def refuse(item: str, reason: str) -> DeployError:
        described = f" ({constraint})" if constraint else ""
        return DeployError(f"parameter {name}: {shown or repr(item)}{origin} {reason}{described}")

    for item in items:
        if kind in ("Number", "List<Number>"):
            if not _NUMBER.match(item):
                raise refuse(item, "is not a number")
            number = float(item)
            if "MinValue" in definition and number < float(definition["MinValue"]):
                raise refuse(item, f"is less than MinValue {definition['MinValue']}")
            if "MaxValue" in definition and number > float(definition["MaxValue"]):
                raise refuse(item, f"is greater than MaxValue {definition['MaxValue']}")
        else:
            pattern = definition.get("AllowedPattern")
            if pattern is not None and not re.fullmatch(str(pattern), item):
                raise refuse(item, f"does not match AllowedPattern {pattern}")
        if kind == "String":
            if "MinLength" in definition and len(item) < int(definition["MinLength"]):
                raise refuse(item, f"is shorter than MinLength {definition['MinLength']}")
            if "MaxLength" in definition and len(item) > int(definition["MaxLength"]):
                raise refuse(item, f"is longer than MaxLength {definition['MaxLength']}")
        allowed = definition.get("AllowedValues")
        if allowed is not None and item not in [str(choice) for choice in allowed]:
            choices = ", ".join(str(choice) for choice in allowed)
            raise refuse(item, f"is not one of the AllowedValues ({choices})")


def deploy_stack(
    template_path: Path,
    *,
    stack_name: str,
    endpoint_url: str,
    region: str = "us-east-1",
    parameter_overrides: dict[str, Any] | None = None,
    build_dir: Path,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> DeployedStack:
    """Package, transform and deploy ``template_path`` as ``stack_name`` onto the local cloud.

    Deploying a stack that exists updates it in place. Raises ``DeployError`` naming the resource
    (logical id and type) and the reason when anything cannot be deployed.
    """
    install_cloudformation_hooks()
    session = boto3.session.Session(region_name=region)
    s3 = session.client("s3", endpoint_url=endpoint_url)
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    try:
        sam_template = load_expanded_template(template_path)
        packaged, _artifacts = package_sam_template(
            sam_template,
            template_dir=template_path.parent,
            s3_client=s3,
            bucket=f"localcloud-artifacts-{account_id}",
            prefix=stack_name,
            build_dir=build_dir,
        )
        parameters = template_parameter_values(packaged, parameter_overrides or {})
        transformed = transform_sam_template(
            packaged, region=region, account_id=account_id, stack_name=stack_name, parameter_values=parameters
        )
    except SamError as error:
        raise DeployError(str(error)) from error

    _apply_definition_substitutions(transformed)
    condition_resolver = TemplateResolver(
        transformed,
        physical_ids={},
        local_attributes={},
        parameters={**parameters, **_pseudo_parameters(region, account_id, stack_name)},
        region=region,
        account_id=account_id,
    )
    active = _active_template(transformed, condition_resolver)
    _check_resource_types(active, moto_supported_resource_types())
    local = _local_resources(transformed, stack_name=stack_name, region=region, account_id=account_id)
    moto_template = _moto_template(transformed, local)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{stack_name}.transformed.json").write_text(json.dumps(transformed, indent=2))
    (build_dir / f"{stack_name}.moto.json").write_text(json.dumps(moto_template, indent=2))
    _create_or_update_stack(cloudformation, stack_name, json.dumps(moto_template), parameters)
    _create_schedule_groups(
        session.client("scheduler", endpoint_url=endpoint_url),
        [
            resource.ref
            for logical_id, resource in local.items()
            if logical_id in active["Resources"]
            and active["Resources"][logical_id].get("Type") == "AWS::Scheduler::ScheduleGroup"
        ],
    )

    return _read_back(
        cloudformation,
        transformed=active,
        local={
            logical_id: resource
            for logical_id, resource in local.items()
            if logical_id in active["Resources"]
        },
        parameters=parameters,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        endpoint_url=endpoint_url,
    )


def _create_schedule_groups(scheduler: Any, names: list[str]) -> None:
    """Create the template's schedule groups in the embedded Scheduler, where the product's code
    creates its one-time schedules; a group that exists (a redeploy) keeps its schedules."""
    for name in names:
        try:
            scheduler.get_schedule_group(Name=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            scheduler.create_schedule_group(Name=name)


def _read_back(
    cloudformation: Any,
    *,
    transformed: dict[str, Any],
    local: Mapping[str, _LocalResource],
    parameters: Mapping[str, str],
    stack_name: str,
    region: str,
    account_id: str,
    endpoint_url: str,
) -> DeployedStack:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    physical_ids = {
        resource["LogicalResourceId"]: resource["PhysicalResourceId"]
        for resource in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        if resource.get("PhysicalResourceId")
    }
    physical_ids.update({logical_id: resource.ref for logical_id, resource in local.items()})
    resolver = TemplateResolver(
        transformed,
        physical_ids=physical_ids,
        local_attributes={logical_id: resource.attributes for logical_id, resource in local.items()},
        parameters={**parameters, **_pseudo_parameters(region, account_id, stack_name)},
        region=region,
        account_id=account_id,
    )
    resources = transformed.get("Resources") or {}
    functions = {
        logical_id: FunctionInfo(logical_id, physical_ids[logical_id], resolver.get_att(logical_id, "Arn"))
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Lambda::Function" and logical_id in physical_ids
    }
    state_machines = {
        logical_id: resolver.get_att(logical_id, "Arn")
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine" and logical_id in physical_ids
    }
    ignored = {
        logical_id: IGNORED_RESOURCE_TYPES[resource["Type"]]
        for logical_id, resource in resources.items()
        if resource.get("Type") in IGNORED_RESOURCE_TYPES
    }
    return DeployedStack(
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        endpoint_url=endpoint_url,
        outputs=outputs,
        physical_ids=physical_ids,
        functions=functions,
        state_machines=state_machines,
        http_apis=parse_http_apis(transformed, resolver.resolve, physical_ids),
        schedules=parse_schedules(transformed, resolver.resolve, physical_ids, region, account_id),
        template=transformed,
        ignored_resources=ignored,
    )

"""What one AWS call asks IAM: the actions, resource ARNs and condition keys it is authorized on.

``authorizations(call, lookups)`` turns a parsed API call into the :class:`Authorization` questions
IAM asks for it. Most calls ask one (action ``<prefix>:<Operation>`` on one resource); some ask more:
an EC2 call touching an endpoint and a subnet is authorized on both, a DynamoDB batch on every table,
a create with tags also on ``ec2:CreateTags`` (``ec2:CreateAction``), an SNS publish to an encrypted
topic also on the topic's KMS key (``kms:ViaService``).

Operations the table below does not map are authorized on resource ``*`` (what IAM uses for actions
without resource-level permissions): a policy naming specific ARNs does not grant them.
``UNMAPPED_NOTE`` says so for the README.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "IAM_PREFIXES",
    "MAPPED_OPERATIONS",
    "Authorization",
    "Call",
    "Lookups",
    "authorizations",
    "mapped_operations",
]

# The IAM action prefix of a service, by the service name of its SigV4 credential scope.
IAM_PREFIXES: dict[str, str] = {"monitoring": "cloudwatch", "email": "ses"}

# S3 operations whose IAM action differs from the operation's name.
_S3_ACTIONS: dict[str, str] = {
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "DeleteObjects": "DeleteObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "CopyObject": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "GetBucketLocation": "GetBucketLocation",
    "PutBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketEncryption": "GetEncryptionConfiguration",
}
_LAMBDA_ACTIONS: dict[str, str] = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}
_TRANSACT_ACTIONS: dict[str, str] = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Call:
    """One parsed API call: SigV4 service name, region, account, operation and its parameters."""

    service: str
    region: str
    account_id: str
    operation: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Authorization:
    """One question for IAM: ``action`` on ``resource`` with these condition keys."""

    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)


class Lookups(Protocol):
    """What resource ARNs and condition keys need from the cloud's state."""

    def resource_tags(self, call: Call, arn: str) -> dict[str, str] | None: ...

    def secret_arn(self, call: Call, secret_id: str) -> str: ...

    def kms_key_arn(self, call: Call, key_id: str) -> str | None: ...

    def topic_kms_key(self, call: Call, topic_arn: str) -> str | None: ...

    def table_partition_key(self, call: Call, table_name: str) -> str | None: ...


_Builder = Callable[[Call, Lookups], list[Authorization]]


def _arn(call: Call, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
    return (
        f"arn:aws:{service}:{call.region if region else ''}:{call.account_id if account else ''}:{resource}"
    )


def _request_tags(call: Call) -> dict[str, str]:
    """Tags the request sets: EC2 ``TagSpecifications``, and ``Tags`` as list or map (other services)."""
    tags: dict[str, str] = {}
    for spec in call.params.get("TagSpecifications") or []:
        for tag in spec.get("Tags") or []:
            tags[str(tag.get("Key"))] = str(tag.get("Value", ""))
    raw = call.params.get("Tags") if call.service != "ec2" else None
    if raw is None:
        raw = call.params.get("tags")
    if isinstance(raw, Mapping):
        tags.update({str(k): str(v) for k, v in raw.items()})
    elif isinstance(raw, list):
        for tag in raw:
            if isinstance(tag, Mapping):
                key = tag.get("Key", tag.get("key", tag.get("TagKey")))
                value = tag.get("Value", tag.get("value", tag.get("TagValue", "")))
                if key is not None:
                    tags[str(key)] = str(value)
    return tags


def _with_request_tags(call: Call, context: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
    tags = _request_tags(call)
    if tags:
        context = dict(context)
        for key, value in tags.items():
            context[f"aws:RequestTag/{key}"] = value
        context["aws:TagKeys"] = list(tags)
    return context


def _on(
    call: Call, lookups: Lookups, action: str, arn: str, context: Mapping[str, str | list[str]] | None = None
) -> Authorization:
    """An authorization on an existing resource: its tags become ``aws:ResourceTag/<key>``."""
    keys: dict[str, str | list[str]] = dict(context or {})
    tags = lookups.resource_tags(call, arn)
    for key, value in (tags or {}).items():
        keys[f"aws:ResourceTag/{key}"] = value
    return Authorization(action, arn, _with_request_tags(call, keys))


def _prefix(call: Call) -> str:
    return IAM_PREFIXES.get(call.service, call.service)


def _action(call: Call, operation: str | None = None) -> str:
    return f"{_prefix(call)}:{operation or call.operation}"


# ----------------------------------------------------------------------------------------------- EC2


def _ec2(kind: str, id_param: str) -> str:
    return f"{kind}/{{{id_param}}}"


_EC2_ENDPOINT_OPERATIONS = (
    "AssociateClientVpnTargetNetwork",
    "DisassociateClientVpnTargetNetwork",
    "AuthorizeClientVpnIngress",
    "RevokeClientVpnIngress",
    "CreateClientVpnRoute",
    "DeleteClientVpnRoute",
    "ApplySecurityGroupsToClientVpnTargetNetwork",
    "ExportClientVpnClientConfiguration",
    "ExportClientVpnClientCertificateRevocationList",
    "ImportClientVpnClientCertificateRevocationList",
    "DeleteClientVpnEndpoint",
    "ModifyClientVpnEndpoint",
    "TerminateClientVpnConnections",
)
# EC2's Describe* actions have no resource-level permissions, those of Client VPN included (the Client
# VPN administrator guide's read-only policy grants them on "*"): they are authorized on "*" like
# every other unmapped EC2 operation, so a grant on client-vpn-endpoint/* does not cover them.
# Other resources an endpoint operation is also authorized on: (resource type, parameter, is a list).
_EC2_ALSO: dict[str, list[tuple[str, str, bool]]] = {
    "AssociateClientVpnTargetNetwork": [("subnet", "SubnetId", False)],
    "CreateClientVpnRoute": [("subnet", "TargetVpcSubnetId", False)],
    "DeleteClientVpnRoute": [("subnet", "TargetVpcSubnetId", False)],
    "ApplySecurityGroupsToClientVpnTargetNetwork": [
        ("security-group", "SecurityGroupIds", True),
        ("vpc", "VpcId", False),
    ],
    "ModifyClientVpnEndpoint": [("security-group", "SecurityGroupIds", True), ("vpc", "VpcId", False)],
}


def _ec2_endpoint_call(call: Call, lookups: Lookups) -> list[Authorization]:
    endpoint_id = str(call.params.get("ClientVpnEndpointId", "*"))
    answers = [_on(call, lookups, _action(call), _arn(call, "ec2", f"client-vpn-endpoint/{endpoint_id}"))]
    for kind, param, many in _EC2_ALSO.get(call.operation, []):
        values = call.params.get(param)
        for value in (values or []) if many else ([values] if values else []):
            answers.append(_on(call, lookups, _action(call), _arn(call, "ec2", f"{kind}/{value}")))
    return answers


def _ec2_create_endpoint(call: Call, lookups: Lookups) -> list[Authorization]:
    new = _arn(call, "ec2", "client-vpn-endpoint/*")
    answers = [Authorization(_action(call), new, _with_request_tags(call, {}))]
    if call.params.get("VpcId"):
        answers.append(_on(call, lookups, _action(call), _arn(call, "ec2", f"vpc/{call.params['VpcId']}")))
    for group in call.params.get("SecurityGroupIds") or []:
        answers.append(_on(call, lookups, _action(call), _arn(call, "ec2", f"security-group/{group}")))
    if _request_tags(call):
        # Tagging on create is authorized as ec2:CreateTags with ec2:CreateAction naming the create.
        context: dict[str, str | list[str]] = {"ec2:CreateAction": call.operation}
        answers.append(Authorization("ec2:CreateTags", new, _with_request_tags(call, context)))
    return answers


_EC2_KINDS = {
    "cvpn-endpoint-": "client-vpn-endpoint",
    "subnet-": "subnet",
    "vpc-": "vpc",
    "sg-": "security-group",
}


def _ec2_kind(resource_id: str) -> str:
    for prefix, kind in _EC2_KINDS.items():
        if resource_id.startswith(prefix):
            return kind
    return resource_id.split("-", 1)[0]


def _ec2_tags(call: Call, lookups: Lookups) -> list[Authorization]:
    """CreateTags/DeleteTags: on each resource, with the tags the call sets or removes as request tags
    (``aws:RequestTag/<key>``, ``aws:TagKeys``), as EC2 authorizes them."""
    tags = {
        str(tag.get("Key")): str(tag.get("Value", ""))
        for tag in call.params.get("Tags") or []
        if isinstance(tag, Mapping) and tag.get("Key") is not None
    }
    context: dict[str, str | list[str]] = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    if tags:
        context["aws:TagKeys"] = list(tags)
    return [
        _on(call, lookups, _action(call), _arn(call, "ec2", f"{_ec2_kind(str(rid))}/{rid}"), context)
        for rid in call.params.get("Resources") or ["*"]
    ]


# ------------------------------------------------------------------------------------------ DynamoDB


def _leading_keys(call: Call, lookups: Lookups, table: str, item: Mapping[str, Any] | None) -> list[str]:
    key_name = lookups.table_partition_key(call, table)
    if not key_name or not isinstance(item, Mapping) or key_name not in item:
        return []
    value = item[key_name]
    if isinstance(value, Mapping) and value:
        return [str(next(iter(value.values())))]
    return []


def _table_arn(call: Call, table: str) -> str:
    return table if table.startswith("arn:") else _arn(call, "dynamodb", f"table/{table}")


def _dynamodb(call: Call, lookups: Lookups) -> list[Authorization]:
    params = call.params
    table = str(params.get("TableName", "*"))
    arn = _table_arn(call, table)
    if params.get("IndexName"):
        arn = f"{arn}/index/{params['IndexName']}"
    item = params.get("Item") if call.operation == "PutItem" else params.get("Key")
    leading = _leading_keys(call, lookups, table, item)
    context: dict[str, str | list[str]] = {"dynamodb:LeadingKeys": leading} if leading else {}
    return [_on(call, lookups, _action(call), arn, context)]


def _dynamodb_batch(call: Call, lookups: Lookups) -> list[Authorization]:
    requests = call.params.get("RequestItems") or {}
    answers: list[Authorization] = []
    for table, entries in requests.items():
        if call.operation == "BatchWriteItem":
            kinds = {"PutRequest": "PutItem", "DeleteRequest": "DeleteItem"}
            used = {kinds[k] for entry in entries or [] for k in entry if k in kinds}
            answers += [_on(call, lookups, f"dynamodb:{a}", _table_arn(call, table)) for a in sorted(used)]
        else:
            answers.append(_on(call, lookups, "dynamodb:BatchGetItem", _table_arn(call, table)))
    if call.operation == "BatchWriteItem":
        answers += [_on(call, lookups, "dynamodb:BatchWriteItem", _table_arn(call, t)) for t in requests]
    return answers


def _dynamodb_transact(call: Call, lookups: Lookups) -> list[Authorization]:
    answers: list[Authorization] = []
    for entry in call.params.get("TransactItems") or []:
        for kind, body in entry.items():
            action = _TRANSACT_ACTIONS.get(kind)
            if action is None or not isinstance(body, Mapping):
                continue
            table = str(body.get("TableName", "*"))
            item = body.get("Item") if kind == "Put" else body.get("Key")
            leading = _leading_keys(call, lookups, table, item)
            extra: dict[str, str | list[str]] = {"dynamodb:LeadingKeys": leading} if leading else {}
            answers.append(_on(call, lookups, f"dynamodb:{action}", _table_arn(call, table), extra))
    return answers


# ----------------------------------------------------------------------------------------- the rest


def _logs(call: Call, lookups: Lookups) -> list[Authorization]:
    group = call.params.get("logGroupName") or call.params.get("logGroupIdentifier")
    if not group:
        return [Authorization(_action(call), "*", _with_request_tags(call, {}))]
    arn = str(group) if str(group).startswith("arn:") else _arn(call, "logs", f"log-group:{group}")
    stream = call.params.get("logStreamName")
    if stream and call.operation in ("CreateLogStream", "PutLogEvents", "GetLogEvents"):
        arn = f"{arn}:log-stream:{stream}"
    return [_on(call, lookups, _action(call), arn)]


def _s3(call: Call, lookups: Lookups) -> list[Authorization]:
    bucket = call.params.get("Bucket")
    key = call.params.get("Key")
    action = f"s3:{_S3_ACTIONS.get(call.operation, call.operation)}"
    if call.operation == "DeleteObjects":
        objects = (call.params.get("Delete") or {}).get("Objects") or []
        return [Authorization(action, f"arn:aws:s3:::{bucket}/{o.get('Key')}") for o in objects]
    if call.operation == "ListBuckets":
        return [Authorization("s3:ListAllMyBuckets", "*")]
    resource = f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"
    return [Authorization(action, resource, _with_request_tags(call, {}))]


def _sns(call: Call, lookups: Lookups) -> list[Authorization]:
    topic = call.params.get("TopicArn") or call.params.get("ResourceArn")
    if not topic:
        return [Authorization(_action(call), "*", _with_request_tags(call, {}))]
    answers = [_on(call, lookups, _action(call), str(topic))]
    if call.operation in ("Publish", "PublishBatch"):
        key = lookups.topic_kms_key(call, str(topic))
        if key:
            via = {"kms:ViaService": f"sns.{call.region}.amazonaws.com"}
            answers += [
                Authorization("kms:GenerateDataKey", key, dict(via)),
                Authorization("kms:Decrypt", key, dict(via)),
            ]
    return answers


def _ssm_arn(call: Call, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return _arn(call, "ssm", f"parameter{name}" if name.startswith("/") else f"parameter/{name}")


def _ssm(call: Call, lookups: Lookups) -> list[Authorization]:
    params = call.params
    if call.operation == "GetParameters" or call.operation == "DeleteParameters":
        return [_on(call, lookups, _action(call), _ssm_arn(call, str(n))) for n in params.get("Names") or []]
    name = params.get("Name") or params.get("Path") or params.get("ResourceId")
    return [_on(call, lookups, _action(call), _ssm_arn(call, str(name)) if name else "*")]


def _secretsmanager(call: Call, lookups: Lookups) -> list[Authorization]:
    secret = call.params.get("SecretId") or call.params.get("Name")
    if not secret:
        return [Authorization(_action(call), "*")]
    return [_on(call, lookups, _action(call), lookups.secret_arn(call, str(secret)))]


def _kms(call: Call, lookups: Lookups) -> list[Authorization]:
    key = call.params.get("KeyId")
    arn = lookups.kms_key_arn(call, str(key)) if key else None
    return [_on(call, lookups, _action(call), arn or "*")]


def _events(call: Call, lookups: Lookups) -> list[Authorization]:
    if call.operation == "PutEvents":
        buses = {str(entry.get("EventBusName") or "default") for entry in call.params.get("Entries") or []}
        return [
            _on(
                call,
                lookups,
                _action(call),
                bus if bus.startswith("arn:") else _arn(call, "events", f"event-bus/{bus}"),
            )
            for bus in sorted(buses or {"default"})
        ]
    name = call.params.get("Name") or call.params.get("Rule")
    if name:
        bus = str(call.params.get("EventBusName") or "default")
        bus = bus.rsplit("/", 1)[-1]
        path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
        return [_on(call, lookups, _action(call), _arn(call, "events", path))]
    return [Authorization(_action(call), "*", _with_request_tags(call, {}))]


def _scheduler(call: Call, lookups: Lookups) -> list[Authorization]:
    name = call.params.get("Name")
    if not name:
        return [Authorization(_action(call), "*")]
    group = call.params.get("GroupName") or "default"
    return [_on(call, lookups, _action(call), _arn(call, "scheduler", f"schedule/{group}/{name}"))]


def _lambda(call: Call, lookups: Lookups) -> list[Authorization]:
    name = str(call.params.get("FunctionName") or "")
    action = f"lambda:{_LAMBDA_ACTIONS.get(call.operation, call.operation)}"
    if not name:
        return [Authorization(action, "*")]
    qualifier = call.params.get("Qualifier")
    if name.startswith("arn:"):
        arn = name
    elif ":" in name:  # 123456789012:function:name or name:qualifier
        parts = name.split(":")
        arn = _arn(call, "lambda", "function:" + ":".join(parts[2:] if "function" in parts else parts))
    else:
        arn = _arn(call, "lambda", f"function:{name}")
    if qualifier and arn.count(":") == 6:
        arn = f"{arn}:{qualifier}"
    return [_on(call, lookups, action, arn)]


def _states(call: Call, lookups: Lookups) -> list[Authorization]:
    arn = call.params.get("executionArn") or call.params.get("stateMachineArn")
    if call.operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        arn = None  # no resource-level permissions: the task token names nothing IAM knows
    return [_on(call, lookups, _action(call), str(arn)) if arn else Authorization(_action(call), "*")]


def _acm(call: Call, lookups: Lookups) -> list[Authorization]:
    arn = call.params.get("CertificateArn")
    return [_on(call, lookups, _action(call), str(arn)) if arn else Authorization(_action(call), "*")]


def _acm_pca(call: Call, lookups: Lookups) -> list[Authorization]:
    # Every Private CA action but Create/List is on the CA; the certificate ARN names it as a prefix.
    arn = call.params.get("CertificateAuthorityArn") or call.params.get("ResourceArn")
    if not arn:
        return [Authorization(_action(call), "*", _with_request_tags(call, {}))]
    return [Authorization(_action(call), str(arn), _with_request_tags(call, {}))]


def _ds(call: Call, lookups: Lookups) -> list[Authorization]:
    directory = call.params.get("DirectoryId")
    if directory and call.operation != "DescribeDirectories":
        return [_on(call, lookups, _action(call), _arn(call, "ds", f"directory/{directory}"))]
    return [Authorization(_action(call), "*")]


def _iam(call: Call, lookups: Lookups) -> list[Authorization]:
    if call.operation == "GetSAMLProvider":
        return [Authorization(_action(call), str(call.params.get("SAMLProviderArn", "*")))]
    if call.operation == "CreateServiceLinkedRole":
        service = str(call.params.get("AWSServiceName", ""))
        names = {
            "clientvpn.amazonaws.com": "AWSServiceRoleForClientVPN",
            "clientvpn-connections.amazonaws.com": "AWSServiceRoleForClientVPNConnections",
        }
        role = names.get(service, "*")
        arn = f"arn:aws:iam::{call.account_id}:role/aws-service-role/{service}/{role}"
        return [Authorization(_action(call), arn, {"iam:AWSServiceName": service})]
    for param, kind in (("RoleName", "role"), ("UserName", "user"), ("PolicyArn", None)):
        value = call.params.get(param)
        if value:
            arn = str(value) if kind is None else f"arn:aws:iam::{call.account_id}:{kind}/{value}"
            return [Authorization(_action(call), arn)]
    return [Authorization(_action(call), "*")]


def _sqs(call: Call, lookups: Lookups) -> list[Authorization]:
    url = str(call.params.get("QueueUrl") or "")
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else call.params.get("QueueName")
    if not name:
        return [Authorization(_action(call), "*")]
    return [Authorization(_action(call), _arn(call, "sqs", str(name)))]


def _securityhub(call: Call, lookups: Lookups) -> list[Authorization]:
    if call.operation == "BatchImportFindings":
        products = sorted(
            {str(f.get("ProductArn")) for f in call.params.get("Findings") or [] if f.get("ProductArn")}
        )
        return [Authorization(_action(call), arn) for arn in products or ["*"]]
    hub = _arn(call, "securityhub", "hub/default")
    return [Authorization(_action(call), hub if call.operation != "EnableSecurityHub" else "*")]


_BY_SERVICE: dict[str, _Builder] = {
    "logs": _logs,
    "s3": _s3,
    "sns": _sns,
    "ssm": _ssm,
    "secretsmanager": _secretsmanager,
    "kms": _kms,
    "events": _events,
    "scheduler": _scheduler,
    "lambda": _lambda,
    "states": _states,
    "acm": _acm,
    "acm-pca": _acm_pca,
    "ds": _ds,
    "iam": _iam,
    "sqs": _sqs,
    "securityhub": _securityhub,
}

_BY_OPERATION: dict[tuple[str, str], _Builder] = {
    **{("ec2", operation): _ec2_endpoint_call for operation in _EC2_ENDPOINT_OPERATIONS},
    ("ec2", "CreateClientVpnEndpoint"): _ec2_create_endpoint,
    ("ec2", "CreateTags"): _ec2_tags,
    ("ec2", "DeleteTags"): _ec2_tags,
    **{
        ("dynamodb", operation): _dynamodb
        for operation in (
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "Query",
            "Scan",
            "DescribeTable",
            "CreateTable",
            "DeleteTable",
            "UpdateTable",
            "DescribeTimeToLive",
            "UpdateTimeToLive",
            "ConditionCheckItem",
        )
    },
    ("dynamodb", "BatchGetItem"): _dynamodb_batch,
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch,
    ("dynamodb", "TransactWriteItems"): _dynamodb_transact,
    ("dynamodb", "TransactGetItems"): _dynamodb_transact,
}

MAPPED_OPERATIONS = frozenset(_BY_OPERATION)
_NO_RESOURCE = re.compile(r"^(Describe|List|Get)")


def mapped_operations() -> dict[str, str]:
    """How each service's calls get their resource, for the README and ``--help``."""
    described = {service: f"every {service} operation, from its parameters" for service in _BY_SERVICE}
    described["ec2"] = "the Client VPN endpoint operations and CreateTags/DeleteTags; other EC2 calls: *"
    described["dynamodb"] = "item, query, scan, batch and transaction operations, tables and indexes"
    return described


def authorizations(call: Call, lookups: Lookups) -> list[Authorization]:
    """The IAM questions ``call`` asks; an unmapped operation asks its action on resource ``*``."""
    builder = _BY_OPERATION.get((call.service, call.operation)) or _BY_SERVICE.get(call.service)
    if builder is None:
        return [Authorization(_action(call), "*", _with_request_tags(call, {}))]
    return builder(call, lookups)


def unmapped(service: str, operation: str) -> bool:
    """Whether ``service``/``operation`` is authorized on ``*`` because no ARN builder maps it."""
    return (service, operation) not in _BY_OPERATION and service not in _BY_SERVICE


def describe_unmapped(calls: Sequence[tuple[str, str]]) -> list[str]:
    """``service:Operation`` of the ``calls`` authorized on ``*`` for want of an ARN builder."""
    return sorted({f"{s}:{o}" for s, o in calls if unmapped(s, o) and not _NO_RESOURCE.match(o)})

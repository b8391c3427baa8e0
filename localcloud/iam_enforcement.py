"""The local cloud refuses what IAM would refuse to the roles it hands out.

``IamEnforcer`` does three things:

- **hands out role credentials**: ``session_for(role_arn, session_name)`` is an STS AssumeRole in the
  local cloud's STS (moto's), so the session shows in ``GetCallerIdentity`` as
  ``arn:aws:sts::<account>:assumed-role/<role>/<session>``. Lambda workers, Step Functions tasks and
  scheduler targets call with such credentials (see :mod:`localcloud.cloud`);
- **authorizes every call signed with assumed-role credentials** (``check(environ)``, the local
  cloud's WSGI middleware calls it before moto sees the request): the call is parsed with moto's
  routers and protocol parsers, turned into IAM questions by :mod:`localcloud.iam_resources` and
  evaluated against the role's current inline and attached policies by :mod:`localcloud.iam_policy`.
  A refused call is answered with the error code, HTTP status and message shape of the real service.
  Calls signed with any other credentials (the test and CLI credentials ``testing``) are unrestricted,
  as an administrator's would be;
- **records** every authorized and refused action per role (``observations()``), for the IAM report
  (``python -m localcloud.iam_report``).

Credentials do not expire locally (Lambda refreshes them on AWS); resource-based policies (bucket,
topic, key, queue, function policies), permission boundaries, SCPs and session policies are not
evaluated.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from localcloud.iam_policy import Decision, RequestContext, evaluate, statement_actions
from localcloud.iam_resources import Authorization, Call, authorizations

__all__ = ["Denial", "IamEnforcer", "RoleSession", "parse_call"]

_log = logging.getLogger(__name__)

# SigV4 service names whose botocore model has another name.
_BOTOCORE_NAMES = {"states": "stepfunctions", "monitoring": "cloudwatch", "email": "ses"}


@dataclass(frozen=True)
class RoleSession:
    """Credentials of one assumed-role session and who they were handed to."""

    role_arn: str
    session_name: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    principal: str  # what runs with it, for the report: "lambda:<function>", "states:<machine>", ...

    @property
    def arn(self) -> str:
        account = self.role_arn.split(":")[4]
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{role_name}/{self.session_name}"

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for a function's execution role."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


@dataclass(frozen=True)
class Denial:
    """A refused call: the question IAM said no to, and why."""

    session: RoleSession
    authorization: Authorization
    decision: Decision
    operation: str
    service: str


class IamEnforcer:
    """Role sessions, authorization of their calls, and what each role was seen doing."""

    def __init__(self, *, region: str, account_id: str, enabled: bool = True) -> None:
        self.region = region
        self.account_id = account_id
        self.enabled = enabled
        self._lock = threading.Lock()
        self._sessions: dict[str, RoleSession] = {}
        self._by_role_session: dict[tuple[str, str], RoleSession] = {}
        self._allowed: dict[str, Counter[str]] = {}
        self._denied: dict[str, Counter[str]] = {}
        self._principals: dict[str, set[str]] = {}
        self._granted: dict[str, list[str]] = {}
        self.denials: list[Denial] = []

    # ------------------------------------------------------------------ sessions
    def session_for(self, role_arn: str, session_name: str, principal: str) -> RoleSession:
        """An assumed-role session of ``role_arn`` (one per role and session name, reused)."""
        from moto.sts.models import sts_backends

        session_name = session_name[:64]
        with self._lock:
            known = self._by_role_session.get((role_arn, session_name))
            if known is not None:
                return known
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else self.account_id
        assumed = sts_backends[account]["aws"].assume_role(
            region_name=self.region,
            role_session_name=session_name,
            role_arn=role_arn,
            policy="",
            duration=43200,
            external_id="",
        )
        session = RoleSession(
            role_arn=role_arn,
            session_name=session_name,
            access_key_id=assumed.access_key_id,
            secret_access_key=assumed.secret_access_key,
            session_token=assumed.session_token,
            principal=principal,
        )
        with self._lock:
            self._sessions[session.access_key_id] = session
            self._by_role_session[(role_arn, session_name)] = session
            self._principals.setdefault(role_arn, set()).add(principal)
        return session

    def session_of_key(self, access_key_id: str) -> RoleSession | None:
        """The session ``access_key_id`` belongs to: one handed out here, or one a caller got from
        the local cloud's STS AssumeRole."""
        with self._lock:
            known = self._sessions.get(access_key_id)
        if known is not None or not access_key_id:
            return known
        from moto.sts.models import sts_backends

        try:
            roles = list(sts_backends[self.account_id]["aws"].assumed_roles)
        except Exception:  # a backend reset mid-lookup: nothing to find
            return None
        for role in roles:
            if role.access_key_id == access_key_id:
                session = RoleSession(
                    role_arn=role.role_arn,
                    session_name=role.session_name,
                    access_key_id=role.access_key_id,
                    secret_access_key=role.secret_access_key,
                    session_token=role.session_token,
                    principal=f"sts:{role.session_name}",
                )
                with self._lock:
                    self._sessions[access_key_id] = session
                    self._principals.setdefault(role.role_arn, set()).add(session.principal)
                return session
        return None

    # ------------------------------------------------------------------ policies
    def role_policies(self, role_arn: str) -> list[dict[str, Any]]:
        """The role's inline and attached policy documents as they are now (none if it is gone)."""
        from moto.iam.models import iam_backends

        account = role_arn.split(":")[4]
        backend = iam_backends[account]["aws"]
        try:
            role = backend.get_role(role_arn.rsplit("/", 1)[-1])
        except Exception:
            return []
        documents: list[dict[str, Any]] = []
        for text in list(role.policies.values()):
            documents.append(_document(text))
        for policy in list(role.managed_policies.values()):
            default = next((v for v in policy.versions if v.is_default), None)
            if default is not None:
                documents.append(_document(default.document))
        return documents

    # ------------------------------------------------------------------ authorization
    def authorize(self, environ: dict[str, Any]) -> Denial | None:
        """The first refused question of the request, or None when it may go on (not signed by a
        role session, enforcement off, or every question allowed). Records what it decided."""
        if not self.enabled:
            return None
        access_key, service, region = _credential_scope(environ)
        session = self.session_of_key(access_key)
        if session is None:
            return None
        try:
            call = parse_call(environ, service, region or self.region, self.account_id)
        except Exception:
            _log.debug("could not parse a %s call of %s", service, session.principal, exc_info=True)
            call = None
        if call is None:
            return None  # not an operation of the service: moto answers it as AWS would
        if f"{call.service}:{call.operation}" == "sts:GetCallerIdentity":
            return None  # always allowed, even under an explicit deny
        from localcloud.iam_lookups import MotoLookups

        questions = authorizations(call, MotoLookups())
        policies = self.role_policies(session.role_arn)
        with self._lock:
            self._granted[session.role_arn] = statement_actions(policies)
        for question in questions:
            decision = evaluate(
                policies, RequestContext(question.action, question.resource, question.context)
            )
            with self._lock:
                bucket = self._allowed if decision is Decision.ALLOWED else self._denied
                bucket.setdefault(session.role_arn, Counter())[question.action] += 1
            if decision is not Decision.ALLOWED:
                denial = Denial(session, question, decision, call.operation, call.service)
                with self._lock:
                    self.denials.append(denial)
                _log.warning(
                    "IAM refused %s on %s to %s (%s)",
                    question.action,
                    question.resource,
                    session.arn,
                    decision.value,
                )
                return denial
        return None

    # ------------------------------------------------------------------ observations
    def observations(self) -> dict[str, Any]:
        """Per role: who ran with it, the actions its policies grant, and the actions it was seen
        doing (allowed and refused, with counts)."""
        with self._lock:
            roles = set(self._principals) | set(self._allowed) | set(self._denied)
            return {
                role: {
                    "principals": sorted(self._principals.get(role, set())),
                    "granted": list(self._granted.get(role) or []),
                    "allowed": dict(self._allowed.get(role, Counter())),
                    "denied": dict(self._denied.get(role, Counter())),
                }
                for role in sorted(roles)
            }

    def record_granted(self) -> None:
        """Read the granted actions of every role a session was handed to (for roles never seen
        calling anything, whose grants are then all unused)."""
        with self._lock:
            roles = list(self._principals)
        for role in roles:
            granted = statement_actions(self.role_policies(role))
            with self._lock:
                if granted or role not in self._granted:
                    self._granted[role] = granted

    def write_recording(self, path: Path) -> None:
        """Merge this run's observations into the JSON recording at ``path`` (created if missing)."""
        self.record_granted()
        merge_recording(path, self.observations())


def merge_recording(path: Path, observations: Mapping[str, Any]) -> None:
    """Add ``observations`` to the recording at ``path``: counts add up, principals and grants union."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        recording: dict[str, Any] = json.loads(text) if text.strip() else {}
        for role, seen in observations.items():
            into = recording.setdefault(role, {"principals": [], "granted": [], "allowed": {}, "denied": {}})
            into["principals"] = sorted(set(into["principals"]) | set(seen["principals"]))
            into["granted"] = list(dict.fromkeys([*into["granted"], *seen["granted"]]))
            for kind in ("allowed", "denied"):
                for action, count in seen[kind].items():
                    into[kind][action] = into[kind].get(action, 0) + count
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(recording, indent=2, sort_keys=True))


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(str(text))
    except ValueError:
        from urllib.parse import unquote

        value = json.loads(unquote(str(text)))
    return value if isinstance(value, dict) else {}


def _credential_scope(environ: Mapping[str, Any]) -> tuple[str, str, str]:
    """(access key id, service, region) of a SigV4 request (header or presigned query)."""
    authorization = str(environ.get("HTTP_AUTHORIZATION") or "")
    scope = ""
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].strip()
    elif "X-Amz-Credential=" in str(environ.get("QUERY_STRING") or ""):
        scope = parse_qs(str(environ["QUERY_STRING"])).get("X-Amz-Credential", [""])[0]
    parts = scope.split("/")  # KEY/DATE/REGION/SERVICE/aws4_request
    if len(parts) < 5:
        return "", "", ""
    return parts[0], parts[3], parts[2]


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for the application."""
    length = str(environ.get("CONTENT_LENGTH") or "0")
    body = environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


@functools.lru_cache(maxsize=64)
def _router(service_name: str) -> Any:
    """moto's operation router of a service, built once (it compiles the service's URL rules)."""
    from moto.core.routing import get_service_router

    return get_service_router(service_name)


def parse_call(environ: dict[str, Any], service: str, region: str, account_id: str) -> Call | None:
    """The operation and parameters of a request, parsed as moto parses it (None if none matches)."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request, determine_request_protocol
    from moto.core.utils import get_service_model

    body = _body(environ)
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    request = Request(copy)
    model = get_service_model(_BOTOCORE_NAMES.get(service, service))
    protocol = determine_request_protocol(model, request.content_type)
    url_params: dict[str, Any] = {}
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if protocol == "json" and target:
        operation = model.operation_model(target.rsplit(".", 1)[-1])
    elif protocol in ("query", "ec2"):
        action = request.values.get("Action")
        if not action:
            return None
        operation = model.operation_model(str(action))
    else:
        operation, url_params = _router(model.service_name).match(request)
    params: dict[str, Any] = dict(url_params)
    if service != "s3":  # S3 bodies are object data; its resources are all in the URL
        parser = PROTOCOL_PARSERS[protocol](operation)
        parsed = parser.parse(
            {
                "method": request.method,
                "values": request.values,
                "headers": request.headers,
                "body": body,
                "url_path": request.path,
                "url_params": url_params,
            }
        )
        params.update(parsed or {})
    return Call(
        service=service, region=region, account_id=account_id, operation=operation.name, params=params
    )


# ---------------------------------------------------------------------------------------- responses


def denial_response(denial: Denial, environ: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error the real service answers for ``denial``: (status, headers, body)."""
    action = denial.authorization.action
    resource = denial.authorization.resource
    reason = (
        "with an explicit deny in an identity-based policy"
        if denial.decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    message = (
        f"User: {denial.session.arn} is not authorized to perform: {action} on resource: {resource} {reason}"
    )
    request_id = str(uuid.uuid4())
    service = denial.service
    from moto.core.utils import get_service_model

    protocol = str(get_service_model(_BOTOCORE_NAMES.get(service, service)).protocol)
    if service == "ec2":
        encoded = _encoded_failure(denial)
        text = (
            f"You are not authorized to perform this operation. {message}. "
            f"Encoded authorization failure message: {encoded}"
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
            f"<Message>{_xml(text)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return 403, [("Content-Type", "text/xml")], body.encode()
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        )
        return 403, [("Content-Type", "application/xml")], body.encode()
    if protocol == "query":
        code, status = ("AuthorizationError", 403) if service == "sns" else ("AccessDenied", 403)
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml")], body.encode()
    if protocol == "rest-json":
        payload = json.dumps({"Type": "User", "message": message}).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", "AccessDeniedException"),
            ("x-amzn-RequestId", request_id),
        ]
        return 403, headers, payload
    code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
    payload = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return (
        400 if service != "sqs" else 403,
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", request_id),
        ],
        payload,
    )


def _encoded_failure(denial: Denial) -> str:
    """EC2's encoded authorization failure message (AWS encrypts it for sts:DecodeAuthorizationMessage;
    here it is the same JSON, base64-encoded, so a test or a person can read it)."""
    document = {
        "allowed": False,
        "explicitDeny": denial.decision is Decision.EXPLICIT_DENY,
        "context": {
            "principal": {"arn": denial.session.arn},
            "action": denial.authorization.action,
            "resource": denial.authorization.resource,
            "conditions": {
                "items": [{"key": k, "values": v} for k, v in denial.authorization.context.items()]
            },
        },
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# ------------------------------------------------------------------------------------- Step Functions

_SFN_CLIENT_MODULES = tuple(
    "moto.stepfunctions.parser.asl." + name
    for name in (
        "component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
        "component.state.exec.state_map.item_reader.eval.resource_eval_s3",
        "component.state.exec.state_task.lambda_eval_utils",
        "component.state.exec.state_task.service.state_task_service_unsupported",
        "component.state.exec.state_task.service.state_task_service_glue",
        "component.state.exec.state_task.service.state_task_service_events",
        "component.state.exec.state_task.service.state_task_service_ecs",
        "component.state.exec.state_task.service.state_task_service_sqs",
        "component.state.exec.state_task.service.state_task_service_sfn",
        "component.state.exec.state_task.service.state_task_service_dynamodb",
        "component.state.exec.state_task.service.state_task_service_batch",
        "component.state.exec.state_task.service.state_task_service_sns",
        "component.state.exec.state_task.service.state_task_service_aws_sdk",
    )
)
_sfn_lock = threading.Lock()
_sfn_original: Any = None
_sfn_enforcer: IamEnforcer | None = None


def _execution_of_caller() -> tuple[str, str] | None:
    """(state machine ARN, execution name) of the ASL evaluation that is asking for a client: the
    interpreter passes its ``env`` down every call, so the nearest frame holding one knows."""
    import sys

    frame = sys._getframe(2)
    while frame is not None:
        env = frame.f_locals.get("env")
        states = getattr(env, "states", None)
        context = getattr(getattr(states, "context_object", None), "context_object_data", None)
        if isinstance(context, dict) and "StateMachine" in context:
            machine = context["StateMachine"].get("Id")
            execution = (context.get("Execution") or {}).get("Name") or "execution"
            return (str(machine), str(execution)) if machine else None
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _state_machine_role(state_machine_arn: str) -> str | None:
    from moto.stepfunctions.responses import get_backend

    parts = state_machine_arn.split(":")
    try:
        machine = get_backend(parts[4], parts[3]).describe_state_machine(state_machine_arn)
    except Exception:
        return None
    return str(getattr(machine, "roleArn", "") or getattr(machine, "role_arn", "") or "") or None


def _boto_client_with_role(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's ASL client factory, signing with the executing state machine's role (or the role a
    task's ``Credentials`` names) instead of anonymous keys."""
    enforcer = _sfn_enforcer
    if enforcer is None or not enforcer.enabled:
        return _reused_client(region, service, state_credentials, None)
    caller = _execution_of_caller()
    task_role = getattr(state_credentials, "role_arn", None)
    role = task_role or (caller and _state_machine_role(caller[0]))
    if not role:
        return _reused_client(region, service, state_credentials, None)
    machine_name = caller[0].rsplit(":", 1)[-1] if caller else "task"
    session = enforcer.session_for(str(role), caller[1] if caller else "states", f"states:{machine_name}")
    return _reused_client(region, service, state_credentials, session)


# Making a boto3 client costs tens of milliseconds of the interpreter's time, and moto makes a new one
# for every task state: an execution's tasks (same service, same role session) share one instead.
# Clients are safe to share between threads; the oldest is dropped past a few executions' worth.
_CLIENTS_KEPT = 64
_clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_clients_lock = threading.Lock()


def _reused_client(region: str, service: str, state_credentials: Any, session: RoleSession | None) -> Any:
    from moto.stepfunctions.parser.asl.utils import boto_client

    if state_credentials is not None and session is None:
        return _sfn_original(region, service, state_credentials)  # not ours to key: as moto does
    key = (
        region,
        service,
        boto_client.botocore_stubber.enabled,
        boto_client.moto_server_port(),
        session.access_key_id if session else None,
    )
    with _clients_lock:
        known = _clients.get(key)
        if known is not None:
            _clients.move_to_end(key)
            return known
    client = _sfn_original(region, service, state_credentials)
    if session is not None:
        import boto3

        client = boto3.client(  # type: ignore[call-overload]
            service_name=service,
            region_name=region,
            endpoint_url=client.meta.endpoint_url,
            aws_access_key_id=session.access_key_id,
            aws_secret_access_key=session.secret_access_key,
            aws_session_token=session.session_token,
            config=client.meta.config,
        )
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > _CLIENTS_KEPT:
            _clients.popitem(last=False)
    return client


def install_stepfunctions_roles(enforcer: IamEnforcer | None) -> None:
    """Make Step Functions tasks call with their state machine's role (``None``: as moto does)."""
    import importlib

    global _sfn_original, _sfn_enforcer
    with _sfn_lock:
        _sfn_enforcer = enforcer
        with _clients_lock:
            _clients.clear()  # a new cloud: sessions and connections of the last one are gone
        if _sfn_original is not None:
            return
        from moto.stepfunctions.parser.asl.utils import boto_client

        _sfn_original = boto_client.boto_client_for
        for name in _SFN_CLIENT_MODULES:
            module = importlib.import_module(name)
            if getattr(module, "boto_client_for", None) is _sfn_original:
                module.boto_client_for = _boto_client_with_role  # type: ignore[attr-defined]

"""The local cloud as one object: embedded AWS on loopback, Lambda runtimes, gateway and scheduler.

``LocalCloud`` starts moto's server application in a thread on 127.0.0.1, extended with the Client VPN
API, real Lambda runtime processes, and an admin API under ``/_localcloud/`` (clock, faults, simulated
client connections). Every service keeps the one emulated clock (:mod:`localcloud.moto_clock`,
:mod:`localcloud.logs`, :mod:`localcloud.presigned`, :mod:`localcloud.stepfunctions`). ``deploy()``
brings up a SAM template on it, then serves the template's HTTP API and schedules.

Every AWS API call the embedded AWS serves is counted by service and operation
(``LocalCloud.api_calls()``, ``GET /_localcloud/api-calls``; see ``ApiCallCounter``).

Processes the local cloud runs (Lambda functions) reach it through ``AWS_ENDPOINT_URL``, exactly as
they would reach AWS through the default endpoints. With ``iam`` on (the default) each function calls
with credentials of an STS AssumeRole of its execution role, Step Functions tasks with their state
machine's role, scheduler targets with their target's role, and every call made with such credentials
is authorized against the role's policies (:mod:`localcloud.iam_enforcement`); calls signed with the
fake credentials (tests, the CLI) stay unrestricted. ``iam=False`` gives every process the fake
credentials and authorizes nothing.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import boto3
from botocore.config import Config

from localcloud.clock import Clock, get_clock, set_clock

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

    from localcloud.gateway import HttpGateway
    from localcloud.iam_enforcement import IamEnforcer
    from localcloud.lambdaruntime import LambdaRuntime
    from localcloud.oidc import LocalOidcIssuer
    from localcloud.scheduler import Scheduler
    from localcloud.stack import DeployedStack

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "FAKE_CREDENTIALS",
    "ApiCallCounter",
    "LocalCloud",
    "free_port",
]

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
ADMIN_PREFIX = "/_localcloud/"


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AdminError(Exception):
    """A bad admin request: answered 400 with the message."""


class ApiCallCounter:
    """Counts AWS API calls as ``"service:Operation"`` (thread-safe; the server is threaded).

    - service: the SigV4 credential scope's service (``Authorization: AWS4-HMAC-SHA256
      Credential=KEY/DATE/REGION/SERVICE/aws4_request``, or ``X-Amz-Credential`` of a SigV4 presigned
      URL; ``states`` for Step Functions), ``"unknown"`` otherwise (unsigned, SigV2);
    - operation, by protocol: JSON protocols (DynamoDB, Logs, Step Functions, Events, Secrets Manager,
      SSM, SQS JSON) the ``X-Amz-Target`` header after its last dot (``DynamoDB_20120810.PutItem`` ->
      ``PutItem``); query protocols (EC2, SNS, IAM, STS, SQS query) the ``Action`` parameter of the
      query string or of a form-encoded body; REST protocols (S3, Lambda, ...) the method and the path
      as sent (``POST /2015-03-31/functions/NAME/invocations``): one key per resource, kept simple.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, environ: dict[str, Any]) -> str:
        """Count the request ``environ`` describes and return its key. A form body read to find its
        ``Action`` is put back for the application."""
        key = f"{_service_of(environ)}:{_operation_of(environ)}"
        with self._lock:
            self._counts[key] += 1
        return key

    def counts(self) -> dict[str, int]:
        """Calls per ``"service:Operation"`` since the last reset."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def _service_of(environ: dict[str, Any]) -> str:
    authorization = str(environ.get("HTTP_AUTHORIZATION") or "")
    scope = ""
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].strip()
    elif "X-Amz-Credential=" in str(environ.get("QUERY_STRING") or ""):
        scope = parse_qs(str(environ["QUERY_STRING"])).get("X-Amz-Credential", [""])[0]
    parts = scope.split("/")  # KEY/DATE/REGION/SERVICE/aws4_request
    return parts[3] if len(parts) >= 5 and parts[3] else "unknown"


def _operation_of(environ: dict[str, Any]) -> str:
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target:
        return target.rsplit(".", 1)[-1]
    query = str(environ.get("QUERY_STRING") or "")
    if "Action=" in query:
        action = parse_qs(query).get("Action", [""])[0]
        if action:
            return action
    method = str(environ.get("REQUEST_METHOD") or "GET")
    content_type = str(environ.get("CONTENT_TYPE") or "")
    if method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
        length = str(environ.get("CONTENT_LENGTH") or "0")
        body = environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action", [""])[0]
        if action:
            return action
    return f"{method} {environ.get('PATH_INFO') or '/'}"


@dataclass
class _AdminRoute:
    method: str
    path: str
    handler: Callable[[dict[str, Any]], Any]


@dataclass
class LocalCloud:
    """An embedded AWS on loopback. Use as a context manager or call ``start()`` / ``stop()``."""

    port: int = 0
    api_port: int = 0
    time_scale: float = 60.0
    region: str = DEFAULT_REGION
    work_dir: Path | None = None
    fault_seed: int | None = None
    verbose: bool = False
    oidc_port: int = 0
    stacks: dict[str, DeployedStack] = field(default_factory=dict)
    # IAM enforcement; default on, off when $LOCALCLOUD_IAM is "off" (debugging a test suite).
    iam: bool = field(default_factory=lambda: os.environ.get("LOCALCLOUD_IAM", "on").lower() != "off")
    # Where the IAM observations of this run are merged at stop() (the IAM report reads it); default
    # $LOCALCLOUD_IAM_RECORDING, none when unset.
    iam_recording: Path | None = None

    def __post_init__(self) -> None:
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._previous_clock: Clock | None = None
        self._previous_env: dict[str, str | None] = {}
        self._owns_work_dir = False
        self.runtime: LambdaRuntime | None = None
        self.oidc: LocalOidcIssuer | None = None
        self.gateway: HttpGateway | None = None
        self.scheduler: Scheduler | None = None
        self.iam_enforcer: IamEnforcer | None = None
        self.clock = Clock(time_scale=self.time_scale)
        self._api_call_counter = ApiCallCounter()
        self._admin_routes = self._build_admin_routes()

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str | None:
        return self.gateway.base_url if self.gateway is not None else None

    def start(self) -> LocalCloud:
        """Configure moto, install the extensions and serve on loopback."""
        from moto.core.config import default_user_config
        from werkzeug.serving import make_server

        from localcloud import (
            acmpca,
            clientvpn,
            custom_ids,
            dynamodb_atomic,
            eventbridge,
            lambdaruntime,
            logs,
            moto_clock,
            sns,
            stepfunctions,
        )
        from localcloud.faults import FaultInjector, set_fault_injector
        from localcloud.presigned import expiring_presigned_urls

        if self._server is not None:
            return self
        if not self.verbose:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="localcloud-"))
            self._owns_work_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()

        self._previous_clock = get_clock()
        set_clock(self.clock)
        # moto's state is process-wide: a new local cloud starts empty, whatever ran before it.
        from moto.core.base_backend import BackendDict

        BackendDict.reset()
        set_fault_injector(FaultInjector(seed=self.fault_seed))

        default_user_config["lambda"] = {"use_docker": False}
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        # The ASL interpreter's own SDK clients call localhost:$MOTO_PORT in server mode.
        self._set_env({"MOTO_PORT": str(self.port), **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region})

        moto_clock.install()
        dynamodb_atomic.install()
        logs.install()
        sns.install()
        clientvpn.install()
        acmpca.install()
        custom_ids.install()
        stepfunctions.install()
        eventbridge.install()
        self.runtime = lambdaruntime.LambdaRuntime(
            base_environment={
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **FAKE_CREDENTIALS,
            },
            work_dir=self.work_dir / "lambda",
        )
        lambdaruntime.install(self.runtime, cloudwatch_logs=True)
        self._start_iam()

        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        moto_app = expiring_presigned_urls(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1",
            self.port,
            self._admin_middleware(moto_app),
            threaded=True,
            request_handler=_emulated_date_handler(MotoRequestHandler),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="localcloud-aws", daemon=True)
        self._thread.start()
        # A sign-in issuer on loopback for templates whose HTTP API has a JWT authorizer.
        from localcloud.oidc import LocalOidcIssuer

        self.oidc = LocalOidcIssuer(port=self.oidc_port).start()
        return self

    def _start_iam(self) -> None:
        from localcloud.iam_enforcement import IamEnforcer, install_stepfunctions_roles

        enforcer = IamEnforcer(region=self.region, account_id=DEFAULT_ACCOUNT_ID, enabled=self.iam)
        self.iam_enforcer = enforcer
        install_stepfunctions_roles(enforcer)
        assert self.runtime is not None
        if self.iam:
            # As Lambda does: the function's name is the session name of its execution role.
            self.runtime.credentials_provider = lambda name, role: enforcer.session_for(
                role, name, f"lambda:{name}"
            ).environment()
        if self.iam_recording is None and os.environ.get("LOCALCLOUD_IAM_RECORDING"):
            self.iam_recording = Path(os.environ["LOCALCLOUD_IAM_RECORDING"])

    def role_credentials(self, role_arn: str, session_name: str, principal: str) -> dict[str, str] | None:
        """Credentials of ``role_arn`` for a process the local cloud runs on a template's behalf
        (None with IAM enforcement off: the caller keeps the fake credentials)."""
        if self.iam_enforcer is None or not self.iam:
            return None
        return self.iam_enforcer.session_for(role_arn, session_name, principal).environment()

    def _stop_serving_stacks(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    def stop(self) -> None:
        """Stop serving, end every Lambda process and restore the process environment."""
        from localcloud import lambdaruntime

        self._stop_serving_stacks()
        self._stop_iam()
        if self.oidc is not None:
            self.oidc.stop()
            self.oidc = None
        if self.runtime is not None:
            lambdaruntime.uninstall()
            self.runtime.shutdown()
            self.runtime = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for name, value in self._previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._previous_env = {}
        if self._previous_clock is not None:
            set_clock(self._previous_clock)
            self._previous_clock = None
        if self._owns_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _stop_iam(self) -> None:
        from localcloud.iam_enforcement import install_stepfunctions_roles

        enforcer, self.iam_enforcer = self.iam_enforcer, None
        if enforcer is None:
            return
        install_stepfunctions_roles(None)
        if self.iam_recording is not None:
            try:
                enforcer.write_recording(self.iam_recording)
            except OSError as error:
                logging.getLogger(__name__).warning("could not write %s: %s", self.iam_recording, error)

    def reset(self) -> None:
        """Forget every resource (moto's state, Client VPN included) and every deployed stack."""
        from moto.core.base_backend import BackendDict

        from localcloud.faults import get_fault_injector

        self._stop_serving_stacks()
        BackendDict.reset()
        get_fault_injector().clear()
        self.stacks.clear()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._previous_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # ------------------------------------------------------------------ clients
    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for this local cloud (fake credentials unless given, standard retries)."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=kwargs.pop("region_name", self.region),
            endpoint_url=self.endpoint_url,
            aws_access_key_id=kwargs.pop("aws_access_key_id", FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]),
            aws_secret_access_key=kwargs.pop(
                "aws_secret_access_key", FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
            ),
            aws_session_token=kwargs.pop("aws_session_token", FAKE_CREDENTIALS["AWS_SESSION_TOKEN"]),
            config=kwargs.pop("config", Config(retries={"mode": "standard", "max_attempts": 3})),
            **kwargs,
        )

    # ------------------------------------------------------------------ API calls
    def api_calls(self) -> dict[str, int]:
        """Every AWS API call served since start (or the last ``reset_api_calls()``), keyed
        ``"service:Operation"`` (e.g. ``"dynamodb:PutItem"``, ``"logs:FilterLogEvents"``,
        ``"ec2:DescribeVpcs"``); see ``ApiCallCounter`` for how REST calls are named."""
        return self._api_call_counter.counts()

    def reset_api_calls(self) -> None:
        """Start counting AWS API calls from zero (the Client VPN counts of ``localcloud.faults`` are
        separate and kept)."""
        self._api_call_counter.reset()

    # ------------------------------------------------------------------ deploy
    def deploy(
        self,
        template_path: Path | str,
        *,
        stack_name: str = "cvpn-autopilot",
        parameter_overrides: dict[str, str] | None = None,
        serve: bool = True,
    ) -> DeployedStack:
        """Deploy a SAM template, then serve its HTTP API and schedules on this local cloud."""
        from localcloud.deploy import deploy_stack
        from localcloud.gateway import HttpGateway
        from localcloud.scheduler import Scheduler

        assert self.work_dir is not None, "start() the local cloud first"
        stack = deploy_stack(
            Path(template_path),
            stack_name=stack_name,
            endpoint_url=self.endpoint_url,
            region=self.region,
            parameter_overrides=self._local_parameters(Path(template_path), parameter_overrides),
            build_dir=self.work_dir / "build" / stack_name,
        )
        self.stacks[stack_name] = stack
        if serve:
            if self.gateway is None:
                self.gateway = HttpGateway(
                    endpoint_url=self.endpoint_url, region=self.region, port=self.api_port
                )
                self.gateway.role_credentials = self.role_credentials
                self.gateway.start()
                self.api_port = self.gateway.port
            self.gateway.add_stack(stack)
            if self.scheduler is None:
                self.scheduler = Scheduler(endpoint_url=self.endpoint_url, region=self.region)
                self.scheduler.role_credentials = self.role_credentials
                self.scheduler.start()
            self.scheduler.add_stack(stack)
        return stack

    def _local_parameters(self, template_path: Path, overrides: dict[str, str] | None) -> dict[str, str]:
        """The caller's overrides, plus the local sign-in issuer for the template's OIDC parameters
        (``OidcIssuerUrl``/``OidcAudience``) when it declares them and the caller did not set them."""
        from localcloud.sam import load_template

        values = dict(overrides or {})
        if self.oidc is not None:
            declared = set(load_template(template_path).get("Parameters") or {})
            for name, value in self.oidc.template_parameters().items():
                if name in declared:
                    values.setdefault(name, value)
        return values

    # ------------------------------------------------------------------ admin API
    def _build_admin_routes(self) -> list[_AdminRoute]:
        return [
            _AdminRoute("GET", "health", lambda _body: self.describe()),
            _AdminRoute("POST", "clock", self._admin_clock),
            _AdminRoute("GET", "faults", lambda _body: self._faults().to_dict()),
            _AdminRoute("POST", "faults", self._admin_faults),
            _AdminRoute("DELETE", "faults", self._admin_clear_faults),
            _AdminRoute("POST", "connect", self._admin_connect),
            _AdminRoute("POST", "disconnect", self._admin_disconnect),
            _AdminRoute("GET", "api-calls", lambda _body: self._api_calls()),
            _AdminRoute("GET", "iam", lambda _body: self.iam_observations()),
        ]

    def iam_observations(self) -> dict[str, Any]:
        """Per role: who ran with it, what its policies grant and which actions it was seen doing
        (allowed and refused, with counts); empty with IAM enforcement off."""
        if self.iam_enforcer is None:
            return {}
        self.iam_enforcer.record_granted()
        return self.iam_enforcer.observations()

    def describe(self) -> dict[str, Any]:
        """What is running: endpoints, time scale, emulated now and deployed stacks."""
        return {
            "endpoint_url": self.endpoint_url,
            "api_url": self.api_url,
            "oidc_issuer_url": self.oidc.issuer_url if self.oidc is not None else None,
            "region": self.region,
            "iam": "on" if self.iam else "off",
            "time_scale": self.clock.time_scale,
            "now": self.clock.now().isoformat(),
            "stacks": {name: stack.outputs for name, stack in self.stacks.items()},
        }

    @staticmethod
    def _faults() -> Any:
        from localcloud.faults import get_fault_injector

        return get_fault_injector()

    def _admin_clock(self, body: dict[str, Any]) -> dict[str, Any]:
        if "time_scale" in body:
            try:
                self.clock.time_scale = float(body["time_scale"])
            except (TypeError, ValueError) as error:
                raise AdminError(f"time_scale: {error}") from error
        if "advance_seconds" in body:
            try:
                self.clock.advance(float(body["advance_seconds"]))
            except (TypeError, ValueError) as error:
                raise AdminError(f"advance_seconds: {error}") from error
        return {"time_scale": self.clock.time_scale, "now": self.clock.now().isoformat()}

    def _admin_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST faults``: ``{"operation", knobs...}``, and/or ``{"seed": N}`` to reseed."""
        seed = body.pop("seed", None)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise AdminError(f"seed: a whole number, got {seed!r}")
        operation = body.pop("operation", None)
        if operation is None and body:
            raise AdminError(f"operation: required with {', '.join(sorted(body))}, e.g. CreateClientVpnRoute")
        if operation is None and seed is None:
            raise AdminError("operation: required, the API operation name, e.g. CreateClientVpnRoute")
        if operation is not None and (not isinstance(operation, str) or not operation):
            raise AdminError("operation: the API operation name, e.g. CreateClientVpnRoute")
        try:
            if operation is not None:
                self._faults().configure(operation, **body)
        except (TypeError, ValueError) as error:
            raise AdminError(str(error)) from error
        if seed is not None:
            self._faults().reseed(seed)
        return dict(self._faults().to_dict())

    def _admin_clear_faults(self, _body: dict[str, Any]) -> dict[str, Any]:
        self._faults().clear()
        return dict(self._faults().to_dict())

    def _admin_connect(self, body: dict[str, Any]) -> dict[str, Any]:
        from localcloud.clientvpn import connections

        endpoint_id = body.pop("endpoint_id", None)
        if not isinstance(endpoint_id, str) or not endpoint_id:
            raise AdminError("endpoint_id: required, e.g. cvpn-endpoint-0123456789abcdef0")
        account_id = str(body.pop("account_id", DEFAULT_ACCOUNT_ID))
        region = str(body.pop("region", self.region))
        try:
            result = connections.simulate_connect_by_id(account_id, region, endpoint_id, **body)
        except TypeError as error:
            raise AdminError(str(error)) from error
        return _as_json(result)

    def _admin_disconnect(self, body: dict[str, Any]) -> dict[str, Any]:
        from localcloud.clientvpn import connections
        from localcloud.clientvpn.models import clientvpn_backends

        endpoint_id = body.get("endpoint_id")
        connection_id = body.get("connection_id")
        if not endpoint_id or not connection_id:
            raise AdminError("endpoint_id and connection_id: both required")
        backend = clientvpn_backends[str(body.get("account_id", DEFAULT_ACCOUNT_ID))][
            str(body.get("region", self.region))
        ]
        endpoint = backend.get_endpoint(endpoint_id)
        return _as_json(connections.simulate_disconnect(endpoint, connection_id))

    def _api_calls(self) -> dict[str, int]:
        """``GET api-calls``: the Client VPN calls by bare operation name (``localcloud.faults``, as
        before), merged with every AWS call by ``"service:Operation"`` (``api_calls()``). The keys
        cannot clash (only the second kind has a colon); the Client VPN calls appear in both kinds,
        so add up only one kind."""
        from localcloud.faults import api_call_counts

        return {**api_call_counts(), **self.api_calls()}

    def _admin_middleware(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        from localcloud.iam_enforcement import denial_response

        routes = {(route.method, route.path): route for route in self._admin_routes}
        counter = self._api_call_counter

        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path: str = environ.get("PATH_INFO", "")
            if not path.startswith(ADMIN_PREFIX):
                key = counter.count(environ)
                enforcer = self.iam_enforcer
                denial = enforcer.authorize(environ) if enforcer is not None else None
                if denial is not None:
                    status, headers, payload = denial_response(denial, environ)
                    reason = "Forbidden" if status == 403 else "Bad Request"
                    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(payload)))])
                    return [payload]
                fault = _service_fault(environ, key)
                if fault is not None:
                    faulted = _apply_service_fault(fault, environ, start_response)
                    if faulted is not None:
                        return faulted
                return app(environ, start_response)
            method = environ.get("REQUEST_METHOD", "GET")
            route = routes.get((method, path[len(ADMIN_PREFIX) :].strip("/")))
            if route is None:
                return _respond(start_response, 404, {"message": f"no admin route {method} {path}"})
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                raw = environ["wsgi.input"].read(length) if length else b""
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise AdminError("body: must be a JSON object")
                return _respond(start_response, 200, route.handler(body))
            except (AdminError, json.JSONDecodeError) as error:
                return _respond(start_response, 400, {"message": str(error)})
            except Exception as error:  # an AWS-style error from a backend: keep its code
                code = getattr(error, "code", None) or type(error).__name__
                message = getattr(error, "message", None) or str(error)
                status = int(getattr(error, "code_status", 0) or getattr(error, "status_code", 0) or 400)
                return _respond(start_response, status, {"code": code, "message": message})

        return middleware


def _service_fault(environ: dict[str, Any], key: str) -> Any:
    """The injected fault of a JSON-protocol call (``X-Amz-Target``), if any (``localcloud.faults``)."""
    if not environ.get("HTTP_X_AMZ_TARGET"):
        return None
    from localcloud.faults import get_fault_injector

    return get_fault_injector().service_fault(key)


def _apply_service_fault(
    fault: Any, environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes] | None:
    """Wait as ``fault`` says, then answer its error or its unprocessed keys; None: answer normally."""
    if fault.latency_seconds:
        time.sleep(fault.latency_seconds)  # real time: what an SDK's socket timeouts measure
    content_type = str(environ.get("CONTENT_TYPE") or "application/x-amz-json-1.0")
    if fault.error_code:
        body = {"__type": f"com.amazonaws.localcloud#{fault.error_code}", "message": fault.error_message}
        return _respond_as(start_response, fault.error_status, body, content_type)
    if fault.unprocessed_keys:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b"{}"
        request = json.loads(raw or b"{}")
        return _respond_as(
            start_response,
            200,
            {"Responses": {}, "UnprocessedKeys": request.get("RequestItems", {})},
            content_type,
        )
    return None


def _respond_as(start_response: Callable[..., Any], status: int, body: Any, content_type: str) -> list[bytes]:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", uuid.uuid4().hex),
        ],
    )
    return [payload]


def _as_json(value: Any) -> Any:
    """Dataclasses (their plain fields; model objects they point at are left out) into JSON values."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        plain = (str, int, float, bool, dict, list, tuple, type(None))
        value = {
            f.name: getattr(value, f.name) for f in fields(value) if isinstance(getattr(value, f.name), plain)
        }
    return json.loads(json.dumps(value, default=str))


def _respond(start_response: Callable[..., Any], status: int, body: Any) -> list[bytes]:
    payload = json.dumps(body, default=str).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _emulated_date_handler(base: type[Any]) -> type[Any]:
    """``base`` answering with a ``Date`` on the emulated clock, as an AWS service dates its answers
    by its own time (werkzeug's server would stamp the machine's): a function that judges expiries by
    the service's time (the client-connect handler) then sees the time the services run on."""

    class EmulatedDateRequestHandler(base):  # type: ignore[misc, valid-type]
        def date_time_string(self, timestamp: float | None = None) -> str:
            return str(super().date_time_string(get_clock().timestamp() if timestamp is None else timestamp))

    return EmulatedDateRequestHandler

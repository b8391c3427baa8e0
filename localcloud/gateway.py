"""The local cloud's API Gateway for HTTP APIs (moto's CloudFormation skips AWS::ApiGatewayV2::*).

``parse_http_apis`` reads the routes of every ``AWS::ApiGatewayV2::Api`` in the transformed template:
SAM's OpenAPI ``Body`` (paths with ``x-amazon-apigateway-integration``, security schemes with
``x-amazon-apigateway-authorizer``), explicit ``AWS::ApiGatewayV2::Route`` / ``Integration`` /
``Authorizer`` resources, and quick-create ``Target`` APIs.

``HttpGateway`` serves them on ``127.0.0.1:<port>``: it matches a route as API Gateway does (exact
method before ANY, literal segments before ``{param}``, ``{proxy+}`` greedy, ``$default`` last),
builds the payload format 2.0 event, invokes the function through the Lambda API of the local cloud
and maps the result back (``statusCode``/``headers``/``cookies``/``body``/``isBase64Encoded``, or a
bare JSON value as 200 ``application/json``; a function error is 500; no route is 404; a body over
10 MB is 413). An API with a CORS configuration gets API Gateway's CORS handling: preflights are
answered by the gateway (before any authorizer) and responses carry the configured headers. Routes
with a JWT authorizer go through a ``JwtVerifier`` (401 on a missing or invalid token, 403 when the
route's scopes are not granted).

Several APIs share one port: a request whose Host starts with an API's id goes to that API; otherwise
the first API (template order) with a matching non-default route answers, then the first ``$default``.
Only payload format 2.0 is emulated; a 1.0 integration answers 500 and says so in the log.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config

from localcloud.clock import get_clock
from localcloud.stack import CorsConfig, DeployedStack, HttpApi, HttpRoute, JwtAuthorizerConfig

__all__ = [
    "MAX_REQUEST_BYTES",
    "CorsConfig",
    "DefaultJwtVerifier",
    "HttpApi",
    "HttpGateway",
    "HttpRoute",
    "JwtAuthorizerConfig",
    "JwtVerificationError",
    "JwtVerifier",
    "parse_http_apis",
]

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # HTTP API payload quota
ACCESS_LOG_HISTORY = 1000  # access log entries kept in memory (each is also logged)
_HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")
_ANY_METHOD_KEY = "x-amazon-apigateway-any-method"
_FUNCTION_ARN = re.compile(r"(arn:[^:/]+:lambda:[^:/]+:\d+:function:[^/]+?)(?:/invocations)?$")
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded|graphql))", re.I
)


# ---------------------------------------------------------------------------------------------------
# Reading routes from the transformed template


def _function_arn(uri: Any) -> str | None:
    if not isinstance(uri, str):
        return None
    match = _FUNCTION_ARN.search(uri)
    return match.group(1) if match else None


def _jwt_config(name: str, authorizer: Mapping[str, Any]) -> JwtAuthorizerConfig | None:
    if str(authorizer.get("type", "")).lower() != "jwt":
        return None
    jwt_configuration = authorizer.get("jwtConfiguration") or {}
    audience = jwt_configuration.get("audience") or []
    identity_source = authorizer.get("identitySource") or "$request.header.Authorization"
    if isinstance(identity_source, list):
        identity_source = identity_source[0]
    return JwtAuthorizerConfig(
        name=name,
        issuer=str(jwt_configuration.get("issuer", "")),
        audience=tuple(str(value) for value in (audience if isinstance(audience, list) else [audience])),
        identity_source=str(identity_source),
    )


def _routes_from_body(body: Mapping[str, Any], resolve: Callable[[Any], Any]) -> list[HttpRoute]:
    schemes = (body.get("components") or {}).get("securitySchemes") or {}
    authorizers = {
        name: config
        for name, scheme in schemes.items()
        if (config := _jwt_config(name, resolve(scheme.get("x-amazon-apigateway-authorizer") or {})))
    }
    default_security = body.get("security") or []
    routes: list[HttpRoute] = []
    for raw_path, operations in (body.get("paths") or {}).items():
        path = "$default" if raw_path in ("$default", "/$default") else raw_path
        for method_key, operation in (operations or {}).items():
            if method_key != _ANY_METHOD_KEY and method_key not in _HTTP_METHODS:
                continue
            integration = operation.get("x-amazon-apigateway-integration") or {}
            authorizer, scopes = None, ()
            for requirement in operation.get("security", default_security) or []:
                for scheme_name, scheme_scopes in requirement.items():
                    if scheme_name in authorizers:
                        authorizer, scopes = authorizers[scheme_name], tuple(scheme_scopes or ())
            routes.append(
                HttpRoute(
                    method="ANY" if method_key == _ANY_METHOD_KEY else method_key.upper(),
                    path=path,
                    function_arn=_function_arn(resolve(integration.get("uri"))),
                    payload_format_version=str(integration.get("payloadFormatVersion", "2.0")),
                    authorizer=authorizer,
                    scopes=scopes,
                    credentials_arn=_optional(resolve(integration.get("credentials"))),
                )
            )
    return routes


def _optional(value: Any) -> str | None:
    return str(value) if value else None


def _route_from_key(route_key: str) -> tuple[str, str]:
    if route_key == "$default":
        return "ANY", "$default"
    method, _, path = route_key.partition(" ")
    return method.upper(), path


def parse_http_apis(
    template: Mapping[str, Any], resolve: Callable[[Any], Any], physical_ids: Mapping[str, str]
) -> list[HttpApi]:
    """The HTTP APIs of a transformed template with their routes resolved against the stack."""
    resources: Mapping[str, Any] = template.get("Resources") or {}
    by_physical = {physical: logical for logical, physical in physical_ids.items()}

    def owner(properties: Mapping[str, Any]) -> str | None:
        api_id = resolve(properties.get("ApiId"))
        return by_physical.get(str(api_id))

    apis: dict[str, HttpApi] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::ApiGatewayV2::Api":
            continue
        properties = resource.get("Properties") or {}
        api = HttpApi(logical_id=logical_id, api_id=physical_ids[logical_id], stage="$default")
        cors = properties.get("CorsConfiguration")
        if isinstance(properties.get("Body"), dict):
            api.routes.extend(_routes_from_body(properties["Body"], resolve))
            cors = properties["Body"].get("x-amazon-apigateway-cors") or cors
        if isinstance(cors, dict):
            api.cors = CorsConfig.parse(resolve(cors))
        if properties.get("Target"):
            method, path = _route_from_key(str(properties.get("RouteKey", "$default")))
            api.routes.append(HttpRoute(method, path, _function_arn(resolve(properties["Target"]))))
        apis[logical_id] = api

    stages: dict[str, list[str]] = {}
    integrations: dict[str, Mapping[str, Any]] = {}
    authorizers: dict[str, JwtAuthorizerConfig] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        resource_type = resource.get("Type")
        if resource_type == "AWS::ApiGatewayV2::Stage" and (api_logical := owner(properties)):
            stages.setdefault(api_logical, []).append(str(properties.get("StageName", "$default")))
        elif resource_type == "AWS::ApiGatewayV2::Integration":
            integrations[physical_ids[logical_id]] = properties
        elif resource_type == "AWS::ApiGatewayV2::Authorizer":
            config = _jwt_config(
                str(properties.get("Name", logical_id)),
                {
                    "type": properties.get("AuthorizerType"),
                    "identitySource": properties.get("IdentitySource"),
                    "jwtConfiguration": {
                        "issuer": resolve((properties.get("JwtConfiguration") or {}).get("Issuer", "")),
                        "audience": resolve((properties.get("JwtConfiguration") or {}).get("Audience", [])),
                    },
                },
            )
            if config:
                authorizers[physical_ids[logical_id]] = config
    for api_logical, names in stages.items():
        if api_logical in apis and "$default" not in names:
            apis[api_logical].stage = names[0]
    for resource in resources.values():
        if resource.get("Type") != "AWS::ApiGatewayV2::Route":
            continue
        properties = resource.get("Properties") or {}
        api_logical = owner(properties)
        if api_logical not in apis:
            continue
        target = str(resolve(properties.get("Target", "")))
        integration = integrations.get(target.removeprefix("integrations/"), {})
        method, path = _route_from_key(str(resolve(properties.get("RouteKey"))))
        authorizer = None
        if str(properties.get("AuthorizationType", "NONE")).upper() == "JWT":
            authorizer = authorizers.get(str(resolve(properties.get("AuthorizerId"))))
        apis[api_logical].routes.append(
            HttpRoute(
                method=method,
                path=path,
                function_arn=_function_arn(resolve(integration.get("IntegrationUri"))),
                payload_format_version=str(integration.get("PayloadFormatVersion", "2.0")),
                authorizer=authorizer,
                scopes=tuple(properties.get("AuthorizationScopes") or ()),
                credentials_arn=_optional(resolve(integration.get("CredentialsArn"))),
            )
        )
    return list(apis.values())


# ---------------------------------------------------------------------------------------------------
# JWT authorizers


class JwtVerificationError(Exception):
    """The token is missing, malformed, badly signed, expired or not for this API."""


class JwtVerifier(Protocol):
    """Extension point for JWT authorizers: return the token's claims or raise JwtVerificationError."""

    def verify(self, token: str, config: JwtAuthorizerConfig) -> dict[str, Any]: ...


class DefaultJwtVerifier:
    """Validates signature (JWKS), issuer, audience (``aud`` or ``client_id``), ``exp`` and ``nbf``.

    Keys come from ``jwks`` (a JWKS dict), else ``jwks_url``, else the issuer's OpenID discovery
    document (``{issuer}/.well-known/openid-configuration``), as API Gateway does. ``exp`` and ``nbf``
    are checked against ``now()``, by default the local cloud's emulated clock, which the local OIDC
    issuer stamps its tokens with. A token from an issuer outside the local cloud carries the machine's
    time, so it is refused once the emulated clock has run past its ``exp`` (run the local cloud at time
    scale 1, without advancing it, to use one).
    """

    def __init__(
        self,
        *,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        leeway_seconds: int = 0,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._jwks = dict(jwks) if jwks is not None else None
        self._jwks_url = jwks_url
        self._leeway = leeway_seconds
        self._now = now or (lambda: get_clock().timestamp())
        self._fetched: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _key_set(self, issuer: str) -> dict[str, Any]:
        if self._jwks is not None:
            return self._jwks
        url = self._jwks_url
        with self._lock:
            if url is None:
                discovery = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
                url = str(_fetch_json(discovery)["jwks_uri"])
            if url not in self._fetched:
                self._fetched[url] = _fetch_json(url)
            return self._fetched[url]

    def verify(self, token: str, config: JwtAuthorizerConfig) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        try:
            key_set = KeySet.import_key_set(self._key_set(config.issuer))  # type: ignore[arg-type]
            claims: dict[str, Any] = dict(jwt.decode(token, key_set).claims)
        except (JoseError, ValueError, KeyError, OSError) as error:
            raise JwtVerificationError(f"token rejected: {error}") from error
        now = self._now()
        if claims.get("iss") != config.issuer:
            raise JwtVerificationError(f"issuer {claims.get('iss')!r} is not {config.issuer!r}")
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        if "client_id" in claims:
            audiences.append(claims["client_id"])
        if config.audience and not set(audiences) & set(config.audience):
            raise JwtVerificationError(f"audience {audiences} not in {list(config.audience)}")
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or expiry + self._leeway <= now:
            raise JwtVerificationError("token expired or without exp")
        not_before = claims.get("nbf")
        if isinstance(not_before, int | float) and not_before - self._leeway > now:
            raise JwtVerificationError("token not valid yet")
        return claims


def _fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


def _token_scopes(claims: Mapping[str, Any]) -> list[str]:
    scope = claims.get("scope", claims.get("scp", []))
    return scope.split() if isinstance(scope, str) else [str(item) for item in scope]


def _claims_as_strings(claims: Mapping[str, Any]) -> dict[str, str]:
    """API Gateway passes claims as strings; arrays look like ``[a b]``."""
    return {
        key: f"[{' '.join(str(item) for item in value)}]" if isinstance(value, list) else str(value)
        for key, value in claims.items()
    }


# ---------------------------------------------------------------------------------------------------
# The HTTP server


@dataclass(frozen=True)
class GatewayResponse:
    """What the gateway sends back to the client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(status: int, message: str) -> GatewayResponse:
    body = json.dumps({"message": message}).encode()
    return GatewayResponse(status, [("content-type", "application/json")], body)


class HttpGateway:
    """Serves HTTP APIs on loopback, invoking their Lambda integrations through ``endpoint_url``.

    APIs come from deployed stacks (``add_stack``; a redeploy replaces that stack's APIs while the
    server keeps its port) or directly from ``http_apis``.
    """

    def __init__(
        self,
        http_apis: list[HttpApi] | None = None,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        host: str = "127.0.0.1",
        port: int = 0,
        jwt_verifier: JwtVerifier | None = None,
    ) -> None:
        self._apis_by_stack: dict[str, list[HttpApi]] = {"": list(http_apis or [])}
        self._apis_lock = threading.Lock()
        self.region = region
        self.account_id = account_id
        self.jwt_verifier: JwtVerifier = jwt_verifier or DefaultJwtVerifier()
        self.access_log: deque[dict[str, Any]] = deque(maxlen=ACCESS_LOG_HISTORY)
        self._lambda = boto3.session.Session(region_name=region).client(
            "lambda", endpoint_url=endpoint_url, config=Config(read_timeout=900, retries={"max_attempts": 0})
        )
        self._endpoint_url = endpoint_url
        # (role ARN, session name, principal) -> credentials of a route's CredentialsArn, or None;
        # set by the local cloud when it enforces IAM.
        self.role_credentials: Callable[[str, str, str], Mapping[str, str] | None] | None = None
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the gateway."""
        host = self._server.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"

    @property
    def http_apis(self) -> list[HttpApi]:
        """Every API served, in the order the stacks were added."""
        with self._apis_lock:
            return [api for apis in self._apis_by_stack.values() for api in apis]

    def add_stack(self, stack: DeployedStack) -> None:
        """Serve the HTTP APIs of ``stack`` (replacing those of an earlier deploy of the same stack)."""
        with self._apis_lock:
            self._apis_by_stack[stack.stack_name] = list(stack.http_apis)

    def remove_stack(self, stack_name: str) -> None:
        """Stop serving the APIs of ``stack_name``."""
        with self._apis_lock:
            self._apis_by_stack.pop(stack_name, None)

    def api_url(self, api: HttpApi) -> str:
        """The local base URL of ``api`` (with the stage prefix unless the stage is ``$default``)."""
        return self.base_url if api.stage == "$default" else f"{self.base_url}/{api.stage}"

    def api_urls(self) -> dict[str, str]:
        """Local base URL of every served API, by logical id."""
        return {api.logical_id: self.api_url(api) for api in self.http_apis}

    def _lambda_for(self, route: HttpRoute) -> Any:
        """The Lambda client a route invokes with: its integration's role when it has one."""
        provider = self.role_credentials
        credentials = (
            provider(route.credentials_arn, "apigateway", f"apigateway:{route.route_key}")
            if provider is not None and route.credentials_arn
            else None
        )
        if not credentials:
            return self._lambda
        return boto3.session.Session(region_name=self.region).client(
            "lambda",
            endpoint_url=self._endpoint_url,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials["AWS_SESSION_TOKEN"],
            config=Config(read_timeout=900, retries={"max_attempts": 0}),
        )

    def start(self) -> HttpGateway:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="localcloud-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> HttpGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling ---------------------------------------------------------------------------

    def _select(
        self, host: str, method: str, path: str
    ) -> tuple[HttpApi, HttpRoute, dict[str, str], str] | None:
        host_api_id = host.split(".", 1)[0].split(":", 1)[0]
        apis = self.http_apis
        preferred = [api for api in apis if api.api_id == host_api_id] or apis
        fallback: tuple[HttpApi, HttpRoute, dict[str, str], str] | None = None
        for api in preferred:
            stage_path = path
            if api.stage != "$default":
                prefix = f"/{api.stage}"
                if path != prefix and not path.startswith(prefix + "/"):
                    continue
                stage_path = path[len(prefix) :] or "/"
            found = api.find_route(method, stage_path)
            if found is None:
                continue
            route, parameters = found
            if route.path != "$default":
                return api, route, parameters, stage_path
            fallback = fallback or (api, route, parameters, stage_path)
        return fallback

    def _cors_api(self, host: str, method: str, path: str) -> HttpApi | None:
        """The API a CORS decision belongs to: the one routing the request, else the first with CORS."""
        selected = self._select(host, method, path)
        if selected is not None:
            return selected[0]
        return next((api for api in self.http_apis if api.cors is not None), None)

    def handle(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> GatewayResponse:
        """Answer one request (the HTTP server calls this; tests may too)."""
        request_id = str(uuid.uuid4())
        started = get_clock().now()
        split = urlsplit(raw_path)
        path = split.path or "/"
        lowered: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
        origin = lowered.get("origin")
        preflight_method = lowered.get("access-control-request-method")
        cors_api = self._cors_api(lowered.get("host", ""), preflight_method or method, path)
        selected = self._select(lowered.get("host", ""), method, path)
        route_key = "-"
        if method == "OPTIONS" and origin and preflight_method and cors_api and cors_api.cors:
            # With CORS configured, API Gateway answers preflights itself, routes or not.
            response = GatewayResponse(204, cors_api.cors.preflight_headers(origin), b"")
            route_key = "CORS preflight"
        elif selected is None:
            response = _json_response(404, "Not Found")
        elif len(body) > MAX_REQUEST_BYTES:
            response = _json_response(413, "Request Entity Too Large")
        else:
            api, route, parameters, _stage_path = selected
            route_key = route.route_key
            response = self._dispatch(
                api, route, parameters, method, path, split.query, lowered, body, source_ip, request_id
            )
        if cors_api and cors_api.cors and route_key != "CORS preflight":
            # API Gateway replaces the integration's CORS headers with the configured ones.
            response.headers[:] = [
                (name, value)
                for name, value in response.headers
                if not name.lower().startswith("access-control-")
            ]
            response.headers.extend(cors_api.cors.response_headers(origin))
        response.headers.append(("apigw-requestid", request_id))
        entry = {
            "requestId": request_id,
            "ip": source_ip,
            "requestTime": started.isoformat(),
            "httpMethod": method,
            "path": path,
            "routeKey": route_key,
            "status": response.status,
            "responseLength": len(response.body),
        }
        self.access_log.append(entry)
        logger.info("%s %s %s -> %s (%s)", method, path, route_key, response.status, request_id)
        return response

    def _dispatch(
        self,
        api: HttpApi,
        route: HttpRoute,
        parameters: dict[str, str],
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> GatewayResponse:
        authorizer_context: dict[str, Any] | None = None
        if route.authorizer is not None:
            token = _identity(route.authorizer, headers, query)
            if not token:
                return _json_response(401, "Unauthorized")
            try:
                claims = self.jwt_verifier.verify(token, route.authorizer)
            except JwtVerificationError as error:
                logger.info("JWT rejected on %s: %s", route.route_key, error)
                return _json_response(401, "Unauthorized")
            scopes = _token_scopes(claims)
            if route.scopes and not set(route.scopes) & set(scopes):
                return _json_response(403, "Forbidden")
            authorizer_context = {"jwt": {"claims": _claims_as_strings(claims), "scopes": scopes or None}}
        if route.function_arn is None:
            logger.error("route %s has no Lambda integration the local cloud can invoke", route.route_key)
            return _json_response(500, "Internal Server Error")
        if route.payload_format_version != "2.0":
            logger.error(
                "route %s uses payload format %s; only 2.0 is emulated",
                route.route_key,
                route.payload_format_version,
            )
            return _json_response(500, "Internal Server Error")
        event = self._event(
            api,
            route,
            parameters,
            method,
            path,
            query,
            headers,
            body,
            source_ip,
            request_id,
            authorizer_context,
        )
        try:
            result = self._lambda_for(route).invoke(
                FunctionName=route.function_arn, Payload=json.dumps(event).encode()
            )
        except Exception:
            logger.exception("invoking %s for %s failed", route.function_arn, route.route_key)
            return _json_response(500, "Internal Server Error")
        payload = result["Payload"].read()
        if result.get("FunctionError"):
            logger.error("function %s failed: %s", route.function_arn, payload[:2000])
            return _json_response(500, "Internal Server Error")
        return _map_lambda_result(payload)

    def _event(
        self,
        api: HttpApi,
        route: HttpRoute,
        parameters: dict[str, str],
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str,
        request_id: str,
        authorizer_context: dict[str, Any] | None,
    ) -> dict[str, Any]:
        now = get_clock().now()
        event_headers = {key: value for key, value in headers.items() if key != "cookie"}
        query_parameters: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            query_parameters[key] = f"{query_parameters[key]},{value}" if key in query_parameters else value
        request_context: dict[str, Any] = {
            "accountId": self.account_id,
            "apiId": api.api_id,
            "domainName": headers.get("host", f"{api.api_id}.execute-api.{self.region}.amazonaws.com"),
            "domainPrefix": headers.get("host", api.api_id).split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": api.stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if authorizer_context is not None:
            request_context["authorizer"] = authorizer_context
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": event_headers,
            "requestContext": request_context,
            "isBase64Encoded": False,
        }
        if "cookie" in headers:
            event["cookies"] = [
                cookie.strip() for cookie in re.split(r"[;,]", headers["cookie"]) if cookie.strip()
            ]
        if query_parameters:
            event["queryStringParameters"] = query_parameters
        if parameters:
            event["pathParameters"] = parameters
        if body:
            content_type = headers.get("content-type", "")
            if _TEXT_TYPES.match(content_type):
                try:
                    event["body"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
            else:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event


def _identity(config: JwtAuthorizerConfig, headers: Mapping[str, str], query: str) -> str | None:
    source = config.identity_source
    if source.startswith("$request.header."):
        value = headers.get(source.removeprefix("$request.header.").lower())
    elif source.startswith("$request.querystring."):
        value = dict(parse_qsl(query)).get(source.removeprefix("$request.querystring."))
    else:
        value = None
    if not value:
        return None
    return value[7:].strip() if value.lower().startswith("bearer ") else value.strip()


def _map_lambda_result(payload: bytes) -> GatewayResponse:
    """Map a function's response as API Gateway does for payload format 2.0."""
    try:
        result = json.loads(payload) if payload else None
    except ValueError:
        return GatewayResponse(200, [("content-type", "application/json")], payload)
    if not isinstance(result, dict) or "statusCode" not in result:
        return GatewayResponse(200, [("content-type", "application/json")], payload)
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return _json_response(500, "Internal Server Error")
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw_body))
    else:
        body = (raw_body if isinstance(raw_body, str) else json.dumps(raw_body)).encode()
    if not any(name.lower() == "content-type" for name, _ in headers) and body:
        headers.append(("content-type", "application/json"))
    return GatewayResponse(status, headers, body)


def _make_handler(gateway: HttpGateway) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "localcloud-gateway"

        def _read_body(self) -> bytes | None:
            """The request body, or None when it exceeds MAX_REQUEST_BYTES (chunked bodies included)."""
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                chunks: list[bytes] = []
                total = 0
                while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                    total += size
                    if total > MAX_REQUEST_BYTES:
                        return None
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # CRLF after the chunk
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES:
                return None
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            body = self._read_body()
            if body is None:
                response = _json_response(413, "Request Entity Too Large")
                self.close_connection = True
            else:
                response = gateway.handle(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("gateway: " + format, *args)

    return _Handler

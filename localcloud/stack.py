"""What a deployed stack is, as the local cloud's services see it: its functions, HTTP APIs (routes,
authorizers, CORS) and schedules, read from the transformed template by ``deploy``, served by
``gateway`` and ``scheduler``. A model only: it imports none of them, so they import it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CorsConfig",
    "DeployedStack",
    "FunctionInfo",
    "HttpApi",
    "HttpRoute",
    "JwtAuthorizerConfig",
    "ScheduleSpec",
    "ScheduleTarget",
]


@dataclass(frozen=True)
class JwtAuthorizerConfig:
    """A JWT authorizer of an HTTP API."""

    name: str
    issuer: str
    audience: tuple[str, ...]
    identity_source: str = "$request.header.Authorization"


@dataclass(frozen=True)
class CorsConfig:
    """An HTTP API's CORS configuration (API Gateway answers preflights and sets the headers)."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> CorsConfig:
        """From the OpenAPI ``x-amazon-apigateway-cors`` or the ``CorsConfiguration`` property."""
        lowered = {key[0].lower() + key[1:]: value for key, value in config.items()}

        def names(key: str) -> tuple[str, ...]:
            value = lowered.get(key) or []
            return tuple(str(item) for item in (value if isinstance(value, list) else [value]))

        max_age = lowered.get("maxAge")
        return cls(
            allow_origins=names("allowOrigins"),
            allow_methods=names("allowMethods"),
            allow_headers=names("allowHeaders"),
            expose_headers=names("exposeHeaders"),
            max_age=int(max_age) if max_age is not None else None,
            allow_credentials=bool(lowered.get("allowCredentials", False)),
        )

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for ``origin``, or None when it is not allowed."""
        if not origin:
            return None
        if origin in self.allow_origins:
            return origin
        return "*" if "*" in self.allow_origins else None

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """CORS headers for an actual (non-preflight) response."""
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return []
        headers = [("access-control-allow-origin", allowed)]
        if self.expose_headers:
            headers.append(("access-control-expose-headers", ",".join(self.expose_headers)))
        if self.allow_credentials:
            headers.append(("access-control-allow-credentials", "true"))
        return headers

    def preflight_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """CORS headers for a preflight answer."""
        headers = self.response_headers(origin)
        if not headers:
            return []
        if self.allow_methods:
            headers.append(("access-control-allow-methods", ",".join(self.allow_methods)))
        if self.allow_headers:
            headers.append(("access-control-allow-headers", ",".join(self.allow_headers)))
        if self.max_age is not None:
            headers.append(("access-control-max-age", str(self.max_age)))
        return headers


@dataclass(frozen=True)
class HttpRoute:
    """One route: ``method`` is upper-case or ``ANY``; ``path`` is ``$default`` or ``/a/{b}/{proxy+}``."""

    method: str
    path: str
    function_arn: str | None
    payload_format_version: str = "2.0"
    authorizer: JwtAuthorizerConfig | None = None
    scopes: tuple[str, ...] = ()
    # The integration's CredentialsArn: API Gateway invokes with this role instead of through the
    # function's resource-based policy.
    credentials_arn: str | None = None

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when the route matches ``method`` and ``path``, else None."""
        if self.path == "$default":
            return {}
        if self.method not in ("ANY", method):
            return None
        template = [segment for segment in self.path.split("/") if segment]
        actual = [segment for segment in path.split("/") if segment]
        parameters: dict[str, str] = {}
        for index, segment in enumerate(template):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = actual[index:]
                if not rest:
                    return None
                parameters[segment[1:-2]] = "/".join(rest)
                return parameters
            if index >= len(actual):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                parameters[segment[1:-1]] = actual[index]
            elif segment != actual[index]:
                return None
        return parameters if len(actual) == len(template) else None

    def specificity(self) -> tuple[int, int, int]:
        """Sort key: more literal segments, no greedy segment, and a specific method win."""
        segments = [segment for segment in self.path.split("/") if segment]
        literals = sum(1 for segment in segments if not segment.startswith("{"))
        greedy = any(segment.endswith("+}") for segment in segments)
        return (literals, 0 if greedy else 1, 0 if self.method == "ANY" else 1)


@dataclass
class HttpApi:
    """An HTTP API of the deployed stack."""

    logical_id: str
    api_id: str
    stage: str
    routes: list[HttpRoute] = field(default_factory=list)
    cors: CorsConfig | None = None

    def find_route(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The best matching non-default route, else the ``$default`` route, else None."""
        candidates = [
            (route, parameters)
            for route in self.routes
            if route.path != "$default" and (parameters := route.match(method, path)) is not None
        ]
        if candidates:
            return max(candidates, key=lambda candidate: candidate[0].specificity())
        default = next((route for route in self.routes if route.path == "$default"), None)
        return (default, {}) if default else None


@dataclass(frozen=True)
class ScheduleTarget:
    """Where a schedule delivers, and how its payload is shaped."""

    arn: str
    target_id: str = ""
    input: str | None = None
    input_path: str | None = None
    input_transformer: Mapping[str, Any] | None = None
    role_arn: str | None = None  # the role the service assumes to deliver (RoleArn of the target)


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule of the deployed stack."""

    logical_id: str
    name: str
    kind: str  # "events-rule" or "scheduler"
    expression: str
    enabled: bool
    arn: str
    targets: tuple[ScheduleTarget, ...]
    timezone: str = "UTC"


@dataclass(frozen=True)
class FunctionInfo:
    """A deployed Lambda function."""

    logical_id: str
    name: str
    arn: str


@dataclass
class DeployedStack:
    """What ``deploy_stack`` brought up; everything is read from the template and the stack."""

    stack_name: str
    region: str
    account_id: str
    endpoint_url: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    functions: dict[str, FunctionInfo]
    state_machines: dict[str, str]
    http_apis: list[HttpApi]
    schedules: list[ScheduleSpec]
    template: dict[str, Any]
    ignored_resources: dict[str, str] = field(default_factory=dict)

    def function_name(self, logical_id: str) -> str:
        """The physical name of the function with ``logical_id``."""
        return self.functions[logical_id].name

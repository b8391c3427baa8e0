"""Route selection and response mapping of the local HTTP API gateway (no server needed)."""

from __future__ import annotations

import json
from typing import Any

from localcloud.gateway import HttpApi, HttpRoute, _map_lambda_result, parse_http_apis

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:f"


def _api(*routes: HttpRoute) -> HttpApi:
    return HttpApi(logical_id="Api", api_id="abc123defg", stage="$default", routes=list(routes))


def test_specific_routes_win_over_parameters_greedy_any_and_default() -> None:
    api = _api(
        HttpRoute("ANY", "$default", FUNCTION),
        HttpRoute("ANY", "/files/{proxy+}", FUNCTION),
        HttpRoute("GET", "/files/{name}", FUNCTION),
        HttpRoute("GET", "/files/readme", FUNCTION),
        HttpRoute("ANY", "/files/readme", FUNCTION),
    )

    def route_key(method: str, path: str) -> str:
        found = api.find_route(method, path)
        assert found is not None
        return found[0].route_key

    assert route_key("GET", "/files/readme") == "GET /files/readme"
    assert route_key("POST", "/files/readme") == "ANY /files/readme"
    assert route_key("GET", "/files/other") == "GET /files/{name}"
    assert route_key("GET", "/files/a/b") == "ANY /files/{proxy+}"
    assert route_key("GET", "/elsewhere") == "$default"
    assert api.find_route("GET", "/files/a/b") == (api.routes[1], {"proxy": "a/b"})


def test_no_route_and_no_default_means_not_found() -> None:
    api = _api(HttpRoute("GET", "/hello/{name}", FUNCTION))
    assert api.find_route("GET", "/hello") is None
    assert api.find_route("POST", "/hello/ada") is None


def test_explicit_apigatewayv2_resources_are_read() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "HTTP", "Name": "a"}},
            "Stage": {
                "Type": "AWS::ApiGatewayV2::Stage",
                "Properties": {"ApiId": {"Ref": "Api"}, "StageName": "prod"},
            },
            "Integration": {
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {
                    "ApiId": {"Ref": "Api"},
                    "IntegrationType": "AWS_PROXY",
                    "IntegrationUri": {"Fn::GetAtt": ["Fn", "Arn"]},
                    "PayloadFormatVersion": "2.0",
                },
            },
            "Authorizer": {
                "Type": "AWS::ApiGatewayV2::Authorizer",
                "Properties": {
                    "ApiId": {"Ref": "Api"},
                    "AuthorizerType": "JWT",
                    "Name": "jwt",
                    "IdentitySource": ["$request.header.Authorization"],
                    "JwtConfiguration": {"Issuer": "https://issuer", "Audience": ["client"]},
                },
            },
            "Route": {
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {
                    "ApiId": {"Ref": "Api"},
                    "RouteKey": "POST /requests",
                    "Target": {"Fn::Join": ["/", ["integrations", {"Ref": "Integration"}]]},
                    "AuthorizationType": "JWT",
                    "AuthorizerId": {"Ref": "Authorizer"},
                    "AuthorizationScopes": ["vpn/request"],
                },
            },
        }
    }
    physical = {"Api": "api1", "Stage": "prod", "Integration": "int1", "Authorizer": "auth1", "Fn": "f"}

    def resolve(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return physical[node["Ref"]]
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return FUNCTION
        if isinstance(node, dict) and "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return separator.join(str(resolve(part)) for part in parts)
        return node

    (api,) = parse_http_apis(template, resolve, physical)
    assert (api.api_id, api.stage) == ("api1", "prod")
    (route,) = api.routes
    assert (route.route_key, route.function_arn, route.scopes) == (
        "POST /requests",
        FUNCTION,
        ("vpn/request",),
    )
    assert route.authorizer is not None and route.authorizer.audience == ("client",)


def test_lambda_results_map_as_api_gateway_does() -> None:
    bare = _map_lambda_result(json.dumps({"ok": True}).encode())
    assert (bare.status, bare.body, ("content-type", "application/json") in bare.headers) == (
        200,
        b'{"ok": true}',
        True,
    )
    shaped = _map_lambda_result(
        json.dumps(
            {
                "statusCode": 201,
                "headers": {"x-id": "1"},
                "body": "aGk=",
                "isBase64Encoded": True,
                "cookies": ["a=1"],
            }
        ).encode()
    )
    assert (shaped.status, shaped.body) == (201, b"hi")
    assert ("x-id", "1") in shaped.headers and ("set-cookie", "a=1") in shaped.headers
    broken = _map_lambda_result(json.dumps({"statusCode": "not-a-number"}).encode())
    assert (broken.status, json.loads(broken.body)) == (500, {"message": "Internal Server Error"})

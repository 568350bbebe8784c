"""The local HTTP API's API Gateway behaviour: route selection, the payload v2 event,
the response mapping and the caller identity."""

from __future__ import annotations

import base64
import json

import pytest

from local.http_api import RouteTable, build_v2_event, caller_from, response_from_v2_result
from local.template import HttpRoute


def route(method: str, path: str, authorizer: str | None = "AWS_IAM") -> HttpRoute:
    return HttpRoute(api_id="jobsapi", method=method, path=path, function="Fn", authorizer=authorizer)


ROUTES = [
    route("POST", "/jobs"),
    route("GET", "/jobs"),
    route("GET", "/jobs/{jobId}"),
    route("GET", "/jobs/special"),
    route("ANY", "/files/{path+}"),
]


@pytest.mark.parametrize(
    ("method", "path", "route_key", "params"),
    [
        ("GET", "/jobs", "GET /jobs", {}),
        ("POST", "/jobs", "POST /jobs", {}),
        ("GET", "/jobs/job_1", "GET /jobs/{jobId}", {"jobId": "job_1"}),
        ("GET", "/jobs/special", "GET /jobs/special", {}),  # a literal path beats a variable
        ("GET", "/jobs/a%20b", "GET /jobs/{jobId}", {"jobId": "a b"}),
        ("PUT", "/files/a/b/c", "ANY /files/{path+}", {"path": "a/b/c"}),
    ],
)
def test_routes_are_selected_like_api_gateway(method, path, route_key, params) -> None:
    found = RouteTable(ROUTES).match(method, path.replace("%20", " "))

    assert found is not None
    assert (found[0].route_key, found[1]) == (route_key, params)


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/jobs"), ("GET", "/nope"), ("GET", "/jobs/a/b")])
def test_unknown_routes_do_not_match(method, path) -> None:
    assert RouteTable(ROUTES).match(method, path) is None


def test_v2_event_has_api_gateways_shape() -> None:
    event = build_v2_event(
        route=route("GET", "/jobs/{jobId}"),
        path_parameters={"jobId": "job_1"},
        method="GET",
        raw_path="/jobs/job_1",
        raw_query="a=1&a=2&b=",
        headers=[("Host", "127.0.0.1:3000"), ("Cookie", "s=1; t=2"), ("X-Multi", "1"), ("x-multi", "2")],
        body=b"",
        source_ip="127.0.0.1",
        now=1795316400.123,
        request_id="req",
    )

    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /jobs/{jobId}"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["s=1", "t=2"]
    assert "cookie" not in event["headers"] and event["headers"]["x-multi"] == "1,2"
    assert event["pathParameters"] == {"jobId": "job_1"}
    assert event["isBase64Encoded"] is False and "body" not in event
    context = event["requestContext"]
    assert context["stage"] == "$default" and context["routeKey"] == event["routeKey"]
    assert context["http"] == {
        "method": "GET",
        "path": "/jobs/job_1",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert context["timeEpoch"] == 1795316400123
    assert context["time"] == "22/Nov/2026:03:00:00 +0000"
    assert context["authorizer"]["iam"]["userArn"] == "arn:aws:iam::123456789012:user/local"


def test_binary_bodies_are_base64_and_text_bodies_are_not() -> None:
    common = {
        "route": route("POST", "/jobs"),
        "path_parameters": {},
        "method": "POST",
        "raw_path": "/jobs",
        "raw_query": "",
        "source_ip": "127.0.0.1",
    }
    text = build_v2_event(**common, headers=[("Content-Type", "application/json")], body=b'{"a": 1}')
    binary = build_v2_event(**common, headers=[("Content-Type", "image/jpeg")], body=b"\xff\xd8")

    assert (text["body"], text["isBase64Encoded"]) == ('{"a": 1}', False)
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\xff\xd8", True)


def test_caller_is_the_sigv4_access_key_or_local() -> None:
    signed = {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDALICE/20261122/us-east-1/execute-api/aws4_request"
    }

    alice = caller_from(signed, "")
    presigned = caller_from(
        {}, "X-Amz-Credential=AKIDBOB%2F20261122%2Fus-east-1%2Fexecute-api%2Faws4_request"
    )

    assert alice.authorizer_context()["iam"]["userArn"] == "arn:aws:iam::123456789012:user/AKIDALICE"
    assert alice.authorizer_context()["iam"]["accessKey"] == "AKIDALICE"
    assert presigned.access_key == "AKIDBOB"
    assert caller_from({}, "").user_arn == "arn:aws:iam::123456789012:user/local"
    assert alice.user_id != presigned.user_id


def test_open_routes_have_no_authorizer() -> None:
    event = build_v2_event(
        route=route("GET", "/health", authorizer=None),
        path_parameters={},
        method="GET",
        raw_path="/health",
        raw_query="",
        headers=[],
        body=b"",
        source_ip="127.0.0.1",
    )

    assert "authorizer" not in event["requestContext"]


def test_v2_response_is_mapped_back() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Id": "1"},
        "cookies": ["a=1", "b=2"],
        "body": '{"ok": true}',
    }

    status, headers, body = response_from_v2_result(json.dumps(result).encode(), None)

    assert status == 201 and body == b'{"ok": true}'
    assert ("X-Id", "1") in headers
    assert [v for n, v in headers if n == "Set-Cookie"] == ["a=1", "b=2"]


def test_base64_response_body_is_decoded() -> None:
    result = {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}

    assert response_from_v2_result(json.dumps(result).encode(), None)[2] == b"\x00\x01"


def test_bare_value_is_a_200_json_response() -> None:
    status, headers, body = response_from_v2_result(b'{"jobs": []}', None)

    assert (status, body) == (200, b'{"jobs": []}')
    assert ("Content-Type", "application/json") in headers


def test_function_error_is_a_500_like_api_gateway() -> None:
    status, _, body = response_from_v2_result(b'{"errorType": "KeyError"}', "Unhandled")

    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})

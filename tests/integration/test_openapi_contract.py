"""The committed OpenAPI document (docs/openapi.json, ``make openapi``) is kept true by
schemathesis against local mode over real HTTP: every operation, with valid and invalid
inputs, gets only documented status codes, JSON bodies that match the documented schemas,
no server error, and invalid inputs are rejected with a 4xx.

Bounded and reproducible for CI: a fixed number of examples per operation, no deadline
(local mode shares two busy cores), derandomized. Requests carry a SigV4-style
Authorization header naming a caller of this module's own, so the jobs created here never
show up in other tests' job lists (jobs are owner-scoped; local mode takes the caller from
the access key id without verifying the signature).

Requests a generator seldom reaches (bodies that are not JSON or not UTF-8, methods the API
does not route, fields sized to break a DynamoDB item) have tests of their own below.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "openapi.json"
CALLER = f"AKIACONTRACT{uuid.uuid4().hex[:8].upper()}"
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={CALLER}/20260101/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
UNROUTED_METHODS = ("TRACE", "QUERY", "PUT", "PATCH")


schema = schemathesis.openapi.from_path(SPEC)
# The SigV4 header is ours to send (AUTHORIZATION): local mode does not verify IAM and
# takes unsigned requests as a default caller (local/README.md), so generated or omitted
# Authorization headers would only test local mode, not the API.
schema.config.generation.update(with_security_parameters=False)


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_the_committed_openapi_document(case: schemathesis.Case, runtime) -> None:
    response = case.call_and_validate(
        base_url=runtime.api_url, headers={"Authorization": AUTHORIZATION}, checks=CHECKS, timeout=30
    )
    if case.path == "/jobs/{jobId}" and case.method.upper() in ("GET", "DELETE"):
        # a generated id is never a job (of this caller): documented 404, the API's error body
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "JobNotFound", response.text


@pytest.mark.parametrize("method", UNROUTED_METHODS)
def test_a_method_the_api_does_not_route_is_api_gateways_404(runtime, method: str) -> None:
    response = requests.request(
        method, runtime.api_url + "/jobs", headers={"Authorization": AUTHORIZATION}, timeout=30
    )
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})  # API Gateway's own


def create_job(runtime, body: bytes, content_type: str) -> requests.Response:
    headers = {"Content-Type": content_type, "Authorization": AUTHORIZATION}
    return requests.post(runtime.api_url + "/jobs", data=body, headers=headers, timeout=30)


def assert_api_error(response: requests.Response, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]["code"], response.text


def test_multipart_body_without_boundary_is_415(runtime) -> None:
    assert_api_error(create_job(runtime, b"{}", "multipart/form-data"), 415)


def test_json_body_that_is_not_utf8_is_a_client_error(runtime) -> None:
    assert_api_error(create_job(runtime, b'{"filename": "\xff"}', "application/json"), 400)


def test_unsupported_media_type_gets_the_api_error_body(runtime) -> None:
    assert_api_error(create_job(runtime, b"filename=a.jpg", "text/plain"), 415)


@pytest.mark.parametrize(
    "body",
    [{"metadata": {"note": "x" * 450_000}}, {"params": {"classes": list(range(100_000))}}],
    ids=["long-metadata-value", "long-classes-list"],
)
def test_oversized_fields_are_400(runtime, body: dict) -> None:
    assert_api_error(create_job(runtime, json.dumps(body).encode(), "application/json"), 400)

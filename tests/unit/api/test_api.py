"""ApiFunction handler against moto in-process (no network): routes, validation, ownership."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.template import Stack

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "tests" / "events"
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"


class FakeContext:
    function_name = "ApiFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch):
    """The real handler with its env, table and bucket created from template.yaml."""
    stack = Stack(ROOT / "template.yaml")
    env = stack.function("ApiFunction").environment
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "test")
    with mock_aws():
        for logical_id in stack.resources_of_type("AWS::DynamoDB::Table"):
            table = stack.resources[logical_id]["Properties"]
            boto3.client("dynamodb").create_table(
                TableName=stack.physical_name(logical_id),
                KeySchema=table["KeySchema"],
                AttributeDefinitions=table["AttributeDefinitions"],
                BillingMode=table["BillingMode"],
                **(
                    {"GlobalSecondaryIndexes": table["GlobalSecondaryIndexes"]}
                    if "GlobalSecondaryIndexes" in table
                    else {}
                ),
            )
        boto3.client("s3").create_bucket(Bucket=env["JOBS_BUCKET"])
        for logical_id in stack.resources_of_type("AWS::SecretsManager::Secret"):
            arn = boto3.client("secretsmanager").create_secret(
                Name=stack.physical_name(logical_id), SecretString=secrets.token_urlsafe(48)
            )["ARN"]
            for name in [name for name, value in env.items() if value == stack.ref(logical_id)]:
                monkeypatch.setenv(name, arn)  # moto's ARN has a suffix of its own
        from job_api import handler

        caches = (handler.service, handler.idempotent_create, handler.signing_secrets)
        for cache in caches:
            cache.cache_clear()
        yield handler
        for cache in caches:
            cache.cache_clear()


def call(
    api,
    method: str,
    path: str,
    body: Any = None,
    caller: str = ALICE,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    event = json.loads((EVENTS / "api_create_job.json").read_text())
    event["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    if query:
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    event["requestContext"]["authorizer"]["iam"]["userArn"] = caller
    event["headers"].update(headers or {})
    event["body"] = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    response = api.lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else {}


def test_create_job_returns_presigned_post_fixing_key_type_and_size(api) -> None:
    status, body = call(api, "POST", "/jobs", {"filename": "bus.jpg", "contentType": "image/png"})

    assert status == 201
    assert body["status"] == "AWAITING_UPLOAD"
    assert body["jobId"].startswith("job_") and len(body["jobId"]) == 36
    fields = body["upload"]["fields"]
    assert fields["key"] == f"uploads/{body['jobId']}/input"
    assert fields["Content-Type"] == "image/png"
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["content-length-range", 1, body["upload"]["maxBytes"]] in policy["conditions"]
    assert body["params"] == {
        "conf": 0.25,
        "iou": 0.7,
        "maxDetections": 100,
        "annotate": True,
        "retinaMasks": False,
        "tileOverlap": 0.2,
    }


def test_declared_content_length_fixes_the_exact_size(api) -> None:
    status, body = call(api, "POST", "/jobs", {"contentLength": 1234})

    policy = json.loads(base64.b64decode(body["upload"]["fields"]["policy"]))
    assert status == 201
    assert ["content-length-range", 1234, 1234] in policy["conditions"]


def test_get_job_roundtrip_and_other_caller_gets_404(api) -> None:
    _, created = call(api, "POST", "/jobs", {"metadata": {"camera": "north"}})

    status, job = call(api, "GET", f"/jobs/{created['jobId']}")
    other_status, other = call(api, "GET", f"/jobs/{created['jobId']}", caller=BOB)

    assert status == 200 and job["jobId"] == created["jobId"] and job["metadata"] == {"camera": "north"}
    assert other_status == 404 and other["error"]["code"] == "JobNotFound"


def test_unknown_job_is_404(api) -> None:
    status, body = call(api, "GET", "/jobs/job_doesnotexist")
    assert status == 404
    assert body == {"error": {"code": "JobNotFound", "message": "no job job_doesnotexist"}}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"params": {"conf": 2}}, "params.conf"),
        ({"params": {"imgsz": 100}}, "multiple of 32"),
        ({"contentType": "application/pdf"}, "contentType"),
        ({"unknownField": 1}, "unknownField"),
        ({"contentLength": 0}, "contentLength"),
        ("not json", "JSON"),
        # JSON types are taken as sent, never coerced
        ({"params": {"tileOverlap": False}}, "params.tileOverlap: Input should be a valid number"),
        ({"params": {"conf": "0.5"}}, "params.conf: Input should be a valid number"),
        ({"params": {"annotate": 1}}, "params.annotate: Input should be a valid boolean"),
    ],
)
def test_bad_params_are_400_with_a_message(api, body: Any, fragment: str) -> None:
    status, response = call(api, "POST", "/jobs", body)

    assert status == 400
    assert response["error"]["code"] == "InvalidRequest"
    assert fragment.lower() in response["error"]["message"].lower()


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/",
    ],
)
def test_webhook_targets_refused(api, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    status, response = call(api, "POST", "/jobs", {"webhookUrl": url})

    assert status == 400
    assert response["error"]["code"] == "InvalidWebhookUrl"


def test_content_length_over_limit_is_413(api) -> None:
    status, response = call(api, "POST", "/jobs", {"contentLength": 10**12})
    assert status == 413 and response["error"]["code"] == "UploadTooLarge"


def test_list_is_newest_first_paginated_and_per_caller(api) -> None:
    ids = [call(api, "POST", "/jobs", {})[1]["jobId"] for _ in range(3)]
    call(api, "POST", "/jobs", {}, caller=BOB)

    _, first = call(api, "GET", "/jobs", query="limit=2")
    _, second = call(api, "GET", "/jobs", query=f"limit=2&nextToken={first['nextToken']}")

    listed = [job["jobId"] for job in first["jobs"] + second["jobs"]]
    assert listed == list(reversed(ids))
    assert "nextToken" not in second


@pytest.mark.parametrize(("page_read", "read_pages"), [(1, 100), (2, 100), (100, 100), (1, 1)])
def test_list_by_status_fills_pages_across_filtered_reads(api, monkeypatch, page_read, read_pages) -> None:
    # GIVEN 7 jobs of which 4 are canceled (DynamoDB filters after its own Limit, so the
    # store reads further pages of `page_read` items to fill one of ours)
    from job_api import storage

    monkeypatch.setattr(storage, "LIST_FILTERED_PAGE", page_read)
    monkeypatch.setattr(storage, "LIST_READ_PAGES", read_pages)
    ids = [call(api, "POST", "/jobs", {})[1]["jobId"] for _ in range(7)]
    canceled = set(ids[::2])
    for job_id in canceled:
        assert call(api, "DELETE", f"/jobs/{job_id}")[0] == 200
    call(api, "DELETE", f"/jobs/{call(api, 'POST', '/jobs', {}, caller=BOB)[1]['jobId']}", caller=BOB)

    # WHEN the canceled ones are listed 3 at a time
    pages, token = [], ""
    while True:
        status, page = call(api, "GET", "/jobs", query="status=CANCELED&limit=3" + token)
        assert status == 200
        pages.append([job["jobId"] for job in page["jobs"]])
        if "nextToken" not in page:
            break
        token = f"&nextToken={page['nextToken']}"

    # THEN every canceled job of the caller comes once and nothing else; pages are full unless
    # a request reached its bound of reads (then it returns what it found and a token)
    listed = [job_id for page in pages for job_id in page]
    assert sorted(listed) == sorted(canceled)
    if read_pages > 1:
        assert [len(page) for page in pages[:2]] == [3, 1] and all(not page for page in pages[2:])
    _, awaiting = call(api, "GET", "/jobs", query="status=AWAITING_UPLOAD&limit=10")
    assert sorted(job["jobId"] for job in awaiting["jobs"]) == sorted(set(ids) - canceled)


def test_list_by_an_unknown_status_is_400(api) -> None:
    status, response = call(api, "GET", "/jobs", query="status=DONE")

    assert status == 400 and response["error"]["code"] == "InvalidRequest"
    assert "status" in response["error"]["message"]


def test_forged_next_token_is_400(api) -> None:
    status, response = call(api, "GET", "/jobs", query="nextToken=abc")
    assert status == 400 and response["error"]["code"] == "InvalidRequest"


def test_idempotency_key_returns_the_same_job_for_the_same_caller(api) -> None:
    key = {"idempotency-key": "batch-7/img-1"}
    status1, first = call(api, "POST", "/jobs", {"filename": "a.jpg"}, headers=key)
    status2, again = call(api, "POST", "/jobs", {"filename": "a.jpg"}, headers=key)
    status3, other_caller = call(api, "POST", "/jobs", {"filename": "a.jpg"}, headers=key, caller=BOB)

    assert status1 == status2 == status3 == 201
    assert again["jobId"] == first["jobId"] and again["upload"] == first["upload"]
    assert other_caller["jobId"] != first["jobId"]


def test_idempotency_key_reused_for_another_request_is_409(api) -> None:
    key = {"idempotency-key": "k-1"}
    call(api, "POST", "/jobs", {"filename": "a.jpg"}, headers=key)

    status, response = call(api, "POST", "/jobs", {"filename": "b.jpg"}, headers=key)

    assert status == 409 and response["error"]["code"] == "IdempotencyKeyReused"


def test_idempotency_key_too_long_is_400(api) -> None:
    status, response = call(api, "POST", "/jobs", {}, headers={"idempotency-key": "x" * 256})
    assert status == 400 and "Idempotency-Key" in response["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
def test_a_body_that_is_not_json_is_415_in_the_api_error_shape(api, content_type: str) -> None:
    status, body = call(api, "POST", "/jobs", "filename=a.jpg", headers={"content-type": content_type})
    assert status == 415
    assert body["error"]["code"] == "UnsupportedMediaType" and content_type in body["error"]["message"]


def test_a_json_body_that_is_not_utf8_is_400(api) -> None:
    event = json.loads((EVENTS / "api_create_job.json").read_text())
    event["body"] = base64.b64encode(b'{"filename": "\xff.jpg"}').decode()
    event["isBase64Encoded"] = True
    response = api.lambda_handler(event, FakeContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == {
        "code": "InvalidRequest",
        "message": "the body is not UTF-8 encoded JSON",
    }


def test_json_with_a_charset_is_accepted(api) -> None:
    status, body = call(api, "POST", "/jobs", {}, headers={"content-type": "application/json; charset=utf-8"})
    assert status == 201, body


# --- the caller's webhook signing secret ---------------------------------------------------


def call_with_headers(api, method: str, path: str, body: Any = None, caller: str = ALICE) -> dict[str, Any]:
    """The raw v2 response (status, headers, body) of one request."""
    event = json.loads((EVENTS / "api_create_job.json").read_text())
    event["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["authorizer"]["iam"]["userArn"] = caller
    event["body"] = None if body is None else json.dumps(body)
    return api.lambda_handler(event, FakeContext())


def test_webhook_secret_is_created_on_first_use_and_stable(api) -> None:
    status, first = call(api, "GET", "/webhook-secret")
    _, again = call(api, "GET", "/webhook-secret")

    assert status == 200
    assert first["secret"].startswith("whsec_") and len(base64.b64decode(first["secret"][6:])) == 32
    assert first["generation"] == 1 and "previousValidUntil" not in first
    assert again == first


def test_each_caller_has_a_secret_of_its_own(api) -> None:
    _, alice = call(api, "GET", "/webhook-secret")
    _, bob = call(api, "GET", "/webhook-secret", caller=BOB)

    assert alice["secret"] != bob["secret"]


def test_secret_responses_are_not_cacheable(api) -> None:
    for method, path in (("GET", "/webhook-secret"), ("POST", "/webhook-secret/rotate")):
        response = call_with_headers(api, method, path, {} if method == "POST" else None)
        assert response["statusCode"] == 200
        assert response["headers"]["Cache-Control"] == "no-store"


def test_rotation_gives_a_new_secret_and_an_overlap(api) -> None:
    _, before = call(api, "GET", "/webhook-secret")

    status, rotated = call(api, "POST", "/webhook-secret/rotate", {"overlapSeconds": 3600})
    _, after = call(api, "GET", "/webhook-secret")
    _, bob = call(api, "GET", "/webhook-secret", caller=BOB)

    assert status == 200
    assert rotated["generation"] == 2 and rotated["secret"] != before["secret"]
    assert rotated["previousValidUntil"] > rotated["createdAt"]
    assert after == rotated
    assert bob["generation"] == 1  # another caller's secret is untouched


def test_rotation_without_a_body_overlaps_a_day_and_zero_revokes_at_once(api) -> None:
    status, default = call(api, "POST", "/webhook-secret/rotate")
    _, revoked = call(api, "POST", "/webhook-secret/rotate", {"overlapSeconds": 0})

    assert status == 200
    created = datetime.fromisoformat(default["createdAt"])
    assert datetime.fromisoformat(default["previousValidUntil"]) - created == timedelta(days=1)
    assert revoked["generation"] == 3 and "previousValidUntil" not in revoked


@pytest.mark.parametrize(
    "body", [{"overlapSeconds": -1}, {"overlapSeconds": 8 * 86400}, {"overlapSeconds": "60"}, {"x": 1}]
)
def test_rotation_overlap_is_validated(api, body: Any) -> None:
    status, answer = call(api, "POST", "/webhook-secret/rotate", body)

    assert status == 400 and answer["error"]["code"] == "InvalidRequest"
    assert call(api, "GET", "/webhook-secret")[1]["generation"] == 1  # nothing rotated


@pytest.mark.parametrize("path", ["/jobs", "/webhook-secret/rotate"])
@pytest.mark.parametrize("body", [[{}], [None, None], "null", 3])
def test_a_json_body_that_is_not_an_object_is_400(api, path: str, body: Any) -> None:
    # Powertools would take a list's first element as the body
    status, answer = call(api, "POST", path, body if isinstance(body, str) else json.dumps(body))

    assert status == 400 and answer["error"] == {
        "code": "InvalidRequest",
        "message": "the body must be a JSON object",
    }

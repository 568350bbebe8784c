"""Local mode itself, over real HTTP: presigned POST policies enforced in front of moto's
S3, the S3 -> EventBridge -> Step Functions delivery, the Lambda Invoke API run by local
workers (errors and timeouts as Lambda reports them), the HTTP API's API Gateway
behaviour, and a clean stop."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.lambda_runtime import FunctionSpec
from local.runtime import LocalRuntime
from tests.support.local_mode import executions_for, wait_for

pytestmark = pytest.mark.integration

HANDLERS = """
import os
import time

INIT_PID = os.getpid()  # module scope: runs once per worker, like Lambda's init


class InvalidImage(Exception):
    pass


def ok(event, context):
    return {
        "event": event,
        "pid": INIT_PID,
        "functionName": context.function_name,
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
    }


def boom(event, context):
    raise InvalidImage(f"cannot decode {event.get('key')}")


def slow(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": INIT_PID}


def environment(event, context):
    return dict(os.environ)


def echo_http(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Echo": "1"},
        "cookies": ["seen=1"],
        "body": __import__("json").dumps(event),
    }
"""


@pytest.fixture(scope="module")
def handlers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adhoc-functions")
    (folder / "handlers.py").write_text(HANDLERS)
    return folder


@pytest.fixture
def adhoc(runtime: LocalRuntime, handlers_dir: Path) -> Iterator[Callable[..., FunctionSpec]]:
    """Register test-only functions (code in a temp folder); unregistered afterwards."""
    names: list[str] = []

    def register(handler: str, **changes: Any) -> FunctionSpec:
        spec = FunctionSpec(
            name=f"LocalTest-{handler}-{uuid.uuid4().hex[:8]}",
            code_dir=handlers_dir,
            handler=f"handlers.{handler}",
            timeout=changes.pop("timeout", 10.0),
        ).replace(**changes)
        runtime.lambdas.register(spec)
        names.append(spec.name)
        return spec

    yield register
    for name in names:
        runtime.lambdas.unregister(name)


def invoke(
    runtime: LocalRuntime, function: str, payload: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    response = runtime.boto3_client("lambda").invoke(FunctionName=function, Payload=json.dumps(payload))
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def wait_for_execution(runtime: LocalRuntime, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    sfn = runtime.boto3_client("stepfunctions")
    return wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d,
        timeout=timeout,
    )


# --- presigned POST ------------------------------------------------------------------------


def presigned_post(
    runtime: LocalRuntime, key: str, max_bytes: int = 1024, expires: int = 60
) -> dict[str, Any]:
    return runtime.boto3_client("s3").generate_presigned_post(
        runtime.bucket,
        key,
        Fields={"Content-Type": "image/jpeg"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires,
    )


def post_upload(post: dict[str, Any], content: bytes, **field_changes: str) -> requests.Response:
    fields = {**post["fields"], **field_changes}
    return requests.post(post["url"], data=fields, files={"file": ("input.jpg", content)}, timeout=30)


def s3_error(response: requests.Response) -> tuple[int, str, str]:
    text = response.text
    code = text.split("<Code>")[1].split("</Code>")[0]
    message = text.split("<Message>")[1].split("</Message>")[0]
    return response.status_code, code, message


def test_post_within_the_policy_is_stored(runtime: LocalRuntime) -> None:
    key = f"uploads/{uuid.uuid4().hex}/input"

    response = post_upload(presigned_post(runtime, key), b"\xff\xd8" + b"x" * 100)

    assert response.status_code == 204, response.text
    head = runtime.boto3_client("s3").head_object(Bucket=runtime.bucket, Key=key)
    assert (head["ContentLength"], head["ContentType"]) == (102, "image/jpeg")


def test_post_over_the_size_range_is_entity_too_large(runtime: LocalRuntime) -> None:
    key = f"uploads/{uuid.uuid4().hex}/input"

    response = post_upload(presigned_post(runtime, key, max_bytes=100), b"x" * 101)

    assert s3_error(response)[:2] == (400, "EntityTooLarge")
    assert "<MaxSizeAllowed>100</MaxSizeAllowed>" in response.text
    assert runtime.boto3_client("s3").list_objects_v2(Bucket=runtime.bucket, Prefix=key)["KeyCount"] == 0


def test_post_to_another_key_is_refused(runtime: LocalRuntime) -> None:
    key = f"uploads/{uuid.uuid4().hex}/input"

    response = post_upload(presigned_post(runtime, key), b"x", key=f"uploads/{uuid.uuid4().hex}/input")

    status, code, message = s3_error(response)
    assert (status, code) == (403, "AccessDenied")
    assert message == f'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{key}"]'


def test_post_with_another_content_type_is_refused(runtime: LocalRuntime) -> None:
    post = presigned_post(runtime, f"uploads/{uuid.uuid4().hex}/input")

    status, code, message = s3_error(post_upload(post, b"x", **{"Content-Type": "text/html"}))

    assert (status, code) == (403, "AccessDenied")
    assert '"$Content-Type", "image/jpeg"' in message


def test_expired_post_is_refused(runtime: LocalRuntime) -> None:
    post = presigned_post(runtime, f"uploads/{uuid.uuid4().hex}/input", expires=1)
    time.sleep(2)

    assert s3_error(post_upload(post, b"x")) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )


def test_tampered_signature_or_policy_is_refused(runtime: LocalRuntime) -> None:
    post = presigned_post(runtime, f"uploads/{uuid.uuid4().hex}/input")
    other = presigned_post(runtime, f"uploads/{uuid.uuid4().hex}/input", max_bytes=10**9)

    bad_signature = post_upload(post, b"x", **{"x-amz-signature": "0" * 64})
    swapped_policy = post_upload(post, b"x", policy=other["fields"]["policy"])

    assert s3_error(bad_signature)[:2] == (403, "SignatureDoesNotMatch")
    assert s3_error(swapped_policy)[:2] == (403, "SignatureDoesNotMatch")


# --- S3 -> EventBridge -> Step Functions -------------------------------------------------


def test_upload_starts_one_execution_with_the_eventbridge_event(runtime: LocalRuntime) -> None:
    key = f"uploads/{uuid.uuid4().hex}/input"

    assert post_upload(presigned_post(runtime, key), b"x" * 42).status_code == 204

    deliveries = runtime.bus.wait_for_key(key, timeout=15)
    assert [(d.matched, d.error) for d in deliveries] == [(True, None)]
    execution = wait_for_execution(runtime, deliveries[0].target_id)
    assert [e["executionArn"] for e in executions_for(runtime, key)] == [execution["executionArn"]]
    event = json.loads(execution["input"])
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["detail-type"], event["source"], event["account"]) == (
        "Object Created",
        "aws.s3",
        "123456789012",
    )
    assert event["resources"] == [f"arn:aws:s3:::{runtime.bucket}"]
    assert event["detail"]["bucket"] == {"name": runtime.bucket}
    assert {k: event["detail"]["object"][k] for k in ("key", "size")} == {"key": key, "size": 42}
    assert event["detail"]["reason"] == "PostObject"
    # No job awaits this upload: the state machine's conditional StartJob ends it as ignored.
    assert execution["status"] == "SUCCEEDED"


def test_put_outside_uploads_starts_no_execution(runtime: LocalRuntime) -> None:
    key = f"results/{uuid.uuid4().hex}/result.json"

    runtime.boto3_client("s3").put_object(Bucket=runtime.bucket, Key=key, Body=b"{}")

    deliveries = runtime.bus.wait_for_key(key, timeout=15)
    assert [(d.matched, d.target_id) for d in deliveries] == [(False, None)]
    assert deliveries[0].event["detail"]["reason"] == "PutObject"
    assert executions_for(runtime, key) == []


def test_redelivered_event_starts_another_execution(runtime: LocalRuntime) -> None:
    key = f"uploads/{uuid.uuid4().hex}/input"
    runtime.boto3_client("s3").put_object(Bucket=runtime.bucket, Key=key, Body=b"x")
    (first,) = runtime.bus.wait_for_key(key, timeout=15)

    (again,) = runtime.deliver_event(first.event)

    assert again != first.target_id
    assert (
        wait_for_execution(runtime, again)["input"] == wait_for_execution(runtime, first.target_id)["input"]
    )


# --- Lambda Invoke API -----------------------------------------------------------------------


def test_invoke_returns_the_handlers_result_from_a_warm_worker(runtime: LocalRuntime, adhoc) -> None:
    spec = adhoc("ok")

    error, first = invoke(runtime, spec.name, {"a": 1})
    error_again, second = invoke(runtime, spec.arn, {"a": 2})

    assert (error, error_again) == (None, None)
    assert first["event"] == {"a": 1} and second["event"] == {"a": 2}
    assert first["functionName"] == spec.name
    assert first["pid"] == second["pid"]  # init once, then warm
    assert first["requestId"] != second["requestId"]
    assert 0 < first["remainingMs"] <= spec.timeout * 1000


def test_exception_is_an_unhandled_function_error_named_by_its_class(runtime: LocalRuntime, adhoc) -> None:
    spec = adhoc("boom")

    error, payload = invoke(runtime, spec.name, {"key": "uploads/x/input"})

    assert error == "Unhandled"
    assert payload["errorType"] == "InvalidImage"
    assert payload["errorMessage"] == "cannot decode uploads/x/input"
    assert any("handlers.py" in line for line in payload["stackTrace"])


def test_timeout_is_sandbox_timedout_and_the_worker_restarts(runtime: LocalRuntime, adhoc) -> None:
    spec = adhoc("slow", timeout=1.0)
    _, warm = invoke(runtime, spec.name, {"sleep": 0})

    started = time.monotonic()
    error, payload = invoke(runtime, spec.name, {"sleep": 5})
    took = time.monotonic() - started
    _, after = invoke(runtime, spec.name, {"sleep": 0})

    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert took < 4
    assert after["pid"] != warm["pid"]  # a fresh worker (a new "container")


def test_unknown_function_is_resource_not_found(runtime: LocalRuntime) -> None:
    lambda_client = runtime.boto3_client("lambda")

    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="NoSuchFunction", Payload=b"{}")


def test_state_machine_sees_the_exception_class_as_error_and_its_json_as_cause(
    runtime: LocalRuntime, adhoc
) -> None:
    spec = adhoc("boom")
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": spec.arn, "Payload": {"key.$": "$.key"}},
                "Retry": [{"ErrorEquals": ["InvalidImage"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["InvalidImage"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = runtime.boto3_client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"local-test-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/local-test",
    )["stateMachineArn"]

    started = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input='{"key": "k"}')
    execution = wait_for_execution(runtime, started["executionArn"])

    history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    failures = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert len(failures) == 2  # the Retry matched the class name once
    assert {f["error"] for f in failures} == {"InvalidImage"}
    cause = json.loads(failures[0]["cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("InvalidImage", "cannot decode k")
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["error"]["Error"] == "InvalidImage"


def test_worker_env_is_the_functions_own(runtime: LocalRuntime, adhoc) -> None:
    notify = runtime.stack.function("NotifyFunction")
    api = runtime.stack.function("ApiFunction")
    spec = adhoc(
        "environment",
        environment=notify.environment,
        python_path=notify.python_path,
    )

    _, env = invoke(runtime, spec.name, {})

    assert {k: env[k] for k in notify.environment} == notify.environment
    assert set(api.environment) - set(notify.environment) <= set(api.environment) - set(env)
    assert env["AWS_ENDPOINT_URL"] == runtime.s3_endpoint
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == spec.name
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("us-east-1", "us-east-1")
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(spec.code_dir), *map(str, notify.python_path)]
    assert "PYTEST_CURRENT_TEST" not in env  # nothing leaks from the host process


# --- HTTP API --------------------------------------------------------------------------------


def test_unknown_route_is_api_gateways_404(runtime: LocalRuntime) -> None:
    for method, path in (("GET", "/nope"), ("DELETE", "/jobs"), ("GET", "/jobs/a/b")):
        response = requests.request(method, f"{runtime.api_url}{path}", timeout=10)
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), (method, path)


def test_routes_get_the_v2_event_with_the_callers_identity(runtime: LocalRuntime, handlers_dir: Path) -> None:
    api = runtime.stack.function("ApiFunction")
    echo = FunctionSpec.from_config(api, code_dir=handlers_dir, handler="handlers.echo_http")
    alice = "AWS4-HMAC-SHA256 Credential=AKIDALICE/20261122/us-east-1/execute-api/aws4_request, Signature=0"
    bob = "AWS4-HMAC-SHA256 Credential=AKIDBOB/20261122/us-east-1/execute-api/aws4_request, Signature=0"

    with runtime.lambdas.override(echo):
        as_alice = requests.get(
            f"{runtime.api_url}/jobs/job_123?limit=5",
            headers={"Authorization": alice},
            cookies={"c": "1"},
            timeout=30,
        )
        as_bob = requests.post(
            f"{runtime.api_url}/jobs", json={"a": 1}, headers={"Authorization": bob}, timeout=30
        )
        anonymous = requests.get(f"{runtime.api_url}/jobs", timeout=30)

    assert as_alice.status_code == 200 and as_alice.headers["X-Echo"] == "1"
    assert as_alice.cookies.get("seen") == "1"
    event = as_alice.json()
    assert event["routeKey"] == "GET /jobs/{jobId}"
    assert event["pathParameters"] == {"jobId": "job_123"}
    assert event["queryStringParameters"] == {"limit": "5"}
    assert event["cookies"] == ["c=1"]
    assert (
        event["requestContext"]["authorizer"]["iam"]["userArn"] == "arn:aws:iam::123456789012:user/AKIDALICE"
    )
    body_event = as_bob.json()
    assert body_event["routeKey"] == "POST /jobs" and json.loads(body_event["body"]) == {"a": 1}
    assert body_event["requestContext"]["authorizer"]["iam"]["userArn"].endswith(":user/AKIDBOB")
    assert anonymous.json()["requestContext"]["authorizer"]["iam"]["userArn"].endswith(":user/local")


# --- the project's functions (skipped until their code exists) ------------------------------


def _code_exists(runtime: LocalRuntime, logical_id: str) -> bool:
    config = runtime.stack.function(logical_id)
    module = config.handler.rsplit(".", 1)[0].replace(".", "/")
    return (config.code_dir / f"{module}.py").exists()


@pytest.mark.parametrize("logical_id", ["ApiFunction", "SegmentFunction", "NotifyFunction"])
def test_project_functions_init_in_their_workers(runtime: LocalRuntime, logical_id: str) -> None:
    if not _code_exists(runtime, logical_id):
        pytest.skip(f"{logical_id} has no code yet")
    worker = runtime.lambdas.worker(logical_id)
    worker.start()

    assert worker.wait_ready(timeout=240), f"{worker.init_error} (log: {worker.log_path})"


def test_api_function_answers_through_the_http_api(runtime: LocalRuntime) -> None:
    if not _code_exists(runtime, "ApiFunction"):
        pytest.skip("ApiFunction has no code yet")

    response = requests.get(f"{runtime.api_url}/jobs/job_{'0' * 32}", timeout=60)

    assert response.status_code == 404
    assert "error" in response.json()  # the function's error body, not API Gateway's


# --- stop -------------------------------------------------------------------------------------


def test_stop_leaves_no_process_or_server_running(tmp_path: Path, handlers_dir: Path) -> None:
    local = LocalRuntime(state_dir=tmp_path, eager=["NotifyFunction"])
    with local:
        local.lambdas.register(
            FunctionSpec(name="LocalTestStop", code_dir=handlers_dir, handler="handlers.ok")
        )
        assert invoke(local, "LocalTestStop", {})[0] is None
        pids = [pid for pid in local.pids().values() if pid]
        urls = [local.api_url, local.s3_endpoint, local.lambda_endpoint]
        assert len(pids) >= 2  # moto and the ad-hoc worker (NotifyFunction's if its code exists)

    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for url in urls:
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
    assert not (tmp_path / "endpoints.json").exists()  # it would name a stopped instance

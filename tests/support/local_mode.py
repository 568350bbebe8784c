"""Helpers of the tests that drive local mode (tests/integration, tests/e2e): bounded
waits, the executions and S3 objects of a job, and API callers of their own."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from botocore.credentials import Credentials

from local.runtime import LocalRuntime
from segjob import Client
from segjob_core import keys

T = TypeVar("T")

UPLOAD_EVENT_SOURCE = "aws.s3"


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """The first truthy value of ``predicate()``; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


# execution ARN -> its input: inputs never change, and a session runs thousands of executions
_INPUTS: dict[str, str] = {}


def executions_for(
    runtime: LocalRuntime, job_id: str, source: str | None = None, state_machine: str | None = None
) -> list[dict[str, Any]]:
    """Described executions of the job flows (both state machines, or the one with logical
    id ``state_machine``) whose input names ``job_id`` (only those started by events from
    ``source`` when given), oldest first."""
    sfn = runtime.boto3_client("stepfunctions")
    machines = runtime.state_machines
    arns = [machines[state_machine]] if state_machine else list(machines.values())
    found = []
    for arn in arns:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                execution_arn = execution["executionArn"]
                if execution_arn not in _INPUTS:
                    _INPUTS[execution_arn] = sfn.describe_execution(executionArn=execution_arn)["input"]
                if job_id not in _INPUTS[execution_arn]:
                    continue
                if source is None or json.loads(_INPUTS[execution_arn]).get("source") == source:
                    found.append(sfn.describe_execution(executionArn=execution_arn))
    return sorted(found, key=lambda e: e["startDate"])


def finished(executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``executions`` if there are some and none is still running, else []."""
    return executions if executions and all(e["status"] != "RUNNING" for e in executions) else []


def states_entered(runtime: LocalRuntime, execution_arn: str) -> list[str]:
    """Names of the states an execution entered, in order."""
    sfn = runtime.boto3_client("stepfunctions")
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [h["stateEnteredEventDetails"]["name"] for h in history if "stateEnteredEventDetails" in h]


def result_keys(runtime: LocalRuntime, job_id: str) -> list[str]:
    """Keys of the objects under the job's results/ prefix."""
    prefix = keys.result_key(job_id).rsplit("/", 1)[0] + "/"
    listing = runtime.boto3_client("s3").list_objects_v2(Bucket=runtime.bucket, Prefix=prefix)
    return [obj["Key"] for obj in listing.get("Contents", [])]


@contextlib.contextmanager
def gated_segment(runtime: LocalRuntime, gate: Path) -> Iterator[None]:
    """SegmentFunction's real handler held before it reads its input until ``gate`` exists
    (tests/support/gated_segment.py), for tests that act while a job is RUNNING."""
    from local.lambda_runtime import FunctionSpec

    config = runtime.stack.function("SegmentFunction")
    gated = FunctionSpec.from_config(
        config,
        handler="gated_segment.lambda_handler",
        python_path=(*config.python_path, Path(__file__).resolve().parent),
    )
    gated = gated.replace(environment={**gated.environment, "SEGMENT_GATE_FILE": str(gate)})
    with runtime.lambdas.override(gated) as worker:
        assert worker.wait_ready(180)
        yield


def new_caller_key() -> str:
    """An access key id nobody else uses: a caller of its own (local mode takes the caller
    from the SigV4 access key and does not verify the signature)."""
    return "AKID" + uuid.uuid4().hex.upper()[:16]


def caller_client(runtime: LocalRuntime, access_key: str | None = None) -> Client:
    """A Client that signs as ``access_key`` (default: a fresh caller)."""
    credentials = Credentials(access_key or new_caller_key(), "local-test-secret")
    return Client(runtime.api_url, credentials=credentials)


def caller_headers(access_key: str) -> dict[str, str]:
    """A SigV4-shaped Authorization header naming ``access_key`` (for raw requests)."""
    scope = f"{access_key}/20261122/us-east-1/execute-api/aws4_request"
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"}

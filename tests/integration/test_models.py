"""The model location is configuration: template Parameters ModelUri + ModelSha256 become
MODEL_URI / MODEL_SHA256 of SegmentFunction, which fetches the s3:// weights lazily, once
per container, to /tmp, checks their sha256, and fails jobs with ModelUnavailable when the
object is missing or does not match. Class names come from the model.

Design (each local mode start costs seconds on a busy machine, so two starts in all):

- ``custom_runtime`` (function scope: one test uses it, and it is stopped before the next
  starts) is configured with ``s3://<jobs bucket>/models/<uuid>.onnx`` and the right sha256.
  The jobs bucket's local name is deterministic, so the URI is known before the start; the
  model is uploaded after the start and before the first job, which works because the
  function fetches it lazily (checked: nothing is in the cache before the job).
- ``mismatch_runtime`` (module scope) is configured with another uuid key and a sha256 the
  weights do not have. Whether that key exists is up to each test: absent -> "does not
  exist", uploaded -> hash mismatch. A failed fetch or check is not remembered (the next
  job tries again), so one runtime serves both tests, in either order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.runtime import LocalRuntime
from segjob import Client
from segjob.webhooks import WebhookReceiver
from segjob_core.models import EventType, Job, JobStatus, ResultDocument, WebhookEvent
from segmentation.service import MODEL_CACHE_DIR
from tests.support.models import build_seg_onnx, sha256_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
FRUIT = {0: "apple", 1: "pear", 2: "plum"}
JOB_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def fruit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A -seg model (its ONNX export) whose classes are not the demo model's."""
    return build_seg_onnx(tmp_path_factory.mktemp("fruit-model") / "fruit-seg.onnx", FRUIT)


def jobs_bucket(state_dir: Path) -> str:
    """The local name of the jobs bucket, known before the start (parsing the template is enough)."""
    return LocalRuntime(state_dir=state_dir).bucket


def started(state_dir: Path, model_uri: str, model_sha256: str) -> LocalRuntime:
    overrides = {"ModelUri": model_uri, "ModelSha256": model_sha256}
    return LocalRuntime(parameter_overrides=overrides, state_dir=state_dir).start()


@pytest.fixture
def custom_runtime(tmp_path: Path, fruit_model: Path) -> Iterator[tuple[LocalRuntime, str]]:
    state_dir = tmp_path / "local-state"
    key = f"models/{uuid.uuid4()}.onnx"
    runtime = started(state_dir, f"s3://{jobs_bucket(state_dir)}/{key}", sha256_of(fruit_model))
    try:
        yield runtime, key
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def mismatch_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, str]]:
    state_dir = tmp_path_factory.mktemp("local-state-mismatch")
    key = f"models/{uuid.uuid4()}.onnx"
    runtime = started(state_dir, f"s3://{jobs_bucket(state_dir)}/{key}", "0" * 64)
    try:
        yield runtime, key
    finally:
        runtime.stop()


def submit_and_wait(runtime: LocalRuntime, receiver: WebhookReceiver) -> tuple[Job, WebhookEvent]:
    """A job of the sample image with a webhook: the job once final, and its webhook event."""
    client = Client(runtime.api_url)
    created = client.submit(SAMPLE, params={"conf": 0.0}, webhook_url=receiver.url)
    event = receiver.wait_for(created.job_id, timeout=JOB_TIMEOUT)
    return client.wait(created.job_id, timeout=30), event


def test_model_from_s3_is_fetched_at_the_first_job_and_its_classes_are_used(
    custom_runtime: tuple[LocalRuntime, str], fruit_model: Path, tmp_path: Path
) -> None:
    runtime, key = custom_runtime
    expected_sha256 = sha256_of(fruit_model)
    # GIVEN a warm segment function that has not fetched anything yet (lazy: first job)
    assert runtime.wait_for_functions()["SegmentFunction"]
    # the function's own /tmp in local mode is a folder of the state dir
    cached = runtime.lambdas.worker("SegmentFunction").tmp_dir / MODEL_CACHE_DIR.name / Path(key).name
    assert not cached.exists()
    # WHEN the weights are uploaded to ModelUri and a job runs
    runtime.boto3_client("s3").upload_file(str(fruit_model), runtime.bucket, key)
    client = Client(runtime.api_url)
    created = client.submit(SAMPLE, params={"conf": 0.0})
    job = client.wait(created.job_id, timeout=JOB_TIMEOUT)

    # THEN the job used that model: its hash, its classes, its class names on detections
    assert job.status is JobStatus.SUCCEEDED, job.error
    client.download_results(job, tmp_path)
    document = ResultDocument.model_validate_json((tmp_path / job.job_id / "result.json").read_text())
    assert document.model.sha256 == expected_sha256
    assert document.model.classes == FRUIT
    assert document.detections
    assert {d.class_name for d in document.detections} <= set(FRUIT.values())
    assert all(d.class_name == FRUIT[d.class_id] for d in document.detections)
    assert set(job.result.summary.by_class) <= set(FRUIT.values())
    # fetched once, to the container's /tmp, and complete
    assert sha256_of(cached) == expected_sha256


def test_model_with_another_sha256_fails_the_job_with_model_unavailable(
    mismatch_runtime: tuple[LocalRuntime, str], fruit_model: Path
) -> None:
    runtime, key = mismatch_runtime
    runtime.boto3_client("s3").upload_file(str(fruit_model), runtime.bucket, key)

    with WebhookReceiver(secret=runtime.webhook_secret) as receiver:
        job, event = submit_and_wait(runtime, receiver)

    assert job.status is JobStatus.FAILED
    assert job.error and job.error.code == "ModelUnavailable"
    assert event.type is EventType.FAILED and event.data.error == job.error
    assert "does not match the expected sha256" in job.error.message
    assert sha256_of(fruit_model) in job.error.message and "0" * 64 in job.error.message
    assert job.result is None


def test_missing_model_object_fails_the_job_with_model_unavailable(
    mismatch_runtime: tuple[LocalRuntime, str],
) -> None:
    runtime, key = mismatch_runtime
    runtime.boto3_client("s3").delete_object(Bucket=runtime.bucket, Key=key)  # never uploaded, or gone

    with WebhookReceiver(secret=runtime.webhook_secret) as receiver:
        job, event = submit_and_wait(runtime, receiver)

    assert job.status is JobStatus.FAILED
    assert job.error and job.error.code == "ModelUnavailable"
    assert event.type is EventType.FAILED and event.data.error == job.error
    assert job.error.message == f"model s3://{runtime.bucket}/{key} does not exist"
    assert job.result is None

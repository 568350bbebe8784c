"""The job flow end to end in local mode, over real HTTP: the HTTP API, presigned POST to
the moto S3 server, the S3 event, our state machine in moto's ASL interpreter, the real
segment and notify handlers, and a real webhook receiver verifying signatures."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from segjob import SegjobError
from segjob.webhooks import WebhookReceiver
from segjob_core.models import EventType, JobStatus, ResultDocument, WebhookStatus
from tests.support.local_mode import executions_for, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_happy_path_result_annotated_jpeg_and_signed_webhook(runtime, client, receiver, tmp_path) -> None:
    # GIVEN a job with a webhook WHEN the image is uploaded with its presigned POST
    created = client.submit(SAMPLE, webhook_url=receiver.url, params={"conf": 0.25}, metadata={"run": "it"})
    # submit returns once the upload has started the job: its status says so
    assert created.status is not JobStatus.AWAITING_UPLOAD and created.started_at

    # THEN a verified job.succeeded webhook arrives and polling shows the same
    event = receiver.wait_for(created.job_id, timeout=180)
    job = client.wait(created.job_id, timeout=30)
    assert event.type is EventType.SUCCEEDED
    assert job.status is JobStatus.SUCCEEDED
    assert event.data.result and event.data.result.result_url
    assert job.metadata == {"run": "it"}

    written = client.download_results(job, tmp_path)
    document = ResultDocument.model_validate_json((tmp_path / job.job_id / "result.json").read_text())
    assert {p.name for p in written} == {"result.json", "annotated.jpg"}
    assert document.job_id == job.job_id
    assert (document.image.width, document.image.height, document.image.format) == (960, 640, "jpeg")
    assert len(document.model.sha256) == 64 and document.model.classes
    assert document.summary.count == len(document.detections) == job.result.summary.count
    for detection in document.detections:
        x1, y1, x2, y2 = detection.bbox
        assert 0 <= x1 < x2 <= 960 and 0 <= y1 < y2 <= 640
        assert all(0 <= x <= 960 and 0 <= y <= 640 for x, y in detection.polygon)
        assert detection.class_name == document.model.classes[detection.class_id]
    for stage in ("download", "decode", "inference", "postprocess", "annotate", "encode", "upload", "total"):
        assert stage in job.result.timings
    annotated = cv2.imdecode(
        np.frombuffer((tmp_path / job.job_id / "annotated.jpg").read_bytes(), np.uint8), 1
    )
    assert annotated.shape == (640, 960, 3)

    delivered = wait_for(
        lambda: (j := client.get_job(job.job_id)).webhook.status is WebhookStatus.DELIVERED and j
    )
    assert delivered.webhook.delivered_at
    # one timestamp format, also where the state machine (moto's EnteredTime) wrote the time
    stamps = [delivered.created_at, delivered.updated_at, delivered.expires_at, delivered.started_at]
    stamps += [delivered.finished_at, delivered.webhook.delivered_at, event.timestamp, document.created_at]
    assert all(ISO_MS_Z.match(stamp or "") for stamp in stamps), stamps


def test_tiling_params_reach_the_segment_function(runtime, client, tmp_path) -> None:
    # GIVEN a 960x640 image and 512 px tiles sharing 128 px: x 0, 384, 448 and y 0, 128
    created = client.submit(SAMPLE, params={"tileSize": 512, "tileOverlap": 0.25})

    job = client.wait(created.job_id, timeout=120)

    # THEN the params went through the state machine, and result.json counts the tiles
    assert job.status is JobStatus.SUCCEEDED, job.error
    client.download_results(job, tmp_path)
    document = ResultDocument.model_validate_json((tmp_path / job.job_id / "result.json").read_text())
    assert (job.params.tile_size, document.params.tile_overlap) == (512, 0.25)
    assert document.tiles == job.result.tiles == 6
    assert document.detections and all(
        0 <= d.bbox[0] < d.bbox[2] <= 960 and 0 <= d.bbox[1] < d.bbox[3] <= 640 for d in document.detections
    )


def test_corrupt_image_fails_with_invalid_image_and_job_failed_webhook(
    runtime, client, receiver, tmp_path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)

    created = client.submit(corrupt, webhook_url=receiver.url)
    event = receiver.wait_for(created.job_id, timeout=120)
    job = client.wait(created.job_id, timeout=30)

    assert event.type is EventType.FAILED
    assert job.status is JobStatus.FAILED
    assert job.error and job.error.code == "InvalidImage" and job.error.message
    assert event.data.error and event.data.error.code == "InvalidImage"
    assert job.result is None


def test_upload_over_declared_size_is_refused_by_the_policy(runtime, client, tmp_path) -> None:
    created = client.create_job(content_type="image/jpeg", content_length=100)
    big = tmp_path / "big.jpg"
    big.write_bytes(SAMPLE.read_bytes())

    with pytest.raises(SegjobError) as refused:
        client.upload(created, big)

    assert refused.value.status == 400 and "EntityTooLarge" in str(refused.value)
    assert client.get_job(created.job_id).status is JobStatus.AWAITING_UPLOAD


def test_upload_over_the_stack_limit_is_refused(runtime, client, tmp_path) -> None:
    limit = int(runtime.parameters["MaxUploadBytes"])
    created = client.create_job(content_type="image/jpeg")
    assert created.upload.max_bytes == limit
    too_big = tmp_path / "too-big.jpg"
    too_big.write_bytes(SAMPLE.read_bytes() + b"\0" * (limit + 1 - SAMPLE.stat().st_size))

    with pytest.raises(SegjobError) as refused:
        client.upload(created, too_big)
    assert refused.value.status == 400 and "EntityTooLarge" in str(refused.value)


def test_same_s3_event_twice_runs_once_and_sends_one_webhook(runtime, client, receiver) -> None:
    created = client.submit(SAMPLE, webhook_url=receiver.url)
    receiver.wait_for(created.job_id, timeout=180)
    first = wait_for(lambda: [e for e in executions_for(runtime, created.job_id) if e["status"] != "RUNNING"])
    original_event = json.loads(first[0]["input"])

    # WHEN EventBridge delivers the same event again (at-least-once delivery)
    runtime.deliver_event(original_event)

    executions = wait_for(
        lambda: (
            (ex := executions_for(runtime, created.job_id))
            and len(ex) == 2
            and all(e["status"] != "RUNNING" for e in ex)
            and ex
        )
    )
    assert all(e["status"] == "SUCCEEDED" for e in executions)
    sfn = runtime.boto3_client("stepfunctions")
    segment_runs = 0
    for execution in executions:
        history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        segment_runs += sum(
            1
            for h in history
            if h["type"] == "TaskStateEntered" and h["stateEnteredEventDetails"]["name"] == "Segment"
        )
    assert segment_runs == 1
    time.sleep(1.0)
    assert len(receiver.events_for(created.job_id)) == 1
    assert client.get_job(created.job_id).status is JobStatus.SUCCEEDED


def test_webhook_that_never_lands_is_retried_on_the_whole_schedule_then_recorded_failed(
    runtime, client
) -> None:
    delays = [int(s) for s in runtime.parameters["WebhookRetrySchedule"].split(",")]
    with WebhookReceiver(secret=runtime.webhook_secret, fail_with=503) as broken:
        created = client.submit(SAMPLE, webhook_url=broken.url)
        job = wait_for(
            lambda: (j := client.get_job(created.job_id)).webhook.status is WebhookStatus.FAILED and j,
            timeout=120 + 2 * sum(delays),
            interval=1.0,
        )
        attempts = broken.attempts

    # THEN the first attempt (Express) and one retry per delay of the schedule (Standard)
    assert job.status is JobStatus.SUCCEEDED
    assert attempts == len(job.webhook.attempts) == 1 + len(delays)
    assert all(
        a.outcome is WebhookStatus.FAILED and a.error == "WebhookDeliveryFailed" for a in job.webhook.attempts
    )
    assert {a.event for a in job.webhook.attempts} == {EventType.SUCCEEDED}
    assert "WebhookDeliveryFailed" in (job.webhook.error or "") and "503" in job.webhook.error


def test_unknown_job_is_404(client) -> None:
    with pytest.raises(SegjobError) as missing:
        client.get_job("job_00000000000000000000000000000000")
    assert missing.value.status == 404 and missing.value.code == "JobNotFound"


def test_bad_params_are_400_with_a_message(runtime) -> None:
    response = requests.post(f"{runtime.api_url}/jobs", json={"params": {"iou": 7}}, timeout=30)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidRequest" and "params.iou" in error["message"]


def test_another_caller_gets_404(runtime, client) -> None:
    created = client.create_job()
    other = requests.get(
        f"{runtime.api_url}/jobs/{created.job_id}",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDOTHERCALLER/20261122/us-east-1/execute-api/aws4_request"
        },
        timeout=30,
    )
    assert other.status_code == 404


def test_idempotent_retries_return_the_same_job(runtime) -> None:
    key = f"retry-{time.monotonic_ns()}"
    body = {"filename": "a.jpg", "params": {"conf": 0.5}}

    first = requests.post(f"{runtime.api_url}/jobs", json=body, headers={"Idempotency-Key": key}, timeout=30)
    retry = requests.post(f"{runtime.api_url}/jobs", json=body, headers={"Idempotency-Key": key}, timeout=30)
    reused = requests.post(
        f"{runtime.api_url}/jobs",
        json={**body, "filename": "b.jpg"},
        headers={"Idempotency-Key": key},
        timeout=30,
    )

    assert first.status_code == retry.status_code == 201
    assert retry.json()["jobId"] == first.json()["jobId"]
    assert retry.json()["upload"] == first.json()["upload"]
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "IdempotencyKeyReused"

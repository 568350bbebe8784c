"""Cancel (DELETE /jobs/{jobId}) and expiry in local mode, over real HTTP: the API, the S3
event of a late upload, our state machines (the Express job flow, whose conditional writes
refuse a canceled job's result, the canceled-job notification, the expiry schedule) and a
real webhook receiver verifying signatures."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from segjob import SegjobError
from segjob_core.jobs import iso
from segjob_core.models import EventType, JobStatus, WebhookStatus
from tests.support.local_mode import (
    UPLOAD_EVENT_SOURCE,
    caller_client,
    caller_headers,
    executions_for,
    finished,
    new_caller_key,
    result_keys,
    states_entered,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
# The largest inference size: several seconds per image on a CPU, long enough to cancel
# the job while its Segment task runs (it turns RUNNING well under a second after upload).
SLOW_PARAMS = {"imgsz": 2048}
# No more events may arrive after this long (the segment function has finished by then).
QUIET_SECONDS = 2.0


def upload_execution(runtime, job_id: str, timeout: float = 60.0) -> dict:
    """The finished execution that the job's upload event started."""
    executions = wait_for(
        lambda: finished(executions_for(runtime, job_id, source=UPLOAD_EVENT_SOURCE)), timeout=timeout
    )
    assert len(executions) == 1
    return executions[0]


def set_expires_at(runtime, job_id: str, when: datetime) -> None:
    runtime.boto3_client("dynamodb").update_item(
        TableName=runtime.table,
        Key={"jobId": {"S": job_id}},
        UpdateExpression="SET expiresAt = :when",
        ExpressionAttributeValues={":when": {"S": iso(when)}},
    )


# --- cancel -------------------------------------------------------------------------------


def test_cancel_before_upload_never_runs_and_sends_job_canceled(runtime, client, receiver) -> None:
    # GIVEN a job with a webhook, awaiting its upload
    created = client.create_job(filename=SAMPLE.name, webhook_url=receiver.url)

    # WHEN its owner cancels it
    canceled = client.cancel(created.job_id)

    # THEN it is CANCELED and a verified job.canceled webhook arrives
    assert canceled.status is JobStatus.CANCELED
    assert canceled.finished_at
    event = receiver.wait_for(created.job_id, timeout=60)
    assert event.type is EventType.CANCELED
    assert event.data.job_id == created.job_id and event.data.status is JobStatus.CANCELED
    assert event.data.result is None
    delivered = wait_for(
        lambda: (j := client.get_job(created.job_id)).webhook.status is WebhookStatus.DELIVERED and j
    )
    assert delivered.status is JobStatus.CANCELED

    # WHEN the upload arrives anyway (its presigned POST is still valid)
    client.upload(created, SAMPLE)

    # THEN its S3 event starts an execution that ends in Ignored: nothing runs, no results
    execution = upload_execution(runtime, created.job_id)
    entered = states_entered(runtime, execution["executionArn"])
    assert execution["status"] == "SUCCEEDED"
    assert entered[-1] == "Ignored" and "Segment" not in entered
    assert result_keys(runtime, created.job_id) == []
    assert client.get_job(created.job_id).status is JobStatus.CANCELED
    assert [e.type for e in receiver.events_for(created.job_id)] == [EventType.CANCELED]


def test_cancel_of_a_running_job_on_express_keeps_no_result(runtime, client, receiver) -> None:
    # GIVEN a job whose segmentation takes seconds, seen RUNNING on the Express flow
    created = client.submit(SAMPLE, webhook_url=receiver.url, params=SLOW_PARAMS)
    running = wait_for(
        lambda: (j := client.get_job(created.job_id)).status is not JobStatus.AWAITING_UPLOAD and j,
        timeout=60,
        interval=0.05,
    )
    assert running.status is JobStatus.RUNNING, "the job finished before it could be canceled"

    # WHEN its owner cancels it (an Express execution cannot be stopped)
    canceled = client.cancel(created.job_id)

    # THEN it is CANCELED at once and one job.canceled webhook arrives
    assert canceled.status is JobStatus.CANCELED
    event = receiver.wait_for(created.job_id, timeout=60)
    assert event.type is EventType.CANCELED and event.data.status is JobStatus.CANCELED

    # AND when the segment function returns, the flow's conditional write refuses the result:
    # the execution ends in Ignored, the job is still CANCELED with no result, no other webhook
    execution = upload_execution(runtime, created.job_id, timeout=120)
    assert execution["stateMachineArn"] == runtime.state_machines["JobStateMachine"]
    entered = states_entered(runtime, execution["executionArn"])
    assert execution["status"] == "SUCCEEDED" and entered[-1] == "Ignored"
    assert "Segment" in entered and "Notify" not in entered
    time.sleep(QUIET_SECONDS)
    job = client.get_job(created.job_id)
    assert job.status is JobStatus.CANCELED and job.result is None
    assert [e.type for e in receiver.events_for(created.job_id)] == [EventType.CANCELED]


@pytest.mark.parametrize("terminal", ["CANCELED", "SUCCEEDED"])
def test_cancel_of_a_terminal_job_is_409(runtime, client, terminal) -> None:
    if terminal == "CANCELED":
        job_id = client.create_job().job_id
        client.cancel(job_id)
    else:
        job_id = client.submit(SAMPLE).job_id
        assert client.wait(job_id, timeout=180).status is JobStatus.SUCCEEDED

    with pytest.raises(SegjobError) as conflict:
        client.cancel(job_id)

    assert conflict.value.status == 409 and conflict.value.code == "JobStateConflict"
    assert client.get_job(job_id).status.value == terminal


def test_cancel_of_another_callers_job_is_404_and_changes_nothing(runtime, client) -> None:
    created = client.create_job()

    response = requests.delete(
        f"{runtime.api_url}/jobs/{created.job_id}", headers=caller_headers(new_caller_key()), timeout=30
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "JobNotFound"
    assert client.get_job(created.job_id).status is JobStatus.AWAITING_UPLOAD


def test_cancel_of_an_unknown_job_is_404(client) -> None:
    with pytest.raises(SegjobError) as missing:
        client.cancel("job_00000000000000000000000000000000")
    assert missing.value.status == 404 and missing.value.code == "JobNotFound"


# --- expiry -------------------------------------------------------------------------------


def test_job_past_its_upload_window_expires_on_get_and_ignores_a_late_upload(runtime) -> None:
    client = caller_client(runtime)
    created = client.create_job(filename=SAMPLE.name)
    # GIVEN the upload window (plus the 60 s grace) is over
    set_expires_at(runtime, created.job_id, datetime.now(UTC) - timedelta(minutes=5))

    # WHEN the owner reads the job THEN it is EXPIRED, and stays so
    assert client.get_job(created.job_id).status is JobStatus.EXPIRED
    assert client.get_job(created.job_id).status is JobStatus.EXPIRED
    with pytest.raises(SegjobError) as conflict:
        client.cancel(created.job_id)
    assert conflict.value.status == 409 and conflict.value.code == "JobStateConflict"

    # WHEN a late upload lands (its S3 event) THEN the execution ends in Ignored
    client.upload(created, SAMPLE)
    execution = upload_execution(runtime, created.job_id)
    entered = states_entered(runtime, execution["executionArn"])
    assert execution["status"] == "SUCCEEDED" and entered[-1] == "Ignored"
    assert "Segment" not in entered
    assert result_keys(runtime, created.job_id) == []
    assert client.get_job(created.job_id).status is JobStatus.EXPIRED


def test_list_shows_expired_jobs_and_keeps_the_grace_period(runtime) -> None:
    client = caller_client(runtime)
    due = client.create_job()
    in_grace = client.create_job()
    fresh = client.create_job()
    now = datetime.now(UTC)
    set_expires_at(runtime, due.job_id, now - timedelta(minutes=5))
    set_expires_at(runtime, in_grace.job_id, now - timedelta(seconds=20))  # within the 60 s grace

    listed = {job.job_id: job.status for job in client.list_jobs(limit=10).jobs}

    assert listed == {
        due.job_id: JobStatus.EXPIRED,
        in_grace.job_id: JobStatus.AWAITING_UPLOAD,
        fresh.job_id: JobStatus.AWAITING_UPLOAD,
    }
    # the list wrote the transition: a GET agrees
    assert client.get_job(due.job_id).status is JobStatus.EXPIRED

"""The two flows in local mode, over real HTTP: the job path on the Express state machine,
what waits on the Standard one (long jobs, webhook retries on the scaled-down day-long
schedule, redeliveries), job.expired from the job's one-time EventBridge Scheduler
schedule (fired by local mode), and the input pinned to the S3 version its upload named."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from botocore.credentials import Credentials

from segjob import Client, SegjobError
from segjob.webhooks import WebhookReceiver
from segjob_core import keys
from segjob_core.jobs import iso
from segjob_core.models import CreateJobResponse, EventType, JobStatus, ResultDocument, WebhookStatus
from tests.support.local_mode import (
    UPLOAD_EVENT_SOURCE,
    caller_client,
    executions_for,
    finished,
    gated_segment,
    new_caller_key,
    result_keys,
    states_entered,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
OTHER_SAMPLE = ROOT / "samples" / "shapes-3.jpg"  # smaller than SAMPLE
EXPRESS, STANDARD = "JobStateMachine", "StandardJobStateMachine"


def flow_runs(runtime, job_id: str, timeout: float = 120.0) -> dict[str, list[dict]]:
    """The job's finished executions by state machine (logical id), once none is running."""
    executions = wait_for(lambda: finished(executions_for(runtime, job_id)), timeout=timeout)
    by_arn = {arn: logical_id for logical_id, arn in runtime.state_machines.items()}
    runs: dict[str, list[dict]] = {EXPRESS: [], STANDARD: []}
    for execution in executions:
        runs[by_arn[execution["stateMachineArn"]]].append(execution)
    return runs


def recording_receiver(runtime, **options) -> WebhookReceiver:
    """A verifying receiver that also records each delivery's webhook-id."""
    delivered: list[tuple[str, str]] = []
    receiver = WebhookReceiver(
        secret=runtime.webhook_secret,
        on_event=lambda event, headers: delivered.append((event.data.job_id, headers["webhook-id"])),
        **options,
    )
    receiver.delivered = delivered  # type: ignore[attr-defined]
    return receiver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the common path: Express only -------------------------------------------------------------


def test_common_path_runs_on_express_only_and_records_the_delivery(runtime, client, receiver) -> None:
    created = client.submit(SAMPLE, webhook_url=receiver.url)
    event = receiver.wait_for(created.job_id, timeout=180)
    runs = flow_runs(runtime, created.job_id)

    # THEN one Express execution did everything; no Standard transition was paid
    assert event.type is EventType.SUCCEEDED
    assert len(runs[EXPRESS]) == 1 and runs[STANDARD] == []
    entered = states_entered(runtime, runs[EXPRESS][0]["executionArn"])
    assert entered[-3:] == ["Notify", "RecordWebhookDelivered", "Done"]
    # AND the payload carries no webhook status of its own (it cannot know it while sent)
    assert event.data.webhook is None
    job = client.get_job(created.job_id)
    assert job.webhook.status is WebhookStatus.DELIVERED
    [attempt] = job.webhook.attempts
    assert (attempt.event, attempt.outcome, attempt.status_code) == (
        EventType.SUCCEEDED,
        WebhookStatus.DELIVERED,
        204,
    )
    # AND the started job's expiry schedule is gone (it would only start a no-op)
    schedules = runtime.boto3_client("scheduler").list_schedules(GroupName=expiry_group(runtime))["Schedules"]
    assert created.job_id not in {s["Name"] for s in schedules}


def test_failed_job_runs_on_express_and_sends_job_failed(runtime, client, receiver, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" * 20)
    created = client.submit(corrupt, webhook_url=receiver.url)

    event = receiver.wait_for(created.job_id, timeout=120)
    runs = flow_runs(runtime, created.job_id)

    assert event.type is EventType.FAILED and event.data.error.code == "InvalidImage"
    assert len(runs[EXPRESS]) == 1 and runs[STANDARD] == []
    assert "MarkFailed" in states_entered(runtime, runs[EXPRESS][0]["executionArn"])


def test_duplicate_upload_event_on_express_runs_nothing_twice(runtime, client, receiver) -> None:
    created = client.submit(SAMPLE, webhook_url=receiver.url)
    receiver.wait_for(created.job_id, timeout=180)
    [first] = flow_runs(runtime, created.job_id)[EXPRESS]

    # WHEN EventBridge delivers the same event again (at-least-once)
    runtime.deliver_event(json.loads(first["input"]))

    runs = wait_for(lambda: (r := flow_runs(runtime, created.job_id)) and len(r[EXPRESS]) == 2 and r)
    second = next(e for e in runs[EXPRESS] if e["executionArn"] != first["executionArn"])
    assert states_entered(runtime, second["executionArn"])[-1] == "Ignored"
    time.sleep(1.0)
    assert len(receiver.events_for(created.job_id)) == 1


# --- what waits: Standard ----------------------------------------------------------------------


def test_long_job_is_handed_over_to_the_standard_flow(runtime, client, receiver, tmp_path) -> None:
    # GIVEN a tiled job (its time grows with its tiles, up to 400: not for Express's 5 minutes)
    created = client.submit(SAMPLE, webhook_url=receiver.url, params={"tileSize": 512, "tileOverlap": 0.25})

    event = receiver.wait_for(created.job_id, timeout=180)
    runs = flow_runs(runtime, created.job_id)

    # THEN Express started it and handed it over; Standard segmented, recorded and notified
    assert event.type is EventType.SUCCEEDED and event.data.result.tiles == 6
    [express], [standard] = runs[EXPRESS], runs[STANDARD]
    express_states = states_entered(runtime, express["executionArn"])
    standard_states = states_entered(runtime, standard["executionArn"])
    assert "StartJob" in express_states and express_states[-2:] == ["HandOverLongJob", "HandedOver"]
    assert "Segment" not in express_states
    assert standard_states[:3] == ["RouteEvent", "ParseLongJob", "Segment"]
    assert standard_states[-3:] == ["Notify", "RecordWebhookDelivered", "Done"]
    job = client.wait(created.job_id, timeout=30)
    client.download_results(job, tmp_path)
    document = ResultDocument.model_validate_json((tmp_path / job.job_id / "result.json").read_text())
    assert document.tiles == 6 and job.status is JobStatus.SUCCEEDED


def test_webhook_failing_first_is_delivered_by_the_standard_retry(runtime, client) -> None:
    with recording_receiver(runtime, fail_with=503) as flaky:
        created = client.submit(SAMPLE, webhook_url=flaky.url)
        wait_for(lambda: flaky.attempts >= 1, timeout=180, interval=0.05)
        flaky.fail_with = None  # the receiver is back before the first retry (1 s locally)

        event = flaky.wait_for(created.job_id, timeout=60)

    runs = flow_runs(runtime, created.job_id)
    job = client.get_job(created.job_id)
    assert event.type is EventType.SUCCEEDED and flaky.attempts == 2
    [express], [retry] = runs[EXPRESS], runs[STANDARD]
    assert states_entered(runtime, express["executionArn"])[-3:] == [
        "AfterFailedAttempt",
        "StartWebhookRetries",
        "Done",
    ]
    assert "WaitBeforeRetry" in states_entered(runtime, retry["executionArn"])
    assert job.webhook.status is WebhookStatus.DELIVERED and job.webhook.error is None
    assert [(a.outcome, a.error) for a in job.webhook.attempts] == [
        (WebhookStatus.FAILED, "WebhookDeliveryFailed"),
        (WebhookStatus.DELIVERED, None),
    ]


def test_receiver_down_longer_than_the_old_retry_window_still_gets_the_event(runtime, client) -> None:
    # GIVEN a receiver that is down (connection refused) for 15 s after the job finishes,
    # longer than the old retries' whole window (2 + 4 + 8 s)
    port = free_port()
    created = client.submit(SAMPLE, webhook_url=f"http://127.0.0.1:{port}/hooks")
    wait_for(lambda: client.get_job(created.job_id).webhook.attempts, timeout=180, interval=0.1)
    down_since = time.monotonic()
    time.sleep(15.0)

    # WHEN it comes back on the same address
    with recording_receiver(runtime, port=port) as back:
        event = back.wait_for(created.job_id, timeout=60)
    down_for = time.monotonic() - down_since

    # THEN a retry of the Standard schedule delivered it, with the first attempt's webhook-id
    # (the job records the delivery once the receiver has answered: wait for it)
    job = wait_for(
        lambda: (j := client.get_job(created.job_id)).webhook.status is WebhookStatus.DELIVERED and j
    )
    assert event.type is EventType.SUCCEEDED and down_for > 15
    assert job.webhook.status is WebhookStatus.DELIVERED
    outcomes = [a.outcome for a in job.webhook.attempts]
    assert outcomes[-1] is WebhookStatus.DELIVERED and outcomes.count(WebhookStatus.FAILED) >= 4
    assert back.delivered == [(created.job_id, f"msg_{created.job_id}_succeeded")]


def test_redeliver_sends_the_last_event_again_with_the_same_webhook_id(runtime, client) -> None:
    with recording_receiver(runtime) as hook:
        created = client.submit(SAMPLE, webhook_url=hook.url)
        hook.wait_for(created.job_id, timeout=180)
        wait_for(lambda: client.get_job(created.job_id).webhook.status is WebhookStatus.DELIVERED)

        # WHEN the owner asks for it again
        pending = client.redeliver_webhook(created.job_id)
        wait_for(lambda: len(hook.events_for(created.job_id)) == 2, timeout=60)
        job = wait_for(
            lambda: (j := client.get_job(created.job_id)).webhook.status is WebhookStatus.DELIVERED and j
        )

    # THEN the same event, same webhook-id, recorded as a second delivered attempt
    assert pending.webhook.status is WebhookStatus.PENDING
    first, again = hook.events_for(created.job_id)
    assert first.type is again.type is EventType.SUCCEEDED and first.timestamp == again.timestamp
    assert hook.delivered == [(created.job_id, f"msg_{created.job_id}_succeeded")] * 2
    assert [a.outcome for a in job.webhook.attempts] == [WebhookStatus.DELIVERED] * 2
    assert [e["name"] for e in flow_runs(runtime, created.job_id)[STANDARD]] == [
        f"{created.job_id}-redelivery-1"
    ]


def test_redeliver_without_a_sent_event_is_409(runtime, client, receiver) -> None:
    awaiting = client.create_job(webhook_url=receiver.url)
    no_webhook = client.submit(SAMPLE)
    client.wait(no_webhook.job_id, timeout=180)

    for job_id, reason in ((awaiting.job_id, "sent no webhook event"), (no_webhook.job_id, "has no webhook")):
        with pytest.raises(SegjobError) as conflict:
            client.redeliver_webhook(job_id)
        assert conflict.value.status == 409 and reason in str(conflict.value)


def test_redeliver_of_another_callers_job_is_404(runtime, client) -> None:
    created = client.create_job()
    with pytest.raises(SegjobError) as missing:
        caller_client(runtime).redeliver_webhook(created.job_id)
    assert missing.value.status == 404


# --- expiry ------------------------------------------------------------------------------------


def expiry_group(runtime) -> str:
    return runtime.stack.physical_name("ExpirySchedules")


def fire_expiry_now(runtime, job_id: str) -> None:
    """As if the upload window (and its grace) passed: the job's schedule becomes due."""
    runtime.boto3_client("dynamodb").update_item(
        TableName=runtime.table,
        Key={"jobId": {"S": job_id}},
        UpdateExpression="SET expiresAt = :when",
        ExpressionAttributeValues={":when": {"S": iso(datetime.now(UTC) - timedelta(minutes=5))}},
    )
    scheduler = runtime.boto3_client("scheduler")
    schedule = scheduler.get_schedule(GroupName=expiry_group(runtime), Name=job_id)
    due = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.update_schedule(
        GroupName=expiry_group(runtime),
        Name=job_id,
        ScheduleExpression=f"at({due})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow=schedule["FlexibleTimeWindow"],
        Target=schedule["Target"],
        ActionAfterCompletion=schedule["ActionAfterCompletion"],
    )


def test_expired_job_sends_job_expired_from_its_schedule(runtime, client, receiver) -> None:
    # GIVEN a job with a webhook: its create made a one-time schedule at the window's end
    created = client.create_job(filename=SAMPLE.name, webhook_url=receiver.url)
    scheduler = runtime.boto3_client("scheduler")
    schedule = scheduler.get_schedule(GroupName=expiry_group(runtime), Name=created.job_id)
    due = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
    assert due > datetime.fromisoformat(created.upload.expires_at)
    assert schedule["Target"]["Arn"] == runtime.state_machine_arn

    # WHEN the window passes without an upload
    fire_expiry_now(runtime, created.job_id)

    # THEN a verified job.expired arrives, the job is EXPIRED, the schedule deleted itself
    event = receiver.wait_for(created.job_id, timeout=60)
    assert event.type is EventType.EXPIRED and event.data.status is JobStatus.EXPIRED
    job = wait_for(
        lambda: (j := client.get_job(created.job_id)).webhook.status is WebhookStatus.DELIVERED and j
    )
    assert job.status is JobStatus.EXPIRED and job.finished_at
    assert created.job_id not in {
        s["Name"] for s in scheduler.list_schedules(GroupName=expiry_group(runtime))["Schedules"]
    }
    # AND a late upload runs nothing
    client.upload(created, SAMPLE)
    upload = wait_for(
        lambda: finished(executions_for(runtime, created.job_id, source=UPLOAD_EVENT_SOURCE)), timeout=60
    )
    assert states_entered(runtime, upload[0]["executionArn"])[-1] == "Ignored"
    assert result_keys(runtime, created.job_id) == []
    assert [e.type for e in receiver.events_for(created.job_id)] == [EventType.EXPIRED]


def test_job_shown_expired_by_a_read_still_sends_job_expired_once(runtime, client, receiver) -> None:
    created = client.create_job(webhook_url=receiver.url)
    fire_expiry_now(runtime, created.job_id)
    assert client.get_job(created.job_id).status is JobStatus.EXPIRED  # the API's lazy expiry may win

    event = receiver.wait_for(created.job_id, timeout=60)
    time.sleep(2.0)
    assert event.type is EventType.EXPIRED
    assert len(receiver.events_for(created.job_id)) == 1


def test_job_without_webhook_gets_no_expiry_schedule(runtime, client) -> None:
    created = client.create_job()
    with pytest.raises(runtime.boto3_client("scheduler").exceptions.ResourceNotFoundException):
        runtime.boto3_client("scheduler").get_schedule(GroupName=expiry_group(runtime), Name=created.job_id)


# --- the input a result was computed from ------------------------------------------------------


def upload_executions(runtime, job_id: str, count: int) -> list[dict]:
    """The job's ``count`` finished upload executions (its first upload and re-uploads)."""
    return wait_for(
        lambda: (
            (u := finished(executions_for(runtime, job_id, source=UPLOAD_EVENT_SOURCE)))
            and len(u) == count
            and u
        ),
        timeout=60,
    )


def input_version(runtime, job_id: str) -> str:
    item = runtime.boto3_client("dynamodb").get_item(TableName=runtime.table, Key={"jobId": {"S": job_id}})
    return item["Item"]["inputVersionId"]["S"]


def test_reupload_while_running_changes_nothing(runtime, client, tmp_path) -> None:
    # GIVEN the segment function held just before it reads its input
    gate = tmp_path / "open"
    corrupt = tmp_path / "replacement.jpg"
    size = SAMPLE.stat().st_size  # the form fixes the size of the upload
    corrupt.write_bytes((b"\xff\xd8\xff\xe0 not the image the job started with" * size)[:size])
    with gated_segment(runtime, gate):
        created = client.submit(SAMPLE)
        wait_for(
            lambda: client.get_job(created.job_id).status is JobStatus.RUNNING, timeout=60, interval=0.05
        )
        pinned = input_version(runtime, created.job_id)

        # WHEN the same presigned POST uploads something else while the job runs
        client.upload(created, corrupt)
        s3 = runtime.boto3_client("s3")
        current = s3.head_object(Bucket=runtime.bucket, Key=keys.upload_key(created.job_id))["VersionId"]
        assert current != pinned
        gate.touch()
        job = client.wait(created.job_id, timeout=120)

    # THEN the job read the version its upload event named: it succeeded on the original
    # image (the replacement is not even an image), and that version is still there, intact
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result.summary.count > 0
    original = s3.get_object(Bucket=runtime.bucket, Key=keys.upload_key(created.job_id), VersionId=pinned)
    assert original["Body"].read() == SAMPLE.read_bytes()
    # AND the replacement's own event ran nothing
    uploads = upload_executions(runtime, created.job_id, count=2)
    assert [states_entered(runtime, e["executionArn"])[-1] for e in uploads].count("Ignored") == 1


def test_reupload_after_the_job_finished_changes_nothing(runtime, client, tmp_path) -> None:
    created = client.submit(SAMPLE)
    job = client.wait(created.job_id, timeout=180)
    pinned = input_version(runtime, created.job_id)
    before = requests.get(job.result.result_url, timeout=30).content

    other = tmp_path / "other.jpg"  # another image, padded to the size the form fixes
    other.write_bytes(OTHER_SAMPLE.read_bytes().ljust(SAMPLE.stat().st_size, b"\0"))
    client.upload(created, other)  # the form is still valid

    uploads = upload_executions(runtime, created.job_id, count=2)
    assert states_entered(runtime, uploads[-1]["executionArn"])[-1] == "Ignored"
    after = client.get_job(created.job_id)
    assert after.status is JobStatus.SUCCEEDED and after.result.summary == job.result.summary
    assert requests.get(after.result.result_url, timeout=30).content == before
    assert input_version(runtime, created.job_id) == pinned
    s3 = runtime.boto3_client("s3")
    original = s3.get_object(Bucket=runtime.bucket, Key=keys.upload_key(created.job_id), VersionId=pinned)
    assert original["Body"].read() == SAMPLE.read_bytes()


# --- bursts --------------------------------------------------------------------------------------


def at_once(count: int, action) -> list[object]:
    """``action(i)`` in ``count`` threads released together; each result or the exception."""
    start = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = action(index)
        except (SegjobError, OSError) as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return outcomes


def test_burst_of_150_concurrent_submissions_has_no_connection_reset(runtime) -> None:
    # GIVEN 150 callers with a connection each (local mode runs one API worker: requests
    # queue, as they would behind a throttled API, so the client waits longer than usual)
    count = 150
    credentials = Credentials(new_caller_key(), "local-test-secret")
    clients = [Client(runtime.api_url, credentials=credentials, timeout=240) for _ in range(count)]

    # WHEN they all create a job at the same moment, then all upload at the same moment
    started = time.monotonic()
    created = at_once(count, lambda i: clients[i].create_job(content_length=SAMPLE.stat().st_size))
    create_s = time.monotonic() - started
    errors = [o for o in created if not isinstance(o, CreateJobResponse)]
    assert errors == [], errors[:3]
    started = time.monotonic()
    uploaded = at_once(count, lambda i: clients[i].upload(created[i], SAMPLE))  # type: ignore[arg-type]
    upload_s = time.monotonic() - started

    # THEN no request was reset or refused, and every job succeeded
    assert [o for o in uploaded if o is not None] == []
    started = time.monotonic()
    deadline = started + 900
    statuses = [
        clients[0].wait(job.job_id, timeout=max(deadline - time.monotonic(), 1)).status  # type: ignore[union-attr]
        for job in created
    ]
    print(
        f"\n150 concurrent creates {create_s:.1f} s, uploads {upload_s:.1f} s, "
        f"all SUCCEEDED {time.monotonic() - started:.1f} s later"
    )
    assert statuses == [JobStatus.SUCCEEDED] * count

"""JobService.cancel and .redeliver against in-memory stores: the races a real table can produce."""

from __future__ import annotations

from typing import Any

import pytest

from job_api.service import JobService
from job_api.settings import ApiSettings
from job_api.storage import JobStateConflict
from segjob_core.models import EventType, JobStatus

OWNER = "arn:aws:iam::123456789012:user/alice"


class RacingJobs:
    """get() returns what the API read; set_status() returns what the table holds by then."""

    def __init__(self, read: dict[str, Any], written: dict[str, Any]) -> None:
        self.read, self.written = read, written

    def get(self, job_id: str, owner: str) -> dict[str, Any]:
        return dict(self.read)

    def set_status(self, job_id: str, owner: str, new: JobStatus, allowed_from: set, now: str) -> dict:
        if JobStatus(self.written["status"]) not in allowed_from:
            raise JobStateConflict(job_id)
        self.written = {**self.written, "status": new.value, "updatedAt": now}
        return dict(self.written)

    def claim_redelivery(self, job_id: str, owner: str) -> dict:
        if self.written.get("webhookStatus") not in ("DELIVERED", "FAILED"):
            raise JobStateConflict(job_id)
        count = self.written.get("redeliveries", 0) + 1
        self.written = {**self.written, "webhookStatus": "PENDING", "redeliveries": count}
        return dict(self.written)

    def release_redelivery(self, job_id: str, previous: str, redeliveries: int) -> None:
        self.written = {**self.written, "webhookStatus": previous}


class RecordingFlows:
    def __init__(self, fail: bool = False) -> None:
        self.notified: list[str] = []
        self.redelivered: list[tuple[str, EventType, int]] = []
        self.fail = fail

    def notify_canceled(self, job_id: str) -> None:
        self.notified.append(job_id)

    def redeliver(self, job_id: str, event_type: EventType, redelivery: int) -> None:
        if self.fail:
            raise RuntimeError("StartExecution failed")
        self.redelivered.append((job_id, event_type, redelivery))


class NoSchedules:
    def schedule(self, job_id: str, at: Any) -> None:
        raise AssertionError("cancel and redeliver schedule nothing")


class Objects:
    def presign_get(self, key: str, ttl: int) -> str:
        return f"https://example.test/{key}"


def job(status: JobStatus, **extra: Any) -> dict[str, Any]:
    return {
        "jobId": "j1",
        "owner": OWNER,
        "status": status.value,
        "createdAt": "2026-11-22T00:00:00.000Z",
        "updatedAt": "2026-11-22T00:00:00.000Z",
        "expiresAt": "2999-01-01T00:00:00.000Z",
        "params": "{}",
        "contentType": "image/jpeg",
        **extra,
    }


def service(jobs: RacingJobs, flows: RecordingFlows) -> JobService:
    settings = ApiSettings.model_validate(
        {
            "JOBS_TABLE": "t",
            "JOBS_BUCKET": "b",
            "JOB_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            "STANDARD_JOB_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:s",
            "EXPIRY_SCHEDULE_GROUP": "g",
            "EXPIRY_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
            "IDEMPOTENCY_TABLE": "i",
            "BATCHES_TABLE": "bt",
            "BATCH_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:batches",
        }
    )
    return JobService(settings, jobs, Objects(), flows, NoSchedules())  # type: ignore[arg-type]


def test_cancel_of_a_run_that_started_after_the_read_is_canceled_and_notified() -> None:
    # GIVEN the API read AWAITING_UPLOAD, and the upload started the run before the write
    jobs = RacingJobs(job(JobStatus.AWAITING_UPLOAD), job(JobStatus.RUNNING, hasWebhook=True))
    flows = RecordingFlows()
    view = service(jobs, flows).cancel(OWNER, "j1")
    # THEN the run's own conditional writes will refuse its result; job.canceled goes out
    assert view.status is JobStatus.CANCELED and jobs.written["status"] == "CANCELED"
    assert flows.notified == ["j1"]


def test_cancel_retried_after_a_lost_notification_sends_it_and_still_answers_409() -> None:
    canceled = job(JobStatus.CANCELED, hasWebhook=True, webhookStatus="PENDING")
    flows = RecordingFlows()
    with pytest.raises(JobStateConflict):
        service(RacingJobs(canceled, canceled), flows).cancel(OWNER, "j1")
    assert flows.notified == ["j1"]


def test_cancel_of_a_canceled_job_whose_notification_was_claimed_sends_nothing() -> None:
    canceled = job(JobStatus.CANCELED, hasWebhook=True, webhookStatus="PENDING", webhookEvent="job.canceled")
    flows = RecordingFlows()
    with pytest.raises(JobStateConflict):
        service(RacingJobs(canceled, canceled), flows).cancel(OWNER, "j1")
    assert flows.notified == []


def test_redeliver_starts_the_last_event_again_and_counts_redeliveries() -> None:
    done = job(JobStatus.SUCCEEDED, hasWebhook=True, webhookStatus="FAILED", webhookEvent="job.succeeded")
    jobs, flows = RacingJobs(done, done), RecordingFlows()
    first = service(jobs, flows).redeliver(OWNER, "j1")
    jobs.written["webhookStatus"] = "DELIVERED"  # the flow delivered it
    service(jobs, flows).redeliver(OWNER, "j1")
    assert first.webhook is None or first.webhook.status.value == "PENDING"
    assert flows.redelivered == [("j1", EventType.SUCCEEDED, 1), ("j1", EventType.SUCCEEDED, 2)]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, "has no webhook"),
        ({"hasWebhook": True, "webhookStatus": "PENDING"}, "sent no webhook event"),
        ({"hasWebhook": True, "webhookStatus": "PENDING", "webhookEvent": "job.failed"}, "under way"),
    ],
)
def test_redeliver_is_refused_without_a_finished_delivery(extra: dict, reason: str) -> None:
    item = job(JobStatus.FAILED, **extra)
    flows = RecordingFlows()
    with pytest.raises(JobStateConflict, match=reason):
        service(RacingJobs(item, item), flows).redeliver(OWNER, "j1")
    assert flows.redelivered == []


def test_redeliver_that_cannot_start_gives_the_delivery_back() -> None:
    done = job(JobStatus.SUCCEEDED, hasWebhook=True, webhookStatus="DELIVERED", webhookEvent="job.succeeded")
    jobs = RacingJobs(done, done)
    with pytest.raises(RuntimeError):
        service(jobs, RecordingFlows(fail=True)).redeliver(OWNER, "j1")
    assert jobs.written["webhookStatus"] == "DELIVERED"

"""JobService.cancel against in-memory stores: the races a real table can produce."""

from __future__ import annotations

from typing import Any

import pytest

from job_api.service import JobService
from job_api.settings import ApiSettings
from job_api.storage import JobStateConflict
from segjob_core.models import JobStatus

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


class RecordingFlows:
    def __init__(self) -> None:
        self.stopped: list[str] = []
        self.notified: list[str] = []

    def stop(self, execution_arn: str, cause: str) -> None:
        self.stopped.append(execution_arn)

    def notify_canceled(self, job_id: str) -> None:
        self.notified.append(job_id)


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
            "IDEMPOTENCY_TABLE": "i",
        }
    )
    return JobService(settings, jobs, Objects(), flows)  # type: ignore[arg-type]


def test_cancel_stops_a_run_that_started_after_the_read() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:m:run-j1"
    jobs = RacingJobs(job(JobStatus.AWAITING_UPLOAD), job(JobStatus.RUNNING, executionArn=arn))
    flows = RecordingFlows()
    view = service(jobs, flows).cancel(OWNER, "j1")
    assert view.status is JobStatus.CANCELED and jobs.written["status"] == "CANCELED"
    assert flows.stopped == [arn]


def test_cancel_retried_after_a_lost_notification_sends_it_and_still_answers_409() -> None:
    canceled = job(JobStatus.CANCELED, hasWebhook=True, webhookStatus="PENDING")
    flows = RecordingFlows()
    with pytest.raises(JobStateConflict):
        service(RacingJobs(canceled, canceled), flows).cancel(OWNER, "j1")
    assert flows.notified == ["j1"]


def test_cancel_of_a_canceled_job_whose_webhook_went_out_sends_nothing() -> None:
    canceled = job(JobStatus.CANCELED, hasWebhook=True, webhookStatus="DELIVERED")
    flows = RecordingFlows()
    with pytest.raises(JobStateConflict):
        service(RacingJobs(canceled, canceled), flows).cancel(OWNER, "j1")
    assert flows.notified == [] and flows.stopped == []

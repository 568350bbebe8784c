"""Job logic of the API: what a create, get, list or cancel means. No HTTP, no boto3."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from job_api.settings import ApiSettings
from job_api.storage import ExpirySchedules, JobFlows, JobStateConflict, JobStore, ObjectStore
from segjob_core import keys
from segjob_core.jobs import iso, item_to_job, utc_now
from segjob_core.models import (
    CreateJobRequest,
    CreateJobResponse,
    EventType,
    Job,
    JobList,
    JobParams,
    JobStatus,
    UploadForm,
    WebhookStatus,
)
from segjob_core.netguard import check_webhook_url

# An upload that began just before its policy expired may still be landing: wait a little
# longer before calling the job EXPIRED.
EXPIRY_GRACE_SECONDS = 60


class JobService:
    def __init__(
        self,
        settings: ApiSettings,
        jobs: JobStore,
        objects: ObjectStore,
        flows: JobFlows,
        expiry: ExpirySchedules,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._objects = objects
        self._flows = flows
        self._expiry = expiry

    @property
    def settings(self) -> ApiSettings:
        return self._settings

    def create(self, owner: str, request: CreateJobRequest) -> CreateJobResponse:
        """Write the job AWAITING_UPLOAD and hand out the presigned POST for its input."""
        settings = self._settings
        if request.webhook_url:
            # WebhookTargetRefused -> 400; the notify function checks again at delivery time.
            check_webhook_url(request.webhook_url, allow_loopback=settings.allow_loopback_webhooks)
        if request.content_length is not None and request.content_length > settings.max_upload_bytes:
            raise UploadTooLarge(request.content_length, settings.max_upload_bytes)
        now = utc_now()
        job_id = keys.new_job_id()
        item = new_job_item(
            settings,
            owner,
            job_id,
            now,
            content_type=request.content_type,
            content_length=request.content_length,
            params=request.params,
            filename=request.filename,
            metadata=request.metadata,
            webhook_url=request.webhook_url,
        )
        if request.webhook_url:
            # job.expired needs a webhook to go to; a job without one expires on read only.
            # Scheduled before the job is written: a failure here leaves no job behind, and a
            # schedule whose job was never written finds nothing to expire (conditional write).
            self._expiry.schedule(job_id, expires_at(item) + timedelta(seconds=EXPIRY_GRACE_SECONDS + 1))
        self._jobs.put_new(item)
        job = item_to_job(item)
        upload = presign_upload(self._objects, settings, item, request.content_length)
        return CreateJobResponse(**job.model_dump(), upload=upload)

    def get(self, owner: str, job_id: str) -> Job:
        return self._view(self._expire_if_due(self._jobs.get(job_id, owner)))

    def list(self, owner: str, limit: int, token: str | None, status: JobStatus | None = None) -> JobList:
        items, next_token = self._jobs.list_by_owner(owner, limit, token, status)
        jobs = [self._view(self._expire_if_due(item)) for item in items]
        # a job that expired on this read no longer has the status asked for
        return JobList(jobs=[j for j in jobs if status in (None, j.status)], next_token=next_token)

    def cancel(self, owner: str, job_id: str) -> Job:
        """A job awaiting its upload never runs; a running one keeps no result: the flow's
        conditional writes refuse it (an Express execution cannot be stopped, and an
        invocation in flight is not killed). The flow sends the job.canceled webhook."""
        item = self._expire_if_due(self._jobs.get(job_id, owner))
        status = JobStatus(item["status"])
        if status.terminal:
            if status is JobStatus.CANCELED and item.get("hasWebhook") and not item.get("webhookEvent"):
                # an earlier cancel stopped before its notification started: start it (the
                # flow claims the notification once), then still answer 409
                self._flows.notify_canceled(job_id)
            raise JobStateConflict(job_id, f"job {job_id} is already {status.value}")
        canceled = self._jobs.set_status(
            job_id, owner, JobStatus.CANCELED, {JobStatus.AWAITING_UPLOAD, JobStatus.RUNNING}, iso(utc_now())
        )
        if canceled.get("hasWebhook"):
            self._flows.notify_canceled(job_id)
        return self._view(canceled)

    def redeliver(self, owner: str, job_id: str) -> Job:
        """Send the job's last webhook event again (same webhook-id), now and then on the
        retry schedule until it is delivered."""
        item = self._jobs.get(job_id, owner)
        if not item.get("hasWebhook"):
            raise JobStateConflict(job_id, f"job {job_id} has no webhook")
        if not item.get("webhookEvent"):
            raise JobStateConflict(job_id, f"job {job_id} has sent no webhook event yet")
        try:
            claimed = self._jobs.claim_redelivery(job_id, owner)
        except JobStateConflict as exc:
            raise JobStateConflict(job_id, f"a delivery of job {job_id}'s webhook is under way") from exc
        redelivery = int(claimed["redeliveries"])
        try:
            self._flows.redeliver(job_id, EventType(claimed["webhookEvent"]), redelivery)
        except Exception:
            self._jobs.release_redelivery(
                job_id, item.get("webhookStatus", WebhookStatus.FAILED.value), redelivery
            )
            raise
        return self._view(claimed)

    def _expire_if_due(self, item: dict[str, Any]) -> dict[str, Any]:
        """Upload window over without an upload: AWAITING_UPLOAD -> EXPIRED (on read; the
        presigned POST has expired too, so the job can no longer start). A batch's items
        wait for their batch's map instead (they are never started by an upload)."""
        if item["status"] != JobStatus.AWAITING_UPLOAD.value or item.get("batchId"):
            return item
        grace = timedelta(seconds=EXPIRY_GRACE_SECONDS)
        if utc_now() < datetime.fromisoformat(item["expiresAt"]) + grace:
            return item
        try:
            return self._jobs.set_status(
                item["jobId"], item["owner"], JobStatus.EXPIRED, {JobStatus.AWAITING_UPLOAD}, iso(utc_now())
            )
        except JobStateConflict:  # the upload won the race: show what it wrote
            return self._jobs.get(item["jobId"], item["owner"])

    def _view(self, item: dict[str, Any]) -> Job:
        ttl = self._settings.result_url_ttl
        return item_to_job(item, presign=lambda key: self._objects.presign_get(key, ttl))


def new_job_item(
    settings: ApiSettings,
    owner: str,
    job_id: str,
    now: datetime,
    *,
    content_type: str,
    content_length: int | None,
    params: JobParams,
    filename: str | None = None,
    metadata: dict[str, Any] | None = None,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    """A new job's item, AWAITING_UPLOAD (single jobs and the items of a batch)."""
    item: dict[str, Any] = {
        "jobId": job_id,
        "owner": owner,
        "status": JobStatus.AWAITING_UPLOAD.value,
        "createdAt": iso(now),
        "updatedAt": iso(now),
        "expiresAt": iso(now + timedelta(seconds=settings.upload_window_seconds)),
        "ttl": int((now + timedelta(days=settings.retention_days)).timestamp()),
        "contentType": content_type,
        "maxBytes": content_length or settings.max_upload_bytes,
        "params": params.model_dump_json(by_alias=True),
        "hasWebhook": bool(webhook_url),
    }
    if filename:
        item["filename"] = filename
    if metadata:
        item["metadata"] = json.dumps(metadata)
    if webhook_url:
        item["webhookUrl"] = webhook_url
        item["webhookStatus"] = "PENDING"
    return item


def expires_at(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["expiresAt"])


def presign_upload(
    objects: ObjectStore,
    settings: ApiSettings,
    item: dict[str, Any],
    content_length: int | None,
    key: str | None = None,
) -> UploadForm:
    """The presigned POST of a job's input (at ``key``, default ``uploads/{jobId}/input``):
    the key, the content type and the size range are fixed."""
    max_bytes = int(item["maxBytes"])
    form = objects.presign_upload(
        key or keys.upload_key(item["jobId"]),
        item["contentType"],
        content_length or 1,
        max_bytes,
        settings.upload_window_seconds,
    )
    return UploadForm(
        url=form["url"], fields=form["fields"], max_bytes=max_bytes, expires_at=item["expiresAt"]
    )


class UploadTooLarge(Exception):
    def __init__(self, requested: int, limit: int) -> None:
        super().__init__(f"contentLength {requested} exceeds the upload limit of {limit} bytes")

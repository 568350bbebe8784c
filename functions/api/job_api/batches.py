"""Batch logic of the API: create, start, renew uploads, get, list, cancel. No boto3 here.

A batch's items are ordinary jobs (``batchId``, ``batchIndex``), created with the batch;
uploads of a batch's files do not start them: the batch flow does, once started.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from job_api.batch_storage import BatchFlow, BatchStateConflict, BatchStore
from job_api.service import UploadTooLarge, new_job_item, presign_upload
from job_api.settings import ApiSettings
from job_api.storage import ObjectStore, SourceUnreadable
from segjob_core import batches as layout
from segjob_core.batches import (
    MAX_BATCH_ITEMS,
    Batch,
    BatchItemUpload,
    BatchList,
    BatchSource,
    BatchStatus,
    BatchTimings,
    BatchUploads,
    CreateBatchRequest,
    CreateBatchResponse,
    item_to_batch,
)
from segjob_core.jobs import iso, utc_now
from segjob_core.netguard import check_webhook_url

# A manifest of keys is read up to this size: 1,000 keys of up to 1,024 bytes each.
MAX_MANIFEST_BYTES = MAX_BATCH_ITEMS * 1025


class SourceNotAllowed(Exception):
    """The batch names a bucket outside the template's BatchSourceBuckets."""


class InvalidSource(Exception):
    """The S3 source holds no image keys, too many, or its manifest cannot be read."""


class BatchService:
    def __init__(
        self, settings: ApiSettings, store: BatchStore, objects: ObjectStore, flow: BatchFlow
    ) -> None:
        self._settings = settings
        self._store = store
        self._objects = objects
        self._flow = flow

    def create(self, owner: str, request: CreateBatchRequest) -> CreateBatchResponse:
        settings = self._settings
        if request.webhook_url:
            check_webhook_url(request.webhook_url, allow_loopback=settings.allow_loopback_webhooks)
        now = utc_now()
        batch_id = layout.new_batch_id()
        if request.files is not None:
            too_large = [
                f.content_length for f in request.files if (f.content_length or 0) > settings.max_upload_bytes
            ]
            if too_large:
                raise UploadTooLarge(max(n for n in too_large if n), settings.max_upload_bytes)
            files = [(f.filename, f.content_type, f.content_length) for f in request.files]
        else:
            assert request.source is not None  # one of the two: the model checks it
            files = [(key, "application/octet-stream", None) for key in self._source_keys(request.source)]
        jobs = [
            new_job_item(
                settings,
                owner,
                layout.item_job_id(batch_id, index),
                now,
                content_type=content_type,
                content_length=length,
                params=request.params,
                filename=name,
            )
            | {"batchId": batch_id, "batchIndex": index}
            for index, (name, content_type, length) in enumerate(files)
        ]
        if request.source is not None:
            for job in jobs:
                job["sourceBucket"] = request.source.bucket
        batch: dict[str, Any] = {
            "batchId": batch_id,
            "owner": owner,
            "status": BatchStatus.AWAITING_UPLOAD.value,
            "createdAt": iso(now),
            "updatedAt": iso(now),
            "ttl": int((now + timedelta(days=settings.retention_days)).timestamp()),
            "total": len(jobs),
            "params": request.params.model_dump_json(by_alias=True),
            "hasWebhook": bool(request.webhook_url),
        }
        if request.metadata:
            batch["metadata"] = json.dumps(request.metadata)
        if request.source:
            batch["source"] = request.source.model_dump_json(by_alias=True, exclude_none=True)
        if request.webhook_url:
            batch |= {"webhookUrl": request.webhook_url, "webhookStatus": "PENDING"}
        self._store.put_new(batch, jobs)
        if request.source is not None:
            batch = self._start(batch, jobs)
            return CreateBatchResponse(**self._view(batch, jobs).model_dump())
        uploads = [
            BatchItemUpload(
                job_id=job["jobId"],
                filename=job["filename"],
                upload=presign_upload(
                    self._objects, settings, job, file.content_length, layout.item_upload_key(job["jobId"])
                ),
            )
            for job, file in zip(jobs, request.files or [], strict=True)
        ]
        return CreateBatchResponse(**self._view(batch, jobs).model_dump(), uploads=uploads)

    def _source_keys(self, source: BatchSource) -> list[str]:
        if source.bucket not in self._settings.allowed_source_buckets:
            raise SourceNotAllowed(f"bucket {source.bucket} is not one of the stack's BatchSourceBuckets")
        try:
            if source.prefix is not None:
                found = self._objects.keys_under(source.prefix, source.bucket, MAX_BATCH_ITEMS + 1)
                found = [key for key in found if not key.endswith("/")]  # folder markers
            else:
                assert source.manifest_key is not None
                text = self._objects.read_text(source.bucket, source.manifest_key, MAX_MANIFEST_BYTES + 1)
                found = [line.strip() for line in text.splitlines() if line.strip()]
        except SourceUnreadable as exc:
            raise InvalidSource(str(exc)) from exc
        if not found:
            raise InvalidSource(
                f"s3://{source.bucket}/{source.prefix or source.manifest_key} names no objects"
            )
        if len(found) > MAX_BATCH_ITEMS:
            raise InvalidSource(f"a batch has at most {MAX_BATCH_ITEMS} items; the source has more")
        return found

    def start(self, owner: str, batch_id: str) -> Batch:
        """Run the batch's items (a batch of files: once uploaded; missing inputs fail with InputMissing)."""
        batch = self._store.get(batch_id, owner)
        if batch["status"] != BatchStatus.AWAITING_UPLOAD.value:
            raise BatchStateConflict(f"batch {batch_id} is {batch['status']}, not AWAITING_UPLOAD")
        jobs = self._store.items(batch_id)
        return self._view(self._start(batch, jobs), jobs)

    def _start(self, batch: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
        batch_id = batch["batchId"]
        items = [
            {
                "jobId": job["jobId"],
                "bucket": job.get("sourceBucket", self._settings.jobs_bucket),
                "key": job["filename"] if job.get("sourceBucket") else layout.item_upload_key(job["jobId"]),
            }
            for job in jobs
        ]
        self._objects.put_json(layout.items_key(batch_id), items)
        started = self._store.set_status(
            batch_id,
            batch["owner"],
            BatchStatus.RUNNING,
            BatchStatus.AWAITING_UPLOAD,
            iso(utc_now()),
            startedAt=iso(utc_now()),
        )
        self._flow.start(batch_id, self._settings.jobs_bucket, layout.items_key(batch_id))
        return started

    def renew_uploads(self, owner: str, batch_id: str) -> BatchUploads:
        """Fresh upload forms of the items whose input has not arrived yet."""
        batch = self._store.get(batch_id, owner)
        if batch["status"] != BatchStatus.AWAITING_UPLOAD.value:
            raise BatchStateConflict(f"batch {batch_id} is {batch['status']}: its uploads are closed")
        arrived = set(self._objects.keys_under(layout.item_upload_prefix(batch_id)))
        now = utc_now()
        uploads = []
        for job in self._store.items(batch_id):
            if layout.item_upload_key(job["jobId"]) in arrived:
                continue
            renewed = job | {"expiresAt": iso(now + timedelta(seconds=self._settings.upload_window_seconds))}
            length = int(job["maxBytes"]) if int(job["maxBytes"]) != self._settings.max_upload_bytes else None
            uploads.append(
                BatchItemUpload(
                    job_id=job["jobId"],
                    filename=job["filename"],
                    upload=presign_upload(
                        self._objects, self._settings, renewed, length, layout.item_upload_key(job["jobId"])
                    ),
                )
            )
        return BatchUploads(uploads=uploads)

    def get(self, owner: str, batch_id: str) -> Batch:
        batch = self._store.get(batch_id, owner)
        return self._view(batch, None if batch.get("counts") else self._store.items(batch_id, ("status",)))

    def list_page(self, owner: str, limit: int, token: str | None) -> BatchList:
        items, next_token = self._store.list_by_owner(owner, limit, token)
        views = [
            self._view(item, None if item.get("counts") else self._store.items(item["batchId"], ("status",)))
            for item in items
        ]
        return BatchList(batches=views, next_token=next_token)

    def cancel(self, owner: str, batch_id: str) -> Batch:
        """Items not started never run; running ones keep no result. The flow, if it runs,
        still writes the manifest and sends batch.completed (status CANCELED)."""
        batch = self._store.get(batch_id, owner)
        now = iso(utc_now())
        status = BatchStatus(batch["status"])
        if status not in (BatchStatus.AWAITING_UPLOAD, BatchStatus.RUNNING):
            raise BatchStateConflict(f"batch {batch_id} is already {status.value}")
        try:
            canceled = self._store.set_status(batch_id, owner, BatchStatus.CANCELED, status, now)
        except BatchStateConflict:
            raise BatchStateConflict(f"batch {batch_id} changed status meanwhile; read it again") from None
        jobs = self._store.items(batch_id, ("jobId", "status"))
        for job in jobs:
            if job["status"] in ("AWAITING_UPLOAD", "RUNNING"):
                self._store.cancel_item(job["jobId"], now)
        return self._view(canceled, self._store.items(batch_id, ("status",)))

    def _view(self, item: dict[str, Any], jobs: list[dict[str, Any]] | None) -> Batch:
        counts = Counter(job["status"] for job in jobs) if jobs is not None else None
        timings = None
        if item.get("startedAt") and not item.get("timings"):
            elapsed = (utc_now() - datetime.fromisoformat(item["startedAt"])).total_seconds() * 1000
            timings = BatchTimings(elapsed_ms=round(elapsed, 1))
        ttl = self._settings.result_url_ttl
        return item_to_batch(item, counts, lambda key: self._objects.presign_get(key, ttl), timings)

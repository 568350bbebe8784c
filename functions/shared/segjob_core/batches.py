"""Batches: many images as one request, each image an ordinary job of the batch.

The contracts of ``/batches`` (request and response bodies, the results manifest, the
``batch.completed`` webhook), the S3 layout of a batch, and the API view of a batch item.
Job items of a batch carry ``batchId`` and ``batchIndex`` (the ``ByBatch`` index of the
jobs table); the batch itself is one item of the batches table.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from .jobs import normalize_timestamp
from .models import (
    SUPPORTED_CONTENT_TYPES,
    ClientInput,
    Contract,
    ErrorInfo,
    EventType,
    JobParams,
    JobStatus,
    Metadata,
    OutputKind,
    UploadForm,
    WebhookStatus,
)

# Items of one batch: N upload forms fit in one answer (~1.5 KB each) and the API writes
# the N job records within its timeout. Larger sets: several batches.
MAX_BATCH_ITEMS = 1000
BATCH_PREFIX = "batches/"


class BatchStatus(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"  # a batch of files: waiting for its uploads and the start
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # every item is terminal; the manifest and the COCO file are written
    CANCELED = "CANCELED"
    FAILED = "FAILED"  # the results could not be aggregated (the items' jobs keep theirs)


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(16)


def item_job_id(batch_id: str, index: int) -> str:
    """Job ids of a batch share a prefix, so one S3 listing finds which inputs arrived."""
    return f"job_{batch_id.removeprefix('batch_')}_{index:05d}"


# Uploads of a batch's files: outside uploads/, whose events start the single-job flow.
BATCH_UPLOAD_PREFIX = "batch-uploads/"


def item_upload_key(job_id: str) -> str:
    return f"{BATCH_UPLOAD_PREFIX}{job_id}/input"


def item_upload_prefix(batch_id: str) -> str:
    return f"{BATCH_UPLOAD_PREFIX}job_{batch_id.removeprefix('batch_')}_"


def items_key(batch_id: str) -> str:
    return f"{BATCH_PREFIX}{batch_id}/items.json"


def manifest_key(batch_id: str) -> str:
    return f"{BATCH_PREFIX}{batch_id}/manifest.jsonl"


def coco_key(batch_id: str) -> str:
    return f"{BATCH_PREFIX}{batch_id}/coco.json"


# requests ------------------------------------------------------------------------------


class BatchFile(ClientInput):
    filename: str = Field(
        min_length=1, max_length=255, description="listed in the manifest and the COCO file"
    )
    content_type: Literal[SUPPORTED_CONTENT_TYPES] = "image/jpeg"  # type: ignore[valid-type]
    content_length: int | None = Field(None, ge=1, description="exact upload size, if known")


class BatchSource(ClientInput):
    """Objects already in S3, in a bucket the stack may read (template parameter BatchSourceBuckets)."""

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str | None = Field(None, max_length=1024, description="every object under this prefix")
    manifest_key: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="a text object in the bucket: one object key per line",
    )

    @model_validator(mode="after")
    def _one_of(self) -> BatchSource:
        if (self.prefix is None) == (self.manifest_key is None):
            raise ValueError("give exactly one of prefix and manifestKey")
        return self


class CreateBatchRequest(ClientInput):
    files: list[BatchFile] | None = Field(
        None, min_length=1, max_length=MAX_BATCH_ITEMS, description="files to upload: one upload form each"
    )
    source: BatchSource | None = Field(
        None, description="objects in S3 instead of uploads; the batch starts at once"
    )
    webhook_url: str | None = Field(None, max_length=2048, description="receives one batch.completed event")
    params: JobParams = Field(default_factory=lambda: JobParams())  # noqa: PLW0108 - mypy needs the call
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _one_of(self) -> CreateBatchRequest:
        if (self.files is None) == (self.source is None):
            raise ValueError("give exactly one of files and source")
        return self


# responses ---------------------------------------------------------------------------


class BatchItemUpload(Contract):
    job_id: str
    filename: str
    upload: UploadForm


class BatchResults(Contract):
    manifest_key: str
    coco_key: str
    manifest_url: str | None = Field(None, description="presigned GET of manifest.jsonl")
    coco_url: str | None = Field(None, description="presigned GET of coco.json")


class BatchTimings(Contract):
    elapsed_ms: float | None = Field(None, description="start to now, or to the end")
    images_per_minute: float | None = Field(None, description="terminal items per minute of elapsed time")
    segment_ms_median: float | None = Field(None, description="median segment time of the succeeded items")
    segment_ms_p90: float | None = None


class BatchWebhookInfo(Contract):
    url: str
    status: WebhookStatus
    error: str | None = None
    delivered_at: str | None = None


class Batch(Contract):
    batch_id: str
    status: BatchStatus
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    total: int = Field(description="items in the batch")
    counts: dict[JobStatus, int] = Field(description="items by job status")
    progress: float = Field(ge=0, le=1, description="share of items that are terminal")
    params: JobParams
    metadata: dict[str, Any] | None = None
    source: BatchSource | None = None
    timings: BatchTimings | None = None
    results: BatchResults | None = Field(None, description="when COMPLETED (or CANCELED after it ran)")
    webhook: BatchWebhookInfo | None = None


class CreateBatchResponse(Batch):
    uploads: list[BatchItemUpload] | None = Field(
        None, description="a batch of files: POST each file with its form, then POST /batches/{batchId}/start"
    )


class BatchUploads(Contract):
    """Fresh upload forms of the items whose input has not arrived (resuming an interrupted upload)."""

    uploads: list[BatchItemUpload]


class BatchList(Contract):
    batches: list[Batch]
    next_token: str | None = None


class ManifestLine(Contract):
    """One line of manifest.jsonl: an item of the batch, in submission order."""

    index: int
    job_id: str
    name: str = Field(description="the file name (uploads) or the object key (an S3 source)")
    status: JobStatus
    error: ErrorInfo | None = None
    detections: int | None = None
    by_class: dict[str, int] | None = None
    result_key: str | None = None
    annotated_key: str | None = None
    output_keys: dict[OutputKind, str] | None = None
    coco_image_id: int | None = Field(None, description="the item's image id in coco.json (succeeded items)")


class BatchWebhookEvent(Contract):
    type: Literal[EventType.BATCH_COMPLETED]
    timestamp: str
    data: Batch


# items of the batches table ------------------------------------------------------------


def query_batch_jobs(
    jobs_table: Any, batch_id: str, attributes: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """The batch's job items in submission order (the jobs table's ``ByBatch`` index, every
    page), only ``attributes`` of each if given. ``jobs_table``: a boto3 DynamoDB Table."""
    from boto3.dynamodb.conditions import Key  # noqa: PLC0415 - boto3 only where needed

    query: dict[str, Any] = {"IndexName": "ByBatch", "KeyConditionExpression": Key("batchId").eq(batch_id)}
    if attributes:
        query["ProjectionExpression"] = ", ".join(f"#{i}" for i in range(len(attributes)))
        query["ExpressionAttributeNames"] = {f"#{i}": name for i, name in enumerate(attributes)}
    items: list[dict[str, Any]] = []
    while True:
        page = jobs_table.query(**query)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


Presign = Callable[[str], str]


def _webhook(item: Mapping[str, Any]) -> BatchWebhookInfo | None:
    if not item.get("webhookUrl"):
        return None
    delivered = item.get("webhookDeliveredAt")
    return BatchWebhookInfo(
        url=item["webhookUrl"],
        status=WebhookStatus(item.get("webhookStatus", WebhookStatus.PENDING)),
        error=item.get("webhookErrorCode"),
        delivered_at=normalize_timestamp(delivered) if delivered else None,
    )


def item_to_batch(
    item: Mapping[str, Any],
    counts: Mapping[str, int] | None = None,
    presign: Presign | None = None,
    timings: BatchTimings | None = None,
) -> Batch:
    """The API view of a batch item; ``counts`` (by job status) are the live ones when
    given, else those recorded when the batch completed."""
    recorded = json.loads(item["counts"]) if item.get("counts") else {}
    by_status = {JobStatus(k): int(v) for k, v in (counts if counts is not None else recorded).items() if v}
    total = int(item["total"])
    terminal = sum(n for status, n in by_status.items() if status.terminal)
    results = None
    if item.get("manifestKey"):
        results = BatchResults(
            manifest_key=item["manifestKey"],
            coco_key=item["cocoKey"],
            manifest_url=presign(item["manifestKey"]) if presign else None,
            coco_url=presign(item["cocoKey"]) if presign else None,
        )
    if timings is None and item.get("timings"):
        timings = BatchTimings.model_validate_json(item["timings"])
    optional = {name: item.get(name) for name in ("startedAt", "finishedAt")}
    return Batch(
        batch_id=item["batchId"],
        status=BatchStatus(item["status"]),
        created_at=normalize_timestamp(item["createdAt"]),
        updated_at=normalize_timestamp(item["updatedAt"]),
        started_at=normalize_timestamp(optional["startedAt"]) if optional["startedAt"] else None,
        finished_at=normalize_timestamp(optional["finishedAt"]) if optional["finishedAt"] else None,
        total=total,
        counts=by_status,
        progress=round(terminal / total, 4) if total else 1.0,
        params=JobParams.model_validate_json(item["params"]),
        metadata=json.loads(item["metadata"]) if item.get("metadata") else None,
        source=BatchSource.model_validate_json(item["source"]) if item.get("source") else None,
        timings=timings,
        results=results,
        webhook=_webhook(item),
    )

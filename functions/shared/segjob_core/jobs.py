"""Job items in the jobs table and their API view.

The table holds one item per job (partition key ``jobId``). Structured values (params,
metadata, the segment outcome) are stored as JSON strings so the state machine can write
them with ``States.JsonToString`` without DynamoDB type mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .models import (
    ErrorInfo,
    EventType,
    Job,
    JobParams,
    JobProgress,
    JobResult,
    JobStatus,
    SegmentOutcome,
    WebhookAttempt,
    WebhookInfo,
    WebhookStatus,
)

Presign = Callable[[str], str]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    """The one timestamp format of the API, result.json and webhooks: ISO 8601 UTC with
    milliseconds and ``Z`` (``2026-11-22T10:15:30.123Z``)."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normalize_timestamp(value: str) -> str:
    """``value`` in the format of ``iso``. Step Functions writes ``$$.State.EnteredTime``
    (AWS: ``...T10:15:30.123Z``; moto: ``...T10:15:30.123456+00:00``); a value that is
    not a timestamp is returned unchanged."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _timestamp(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return normalize_timestamp(value) if isinstance(value, str) else value


def from_dynamodb(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values from DynamoDB attribute values (as Step Functions returns them)."""
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - boto3 only where needed

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def error_message(cause: str | None) -> str:
    """The human part of a Step Functions error cause (a Lambda error's JSON, or text)."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause[:1000]
    if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
        return parsed["errorMessage"][:1000]
    return cause[:1000]


def _webhook_error(item: Mapping[str, Any]) -> str | None:
    """The last failed attempt's error, while the webhook is not delivered."""
    if not item.get("webhookErrorCode") or item.get("webhookStatus") == WebhookStatus.DELIVERED:
        return None
    return f"{item['webhookErrorCode']}: {error_message(item.get('webhookErrorCause'))}"


def _webhook_attempts(item: Mapping[str, Any]) -> list[WebhookAttempt] | None:
    attempts = item.get("webhookAttempts")
    if not attempts:
        return None
    return [
        WebhookAttempt(
            at=normalize_timestamp(attempt["at"]),
            event=EventType(attempt["event"]),
            outcome=WebhookStatus(attempt["outcome"]),
            status_code=int(attempt["statusCode"]) if attempt.get("statusCode") is not None else None,
            error=attempt.get("error"),
        )
        for attempt in attempts
    ]


def job_error(item: Mapping[str, Any]) -> ErrorInfo | None:
    """A failed job's error: its code and the human part of its cause."""
    if not item.get("errorCode"):
        return None
    return ErrorInfo(code=item["errorCode"], message=error_message(item.get("errorCause")))


def item_to_job(item: Mapping[str, Any], presign: Presign | None = None) -> Job:
    """The API view of a job item; ``presign`` turns result keys into download URLs."""
    result = None
    if item.get("result"):
        outcome = SegmentOutcome.model_validate_json(item["result"])
        result = JobResult(
            summary=outcome.summary,
            timings=outcome.timings.model_dump(),
            result_key=outcome.result_key,
            annotated_key=outcome.annotated_key,
            result_url=presign(outcome.result_key) if presign else None,
            annotated_url=presign(outcome.annotated_key) if presign and outcome.annotated_key else None,
            tiles=outcome.tiles,
            output_keys=outcome.output_keys,
            output_urls={kind: presign(key) for kind, key in outcome.output_keys.items()}
            if presign and outcome.output_keys
            else None,
        )
    error = job_error(item)
    progress = None
    if item.get("tilesTotal"):
        progress = JobProgress(tiles_done=int(item.get("tilesDone", 0)), tiles_total=int(item["tilesTotal"]))
    webhook = None
    if item.get("webhookUrl"):
        webhook = WebhookInfo(
            url=item["webhookUrl"],
            status=WebhookStatus(item.get("webhookStatus", WebhookStatus.PENDING)),
            error=_webhook_error(item),
            delivered_at=_timestamp(item, "webhookDeliveredAt"),
            attempts=_webhook_attempts(item),
        )
    return Job(
        job_id=item["jobId"],
        status=JobStatus(item["status"]),
        created_at=normalize_timestamp(item["createdAt"]),
        updated_at=normalize_timestamp(item["updatedAt"]),
        expires_at=normalize_timestamp(item["expiresAt"]),
        filename=item.get("filename"),
        content_type=item["contentType"],
        params=JobParams.model_validate_json(item["params"]),
        metadata=json.loads(item["metadata"]) if item.get("metadata") else None,
        started_at=_timestamp(item, "startedAt"),
        finished_at=_timestamp(item, "finishedAt"),
        progress=progress,
        webhook=webhook,
        result=result,
        error=error,
    )

"""Adapters: the only module of the API that calls boto3."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

from segjob_core.models import EventType, JobStatus, WebhookStatus
from segjob_core.s3 import presign_config

# GET /jobs?status=: jobs read per query page, and pages read per request at most.
LIST_FILTERED_PAGE = 100
LIST_READ_PAGES = 10
_CLIENT_CONFIG = Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 3})


class JobNotFound(Exception):
    """No job with this id belongs to the caller."""


class JobStateConflict(Exception):
    """The job's status does not allow the requested change."""

    def __init__(self, job_id: str, message: str | None = None) -> None:
        super().__init__(message or f"job {job_id} cannot change status now")
        self.job_id = job_id


class JobStore:
    """The jobs table. Every read and write is scoped to the owner (the caller)."""

    def __init__(self, table_name: str) -> None:
        self._table = boto3.resource("dynamodb", config=_CLIENT_CONFIG).Table(table_name)

    def put_new(self, item: dict[str, Any]) -> None:
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(jobId)")

    def get(self, job_id: str, owner: str) -> dict[str, Any]:
        item = self._table.get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")
        if not item or item.get("owner") != owner:
            raise JobNotFound(job_id)
        return item

    def list_by_owner(
        self, owner: str, limit: int, token: str | None, status: JobStatus | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` jobs of ``owner``, newest first, only those in ``status`` if given.
        DynamoDB applies a filter after its Limit, so filtered pages are read until ``limit``
        jobs are found, at most LIST_READ_PAGES of them (a bounded request); the token then
        names the last job returned, or the last key read."""
        query: dict[str, Any] = {
            "IndexName": "ByOwner",
            "KeyConditionExpression": Key("owner").eq(owner),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if status is not None:
            query["FilterExpression"] = Attr("status").eq(status.value)
            query["Limit"] = max(limit, LIST_FILTERED_PAGE)
        if token:
            start = _decode_token(token)
            if start["owner"] != owner:
                raise InvalidToken(token)
            query["ExclusiveStartKey"] = start
        items: list[dict[str, Any]] = []
        for _ in range(LIST_READ_PAGES):
            page = self._table.query(**query)
            items += page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if len(items) > limit:  # more matches than asked for: continue after the last one shown
                items = items[:limit]
                last = {name: items[-1][name] for name in ("jobId", "owner", "createdAt")}
            if len(items) == limit:
                break
            if not last:
                break
            query["ExclusiveStartKey"] = last
        return items, _encode_token(last) if last else None

    def set_status(
        self, job_id: str, owner: str, new: JobStatus, allowed_from: set[JobStatus], now: str
    ) -> dict[str, Any]:
        """Conditional transition; JobStateConflict when the job is not in ``allowed_from``."""
        names = {"#status": "status", "#owner": "owner"}
        values: dict[str, Any] = {":new": new.value, ":now": now, ":owner": owner}
        placeholders = []
        for i, status in enumerate(sorted(allowed_from)):
            values[f":from{i}"] = status.value
            placeholders.append(f":from{i}")
        return self._update_conditionally(
            job_id,
            UpdateExpression="SET #status = :new, updatedAt = :now, finishedAt = :now",
            ConditionExpression=f"#owner = :owner AND #status IN ({', '.join(placeholders)})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def claim_redelivery(self, job_id: str, owner: str) -> dict[str, Any]:
        """A finished delivery (DELIVERED or FAILED) of the job's event -> PENDING again,
        counting redeliveries; JobStateConflict while a delivery is under way (or none was made)."""
        return self._update_conditionally(
            job_id,
            UpdateExpression="SET webhookStatus = :pending ADD redeliveries :one",
            ConditionExpression="#owner = :owner AND attribute_exists(webhookEvent) "
            "AND webhookStatus IN (:delivered, :failed)",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={
                ":owner": owner,
                ":pending": WebhookStatus.PENDING.value,
                ":delivered": WebhookStatus.DELIVERED.value,
                ":failed": WebhookStatus.FAILED.value,
                ":one": 1,
            },
        )

    def release_redelivery(self, job_id: str, previous: str, redeliveries: int) -> None:
        """Undo ``claim_redelivery`` when the redelivery could not be started."""
        self._table.update_item(
            Key={"jobId": job_id},
            UpdateExpression="SET webhookStatus = :previous",
            ConditionExpression="webhookStatus = :pending AND redeliveries = :n",
            ExpressionAttributeValues={
                ":previous": previous,
                ":pending": WebhookStatus.PENDING.value,
                ":n": redeliveries,
            },
        )

    def _update_conditionally(self, job_id: str, **update: Any) -> dict[str, Any]:
        """The item as written; JobStateConflict when the condition does not hold."""
        try:
            return self._table.update_item(Key={"jobId": job_id}, ReturnValues="ALL_NEW", **update)[
                "Attributes"
            ]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobStateConflict(job_id) from exc
            raise


class JobFlows:
    """The job flows: JobStateMachine (Express) for job.canceled notifications, the
    Standard one for redeliveries (they may wait on the retry schedule)."""

    def __init__(self, state_machine_arn: str, standard_state_machine_arn: str) -> None:
        self._arn = state_machine_arn
        self._standard_arn = standard_state_machine_arn
        self._sfn = boto3.client("stepfunctions", config=_CLIENT_CONFIG)

    def notify_canceled(self, job_id: str) -> None:
        """Express executions are not idempotent by name: the flow claims the notification
        with a conditional write, so a repeated start sends nothing twice."""
        self._sfn.start_execution(
            stateMachineArn=self._arn,
            name=f"{job_id}-canceled-{uuid.uuid4().hex[:12]}",
            input=json.dumps(
                {"source": API_EVENT_SOURCE, "detail-type": "Job Canceled", "detail": {"jobId": job_id}}
            ),
        )

    def redeliver(self, job_id: str, event_type: EventType, redelivery: int) -> None:
        """Deliver the job's last event again now, then on the retry schedule until it lands."""
        detail = {"jobId": job_id, "type": event_type.value, "attempts": 0}
        try:
            self._sfn.start_execution(
                stateMachineArn=self._standard_arn,
                name=f"{job_id}-redelivery-{redelivery}",
                input=json.dumps(
                    {"source": API_EVENT_SOURCE, "detail-type": "Webhook Retry", "detail": detail}
                ),
            )
        except ClientError as exc:  # this redelivery was started already
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise


API_EVENT_SOURCE = "segjob.api"
EXPIRY_EVENT_SOURCE = "segjob.scheduler"


class ExpirySchedules:
    """One-time EventBridge Scheduler schedules that start a job's job.expired notification."""

    def __init__(self, group: str, state_machine_arn: str, role_arn: str) -> None:
        self._group = group
        self._target = {"Arn": state_machine_arn, "RoleArn": role_arn}
        self._scheduler = boto3.client("scheduler", config=_CLIENT_CONFIG)

    def schedule(self, job_id: str, at: datetime) -> None:
        event = {"source": EXPIRY_EVENT_SOURCE, "detail-type": "Job Expired", "detail": {"jobId": job_id}}
        self._scheduler.create_schedule(
            GroupName=self._group,
            Name=job_id,
            ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={**self._target, "Input": json.dumps(event)},
            ActionAfterCompletion="DELETE",
        )


class ObjectStore:
    """Presigned S3 POST for uploads and presigned GET for results."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket
        self._s3 = boto3.client("s3", config=presign_config(_CLIENT_CONFIG))

    def presign_upload(
        self, key: str, content_type: str, min_bytes: int, max_bytes: int, expires_in: int
    ) -> dict[str, Any]:
        return self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", min_bytes, max_bytes]],
            ExpiresIn=expires_in,
        )

    def presign_get(self, key: str, expires_in: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )

    def put_json(self, key: str, document: Any) -> None:
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=json.dumps(document).encode(), ContentType="application/json"
        )

    def keys_under(self, prefix: str, bucket: str | None = None, limit: int | None = None) -> list[str]:
        """Object keys under ``prefix`` (of the jobs bucket, or ``bucket``), at most ``limit``."""
        found: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket or self._bucket, Prefix=prefix):
                found += [obj["Key"] for obj in page.get("Contents", [])]
                if limit is not None and len(found) >= limit:
                    return found[:limit]
        except ClientError as exc:
            raise SourceUnreadable(f"s3://{bucket}/{prefix} cannot be listed ({_error_code(exc)})") from exc
        return found

    def read_text(self, bucket: str, key: str, max_bytes: int) -> str:
        """A small text object (a batch's manifest of keys); at most ``max_bytes`` are read."""
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}")
            body: bytes = response["Body"].read()
            return body.decode("utf-8")
        except ClientError as exc:
            raise SourceUnreadable(f"s3://{bucket}/{key} cannot be read ({_error_code(exc)})") from exc
        except UnicodeDecodeError as exc:
            raise SourceUnreadable(f"s3://{bucket}/{key} is not UTF-8 text") from exc


class SourceUnreadable(Exception):
    """A batch's S3 source (a prefix, a manifest) cannot be read."""


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_token(
    token: str, key_names: frozenset[str] = frozenset({"jobId", "owner", "createdAt"})
) -> dict[str, Any]:
    """A token of ``_encode_token`` naming a key of exactly ``key_names``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise InvalidToken(token) from exc
    if not isinstance(key, dict) or set(key) != key_names:
        raise InvalidToken(token)
    return key


class InvalidToken(Exception):
    """A pagination token that this API did not issue."""

"""Adapters: the only module of the API that calls boto3."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

from segjob_core.models import JobStatus
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
        try:
            return self._table.update_item(
                Key={"jobId": job_id},
                UpdateExpression="SET #status = :new, updatedAt = :now, finishedAt = :now",
                ConditionExpression=f"#owner = :owner AND #status IN ({', '.join(placeholders)})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobStateConflict(job_id) from exc
            raise


class JobFlows:
    """The job state machine: stop a running job, start the canceled-job notification."""

    def __init__(self, state_machine_arn: str) -> None:
        self._arn = state_machine_arn
        self._sfn = boto3.client("stepfunctions", config=_CLIENT_CONFIG)

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error="JobCanceled", cause=cause)
        except ClientError as exc:  # already finished: the conditional writes keep it CANCELED
            if exc.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise

    def notify_canceled(self, job_id: str) -> None:
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=f"{job_id}-canceled",
                input=json.dumps(
                    {
                        "source": CANCEL_EVENT_SOURCE,
                        "detail-type": "Job Canceled",
                        "detail": {"jobId": job_id},
                    }
                ),
            )
        except ClientError as exc:  # already started by an earlier cancel of this job
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise


CANCEL_EVENT_SOURCE = "segjob.api"


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


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise InvalidToken(token) from exc
    if not isinstance(key, dict) or set(key) != {"jobId", "owner", "createdAt"}:
        raise InvalidToken(token)
    return key


class InvalidToken(Exception):
    """A pagination token that this API did not issue."""

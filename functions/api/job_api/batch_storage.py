"""Adapters of batches: the batches table, a batch's job items, and the batch flow."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from job_api.storage import _CLIENT_CONFIG, InvalidToken, _decode_token, _encode_token
from segjob_core.batches import BatchStatus, query_batch_jobs
from segjob_core.models import JobStatus

_TOKEN_KEYS = frozenset({"batchId", "owner", "createdAt"})


class BatchNotFound(Exception):
    """No batch with this id belongs to the caller."""


class BatchStateConflict(Exception):
    """The batch's status does not allow the requested change."""


class BatchStore:
    """The batches table and the batch items of the jobs table (owner-scoped)."""

    def __init__(self, batches_table: str, jobs_table: str) -> None:
        dynamodb = boto3.resource("dynamodb", config=_CLIENT_CONFIG)
        self._batches = dynamodb.Table(batches_table)
        self._jobs = dynamodb.Table(jobs_table)

    def put_new(self, batch: dict[str, Any], jobs: Iterable[dict[str, Any]]) -> None:
        """The batch's jobs first, then the batch: a batch that exists has all its jobs."""
        with self._jobs.batch_writer() as writer:
            for job in jobs:
                writer.put_item(Item=job)
        self._batches.put_item(Item=batch, ConditionExpression="attribute_not_exists(batchId)")

    def get(self, batch_id: str, owner: str) -> dict[str, Any]:
        item = self._batches.get_item(Key={"batchId": batch_id}, ConsistentRead=True).get("Item")
        if not item or item.get("owner") != owner:
            raise BatchNotFound(batch_id)
        return item

    def list_by_owner(
        self, owner: str, limit: int, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        query: dict[str, Any] = {
            "IndexName": "ByOwner",
            "KeyConditionExpression": Key("owner").eq(owner),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if token:
            start = _decode_token(token, _TOKEN_KEYS)
            if start["owner"] != owner:
                raise InvalidToken(token)
            query["ExclusiveStartKey"] = start
        page = self._batches.query(**query)
        last = page.get("LastEvaluatedKey")
        return page.get("Items", []), _encode_token(last) if last else None

    def set_status(
        self, batch_id: str, owner: str, new: BatchStatus, allowed_from: BatchStatus, now: str, **extra: str
    ) -> dict[str, Any]:
        """Conditional transition; BatchStateConflict when the batch is not in ``allowed_from``."""
        names = {"#status": "status", "#owner": "owner"} | {f"#{k}": k for k in extra}
        values = {":new": new.value, ":from": allowed_from.value, ":now": now, ":owner": owner}
        values |= {f":{k}": v for k, v in extra.items()}
        sets = ", ".join(["#status = :new", "updatedAt = :now", *(f"#{k} = :{k}" for k in extra)])
        try:
            return self._batches.update_item(
                Key={"batchId": batch_id},
                UpdateExpression=f"SET {sets}",
                ConditionExpression="#owner = :owner AND #status = :from",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise BatchStateConflict(batch_id) from exc
            raise

    def items(self, batch_id: str, attributes: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The batch's jobs in submission order (only ``attributes`` of each, if given)."""
        return query_batch_jobs(self._jobs, batch_id, attributes)

    def cancel_item(self, job_id: str, now: str) -> None:
        """A job of a canceled batch: not started -> CANCELED (never runs); running ->
        CANCELED (its result is refused). A finished one stays as it is."""
        try:
            self._jobs.update_item(
                Key={"jobId": job_id},
                UpdateExpression="SET #status = :canceled, updatedAt = :now, finishedAt = :now",
                ConditionExpression="#status IN (:awaiting, :running)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":canceled": JobStatus.CANCELED.value,
                    ":awaiting": JobStatus.AWAITING_UPLOAD.value,
                    ":running": JobStatus.RUNNING.value,
                    ":now": now,
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


class BatchFlow:
    """The batch state machine (Standard): one execution per batch, named by its id."""

    def __init__(self, state_machine_arn: str) -> None:
        self._arn = state_machine_arn
        self._sfn = boto3.client("stepfunctions", config=_CLIENT_CONFIG)

    def start(self, batch_id: str, bucket: str, items_key: str) -> str:
        try:
            response = self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=batch_id,
                input=json.dumps({"batchId": batch_id, "bucket": bucket, "itemsKey": items_key}),
            )
        except ClientError as exc:  # started already (a retried start)
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return f"{self._arn.replace(':stateMachine:', ':execution:')}:{batch_id}"
            raise
        return str(response["executionArn"])

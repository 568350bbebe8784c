"""The batch function's AWS side: the batch and its items in DynamoDB, results in S3."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from segjob_core.batches import query_batch_jobs

from .settings import BatchSettings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


class BatchData:
    def __init__(self, settings: BatchSettings) -> None:
        self._settings = settings
        dynamodb = boto3.resource("dynamodb", config=_CONFIG)
        self._jobs = dynamodb.Table(settings.jobs_table)
        self._dynamodb = boto3.client("dynamodb", config=_CONFIG)
        self._s3 = boto3.client("s3", config=_CONFIG)

    def batch(self, batch_id: str) -> dict[str, Any]:
        response = self._dynamodb.get_item(
            TableName=self._settings.batches_table, Key={"batchId": {"S": batch_id}}, ConsistentRead=True
        )
        from segjob_core.jobs import from_dynamodb  # noqa: PLC0415 - boto3's deserializer

        return from_dynamodb(response["Item"])

    def items(self, batch_id: str) -> list[dict[str, Any]]:
        return query_batch_jobs(self._jobs, batch_id)

    def read_all(self, keys: Iterable[str]) -> list[bytes]:
        """Objects of the jobs bucket, read in parallel, in the order of ``keys``."""

        def read(key: str) -> bytes:
            body: bytes = self._s3.get_object(Bucket=self._settings.jobs_bucket, Key=key)["Body"].read()
            return body

        with ThreadPoolExecutor(self._settings.read_threads) as pool:
            return list(pool.map(read, keys))

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._settings.jobs_bucket, Key=key, Body=body, ContentType=content_type)

    def complete(self, batch_id: str, values: dict[str, str]) -> dict[str, Any]:
        """Record the results; RUNNING -> COMPLETED (a canceled batch stays CANCELED). The
        item as written, in DynamoDB's attribute-value form (what the notify function takes)."""
        names = {f"#{name}": name for name in values}
        assignments = ", ".join(f"#{name} = :{name}" for name in values)
        attribute_values = {f":{name}": {"S": value} for name, value in values.items()}
        update = {
            "TableName": self._settings.batches_table,
            "Key": {"batchId": {"S": batch_id}},
            "ReturnValues": "ALL_NEW",
        }
        try:
            response = self._dynamodb.update_item(
                **update,
                UpdateExpression=f"SET {assignments}, #status = :completed",
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={
                    **attribute_values,
                    ":completed": {"S": "COMPLETED"},
                    ":running": {"S": "RUNNING"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            response = self._dynamodb.update_item(
                **update,
                UpdateExpression=f"SET {assignments}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values,
            )
        attributes: dict[str, Any] = response["Attributes"]
        return attributes

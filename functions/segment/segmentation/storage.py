"""S3 and DynamoDB adapters: the only module of this function that talks to AWS.

It uses botocore, the AWS SDK's core, without boto3 on top: boto3 adds nothing that these
four calls need, and importing it (with s3transfer) costs about 0.1 s of every cold start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from segjob_core.errors import InputMissing, ModelUnavailable
from segjob_core.models import JobProgress, JobStatus

# One client per container, created at init. botocore honours AWS_ENDPOINT_URL (local mode)
# and takes the region and credentials from the environment, as boto3 would.
_SESSION = botocore.session.get_session()
_S3 = _SESSION.create_client(
    "s3",
    config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 5}),
)
_DYNAMODB = _SESSION.create_client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 5}))
_CHUNK = 1 << 20
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """Reads uploads and writes results (the `ObjectStore` the job logic expects)."""

    def __init__(self, client: Any = None) -> None:
        self._s3 = client or _S3

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        """The object, or exactly ``version_id`` of it (the upload a job started from)."""
        pinned = {"VersionId": version_id} if version_id else {}
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, **pinned)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise InputMissing(f"s3://{bucket}/{key} (version {version_id}) does not exist") from exc
            raise
        body: bytes = response["Body"].read()
        return body

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


class DynamoJobRecord:
    """The job's item in the jobs table, as the segment function sees it: whether the job is
    still RUNNING (a cancel sets CANCELED), and the progress of a tiled job. Needs
    dynamodb:GetItem and dynamodb:UpdateItem on the table (template.yaml)."""

    def __init__(self, table: str, client: Any = None) -> None:
        self._table = table
        self._dynamodb = client or _DYNAMODB

    def still_running(self, job_id: str, progress: JobProgress | None = None) -> bool:
        """False once the job's status is no longer RUNNING (canceled); with `progress`, it
        is written in the same call, only while the job is RUNNING (a conditional write).
        A job without an item (an invocation outside the flow) counts as running."""
        key = {"jobId": {"S": job_id}}
        if progress is not None:
            try:
                self._dynamodb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET tilesDone = :done, tilesTotal = :total",
                    ConditionExpression="#status = :running",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":done": {"N": str(progress.tiles_done)},
                        ":total": {"N": str(progress.tiles_total)},
                        ":running": {"S": JobStatus.RUNNING.value},
                    },
                )
                return True
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
        item = self._dynamodb.get_item(
            TableName=self._table,
            Key=key,
            ConsistentRead=True,
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
        ).get("Item")
        return item is None or item["status"]["S"] == JobStatus.RUNNING.value


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ModelUnavailable(f"MODEL_URI must look like s3://bucket/key, got {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise ModelUnavailable(f"MODEL_URI must look like s3://bucket/key, got {uri!r}")
    return bucket, key


def download_model(uri: str, directory: Path) -> Path:
    """Copy the weights at `uri` into `directory` (under /tmp); the file is complete or absent."""
    bucket, key = parse_s3_uri(uri)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / Path(key).name
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        body = _S3.get_object(Bucket=bucket, Key=key)["Body"]
        with partial.open("wb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                out.write(chunk)
    except (ClientError, BotoCoreError) as exc:  # BotoCoreError: the connection broke off
        partial.unlink(missing_ok=True)
        code = _code(exc) if isinstance(exc, ClientError) else ""
        reason = "does not exist" if code in _MISSING else f"cannot be read ({code or exc})"
        raise ModelUnavailable(f"model {uri} {reason}") from exc
    partial.replace(target)
    return target

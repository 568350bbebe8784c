"""The segjob client library.

    from segjob import Client
    client = Client("https://abc.execute-api.eu-west-1.amazonaws.com")  # SigV4 with your AWS creds
    job = client.submit("photo.jpg", params={"conf": 0.4})
    job = client.wait(job.job_id, timeout=300)
    client.download_results(job, "out/")

Requests to a deployed API are SigV4-signed (service ``execute-api``) with the caller's
AWS credentials; a loopback URL (local mode) is called unsigned unless credentials are
passed explicitly.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session as BotocoreSession

from segjob_core.batches import (
    Batch,
    BatchFile,
    BatchItemUpload,
    BatchList,
    BatchSource,
    BatchStatus,
    BatchUploads,
    CreateBatchRequest,
    CreateBatchResponse,
)
from segjob_core.keys import OUTPUT_FILE_NAMES
from segjob_core.models import (
    CreateJobRequest,
    CreateJobResponse,
    Job,
    JobList,
    JobParams,
    JobStatus,
    RotateWebhookSecretRequest,
    WebhookSecret,
    WebhookStatus,
)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
Progress = Callable[[int, int], None]
# Throttled (API Gateway 429) or a throttled Lambda (503): the request was not processed,
# so it is safe to send again, after a pause.
RETRY_STATUSES = frozenset({429, 503})
RETRIES = 4
# How long `submit` reads the job again after the upload, until the upload has started it:
# on AWS the S3 event reaches the state machine within a second or two.
START_WAIT_SECONDS = 10.0
# How long `wait_for_webhook` reads a finished job again until its first delivery attempt is
# recorded: the notify step starts when the job ends, and one attempt ends within 10 s
# (template.yaml: WEBHOOK_TIMEOUT_SECONDS), plus the state machine's own steps.
WEBHOOK_WAIT_SECONDS = 20.0
# Enough pooled connections for the CLI's parallel uploads and waits.
POOL_SIZE = 32


def batch_finished(batch: Batch) -> bool:
    """COMPLETED or FAILED, or CANCELED and nothing of it runs any more (never started, or its run ended)."""
    if batch.status in (BatchStatus.COMPLETED, BatchStatus.FAILED):
        return True
    return batch.status is BatchStatus.CANCELED and (
        batch.started_at is None or batch.finished_at is not None
    )


class SegjobError(Exception):
    """An API error (``code`` and ``message`` from the body) or a transport failure."""

    def __init__(self, message: str, code: str = "ClientError", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status else ""
        return f"{prefix}{self.code}: {self.args[0]}"


class InvalidInput(SegjobError):
    """A local input the client refuses before any request: a missing or unreadable file,
    a file that is not an image type the service takes."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "InvalidInput")


# File signatures of the types the service takes (SUPPORTED_CONTENT_TYPES), and of a few it
# does not, so that the refusal can name what the file is.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"WEBP", 8, "image/webp"),  # after b"RIFF" + size
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
)
_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"%PDF", "PDF"),
)
SUPPORTED_NAMES = "JPEG, PNG, WebP, BMP or TIFF"


def image_content_type(path: str | Path) -> str:
    """The content type of the image at ``path`` from its first bytes (not its name);
    InvalidInput for anything the service would refuse."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            head = stream.read(16)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a directory, not an image file") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not head:
        raise InvalidInput(f"{path}: the file is empty")
    for magic, offset, content_type in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic and (offset == 0 or head.startswith(b"RIFF")):
            return content_type
    kind = next((name for magic, name in _UNSUPPORTED if head.startswith(magic)), None)
    if kind:
        raise InvalidInput(f"{path}: {kind} images are not supported (use {SUPPORTED_NAMES})")
    raise InvalidInput(f"{path}: not an image file (use {SUPPORTED_NAMES})")


class Client:
    def __init__(
        self,
        api_url: str,
        *,
        credentials: Credentials | None = None,
        region: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = session or _pooled_session()
        self._timeout = timeout
        host = urlsplit(self.api_url).hostname or ""
        self._region = region or _region_from_host(host)
        if credentials is None and host not in LOOPBACK_HOSTS:
            credentials = BotocoreSession().get_credentials()
            if credentials is None:
                raise SegjobError("no AWS credentials found to sign requests to the API", "NoCredentials")
        self._credentials = credentials

    # --- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        filename: str | None = None,
        content_type: str = "image/jpeg",
        content_length: int | None = None,
        webhook_url: str | None = None,
        params: JobParams | dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> CreateJobResponse:
        request = CreateJobRequest(
            filename=filename,
            content_type=content_type,
            content_length=content_length,
            webhook_url=webhook_url,
            params=JobParams.model_validate(params or {}),
            metadata=metadata,
        )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = self._request("POST", "/jobs", json_body=request.to_json_dict(), headers=headers)
        return CreateJobResponse.model_validate(body)

    def upload(
        self, job: CreateJobResponse | BatchItemUpload, path: str | Path, progress: Progress | None = None
    ) -> None:
        """Send the file with the job's presigned POST (straight to S3), streaming it from
        disk; ``progress(sent, total)`` is called as the body goes out."""
        path = Path(path)
        body = MultipartBody(job.upload.fields, path, progress)
        headers = {"content-type": body.content_type, "content-length": str(len(body))}
        try:
            with body:
                response = self._http.post(
                    job.upload.url, data=body, headers=headers, timeout=self._timeout * 4
                )
        except requests.RequestException as exc:
            raise SegjobError(f"upload failed: {exc}", "UploadFailed") from exc
        if response.status_code not in (200, 201, 204):
            raise SegjobError(_s3_error_message(response.text), "UploadRefused", response.status_code)

    def submit(
        self, path: str | Path, *, wait_for_start: float = START_WAIT_SECONDS, **options: Any
    ) -> CreateJobResponse:
        """Create a job for the image at ``path`` and upload it. The job is then read again
        until its upload has started it (RUNNING or later), for at most ``wait_for_start``
        seconds (0: not at all): the status returned says what happened to the upload.
        InvalidInput, before any request, for a file that is not a supported image."""
        path = Path(path)
        progress = options.pop("progress", None)
        content_type = options.pop("content_type", None) or image_content_type(path)
        job = self.create_job(
            filename=path.name, content_type=content_type, content_length=path.stat().st_size, **options
        )
        self.upload(job, path, progress=progress)
        if wait_for_start <= 0:
            return job
        seen = self._poll(job.job_id, lambda j: j.status is not JobStatus.AWAITING_UPLOAD, wait_for_start)
        return CreateJobResponse(**seen.model_dump(), upload=job.upload)

    def get_job(self, job_id: str) -> Job:
        return Job.model_validate(self._request("GET", f"/jobs/{job_id}"))

    def list_jobs(
        self, limit: int = 20, next_token: str | None = None, status: JobStatus | str | None = None
    ) -> JobList:
        """One page of your jobs, newest first (only those in ``status`` if given)."""
        query = {"limit": str(limit)}
        if next_token:
            query["nextToken"] = next_token
        if status:
            query["status"] = JobStatus(status).value
        return JobList.model_validate(self._request("GET", "/jobs", query=query))

    def iter_jobs(self, page_size: int = 50, status: JobStatus | str | None = None) -> Iterable[Job]:
        token: str | None = None
        while True:
            page = self.list_jobs(page_size, token, status)
            yield from page.jobs
            if not page.next_token:
                return
            token = page.next_token

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self._request("DELETE", f"/jobs/{job_id}"))

    def redeliver_webhook(self, job_id: str) -> Job:
        """Send the finished job's last webhook event again (same ``webhook-id``)."""
        return Job.model_validate(self._request("POST", f"/jobs/{job_id}/webhook/redeliver"))

    def wait(
        self, job_id: str, timeout: float = 300.0, interval: float = 0.5, max_interval: float = 5.0
    ) -> Job:
        """Poll until the job is terminal, backing off from ``interval`` to ``max_interval``."""
        job = self._poll(job_id, lambda j: j.status.terminal, timeout, interval, max_interval)
        if not job.status.terminal:
            raise SegjobError(f"job {job_id} still {job.status} after {timeout:.0f} s", "WaitTimeout")
        return job

    def wait_for_webhook(self, job_id: str, timeout: float = WEBHOOK_WAIT_SECONDS) -> Job:
        """The finished job once its webhook has a first delivery attempt (DELIVERED, FAILED,
        or PENDING with a retry scheduled), or as last read after ``timeout`` seconds; at
        once for a job without a webhook."""

        def attempted(job: Job) -> bool:
            hook = job.webhook
            return hook is None or hook.status is not WebhookStatus.PENDING or bool(hook.attempts)

        return self._poll(job_id, attempted, timeout)

    def _poll(
        self,
        job_id: str,
        done: Callable[[Job], bool],
        timeout: float,
        interval: float = 0.2,
        max_interval: float = 5.0,
    ) -> Job:
        """The job once ``done(job)``, or as last read when ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if done(job) or time.monotonic() + interval > deadline:
                return job
            time.sleep(interval)
            interval = min(max_interval, interval * 1.6)

    def download_results(self, job: Job, out_dir: str | Path) -> list[Path]:
        """Write result.json and annotated.jpg of a SUCCEEDED job to ``out_dir/<jobId>/``."""
        return list(save_result_files(job.job_id, self.result_files(job), out_dir).values())

    def result_files(self, job: Job) -> dict[str, bytes]:
        """result.json, annotated.jpg (unless the job skipped it) and the files of
        ``params.outputs`` (coco.json, masks.png) of a SUCCEEDED job."""
        if not job.result or not job.result.result_url:
            raise SegjobError(f"job {job.job_id} has no results (status {job.status})", "NoResults")
        named = [("result.json", job.result.result_url), ("annotated.jpg", job.result.annotated_url)]
        named += [(OUTPUT_FILE_NAMES[kind], url) for kind, url in (job.result.output_urls or {}).items()]
        return {name: self._download(name, url) for name, url in named if url}

    # --- batches ---------------------------------------------------------------------------

    def create_batch(
        self,
        *,
        files: Iterable[BatchFile] | None = None,
        source: BatchSource | dict[str, Any] | None = None,
        webhook_url: str | None = None,
        params: JobParams | dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CreateBatchResponse:
        """A batch of ``files`` (upload each with its form in ``uploads``, then ``start_batch``)
        or of the objects of an S3 ``source`` ({"bucket", "prefix" | "manifestKey"}; starts at once)."""
        request = CreateBatchRequest(
            files=list(files) if files is not None else None,
            source=BatchSource.model_validate(source) if isinstance(source, dict) else source,
            webhook_url=webhook_url,
            params=JobParams.model_validate(params or {}),
            metadata=metadata,
        )
        body = self._request("POST", "/batches", json_body=request.to_json_dict())
        return CreateBatchResponse.model_validate(body)

    def start_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(self._request("POST", f"/batches/{batch_id}/start"))

    def renew_batch_uploads(self, batch_id: str) -> BatchUploads:
        """Fresh upload forms of the batch's items whose file has not arrived yet."""
        return BatchUploads.model_validate(self._request("POST", f"/batches/{batch_id}/uploads"))

    def get_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(self._request("GET", f"/batches/{batch_id}"))

    def list_batches(self, limit: int = 20, next_token: str | None = None) -> BatchList:
        query = {"limit": str(limit)} | ({"nextToken": next_token} if next_token else {})
        return BatchList.model_validate(self._request("GET", "/batches", query=query))

    def cancel_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(self._request("DELETE", f"/batches/{batch_id}"))

    def wait_batch(
        self,
        batch_id: str,
        timeout: float = 3600.0,
        on_progress: Callable[[Batch], None] | None = None,
        interval: float = 0.5,
        max_interval: float = 5.0,
    ) -> Batch:
        """Poll until the batch is finished (COMPLETED, or CANCELED and its run ended);
        ``on_progress(batch)`` after every read."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get_batch(batch_id)
            if on_progress:
                on_progress(batch)
            if batch_finished(batch):
                return batch
            if time.monotonic() + interval > deadline:
                raise SegjobError(
                    f"batch {batch_id} still {batch.status} after {timeout:.0f} s", "WaitTimeout"
                )
            time.sleep(interval)
            interval = min(max_interval, interval * 1.6)

    def batch_result_files(self, batch: Batch) -> dict[str, bytes]:
        """manifest.jsonl and coco.json of a finished batch."""
        if not batch.results or not batch.results.manifest_url or not batch.results.coco_url:
            raise SegjobError(
                f"batch {batch.batch_id} has no results yet (status {batch.status})", "NoResults"
            )
        return {
            "manifest.jsonl": self._download("manifest.jsonl", batch.results.manifest_url),
            "coco.json": self._download("coco.json", batch.results.coco_url),
        }

    def _download(self, name: str, url: str) -> bytes:
        try:
            response = self._http.get(url, timeout=self._timeout * 4)
        except requests.RequestException as exc:
            raise SegjobError(f"download of {name} failed: {exc}", "DownloadFailed") from exc
        if response.status_code != 200:
            raise SegjobError(f"download of {name} failed", "DownloadFailed", response.status_code)
        return response.content

    # --- webhook signing secret -------------------------------------------------------------

    def webhook_secret(self) -> WebhookSecret:
        """Your ``whsec_`` secret: verify the webhooks of your jobs with it (created on first use)."""
        return WebhookSecret.model_validate(self._request("GET", "/webhook-secret"))

    def rotate_webhook_secret(self, overlap_seconds: int | None = None) -> WebhookSecret:
        """A new secret; deliveries carry a signature of the old one too for ``overlap_seconds``
        (default a day; 0 revokes the old one at once)."""
        request = (
            RotateWebhookSecretRequest()
            if overlap_seconds is None
            else RotateWebhookSecretRequest(overlap_seconds=overlap_seconds)
        )
        body = self._request("POST", "/webhook-secret/rotate", json_body=request.to_json_dict())
        return WebhookSecret.model_validate(body)

    # --- transport -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.api_url + path
        body = json.dumps(json_body).encode() if json_body is not None else None
        for attempt in range(RETRIES + 1):
            response = self._send(method, url, body, query, headers)
            if response.status_code not in RETRY_STATUSES or attempt == RETRIES:
                break
            time.sleep(_retry_delay(response, attempt))
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        if response.status_code >= 400:
            raise _api_error(response, payload)
        return payload

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        query: dict[str, str] | None,
        headers: dict[str, str] | None,
    ) -> requests.Response:
        all_headers = {"accept": "application/json", **(headers or {})}
        if body is not None:
            all_headers["content-type"] = "application/json"
        if self._credentials is not None:  # signed per attempt: the signature has a date
            aws_request = AWSRequest(
                method=method, url=url, data=body, params=query or {}, headers=all_headers
            )
            SigV4Auth(self._credentials, "execute-api", self._region).add_auth(aws_request)
            all_headers = dict(aws_request.headers.items())
        try:
            return self._http.request(
                method, url, data=body, params=query, headers=all_headers, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise SegjobError(f"{method} {url} failed: {exc}", "ConnectionError") from exc


def save_result_files(job_id: str, files: dict[str, bytes], out_dir: str | Path) -> dict[str, Path]:
    """Write a job's result files (``Client.result_files``) to ``out_dir/<jobId>/``."""
    target = Path(out_dir) / job_id
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    return {name: target / name for name in files}


def _api_error(response: requests.Response, payload: Any) -> SegjobError:
    """``{"error": {"code", "message"}}`` of our API, or API Gateway's ``{"message"}``."""
    body: dict[str, Any] = payload if isinstance(payload, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    message = error.get("message") or body.get("message") or response.reason or "request failed"
    return SegjobError(str(message), str(error.get("code") or "HttpError"), response.status_code)


def _pooled_session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _retry_delay(response: requests.Response, attempt: int) -> float:
    """Retry-After when the server sends one (seconds), else 0.5 s doubling, with jitter."""
    try:
        return min(float(response.headers.get("retry-after", "")), 30.0)
    except ValueError:
        return random.uniform(0.5, 1.0) * 2**attempt


class MultipartBody:
    """multipart/form-data of the presigned POST: the policy fields, then the file, read
    from disk in chunks (S3 wants a Content-Length, so the size is computed up front)."""

    CHUNK = 256 * 1024

    def __init__(self, fields: dict[str, str], path: Path, progress: Progress | None = None) -> None:
        self.boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ]
        file_type = fields.get("Content-Type", "application/octet-stream")
        # Quotes and line breaks would end the header early: escape them as browsers do.
        filename = path.name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {file_type}\r\n\r\n"
        )
        self._head = "".join(parts).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file_size = path.stat().st_size
        self._path = path
        self._stream: Any = None
        self._stage = 0
        self._sent = 0
        self._progress = progress

    def __len__(self) -> int:
        return len(self._head) + self._file_size + len(self._tail)

    def __enter__(self) -> MultipartBody:
        self._stream = self._path.open("rb")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()

    def read(self, size: int = -1) -> bytes:
        chunks: list[bytes] = []
        while self._stage < 3 and not chunks:
            if self._stage == 0:
                chunks.append(self._head)
                self._stage = 1
            elif self._stage == 1:
                data = self._stream.read(self.CHUNK if size < 0 else max(size, 1))
                if data:
                    chunks.append(data)
                    self._sent += len(data)
                    if self._progress:
                        self._progress(self._sent, self._file_size)
                else:
                    self._stage = 2
            else:
                chunks.append(self._tail)
                self._stage = 3
        return b"".join(chunks)


def _region_from_host(host: str) -> str:
    """abc.execute-api.eu-west-1.amazonaws.com -> eu-west-1 (us-east-1 when unknown)."""
    parts = host.split(".")
    if "execute-api" in parts and parts.index("execute-api") + 1 < len(parts):
        return parts[parts.index("execute-api") + 1]
    return "us-east-1"


def _s3_error_message(xml: str) -> str:
    """The <Code>: <Message> of an S3 XML error, or the raw text."""
    import html  # noqa: PLC0415 - only on the error path
    import re  # noqa: PLC0415

    code = re.search(r"<Code>(.*?)</Code>", xml, re.DOTALL)
    message = re.search(r"<Message>(.*?)</Message>", xml, re.DOTALL)
    if code:
        return html.unescape(f"{code.group(1)}: {message.group(1) if message else ''}".strip().rstrip(":"))
    return xml[:300] or "upload refused"

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
import mimetypes
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

from segjob_core.models import (
    CreateJobRequest,
    CreateJobResponse,
    Job,
    JobList,
    JobParams,
    RotateWebhookSecretRequest,
    WebhookSecret,
)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
Progress = Callable[[int, int], None]
# Throttled (API Gateway 429) or a throttled Lambda (503): the request was not processed,
# so it is safe to send again, after a pause.
RETRY_STATUSES = frozenset({429, 503})
RETRIES = 4
# Enough pooled connections for the CLI's parallel uploads and waits.
POOL_SIZE = 32


class SegjobError(Exception):
    """An API error (``code`` and ``message`` from the body) or a transport failure."""

    def __init__(self, message: str, code: str = "ClientError", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status else ""
        return f"{prefix}{self.code}: {self.args[0]}"


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

    def upload(self, job: CreateJobResponse, path: str | Path, progress: Progress | None = None) -> None:
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

    def submit(self, path: str | Path, **options: Any) -> CreateJobResponse:
        """Create a job for the image at ``path`` and upload it."""
        path = Path(path)
        progress = options.pop("progress", None)
        content_type = options.pop("content_type", None) or mimetypes.guess_type(path.name)[0] or "image/jpeg"
        job = self.create_job(
            filename=path.name, content_type=content_type, content_length=path.stat().st_size, **options
        )
        self.upload(job, path, progress=progress)
        return job

    def get_job(self, job_id: str) -> Job:
        return Job.model_validate(self._request("GET", f"/jobs/{job_id}"))

    def list_jobs(self, limit: int = 20, next_token: str | None = None) -> JobList:
        query = {"limit": str(limit), **({"nextToken": next_token} if next_token else {})}
        return JobList.model_validate(self._request("GET", "/jobs", query=query))

    def iter_jobs(self, page_size: int = 50) -> Iterable[Job]:
        token: str | None = None
        while True:
            page = self.list_jobs(page_size, token)
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
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.status.terminal:
                return job
            if time.monotonic() + interval > deadline:
                raise SegjobError(f"job {job_id} still {job.status} after {timeout:.0f} s", "WaitTimeout")
            time.sleep(interval)
            interval = min(max_interval, interval * 1.6)

    def download_results(self, job: Job, out_dir: str | Path) -> list[Path]:
        """Write result.json and annotated.jpg of a SUCCEEDED job to ``out_dir/<jobId>/``."""
        if not job.result or not job.result.result_url:
            raise SegjobError(f"job {job.job_id} has no results (status {job.status})", "NoResults")
        target = Path(out_dir) / job.job_id
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for name, url in (
            ("result.json", job.result.result_url),
            ("annotated.jpg", job.result.annotated_url),
        ):
            if not url:
                continue
            try:
                response = self._http.get(url, timeout=self._timeout * 4)
            except requests.RequestException as exc:
                raise SegjobError(f"download of {name} failed: {exc}", "DownloadFailed") from exc
            if response.status_code != 200:
                raise SegjobError(f"download of {name} failed", "DownloadFailed", response.status_code)
            (target / name).write_bytes(response.content)
            written.append(target / name)
        return written

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

"""Pure logic of the client library: the streamed multipart body, the signing region, the
error messages of S3 and of the API, and the retry of throttled requests. No network:
a fake ``requests.Session`` answers."""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Iterator

import pytest
import requests
from botocore.credentials import Credentials

from segjob import Client, SegjobError
from segjob import client as client_module
from segjob.client import MultipartBody, _region_from_host, _s3_error_message

FIELDS = {
    "key": "uploads/job_1/input",
    "Content-Type": "image/jpeg",
    "policy": "eyJjb25kaXRpb25zIjogW119",
    "x-amz-meta-note": "naïve ✓",  # non-ASCII: its length must be counted in bytes
}


def drain(body: MultipartBody, size: int) -> bytes:
    chunks = []
    with body:
        while chunk := body.read(size):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("file_size", [0, 1, 1000, MultipartBody.CHUNK + 17])
@pytest.mark.parametrize("read_size", [-1, 1, 8192])
def test_multipart_length_is_the_bytes_produced(tmp_path, file_size, read_size) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(bytes(range(256)) * (file_size // 256) + b"x" * (file_size % 256))
    body = MultipartBody(FIELDS, image)

    produced = drain(body, read_size)

    assert len(produced) == len(body)


def test_multipart_parses_back_to_the_fields_and_the_file(tmp_path) -> None:
    image = tmp_path / 'odd "name"\r\n.jpg'
    content = b"\xff\xd8" + bytes(range(256)) * 50
    image.write_bytes(content)
    body = MultipartBody(FIELDS, image)

    raw = f"Content-Type: {body.content_type}\r\n\r\n".encode() + drain(body, 4096)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}

    assert list(parts) == [*FIELDS, "file"]  # S3 wants the file last
    for name, value in FIELDS.items():
        assert parts[name].get_payload(decode=True) == value.encode()
    assert parts["file"].get_payload(decode=True) == content
    assert parts["file"].get_content_type() == "image/jpeg"
    # the quotes and line breaks of the name are escaped, not header syntax
    assert parts["file"].get_filename() == "odd %22name%22%0D%0A.jpg"


def test_multipart_reports_progress_up_to_the_file_size(tmp_path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"y" * (3 * MultipartBody.CHUNK + 5))
    seen: list[tuple[int, int]] = []

    drain(MultipartBody(FIELDS, image, progress=lambda sent, total: seen.append((sent, total))), -1)

    assert [sent for sent, _ in seen] == sorted({sent for sent, _ in seen})
    assert seen[-1] == (image.stat().st_size, image.stat().st_size)


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("abc123.execute-api.eu-west-1.amazonaws.com", "eu-west-1"),
        ("abc123.execute-api.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("api.example.com", "us-east-1"),  # a custom domain: pass region= instead
        ("127.0.0.1", "us-east-1"),
        ("", "us-east-1"),
        ("execute-api", "us-east-1"),
    ],
)
def test_region_from_host(host, region) -> None:
    assert _region_from_host(host) == region


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<?xml version='1.0'?><Error><Code>EntityTooLarge</Code>"
            "<Message>Your proposed upload exceeds the maximum allowed size</Message></Error>",
            "EntityTooLarge: Your proposed upload exceeds the maximum allowed size",
        ),
        (
            "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: "
            "Policy Condition failed: [&quot;eq&quot;, &quot;$Content-Type&quot;]</Message></Error>",
            'AccessDenied: Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type"]',
        ),
        ("<Error><Code>SlowDown</Code></Error>", "SlowDown"),
        ("Service Unavailable", "Service Unavailable"),
        ("", "upload refused"),
        ("x" * 1000, "x" * 300),
    ],
)
def test_s3_error_message(text, message) -> None:
    assert _s3_error_message(text) == message


# --- the transport, against a fake session ------------------------------------------------


class FakeSession:
    """Answers requests from a script of (status, body, headers); records what was sent."""

    def __init__(self, *answers: tuple[int, object, dict[str, str]]) -> None:
        self._answers: Iterator[tuple[int, object, dict[str, str]]] = iter(answers)
        self.sent: list[dict[str, object]] = []

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        self.sent.append({"method": method, "url": url, **kwargs})
        status, body, headers = next(self._answers)
        response = requests.Response()
        response.status_code = status
        response.reason = requests.status_codes._codes[status][0].replace("_", " ").title()
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers.update(headers)
        return response


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return slept


JOB = {
    "jobId": "job_1",
    "status": "RUNNING",
    "createdAt": "2026-11-22T10:00:00.000Z",
    "updatedAt": "2026-11-22T10:00:01.000Z",
    "expiresAt": "2026-11-22T10:15:00.000Z",
    "contentType": "image/jpeg",
    "params": {},
}


def test_throttled_requests_are_retried_honouring_retry_after(sleeps) -> None:
    session = FakeSession(
        (429, {"message": "Too Many Requests"}, {"Retry-After": "2"}), (503, b"", {}), (200, JOB, {})
    )
    client = Client("http://127.0.0.1:3000", session=session)  # type: ignore[arg-type]

    job = client.get_job("job_1")

    assert job.job_id == "job_1" and len(session.sent) == 3
    assert sleeps[0] == 2.0 and 0.5 <= sleeps[1] <= 2.0


def test_retries_end_with_the_last_error(sleeps) -> None:
    answers = [(429, {"message": "Too Many Requests"}, {})] * (client_module.RETRIES + 1)
    client = Client("http://127.0.0.1:3000", session=FakeSession(*answers))  # type: ignore[arg-type]

    with pytest.raises(SegjobError) as throttled:
        client.get_job("job_1")

    assert throttled.value.status == 429 and str(throttled.value) == "429 HttpError: Too Many Requests"
    assert len(sleeps) == client_module.RETRIES


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"error": {"code": "JobNotFound", "message": "no job job_1"}}, "404 JobNotFound: no job job_1"),
        (403, {"message": "Forbidden"}, "403 HttpError: Forbidden"),  # API Gateway's own body
        (500, b"<html>oops</html>", "500 HttpError: Internal Server Error"),
        (502, ["unexpected"], "502 HttpError: Bad Gateway"),
        (400, {"error": "flat"}, "400 HttpError: Bad Request"),
    ],
)
def test_api_errors_are_one_line_with_status_and_code(sleeps, status, body, expected) -> None:
    client = Client("http://127.0.0.1:3000", session=FakeSession((status, body, {})))  # type: ignore[arg-type]

    with pytest.raises(SegjobError) as failed:
        client.get_job("job_1")

    assert str(failed.value) == expected and sleeps == []


def test_a_deployed_api_is_signed_with_sigv4_for_its_region() -> None:
    session = FakeSession((200, JOB, {}))
    client = Client(
        "https://abc123.execute-api.eu-west-1.amazonaws.com",
        credentials=Credentials("AKIDEXAMPLE", "secret"),
        session=session,  # type: ignore[arg-type]
    )

    client.get_job("job_1")

    authorization = session.sent[0]["headers"]["Authorization"]  # type: ignore[index]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization


def test_local_mode_is_called_unsigned() -> None:
    session = FakeSession((200, JOB, {}))

    Client("http://127.0.0.1:3000", session=session).get_job("job_1")  # type: ignore[arg-type]

    assert "Authorization" not in session.sent[0]["headers"]  # type: ignore[operator]


def test_wait_gives_up_after_its_timeout(sleeps, monkeypatch) -> None:
    clock = iter(range(0, 1000, 10))  # every call to monotonic is 10 s later
    monkeypatch.setattr(client_module.time, "monotonic", lambda: next(clock))
    client = Client("http://127.0.0.1:3000", session=FakeSession(*[(200, JOB, {})] * 10))  # type: ignore[arg-type]

    with pytest.raises(SegjobError) as waited:
        client.wait("job_1", timeout=25)

    assert waited.value.code == "WaitTimeout" and "RUNNING" in str(waited.value)


def test_download_results_of_a_job_without_results_is_an_error(tmp_path) -> None:
    from segjob_core.models import Job

    with pytest.raises(SegjobError) as missing:
        Client("http://127.0.0.1:3000").download_results(Job.model_validate(JOB), tmp_path)
    assert missing.value.code == "NoResults"
    assert not (tmp_path / "job_1").exists()


def _finished(webhook: dict[str, object] | None) -> dict[str, object]:
    job: dict[str, object] = {**JOB, "status": "SUCCEEDED"}
    if webhook is not None:
        job["webhook"] = {"url": "https://hooks.example.com/in", **webhook}
    return job


def test_wait_for_webhook_reads_until_the_first_attempt_is_recorded(sleeps) -> None:
    attempt = {
        "at": "2026-11-22T10:00:02.000Z",
        "event": "job.succeeded",
        "outcome": "DELIVERED",
        "statusCode": 204,
    }
    session = FakeSession(
        (200, _finished({"status": "PENDING"}), {}),
        (200, _finished({"status": "PENDING"}), {}),
        (200, _finished({"status": "DELIVERED", "attempts": [attempt]}), {}),
    )

    job = Client("http://127.0.0.1:3000", session=session).wait_for_webhook("job_1")  # type: ignore[arg-type]

    assert job.webhook is not None and job.webhook.status.value == "DELIVERED"
    assert len(session.sent) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "webhook",
    [
        None,
        {"status": "FAILED"},
        {
            "status": "PENDING",
            "attempts": [{"at": "2026-11-22T10:00:02.000Z", "event": "job.succeeded", "outcome": "FAILED"}],
        },
    ],
    ids=["no webhook", "failed", "retry scheduled"],
)
def test_wait_for_webhook_returns_at_once_when_there_is_nothing_to_wait_for(sleeps, webhook) -> None:
    session = FakeSession((200, _finished(webhook), {}))

    job = Client("http://127.0.0.1:3000", session=session).wait_for_webhook("job_1")  # type: ignore[arg-type]

    assert job.status.value == "SUCCEEDED" and len(session.sent) == 1 and sleeps == []

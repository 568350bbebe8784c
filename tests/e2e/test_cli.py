"""The real `segjob` CLI as a subprocess against local mode (SEGJOB_API_URL): submit,
status, list, cancel, redeliver, results, exit codes, --json output, and `segjob webhook listen`."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import cv2
import pytest
import requests
from standardwebhooks import Webhook
from synth import SPLIT_SEEDS, make_image

from segjob_core.models import EventType, Job, JobStatus, ResultDocument, WebhookEvent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))
# The installed console script (entry point segjob.cli:main) next to this interpreter.
SEGJOB = Path(sys.executable).with_name("segjob")
COMMAND = [str(SEGJOB)] if SEGJOB.exists() else [sys.executable, "-m", "segjob.cli"]
EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
UNKNOWN_JOB = "job_00000000000000000000000000000000"
TEST_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SEGJOB_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGJOB_")}
    return {**env, **extra}


def segjob(*args: object, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def job_lines(stdout: str) -> list[Job]:
    return [Job.model_validate_json(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def env(runtime) -> dict[str, str]:
    return clean_env(SEGJOB_API_URL=runtime.api_url)


# --- jobs ---------------------------------------------------------------------------------


def test_submit_wait_out_downloads_results_one_line_per_job(env, tmp_path) -> None:
    out = tmp_path / "out"

    done = segjob("submit", *SAMPLES, "--wait", "--out", out, env=env)

    assert done.returncode == EXIT_OK, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(SAMPLES)
    for line, sample in zip(lines, SAMPLES, strict=True):  # sorted by path, like SAMPLES
        job_id, status, filename = line.split()[:3]
        assert status == "SUCCEEDED" and filename == sample.name
        assert "detections" in line
        document = ResultDocument.model_validate_json((out / job_id / "result.json").read_text())
        assert document.job_id == job_id
        assert (out / job_id / "annotated.jpg").stat().st_size > 0
    assert f"{len(SAMPLES)}/{len(SAMPLES)} succeeded" in done.stderr


def test_json_submit_then_status_list_and_results(env, tmp_path) -> None:
    submitted = segjob("submit", SAMPLES[0], "--wait", "--json", env=env)
    assert submitted.returncode == EXIT_OK, submitted.stderr
    [job] = job_lines(submitted.stdout)
    assert job.status is JobStatus.SUCCEEDED and job.result

    status = segjob("status", job.job_id, "--json", env=env)
    assert status.returncode == EXIT_OK
    assert job_lines(status.stdout)[0].job_id == job.job_id
    plain = segjob("status", job.job_id, env=env)
    assert plain.stdout.split()[:2] == [job.job_id, "SUCCEEDED"]

    listed = segjob("list", "--limit", "5", "--json", env=env)
    assert listed.returncode == EXIT_OK
    jobs = job_lines(listed.stdout)
    assert 1 <= len(jobs) <= 5 and jobs[0].job_id == job.job_id  # newest first

    results = segjob("results", job.job_id, "--out", tmp_path, env=env)
    assert results.returncode == EXIT_OK, results.stderr
    written = sorted(Path(line).name for line in results.stdout.splitlines())
    assert written == ["annotated.jpg", "result.json"]
    assert json.loads((tmp_path / job.job_id / "result.json").read_text())["jobId"] == job.job_id


def test_cancel_then_cancel_again_is_an_api_error(env, client) -> None:
    job_id = client.create_job().job_id

    canceled = segjob("cancel", job_id, env=env)
    again = segjob("cancel", job_id, env=env)
    results = segjob("results", job_id, "--out", "unused", env=env)

    assert canceled.returncode == EXIT_OK and canceled.stdout.split()[:2] == [job_id, "CANCELED"]
    assert again.returncode == EXIT_ERROR
    assert again.stderr.splitlines() == [f"segjob: 409 JobStateConflict: job {job_id} is already CANCELED"]
    assert results.returncode == EXIT_ERROR and f"{job_id}: NoResults: job is CANCELED" in results.stderr
    assert client.get_job(job_id).status is JobStatus.CANCELED


def test_redeliver_sends_the_last_event_again(env, client, receiver) -> None:
    created = client.submit(SAMPLES[0], webhook_url=receiver.url)
    receiver.wait_for(created.job_id, timeout=180)
    deadline = time.monotonic() + 30
    while client.get_job(created.job_id).webhook.status.value != "DELIVERED" and time.monotonic() < deadline:
        time.sleep(0.2)

    redelivered = segjob("redeliver", created.job_id, "--json", env=env)
    no_webhook = segjob("redeliver", client.create_job().job_id, env=env)

    assert redelivered.returncode == EXIT_OK, redelivered.stderr
    [job] = job_lines(redelivered.stdout)
    assert job.job_id == created.job_id and job.webhook.status.value == "PENDING"
    deadline = time.monotonic() + 60
    while len(receiver.events_for(created.job_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [e.type for e in receiver.events_for(created.job_id)] == [EventType.SUCCEEDED] * 2
    assert no_webhook.returncode == EXIT_ERROR and "409 JobStateConflict" in no_webhook.stderr


def test_a_failed_job_exits_1(env, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)

    done = segjob("submit", corrupt, "--wait", "--out", tmp_path / "out", env=env)

    assert done.returncode == EXIT_JOB_FAILED
    assert "FAILED" in done.stdout and "InvalidImage" in done.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert "0/1 succeeded" in done.stderr


def test_unknown_job_is_one_line_on_stderr_and_exit_3(env) -> None:
    done = segjob("status", UNKNOWN_JOB, env=env)

    assert done.returncode == EXIT_ERROR and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("segjob: 404 JobNotFound: ") and UNKNOWN_JOB in line


def test_unreachable_api_exits_3(tmp_path) -> None:
    done = segjob("status", UNKNOWN_JOB, env=clean_env(SEGJOB_API_URL="http://127.0.0.1:9"), timeout=60)

    assert done.returncode == EXIT_ERROR
    [line] = done.stderr.splitlines()
    assert line.startswith("segjob: ConnectionError: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", UNKNOWN_JOB], "no API URL"),
        (
            ["--api-url", "http://127.0.0.1:9", "submit", "/no/such/image.jpg"],
            "/no/such/image.jpg: no such file",
        ),
        (
            ["--api-url", "http://127.0.0.1:9", "submit", str(ROOT / "README.md")],
            "README.md: not an image file",
        ),
        (["--api-url", "http://127.0.0.1:9", "submit", str(ROOT)], "is a directory, not an image file"),
        (["--api-url", "http://127.0.0.1:9", "submit", SAMPLES[0], "--metadata", "{oops"], "not valid JSON"),
        (
            ["--api-url", "http://127.0.0.1:9", "list", "--limit", "many"],
            "argument --limit: expected a positive number, got 'many'",
        ),
        ([], "the following arguments are required"),
        (["submit"], "the following arguments are required: images"),
        (["webhook", "listen"], "no API URL"),  # without --secret it asks the API for yours
        (["webhook", "secret"], "no API URL"),
        (["webhook", "rotate", "--overlap", "8d"], "expected 0 to 604800 s"),
        (["webhook", "listen", "--secret", "whsec_", "--port", "0"], "secret"),
    ],
)
def test_usage_errors_exit_2(args, message) -> None:
    done = segjob(*args, env=clean_env(), timeout=60)

    assert done.returncode == EXIT_USAGE, done.stderr
    assert message in done.stderr and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1  # no usage block, no traceback


def test_a_gif_is_refused_before_any_job_is_created(env, client, tmp_path) -> None:
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00;")
    before = {job.job_id for job in client.iter_jobs()}

    done = segjob("submit", SAMPLES[0], gif, env=env)

    assert done.returncode == EXIT_USAGE and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"segjob: {gif}: GIF images are not supported (use JPEG, PNG, WebP, BMP or TIFF)"
    ]
    assert {job.job_id for job in client.iter_jobs()} == before  # not even the good file's


def test_list_into_a_closed_pipe_is_quiet(env, client) -> None:
    for _ in range(3):
        client.create_job()
    # WHEN the reader has gone before segjob writes a line (`segjob list | head -0`)
    process = subprocess.Popen(
        [*COMMAND, "list", "--limit", "3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()

    # THEN it ends as a process killed by SIGPIPE would, without a word on stderr
    assert process.wait(timeout=120) == 128 + signal.SIGPIPE
    assert process.stderr.read() == b""
    process.stderr.close()


def test_submit_without_wait_shows_the_upload_started_the_job(env) -> None:
    done = segjob("submit", SAMPLES[0], "--json", env=env)

    assert done.returncode == EXIT_OK, done.stderr
    [job] = job_lines(done.stdout)
    assert job.status is not JobStatus.AWAITING_UPLOAD and job.started_at


def test_metadata_and_retina_masks_options_reach_the_job(env) -> None:
    done = segjob(
        "submit", SAMPLES[0], "--wait", "--json", "--retina-masks",
        "--metadata", "camera=north", "--metadata", '{"run": 7, "checked": true}',
        env=env,
    )  # fmt: skip

    assert done.returncode == EXIT_OK, done.stderr
    [job] = job_lines(done.stdout)
    assert job.metadata == {"camera": "north", "run": 7, "checked": True}
    assert job.params.retina_masks is True and job.status is JobStatus.SUCCEEDED


def test_list_status_shows_only_jobs_in_that_status(env, client) -> None:
    canceled = client.create_job().job_id
    client.cancel(canceled)
    awaiting = client.create_job().job_id

    listed = segjob("list", "--status", "canceled", "--limit", "100", "--json", env=env)

    assert listed.returncode == EXIT_OK, listed.stderr
    jobs = job_lines(listed.stdout)
    assert canceled in {job.job_id for job in jobs} and awaiting not in {job.job_id for job in jobs}
    assert {job.status for job in jobs} == {JobStatus.CANCELED}


# --- webhook listen -----------------------------------------------------------------------


class Listener:
    """`segjob webhook listen` as a subprocess; its output lines arrive on queues."""

    def __init__(self, secret: str | None, append: Path, env: dict[str, str] | None = None) -> None:
        """With ``secret`` None, the listener gets the caller's secret from the API (``env``)."""
        self.append = append
        self.process = subprocess.Popen(
            [*COMMAND, "webhook", "listen", "--port", "0", "--append", str(append)]
            + (["--secret", secret] if secret else []),
            env=env or clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self._pumps = [
            threading.Thread(target=_pump, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for pump in self._pumps:
            pump.start()
        first = self.stderr.get(timeout=60)
        if secret is None:
            assert first.startswith("verifying with your webhook secret (generation "), first
            first = self.stderr.get(timeout=30)
        assert first.startswith("listening on "), first
        self.url = first.split()[2]

    def stop(self) -> tuple[int, list[str]]:
        """SIGINT (Ctrl-C); the exit code and every stdout line not yet taken."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=15)
        for pump in self._pumps:  # they end at the pipes' EOF
            pump.join(timeout=15)
        lines = []
        while not self.stdout.empty():
            lines.append(self.stdout.get_nowait())
        return code, lines


def _pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
    assert stream is not None
    for line in stream:
        lines.put(line.rstrip("\n"))


@pytest.fixture
def listener(tmp_path) -> Iterator[Listener]:
    started = Listener(TEST_SECRET, tmp_path / "events.jsonl")
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait(timeout=15)


def signed(
    secret: str, body: str, msg_id: str = "msg_test", at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    at = at or datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
    }
    return body.encode(), headers


def event_body(job_id: str) -> str:
    now = datetime.now(UTC).isoformat()
    job = {
        "jobId": job_id,
        "status": "SUCCEEDED",
        "createdAt": now,
        "updatedAt": now,
        "expiresAt": now,
        "contentType": "image/jpeg",
        "params": {},
    }
    return json.dumps({"type": "job.succeeded", "timestamp": now, "data": job})


def test_listener_rejects_bad_signatures_and_prints_valid_events(listener) -> None:
    body = event_body("job_listener")
    good, headers = signed(TEST_SECRET, body, msg_id="msg_good")
    tampered = body.replace("SUCCEEDED", "FAILED").encode()
    wrong_secret = signed(OTHER_SECRET, body)
    stale = signed(TEST_SECRET, body, at=datetime.now(UTC) - timedelta(minutes=6))

    # WHEN a tampered body, a wrong secret and a stale timestamp arrive THEN each is 401
    for data, hdrs in ((tampered, headers), wrong_secret, stale):
        response = requests.post(listener.url, data=data, headers=hdrs, timeout=10)
        assert response.status_code == 401
        assert listener.stderr.get(timeout=10).startswith("rejected: ")
    assert not listener.append.exists() or listener.append.read_text() == ""

    # WHEN a correctly signed event arrives THEN it is 2xx, printed and appended as a JSON line
    response = requests.post(listener.url, data=good, headers=headers, timeout=10)
    assert response.status_code == 204
    printed = json.loads(listener.stdout.get(timeout=10))
    event = WebhookEvent.model_validate({k: v for k, v in printed.items() if k != "webhookId"})
    assert printed["webhookId"] == "msg_good" and event.data.job_id == "job_listener"
    assert [json.loads(line) for line in listener.append.read_text().splitlines()] == [printed]

    code, more = listener.stop()
    assert code == EXIT_OK and more == []


def test_listener_receives_a_real_jobs_webhook(runtime, env, tmp_path) -> None:
    # GIVEN the listener started without --secret: it verifies with the caller's own secret
    hooks = Listener(None, tmp_path / "events.jsonl", env=env)
    try:
        done = segjob("submit", SAMPLES[0], "--webhook", hooks.url, "--wait", "--json", env=env)
        assert done.returncode == EXIT_OK, done.stderr
        [job] = job_lines(done.stdout)
        # --wait with --webhook shows how the delivery went, not the PENDING of the job's last moment
        assert job.webhook is not None and job.webhook.status.value == "DELIVERED", job.webhook

        printed = json.loads(hooks.stdout.get(timeout=60))
    finally:
        code, _ = hooks.stop()

    assert code == EXIT_OK
    assert printed["webhookId"] == f"msg_{job.job_id}_succeeded"
    event = WebhookEvent.model_validate({k: v for k, v in printed.items() if k != "webhookId"})
    assert event.type is EventType.SUCCEEDED and event.data.job_id == job.job_id
    assert json.loads((tmp_path / "events.jsonl").read_text()) == printed


def test_webhook_secret_and_rotate_print_the_callers_secret(runtime, env) -> None:
    shown = segjob("webhook", "secret", env=env)
    assert shown.returncode == EXIT_OK, shown.stderr
    [secret] = shown.stdout.splitlines()
    assert secret.startswith("whsec_") and secret == runtime.webhook_secret
    assert "generation" in shown.stderr

    # a rotation with the default overlap of a day: other tests' receivers keep verifying
    rotated = segjob("webhook", "rotate", "--json", env=env)
    assert rotated.returncode == EXIT_OK, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["secret"] != secret and new["generation"] >= 2 and new["previousValidUntil"]
    assert segjob("webhook", "secret", env=env).stdout.strip() == new["secret"]


# --- acceptance ---------------------------------------------------------------------------


@pytest.mark.slow
def test_twenty_images_submit_wait_out(env, tmp_path) -> None:
    """Acceptance: 20 images in one `segjob submit --wait --out`, every job SUCCEEDED."""
    images = tmp_path / "images"
    images.mkdir()
    for index in range(20):
        pixels, _ = make_image(SPLIT_SEEDS["demo"], index, size=(640, 960))
        cv2.imwrite(str(images / f"demo-{index:02d}.jpg"), pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])
    out = tmp_path / "out"

    started = time.monotonic()
    done = segjob("submit", *sorted(images.iterdir()), "--wait", "--out", out, env=env, timeout=900)
    seconds = time.monotonic() - started

    assert done.returncode == EXIT_OK, done.stderr
    statuses = [line.split()[1] for line in done.stdout.splitlines()]
    assert statuses == ["SUCCEEDED"] * 20
    folders = [p for p in out.iterdir() if p.is_dir()]
    assert len(folders) == 20
    assert all({f.name for f in folder.iterdir()} == {"result.json", "annotated.jpg"} for folder in folders)
    print(f"20 images: {seconds:.1f} s wall")  # visible with -s; the acceptance figure

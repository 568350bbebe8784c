"""No credentials, signatures or presigned URLs in logs or traces.

Local mode runs here with tracing on (``LocalRuntime(tracing=True)``: a local X-Ray
daemon receives the functions' segment documents, as the X-Ray service would on AWS).
Whole jobs run through it (succeeded, failed, canceled, a refused webhook URL, a secret
rotation), then every Powertools log line of every function and every X-Ray document is
searched for each secret value the run handed out or used.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest

from local.runtime import SECRET_ACCESS_KEY, LocalRuntime
from segjob import Client, SegjobError
from segjob_core.models import JobStatus
from tests.support.local_mode import caller_client, wait_for
from tests.support.receivers import Delivery, RecordingReceiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
FUNCTIONS = ("ApiFunction", "SegmentFunction", "NotifyFunction")


@dataclass
class Run:
    runtime: LocalRuntime
    needles: dict[str, str]  # what it is -> the secret value
    job_ids: list[str]
    logs: dict[str, str]  # function -> its log file's text
    documents: list[dict]  # X-Ray segment documents


def _presigned(url: str, what: str) -> dict[str, str]:
    query = urlsplit(url).query
    return {f"{what} query string": query, f"{what} signature": parse_qs(query)["X-Amz-Signature"][0]}


def _signatures(delivery: Delivery, what: str) -> dict[str, str]:
    found = {f"{what} webhook-signature header": delivery.headers["webhook-signature"]}
    found |= {f"{what} signature {i}": signature for i, signature in enumerate(delivery.signatures)}
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    state_dir = tmp_path_factory.mktemp("traced-state")
    with LocalRuntime(state_dir=state_dir, tracing=True) as runtime:
        yield _whole_jobs(runtime)


def _whole_jobs(runtime: LocalRuntime) -> Run:
    caller: Client = caller_client(runtime)
    needles: dict[str, str] = {"functions' AWS secret key": SECRET_ACCESS_KEY}
    master_arn = runtime.stack.ref("WebhookMasterKey")
    needles["webhook master key"] = runtime.boto3_client("secretsmanager").get_secret_value(
        SecretId=master_arn
    )["SecretString"]
    # a rotation with an overlap: every delivery carries two signatures
    old, new = caller.webhook_secret().secret, caller.rotate_webhook_secret(overlap_seconds=3600).secret
    needles |= {"old whsec": old, "old key": old.removeprefix("whsec_")}
    needles |= {"new whsec": new, "new key": new.removeprefix("whsec_")}
    path_token, query_token = secrets.token_hex(16), secrets.token_hex(16)
    needles |= {"webhook URL path token": path_token, "webhook URL query token": query_token}

    corrupt = Path(runtime.state_dir) / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" * 10)
    with RecordingReceiver(path=f"/hooks/{path_token}?token={query_token}") as hooks:
        succeeded = caller.submit(SAMPLE, webhook_url=hooks.url)
        needles["upload policy"] = succeeded.upload.fields["policy"]
        needles["upload signature"] = succeeded.upload.fields["x-amz-signature"]
        failed = caller.submit(corrupt, webhook_url=hooks.url)
        canceled = caller.create_job(webhook_url=hooks.url)
        needles["upload policy (canceled job)"] = canceled.upload.fields["policy"]
        caller.cancel(canceled.job_id)
        for refused in (f"https://10.0.0.1/hooks/{path_token}?token={query_token}", f"ftp://x/{path_token}"):
            with pytest.raises(SegjobError, match="InvalidWebhookUrl"):
                caller.create_job(webhook_url=refused)

        deliveries = {
            "succeeded": hooks.wait_for(succeeded.job_id, "job.succeeded", timeout=180),
            "failed": hooks.wait_for(failed.job_id, "job.failed", timeout=180),
            "canceled": hooks.wait_for(canceled.job_id, "job.canceled", timeout=180),
        }
    for what, delivery in deliveries.items():
        needles |= _signatures(delivery, what)
    result = json.loads(deliveries["succeeded"].body)["data"]["result"]
    needles |= _presigned(result["resultUrl"], "webhook result URL")
    needles |= _presigned(result["annotatedUrl"], "webhook annotated URL")
    job = caller.wait(succeeded.job_id, timeout=60)
    assert job.status is JobStatus.SUCCEEDED and job.result and job.result.result_url
    needles |= _presigned(job.result.result_url, "API result URL")
    assert caller.list_jobs(limit=10).jobs

    job_ids = [succeeded.job_id, failed.job_id, canceled.job_id]

    def services_traced() -> set[str]:
        return {
            d.get("annotations", {}).get("Service")
            for d in runtime.xray_documents()
            if d.get("name") == "## lambda_handler"
        }

    # the last invocations' documents and log lines are written as the functions return
    wait_for(lambda: {"api", "segment", "notify"} <= services_traced(), timeout=60)
    names = {function: runtime.stack.physical_name(function) for function in FUNCTIONS}
    logs = wait_for(
        lambda: (
            (texts := {f: (runtime.log_dir / f"{name}.log").read_text() for f, name in names.items()})
            and all(job_id in texts["NotifyFunction"] for job_id in job_ids)
            and texts
        ),
        timeout=60,
    )
    return Run(runtime, needles, job_ids, logs, runtime.xray_documents())


def _forms(value: str) -> set[str]:
    """A value as it may appear in a log or a document: raw, URL-encoded, JSON-escaped."""
    return {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1]}


def _leaks(haystack: str, needles: dict[str, str]) -> list[str]:
    return sorted(what for what, value in needles.items() if any(form in haystack for form in _forms(value)))


def test_the_scan_has_something_to_scan(run: Run) -> None:
    # every function logged Powertools JSON lines naming the jobs, and sent trace documents
    for function, text in run.logs.items():
        structured = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert structured, f"{function} wrote no Powertools log lines"
        assert all("level" in line and "service" in line for line in structured if "_aws" not in line)
    assert all(job_id in run.logs["NotifyFunction"] for job_id in run.job_ids)
    traced = "\n".join(json.dumps(document) for document in run.documents)
    assert len(run.documents) > 20
    assert {"## job_api.handler.create_job", "## lambda_handler", "dynamodb", "s3"} <= {
        d["name"] for d in run.documents
    }
    assert run.job_ids[0] in traced  # annotations name the job: the scan reads the right traces
    assert len(run.needles) >= 25 and all(len(value) >= 16 for value in run.needles.values())


def test_logs_hold_no_credentials_signatures_or_presigned_urls(run: Run) -> None:
    leaks = {function: _leaks(text, run.needles) for function, text in run.logs.items()}
    assert leaks == {function: [] for function in FUNCTIONS}


def test_traces_hold_no_credentials_signatures_or_presigned_urls(run: Run) -> None:
    leaks = {
        document["name"]: found
        for document in run.documents
        if (found := _leaks(json.dumps(document), run.needles))
    }
    assert leaks == {}


def test_traces_hold_no_responses(run: Run) -> None:
    # Powertools records a method's response as metadata "<method> response": not here
    captured = [
        document["name"]
        for document in run.documents
        if any(key.endswith(" response") for ns in document.get("metadata", {}).values() for key in ns)
    ]
    assert captured == []

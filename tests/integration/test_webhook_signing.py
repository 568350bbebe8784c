"""Webhook signing and delivery in local mode, over real HTTP: per-caller secrets (no
caller can verify or forge another's deliveries), rotation with an overlap, secrets that
survive a restart of local mode, and the hard deadline of a delivery attempt against a
receiver that trickles its answer."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from local.runtime import LocalRuntime
from segjob.webhooks import WebhookReceiver
from segjob_core.models import JobStatus
from tests.support.local_mode import caller_client, new_caller_key, wait_for
from tests.support.receivers import RecordingReceiver, TricklingReceiver

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
DEADLINE_SECONDS = 10.0  # WEBHOOK_TIMEOUT_SECONDS in template.yaml


def test_a_delivery_for_one_caller_never_verifies_with_anothers_secret(runtime) -> None:
    # GIVEN two callers, each with the secret the API gives them
    alice, bob = caller_client(runtime), caller_client(runtime)
    alice_secret, bob_secret = alice.webhook_secret().secret, bob.webhook_secret().secret
    assert alice_secret != bob_secret

    # WHEN each submits a job with a webhook to the same (recording) receiver
    with RecordingReceiver() as hooks:
        jobs = {
            name: client.submit(SAMPLE, webhook_url=hooks.url)
            for name, client in (("alice", alice), ("bob", bob))
        }
        deliveries = {name: hooks.wait_for(job.job_id, timeout=180) for name, job in jobs.items()}

    # THEN each delivery verifies with its owner's secret and never with the other's
    assert deliveries["alice"].verifies_with(alice_secret)
    assert not deliveries["alice"].verifies_with(bob_secret)
    assert deliveries["bob"].verifies_with(bob_secret)
    assert not deliveries["bob"].verifies_with(alice_secret)


def test_a_forged_event_signed_with_another_callers_secret_is_refused(runtime) -> None:
    # GIVEN alice's verifying receiver, and bob, who holds only his own secret
    alice, bob = caller_client(runtime), caller_client(runtime)
    with WebhookReceiver(secret=alice.webhook_secret().secret) as alice_receiver:
        real = alice.submit(SAMPLE, webhook_url=alice_receiver.url)
        genuine = alice_receiver.wait_for(real.job_id, timeout=180)

        # WHEN bob forges a job.succeeded for one of alice's jobs, with a result URL of his choosing
        forged = genuine.model_copy(
            update={
                "data": genuine.data.model_copy(update={"metadata": {"resultUrl": "https://evil.example/x"}})
            }
        )
        body = forged.model_dump_json(by_alias=True, exclude_none=True)
        now = datetime.now(UTC)
        headers = {
            "webhook-id": "msg_forged",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(bob.webhook_secret().secret).sign("msg_forged", now, body),
            "content-type": "application/json",
        }
        answer = requests.post(alice_receiver.url, data=body, headers=headers, timeout=10)

    # THEN alice's receiver refuses it and recorded only the genuine event
    assert answer.status_code == 401
    assert alice_receiver.rejected
    assert [e.data.metadata for e in alice_receiver.events] == [None]


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(runtime) -> None:
    caller = caller_client(runtime)
    first = caller.webhook_secret()

    with RecordingReceiver() as hooks:
        # WHEN the caller rotates with an hour of overlap
        second = caller.rotate_webhook_secret(overlap_seconds=3600)
        during = hooks.wait_for(caller.submit(SAMPLE, webhook_url=hooks.url).job_id, timeout=180)
        # AND then rotates again revoking the previous secret at once
        third = caller.rotate_webhook_secret(overlap_seconds=0)
        after = hooks.wait_for(caller.submit(SAMPLE, webhook_url=hooks.url).job_id, timeout=180)

    # THEN during the overlap the delivery carries both signatures, valid for either secret
    assert (first.generation, second.generation, third.generation) == (1, 2, 3)
    assert second.previous_valid_until and third.previous_valid_until is None
    assert len(during.signatures) == 2
    assert during.verifies_with(first.secret) and during.verifies_with(second.secret)
    # AND after the revocation only the newest secret verifies
    assert len(after.signatures) == 1
    assert after.verifies_with(third.secret)
    assert not after.verifies_with(second.secret) and not after.verifies_with(first.secret)
    assert caller.webhook_secret() == third


def test_each_delivery_attempt_ends_at_the_deadline_against_a_trickling_receiver(runtime, client) -> None:
    # GIVEN a receiver that answers with a status line and then one header byte every 0.5 s
    # for two minutes: each byte arrives well within any per-read timeout
    with TricklingReceiver(interval=0.5, hold=120.0) as slow:
        created = client.submit(SAMPLE, webhook_url=slow.url)

        # WHEN the job's webhook is attempted
        ended = wait_for(slow.ended, timeout=180, interval=0.5)
        job = client.get_job(created.job_id)

    # THEN notify hung up on every attempt at its 10 s deadline: not earlier (1 s of slack
    # for the receiver's own scheduling), and long before the receiver would have stopped
    for attempt in ended:
        assert attempt.request_line == b"POST /hooks HTTP/1.1"
        assert attempt.held_seconds is not None
        assert DEADLINE_SECONDS - 1.0 <= attempt.held_seconds < slow.hold / 2
        assert attempt.bytes_sent >= 10  # bytes kept coming: only a deadline ends this
    assert job.status is JobStatus.SUCCEEDED  # the job itself is not held up
    # AND the function reported the deadline as the reason
    log = (runtime.log_dir / f"{runtime.stack.physical_name('NotifyFunction')}.log").read_text()
    reasons = [
        json.loads(line).get("reason", "")
        for line in log.splitlines()
        if line.startswith("{") and created.job_id in line and "webhook not delivered" in line
    ]
    assert reasons and all("no status line and headers within the 10 s deadline" in r for r in reasons)


def test_secrets_survive_a_restart_of_local_mode(tmp_path) -> None:
    # GIVEN local mode with a state dir; one caller reads its secret, another rotates
    keys = {"steady": new_caller_key(), "rotated": new_caller_key()}

    def secrets(runtime: LocalRuntime) -> dict[str, object]:
        steady = caller_client(runtime, keys["steady"]).webhook_secret()
        rotated = caller_client(runtime, keys["rotated"]).webhook_secret()
        return {"steady": steady, "rotated": rotated}

    with LocalRuntime(state_dir=tmp_path / "state", eager=False) as runtime:
        caller_client(runtime, keys["rotated"]).rotate_webhook_secret(overlap_seconds=3600)
        before = secrets(runtime)

    # WHEN local mode starts again from the same state dir (and once from another)
    with LocalRuntime(state_dir=tmp_path / "state", eager=False) as runtime:
        after = secrets(runtime)
    with LocalRuntime(state_dir=tmp_path / "elsewhere", eager=False) as runtime:
        fresh = secrets(runtime)

    # THEN every caller's secret, rotation included, is the same; another state dir differs
    assert after == before
    assert before["rotated"].generation == 2  # type: ignore[attr-defined]
    assert fresh["steady"] != before["steady"]
    # AND the master key is kept readable by its owner only
    kept = tmp_path / "state" / "secrets" / "WebhookMasterKey"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o600

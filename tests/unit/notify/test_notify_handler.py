"""NotifyFunction end to end in-process: real handler, moto Secrets Manager, DynamoDB and
S3, and a real HTTP receiver on loopback that verifies the Standard Webhooks signature."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from segjob_core.errors import WebhookDeliveryFailed, WebhookTargetRefused
from segjob_core.jobs import iso, utc_now
from segjob_core.models import EventType, JobStatus, NotifyOutcome, WebhookEvent
from segjob_core.signing import derive_secret

OWNER = "arn:aws:iam::123456789012:user/alice"  # owner of the jobs in tests/events
OTHER_OWNER = "arn:aws:iam::123456789012:user/mallory"


def verified_event(request: Any, signing_key: str) -> WebhookEvent:
    """What a receiver does: verify with its whsec_ secret, then parse the contract."""
    payload = Webhook(signing_key).verify(request.body, request.headers)
    return WebhookEvent.model_validate(payload)


def test_delivers_a_signed_event_the_receiver_can_verify(
    notify_fn, notify_env, notify_event, receiver, signing_key, lambda_context
):
    # GIVEN a succeeded job whose webhook points at the local receiver
    event = notify_event("notify_succeeded", receiver.url)

    # WHEN the state machine invokes the function
    response = notify_fn.app.lambda_handler(event, lambda_context)

    # THEN exactly one signed POST arrived, with a body that is a valid WebhookEvent
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    webhook_event = verified_event(request, signing_key)
    assert webhook_event.type is EventType.SUCCEEDED
    assert webhook_event.timestamp == "2025-11-22T02:40:13.902Z"
    assert webhook_event.data.job_id == "job_5f0c3d9e8a7b41c2b6d4e1f2a3b4c5d6"
    assert webhook_event.data.status is JobStatus.SUCCEEDED
    assert webhook_event.data.metadata == {"batch": "2025-11-22", "camera": 7}
    assert "owner" not in json.loads(request.body)["data"]
    assert request.path == "/hooks/segjob?tenant=acme"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "segjob-notify/0.1"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-id"] == "msg_job_5f0c3d9e8a7b41c2b6d4e1f2a3b4c5d6_succeeded"
    # AND the function returns the NotifyOutcome the state machine records
    outcome = NotifyOutcome.model_validate(response)
    assert outcome.status_code == 204
    assert outcome.webhook_id == request.headers["webhook-id"]
    assert outcome.attempt_ms >= 0
    assert set(response) == {"statusCode", "webhookId", "attemptMs"}


def test_failed_job_event_carries_the_error(
    notify_fn, notify_env, notify_event, receiver, signing_key, lambda_context
):
    notify_fn.app.lambda_handler(notify_event("notify_failed", receiver.url), lambda_context)

    webhook_event = verified_event(receiver.requests[0], signing_key)
    assert webhook_event.type is EventType.FAILED
    assert webhook_event.data.result is None
    assert webhook_event.data.error is not None
    assert webhook_event.data.error.code == "InvalidImage"
    assert webhook_event.data.error.message.startswith("cannot identify image file")
    assert receiver.requests[0].headers["webhook-id"] == "msg_job_9a8b7c6d5e4f40312233445566778899_failed"


def test_webhook_id_is_stable_across_retries(notify_fn, notify_env, notify_event, receiver, lambda_context):
    event = notify_event("notify_succeeded", receiver.url)

    first = notify_fn.app.lambda_handler(event, lambda_context)
    second = notify_fn.app.lambda_handler(event, lambda_context)

    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert ids == [first["webhookId"], second["webhookId"]]
    assert ids[0] == ids[1]
    bodies = [json.loads(request.body) for request in receiver.requests]
    assert bodies[0]["timestamp"] == bodies[1]["timestamp"]  # the event's time, not the attempt's


def test_result_urls_are_presigned_and_downloadable(
    notify_fn, notify_env, notify_event, receiver, signing_key, aws, lambda_context
):
    # GIVEN the segment function's outputs in the jobs bucket
    job_id = "job_5f0c3d9e8a7b41c2b6d4e1f2a3b4c5d6"
    aws.s3.put_object(Bucket=aws.bucket, Key=f"results/{job_id}/result.json", Body=b'{"jobId": "x"}')
    aws.s3.put_object(Bucket=aws.bucket, Key=f"results/{job_id}/annotated.jpg", Body=b"\xff\xd8jpeg")

    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    result = verified_event(receiver.requests[0], signing_key).data.result
    assert result is not None
    assert result.summary.count == 3
    assert result.result_key == f"results/{job_id}/result.json"
    assert result.result_url and result.annotated_url
    for url, key in ((result.result_url, result.result_key), (result.annotated_url, result.annotated_key)):
        assert f"/{key}" in url
        assert "X-Amz-Signature=" in url
        assert "X-Amz-Expires=3600" in url  # RESULT_URL_TTL default
    # a receiver can download them straight away
    assert requests.get(result.result_url, timeout=5).content == b'{"jobId": "x"}'
    assert requests.get(result.annotated_url, timeout=5).content == b"\xff\xd8jpeg"


def test_result_url_lifetime_follows_settings(
    notify_fn, notify_env, notify_event, receiver, monkeypatch, lambda_context
):
    monkeypatch.setenv("RESULT_URL_TTL", "900")

    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    assert "X-Amz-Expires=900" in json.loads(receiver.requests[0].body)["data"]["result"]["resultUrl"]


def test_master_key_is_read_once_per_container(notify_fn, notify_env, notify_event, receiver, lambda_context):
    # GIVEN a cold container whose Secrets Manager calls are counted
    reads: list[str] = []
    notifier = notify_fn.logic.get_notifier()
    notifier.secrets.master_key.client.meta.events.register(
        "provide-client-params.secretsmanager.GetSecretValue",
        lambda **kwargs: reads.append(kwargs["params"]["SecretId"]),
    )

    # WHEN it handles three events
    for _ in range(3):
        notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    # THEN the master key was fetched once (it is cached for minutes, not per delivery)
    assert len(receiver.requests) == 3
    assert reads == [notify_env["WEBHOOK_MASTER_KEY_ARN"]]


def test_another_callers_secret_does_not_verify(
    notify_fn, notify_env, notify_event, receiver, master_key, signing_key, lambda_context
):
    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    request = receiver.requests[0]
    assert verified_event(request, signing_key).data.job_id  # the owner's secret verifies
    for other in (
        derive_secret(master_key.encode(), OTHER_OWNER, 1),
        derive_secret(master_key.encode(), OWNER, 2),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(other).verify(request.body, request.headers)


def rotated_to_generation_2(table: Any, ago: timedelta, overlap_left: timedelta) -> None:
    """The owner's row as the API writes it after a rotation ``ago``, its overlap ending in ``overlap_left``."""
    now = utc_now()
    table.put_item(
        Item={
            "owner": OWNER,
            "generation": 2,
            "createdAt": iso(now - timedelta(days=3)),
            "rotatedAt": iso(now - ago),
            "previousExpiresAt": iso(now + overlap_left),
        }
    )


def test_during_a_rotation_overlap_both_secrets_verify(
    notify_fn, notify_env, notify_event, receiver, master_key, aws, lambda_context
):
    # GIVEN the owner rotated to generation 2, the previous secret overlapping for an hour
    rotated_to_generation_2(aws.state_table, ago=timedelta(0), overlap_left=timedelta(hours=1))

    # WHEN an event is delivered
    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    # THEN it carries two signatures, and receivers with either secret accept it
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for generation in (2, 1):
        assert verified_event(request, derive_secret(master_key.encode(), OWNER, generation)).data.job_id
    with pytest.raises(WebhookVerificationError):
        verified_event(request, derive_secret(master_key.encode(), OWNER, 3))


def test_after_the_overlap_only_the_new_secret_verifies(
    notify_fn, notify_env, notify_event, receiver, master_key, aws, lambda_context
):
    # GIVEN a rotation whose overlap has ended (a warm container: the change applies at once)
    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)
    rotated_to_generation_2(aws.state_table, ago=timedelta(days=1), overlap_left=timedelta(seconds=-1))

    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    first, second = receiver.requests
    old, new = (derive_secret(master_key.encode(), OWNER, g) for g in (1, 2))
    assert verified_event(first, old) and len(second.headers["webhook-signature"].split(" ")) == 1
    assert verified_event(second, new).data.job_id
    with pytest.raises(WebhookVerificationError):
        verified_event(second, old)


def test_receiver_error_is_a_retryable_failure(
    notify_fn, notify_env, notify_event, receiver, lambda_context, capsys
):
    receiver.status = 500

    with pytest.raises(WebhookDeliveryFailed, match="HTTP 500"):
        notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    assert len(receiver.requests) == 1  # one attempt: the state machine owns retries
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("WebhookFailed" in m for m in emitted)


def test_delivery_emits_delivered_metric(
    notify_fn, notify_env, notify_event, receiver, lambda_context, capsys
):
    notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("WebhookDelivered" in m for m in emitted)
    assert not any("WebhookFailed" in m for m in emitted)


def test_redirect_is_not_followed(
    notify_fn, notify_env, notify_event, start_receiver, receiver, lambda_context
):
    elsewhere = start_receiver()
    receiver.status = 307
    receiver.response_headers = {"Location": elsewhere.url}

    with pytest.raises(WebhookDeliveryFailed, match="HTTP 307"):
        notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)

    assert elsewhere.requests == []


def test_receiver_not_listening_is_a_retryable_failure(
    notify_fn, notify_env, notify_event, closed_port, lambda_context
):
    event = notify_event("notify_succeeded", f"http://127.0.0.1:{closed_port}/hook")

    with pytest.raises(WebhookDeliveryFailed, match=r"(?i)refused|failed to establish"):
        notify_fn.app.lambda_handler(event, lambda_context)


def test_slow_receiver_times_out(notify_fn, notify_env, notify_event, receiver, monkeypatch, lambda_context):
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "0.2")
    receiver.delay = 1.0

    with pytest.raises(WebhookDeliveryFailed, match=r"no status line and headers within the 0\.2 s deadline"):
        notify_fn.app.lambda_handler(notify_event("notify_succeeded", receiver.url), lambda_context)


def test_loopback_refused_outside_local_mode(
    notify_fn, notify_env, notify_event, receiver, monkeypatch, lambda_context
):
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "false")
    https_loopback = receiver.url.replace("http://", "https://")

    for url in (receiver.url, https_loopback):
        with pytest.raises(WebhookTargetRefused):
            notify_fn.app.lambda_handler(notify_event("notify_succeeded", url), lambda_context)

    assert receiver.requests == []


def test_job_without_webhook_is_refused(notify_fn, notify_env, notify_event, lambda_context):
    event = notify_event("notify_succeeded")
    del event["item"]["webhookUrl"]

    with pytest.raises(WebhookTargetRefused, match="no webhookUrl"):
        notify_fn.app.lambda_handler(event, lambda_context)


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_malformed_request_is_rejected(notify_fn, notify_env, notify_event, lambda_context):
    event = notify_event("notify_succeeded")
    event["type"] = "job.exploded"

    with pytest.raises(ValidationError):
        notify_fn.app.lambda_handler(event, lambda_context)


def test_payload_carries_no_webhook_status_of_its_own() -> None:
    from job_notify.logic import build_event

    item = {
        "jobId": "job_1",
        "status": "SUCCEEDED",
        "createdAt": "2026-12-01T00:00:00.000Z",
        "updatedAt": "2026-12-01T00:00:01.000Z",
        "expiresAt": "2026-12-01T00:15:00.000Z",
        "contentType": "image/jpeg",
        "params": "{}",
        "webhookUrl": "https://example.com/hooks",
        "webhookStatus": "PENDING",
    }
    event = build_event(EventType.SUCCEEDED, item, presign=lambda key: key)
    assert event.data.webhook is None
    assert "webhook" not in event.to_json_dict()["data"]

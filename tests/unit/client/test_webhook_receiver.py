"""Signature checks of segjob.webhooks.WebhookReceiver (what `segjob webhook listen`
uses): only correctly signed, fresh messages become events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from segjob.webhooks import WebhookReceiver
from segjob_core.models import EventType

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh"
BODY = json.dumps(
    {
        "type": "job.canceled",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "data": {
            "jobId": "job_1",
            "status": "CANCELED",
            "createdAt": "2026-11-22T10:00:00.000Z",
            "updatedAt": "2026-11-22T10:00:00.000Z",
            "expiresAt": "2026-11-22T10:15:00.000Z",
            "contentType": "image/jpeg",
            "params": {},
        },
    }
)


def signed(body: str, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {
        "webhook-id": "msg_job_1_canceled",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_job_1_canceled", at, body),
    }


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)  # not started: verify() needs no server
    yield hook
    hook.stop()


def test_a_signed_fresh_message_is_an_event(receiver) -> None:
    event = receiver.verify(BODY.encode(), signed(BODY))
    assert event.type is EventType.CANCELED and event.data.job_id == "job_1"


@pytest.mark.parametrize(
    ("body", "secret", "age", "signature"),
    [
        pytest.param(BODY.replace("job_1", "job_2"), SECRET, 0, None, id="tampered body"),
        pytest.param(BODY, OTHER_SECRET, 0, None, id="wrong secret"),
        pytest.param(BODY, SECRET, 6 * 60, None, id="stale"),
        pytest.param(BODY, SECRET, -6 * 60, None, id="from the future"),
        pytest.param(BODY, SECRET, 0, "", id="no signature"),
    ],
)
def test_bad_messages_are_refused(receiver, body, secret, age, signature) -> None:
    # signed now (not at collection time): ``age`` seconds in the past
    headers = signed(BODY, secret=secret, at=datetime.now(UTC) - timedelta(seconds=age))
    if signature is not None:
        headers["webhook-signature"] = signature

    with pytest.raises(WebhookVerificationError):
        receiver.verify(body.encode(), headers)


def test_refused_messages_are_answered_401_and_never_recorded(receiver) -> None:
    rejected: list[str] = []
    receiver.on_reject = rejected.append

    status = receiver._record(204, BODY.encode(), signed(BODY, secret=OTHER_SECRET))

    assert status == 401 and receiver.events == [] and len(rejected) == 1


@pytest.mark.parametrize("secret", ["", "whsec_", "not base64 at all!"])
def test_an_unusable_secret_is_a_value_error(secret) -> None:
    with pytest.raises(ValueError, match="whsec_"):
        WebhookReceiver(secret)

"""Deliver one job event to the job's webhook: check the target, build, sign, send.

One attempt per invocation: the state machine retries a ``WebhookDeliveryFailed`` with
backoff and gives up at once on ``WebhookTargetRefused``. The message id is derived from
the job and event type, so every retry carries the same ``webhook-id`` and receivers can
drop duplicates.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from standardwebhooks import Webhook

from segjob_core.errors import WebhookDeliveryFailed, WebhookTargetRefused
from segjob_core.jobs import Presign, from_dynamodb, item_to_job
from segjob_core.models import EventType, NotifyOutcome, NotifyRequest, WebhookEvent
from segjob_core.netguard import check_webhook_url

from .adapters import DeliveryResponse, IPAddress, PinnedHttpSender, S3Presigner, SecretsManagerSecret
from .settings import NotifySettings

# Same service as the handler's: these share its configuration, keys and metric set.
logger = Logger(service="notify", child=True)
tracer = Tracer(service="notify")
metrics = Metrics(service="notify")

USER_AGENT = "segjob-notify/0.1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


class WebhookSecretInvalid(Exception):
    """The stored signing secret is empty or not base64: a deployment error, not the receiver's."""


class SecretSource(Protocol):
    def value(self) -> str: ...


class WebhookSender(Protocol):
    def post(
        self,
        url: str,
        addresses: Iterable[IPAddress],
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> DeliveryResponse: ...


@dataclass(frozen=True)
class Notifier:
    """What one delivery needs; built once per container by ``get_notifier``."""

    settings: NotifySettings
    secret: SecretSource
    presign: Presign
    sender: WebhookSender


@cache
def get_notifier() -> Notifier:
    settings = NotifySettings.from_env()
    return Notifier(
        settings=settings,
        secret=SecretsManagerSecret(settings.webhook_secret_arn),
        presign=S3Presigner(settings.jobs_bucket, settings.result_url_ttl).presign_get,
        sender=PinnedHttpSender(),
    )


def webhook_id(job_id: str, event_type: EventType) -> str:
    """Stable across retries of one message, distinct per job and event."""
    return f"msg_{job_id}_{event_type.value.split('.', 1)[1]}"


def signing_secret(secret_string: str) -> str:
    """The ``whsec_`` form users verify with, from a stored key with or without the prefix."""
    key = secret_string.strip().removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except ValueError as exc:  # binascii.Error
        raise WebhookSecretInvalid("the webhook signing secret is not base64") from exc
    if not raw:
        raise WebhookSecretInvalid("the webhook signing secret is empty")
    return SECRET_PREFIX + key


def build_event(event_type: EventType, item: Mapping[str, Any], presign: Presign) -> WebhookEvent:
    """The webhook body for a job item (plain values); ``timestamp`` is when the event
    happened (the status write), so it is the same in every retry."""
    job = item_to_job(item, presign)
    return WebhookEvent(type=event_type, timestamp=job.updated_at, data=job)


def signed_headers(secret: str, msg_id: str, sent_at: datetime, body: str) -> dict[str, str]:
    """Standard Webhooks headers: the signature covers ``id.timestamp.body``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, sent_at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@tracer.capture_method(capture_response=False)
def notify(request: NotifyRequest, notifier: Notifier) -> NotifyOutcome:
    item = from_dynamodb(request.item)
    msg_id = webhook_id(item["jobId"], request.type)
    logger.append_keys(jobId=item["jobId"], eventType=request.type.value, webhookId=msg_id)
    tracer.put_annotation(key="jobId", value=item["jobId"])
    try:
        outcome = _deliver(request.type, item, msg_id, notifier)
    except (WebhookTargetRefused, WebhookDeliveryFailed) as exc:
        # Counted per attempt; the job records FAILED once the state machine gives up.
        metrics.add_metric(name="WebhookFailed", unit=MetricUnit.Count, value=1)
        logger.warning("webhook not delivered", extra={"errorType": type(exc).__name__, "reason": str(exc)})
        raise
    metrics.add_metric(name="WebhookDelivered", unit=MetricUnit.Count, value=1)
    logger.info(
        "webhook delivered", extra={"statusCode": outcome.status_code, "attemptMs": outcome.attempt_ms}
    )
    return outcome


def _deliver(
    event_type: EventType, item: Mapping[str, Any], msg_id: str, notifier: Notifier
) -> NotifyOutcome:
    settings = notifier.settings
    url = item.get("webhookUrl")
    if not url:
        raise WebhookTargetRefused("the job has no webhookUrl")
    # Resolve and vet the target first: nothing is signed or sent to a refused address,
    # and the sender connects to exactly these addresses (no second DNS lookup).
    addresses = check_webhook_url(url, allow_loopback=settings.allow_loopback_webhooks)

    body = build_event(event_type, item, notifier.presign).model_dump_json(by_alias=True, exclude_none=True)
    sent_at = datetime.now(UTC).replace(microsecond=0)
    headers = signed_headers(signing_secret(notifier.secret.value()), msg_id, sent_at, body)

    response = notifier.sender.post(url, addresses, headers, body.encode(), settings.webhook_timeout_seconds)
    if not response.ok:
        logger.info(
            "webhook receiver answered",
            extra={"statusCode": response.status_code, "body": response.body_excerpt},
        )
        raise WebhookDeliveryFailed(f"webhook receiver answered HTTP {response.status_code}")
    return NotifyOutcome(
        status_code=response.status_code, webhook_id=msg_id, attempt_ms=round(response.elapsed_ms, 1)
    )

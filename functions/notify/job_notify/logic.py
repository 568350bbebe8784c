"""Deliver one job event to the job's webhook: check the target, build, sign, send.

One attempt per invocation: the state machine retries a ``WebhookDeliveryFailed`` with
backoff and gives up at once on ``WebhookTargetRefused``. The message id is derived from
the job and event type, so every retry carries the same ``webhook-id`` and receivers can
drop duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from segjob_core.batches import BatchWebhookEvent, item_to_batch
from segjob_core.errors import WebhookDeliveryFailed, WebhookTargetRefused
from segjob_core.jobs import Presign, from_dynamodb, item_to_job
from segjob_core.models import EventType, NotifyOutcome, NotifyRequest, WebhookEvent
from segjob_core.netguard import check_webhook_url
from segjob_core.signing import signature_header
from segjob_core.signing_store import SigningSecrets

from .adapters import S3Presigner
from .sender import DeliveryResponse, IPAddress, PinnedHttpSender
from .settings import NotifySettings

# Same service as the handler's: these share its configuration, keys and metric set.
logger = Logger(service="notify", child=True)
tracer = Tracer(service="notify")
metrics = Metrics(service="notify")

USER_AGENT = "segjob-notify/0.1"


class SecretSource(Protocol):
    def active_secrets(self, owner: str) -> list[str]:
        """The caller's ``whsec_`` secrets to sign with now, the current one first."""
        ...


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
    secrets: SecretSource
    presign: Presign
    sender: WebhookSender


@cache
def get_notifier() -> Notifier:
    settings = NotifySettings.from_env()
    return Notifier(
        settings=settings,
        secrets=SigningSecrets.from_settings(settings),
        presign=S3Presigner(settings.jobs_bucket, settings.result_url_ttl).presign_get,
        sender=PinnedHttpSender(),
    )


def webhook_id(job_id: str, event_type: EventType) -> str:
    """Stable across retries of one message, distinct per job and event."""
    return f"msg_{job_id}_{event_type.value.split('.', 1)[1]}"


def build_event(
    event_type: EventType, item: Mapping[str, Any], presign: Presign
) -> WebhookEvent | BatchWebhookEvent:
    """The webhook body for a job item, or a batch item for ``batch.completed`` (plain
    values); ``timestamp`` is when the event happened (the status write), so it is the same
    in every retry. ``data.webhook`` is left out: the delivery's own status is not known
    while it is being sent."""
    if event_type is EventType.BATCH_COMPLETED:
        batch = item_to_batch(item, presign=presign).model_copy(update={"webhook": None})
        return BatchWebhookEvent(type=event_type, timestamp=batch.updated_at, data=batch)
    job = item_to_job(item, presign).model_copy(update={"webhook": None})
    return WebhookEvent(type=event_type, timestamp=job.updated_at, data=job)


def subject_id(item: Mapping[str, Any]) -> str:
    """The job's id, or the batch's (batch.completed)."""
    return str(item.get("jobId") or item["batchId"])


def signed_headers(secrets: Sequence[str], msg_id: str, sent_at: datetime, body: str) -> dict[str, str]:
    """Standard Webhooks headers: one signature of ``id.timestamp.body`` per secret (two
    while a rotation overlaps)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(secrets, msg_id, sent_at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


@tracer.capture_method(capture_response=False)
def notify(request: NotifyRequest, notifier: Notifier) -> NotifyOutcome:
    item = from_dynamodb(request.item)
    msg_id = webhook_id(subject_id(item), request.type)
    logger.append_keys(jobId=subject_id(item), eventType=request.type.value, webhookId=msg_id)
    tracer.put_annotation(key="jobId", value=subject_id(item))
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
    # The job's owner's secrets, read at each attempt: a rotation applies to the next one.
    headers = signed_headers(notifier.secrets.active_secrets(item["owner"]), msg_id, sent_at, body)

    response = notifier.sender.post(url, addresses, headers, body.encode(), settings.webhook_timeout_seconds)
    if not response.ok:
        logger.info(
            "webhook receiver answered", extra={"statusCode": response.status_code, "reason": response.reason}
        )
        raise WebhookDeliveryFailed(f"webhook receiver answered HTTP {response.status_code}")
    return NotifyOutcome(
        status_code=response.status_code, webhook_id=msg_id, attempt_ms=round(response.elapsed_ms, 1)
    )

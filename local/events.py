"""S3 -> EventBridge -> Step Functions, locally.

moto's EventBridge cannot target Step Functions, and its S3 -> EventBridge event is not
the shape AWS sends. So: S3 notifies an SQS queue (the bucket's "EventBridge" switch in
the template), a dispatcher thread turns each S3 record into the EventBridge event AWS
sends for buckets with EventBridge enabled, matches it against the template's rules
(moto's EventBridge pattern matcher) and starts the target state machine. A message is
deleted only after its event was delivered, so a failed StartExecution is retried like
EventBridge does (up to the rule's RetryPolicy).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from .template import ACCOUNT_ID, PARTITION, EventRule

LOG = logging.getLogger(__name__)

# S3 notification eventName -> EventBridge detail-type and detail.reason.
_CREATED_REASONS = {
    "Put": "PutObject",
    "Post": "PostObject",
    "Copy": "CopyObject",
    "CompleteMultipartUpload": "CompleteMultipartUpload",
}
_DELETED_REASONS = {"Delete": "DeleteObject", "DeleteMarkerCreated": "DeleteObject"}
_NAMESPACE = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


def eventbridge_event_from_s3_record(
    record: Mapping[str, Any], message_id: str | None = None
) -> dict[str, Any] | None:
    """The EventBridge event AWS sends for one S3 notification record (None if S3 sends none).

    ``message_id`` makes the event's id stable across redeliveries of the same message.
    """
    kind, _, action = str(record.get("eventName", "")).partition(":")
    s3 = record["s3"]
    bucket = s3["bucket"]["name"]
    key = unquote_plus(s3["object"]["key"])
    seed = message_id or str(uuid.uuid4())
    digest = hashlib.sha256(seed.encode()).hexdigest().upper()
    event_time = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).astimezone(UTC)
    detail: dict[str, Any] = {"version": "0", "bucket": {"name": bucket}}
    obj: dict[str, Any] = {"key": key}
    if kind == "ObjectCreated" and action in _CREATED_REASONS:
        detail_type = "Object Created"
        obj["size"] = s3["object"].get("size", 0)
        obj["etag"] = str(s3["object"].get("eTag", "")).strip('"')
        reason = _CREATED_REASONS[action]
    elif kind == "ObjectRemoved" and action in _DELETED_REASONS:
        detail_type = "Object Deleted"
        reason = _DELETED_REASONS[action]
    else:
        return None
    if s3["object"].get("versionId") not in (None, "", "null"):
        obj["version-id"] = s3["object"]["versionId"]
    obj["sequencer"] = f"{int(event_time.timestamp() * 1e9):X}"
    detail["object"] = obj
    detail["request-id"] = digest[:16]
    detail["requester"] = ACCOUNT_ID
    detail["source-ip-address"] = "127.0.0.1"
    detail["reason"] = reason
    if detail_type == "Object Deleted":
        detail["deletion-type"] = "Permanently Deleted"
    return {
        "version": "0",
        "id": str(uuid.uuid5(_NAMESPACE, seed)),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "time": event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": record.get("awsRegion", "us-east-1"),
        "resources": [f"arn:{PARTITION}:s3:::{bucket}"],
        "detail": detail,
    }


def pattern_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge pattern matching, by moto's implementation (prefix, anything-but, ...)."""
    from moto.events.models import EventPattern  # noqa: PLC0415 - moto only where it is needed

    return EventPattern.load(json.dumps(pattern)).matches_event(dict(event))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Delivery:
    """One event offered to one rule: matched or not, and what the target returned."""

    event: dict[str, Any]
    rule: str
    matched: bool
    target_id: str | None = None  # e.g. the execution ARN
    error: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def key(self) -> str | None:
        return self.event.get("detail", {}).get("object", {}).get("key")


Target = Callable[[dict[str, Any]], str]


class EventBus:
    """The default event bus of local mode: the template's rules and their targets."""

    def __init__(self, rules: list[tuple[EventRule, Target]], history: int = 1000) -> None:
        self._rules = rules
        self._deliveries: collections.deque[Delivery] = collections.deque(maxlen=history)
        self._changed = threading.Condition()

    def put_event(self, event: dict[str, Any]) -> list[Delivery]:
        """Offer the event to every rule; a failing target raises after recording it."""
        deliveries = []
        failure: Exception | None = None
        for rule, target in self._rules:
            if not pattern_matches(rule.pattern, event):
                deliveries.append(Delivery(event, rule.name, matched=False))
                continue
            try:
                deliveries.append(Delivery(event, rule.name, matched=True, target_id=target(event)))
            except (ClientError, BotoCoreError, OSError) as exc:
                LOG.warning("rule %s: delivery to %s failed: %s", rule.name, rule.target, exc)
                deliveries.append(Delivery(event, rule.name, matched=True, error=str(exc)))
                failure = exc
        with self._changed:
            self._deliveries.extend(deliveries)
            self._changed.notify_all()
        if failure is not None:
            raise failure
        return deliveries

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for(self, predicate: Callable[[Delivery], bool], timeout: float) -> list[Delivery]:
        """The deliveries matching ``predicate`` once there is at least one (or TimeoutError)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [d for d in self._deliveries if predicate(d)]
                if found:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching event delivery within {timeout} s")
                self._changed.wait(remaining)

    def wait_for_key(self, key: str, timeout: float = 10.0) -> list[Delivery]:
        return self.wait_for(lambda delivery: delivery.key == key, timeout)


class S3EventDispatcher:
    """Long-polls the S3 notification queue and puts each record's event on the bus."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        bus: EventBus,
        max_receive_count: int = 186,
        wait_seconds: int = 5,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._bus = bus
        self._max_receive_count = max_receive_count
        self._wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-event-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self._wait_seconds,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except (ClientError, BotoCoreError, OSError) as exc:
                if self._stop.is_set():
                    return
                LOG.warning("S3 event queue unreadable: %s", exc)
                self._stop.wait(1.0)
                continue
            for message in response.get("Messages", []):
                self._handle(message)

    def _handle(self, message: Mapping[str, Any]) -> None:
        body = json.loads(message["Body"])
        receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        try:
            for record in body.get("Records", []):  # an s3:TestEvent has none
                event = eventbridge_event_from_s3_record(record, message["MessageId"])
                if event is not None:
                    self._bus.put_event(event)
        except (ClientError, BotoCoreError, OSError):
            if receive_count < self._max_receive_count:
                return  # stays in the queue: redelivered after its visibility timeout
            LOG.error("dropping S3 event after %s delivery attempts: %s", receive_count, body)
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

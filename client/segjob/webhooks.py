"""A webhook receiver that verifies Standard Webhooks signatures.

    with WebhookReceiver(secret="whsec_...", port=8765) as receiver:
        ...  # give receiver.url to jobs as webhookUrl
        event = receiver.wait_for(job_id, timeout=60)

Bad signatures, a wrong secret and stale or future timestamps (5 minutes of tolerance,
the scheme's default) are answered 401 and never recorded as events.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

from segjob_core.batches import BatchWebhookEvent
from segjob_core.models import EventType, WebhookEvent

AnyEvent: TypeAlias = WebhookEvent | BatchWebhookEvent

MAX_BODY_BYTES = 1 << 20


def _check_base64(text: str) -> None:
    """The scheme's decoder skips any character that is not base64, so a mistyped secret
    would verify nothing and fail every message: refuse it up front instead."""
    base64.b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4), validate=True)


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        on_event: Callable[[AnyEvent, dict[str, str]], None] | None = None,
        fail_with: int | None = None,
    ) -> None:
        try:
            _check_base64(secret.removeprefix("whsec_"))
            self._verifier = Webhook(secret)
        except (ValueError, EmptyWebhookSecretError) as exc:
            raise ValueError("the webhook secret must be whsec_ followed by base64") from exc
        self._on_event = on_event
        self.on_reject: Callable[[str], None] | None = None
        self.fail_with = fail_with  # answer this status instead of 204 (tests of retries)
        self.events: list[WebhookEvent] = []
        self.batch_events: list[BatchWebhookEvent] = []
        self.rejected: list[str] = []
        self.attempts = 0
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: never call it alone
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def events_for(self, job_id: str) -> list[WebhookEvent]:
        with self._changed:
            return [e for e in self.events if e.data.job_id == job_id]

    def wait_for(self, job_id: str, timeout: float = 60.0) -> WebhookEvent:
        """The first verified event of ``job_id``; TimeoutError if none arrives in time."""
        with self._changed:
            ok = self._changed.wait_for(lambda: any(e.data.job_id == job_id for e in self.events), timeout)
            if not ok:
                raise TimeoutError(f"no webhook for {job_id} within {timeout} s")
            return next(e for e in self.events if e.data.job_id == job_id)

    def wait_for_batch(self, batch_id: str, timeout: float = 60.0) -> BatchWebhookEvent:
        """The first verified batch.completed event of ``batch_id``; TimeoutError if none arrives."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: any(e.data.batch_id == batch_id for e in self.batch_events), timeout
            ):
                raise TimeoutError(f"no webhook for {batch_id} within {timeout} s")
            return next(e for e in self.batch_events if e.data.batch_id == batch_id)

    def verify(self, body: bytes, headers: dict[str, str]) -> AnyEvent:
        """Raise WebhookVerificationError unless signature and timestamp are valid."""
        payload = self._verifier.verify(body, headers)
        if isinstance(payload, dict) and payload.get("type") == EventType.BATCH_COMPLETED.value:
            return BatchWebhookEvent.model_validate(payload)
        return WebhookEvent.model_validate(payload)

    def _record(self, status: int, body: bytes, headers: dict[str, str]) -> int:
        with self._changed:
            self.attempts += 1
        if self.fail_with:
            return self.fail_with
        try:
            event = self.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            with self._changed:
                self.rejected.append(str(exc))
            if self.on_reject:
                self.on_reject(str(exc))
            return 401
        with self._changed:
            if isinstance(event, BatchWebhookEvent):
                self.batch_events.append(event)
            else:
                self.events.append(event)
            self._changed.notify_all()
        if self._on_event:
            self._on_event(event, headers)
        return status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, {"error": "body too large"})
                    return
                body = self.rfile.read(length)
                status = receiver._record(204, body, {k.lower(): v for k, v in self.headers.items()})
                self._answer(status, None if status == 204 else {"status": status})

            def _answer(self, status: int, payload: Any) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                if data:
                    self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the receiver's owner decides what to print."""

        return Handler

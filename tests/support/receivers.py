"""Webhook receivers for the tests that need more than ``segjob.webhooks.WebhookReceiver``
(which verifies with one secret): one that records raw deliveries to verify them with
several secrets afterwards, and a hostile one that trickles its answer."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def job_id(self) -> str:
        return str(json.loads(self.body)["data"]["jobId"])

    @property
    def signatures(self) -> list[str]:
        """The base64 signatures of the ``webhook-signature`` header."""
        return [part.split(",", 1)[1] for part in self.headers["webhook-signature"].split(" ")]

    def verifies_with(self, secret: str) -> bool:
        try:
            Webhook(secret).verify(self.body, self.headers)
        except WebhookVerificationError:
            return False
        return True


class RecordingReceiver:
    """Answers 204 to every POST and keeps it as it arrived (no verification)."""

    def __init__(self, path: str = "/hooks") -> None:
        self.path = path
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                delivery = Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._changed:
                    receiver.deliveries.append(delivery)
                    receiver._changed.notify_all()
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> RecordingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_for(self, job_id: str, event_type: str | None = None, timeout: float = 60.0) -> Delivery:
        """The first delivery of ``job_id`` (of ``event_type``, when given)."""

        def found() -> Delivery | None:
            for delivery in self.deliveries:
                event = json.loads(delivery.body)
                if event["data"]["jobId"] == job_id and event_type in (None, event["type"]):
                    return delivery
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError(f"no {event_type or 'webhook'} for {job_id} within {timeout} s")
            delivery = found()
            assert delivery is not None
            return delivery


@dataclass
class TrickledConnection:
    """One connection to the trickling receiver, as the receiver saw it."""

    accepted_at: float
    request_line: bytes = b""
    bytes_sent: int = 0
    closed_by_peer_at: float | None = None

    @property
    def held_seconds(self) -> float | None:
        return None if self.closed_by_peer_at is None else self.closed_by_peer_at - self.accepted_at


@dataclass
class TricklingReceiver:
    """Reads each request, starts its answer with a status line, then sends one header
    byte every ``interval`` seconds for ``hold`` seconds, never finishing the headers. A
    sender with only per-read timeouts stays until ``hold``; one with a deadline hangs up."""

    interval: float = 0.5
    hold: float = 120.0
    connections: list[TrickledConnection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}/hooks"

    def __enter__(self) -> TricklingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._server.close()

    def ended(self) -> list[TrickledConnection]:
        """Connections the sender has hung up on."""
        with self._lock:
            return [c for c in self.connections if c.closed_by_peer_at is not None]

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection = TrickledConnection(accepted_at=time.monotonic())
            with self._lock:
                self.connections.append(connection)
            threading.Thread(target=self._trickle, args=(conn, connection), daemon=True).start()

    def _trickle(self, conn: socket.socket, connection: TrickledConnection) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    connection.closed_by_peer_at = time.monotonic()
                    return
                data += chunk
            connection.request_line = data.split(b"\r\n", 1)[0]
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            until = connection.accepted_at + self.hold
            while time.monotonic() < until and not self._stopped.is_set():
                # a close by the sender makes the socket readable (EOF): notice it at once
                readable, _, _ = select.select([conn], [], [], self.interval)
                if readable and not _drain(conn):
                    connection.closed_by_peer_at = time.monotonic()
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    connection.closed_by_peer_at = time.monotonic()
                    return
                connection.bytes_sent += 1


def _drain(conn: socket.socket) -> bool:
    """Read what the peer sent (the request body's rest); False at EOF or reset."""
    try:
        return bool(conn.recv(65536))
    except OSError:
        return False

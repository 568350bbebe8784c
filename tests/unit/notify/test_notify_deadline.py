"""The delivery attempt's hard deadline: connect, TLS, send, status line and headers end
by the deadline whatever the receiver does; the body of the answer is never read.

Each hostile receiver here would hold a per-read timeout forever (it sends a byte before
every read timeout could fire). The assertions are not about speed: the attempt must not
end before its deadline, and it must end long before the receiver would have stopped on
its own (``HOLD_SECONDS``), which is what a per-read timeout would have waited for.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from segjob_core.errors import WebhookDeliveryFailed

DEADLINE = 1.0
HOLD_SECONDS = 30.0  # how long each hostile receiver would keep going if nobody hung up
# The receiver starts its clock when its accept() returns, after the sender started the
# deadline (before connecting): under load it may see a little less than the deadline.
ACCEPT_SLACK = 0.1
TRICKLE_INTERVAL = 0.05
LOOPBACK = [ipaddress.ip_address("127.0.0.1")]


@dataclass
class Connection:
    """What the receiver saw of one connection."""

    accepted_at: float = 0.0
    closed_by_peer_at: float | None = None
    bytes_sent: int = 0
    request: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def held_seconds(self) -> float:
        assert self.closed_by_peer_at is not None, "the sender never hung up"
        return self.closed_by_peer_at - self.accepted_at


Behaviour = Callable[[socket.socket, Connection], None]


@pytest.fixture
def raw_receiver() -> Iterator[Callable[[Behaviour], tuple[int, Connection]]]:
    """A TCP server on loopback running ``behaviour`` on its one connection."""
    sockets: list[socket.socket] = []

    def start(behaviour: Behaviour) -> tuple[int, Connection]:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)
        connection = Connection()

        def serve() -> None:
            conn, _ = server.accept()
            connection.accepted_at = time.monotonic()
            with conn:
                try:
                    behaviour(conn, connection)
                except OSError:  # the sender hung up: EPIPE / ECONNRESET
                    connection.closed_by_peer_at = time.monotonic()
            connection.done.set()

        threading.Thread(target=serve, daemon=True).start()
        return int(server.getsockname()[1]), connection

    yield start
    for server in sockets:
        server.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += conn.recv(4096)
    return head + b"\r\n\r\n" + rest


def trickle(conn: socket.socket, connection: Connection, first: bytes, byte: bytes = b"x") -> None:
    """Send ``first``, then one byte every TRICKLE_INTERVAL until HOLD_SECONDS or the peer hangs up."""
    conn.sendall(first)
    connection.bytes_sent += len(first)
    until = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < until:
        time.sleep(TRICKLE_INTERVAL)
        conn.sendall(byte)  # raises once the sender has closed the connection
        connection.bytes_sent += 1


def wait_hung_up(connection: Connection) -> Connection:
    assert connection.done.wait(HOLD_SECONDS + 5)
    return connection


def post(notify_fn, url: str, timeout: float = DEADLINE, ca_certs: str | None = None):
    sender = notify_fn.sender.PinnedHttpSender(ca_certs=ca_certs)
    return sender.post(url, LOOPBACK, {"webhook-id": "msg_1"}, b'{"type":"job.succeeded"}', timeout)


def test_trickled_headers_end_at_the_deadline(notify_fn, raw_receiver):
    # GIVEN a receiver that starts its answer, then sends one header byte every 50 ms
    def behaviour(conn: socket.socket, connection: Connection) -> None:
        connection.request = read_request(conn)
        trickle(conn, connection, b"HTTP/1.1 200 OK\r\nX-Slow: ")

    port, connection = raw_receiver(behaviour)

    # WHEN a webhook is posted with a 1 s deadline
    with pytest.raises(WebhookDeliveryFailed, match=r"no status line and headers within the 1 s deadline"):
        post(notify_fn, f"http://127.0.0.1:{port}/hook")

    # THEN the sender hung up at the deadline: not before it, and long before the receiver
    # stopped trickling (bytes kept arriving the whole time, so no per-read timeout fired)
    seen = wait_hung_up(connection)
    assert DEADLINE - ACCEPT_SLACK <= seen.held_seconds < HOLD_SECONDS / 2
    assert seen.bytes_sent > 5
    assert seen.request.startswith(b"POST /hook HTTP/1.1\r\n")


def test_receiver_that_never_answers_ends_at_the_deadline(notify_fn, raw_receiver):
    # GIVEN a receiver that accepts and reads the request but never answers
    def behaviour(conn: socket.socket, connection: Connection) -> None:
        connection.request = read_request(conn)
        conn.settimeout(HOLD_SECONDS)
        if conn.recv(1) == b"":  # returns at the sender's close
            connection.closed_by_peer_at = time.monotonic()

    port, connection = raw_receiver(behaviour)

    with pytest.raises(WebhookDeliveryFailed, match="deadline"):
        post(notify_fn, f"http://127.0.0.1:{port}/hook")

    assert DEADLINE - ACCEPT_SLACK <= wait_hung_up(connection).held_seconds < HOLD_SECONDS / 2


def test_endless_headers_are_cut_off_without_waiting_for_the_deadline(notify_fn, raw_receiver):
    # GIVEN a receiver that sends header lines as fast as it can, forever
    def behaviour(conn: socket.socket, connection: Connection) -> None:
        read_request(conn)
        trickle(conn, connection, b"HTTP/1.1 200 OK\r\n", b"X-Filler: " + b"a" * 4000 + b"\r\n")

    port, connection = raw_receiver(behaviour)

    with pytest.raises(WebhookDeliveryFailed, match=r"headers exceed 16384 bytes"):
        post(notify_fn, f"http://127.0.0.1:{port}/hook", timeout=HOLD_SECONDS)

    # the size limit ended the attempt, not the (long) deadline
    assert wait_hung_up(connection).held_seconds < HOLD_SECONDS / 2


def test_the_answer_body_is_not_read(notify_fn, raw_receiver):
    # GIVEN a receiver whose answer has complete headers, then a body trickled forever
    def behaviour(conn: socket.socket, connection: Connection) -> None:
        read_request(conn)
        trickle(conn, connection, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")

    port, connection = raw_receiver(behaviour)

    # WHEN it is posted to with a deadline far longer than the test
    response = post(notify_fn, f"http://127.0.0.1:{port}/hook", timeout=HOLD_SECONDS)

    # THEN the status counts, and the sender hung up without reading the body
    assert (response.status_code, response.ok) == (200, True)
    assert wait_hung_up(connection).held_seconds < HOLD_SECONDS / 2


def test_interim_100_continue_is_skipped(notify_fn, raw_receiver):
    def behaviour(conn: socket.socket, connection: Connection) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")

    port, _ = raw_receiver(behaviour)

    assert post(notify_fn, f"http://127.0.0.1:{port}/hook").status_code == 204


def test_not_http_is_a_failed_delivery(notify_fn, raw_receiver):
    def behaviour(conn: socket.socket, connection: Connection) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

    port, _ = raw_receiver(behaviour)

    with pytest.raises(WebhookDeliveryFailed, match=r"not an HTTP/1\.x status line"):
        post(notify_fn, f"http://127.0.0.1:{port}/hook")


def test_stalled_tls_handshake_ends_at_the_deadline(notify_fn, raw_receiver, self_signed):
    # GIVEN an https target whose server starts a TLS record of 16 KB and trickles it
    cert_path, _ = self_signed("localhost")

    def behaviour(conn: socket.socket, connection: Connection) -> None:
        trickle(conn, connection, b"\x16\x03\x03\x40\x00", b"\x00")  # handshake record header

    port, connection = raw_receiver(behaviour)

    with pytest.raises(WebhookDeliveryFailed, match="deadline"):
        post(notify_fn, f"https://localhost:{port}/hook", ca_certs=str(cert_path))

    assert DEADLINE - ACCEPT_SLACK <= wait_hung_up(connection).held_seconds < HOLD_SECONDS / 2


def test_receiver_that_never_accepts_ends_at_the_deadline(notify_fn):
    # GIVEN a listening socket whose accept queue is full and that never accepts: further
    # connection attempts get no answer to their SYN
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)

        started = time.monotonic()
        with pytest.raises(WebhookDeliveryFailed, match="deadline"):
            post(notify_fn, f"http://127.0.0.1:{port}/hook")
        assert DEADLINE <= time.monotonic() - started < HOLD_SECONDS / 2
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_tls_to_a_working_receiver_still_delivers(notify_fn, start_receiver, self_signed):
    cert_path, key_path = self_signed("localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    receiver = start_receiver(context)

    response = post(notify_fn, f"https://localhost:{receiver.port}/hook", ca_certs=str(cert_path))

    assert response.status_code == 204
    assert receiver.requests[0].headers["webhook-id"] == "msg_1"

"""One webhook POST with a hard deadline, to an address the SSRF guard approved.

The deadline covers the whole attempt: connecting (every address tried), the TLS
handshake, sending the request, and reading the status line and headers. Every socket
operation is non-blocking and waits at most for what is left of the deadline, so a
receiver that trickles bytes, accepts slowly or sends endless headers cannot hold an
attempt longer (per-operation timeouts, as urllib3 and http.client have, restart with
every byte that arrives). The body of the answer is never read.

The socket goes to the approved IP, so no second DNS lookup can be rebound to a private
address; the Host header, TLS SNI and the certificate check still use the URL's
hostname. Redirects are not followed and nothing is retried here: a 3xx is a failed
delivery, and retries belong to the state machine.

Standard library only (socket, ssl, selectors): no HTTP client offers a total deadline
without a thread or an event loop around it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from segjob_core.errors import WebhookDeliveryFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A host may resolve to many addresses; trying a few covers a dead one without letting
# one attempt fan out (they share one deadline anyway).
MAX_ADDRESSES_TRIED = 3
# Status line and headers of the answer; a receiver sending more is cut off here.
MAX_RESPONSE_HEAD_BYTES = 16 * 1024
READ_CHUNK = 4096
_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN)


@dataclass(frozen=True)
class DeliveryResponse:
    status_code: int
    elapsed_ms: float
    reason: str = ""  # the status line's reason phrase (for the log)

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class DeadlineExceeded(Exception):
    pass


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.at = self.started + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded
        return left


class PinnedHttpSender:
    """POSTs a webhook; the whole attempt ends by ``timeout`` seconds, whatever the receiver does."""

    def __init__(self, ca_certs: str | None = None) -> None:
        # None: the system trust store (tests pass their own CA)
        self._tls = ssl.create_default_context(cafile=ca_certs)

    def post(
        self,
        url: str,
        addresses: Iterable[IPAddress],
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> DeliveryResponse:
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("http", "https"):
            raise WebhookDeliveryFailed(f"cannot deliver to a {parts.scheme or 'scheme-less'} URL")
        hostname = parts.hostname.encode("idna").decode("ascii")  # Host, SNI and cert check
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{hostname}]" if ":" in hostname else hostname
        request = _request_bytes(
            target, {**headers, "Host": host if parts.port is None else f"{host}:{port}"}, body
        )
        candidates = sorted(addresses, key=lambda a: a.version)[:MAX_ADDRESSES_TRIED]  # IPv4 first
        if not candidates:
            raise WebhookDeliveryFailed(f"no address to deliver to for {hostname}")

        deadline = _Deadline(timeout)
        sock: socket.socket | None = None
        try:
            sock = _connect(candidates, port, deadline)
            if parts.scheme == "https":
                sock = self._tls.wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
                _handshake(sock, deadline)
            _send_all(sock, request, deadline)
            status, reason = _read_status(sock, deadline)
        except DeadlineExceeded as exc:
            what = "no connection" if sock is None else "no status line and headers"
            raise WebhookDeliveryFailed(
                f"webhook delivery to {hostname} failed: {what} within the {timeout:g} s deadline"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise WebhookDeliveryFailed(
                f"webhook delivery to {hostname} failed: certificate verify failed: {exc.verify_message}"
            ) from exc
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise WebhookDeliveryFailed(f"webhook delivery to {hostname} failed: {_describe(exc)}") from exc
        finally:
            if sock is not None:
                sock.close()
        return DeliveryResponse(status, (time.monotonic() - deadline.started) * 1000, reason)


def _request_bytes(target: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"POST {target} HTTP/1.1"]
    for name, value in {**headers, "Content-Length": str(len(body)), "Connection": "close"}.items():
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise WebhookDeliveryFailed(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _wait(sock: socket.socket, events: int, deadline: _Deadline) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, events)
        if not selector.select(deadline.remaining()):
            raise DeadlineExceeded


def _connect(candidates: list[IPAddress], port: int, deadline: _Deadline) -> socket.socket:
    """The first address that accepts a connection; a black-holed one leaves the others
    their share of the time."""
    failure: OSError | None = None
    for index, address in enumerate(candidates):
        share = deadline.remaining() / (len(candidates) - index)
        budget = _Deadline(share) if index < len(candidates) - 1 else deadline
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            code = sock.connect_ex((str(address), port))
            if code != 0 and code not in _IN_PROGRESS:
                raise OSError(code, f"connection to {address} failed: {os.strerror(code)}")
            if code:
                _wait(sock, selectors.EVENT_WRITE, budget)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, f"connection to {address} failed: {os.strerror(code)}")
            return sock
        except DeadlineExceeded:
            sock.close()
            if budget is deadline:
                raise
        except OSError as exc:
            sock.close()
            failure = exc
    deadline.remaining()  # the deadline, if it has passed, is the reason
    raise failure or OSError("no address accepted a connection")


def _handshake(sock: ssl.SSLSocket, deadline: _Deadline) -> None:
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            _wait(sock, selectors.EVENT_READ, deadline)
        except ssl.SSLWantWriteError:
            _wait(sock, selectors.EVENT_WRITE, deadline)


def _send_all(sock: socket.socket, data: bytes, deadline: _Deadline) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, ssl.SSLWantWriteError):
            _wait(sock, selectors.EVENT_WRITE, deadline)
        except ssl.SSLWantReadError:
            _wait(sock, selectors.EVENT_READ, deadline)


def _read_status(sock: socket.socket, deadline: _Deadline) -> tuple[int, str]:
    """The final status of the answer (interim 1xx answers skipped), from its status line
    and headers only."""
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_RESPONSE_HEAD_BYTES:
                raise ValueError(f"the answer's headers exceed {MAX_RESPONSE_HEAD_BYTES} bytes")
            try:
                chunk = sock.recv(READ_CHUNK)
            except (BlockingIOError, ssl.SSLWantReadError):
                _wait(sock, selectors.EVENT_READ, deadline)
                continue
            except ssl.SSLWantWriteError:
                _wait(sock, selectors.EVENT_WRITE, deadline)
                continue
            if not chunk:
                raise ConnectionError("the receiver closed the connection before answering")
            buffer += chunk
            continue
        status, reason = _status_line(buffer[:end].split(b"\r\n", 1)[0])
        if 100 <= status < 200 and status != 101:
            buffer = buffer[end + 4 :]  # 100 Continue and the like: the real answer follows
            continue
        return status, reason


def _status_line(line: bytes) -> tuple[int, str]:
    version, _, rest = line.decode("latin-1").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {line[:60]!r}")
    return int(code), reason.strip()[:100]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]

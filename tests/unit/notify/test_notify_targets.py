"""Where the notify function may connect: the SSRF guard runs before anything is signed or
sent, the connection goes to the address the guard approved (no second DNS lookup), and
TLS still verifies the URL's hostname."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from segjob_core.errors import WebhookDeliveryFailed, WebhookTargetRefused
from segjob_core.models import EventType, NotifyRequest

SIGNING_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes


class StaticSecret:
    def __init__(self, value: str = SIGNING_KEY) -> None:
        self._value = value
        self.reads = 0

    def active_secrets(self, owner: str) -> list[str]:
        self.reads += 1
        return [self._value]


class SpySender:
    """Records what would be sent; delegates to a real sender when given one."""

    def __init__(self, real: Any | None = None) -> None:
        self.real = real
        self.calls: list[dict[str, Any]] = []

    def post(self, url: str, addresses: Any, headers: Any, body: bytes, timeout: float) -> Any:
        self.calls.append({"url": url, "addresses": list(addresses), "headers": dict(headers)})
        if self.real is None:
            raise AssertionError("nothing may be sent to this target")
        return self.real.post(url, addresses, headers, body, timeout)


@pytest.fixture
def make_notifier(notify_fn) -> Callable[..., Any]:
    def make(
        *, allow_loopback: bool, sender: Any, secret: StaticSecret | None = None, timeout: float = 2
    ) -> Any:
        settings = notify_fn.settings.NotifySettings(
            WEBHOOK_MASTER_KEY_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:unit",
            WEBHOOK_SECRET_STATE_TABLE="unit-secret-state",
            JOBS_BUCKET="unit-bucket",
            ALLOW_LOOPBACK_WEBHOOKS=allow_loopback,
            WEBHOOK_TIMEOUT_SECONDS=timeout,
        )
        return notify_fn.logic.Notifier(
            settings=settings,
            secrets=secret or StaticSecret(),
            presign=lambda key: f"https://unit-bucket.s3.amazonaws.com/{key}?X-Amz-Signature=x",
            sender=sender,
        )

    return make


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fails the test if a socket connects from the test's own thread (a thread that an earlier
    test left behind, such as a server's, may still connect to loopback: not the notifier)."""
    attempts: list[Any] = []
    test_thread = threading.get_ident()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refusing(original: Callable[..., Any]) -> Callable[..., Any]:
        def refuse(sock: socket.socket, address: Any) -> Any:
            if threading.get_ident() != test_thread:
                return original(sock, address)
            attempts.append(address)
            raise AssertionError(f"connection attempted to {address}")

        return refuse

    monkeypatch.setattr(socket.socket, "connect", refusing(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", refusing(connect_ex))
    return attempts


def request_for(notify_event: Callable[..., dict[str, Any]], url: str) -> NotifyRequest:
    return NotifyRequest.model_validate(notify_event("notify_succeeded", url))


@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "192.168.1.1", "[fd00:ec2::254]"])
@pytest.mark.parametrize("scheme", ["https", "http"])
def test_private_and_metadata_targets_refused_even_in_local_mode(
    notify_fn, make_notifier, notify_event, no_connections, host, scheme
):
    sender = SpySender()
    secret = StaticSecret()
    notifier = make_notifier(allow_loopback=True, sender=sender, secret=secret)

    with pytest.raises(WebhookTargetRefused):
        notify_fn.logic.notify(request_for(notify_event, f"{scheme}://{host}/hook"), notifier)

    assert sender.calls == []
    assert no_connections == []
    assert secret.reads == 0  # refused before anything was signed


def test_http_refused_outside_local_mode(notify_fn, make_notifier, notify_event, no_connections):
    sender = SpySender()
    notifier = make_notifier(allow_loopback=False, sender=sender)

    with pytest.raises(WebhookTargetRefused, match="https"):
        notify_fn.logic.notify(request_for(notify_event, "http://hooks.example.com/hook"), notifier)

    assert sender.calls == []


def test_hostname_resolving_to_loopback_refused_outside_local_mode(
    notify_fn, make_notifier, notify_event, no_connections
):
    sender = SpySender()
    notifier = make_notifier(allow_loopback=False, sender=sender)

    with pytest.raises(WebhookTargetRefused, match="loopback"):
        notify_fn.logic.notify(request_for(notify_event, "https://localhost:8443/hook"), notifier)

    assert sender.calls == []


def test_connects_to_the_validated_address_not_a_rebound_one(
    notify_fn, make_notifier, notify_event, receiver, monkeypatch
):
    # GIVEN a hostname whose DNS answer changes after the first lookup (rebinding)
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.test":
            lookups.append(host)
            return real_getaddrinfo("127.0.0.1" if len(lookups) == 1 else "10.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    sender = SpySender(real=notify_fn.sender.PinnedHttpSender())
    notifier = make_notifier(allow_loopback=True, sender=sender)

    # WHEN the event is delivered
    outcome = notify_fn.logic.notify(
        request_for(notify_event, f"http://hooks.rebind.test:{receiver.port}/hook"), notifier
    )

    # THEN the name was resolved once, the approved address was used, the Host kept
    assert outcome.status_code == 204
    assert lookups == ["hooks.rebind.test"]
    assert sender.calls[0]["addresses"] == [ipaddress.ip_address("127.0.0.1")]
    assert receiver.requests[0].headers["host"] == f"hooks.rebind.test:{receiver.port}"


def test_falls_back_to_the_next_approved_address(notify_fn, receiver):
    # 127.0.0.2 is loopback too, but the receiver listens on 127.0.0.1 only: refused there.
    addresses = [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")]
    sender = notify_fn.sender.PinnedHttpSender()

    response = sender.post(f"http://hooks.example.test:{receiver.port}/hook", addresses, {}, b"{}", timeout=2)

    assert response.status_code == 204
    assert receiver.requests[0].headers["host"] == f"hooks.example.test:{receiver.port}"


def test_non_2xx_answer_keeps_its_reason_phrase_for_the_log(notify_fn, receiver):
    receiver.status = 503
    sender = notify_fn.sender.PinnedHttpSender()

    response = sender.post(receiver.url, [ipaddress.ip_address("127.0.0.1")], {}, b"{}", timeout=2)

    assert (response.status_code, response.ok, response.reason) == (503, False, "Service Unavailable")


# TLS to a pinned address ---------------------------------------------------------------


def tls_server_context(cert_path: Path, key_path: Path, sni_seen: list[str | None]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, server_name, ctx: sni_seen.append(server_name)  # type: ignore[assignment]
    return context


def test_https_to_pinned_address_keeps_sni_and_hostname_check(
    notify_fn, make_notifier, notify_event, start_receiver, self_signed
):
    # GIVEN an https receiver on loopback with a certificate for "localhost"
    cert_path, key_path = self_signed("localhost")
    sni_seen: list[str | None] = []
    receiver = start_receiver(tls_server_context(cert_path, key_path, sni_seen))
    sender = SpySender(real=notify_fn.sender.PinnedHttpSender(ca_certs=str(cert_path)))
    notifier = make_notifier(allow_loopback=True, sender=sender)

    # WHEN the event goes to https://localhost (connection pinned to 127.0.0.1)
    outcome = notify_fn.logic.notify(
        request_for(notify_event, f"https://localhost:{receiver.port}/hook"), notifier
    )

    # THEN TLS verified the hostname, SNI named it, and the signature checks out
    assert outcome.status_code == 204
    assert sni_seen == ["localhost"]
    request = receiver.requests[0]
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert Webhook(SIGNING_KEY).verify(request.body, request.headers)["type"] == "job.succeeded"


def test_https_certificate_for_another_name_fails(
    notify_fn, make_notifier, notify_event, start_receiver, self_signed
):
    cert_path, key_path = self_signed("other.example")
    receiver = start_receiver(tls_server_context(cert_path, key_path, []))
    sender = notify_fn.sender.PinnedHttpSender(ca_certs=str(cert_path))
    notifier = make_notifier(allow_loopback=True, sender=sender)

    with pytest.raises(WebhookDeliveryFailed, match=r"(?i)certificate|hostname"):
        notify_fn.logic.notify(request_for(notify_event, f"https://localhost:{receiver.port}/hook"), notifier)

    assert receiver.requests == []


def test_untrusted_certificate_fails(notify_fn, make_notifier, notify_event, start_receiver, self_signed):
    cert_path, key_path = self_signed("localhost")
    receiver = start_receiver(tls_server_context(cert_path, key_path, []))
    notifier = make_notifier(allow_loopback=True, sender=notify_fn.sender.PinnedHttpSender())

    with pytest.raises(WebhookDeliveryFailed, match=r"(?i)certificate"):
        notify_fn.logic.notify(request_for(notify_event, f"https://localhost:{receiver.port}/hook"), notifier)

    assert receiver.requests == []


# Pure pieces ---------------------------------------------------------------------------


def test_webhook_id_per_job_and_event(notify_fn):
    webhook_id = notify_fn.logic.webhook_id
    assert webhook_id("job_abc", EventType.SUCCEEDED) == "msg_job_abc_succeeded"
    assert webhook_id("job_abc", EventType.FAILED) == "msg_job_abc_failed"
    assert webhook_id("job_abc", EventType.CANCELED) == "msg_job_abc_canceled"

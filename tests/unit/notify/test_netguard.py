"""segjob_core.netguard: which webhook targets are allowed, after DNS resolution."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from segjob_core.errors import WebhookTargetRefused
from segjob_core.netguard import check_webhook_url


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Fake DNS for names under .test (IP literals and localhost resolve as usual)."""
    records: dict[str, list[str]] = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            if host not in records:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in records[host]
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return records


def test_public_https_target_returns_its_addresses(dns):
    dns["hooks.example.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    addresses = check_webhook_url("https://hooks.example.test/segjob?tenant=acme")

    assert set(addresses) == {
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"),
    }


def test_public_ip_literal_allowed():
    assert check_webhook_url("https://93.184.216.34:8443/hook") == [ipaddress.ip_address("93.184.216.34")]


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
        "file:///etc/passwd",
        "gopher://93.184.216.34:25/",
        "93.184.216.34/hook",
    ],
)
def test_only_https_outside_local_mode(url):
    with pytest.raises(WebhookTargetRefused, match="https"):
        check_webhook_url(url)


def test_http_allowed_in_local_mode():
    assert check_webhook_url("http://127.0.0.1:9000/hook", allow_loopback=True) == [
        ipaddress.ip_address("127.0.0.1")
    ]


@pytest.mark.parametrize("url", ["https:///hook", "https://:443/hook"])
def test_url_without_host_refused(url):
    with pytest.raises(WebhookTargetRefused, match="no host"):
        check_webhook_url(url)


def test_credentials_in_url_refused():
    with pytest.raises(WebhookTargetRefused, match="credentials"):
        check_webhook_url("https://user:pass@93.184.216.34/hook")


@pytest.mark.parametrize("url", ["https://127.0.0.1/hook", "https://[::1]/hook", "https://localhost/hook"])
def test_loopback_refused_unless_allowed(url):
    with pytest.raises(WebhookTargetRefused, match="loopback"):
        check_webhook_url(url)
    assert all(address.is_loopback for address in check_webhook_url(url, allow_loopback=True))


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("169.254.10.10", "link-local"),
        ("[fe80::1]", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("[fd12:3456::1]", "private"),
        ("0.0.0.0", "private"),
        ("224.0.0.1", "private"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "not a public address"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[::ffff:169.254.169.254]", "metadata"),
        ("[64:ff9b::a00:1]", "private"),  # NAT64 of 10.0.0.1
        ("[2002:a9fe:a9fe::1]", "metadata"),  # 6to4 of 169.254.169.254
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_non_public_addresses_refused_in_every_mode(host, reason, allow_loopback):
    with pytest.raises(WebhookTargetRefused, match=reason):
        check_webhook_url(f"https://{host}/hook", allow_loopback=allow_loopback)


def test_any_non_public_answer_refuses_the_host(dns):
    # One public and one private record: a client could be steered to either.
    dns["mixed.example.test"] = ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(WebhookTargetRefused, match=r"10\.1\.2\.3"):
        check_webhook_url("https://mixed.example.test/hook")


def test_hostname_resolving_to_metadata_refused_in_local_mode(dns):
    dns["evil.example.test"] = ["169.254.169.254"]

    with pytest.raises(WebhookTargetRefused, match="metadata"):
        check_webhook_url("https://evil.example.test/hook", allow_loopback=True)


def test_unresolvable_host_refused(dns):
    with pytest.raises(WebhookTargetRefused, match="does not resolve"):
        check_webhook_url("https://nowhere.example.test/hook")


def test_without_resolution_only_the_url_is_checked(dns):
    assert check_webhook_url("https://nowhere.example.test/hook", resolve=False) == []
    with pytest.raises(WebhookTargetRefused):
        check_webhook_url("http://nowhere.example.test/hook", resolve=False)

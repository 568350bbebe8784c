"""Webhook target checks (SSRF guard): only https URLs whose every resolved address is
public. Local mode may allow http and loopback explicitly, nothing else."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from .errors import WebhookTargetRefused

# Instance metadata endpoints (AWS IPv4/IPv6, ECS task metadata) are refused in every mode.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refusal(address: IPAddress, allow_loopback: bool) -> str | None:
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _refusal(embedded, allow_loopback)
    if address in METADATA_ADDRESSES:
        return "an instance metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_multicast or address.is_unspecified:
        return "a private or reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def check_webhook_url(url: str, *, allow_loopback: bool = False, resolve: bool = True) -> list[IPAddress]:
    """Validate ``url`` and return the addresses it resolves to (all of them allowed).

    With ``allow_loopback`` (local mode) http is accepted and loopback targets are allowed;
    private, link-local and metadata addresses are refused in every mode. Messages name the
    host at most, never the path or query (which may hold a token): they reach logs and traces.
    """
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise WebhookTargetRefused("webhookUrl must not contain spaces or control characters")
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if allow_loopback else {"https"}
    if parts.scheme not in allowed_schemes:
        shown = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise WebhookTargetRefused(f"webhookUrl must use {' or '.join(sorted(allowed_schemes))}, not {shown}")
    if not parts.hostname:
        raise WebhookTargetRefused("webhookUrl has no host")
    if parts.username or parts.password:
        raise WebhookTargetRefused("webhookUrl must not carry credentials")
    if not resolve:
        return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookTargetRefused(f"webhookUrl host {parts.hostname!r} does not resolve") from exc
    addresses = sorted({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}, key=str)
    for address in addresses:
        reason = _refusal(address, allow_loopback)
        if reason:
            raise WebhookTargetRefused(f"webhookUrl host {parts.hostname!r} resolves to {reason} ({address})")
    return addresses

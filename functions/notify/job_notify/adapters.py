"""The notify function's outside world: Secrets Manager, S3 presigning, the webhook receiver.

Only this module calls boto3 or opens connections; the logic module gets these adapters
as plain objects so tests can swap or spy on them.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import urllib3

from segjob_core.errors import WebhookDeliveryFailed
from segjob_core.s3 import presign_config

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# A receiver's answer is only logged when it is not 2xx; never read more than this of it.
MAX_RESPONSE_BYTES = 512
# A host may resolve to many addresses; trying a few covers a dead one without letting
# one attempt fan out (they share one timeout budget anyway).
MAX_ADDRESSES_TRIED = 3


class SecretsManagerSecret:
    """One secret's SecretString, read on first use and kept for the container's life.

    Rotation therefore reaches a warm container only when it is recycled; the value is
    never logged nor shown by ``repr``.
    """

    def __init__(self, secret_id: str, client: Any | None = None) -> None:
        self._secret_id = secret_id
        self.client = client if client is not None else boto3.client("secretsmanager")
        self._value: str | None = None
        self._lock = threading.Lock()

    def value(self) -> str:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self.client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._secret_id!r})"


class S3Presigner:
    """Presigned GET URLs for objects of the jobs bucket (SigV4, fixed lifetime)."""

    def __init__(self, bucket: str, expires_in: int, client: Any | None = None) -> None:
        self._bucket = bucket
        self._expires_in = expires_in
        self.client = client if client is not None else boto3.client("s3", config=presign_config())

    def presign_get(self, key: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._expires_in
        )
        return url


@dataclass(frozen=True)
class DeliveryResponse:
    status_code: int
    elapsed_ms: float
    body_excerpt: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class PinnedHttpSender:
    """POSTs a webhook over a connection to an address the SSRF guard already approved.

    The socket goes to that IP, so no second DNS lookup can be rebound to a private
    address; the Host header, TLS SNI and the certificate check still use the URL's
    hostname. Redirects are not followed and nothing is retried here: a 3xx is a failed
    delivery, and retries belong to the state machine.
    """

    def __init__(self, ca_certs: str | None = None) -> None:
        self._ca_certs = ca_certs  # None: the system trust store (tests pass their own CA)

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
        request_headers = {**headers, "Host": host if parts.port is None else f"{host}:{port}"}
        candidates = sorted(addresses, key=lambda a: a.version)[:MAX_ADDRESSES_TRIED]  # IPv4 first
        if not candidates:
            raise WebhookDeliveryFailed(f"no address to deliver to for {hostname}")

        started = time.monotonic()
        deadline = started + timeout
        failure: Exception | None = None
        for index, address in enumerate(candidates):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # A black-holed address must leave the others some time to connect.
            budget = urllib3.Timeout(connect=remaining / (len(candidates) - index), total=remaining)
            pool = self._pool(parts.scheme, address, port, hostname, budget)
            try:
                response = pool.urlopen(
                    "POST",
                    target,
                    body=body,
                    headers=request_headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                )
                elapsed_ms = (time.monotonic() - started) * 1000
                excerpt = "" if 200 <= response.status < 300 else _excerpt(response)
                response.close()
                return DeliveryResponse(response.status, elapsed_ms, excerpt)
            except urllib3.exceptions.ConnectTimeoutError as exc:  # includes NewConnectionError
                failure = exc  # no connection made: the next address may work
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise WebhookDeliveryFailed(
                    f"webhook delivery to {hostname} failed: {_describe(exc, timeout)}"
                ) from exc
            finally:
                pool.close()
        if failure is None:
            raise WebhookDeliveryFailed(f"webhook delivery to {hostname} failed: no time left of {timeout} s")
        raise WebhookDeliveryFailed(
            f"webhook delivery to {hostname} failed: {_describe(failure, timeout)}"
        ) from failure

    def _pool(
        self, scheme: str, address: IPAddress, port: int, hostname: str, timeout: urllib3.Timeout
    ) -> urllib3.HTTPConnectionPool:
        options: dict[str, Any] = {
            "host": str(address),
            "port": port,
            "timeout": timeout,
            "maxsize": 1,
            "retries": False,
        }
        if scheme == "https":
            return urllib3.HTTPSConnectionPool(
                **options,
                server_hostname=hostname,
                assert_hostname=hostname,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
            )
        return urllib3.HTTPConnectionPool(**options)


def _excerpt(response: urllib3.BaseHTTPResponse) -> str:
    """The start of a non-2xx answer, for the log; never more than MAX_RESPONSE_BYTES."""
    try:
        return response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
    except (urllib3.exceptions.HTTPError, OSError):
        return ""


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"no response within {timeout} s"
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    ):
        return f"could not connect within {timeout} s"
    return f"{type(exc).__name__}: {exc}"[:300]

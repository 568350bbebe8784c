"""Fixtures of the notify function's unit tests.

Every function folder has its own ``app.py``; this one is loaded from its file under a
name of its own (as Lambda loads ``app.lambda_handler``), the ``job_notify`` package is
imported as usual.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

REPO = Path(__file__).resolve().parents[3]
FUNCTION_DIR = REPO / "functions" / "notify"
EVENTS_DIR = REPO / "tests" / "events"

BUCKET = "segjob-jobs-unit"
MASTER_KEY_NAME = "segjob/webhook-master-key"
STATE_TABLE = "segjob-webhook-secret-state-unit"
OWNER = "arn:aws:iam::123456789012:user/alice"  # the owner of the jobs in tests/events

# Powertools reads its own config when the handler module is imported (the template's
# Globals set it in AWS); without a namespace, flushing metrics fails schema validation.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SegJobTests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
if str(FUNCTION_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTION_DIR))

from job_notify import adapters, logic, sender, settings  # noqa: E402 - needs FUNCTION_DIR on sys.path
from local.template import Stack  # noqa: E402
from segjob_core.signing import derive_secret  # noqa: E402


def _load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notify_app", FUNCTION_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOTIFY = SimpleNamespace(app=_load_app(), logic=logic, adapters=adapters, sender=sender, settings=settings)


@pytest.fixture
def notify_fn() -> SimpleNamespace:
    """The function's modules: ``.app`` (the Lambda handler), ``.logic``, ``.adapters``,
    ``.sender``, ``.settings``."""
    return NOTIFY


@pytest.fixture(autouse=True)
def _fresh_container() -> Iterator[None]:
    """Each test starts as a cold container (settings, clients and secret not cached)."""
    NOTIFY.logic.get_notifier.cache_clear()
    yield
    NOTIFY.logic.get_notifier.cache_clear()


@pytest.fixture
def lambda_context() -> Any:
    @dataclass
    class Context:
        function_name: str = "NotifyFunction"
        function_version: str = "$LATEST"
        memory_limit_in_mb: int = 256
        invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:NotifyFunction"
        aws_request_id: str = "5b0e5c41-0000-4000-8000-000000000001"

    return Context()


@pytest.fixture
def notify_event() -> Callable[..., dict[str, Any]]:
    """Loads a NotifyRequest from tests/events, optionally pointed at another receiver."""

    def load(name: str, webhook_url: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
        if webhook_url is not None:
            event["item"]["webhookUrl"] = {"S": webhook_url}
        return event

    return load


@pytest.fixture
def master_key() -> str:
    """The master key's SecretString, as Secrets Manager generates it (64 characters)."""
    return secrets.token_urlsafe(48)


@pytest.fixture
def signing_key(master_key: str) -> str:
    """The whsec_ secret of the test jobs' owner (generation 1: never rotated)."""
    return derive_secret(master_key.encode(), OWNER, 1)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, master_key: str) -> Iterator[SimpleNamespace]:
    """moto in-process with the jobs bucket, the master key and the secret state table
    (its key schema from template.yaml)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        master_key_arn = boto3.client("secretsmanager").create_secret(
            Name=MASTER_KEY_NAME, SecretString=master_key
        )["ARN"]
        table = Stack(REPO / "template.yaml").resources["WebhookSecretStateTable"]["Properties"]
        boto3.client("dynamodb").create_table(
            TableName=STATE_TABLE,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        yield SimpleNamespace(
            s3=s3,
            master_key_arn=master_key_arn,
            bucket=BUCKET,
            state_table=boto3.resource("dynamodb").Table(STATE_TABLE),
        )


@pytest.fixture
def notify_env(monkeypatch: pytest.MonkeyPatch, aws: SimpleNamespace) -> dict[str, str]:
    """The function's environment in local mode (loopback receivers allowed)."""
    env = {
        "WEBHOOK_MASTER_KEY_ARN": aws.master_key_arn,
        "WEBHOOK_SECRET_STATE_TABLE": STATE_TABLE,
        "JOBS_BUCKET": aws.bucket,
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        "ALLOW_LOOPBACK_WEBHOOKS": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RESULT_URL_TTL", raising=False)
    return env


# A real HTTP receiver on loopback ------------------------------------------------------


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Receiver:
    """What the local receiver answers, and what it got."""

    url: str
    port: int
    status: int = 204
    delay: float = 0.0
    response_headers: dict[str, str] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    """Starts ThreadingHTTPServers on 127.0.0.1 (TLS with ``ssl_context``), stopped after the test."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(ssl_context: ssl.SSLContext | None = None) -> Receiver:
        holder: list[Receiver] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver = holder[0]
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status)
                    for name, value in receiver.response_headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        if ssl_context is not None:
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        port = int(server.server_address[1])
        scheme = "https" if ssl_context else "http"
        holder.append(Receiver(url=f"{scheme}://127.0.0.1:{port}/hooks/segjob?tenant=acme", port=port))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return holder[0]

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver]) -> Receiver:
    return start_receiver()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def self_signed(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """Makes a self-signed certificate (and key) for a hostname: (cert path, key path)."""

    def make(name: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    return make

"""Session fixtures shared by tests/integration and tests/e2e: one local mode per session.

Unit tests never ask for ``runtime``, so ``pytest tests/unit`` starts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.runtime import LocalRuntime
from segjob import Client
from segjob.webhooks import WebhookReceiver

BATCH_SOURCE_BUCKET = "segjob-test-batch-sources"


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """The stack of template.yaml running locally (moto server, functions, HTTP API).

    Logs go to ``$LOCAL_STATE_DIR/logs`` if set, else to a session temp folder (its path
    is in the ``runtime.log_dir`` of a failing test's locals).
    """
    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or tmp_path_factory.mktemp("local-state"))
    # A small upload limit keeps the over-the-limit test quick (the default is 50 MB). The
    # batch tests create the source bucket this names (a bucket of the caller's images).
    overrides = {"MaxUploadBytes": str(2 * 1024 * 1024), "BatchSourceBuckets": BATCH_SOURCE_BUCKET}
    with LocalRuntime(state_dir=state_dir, parameter_overrides=overrides) as started:
        yield started


@pytest.fixture(scope="module")
def client(runtime: LocalRuntime) -> Client:
    """The client of local mode's default caller (unsigned requests, as the CLI sends them)."""
    return Client(runtime.api_url)


@pytest.fixture(scope="module")
def receiver(runtime: LocalRuntime) -> Iterator[WebhookReceiver]:
    """A verifying webhook receiver on loopback, with the stack's signing secret."""
    with WebhookReceiver(secret=runtime.webhook_secret) as hook:
        yield hook

"""SegmentFunction's real handler behind a gate, for tests that must act while a job is
RUNNING but before the function reads its input: the handler waits until the file named
by ``SEGMENT_GATE_FILE`` exists (at most ``SEGMENT_GATE_TIMEOUT`` seconds), then runs the
real ``app.lambda_handler``. Standard library only: it runs in the function's worker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import app  # SegmentFunction's entry point (its code dir is on the worker's path)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    gate = Path(os.environ["SEGMENT_GATE_FILE"])
    deadline = time.monotonic() + float(os.environ.get("SEGMENT_GATE_TIMEOUT", "60"))
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return app.lambda_handler(event, context)

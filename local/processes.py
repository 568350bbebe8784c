"""Child processes of local mode: readiness over a pipe, and stopping a process group."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from contextlib import suppress
from typing import Any


def read_ready(read_fd: int, timeout: float) -> dict[str, Any]:
    """The first JSON line a child writes on its ready pipe ({} if none within ``timeout``).

    Closes ``read_fd``. An empty result means the child exited or hung before reporting.
    """
    deadline = time.monotonic() + timeout
    buffer = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            readable, _, _ = select.select([pipe], [], [], min(remaining, 1.0))
            if readable:
                chunk = pipe.read(4096)
                if not chunk:
                    break
                buffer += chunk
    line = buffer.split(b"\n", 1)[0].strip()
    return json.loads(line) if line else {}


def stop_process_group(process: subprocess.Popen[bytes] | None, grace: float = 2.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds, reap it."""
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        if grace > 0:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                pass
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)

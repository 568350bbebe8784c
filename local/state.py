"""The state directory of one local-mode instance: its lock, its endpoints.json, its logs.

One instance owns a state directory at a time: ``StateDir.acquire`` takes an exclusive
``flock`` on ``<dir>/lock`` (released by the kernel when the process ends, however it
ends) and writes the owner's pid into it. Only the owner writes ``endpoints.json``
(atomically, once everything is up) and removes it when it stops, so other commands
(`make demo`, the tests, a second `local up`) never replace it, and it never names a
stopped instance (except after a SIGKILL, which ``read_endpoints`` then ignores: the lock
is free).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any

LOCK_FILE = "lock"
ENDPOINTS_FILE = "endpoints.json"


class StateDirInUse(RuntimeError):
    """Another live instance owns the state directory."""

    def __init__(self, path: Path, pid: int | None, api_url: str | None) -> None:
        owner = f"pid {pid}" if pid else "another process"
        where = f", API {api_url}" if api_url else ""
        super().__init__(
            f"local mode already runs with state dir {path} ({owner}{where}); stop it first "
            "(python -m local down / make local-down), or start another instance with its own "
            "--state-dir DIR and --api-port 0"
        )
        self.path = path
        self.pid = pid


class StateDir:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).resolve()
        self._lock: IO[str] | None = None

    @property
    def endpoints_path(self) -> Path:
        return self.path / ENDPOINTS_FILE

    @property
    def owned(self) -> bool:
        return self._lock is not None

    def acquire(self) -> StateDir:
        """Own the directory (StateDirInUse if a live instance does) and clear what a
        crashed previous owner left behind."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = (self.path / LOCK_FILE).open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise StateDirInUse(self.path, self.owner_pid(), _api_url(self._read_json())) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        self.endpoints_path.unlink(missing_ok=True)  # a crashed owner's: its URLs are dead
        return self

    def release(self) -> None:
        """Remove endpoints.json and give up the lock (only the owner does anything)."""
        if self._lock is None:
            return
        self.endpoints_path.unlink(missing_ok=True)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
        self._lock = None

    def write_endpoints(self, endpoints: dict[str, Any]) -> Path:
        if self._lock is None:
            raise RuntimeError(f"{self.path} is not owned by this process")
        partial = self.path / f".{ENDPOINTS_FILE}.{os.getpid()}"
        partial.write_text(json.dumps(endpoints, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.endpoints_path)  # readers see the whole file or none
        return self.endpoints_path

    def owner_pid(self) -> int | None:
        """The pid of the live owner, None if no process holds the lock."""
        if not (self.path / LOCK_FILE).exists():
            return None
        with (self.path / LOCK_FILE).open("r", encoding="utf-8") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = lock.read().strip()
                return int(text) if text.isdigit() else None
            fcntl.flock(lock, fcntl.LOCK_UN)
            return None

    def read_endpoints(self) -> dict[str, Any] | None:
        """The endpoints of the live instance that owns this directory, if it is up."""
        pid = self.owner_pid()
        endpoints = self._read_json()
        if pid is None or not endpoints or endpoints.get("pid") != pid:
            return None
        return endpoints

    def _read_json(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.endpoints_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        return None


def _api_url(endpoints: dict[str, Any] | None) -> str | None:
    return str(endpoints["api_url"]) if endpoints and endpoints.get("api_url") else None

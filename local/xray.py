"""A local X-Ray daemon: the UDP endpoint the X-Ray SDK sends segment documents to
(``AWS_XRAY_DAEMON_ADDRESS``). Nothing is forwarded anywhere: each document is kept and
appended to ``<state dir>/xray/segments.jsonl``, so tests can read what a deployed stack
would put into X-Ray.

The SDK's datagram is a header line ``{"format": "json", "version": 1}`` followed by one
segment or subsegment document.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

MAX_DATAGRAM = 65535


class XRayDaemon:
    def __init__(self, out_path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.out_path = out_path
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, port))
        self._socket.settimeout(0.2)
        self._documents: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="xray-daemon", daemon=True)

    @property
    def address(self) -> str:
        """The value of AWS_XRAY_DAEMON_ADDRESS."""
        host, port = self._socket.getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> XRayDaemon:
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._socket.close()

    def documents(self) -> list[dict[str, Any]]:
        """Every segment document received so far, in arrival order."""
        with self._lock:
            return list(self._documents)

    def _serve(self) -> None:
        with self.out_path.open("a", encoding="utf-8") as out:
            while not self._stopped.is_set():
                try:
                    datagram = self._socket.recv(MAX_DATAGRAM)
                except TimeoutError:
                    continue
                except OSError:
                    return
                document = _document(datagram)
                if document is None:
                    LOG.warning("x-ray daemon: not a segment document: %.80r", datagram)
                    continue
                with self._lock:
                    self._documents.append(document)
                out.write(json.dumps(document) + "\n")
                out.flush()


def _document(datagram: bytes) -> dict[str, Any] | None:
    header, _, body = datagram.partition(b"\n")
    try:
        if json.loads(header).get("format") != "json":
            return None
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None

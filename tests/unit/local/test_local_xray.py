"""The local X-Ray daemon: segment documents sent the way the X-Ray SDK sends them."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from local.xray import XRayDaemon
from tests.support.local_mode import wait_for

HEADER = b'{"format": "json", "version": 1}\n'


def test_documents_are_kept_and_written_as_json_lines(tmp_path: Path) -> None:
    daemon = XRayDaemon(tmp_path / "xray" / "segments.jsonl").start()
    host, port = daemon.address.split(":")
    documents = [{"name": "## lambda_handler", "id": "a"}, {"name": "dynamodb", "id": "b"}]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for document in documents:
                sender.sendto(HEADER + json.dumps(document).encode(), (host, int(port)))
            sender.sendto(b"not a segment", (host, int(port)))  # ignored, with a warning
        received = wait_for(lambda: len(daemon.documents()) == 2 and daemon.documents(), timeout=5)
    finally:
        daemon.stop()

    assert received == documents
    lines = (tmp_path / "xray" / "segments.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == documents

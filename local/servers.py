"""The HTTP servers of local mode (the HTTP API, the Lambda endpoint): threaded, with a
listen backlog deep enough for bursts.

``socketserver`` listens with a backlog of 5: a burst of 50 concurrent requests got
connection resets. The kernel caps the backlog at ``net.core.somaxconn`` (4096 here).
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer

LISTEN_BACKLOG = 1024


class BurstHTTPServer(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

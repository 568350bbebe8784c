"""The moto server process of local mode: moto's server app behind ``LocalAwsMiddleware``,
served by werkzeug on a free loopback port.

It runs in its own process so that moto's global state (and ``mock_aws`` in unit tests of
the process that started local mode) cannot touch each other, and it sets ``MOTO_PORT``
for its own Step Functions interpreter, whose service tasks call ``localhost:$MOTO_PORT``.
Started by ``local.runtime``; reports ``{"port": N}`` on the file descriptor given as
``--ready-fd`` and exits with its parent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

from .servers import LISTEN_BACKLOG


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lambda-endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The secret keys whose presigned POST signatures are accepted, by access key id.
    credentials = json.loads(os.environ.pop("LOCAL_POST_CREDENTIALS", "{}"))

    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - after logging is set up
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import BaseWSGIServer, make_server  # noqa: PLC0415

    from . import moto_patches  # noqa: PLC0415
    from .middleware import LocalAwsMiddleware  # noqa: PLC0415

    moto_patches.apply()
    # Bursts of uploads and Step Functions service calls must queue, not be reset (werkzeug: 128).
    BaseWSGIServer.request_queue_size = LISTEN_BACKLOG

    app = LocalAwsMiddleware(
        DomainDispatcherApplication(create_backend_app),
        lambda_endpoint=args.lambda_endpoint,
        credentials=credentials,
        region=args.region,
    )
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    os.environ["MOTO_PORT"] = str(server.server_port)

    def shutdown(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    _exit_with_parent()
    threading.Thread(target=_prewarm, name="prewarm", daemon=True).start()
    with os.fdopen(args.ready_fd, "w") as ready:
        ready.write(json.dumps({"port": server.server_port}) + "\n")
    server.serve_forever()


def _prewarm() -> None:
    """Import the Step Functions interpreter now (~3 s), while the runtime creates the
    other resources, instead of on the first CreateStateMachine."""
    import moto.stepfunctions.parser.models  # noqa: F401, PLC0415


def _exit_with_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    main()

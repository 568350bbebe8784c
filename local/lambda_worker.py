"""One warm Lambda execution environment: imports the handler once (init, like Lambda),
then serves one invocation at a time over HTTP on loopback.

Run by path (not ``-m``) with a clean environment prepared by ``local.lambda_runtime``, so
the function sees only its own code, its layers and its template env vars. Standard
library only. Protocol with the parent:

- readiness: one JSON line on the file descriptor ``LOCAL_LAMBDA_READY_FD``:
  ``{"port": N}`` after a successful init, or ``{"initError": {...}}`` (then it exits);
- ``POST /invoke`` with the payload as body and the headers ``Lambda-Request-Id``,
  ``Lambda-Deadline-Ms`` (epoch ms), ``Lambda-Invoked-Function-Arn``; the answer is the
  result JSON, with the header ``Lambda-Function-Error: Unhandled`` for an error.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

# Running by path puts this folder first on sys.path: the function must not see it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]


class LambdaContext:
    """The context object of the Python runtime (awslambdaric's attributes)."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(message)


def error_payload(
    exc: BaseException, error_type: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
    }
    if request_id:
        payload["requestId"] = request_id
    payload["stackTrace"] = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
    return payload


def _decimal_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def load_handler(handler: str):
    """Import ``module.function`` like the Python runtime, with its error types."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise _InitError(
            f"Bad handler '{handler}': not enough values to unpack", "Runtime.MalformedHandlerName"
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError(
            f"Unable to import module '{module_name}': {exc}", "Runtime.ImportModuleError"
        ) from exc
    except SyntaxError as exc:
        raise _InitError(
            f"Syntax error in module '{module_name}': {exc}", "Runtime.UserCodeSyntaxError"
        ) from exc
    function = getattr(module, function_name, None)
    if function is None:
        raise _InitError(
            f"Handler '{function_name}' missing on module '{module_name}'", "Runtime.HandlerNotFound"
        )
    return function


class _InitError(Exception):
    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout,
        format="[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    logging.Formatter.converter = time.gmtime
    ready = os.fdopen(int(os.environ.pop("LOCAL_LAMBDA_READY_FD")), "w")
    _exit_with_parent()
    started = time.monotonic()
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        report = {"initError": error_payload(exc, exc.error_type)}
        report["initError"]["stackTrace"] = []
        print(json.dumps(report["initError"]), flush=True)
        ready.write(json.dumps(report) + "\n")
        ready.close()
        sys.exit(1)
    except Exception as exc:
        report = {"initError": error_payload(exc)}
        traceback.print_exc()
        ready.write(json.dumps(report) + "\n")
        ready.close()
        sys.exit(1)
    init_ms = (time.monotonic() - started) * 1000

    server = HTTPServer(("127.0.0.1", 0), _handler_class(handler, init_ms))
    ready.write(json.dumps({"port": server.server_address[1], "initMs": init_ms}) + "\n")
    ready.close()
    server.serve_forever()


def _handler_class(handler, init_ms: float) -> type[BaseHTTPRequestHandler]:
    state = {"init_ms": init_ms}

    class InvokeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request_id = self.headers["Lambda-Request-Id"]
            context = LambdaContext(
                request_id,
                int(self.headers["Lambda-Deadline-Ms"]),
                self.headers["Lambda-Invoked-Function-Arn"],
            )
            version = context.function_version
            # As the Python runtime does: the X-Ray SDK reads the invocation's trace header here.
            trace_id = self.headers.get("Lambda-Runtime-Trace-Id")
            if trace_id:
                os.environ["_X_AMZN_TRACE_ID"] = trace_id
            else:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
            print(f"START RequestId: {request_id} Version: {version}", flush=True)
            started = time.monotonic()
            function_error = None
            try:
                event = json.loads(body) if body.strip() else {}
                result = handler(event, context)
                try:
                    output = json.dumps(result, default=_decimal_default).encode()
                except (TypeError, ValueError) as exc:
                    function_error = error_payload(exc, "Runtime.MarshalError", request_id)
                    function_error["errorMessage"] = f"Unable to marshal response: {exc}"
                    function_error["stackTrace"] = []
            except Exception as exc:
                function_error = error_payload(exc, request_id=request_id)
                print(
                    f"[ERROR] {function_error['errorType']}: {function_error['errorMessage']}\n"
                    + "".join(traceback.format_exception(exc)),
                    flush=True,
                )
            duration = (time.monotonic() - started) * 1000
            print(f"END RequestId: {request_id}", flush=True)
            init = f"\tInit Duration: {state.pop('init_ms'):.2f} ms" if "init_ms" in state else ""
            print(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms{init}", flush=True)

            if function_error is not None:
                output = json.dumps(function_error).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(output)))
            if function_error is not None:
                self.send_header("Lambda-Function-Error", "Unhandled")
            self.end_headers()
            self.wfile.write(output)

    return InvokeHandler


def _exit_with_parent() -> None:
    """A worker never outlives the local runtime that started it."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    main()

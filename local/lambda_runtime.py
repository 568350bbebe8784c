"""The local Lambda service: one warm worker process per function (like one container
each), invoked through the Lambda Invoke API shape (``sam local start-lambda`` style).

A ``FunctionSpec`` says what to run (code dir, handler, env, timeout); the template gives
the specs of the stack's functions, tests may register ad-hoc ones. Errors come back as
Lambda reports them: an ``Unhandled`` function error whose payload names the exception
class as ``errorType``; a timeout kills and restarts the worker and reports
``Sandbox.Timedout``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from http.client import HTTPConnection, HTTPException
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .processes import read_ready, stop_process_group
from .servers import BurstHTTPServer
from .template import ACCOUNT_ID, PARTITION, REGION, FunctionConfig

LOG = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous request/response limit
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations$")
# Host variables a Python process needs to run at all; nothing else leaks into a function.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "AWS_CA_BUNDLE")


@dataclass(frozen=True)
class FunctionSpec:
    """What one worker runs. ``environment`` is the function's own env (template vars);
    the runtime adds the Lambda-reserved and local-mode variables."""

    name: str
    code_dir: Path
    handler: str
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 3.0
    memory_size: int = 128
    python_path: tuple[Path, ...] = ()
    init_timeout: float = 180.0
    tracing: bool = False  # each invocation gets a sampled X-Ray trace header (_X_AMZN_TRACE_ID)

    @property
    def arn(self) -> str:
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    @classmethod
    def from_config(cls, config: FunctionConfig, **changes: Any) -> FunctionSpec:
        spec = cls(
            name=config.name,
            code_dir=config.code_dir,
            handler=config.handler,
            environment={**config.image_environment, **config.environment},
            timeout=float(config.timeout),
            memory_size=config.memory_size,
            python_path=config.python_path,
            tracing=config.tracing,
        )
        return spec.replace(**changes) if changes else spec

    def replace(self, **changes: Any) -> FunctionSpec:
        return replace(self, **changes)


@dataclass(frozen=True)
class InvokeResult:
    """An invocation's outcome as the Invoke API reports it."""

    payload: bytes
    function_error: str | None = None  # "Unhandled" for an error
    status: int = 200
    log_tail: str = ""

    @property
    def error_type(self) -> str | None:
        if not self.function_error:
            return None
        try:
            return json.loads(self.payload).get("errorType")
        except (ValueError, AttributeError):
            return None


class FunctionNotFound(LookupError):
    pass


def new_trace_header() -> str:
    """A sampled X-Ray trace header, as Lambda gives an invocation of a traced function."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def _error(error_type: str, message: str) -> InvokeResult:
    body = {"errorMessage": message, "errorType": error_type}
    return InvokeResult(json.dumps(body).encode(), "Unhandled")


class FunctionWorker:
    """One warm execution environment of one function, served one invocation at a time."""

    def __init__(
        self, spec: FunctionSpec, log_dir: Path, base_env: Mapping[str, str], reserved_env: Mapping[str, str]
    ) -> None:
        self.spec = spec
        self._base_env = dict(base_env)
        self._reserved_env = dict(reserved_env)
        self._log_path = log_dir / f"{spec.name}.log"
        # the function's own /tmp, like a Lambda execution environment's; it goes with the state dir
        self._tmp_dir = log_dir.parent / "tmp" / spec.name
        self._invoke_lock = threading.Lock()  # one invocation at a time, like one container
        self._state_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._init_error: dict[str, Any] | None = None
        self._ready = threading.Event()
        self._stopped = False

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process and process.poll() is None else None

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def tmp_dir(self) -> Path:
        """The function's /tmp (its TMPDIR)."""
        return self._tmp_dir

    @property
    def log_path(self) -> Path:
        return self._log_path

    def environment(self) -> dict[str, str]:
        spec = self.spec
        env = {key: os.environ[key] for key in PASSTHROUGH_ENV if key in os.environ}
        env.update(self._base_env)
        env.update(spec.environment)
        # Reserved variables: what Lambda itself sets; the function cannot override them.
        env.update(self._reserved_env)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                "PYTHONPATH": os.pathsep.join(str(p) for p in (spec.code_dir, *spec.python_path)),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "TMPDIR": str(self._tmp_dir),
            }
        )
        return env

    def start(self) -> None:
        """Start the process (no wait); ``wait_ready`` waits for its init."""
        with self._state_lock:
            if self._stopped or (self._process and self._process.poll() is None):
                return
            self._ready.clear()
            self._port = None
            self._init_error = None
            read_fd, write_fd = os.pipe()
            env = self.environment()
            env["LOCAL_LAMBDA_READY_FD"] = str(write_fd)
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp_dir.mkdir(parents=True, exist_ok=True)
            with self._log_path.open("ab") as log:
                log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.spec.name}\n".encode())
                log.flush()
                self._process = subprocess.Popen(  # noqa: S603 - our own worker script
                    [sys.executable, str(WORKER_SCRIPT)],
                    cwd=self.spec.code_dir if self.spec.code_dir.is_dir() else None,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            os.close(write_fd)
            process = self._process
        threading.Thread(
            target=self._await_init, args=(process, read_fd), name=f"init-{self.spec.name}", daemon=True
        ).start()

    def _await_init(self, process: subprocess.Popen[bytes], read_fd: int) -> None:
        report = read_ready(read_fd, self.spec.init_timeout)
        with self._state_lock:
            if process is not self._process:
                return
            if "port" in report:
                self._port = int(report["port"])
                LOG.info("%s ready (init %.0f ms)", self.spec.name, report.get("initMs", 0))
            else:
                self._init_error = report.get("initError") or {
                    "errorType": "Runtime.ExitError" if process.poll() is not None else "Sandbox.Timedout",
                    "errorMessage": f"init of {self.spec.name} did not complete; see {self._log_path}",
                }
                LOG.warning("%s init failed: %s", self.spec.name, self._init_error.get("errorMessage"))
                stop_process_group(process, grace=0)
            self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the worker is warm; False after an init error or the timeout."""
        self._ready.wait(self.spec.init_timeout if timeout is None else timeout)
        return self._port is not None

    @property
    def init_error(self) -> dict[str, Any] | None:
        return self._init_error

    def invoke(self, payload: bytes, request_id: str | None = None) -> InvokeResult:
        request_id = request_id or str(uuid.uuid4())
        with self._invoke_lock:
            if self._stopped:
                return _error("Runtime.Stopped", f"{self.spec.name} is stopped (local mode is shutting down)")
            if self._process is None or (self._ready.is_set() and self._port is None) or self._died():
                # Never started, failed its init or died: Lambda inits a fresh environment.
                self._fresh_environment()
            if not self._ready.wait(self.spec.init_timeout):
                self._fresh_environment()
                return _error(
                    "Sandbox.Timedout", f"RequestId: {request_id} Error: init did not finish in time"
                )
            if self._port is None:
                return InvokeResult(json.dumps(self._init_error).encode(), "Unhandled")
            return self._invoke_warm(payload, request_id)

    def _invoke_warm(self, payload: bytes, request_id: str) -> InvokeResult:
        timeout = self.spec.timeout
        deadline_ms = int((time.time() + timeout) * 1000)
        connection = HTTPConnection("127.0.0.1", self._port, timeout=timeout)
        headers = {
            "Lambda-Request-Id": request_id,
            "Lambda-Deadline-Ms": str(deadline_ms),
            "Lambda-Invoked-Function-Arn": self.spec.arn,
            "Content-Type": "application/json",
        }
        if self.spec.tracing:
            headers["Lambda-Runtime-Trace-Id"] = new_trace_header()
        try:
            connection.request("POST", "/invoke", body=payload, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except TimeoutError:
            LOG.warning("%s timed out after %.2f s: restarting its worker", self.spec.name, timeout)
            self._fresh_environment()
            return _error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            )
        except (OSError, HTTPException):
            code = self._process.poll() if self._process else None
            LOG.warning(
                "%s worker exited during an invocation (code %s): restarting it", self.spec.name, code
            )
            self._fresh_environment()
            return _error(
                "Runtime.ExitError",
                f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
            )
        finally:
            connection.close()
        function_error = response.getheader("Lambda-Function-Error")
        if len(body) > MAX_SYNC_PAYLOAD:
            return _error(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD} bytes).",
            )
        return InvokeResult(body, function_error)

    def _died(self) -> bool:
        return self._process is not None and self._ready.is_set() and self._process.poll() is not None

    def _fresh_environment(self) -> None:
        """Kill the current process (if any) and init a new one, as Lambda does after an
        init failure, a crash or a timeout."""
        self._kill(self._process)
        with self._state_lock:
            self._process = None
            self._port = None
            self._ready.clear()
        self.start()

    @staticmethod
    def _kill(process: subprocess.Popen[bytes] | None) -> None:
        stop_process_group(process, grace=0)

    def stop(self) -> None:
        with self._state_lock:
            self._stopped = True
            process, self._process = self._process, None
            self._ready.set()
        stop_process_group(process, grace=2.0)


class LambdaRuntime:
    """Registry of functions and their workers, plus the Lambda Invoke API endpoint."""

    def __init__(
        self,
        log_dir: Path,
        base_env: Mapping[str, str] | None = None,
        reserved_env: Mapping[str, str] | None = None,
    ) -> None:
        """``base_env`` is under every function's own env, ``reserved_env`` over it (like
        the credentials and region Lambda sets)."""
        self._log_dir = log_dir
        self.base_env = dict(base_env or {})
        self.reserved_env = dict(reserved_env or {})
        self._workers: dict[str, FunctionWorker] = {}
        self._lock = threading.Lock()
        self._server: BurstHTTPServer | None = None
        self._server_thread: threading.Thread | None = None

    # --- registry -------------------------------------------------------------------------

    def register(self, spec: FunctionSpec, *, start: bool = False) -> FunctionWorker:
        """Add (or replace) a function; ``start`` begins its init in the background."""
        worker = FunctionWorker(spec, self._log_dir, self.base_env, self.reserved_env)
        with self._lock:
            previous = self._workers.get(spec.name)
            self._workers[spec.name] = worker
        if previous:
            previous.stop()
        if start:
            worker.start()
        return worker

    def unregister(self, name: str) -> None:
        with self._lock:
            worker = self._workers.pop(name, None)
        if worker:
            worker.stop()

    @contextmanager
    def override(self, spec: FunctionSpec) -> Iterator[FunctionWorker]:
        """Run ``spec`` under an existing function's name for the duration of the block."""
        previous = self._workers.get(spec.name)
        worker = self.register(spec, start=True)
        try:
            yield worker
        finally:
            if previous:
                self.register(previous.spec, start=True)
            else:
                self.unregister(spec.name)

    def worker(self, name_or_arn: str) -> FunctionWorker:
        name = function_name_from(name_or_arn)
        with self._lock:
            if name not in self._workers:
                raise FunctionNotFound(name_or_arn)
            return self._workers[name]

    @property
    def names(self) -> list[str]:
        return sorted(self._workers)

    def start_all(self, names: Iterable[str] | None = None) -> None:
        for name in names if names is not None else self.names:
            self._workers[name].start()

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 180.0) -> dict[str, bool]:
        """Wait for the named workers (default: those started); True for each warm one."""
        deadline = time.monotonic() + timeout
        if names is None:
            names = [name for name in self.names if self._workers[name].started]
        return {name: self._workers[name].wait_ready(max(deadline - time.monotonic(), 0)) for name in names}

    def invoke(
        self, name_or_arn: str, payload: bytes | dict[str, Any] | list[Any] | None = None
    ) -> InvokeResult:
        if not isinstance(payload, bytes):
            payload = json.dumps(payload if payload is not None else {}).encode()
        return self.worker(name_or_arn).invoke(payload)

    # --- the Invoke API endpoint --------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        runtime = self

        class Handler(_InvokeApiHandler):
            lambdas = runtime

        self._server = BurstHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, name="lambda-endpoint", daemon=True
        )
        self._server_thread.start()
        return self.endpoint

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the Lambda endpoint is not serving")
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._server_thread:
            self._server_thread.join(5)
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        threads = [threading.Thread(target=w.stop, daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    def pids(self) -> dict[str, int | None]:
        return {name: worker.pid for name, worker in self._workers.items()}


_FUNCTION_ARN = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[$A-Za-z0-9_-]+))?$"
)


def function_name_from(name_or_arn: str) -> str:
    """The function name from a name, a partial or a full ARN (qualifier dropped)."""
    match = _FUNCTION_ARN.match(name_or_arn)
    return match.group("name") if match else name_or_arn


class _InvokeApiHandler(BaseHTTPRequestHandler):
    """``POST /2015-03-31/functions/{FunctionName}/invocations``, answered like Lambda."""

    lambdas: LambdaRuntime
    protocol_version = "HTTP/1.1"
    server_version = "local-lambda"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("lambda endpoint: " + format, *args)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        match = INVOKE_PATH.match(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length)
        if not match:
            self._service_error(
                404, "ResourceNotFoundException", f"local Lambda serves only Invoke, not {url.path}"
            )
            return
        function = unquote(match.group("function"))
        qualifier = parse_qs(url.query).get("Qualifier", ["$LATEST"])[0]
        try:
            worker = self.lambdas.worker(function)
        except FunctionNotFound:
            arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name_from(function)}"
            self._service_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
            return
        if qualifier not in ("$LATEST", ""):
            self._service_error(
                404, "ResourceNotFoundException", f"Function not found: {worker.spec.arn}:{qualifier}"
            )
            return
        if length > MAX_SYNC_PAYLOAD:
            self._service_error(
                413,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation",
            )
            return
        if payload.strip():
            try:
                json.loads(payload)
            except ValueError:
                self._service_error(
                    400, "InvalidRequestContentException", "Could not parse request body into json"
                )
                return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            self._reply(204, b"", {})
            return
        if invocation_type == "Event":
            threading.Thread(target=worker.invoke, args=(payload,), daemon=True).start()
            self._reply(202, b"", {"X-Amzn-RequestId": str(uuid.uuid4())})
            return
        result = worker.invoke(payload)
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(_log_tail(worker.log_path)).decode()
        self._reply(result.status, result.payload, headers)

    def _service_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._reply(status, body, {"Content-Type": "application/json", "X-Amzn-ErrorType": error_type})

    def _reply(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("X-Amzn-RequestId", headers.get("X-Amzn-RequestId", str(uuid.uuid4())))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _log_tail(path: Path, size: int = 4096) -> bytes:
    with suppress(OSError), path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(log.tell() - size, 0))
        return log.read()
    return b""

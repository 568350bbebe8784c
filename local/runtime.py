"""Local mode: the whole stack of template.yaml on loopback, no AWS account, no Docker.

``LocalRuntime`` starts, in this order:

1. the local Lambda endpoint (Invoke API) in this process;
2. the moto server process (``local.moto_host``), with the middleware that sends Lambda
   invokes to (1) and enforces presigned POST policies, and the Step Functions
   interpreter turned on (``POST /moto-api/config``);
3. the template's secrets in moto (their values kept in the state dir, so they survive a
   restart), then one worker process per function (eagerly, in the background:
   SegmentFunction's init loads the model), then its tables (with the items of those the
   template marks ``Metadata: LocalMode: PersistItems``, kept across restarts) and buckets;
4. the state machines, the S3 -> EventBridge -> Step Functions dispatcher and the
   EventBridge Scheduler dispatcher (moto stores schedules, local mode fires them);
5. the HTTP API in front of the functions' HttpApi routes.

Everything is named and configured from template.yaml (``local.template``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import requests
from botocore.config import Config

from .events import EventBus, S3EventDispatcher, Target
from .http_api import LocalHttpApi
from .lambda_runtime import FunctionSpec, LambdaRuntime
from .processes import read_ready, stop_process_group
from .provision import (
    Provisioned,
    provision_secrets,
    provision_state_machines,
    provision_storage,
    save_persisted_items,
)
from .scheduler import ScheduleDispatcher
from .state import StateDir
from .template import ACCOUNT_ID, REGION, SERVERLESS_STATE_MACHINE, EventRule, Stack, load_template
from .xray import XRayDaemon

LOG = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = ROOT / "template.yaml"
# `python -m local up`'s; a LocalRuntime without a state_dir makes a temporary one of its own.
DEFAULT_STATE_DIR = ROOT / ".local-state"
# Local mode's own parameter defaults (like a samconfig.toml for "local").
LOCAL_PARAMETER_OVERRIDES = {"AllowLoopbackWebhooks": "true"}
# Local mode runs the webhook retry schedule this many times faster: an hour takes a second.
LOCAL_TIME_SCALE = 3600


def local_parameter_overrides(template_path: Path) -> dict[str, str]:
    """LOCAL_PARAMETER_OVERRIDES, plus the template's default retry schedule scaled down by
    LOCAL_TIME_SCALE (at least a second a wait), so tests see every retry in seconds."""
    parameters = load_template(template_path).get("Parameters", {})
    overrides = dict(LOCAL_PARAMETER_OVERRIDES)
    if "WebhookRetrySchedule" in parameters:
        delays = str(parameters["WebhookRetrySchedule"]["Default"]).split(",")
        overrides["WebhookRetrySchedule"] = ",".join(
            str(max(1, math.ceil(int(delay) / LOCAL_TIME_SCALE))) for delay in delays
        )
    return overrides


# AWS's documented example key pair: obviously fake, and the only key local S3 accepts
# presigned POST signatures from.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - AWS's documented example


def _start_execution(sfn: Any, state_machine_arn: str, event: dict[str, Any]) -> str:
    """The Step Functions target of an EventBridge rule: the event is the input."""
    # EventBridge names the executions itself; moto mishandles a missing name.
    name = f"{event.get('id', uuid.uuid4())}_{uuid.uuid4()}"[:80]
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(event))
    return response["executionArn"]


class LocalRuntime:
    """The stack of template.yaml running locally. Use as a context manager, or call
    ``start()`` and ``stop()``.

    ``parameter_overrides`` work like ``sam deploy --parameter-overrides`` (on top of
    local mode's own: AllowLoopbackWebhooks=true). ``eager`` starts every function's
    worker at startup (True), none (False), or the named ones. ``function_env`` adds or
    replaces env vars of functions, by logical id (like ``sam local --env-vars``).
    ``state_dir`` holds the logs, the functions' /tmp and endpoints.json; one running
    instance owns it (``StateDirInUse`` for a second); default: a temporary one of its own.
    ``tracing`` runs a local X-Ray daemon and traces the functions with ``Tracing:
    Active`` (their segment documents: ``xray_documents()`` and ``<state dir>/xray/``).
    """

    def __init__(
        self,
        parameter_overrides: Mapping[str, Any] | None = None,
        state_dir: Path | str | None = None,
        api_port: int = 0,
        eager: bool | Iterable[str] = True,
        *,
        template_path: Path | str = DEFAULT_TEMPLATE,
        function_env: Mapping[str, Mapping[str, str]] | None = None,
        startup_timeout: float = 60.0,
        tracing: bool = False,
    ) -> None:
        self.template_path = Path(template_path)
        self.parameter_overrides = {
            **local_parameter_overrides(self.template_path),
            **(parameter_overrides or {}),
        }
        if state_dir is None:  # a directory of its own, removed with this object (or at exit)
            state_dir = tempfile.mkdtemp(prefix="segjob-local-")
            weakref.finalize(self, shutil.rmtree, state_dir, ignore_errors=True)
        self._state = StateDir(state_dir)
        self.state_dir = self._state.path
        self.log_dir = self.state_dir / "logs"
        self.api_port = api_port
        self.eager = eager
        self.function_env = {k: dict(v) for k, v in (function_env or {}).items()}
        self.startup_timeout = startup_timeout
        self.tracing = tracing
        self._xray: XRayDaemon | None = None
        # Parsed now so that a bad template or parameter fails before anything starts.
        self.stack = Stack(self.template_path, self.parameter_overrides)
        self.lambdas = LambdaRuntime(self.log_dir)
        self.bus: EventBus | None = None
        self.startup_seconds: float | None = None
        self._moto: subprocess.Popen[bytes] | None = None
        self._moto_url: str | None = None
        self._http_api: LocalHttpApi | None = None
        self._dispatchers: list[S3EventDispatcher] = []
        self.schedules: ScheduleDispatcher | None = None
        self._state_machines: dict[str, str] = {}
        self._session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=REGION
        )
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._started = False

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalRuntime:
        if self._started:
            return self
        started = time.monotonic()
        self._state.acquire()  # StateDirInUse before anything starts
        self._started = True
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            lambda_endpoint = self.lambdas.serve()
            self._start_moto(lambda_endpoint)
            self._enable_state_machine_execution()
            provisioned = provision_secrets(self.stack, self.boto3_client, self.state_dir)
            self.stack = self.stack.with_physical_ids(provisioned.physical_ids)
            if self.tracing:
                self._xray = XRayDaemon(self.state_dir / "xray" / "segments.jsonl").start()
            # Workers init (SegmentFunction loads its model) while moto creates the rest.
            self._start_functions()
            provision_storage(self.stack, self.boto3_client, provisioned, self.state_dir)
            self._state_machines = provision_state_machines(self.stack, self.boto3_client)
            self._start_events(provisioned)
            self._start_http_api()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        self._write_endpoints()
        LOG.info("local mode ready in %.1f s: %s", self.startup_seconds, self.api_url)
        return self

    def stop(self) -> None:
        """Stop everything started (servers, threads, worker and moto processes)."""
        if self._http_api:
            self._http_api.stop()
            self._http_api = None
        for dispatcher in self._dispatchers:
            dispatcher.stop(timeout=0)
        if self.schedules:
            self.schedules.stop()
            self.schedules = None
        self.lambdas.stop()
        if self._moto is not None and self._moto.poll() is None and self._moto_url is not None:
            try:
                save_persisted_items(self.stack, self.boto3_client, self.state_dir)
            except Exception:  # never keeps local mode from stopping
                LOG.exception("could not save the persisted tables' items")
        stop_process_group(self._moto, grace=3.0)
        self._moto = None
        for dispatcher in self._dispatchers:
            dispatcher.stop(timeout=10)
        self._dispatchers = []
        if self._xray:
            self._xray.stop()
            self._xray = None
        with self._clients_lock:
            self._clients.clear()
        self._state.release()
        self._started = False

    def _start_moto(self, lambda_endpoint: str) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["LOCAL_POST_CREDENTIALS"] = json.dumps({ACCESS_KEY_ID: SECRET_ACCESS_KEY})
        with (self.log_dir / "moto.log").open("ab") as log:
            self._moto = subprocess.Popen(  # noqa: S603 - our own module
                [
                    sys.executable,
                    "-m",
                    "local.moto_host",
                    "--lambda-endpoint",
                    lambda_endpoint,
                    "--region",
                    REGION,
                    "--ready-fd",
                    str(write_fd),
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        os.close(write_fd)
        report = read_ready(read_fd, self.startup_timeout)
        if "port" not in report:
            raise RuntimeError(f"the moto server did not start; see {self.log_dir / 'moto.log'}")
        self._moto_url = f"http://127.0.0.1:{report['port']}"

    def _enable_state_machine_execution(self) -> None:
        response = requests.post(
            f"{self.s3_endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        )
        response.raise_for_status()

    def _start_functions(self) -> None:
        self.lambdas.base_env = {
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "AWS_XRAY_SDK_ENABLED": "false",
            "AWS_SAM_LOCAL": "true",
        }
        self.lambdas.reserved_env = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        functions = self.stack.functions()
        unknown = set(self.function_env) - set(functions)
        if unknown:
            raise ValueError(f"function_env names functions not in the template: {sorted(unknown)}")
        eager = set(functions) if self.eager is True else set() if self.eager is False else set(self.eager)
        # Slowest init first (the image function loads its model).
        for logical_id, config in sorted(functions.items(), key=lambda item: item[1].package_type != "Image"):
            spec = FunctionSpec.from_config(config)
            traced = spec.tracing and self._xray is not None
            env = {**spec.environment, **(self._tracing_env() if traced else {})}
            env |= self.function_env.get(logical_id, {})
            self.lambdas.register(spec.replace(environment=env, tracing=traced), start=logical_id in eager)

    def _tracing_env(self) -> dict[str, str]:
        """What Lambda sets for a function with active tracing, pointed at the local daemon."""
        assert self._xray is not None
        return {
            "AWS_XRAY_DAEMON_ADDRESS": self._xray.address,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_SDK_ENABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "false",
            "AWS_SAM_LOCAL": "",  # Powertools' Tracer patches nothing under SAM local
        }

    def _start_events(self, provisioned: Provisioned) -> None:
        sfn = self.boto3_client("stepfunctions")
        rules: list[tuple[EventRule, Target]] = []
        for rule in self.stack.event_rules():
            if rule.target_type != SERVERLESS_STATE_MACHINE:
                LOG.warning("rule %s: only state machine targets are emulated locally", rule.name)
                continue
            rules.append((rule, functools.partial(_start_execution, sfn, self._state_machines[rule.target])))
        self.bus = EventBus(rules)
        retries = max((r.retry_policy.get("MaximumRetryAttempts", 185) for r, _ in rules), default=185)
        # Its own client without retries: a long poll must end quickly when moto stops.
        sqs = self._session.client(
            "sqs",
            endpoint_url=self.s3_endpoint,
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
        )
        for queue_url in provisioned.s3_event_queues.values():
            dispatcher = S3EventDispatcher(sqs, queue_url, self.bus, max_receive_count=int(retries) + 1)
            dispatcher.start()
            self._dispatchers.append(dispatcher)
        if provisioned.schedule_groups:

            def start_target(state_machine_arn: str, name: str, payload: str) -> str:
                return sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)[
                    "executionArn"
                ]

            self.schedules = ScheduleDispatcher(
                self.boto3_client("scheduler"), provisioned.schedule_groups, start_target
            )
            self.schedules.start()

    def _start_http_api(self) -> None:
        routes = self.stack.http_routes()
        names = {lid: self.stack.physical_name(lid) for lid in {route.function for route in routes}}

        def invoke(function: str, payload: bytes) -> tuple[bytes, str | None]:
            result = self.lambdas.invoke(function, payload)
            return result.payload, result.function_error

        self._http_api = LocalHttpApi(routes, function_names=names, invoke=invoke, port=self.api_port)
        self._http_api.start()

    def _write_endpoints(self) -> None:
        self._state.write_endpoints(self.endpoints())

    @property
    def endpoints_path(self) -> Path:
        """``<state dir>/endpoints.json``: written once the instance is up, removed when it stops."""
        return self._state.endpoints_path

    # --- what clients and tests need ----------------------------------------------------

    def endpoints(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "s3_endpoint": self.s3_endpoint,
            "lambda_endpoint": self.lambdas.endpoint,
            "region": REGION,
            "account_id": ACCOUNT_ID,
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
            "bucket": self.bucket,
            "table": self.table,
            "state_machine_arn": self.state_machine_arn,
            "parameters": self.parameters,
            "log_dir": str(self.log_dir),
            "pid": os.getpid(),
        }

    @property
    def api_url(self) -> str:
        if self._http_api is None:
            raise RuntimeError("local mode is not started")
        return self._http_api.url

    @property
    def s3_endpoint(self) -> str:
        """The moto server's URL: the endpoint of every AWS service in local mode."""
        if self._moto_url is None:
            raise RuntimeError("local mode is not started")
        return self._moto_url

    endpoint_url = s3_endpoint

    @property
    def lambda_endpoint(self) -> str:
        return self.lambdas.endpoint

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.stack.parameters)

    def _single(self, resource_type: str, preferred: str | None = None) -> str:
        """The template's one resource of ``resource_type`` (or ``preferred`` among several)."""
        logical_ids = list(self.stack.resources_of_type(resource_type))
        if len(logical_ids) == 1:
            return logical_ids[0]
        if preferred in logical_ids:
            return preferred
        raise LookupError(f"the template has {len(logical_ids)} resources of type {resource_type}")

    @property
    def bucket(self) -> str:
        return self.stack.physical_name(self._single("AWS::S3::Bucket"))

    @property
    def table(self) -> str:
        """The jobs table (the template also has e.g. the API's idempotency table)."""
        return self.stack.physical_name(self._single("AWS::DynamoDB::Table", preferred="JobsTable"))

    @property
    def tables(self) -> dict[str, str]:
        """Every table of the template: logical id -> local name."""
        return {
            lid: self.stack.physical_name(lid) for lid in self.stack.resources_of_type("AWS::DynamoDB::Table")
        }

    @property
    def state_machine_arn(self) -> str:
        """The job flow (Express), which the upload events start."""
        return self._state_machines[self._single(SERVERLESS_STATE_MACHINE, preferred="JobStateMachine")]

    @property
    def state_machines(self) -> dict[str, str]:
        """Every state machine of the template: logical id -> ARN."""
        return dict(self._state_machines)

    @property
    def webhook_secret(self) -> str:
        """The webhook signing secret of local mode's default caller (unsigned requests, as
        the CLI sends them here), from ``GET /webhook-secret`` like any caller gets theirs."""
        response = requests.get(f"{self.api_url}/webhook-secret", timeout=60)
        response.raise_for_status()
        return str(response.json()["secret"])

    def xray_documents(self) -> list[dict[str, Any]]:
        """The X-Ray segment documents the functions sent (``tracing=True``), in arrival order."""
        if self._xray is None:
            raise RuntimeError("local mode runs without tracing (LocalRuntime(tracing=True))")
        return self._xray.documents()

    def boto3_client(self, service: str) -> Any:
        """A boto3 client of ``service`` against local mode (s3: SigV4, path style)."""
        with self._clients_lock:
            if service not in self._clients:
                config = Config(
                    signature_version="s3v4" if service == "s3" else None,
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 3, "mode": "standard"},
                )
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.s3_endpoint, config=config
                )
            return self._clients[service]

    def deliver_event(self, event: Mapping[str, Any]) -> list[str]:
        """Put an EventBridge event on the local default bus (as EventBridge would deliver
        it again); returns the ids (execution ARNs) of the targets it started."""
        if self.bus is None:
            raise RuntimeError("local mode is not started")
        return [d.target_id for d in self.bus.put_event(dict(event)) if d.matched and d.target_id]

    def pids(self) -> dict[str, int | None]:
        """Process ids of the moto server and of each function's worker (None: not running)."""
        moto = self._moto.pid if self._moto and self._moto.poll() is None else None
        return {"moto": moto, **self.lambdas.pids()}

    def wait_for_functions(self, timeout: float = 180.0) -> dict[str, bool]:
        """Wait for the workers started so far; True for each one that is warm."""
        return self.lambdas.wait_ready(timeout=timeout)

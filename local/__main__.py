"""Local mode from the command line (the Makefile's local-up, local-down, local-env).

    python -m local up [--detach]   start local mode; print its endpoints; run until SIGINT/SIGTERM
                                    (--detach: in the background, once it is ready)
    python -m local down            stop the instance of the state dir
    python -m local env             shell lines that point `segjob` at it: eval "$(python -m local env)"
    python -m local status          its API URL and pid, exit 1 if it is not running

Each instance owns its state dir (default .local-state/: logs, endpoints.json); a second
`up` with the same one is refused, and `make demo` or the tests use directories of their own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .runtime import DEFAULT_STATE_DIR, DEFAULT_TEMPLATE, ROOT, LocalRuntime
from .state import StateDir, StateDirInUse
from .template import TemplateError

# Seconds `up --detach` waits for the instance (SegmentFunction's init imports torch).
DETACH_TIMEOUT = 300.0
DOWN_TIMEOUT = 60.0
LOG_FILE = "local.log"


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected Key=Value, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start local mode and run until interrupted")
    up.add_argument(
        "--param",
        action="append",
        type=_parameter,
        default=[],
        metavar="Key=Value",
        help="template parameter override (repeatable), like sam --parameter-overrides",
    )
    up.add_argument("--api-port", type=int, default=3000, help="port of the HTTP API (0: any free port)")
    up.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    up.add_argument("--lazy", action="store_true", help="start each function's worker on its first invoke")
    up.add_argument("--detach", action="store_true", help="run in the background; return once it is ready")
    up.add_argument(
        "--tracing",
        action="store_true",
        help="collect X-Ray segment documents in <state dir>/xray/segments.jsonl",
    )
    up.add_argument("-v", "--verbose", action="store_true")
    for name, text in (
        ("down", "stop the instance of the state dir"),
        ("env", "shell lines for eval: segjob on PATH, SEGJOB_API_URL"),
        ("status", "is it running, and where"),
    ):
        commands.add_parser(name, help=text)
    for command in commands.choices.values():
        command.add_argument(
            "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="the instance's logs and endpoints.json"
        )
    args = parser.parse_args(argv)
    state = StateDir(args.state_dir)
    if args.command == "up":
        return _detach(args, argv, state) if args.detach else _up(args, parser)
    if args.command == "down":
        return _down(state)
    endpoints = state.read_endpoints()
    if endpoints is None:
        print(f"local mode is not running (state dir {state.path}); start it: make local-up", file=sys.stderr)
        return 1
    if args.command == "env":
        print(_env_lines(endpoints))
    else:
        print(f"local mode runs: API {endpoints['api_url']}, pid {endpoints['pid']}, state dir {state.path}")
    return 0


def _up(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.api_port and not _port_free(args.api_port):
        parser.error(f"port {args.api_port} is in use: pass --api-port N (0: any free port)")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        runtime = LocalRuntime(
            parameter_overrides=dict(args.param),
            state_dir=args.state_dir,
            api_port=args.api_port,
            eager=not args.lazy,
            template_path=args.template,
            tracing=args.tracing,
        )
    except TemplateError as error:
        parser.error(str(error))
    try:
        runtime.start()
    except StateDirInUse as error:
        parser.error(str(error))
    try:
        print(json.dumps(runtime.endpoints(), indent=2), flush=True)
        print(f"endpoints written to {runtime.endpoints_path}", file=sys.stderr)
        print(f"local mode ready ({runtime.startup_seconds:.1f} s)", flush=True)
        stop.wait()
        print("stopping local mode", file=sys.stderr, flush=True)
    finally:
        runtime.stop()
    return 0


def _detach(args: argparse.Namespace, argv: list[str] | None, state: StateDir) -> int:
    """Start ``up`` in a session of its own, wait until its endpoints are written, print how
    to use it. The child's output goes to <state dir>/local.log."""
    pid = state.owner_pid()
    if pid:
        print(f"python -m local: {StateDirInUse(state.path, pid, _url(state))}", file=sys.stderr)
        return 2
    child_args = [arg for arg in (sys.argv[1:] if argv is None else argv) if arg != "--detach"]
    state.path.mkdir(parents=True, exist_ok=True)
    log_path = state.path / LOG_FILE
    started = time.monotonic()
    with log_path.open("ab") as log:
        child = subprocess.Popen(  # noqa: S603 - this module, with the caller's own arguments
            [sys.executable, "-m", "local", *child_args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this shell command, ignores its Ctrl-C
        )
    print(f"starting local mode in the background (pid {child.pid}, log {log_path}) ...", flush=True)
    deadline = started + DETACH_TIMEOUT
    while (endpoints := state.read_endpoints()) is None or endpoints.get("pid") != child.pid:
        if child.poll() is not None:
            print(
                f"local mode did not start (exit {child.returncode}); the end of {log_path}:", file=sys.stderr
            )
            print(_tail(log_path), file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            child.terminate()
            print(f"local mode not ready after {DETACH_TIMEOUT:.0f} s; see {log_path}", file=sys.stderr)
            return 1
        time.sleep(0.25)
    print(_ready_text(endpoints, state, time.monotonic() - started), flush=True)
    return 0


def _down(state: StateDir) -> int:
    pid = state.owner_pid()
    if pid is None:
        print(f"local mode is not running (state dir {state.path})")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while state.owner_pid() is not None or process_alive(pid):
        if time.monotonic() > deadline:
            print(f"local mode (pid {pid}) did not stop within {DOWN_TIMEOUT:.0f} s", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"local mode stopped (pid {pid})")
    return 0


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting for a parent that may never reap it, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal said it exists
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _env_lines(endpoints: dict[str, object]) -> str:
    """What `eval "$(python -m local env)"` sets: the venv's bin (segjob) first on PATH and the
    API URL. Not the webhook secret: `segjob webhook listen` asks the API for the current one."""
    venv_bin = Path(sys.executable).parent
    return "\n".join(
        [
            f'export PATH={shlex.quote(str(venv_bin))}:"$PATH"',
            f"export SEGJOB_API_URL={shlex.quote(str(endpoints['api_url']))}",
        ]
    )


def _ready_text(endpoints: dict[str, object], state: StateDir, seconds: float) -> str:
    default = state.path == DEFAULT_STATE_DIR.resolve()
    option = "" if default else f" --state-dir {shlex.quote(str(state.path))}"
    use = 'eval "$(make -s local-env)"' if default else f'eval "$(python -m local env{option})"'
    stop = "make local-down" if default else f"python -m local down{option}"
    return "\n".join(
        [
            f"local mode is up in {seconds:.1f} s (pid {endpoints['pid']}; logs in {endpoints['log_dir']})",
            f"  API URL         {endpoints['api_url']}",
            f"  use it          {use}   # segjob on PATH, SEGJOB_API_URL set",
            "  webhook secret  segjob webhook secret   # yours; kept across restarts in the state dir",
            f"  stop it         {stop}",
        ]
    )


def _url(state: StateDir) -> str | None:
    endpoints = state.read_endpoints()
    return str(endpoints["api_url"]) if endpoints else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP API binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())

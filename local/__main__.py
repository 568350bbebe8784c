"""``python -m local up``: start local mode, print its endpoints, run until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from .runtime import DEFAULT_STATE_DIR, DEFAULT_TEMPLATE, LocalRuntime
from .template import TemplateError


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected Key=Value, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
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
    up.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="logs and endpoints.json")
    up.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    up.add_argument("--lazy", action="store_true", help="start each function's worker on its first invoke")
    up.add_argument(
        "--tracing",
        action="store_true",
        help="collect X-Ray segment documents in <state dir>/xray/segments.jsonl",
    )
    up.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
    with runtime:
        print(json.dumps(runtime.endpoints(), indent=2), flush=True)
        print(f"endpoints written to {runtime.state_dir / 'endpoints.json'}", file=sys.stderr)
        print(f"local mode ready ({runtime.startup_seconds:.1f} s)", flush=True)
        stop.wait()
        print("stopping local mode", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

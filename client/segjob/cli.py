"""`segjob`: submit images, follow jobs, fetch results, receive webhooks.

    segjob submit photo.jpg more/*.jpg --wait --out results/
    segjob status job_... | segjob list | segjob cancel job_... | segjob results job_... --out DIR
    segjob redeliver job_...   (send the job's last webhook event again)
    segjob status job_... | segjob list [--status FAILED] | segjob cancel job_...
    segjob results job_... [--out DIR] [--html report.html]
    segjob webhook secret | segjob webhook rotate --overlap 86400
    segjob webhook listen --port 8765   (verifies with your secret from the API, or --secret whsec_...)

The API URL comes from --api-url or SEGJOB_API_URL (the stack's ApiUrl output; a local
mode URL works unsigned). Exit status: 0 ok, 1 a job did not succeed, 2 usage or a bad
local input (a missing or non-image file, a bad option value), 3 an API or transport
error; every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import ValidationError

from segjob.client import (
    START_WAIT_SECONDS,
    Client,
    InvalidInput,
    SegjobError,
    image_content_type,
    save_result_files,
)
from segjob_core.batches import BatchWebhookEvent
from segjob_core.models import (
    MAX_OVERLAP_SECONDS,
    OUTPUT_KINDS,
    CreateJobRequest,
    Job,
    JobParams,
    JobStatus,
    WebhookEvent,
    WebhookSecret,
)

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
# A reader that closed the pipe (`segjob list | head`): what a process killed by SIGPIPE returns.
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE
# Jobs followed at once by `submit --wait` (each polls with backoff, 0.5 s up to 5 s).
WAITERS = 16


def _client(args: argparse.Namespace) -> Client:
    url = args.api_url or os.environ.get("SEGJOB_API_URL")
    if not url:
        raise SegjobError("no API URL: pass --api-url or set SEGJOB_API_URL", "Usage")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SegjobError(f"the API URL must be http(s)://host[/stage], not {url!r}", "Usage")
    return Client(url, region=args.region, timeout=args.http_timeout)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (usage goes to --help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _class_ids(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated class ids, got {text!r}") from exc


def _status(text: str) -> JobStatus:
    try:
        return JobStatus(text.upper())
    except ValueError:
        names = ", ".join(status.value for status in JobStatus)
        raise argparse.ArgumentTypeError(f"expected one of {names}, got {text!r}") from None


def _metadata(values: list[str] | None) -> dict[str, Any] | None:
    """``--metadata key=value`` (a string) or ``--metadata '{"key": 1}'`` (JSON), repeatable,
    merged in order and checked against the API's bounds here, so a bad one is a usage error."""
    if not values:
        return None
    metadata: dict[str, Any] = {}
    for text in values:
        if text.lstrip().startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise SegjobError(f"--metadata {text!r} is not valid JSON: {exc}", "Usage") from None
            if not isinstance(parsed, dict):
                raise SegjobError(f"--metadata {text!r}: expected a JSON object", "Usage")
            metadata.update(parsed)
            continue
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise SegjobError(f"--metadata {text!r}: expected key=value or a JSON object", "Usage")
        metadata[key] = value
    try:
        CreateJobRequest.model_validate({"metadata": metadata})
    except ValidationError as exc:
        raise SegjobError(f"invalid --metadata: {_problems(exc)}", "Usage") from exc
    return metadata


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _print_job(job: Job, as_json: bool, uploaded: bool = False) -> None:
    if as_json:  # the job, also after submit (whose upload form is spent)
        print(json.dumps({k: v for k, v in job.to_json_dict().items() if k != "upload"}))
        return
    line = f"{job.job_id}  {job.status.value:<15}"
    if job.filename:
        line += f"  {job.filename}"
    if job.progress and job.status is JobStatus.RUNNING:
        line += f"  tiles {job.progress.tiles_done}/{job.progress.tiles_total}"
    if job.result:
        summary = job.result.summary
        by_class = ", ".join(f"{name} {n}" for name, n in sorted(summary.by_class.items()))
        line += f"  {summary.count} detections" + (f" ({by_class})" if by_class else "")
        if summary.truncated:
            line += f" (maxDetections kept {summary.count} of {summary.count_before_cap})"
        line += f"  {job.result.timings.get('total', 0):.0f} ms"
    if job.error:
        line += f"  {job.error.code}: {job.error.message}"
    if job.webhook:
        line += f"  webhook {job.webhook.status.value}"
        if job.webhook.attempts and len(job.webhook.attempts) > 1:
            line += f" ({len(job.webhook.attempts)} attempts)"
    if uploaded and job.status is JobStatus.AWAITING_UPLOAD:
        line += "  (upload received, not started yet)"
    print(line)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """The job params given as options, checked here so that a bad one is a usage error."""
    params: dict[str, Any] = {}
    for name, key in (
        ("conf", "conf"),
        ("iou", "iou"),
        ("imgsz", "imgsz"),
        ("max_detections", "maxDetections"),
        ("tile_size", "tileSize"),
        ("tile_overlap", "tileOverlap"),
    ):
        if getattr(args, name) is not None:
            params[key] = getattr(args, name)
    if args.classes is not None:
        params["classes"] = args.classes
    if args.no_annotate:
        params["annotate"] = False
    if args.retina_masks:
        params["retinaMasks"] = True
    if args.agnostic_nms is not None:
        params["agnosticNms"] = args.agnostic_nms
    if args.outputs:
        params["outputs"] = args.outputs
    try:
        JobParams.model_validate(params)
    except ValidationError as exc:
        raise SegjobError(f"invalid job params: {_problems(exc)}", "Usage") from exc
    return params


def _idempotency_key(prefix: str, path: Path) -> str:
    """Stable per (prefix, file): a header-safe, fixed-length digest of the file's path."""
    return f"{prefix}-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]}"


def cmd_submit(args: argparse.Namespace) -> int:
    """Upload ``--concurrency`` files at a time; with --wait, each job is followed from the
    moment its upload is done (the next uploads do not wait for it)."""
    from tqdm import tqdm  # noqa: PLC0415 - only this command draws progress bars

    client = _client(args)
    paths = [Path(p) for p in args.images]
    content_types = _check_images(paths)
    if args.out and not args.wait:
        raise SegjobError("--out needs --wait", "Usage")
    _check_out_dir(args.out)
    params = _params(args)
    metadata = _metadata(args.metadata)
    quiet = args.json or (not sys.stderr.isatty() and not args.progress)
    lock = threading.Lock()
    batch = tqdm(total=len(paths), desc="jobs", unit="job", position=0, disable=quiet, file=sys.stderr)

    def upload(index: int, path: Path) -> Job:
        bar = tqdm(
            total=path.stat().st_size, desc=path.name[:24], unit="B", unit_scale=True,
            position=index % 8 + 1, leave=False, disable=quiet, file=sys.stderr,
        )  # fmt: skip

        def progress(sent: int, total: int) -> None:
            with lock:
                bar.update(sent - bar.n)

        key = _idempotency_key(args.idempotency_prefix, path) if args.idempotency_prefix else None
        try:
            return client.submit(
                path,
                content_type=content_types[path],
                webhook_url=args.webhook,
                params=params,
                metadata=metadata,
                progress=progress,
                idempotency_key=key,
                wait_for_start=0 if args.wait else START_WAIT_SECONDS,  # --wait follows it anyway
            )
        finally:
            bar.close()

    def finish(job_id: str) -> Job:
        job = client.wait(job_id, timeout=args.timeout)
        if args.webhook:  # show how its delivery went, not the PENDING of the moment it ended
            job = client.wait_for_webhook(job_id)
        if args.out and job.status is JobStatus.SUCCEEDED:
            client.download_results(job, args.out)
        return job

    outcomes: dict[int, Job | SegjobError] = {}

    def record(index: int, future: Future[Job]) -> None:
        try:
            outcome: Job | SegjobError = future.result()
        except SegjobError as exc:
            outcome = exc
        with lock:
            outcomes[index] = outcome
            batch.update(1)

    started = time.monotonic()
    with (
        ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="upload") as uploads,
        ThreadPoolExecutor(max_workers=WAITERS, thread_name_prefix="wait") as waiters,
    ):
        uploading = {uploads.submit(upload, i, p): i for i, p in enumerate(paths)}
        waiting: dict[Future[Job], int] = {}
        for future in as_completed(uploading):
            index = uploading[future]
            if not args.wait:
                record(index, future)
                continue
            try:
                created = future.result()
            except SegjobError:
                record(index, future)
                continue
            waiting[waiters.submit(finish, created.job_id)] = index
        for future in as_completed(waiting):
            record(waiting[future], future)
    batch.close()

    errors = failures = 0
    for index, path in enumerate(paths):
        outcome = outcomes[index]
        if isinstance(outcome, SegjobError):
            print(f"{path}: {outcome}", file=sys.stderr)
            if outcome.code == "WaitTimeout":
                failures += 1
            else:
                errors += 1
            continue
        _print_job(outcome, args.json, uploaded=True)
        if args.wait and outcome.status is not JobStatus.SUCCEEDED:
            failures += 1
    if not args.json:
        done = len(paths) - failures - errors
        print(f"{done}/{len(paths)} {'succeeded' if args.wait else 'submitted'} in {time.monotonic() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
    return EXIT_ERROR if errors else EXIT_JOB_FAILED if failures else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    job = _client(args).get_job(args.job_id)
    _print_job(job, args.json)
    return EXIT_OK


def _check_images(paths: list[Path]) -> dict[Path, str]:
    """Each file's content type from its first bytes; one InvalidInput naming every bad file."""
    content_types: dict[Path, str] = {}
    problems = []
    for path in paths:
        try:
            content_types[path] = image_content_type(path)
        except InvalidInput as exc:
            problems.append(exc.args[0])
    if problems:
        raise InvalidInput("; ".join(problems))
    return content_types


def _check_out_dir(path: Path | None) -> None:
    if path is not None and path.exists() and not path.is_dir():
        raise SegjobError(f"--out {path}: exists and is not a directory", "Usage")


def cmd_list(args: argparse.Namespace) -> int:
    jobs = _client(args).iter_jobs(page_size=min(args.limit, 100), status=args.status)
    for job in itertools.islice(jobs, args.limit):
        _print_job(job, args.json)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    job = _client(args).cancel(args.job_id)
    _print_job(job, args.json)
    return EXIT_OK


def cmd_redeliver(args: argparse.Namespace) -> int:
    job = _client(args).redeliver_webhook(args.job_id)
    _print_job(job, args.json)
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    """Download each job's files (--out) and/or write one HTML report of them (--html)."""
    if not args.out and not args.html:
        raise SegjobError("say where the results go: --out DIR and/or --html FILE", "Usage")
    if bool(args.job_ids) == bool(args.recent):
        raise SegjobError("name the jobs (JOB_ID ...) or ask for --recent N, not both", "Usage")
    if args.status and not args.recent:
        raise SegjobError("--status goes with --recent N", "Usage")
    _check_out_dir(args.out)
    if args.html and args.html.is_dir():
        raise SegjobError(f"--html {args.html}: is a directory; name the report file", "Usage")
    client = _client(args)
    if args.recent:
        jobs = list(itertools.islice(client.iter_jobs(min(args.recent, 100), args.status), args.recent))
    else:
        jobs = [client.get_job(job_id) for job_id in args.job_ids]
    errors = 0
    entries = []
    for job in jobs:
        files: dict[str, bytes] = {}
        if job.status is JobStatus.SUCCEEDED:
            try:
                files = client.result_files(job)
            except SegjobError as exc:
                print(f"segjob: {job.job_id}: {exc}", file=sys.stderr)
                errors += 1
        elif args.out:  # asked to download what a job does not have
            reason = f" ({job.error.code}: {job.error.message})" if job.error else ""
            print(f"segjob: {job.job_id}: NoResults: job is {job.status.value}{reason}", file=sys.stderr)
            errors += 1
        written = save_result_files(job.job_id, files, args.out) if args.out and files else {}
        for path in written.values():
            print(path)
        entries.append((job, files, written))
    if args.html:
        from segjob.report import ReportEntry, write_report  # noqa: PLC0415 - Pillow only here

        write_report(
            args.html,
            [ReportEntry.from_files(job, files, written) for job, files, written in entries],
            title=args.title,
        )
        print(args.html)
    return EXIT_ERROR if errors else EXIT_OK


def _print_secret(secret: WebhookSecret, as_json: bool) -> None:
    if as_json:
        print(json.dumps(secret.to_json_dict()))
        return
    print(secret.secret)
    overlap = (
        f"; the previous one also signs until {secret.previous_valid_until}"
        if secret.previous_valid_until
        else ""
    )
    print(f"generation {secret.generation}, current since {secret.created_at}{overlap}", file=sys.stderr)


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    _print_secret(_client(args).webhook_secret(), args.json)
    return EXIT_OK


def cmd_webhook_rotate(args: argparse.Namespace) -> int:
    _print_secret(_client(args).rotate_webhook_secret(args.overlap), args.json)
    return EXIT_OK


def _overlap(text: str) -> int:
    """Seconds, or a number with s/m/h/d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = int(float(number) * unit)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= MAX_OVERLAP_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected 0 to {MAX_OVERLAP_SECONDS} s (e.g. 3600, 90m, 24h, 7d), got {text!r}"
        )
    return seconds


def cmd_webhook_listen(args: argparse.Namespace) -> int:
    from segjob.webhooks import WebhookReceiver  # noqa: PLC0415

    secret = args.secret
    if not secret:  # yours, from the API (the deliveries of your jobs are signed with it)
        current = _client(args).webhook_secret()
        secret = current.secret
        print(
            f"verifying with your webhook secret (generation {current.generation})",
            file=sys.stderr,
            flush=True,
        )

    sink = contextlib.ExitStack()
    appended = sink.enter_context(Path(args.append).open("a", encoding="utf-8")) if args.append else None  # noqa: SIM115 - closed by the ExitStack

    def on_event(event: WebhookEvent | BatchWebhookEvent, headers: dict[str, str]) -> None:
        line = json.dumps({"webhookId": headers.get("webhook-id"), **event.to_json_dict()})
        if appended:
            appended.write(line + "\n")
            appended.flush()
        print(line, flush=True)

    try:
        receiver = WebhookReceiver(secret=secret, host=args.host, port=args.port, on_event=on_event)
    except (ValueError, OSError) as exc:
        raise SegjobError(str(exc), "Usage") from exc
    receiver.on_reject = lambda reason: print(f"rejected: {reason}", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # Ctrl-C and `kill` end the listener cleanly, also when it was started in the background
    # of a non-interactive shell (which starts it with SIGINT ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    with sink, receiver:
        print(f"listening on {receiver.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        stop.wait(args.duration if args.duration else None)
    return EXIT_OK


def _outputs(text: str) -> list[str]:
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(OUTPUT_KINDS)}, got {text!r}"
        )
    return kinds


def _add_job_options(command: argparse.ArgumentParser) -> None:
    """The job params and metadata options (``submit``, ``batch submit``)."""
    command.add_argument("--conf", type=float)
    command.add_argument("--iou", type=float)
    command.add_argument("--imgsz", type=int)
    command.add_argument("--classes", type=_class_ids, help="comma-separated class ids to keep")
    command.add_argument("--max-detections", type=int)
    command.add_argument(
        "--tile-size", type=int, help="infer large images in tiles of this many pixels (small objects)"
    )
    command.add_argument(
        "--tile-overlap", type=float, help="fraction of --tile-size tiles share (default 0.2)"
    )
    command.add_argument(
        "--agnostic-nms",
        action=argparse.BooleanOptionalAction,
        help="NMS across classes, one class per object (default: the model's own; the demo model's is on)",
    )
    command.add_argument("--no-annotate", action="store_true", help="skip annotated.jpg")
    command.add_argument(
        "--retina-masks", action="store_true", help="polygons from full-resolution masks (slower)"
    )
    command.add_argument(
        "--outputs",
        type=_outputs,
        help="extra result files: coco (coco.json), masks (masks.png); comma-separated",
    )
    command.add_argument(
        "--metadata",
        action="append",
        metavar="KEY=VALUE|JSON",
        help="echoed back on the job: key=value (a string) or a JSON object; repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segjob", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", help="API base URL (default: $SEGJOB_API_URL)")
    parser.add_argument("--region", help="AWS region for signing (default: from the URL)")
    parser.add_argument("--http-timeout", type=float, default=30.0, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="create a job per image and upload it")
    submit.add_argument("images", nargs="+")
    submit.add_argument("--webhook", help="https URL to receive the job's signed webhook")
    submit.add_argument("--wait", action="store_true", help="wait until every job is terminal")
    submit.add_argument("--out", type=Path, help="with --wait: download results to OUT/<jobId>/")
    submit.add_argument(
        "--timeout", type=_positive(float), default=600.0, help="seconds to wait per job (default 600)"
    )
    submit.add_argument("--concurrency", type=_positive(int), default=4, help="parallel uploads (default 4)")
    _add_job_options(submit)
    submit.add_argument("--idempotency-prefix", help="make retries of this command return the same jobs")
    submit.add_argument(
        "--progress", action="store_true", help="progress bars even when stderr is no terminal"
    )
    submit.add_argument("--json", action="store_true", help="one JSON job per line")
    submit.set_defaults(func=cmd_submit)

    for name, func, help_text in (
        ("status", cmd_status, "show a job"),
        ("cancel", cmd_cancel, "cancel a job"),
        ("redeliver", cmd_redeliver, "send a finished job's last webhook event again"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("job_id")
        command.add_argument("--json", action="store_true")
        command.set_defaults(func=func)

    listing = sub.add_parser("list", help="your jobs, newest first")
    listing.add_argument("--limit", type=_positive(int), default=20)
    listing.add_argument("--status", type=_status, help="only jobs in this status (e.g. FAILED)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    results = sub.add_parser("results", help="download results, or write an HTML report of jobs")
    results.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    results.add_argument("--recent", type=_positive(int), metavar="N", help="your N newest jobs")
    results.add_argument("--status", type=_status, help="with --recent: only jobs in this status")
    results.add_argument("--out", type=Path, help="write result.json and annotated.jpg to OUT/<jobId>/")
    results.add_argument(
        "--html", type=Path, help="write a self-contained HTML report (thumbnails, detections, timings)"
    )
    results.add_argument("--title", default="segjob results", help="title of the HTML report")
    results.set_defaults(func=cmd_results)

    webhook = sub.add_parser("webhook", help="webhook tools")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True)
    listen = webhook_sub.add_parser("listen", help="receive and verify webhooks, print them as JSON lines")
    listen.add_argument("--port", type=int, default=8765)
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--secret", default=os.environ.get("SEGJOB_WEBHOOK_SECRET"), help="whsec_... "
                        "(default: $SEGJOB_WEBHOOK_SECRET, else yours from the API)")  # fmt: skip
    listen.add_argument("--append", help="also append events to this JSON-lines file")
    listen.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    listen.set_defaults(func=cmd_webhook_listen)
    secret = webhook_sub.add_parser("secret", help="print your webhook signing secret (whsec_...)")
    secret.add_argument("--json", action="store_true", help="with its generation and dates")
    secret.set_defaults(func=cmd_webhook_secret)
    rotate = webhook_sub.add_parser("rotate", help="replace your webhook signing secret, print the new one")
    rotate.add_argument(
        "--overlap", type=_overlap, default=None, metavar="SECONDS",
        help="deliveries carry the old secret's signature too for this long (3600, 90m, 24h; default 24h; 0: revoke now)",
    )  # fmt: skip
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_webhook_rotate)

    from segjob.batch_cli import add_batch_commands  # noqa: PLC0415 - it imports this module's helpers

    add_batch_commands(sub, _add_job_options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is handled below
        return code
    except SegjobError as exc:
        usage = exc.code == "Usage" or isinstance(exc, InvalidInput)
        print(f"segjob: {exc.args[0] if usage else exc}", file=sys.stderr)
        return EXIT_USAGE if usage else EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Python flushes stdout again at exit and would report the closed pipe a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except OSError as exc:  # a local file the command could not read or write
        print(f"segjob: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""``segjob batch ...``: a batch of images as one request (submit, status, list, cancel, results)."""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from segjob.batches import submit_batch
from segjob.client import SegjobError, batch_finished, save_result_files
from segjob_core.batches import Batch, BatchStatus, ManifestLine
from segjob_core.models import JobStatus

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def expand(sources: list[str]) -> list[Path]:
    """Files named by DIR (its images, recursively), GLOB or FILE arguments, in order, once each."""
    found: dict[Path, None] = {}
    for source in sources:
        path = Path(source)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in source for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        else:
            matches = [path]
        if not matches:
            raise SegjobError(f"{source}: no image files", "Usage")
        found.update(dict.fromkeys(matches))
    return list(found)


def state_file(out: Path | None, paths: list[Path]) -> Path:
    """Where a submission records its batch: one file per set of inputs, so re-running the
    same command resumes it."""
    digest = hashlib.sha256("\n".join(str(p.resolve()) for p in paths).encode()).hexdigest()[:16]
    return (out or Path.cwd()) / f".segjob-batch-{digest}.json"


def print_batch(batch: Batch, as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in batch.to_json_dict().items() if k != "uploads"}))
        return
    counts = ", ".join(f"{status.value} {n}" for status, n in sorted(batch.counts.items()))
    line = f"{batch.batch_id}  {batch.status.value:<15}  {batch.total} items  {batch.progress:.0%}"
    line += f"  ({counts})" if counts else ""
    if batch.timings and batch.timings.images_per_minute:
        line += f"  {batch.timings.images_per_minute:.0f} images/min"
    if batch.webhook:
        line += f"  webhook {batch.webhook.status.value}"
    print(line)


def download(client: Any, batch: Batch, out: Path, every_result: bool) -> list[ManifestLine]:
    """manifest.jsonl and coco.json to ``out``; with ``every_result`` each succeeded item's
    files to ``out/<jobId>/`` too."""
    files = client.batch_result_files(batch)
    out.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (out / name).write_bytes(body)
    lines = [ManifestLine.model_validate_json(line) for line in files["manifest.jsonl"].decode().splitlines()]
    if every_result:
        for line in lines:
            if line.status is JobStatus.SUCCEEDED:
                job = client.get_job(line.job_id)
                save_result_files(job.job_id, client.result_files(job), out)
    return lines


def cmd_batch_submit(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415 - only this command draws a progress bar

    from segjob.cli import EXIT_JOB_FAILED, EXIT_OK, _check_out_dir, _client, _metadata, _params  # noqa: PLC0415

    client = _client(args)
    paths = expand(args.sources)
    if args.out and not args.wait:
        raise SegjobError("--out needs --wait", "Usage")
    _check_out_dir(args.out)
    quiet = args.json or (not sys.stderr.isatty() and not args.progress)
    bar = tqdm(total=len(paths), desc="upload", unit="img", disable=quiet, file=sys.stderr)

    def uploaded(done: int, total: int) -> None:
        bar.update(done - bar.n)

    started = time.monotonic()
    batch = submit_batch(
        client,
        paths,
        state_file=state_file(args.out, paths),
        params=_params(args),
        webhook_url=args.webhook,
        metadata=_metadata(args.metadata),
        concurrency=args.concurrency,
        on_upload=uploaded,
    )
    if args.wait:
        bar.set_description("run")  # the same bar: items finished
        bar.reset(total=batch.total)

        def progress(current: Batch) -> None:
            terminal = sum(n for status, n in current.counts.items() if status.terminal)
            bar.update(terminal - bar.n)

        batch = client.wait_batch(batch.batch_id, timeout=args.timeout, on_progress=progress)
    bar.close()
    print_batch(batch, args.json)
    if not args.wait:
        return EXIT_OK
    if args.out and batch.results:
        download(client, batch, args.out, args.all)
    if not args.json:
        succeeded = batch.counts.get(JobStatus.SUCCEEDED, 0)
        print(f"{succeeded}/{batch.total} succeeded in {time.monotonic() - started:.1f} s", file=sys.stderr)
    ok = batch.status is BatchStatus.COMPLETED and batch.counts.get(JobStatus.SUCCEEDED, 0) == batch.total
    return EXIT_OK if ok else EXIT_JOB_FAILED


def cmd_batch_status(args: argparse.Namespace) -> int:
    from segjob.cli import EXIT_OK, _client  # noqa: PLC0415

    print_batch(_client(args).get_batch(args.batch_id), args.json)
    return EXIT_OK


def cmd_batch_list(args: argparse.Namespace) -> int:
    from segjob.cli import EXIT_OK, _client  # noqa: PLC0415

    for batch in _client(args).list_batches(args.limit).batches:
        print_batch(batch, args.json)
    return EXIT_OK


def cmd_batch_cancel(args: argparse.Namespace) -> int:
    from segjob.cli import EXIT_OK, _client  # noqa: PLC0415

    print_batch(_client(args).cancel_batch(args.batch_id), args.json)
    return EXIT_OK


def cmd_batch_results(args: argparse.Namespace) -> int:
    from segjob.cli import EXIT_JOB_FAILED, EXIT_OK, _check_out_dir, _client  # noqa: PLC0415

    client = _client(args)
    batch = client.get_batch(args.batch_id)
    if not batch_finished(batch) or not batch.results:
        raise SegjobError(f"batch {batch.batch_id} is {batch.status.value}: no results yet", "NoResults")
    _check_out_dir(args.out)
    lines = download(client, batch, args.out, args.all)
    failed = [line for line in lines if line.status is not JobStatus.SUCCEEDED]
    for line in failed:
        reason = f"{line.error.code}: {line.error.message}" if line.error else line.status.value
        print(f"{line.name}: {reason}", file=sys.stderr)
    print(
        f"{args.out}/manifest.jsonl, {args.out}/coco.json ({len(lines) - len(failed)}/{len(lines)} succeeded)"
    )
    return EXIT_JOB_FAILED if failed else EXIT_OK


def add_batch_commands(sub: Any, add_job_options: Any) -> None:
    """The ``batch`` command and its subcommands, under the CLI's subparsers ``sub``."""
    batch = sub.add_parser("batch", help="many images as one batch: submit, status, list, cancel, results")
    commands = batch.add_subparsers(dest="batch_command", required=True)

    submit = commands.add_parser(
        "submit", help="one batch of the images in DIR / GLOB / FILE (re-run to resume an interrupted upload)"
    )
    submit.add_argument("sources", nargs="+", metavar="DIR_OR_GLOB")
    submit.add_argument("--webhook", help="https URL to receive the one batch.completed webhook")
    submit.add_argument("--wait", action="store_true", help="wait until every item is finished")
    submit.add_argument("--out", type=Path, help="with --wait: write manifest.jsonl and coco.json to OUT/")
    submit.add_argument("--all", action="store_true", help="with --out: every item's result files too")
    submit.add_argument("--timeout", type=float, default=24 * 3600.0, help="seconds to wait (default a day)")
    submit.add_argument("--concurrency", type=int, default=8, help="parallel uploads (default 8)")
    add_job_options(submit)
    submit.add_argument(
        "--progress", action="store_true", help="the progress bar even when stderr is no terminal"
    )
    submit.add_argument("--json", action="store_true", help="the batch as JSON")
    submit.set_defaults(func=cmd_batch_submit)

    for name, func, help_text in (
        ("status", cmd_batch_status, "show a batch: counts, progress, timings"),
        ("cancel", cmd_batch_cancel, "cancel a batch: items not started never run"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("batch_id")
        command.add_argument("--json", action="store_true")
        command.set_defaults(func=func)

    listing = commands.add_parser("list", help="your batches, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_batch_list)

    results = commands.add_parser("results", help="download a finished batch's manifest.jsonl and coco.json")
    results.add_argument("batch_id")
    results.add_argument("--out", type=Path, required=True)
    results.add_argument("--all", action="store_true", help="every item's result files too, in OUT/<jobId>/")
    results.set_defaults(func=cmd_batch_results)

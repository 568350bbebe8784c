"""`make demo`: the whole job flow on this machine, through the same template, state
machine and handlers that `sam deploy` ships.

Starts local mode and a webhook receiver, submits the sample images over the HTTP API,
uploads each with its presigned POST, waits for the signed webhook and also polls,
downloads result.json and annotated.jpg to out/<jobId>/, prints a table and stops
everything it started. Exit status 0 only if every job succeeded with a verified webhook,
and found shapes in each sample (an image of your own may rightly have none).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from local.runtime import LocalRuntime
from segjob import Client
from segjob.webhooks import WebhookReceiver
from segjob_core.models import Job, JobStatus, WebhookEvent

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("download", "decode", "inference", "postprocess", "annotate", "encode", "upload", "total")


def run_job(client: Client, receiver: WebhookReceiver, image: Path, out: Path) -> tuple[Job, WebhookEvent]:
    created = client.submit(image, webhook_url=receiver.url, metadata={"source": "make demo"})
    event = receiver.wait_for(created.job_id, timeout=300)
    job = client.wait(created.job_id, timeout=60)  # polling sees the same terminal state
    if job.status is JobStatus.SUCCEEDED:
        client.download_results(job, out)
    return job, event


def print_table(rows: list[tuple[Path, Job, WebhookEvent]]) -> None:
    header = ["job", "image", "status", "detections", "webhook", *[f"{s} ms" for s in STAGES]]
    lines = [header]
    for image, job, event in rows:
        timings = job.result.timings if job.result else {}
        lines.append(
            [
                job.job_id,
                image.name,
                job.status.value,
                str(job.result.summary.count) if job.result else "-",
                f"{event.type.value} (verified)",
                *[f"{timings.get(stage, 0):.1f}" for stage in STAGES],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="*", type=Path, help="images to submit (default: samples/*.jpg)")
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    args = parser.parse_args()
    images = args.images or sorted((ROOT / "samples").glob("*.jpg"))

    started = time.monotonic()
    print("starting local mode (moto server, state machine, functions, HTTP API) ...", flush=True)
    with LocalRuntime() as runtime, WebhookReceiver(secret=runtime.webhook_secret) as receiver:
        print(f"local mode ready in {time.monotonic() - started:.1f} s: API {runtime.api_url}", flush=True)
        client = Client(runtime.api_url)
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {image: pool.submit(run_job, client, receiver, image, args.out) for image in images}
            rows = [(image, *future.result()) for image, future in futures.items()]
    print()
    print_table(rows)
    print(
        f"\nresults in {args.out}/<jobId>/ (result.json, annotated.jpg); {time.monotonic() - started:.1f} s in all"
    )

    problems = []
    for image, job, event in rows:
        if job.status is not JobStatus.SUCCEEDED:
            problems.append(f"{image.name}: {job.status.value} {job.error.code if job.error else ''}")
        elif not args.images and (not job.result or job.result.summary.count == 0):
            problems.append(f"{image.name}: no detections")  # every sample shows shapes
        if event.data.status != job.status:
            problems.append(f"{image.name}: webhook says {event.data.status}, API says {job.status}")
    for problem in problems:
        print(f"demo problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

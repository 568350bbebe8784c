"""Benchmark whole jobs through local mode: what a client waits for, stage by stage.

Starts local mode (the same template, state machine and handlers as `make demo`) and a
verifying webhook receiver, then

1. runs jobs one after another (latency): POST /jobs, the presigned upload, and from the
   end of the upload to the signed webhook (S3 event -> EventBridge shape -> StartJob ->
   Segment -> MarkSucceeded -> Notify), with the segment function's own total;
2. submits a batch at once (throughput): jobs per minute until the last webhook;
3. images per minute of a batch (POST /batches: one request, a Distributed Map over the
   items) against the same images as single jobs (8 uploads at a time, each followed to its
   end), both from the first request to the last result.

Local mode runs every service on this machine, so the numbers are this machine's (and
moto's); on AWS the control-plane hops differ, the segment stages are the ones to compare.

    python bench/job_bench.py                    # 10 sequential jobs, a batch of 10
    python bench/job_bench.py --runs 30 --batch 20 --image samples/shapes-2.jpg
    python bench/job_bench.py --runs 0 --batch 0 --batch-images 200   # only the batch comparison
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stats import percentile, print_table  # noqa: E402 - bench/stats.py, beside this script

from local.runtime import LocalRuntime  # noqa: E402
from segjob import Client  # noqa: E402
from segjob.batches import submit_batch  # noqa: E402
from segjob.webhooks import WebhookReceiver  # noqa: E402
from segjob_core.models import EventType, JobStatus  # noqa: E402

JOB_TIMEOUT = 300.0


def one_job(client: Client, receiver: WebhookReceiver, image: Path) -> dict[str, float]:
    started = time.perf_counter()
    created = client.create_job(
        filename=image.name, content_length=image.stat().st_size, webhook_url=receiver.url
    )
    created_at = time.perf_counter()
    client.upload(created, image)
    uploaded_at = time.perf_counter()
    event = receiver.wait_for(created.job_id, timeout=JOB_TIMEOUT)
    done_at = time.perf_counter()
    if event.type is not EventType.SUCCEEDED or event.data.result is None:
        raise RuntimeError(f"job {created.job_id} ended {event.type}: {event.data.error}")
    segment_ms = event.data.result.timings["total"]
    upload_to_webhook = (done_at - uploaded_at) * 1000
    return {
        "POST /jobs": (created_at - started) * 1000,
        "upload": (uploaded_at - created_at) * 1000,
        "upload -> webhook": upload_to_webhook,
        "  segment function": segment_ms,
        "  orchestration": upload_to_webhook - segment_ms,
        "submit -> webhook": (done_at - started) * 1000,
    }


UPLOADS_AT_ONCE = 8  # as `segjob submit --concurrency 8` / `segjob batch submit`


def as_single_jobs(client: Client, images: list[Path]) -> tuple[float, list[float]]:
    """Seconds from the first request to the last job's end; each job's segment ms."""

    def run(image: Path) -> float:
        job = client.wait(client.submit(image, wait_for_start=0).job_id, timeout=JOB_TIMEOUT)
        if job.status is not JobStatus.SUCCEEDED or job.result is None:
            raise RuntimeError(f"job {job.job_id} ended {job.status}: {job.error}")
        return job.result.timings["total"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=UPLOADS_AT_ONCE) as pool:
        segment = list(pool.map(run, images))
    return time.perf_counter() - started, segment


def as_batch(client: Client, images: list[Path], state_dir: Path) -> tuple[float, list[float]]:
    started = time.perf_counter()
    batch = submit_batch(
        client, images, state_file=state_dir / "bench-batch.json", concurrency=UPLOADS_AT_ONCE
    )
    batch = client.wait_batch(batch.batch_id, timeout=JOB_TIMEOUT * 10, interval=0.2, max_interval=1.0)
    elapsed = time.perf_counter() - started
    if batch.counts.get(JobStatus.SUCCEEDED) != len(images):
        raise RuntimeError(f"batch {batch.batch_id} ended {batch.status} {batch.counts}")
    jobs = [client.get_job(job_id) for job_id in _job_ids(client, batch.batch_id)]
    return elapsed, [job.result.timings["total"] for job in jobs if job.result]


def _job_ids(client: Client, batch_id: str) -> list[str]:
    from segjob_core.batches import ManifestLine

    manifest = client.batch_result_files(client.get_batch(batch_id))["manifest.jsonl"].decode()
    return [ManifestLine.model_validate_json(line).job_id for line in manifest.splitlines()]


def compare_batch(client: Client, count: int, state_dir: Path) -> None:
    samples = sorted((ROOT / "samples").glob("*.jpg"))
    folder = state_dir / "bench-images"
    folder.mkdir()
    images = []
    for index in range(count):  # distinct files (a batch lists each once), the samples' bytes
        path = folder / f"{index:04d}-{samples[index % len(samples)].name}"
        path.write_bytes(samples[index % len(samples)].read_bytes())
        images.append(path)
    rows = {"single jobs": as_single_jobs(client, images), "one batch": as_batch(client, images, state_dir)}
    print(f"\n{count} images ({', '.join(s.name for s in samples)}), first request to last result")
    print(f"  {'':<14}{'images/min':>11}{'wall s':>8}{'segment median ms':>19}{'p90 ms':>8}")
    for name, (elapsed, segment) in rows.items():
        print(
            f"  {name:<14}{count / elapsed * 60:>11.0f}{elapsed:>8.1f}"
            f"{statistics.median(segment):>19.0f}{percentile(segment, 0.9):>8.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=ROOT / "samples" / "shapes-1.jpg")
    parser.add_argument("--runs", type=int, default=10, help="sequential jobs (after one warm-up job)")
    parser.add_argument("--batch", type=int, default=10, help="jobs submitted at once (0: skip)")
    parser.add_argument(
        "--batch-images",
        type=int,
        default=100,
        help="images of the batch vs single jobs comparison (0: skip)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="segjob-bench-") as state_dir:
        started = time.perf_counter()
        with LocalRuntime(state_dir=state_dir) as runtime:
            ready = runtime.wait_for_functions()
            print(f"local mode ready in {time.perf_counter() - started:.1f} s (functions warm: {ready})")
            client = Client(runtime.api_url)
            with WebhookReceiver(secret=runtime.webhook_secret) as receiver:
                one_job(client, receiver, args.image)  # warm-up: first image size, first connections
                if args.runs:
                    samples = [one_job(client, receiver, args.image) for _ in range(args.runs)]
                    print(
                        f"\n{args.runs} sequential jobs of {args.image.name} ({args.image.stat().st_size // 1024} KiB)"
                    )
                    print_table(
                        {stage: [sample[stage] for sample in samples] for stage in samples[0]},
                        width=22,
                        digits=0,
                    )

                if args.batch:
                    started = time.perf_counter()
                    with ThreadPoolExecutor(max_workers=args.batch) as pool:
                        batch = list(
                            pool.map(lambda _: one_job(client, receiver, args.image), range(args.batch))
                        )
                    elapsed = time.perf_counter() - started
                    latencies = [sample["submit -> webhook"] for sample in batch]
                    print(
                        f"\nbatch of {args.batch} submitted at once: all webhooks in {elapsed:.1f} s "
                        f"({args.batch / elapsed * 60:.0f} jobs/min); submit -> webhook median "
                        f"{statistics.median(latencies):.0f} ms, p90 {percentile(latencies, 0.9):.0f} ms"
                    )
                if args.batch_images:
                    compare_batch(client, args.batch_images, Path(state_dir))


if __name__ == "__main__":
    main()

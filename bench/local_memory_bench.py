"""Memory of local mode's processes over many jobs: is it bounded, and how fast does it grow?

Starts local mode, runs ``--jobs`` whole jobs (create, upload, wait for SUCCEEDED;
``--concurrency`` at a time, with a webhook to a local receiver) and prints the resident
memory (VmRSS) of the moto server and of each function worker every ``--every`` jobs,
then the growth per 1,000 jobs (least squares over the samples after the first).

    python bench/local_memory_bench.py                 # 1,000 jobs
    python bench/local_memory_bench.py --jobs 200 --every 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.runtime import LocalRuntime  # noqa: E402
from segjob import Client  # noqa: E402
from segjob.webhooks import WebhookReceiver  # noqa: E402
from segjob_core.models import JobStatus  # noqa: E402

SAMPLE = ROOT / "samples" / "shapes-1.jpg"


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slope_per_1000(points: list[tuple[int, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return 1000 * sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as state, LocalRuntime(state_dir=state) as runtime:
        runtime.wait_for_functions()
        client = Client(runtime.api_url)
        names = ["moto", *runtime.lambdas.names]
        samples: list[tuple[int, dict[str, float]]] = []

        def sample(done: int) -> None:
            pids = runtime.pids()
            samples.append((done, {name: rss_mb(pids.get(name)) for name in names}))
            row = "  ".join(f"{samples[-1][1][n]:8.0f}" for n in names)
            print(f"{done:6d}  {row}", flush=True)

        print(f"{'jobs':>6}  " + "  ".join(f"{n[:8]:>8}" for n in names) + "   (RSS, MB)")
        started = time.monotonic()
        with WebhookReceiver(secret=runtime.webhook_secret) as receiver:  # the default caller's

            def one_job(_: int) -> JobStatus:
                job = client.submit(SAMPLE, webhook_url=receiver.url)
                return receiver.wait_for(job.job_id, timeout=300).data.status  # no polling delay

            sample(0)
            done = 0
            with ThreadPoolExecutor(args.concurrency) as pool:
                while done < args.jobs:
                    batch = min(args.every, args.jobs - done)
                    statuses = list(pool.map(one_job, range(batch)))
                    if set(statuses) != {JobStatus.SUCCEEDED}:
                        raise SystemExit(f"jobs did not all succeed: {statuses}")
                    done += batch
                    sample(done)
        elapsed = time.monotonic() - started
        later = samples[1:]
        print(f"\n{args.jobs} jobs in {elapsed:.0f} s; growth per 1,000 jobs (after the first {args.every}):")
        for name in names:
            print(f"  {name:16} {slope_per_1000([(d, s[name]) for d, s in later]):+8.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

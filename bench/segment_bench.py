"""Benchmark the segment function's code path against the torch path and a seed-000 baseline.

Three contenders, same weights (the demo model: its .onnx and the .pt it was exported from),
same images, interleaved run by run so that load on the machine hits all alike:

- project:  `segment_image` with the ONNX Runtime `Segmenter` (what the Lambda runs);
- torch:    `segment_image` with Ultralytics' predictor on the .pt (training/torch_segmenter.py,
            what the function ran before);
- baseline: what the seed-000 handler does: Ultralytics predict (fused, inference mode),
            `Results.plot()`, PIL JPEG encode, a detection list with polygons.

It prints warm medians / p90 per contender and their ratio to the baseline, the project's
per-stage times, and cold start (process start to first result, page cache warm) with the
resident memory after it, each in fresh processes; cold start also of the whole function
("handler": app.py's init with Powertools, the X-Ray SDK and botocore, then one invocation,
with the variables Lambda sets), and of both on one vCPU as well (`@1vcpu`: Lambda's default
1769 MB). `--memory` adds peak RSS of one job by
image size (1, 12, 50 MP; JPEG, PNG; retina masks; tiles), and the time of one job on 1 and
2 vCPUs from which the cost per 1,000 images by Lambda memory size is estimated. Figures go
to bench/results/segment.json as well (`--json`).

`--tiles` instead runs the tiling bench: a generated image with shapes larger than a tile
among many small ones (`mixed_scene`), segmented tiled and untiled: median / p90 of each,
and how many of the large and small shapes each finds.

    python bench/segment_bench.py                      # warm + cold start
    python bench/segment_bench.py --memory --runs 30   # + memory and cost (several minutes)
    python bench/segment_bench.py --tiles --runs 10    # tiled vs untiled on large + small objects
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in ("functions/segment", "functions/shared", "training"):
    sys.path.insert(0, str(ROOT / _path))
sys.path.append(str(ROOT))  # local mode's helpers, for the parent only

from stats import percentile, print_table  # noqa: E402 - bench/stats.py, beside this script

MODEL = ROOT / "functions" / "segment" / "model" / "shapes-seg.onnx"
CHECKPOINT = MODEL.with_suffix(".pt")
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
RESULTS = ROOT / "bench" / "results" / "segment.json"
LAMBDA_RESULTS = ROOT / "bench" / "results" / "segment_lambda.json"  # what bench/cost.py reads
CACHE = ROOT / "build" / "bench-images"
STAGES = ("decode", "inference", "postprocess", "annotate", "encode", "total")
CONTENDERS = ("project", "torch", "baseline")
# Cold start also of the whole function: "handler" is app.py's init and one invocation.
COLD_CONTENDERS = (*CONTENDERS, "handler")
MAX_PIXELS = 50_000_000
# AWS Lambda, x86_64, us-east-1 (aws.amazon.com/lambda/pricing): per GB-second and per request.
GB_SECOND_USD = 0.0000166667
REQUEST_USD = 0.20 / 1_000_000
MB_PER_VCPU = 1769  # Lambda gives a full vCPU at 1,769 MB and CPU in proportion to memory
MEMORY_SIZES = (1024, 1536, 1769, 2048, 3008, 3538, 10240)


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# contenders --------------------------------------------------------------------------------


class Contender:
    """Loads once; `run(data)` does one whole job and returns its timings (ms) and count."""

    def __init__(self, name: str, threads: int, params: Any = None, opening: Any = None) -> None:
        from segjob_core.models import JobParams
        from segmentation.service import MemoryStore

        self.name = name
        self.params = params or JobParams()
        self.store = MemoryStore()
        if name == "project":  # as the function's ModelProvider loads it
            from segmentation.runtime import Segmenter
            from segmentation.service import warm_up

            self.model: Any = Segmenter.load(MODEL, threads=threads, warmup=False, opening=opening)
            warm_up(self.model, infer=opening is None)
        elif name == "torch":
            from torch_segmenter import TorchSegmenter

            self.model = TorchSegmenter.load(CHECKPOINT, threads=threads)
        else:
            self.model = load_baseline(threads)

    def run(self, data: bytes, key: str = "input") -> tuple[dict[str, float], int]:
        if self.name == "baseline":
            started = time.perf_counter()
            count = baseline_job(self.model, data)
            return {"total": (time.perf_counter() - started) * 1000}, count
        from segjob_core.models import SegmentRequest
        from segmentation.service import segment_image

        request = SegmentRequest(job_id="job_bench", bucket="bench", key=key, params=self.params)
        self.store.objects[("bench", key)] = data
        outcome = segment_image(request, segmenter=self.model, store=self.store, max_image_pixels=MAX_PIXELS)
        return outcome.timings.to_json_dict(), outcome.summary.count


def load_baseline(threads: int) -> Any:
    import torch_segmenter  # noqa: F401 - Ultralytics env defaults (offline, /tmp)
    from ultralytics import YOLO

    model = YOLO(str(CHECKPOINT))
    model.fuse()
    baseline_job(model, SAMPLE.read_bytes())  # builds the predictor, as the seed's first call
    import torch

    torch.set_num_threads(threads)
    return model


def baseline_job(model: Any, data: bytes) -> int:
    """The seed-000 handler's work: decode, predict, Results.plot(), JPEG via PIL, detection list."""
    import cv2
    import numpy as np
    import torch
    from PIL import Image

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    with torch.inference_mode():
        result = model(image, conf=0.25, iou=0.45, verbose=False)[0]
    plotted = result.plot()
    buffer = io.BytesIO()
    Image.fromarray(cv2.cvtColor(plotted, cv2.COLOR_BGR2RGB)).save(buffer, format="JPEG", quality=85)
    polygons = result.masks.xy if result.masks is not None else []
    detections = [
        {"class": int(c), "confidence": float(p), "bbox": b.tolist(), "polygon": poly.tolist()}
        for c, p, b, poly in zip(
            result.boxes.cls, result.boxes.conf, result.boxes.xyxy, polygons, strict=False
        )
    ]
    return len(detections)


# cold start and memory: each in a fresh process ----------------------------------------------


REPORT = "REPORT "  # the child's report line on stdout (the handler's logs may come before it)


def child(args: argparse.Namespace) -> None:
    """One fresh process: load one contender, run one job, report (JSON on stdout)."""
    if args.cpus:
        os.sched_setaffinity(0, set(range(args.cpus)))
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.child == "handler":
        handler_child(args)
        return
    opening = None
    if args.child == "project":  # as app.py: the model opens on a thread while the rest is imported
        from segmentation.loader import ModelOpening

        opening = ModelOpening(MODEL, threads=threads)
    from segjob_core.models import JobParams

    params = JobParams.model_validate(json.loads(args.params)) if args.params else None
    started = time.perf_counter()
    contender = Contender(args.child, threads=threads, params=params, opening=opening)
    load_ms = (time.perf_counter() - started) * 1000  # imports of the model code and the model's load
    loaded_rss = rss_mb()
    data = Path(args.image).read_bytes()
    timings, count = contender.run(data)
    report: dict[str, Any] = {"first": timings, "count": count, "loadedMb": loaded_rss, "rssMb": rss_mb()}
    report["loadMs"] = load_ms
    report["peakMb"] = rss_mb("VmHWM")
    if args.warm_runs:
        samples = [contender.run(data)[0]["total"] for _ in range(args.warm_runs)]
        report["warm"] = {"median": statistics.median(samples), "p90": percentile(samples, 0.9)}
    print(REPORT + json.dumps(report), flush=True)


class BenchContext:
    """The Lambda context the handler's Powertools decorators read."""

    function_name = "SegmentFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:SegmentFunction"
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 120_000


def handler_child(args: argparse.Namespace) -> None:
    """The whole function as Lambda runs it: app.py's init (Powertools with the X-Ray SDK,
    boto3 clients, the model) and one invocation, with S3 replaced by memory."""
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",  # boto3 clients are made, nothing leaves the process
        POWERTOOLS_METRICS_NAMESPACE="bench",
        POWERTOOLS_LOG_LEVEL="WARNING",
        MODEL_THREADS=str(args.threads or len(os.sched_getaffinity(0))),
        # What Lambda sets, so that Powertools and the X-Ray SDK take their Lambda paths (the
        # SDK's sampler, for one, makes an X-Ray API client outside Lambda: ~0.1 s): active
        # tracing with the sampled trace `spawn` passes (_X_AMZN_TRACE_ID), segments sent to
        # a UDP port where nobody listens.
        LAMBDA_TASK_ROOT=str(ROOT / "functions" / "segment"),
        AWS_LAMBDA_FUNCTION_NAME=BenchContext.function_name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(BenchContext.memory_limit_in_mb),
        AWS_EXECUTION_ENV="AWS_Lambda_python3.12",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
    )
    import app

    from segmentation.service import MemoryStore

    app.store = MemoryStore()
    app.store.objects[("bench", "input")] = Path(args.image).read_bytes()
    loaded_rss = rss_mb()
    outcome = app.lambda_handler({"jobId": "job_bench", "bucket": "bench", "key": "input"}, BenchContext())
    report = {"first": outcome["timings"], "count": outcome["summary"]["count"], "loadedMb": loaded_rss}
    report.update(rssMb=rss_mb(), loadMs=app.models.get().load_ms, peakMb=rss_mb("VmHWM"))
    print(REPORT + json.dumps(report), flush=True)


def spawn(contender: str, image: Path, *, threads: int = 0, cpus: int = 0, **extra: Any) -> dict[str, Any]:
    """Run `child` in a new interpreter; wall time from start to its report is the cold start."""
    command = [
        sys.executable,
        __file__,
        "--child",
        contender,
        "--image",
        str(image),
        "--threads",
        str(threads),
    ]
    command += ["--cpus", str(cpus)]
    if extra.get("params"):
        command += ["--params", json.dumps(extra["params"])]
    if extra.get("warm_runs"):
        command += ["--warm-runs", str(extra["warm_runs"])]
    env = None
    if contender == "handler":  # a traced invocation's header, as Lambda gives it (local mode's)
        from local.lambda_runtime import new_trace_header

        env = {**os.environ, "_X_AMZN_TRACE_ID": new_trace_header()}
    started = time.perf_counter()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        line = ""
        for line in process.stdout or ():  # until the report: the first result is done
            if line.startswith(REPORT):
                break
        wall = (time.perf_counter() - started) * 1000  # not counting the interpreter's exit
        _, errors = process.communicate(timeout=900)
    if process.returncode != 0 or not line.startswith(REPORT):
        raise RuntimeError(f"{contender} on {image.name} failed:\n{errors[-2000:]}")
    report = json.loads(line.removeprefix(REPORT))
    report["coldMs"] = wall
    return report


def cold_start(runs: int) -> dict[str, dict[str, float]]:
    # The function's code compiled as in the image (its Dockerfile compiles it: /var/task is
    # read-only), not from source at each start as under PYTHONDONTWRITEBYTECODE.
    compileall.compile_dir(ROOT / "functions", quiet=1)
    spawn("project", SAMPLE)  # warms the page cache for all (shared libraries, model files)
    spawn("torch", SAMPLE)
    spawn("handler", SAMPLE)
    # Each on all vCPUs; the project and the whole function also on one, as Lambda runs them
    # at the default SegmentMemorySize (1769 MB: one vCPU, so the model's opening no longer
    # overlaps the imports on another core).
    rows = [(name, name, 0) for name in COLD_CONTENDERS]
    rows += [(f"{name}@1vcpu", name, 1) for name in ("project", "handler")]
    found: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in rows}
    for run in range(runs):
        turn = run % len(rows)
        for label, name, cpus in rows[turn:] + rows[:turn]:
            found[label].append(spawn(name, SAMPLE, threads=cpus, cpus=cpus))
    summary = {}
    for name, reports in found.items():
        summary[name] = {
            "coldMedianMs": statistics.median(r["coldMs"] for r in reports),
            "coldP90Ms": percentile([r["coldMs"] for r in reports], 0.9),
            "loadMedianMs": statistics.median(r["loadMs"] for r in reports),
            "firstJobMedianMs": statistics.median(r["first"]["total"] for r in reports),
            "rssAfterFirstResultMb": statistics.median(r["rssMb"] for r in reports),
        }
    return summary


# images -------------------------------------------------------------------------------------


def scene(width: int, height: int, fmt: str) -> Path:
    """A synthetic photo of small shapes (training/synth.py), cached under build/."""
    path = CACHE / f"scene-{width}x{height}.{fmt}"
    if not path.is_file():
        import cv2
        import numpy as np
        from synth import make_scene

        CACHE.mkdir(parents=True, exist_ok=True)
        pixels, _ = make_scene(1, (height, width), max(4, width * height // 400_000))
        options = [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
        if fmt == "alpha.png":  # a transparent margin around the picture: the alpha blend path
            alpha = np.zeros(pixels.shape[:2], np.uint8)
            alpha[height // 10 : -height // 10, width // 10 : -width // 10] = 255
            pixels = np.dstack([pixels, alpha])
        cv2.imwrite(str(path), pixels, options)
    return path


# The tiling bench: 3840x2560, 4 shapes wider than a 640 px tile, 40 small ones (the training
# images' scale); tiles of 640 px at the model's 320 (40 tiles, with the default overlap).
# The large ones are circles and rectangles: shrunk 12x for the whole-image pass, the demo
# model takes large triangles for stars (untiled as well), which is the model, not the merge.
MIXED_SIZE = (2560, 3840)  # (h, w)
MIXED_GROUPS = [(4, (330.0, 420.0)), (40, (30.0, 60.0))]
MIXED_CLASSES: list[tuple[int, ...] | None] = [(0, 2), None]
MIXED_TILE = 640


def mixed_scene() -> tuple[Path, list[tuple[int, list[float]]], int]:
    """The tiling bench's image (deterministic, cached under build/), its true (class, box)
    per shape, and how many of them are the large ones (listed first)."""
    from synth import make_mixed_scene

    pixels, instances = make_mixed_scene(5, MIXED_SIZE, MIXED_GROUPS, MIXED_CLASSES)
    import cv2

    path = CACHE / f"mixed-{MIXED_SIZE[1]}x{MIXED_SIZE[0]}.jpg"  # written each time: never stale
    CACHE.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    truth = [
        (i.class_id, [*i.polygon.min(axis=0).tolist(), *i.polygon.max(axis=0).tolist()]) for i in instances
    ]
    return path, truth, MIXED_GROUPS[0][0]


def box_iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def tiles(runs: int, threads: int) -> dict[str, Any]:
    """Tiled vs untiled on the mixed scene: times, and found / expected (IoU > 0.6, same class)."""
    from segjob_core.models import JobParams, ResultDocument

    path, truth, large = mixed_scene()
    data = path.read_bytes()
    cases = {"untiled": JobParams(), "tiled": JobParams(tile_size=MIXED_TILE)}
    contenders = {name: Contender("project", threads, params) for name, params in cases.items()}
    found: dict[str, tuple[int, int, int]] = {}
    for name, contender in contenders.items():  # the first run: not timed, its detections counted
        contender.run(data)
        document = ResultDocument.model_validate_json(
            contender.store.objects[("bench", "results/job_bench/result.json")]
        )
        hits = [
            any(d.class_id == cls and box_iou(d.bbox, box) > 0.6 for d in document.detections)
            for cls, box in truth
        ]
        found[name] = (sum(hits[:large]), sum(hits[large:]), document.summary.count)
    totals: dict[str, list[float]] = {name: [] for name in cases}
    for run in range(runs):
        for name in list(cases)[run % 2 :] + list(cases)[: run % 2]:
            totals[name].append(contenders[name].run(data)[0]["total"])
    print(
        f"\ntiling: {path.name} ({len(data) / 1024:.0f} KiB), {large} shapes larger than a {MIXED_TILE} px tile, "
        f"{len(truth) - large} small; {threads} threads, {runs} runs interleaved"
    )
    print(
        f"  {'job':<10}{'median ms':>11}{'p90 ms':>9}{'large found':>13}{'small found':>13}{'detections':>12}"
    )
    results: dict[str, Any] = {}
    for name in cases:
        big, small, count = found[name]
        median, p90 = statistics.median(totals[name]), percentile(totals[name], 0.9)
        print(
            f"  {name:<10}{median:>11.0f}{p90:>9.0f}{f'{big}/{large}':>13}{f'{small}/{len(truth) - large}':>13}{count:>12}"
        )
        results[name] = {
            "medianMs": round(median, 1),
            "p90Ms": round(p90, 1),
            "largeFound": big,
            "smallFound": small,
            "largeExpected": large,
            "smallExpected": len(truth) - large,
            "detections": count,
        }
    return results


def default_images() -> list[Path]:
    import ultralytics

    return [SAMPLE, Path(ultralytics.__file__).parent / "assets" / "bus.jpg"]


# main ---------------------------------------------------------------------------------------


def warm(images: list[Path], runs: int, threads: int) -> dict[str, Any]:
    contenders = {name: Contender(name, threads) for name in CONTENDERS}
    results: dict[str, Any] = {}
    for image in images:
        data = image.read_bytes()
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
        counts = {name: contender.run(data)[1] for name, contender in contenders.items()}  # first: not warm
        for run in range(runs):
            order = CONTENDERS[run % 3 :] + CONTENDERS[: run % 3]
            for name in order:
                samples[name].append(contenders[name].run(data)[0])
        totals = {name: [s["total"] for s in samples[name]] for name in CONTENDERS}
        base = statistics.median(totals["baseline"])
        print(f"\n{image.name}: {len(data) / 1024:.0f} KiB, detections {counts}")
        print(f"  {'contender':<12}{'median ms':>11}{'p90 ms':>9}{'x baseline':>12}")
        for name in CONTENDERS:
            median = statistics.median(totals[name])
            print(f"  {name:<12}{median:>11.1f}{percentile(totals[name], 0.9):>9.1f}{median / base:>12.2f}")
        print("  project by stage:")
        print_table({stage: [s.get(stage, 0.0) for s in samples["project"]] for stage in STAGES})
        results[image.name] = {
            name: {
                "medianMs": round(statistics.median(totals[name]), 2),
                "p90Ms": round(percentile(totals[name], 0.9), 2),
                "detections": counts[name],
            }
            for name in CONTENDERS
        }
        results[image.name]["projectStages"] = {
            stage: round(statistics.median(s.get(stage, 0.0) for s in samples["project"]), 2)
            for stage in STAGES
        }
    return results


MEMORY_CASES = [  # (label, width, height, format, params)
    ("1 MP JPEG", 1155, 866, "jpg", {}),
    ("12 MP JPEG", 4000, 3000, "jpg", {}),
    ("12 MP PNG", 4000, 3000, "png", {}),
    ("50 MP JPEG", 8660, 5773, "jpg", {}),
    ("50 MP PNG", 8660, 5773, "png", {}),
    ("50 MP PNG with alpha", 8660, 5773, "alpha.png", {}),
    ("50 MP JPEG, retinaMasks", 8660, 5773, "jpg", {"retinaMasks": True}),
    ("12 MP JPEG, tiles 640", 4000, 3000, "jpg", {"tileSize": 640}),
    ("50 MP PNG, tiles 640", 8660, 5773, "png", {"tileSize": 640}),
]


def memory() -> list[dict[str, Any]]:
    rows = []
    print(f"\npeak RSS of one job in a fresh process (project, {len(os.sched_getaffinity(0))} vCPUs)")
    print(f"  {'image':<26}{'detections':>11}{'loaded MB':>11}{'peak MB':>9}{'job ms':>9}")
    for label, width, height, fmt, params in MEMORY_CASES:
        report = spawn("project", scene(width, height, fmt), params=params)
        rows.append(
            {
                "image": label,
                "pixels": width * height,
                "detections": report["count"],
                "loadedMb": round(report["loadedMb"]),
                "peakMb": round(report["peakMb"]),
                "jobMs": round(report["first"]["total"]),
            }
        )
        print(
            f"  {label:<26}{report['count']:>11}{report['loadedMb']:>11.0f}{report['peakMb']:>9.0f}"
            f"{report['first']['total']:>9.0f}"
        )
    return rows


def lambda_seconds(memory_mb: int, one_vcpu_ms: float, two_vcpu_ms: float) -> float:
    """Estimated duration at a Lambda memory size from times measured on 1 and 2 vCPUs: below
    one vCPU the CPU share scales the 1-vCPU time; between 1 and 2 vCPUs interpolated; above
    2, the 2-vCPU time (more cores were not measured: a conservative estimate)."""
    vcpus = memory_mb / MB_PER_VCPU
    if vcpus <= 1:
        return one_vcpu_ms / vcpus / 1000
    return (one_vcpu_ms + (two_vcpu_ms - one_vcpu_ms) * (min(vcpus, 2.0) - 1)) / 1000


def cost(runs: int) -> dict[str, Any]:
    cases: dict[str, tuple[Path, dict[str, Any]]] = {
        "shapes-1.jpg (960x640)": (SAMPLE, {}),
        "12 MP JPEG": (scene(4000, 3000, "jpg"), {}),
    }
    table: dict[str, Any] = {}
    print("\ncost per 1,000 images by Lambda memory size (x86_64; duration estimated from 1 and 2 vCPUs)")
    for label, (image, params) in cases.items():
        one_warm = spawn("project", image, threads=1, cpus=1, params=params, warm_runs=runs)["warm"]
        two_warm = spawn("project", image, threads=2, cpus=2, params=params, warm_runs=runs)["warm"]
        one, two = one_warm["median"], two_warm["median"]
        rows = []
        for size in MEMORY_SIZES:
            seconds = lambda_seconds(size, one, two)
            usd = 1000 * (seconds * size / 1024 * GB_SECOND_USD + REQUEST_USD)
            rows.append({"memoryMb": size, "seconds": round(seconds, 4), "usdPer1000": round(usd, 5)})
        table[label] = {
            "oneVcpuMs": round(one, 1),
            "oneVcpuP90Ms": round(one_warm["p90"], 1),
            "twoVcpuMs": round(two, 1),
            "twoVcpuP90Ms": round(two_warm["p90"], 1),
            "bySize": rows,
        }
        print(f"  {label}: {one:.0f} ms on 1 vCPU, {two:.0f} ms on 2")
        for row in rows:
            print(f"    {row['memoryMb']:>6} MB  {row['seconds'] * 1000:>7.0f} ms  ${row['usdPer1000']:.4f}")
    return {"gbSecondUsd": GB_SECOND_USD, "requestUsd": REQUEST_USD, "images": table}


def write_lambda_figures(figures: dict[str, Any], path: Path = LAMBDA_RESULTS) -> None:
    """bench/cost.py's input: the segment function's time by Lambda memory size, where measured
    (1 and 2 vCPUs stand for 1769 and 3538 MB), with its init time and memory."""
    sample = figures["cost"]["images"]["shapes-1.jpg (960x640)"]
    cold = figures["coldStart"]["project"]
    init_ms = round(cold["coldMedianMs"] - cold["firstJobMedianMs"])
    entry = {"init_ms": init_ms, "max_rss_mb": round(cold["rssAfterFirstResultMb"])}
    document = {
        "measured": time.strftime("%Y-%m-%d"),
        "source": "bench/segment_bench.py --memory: onnxruntime backend, demo model at 320 px, "
        "samples/shapes-1.jpg, pinned to 1 and 2 vCPUs, in-memory store (no S3 time)",
        "image": "samples/shapes-1.jpg",
        "by_memory_mb": {
            str(MB_PER_VCPU): {
                "vcpus": 1,
                "median_ms": sample["oneVcpuMs"],
                "p90_ms": sample["oneVcpuP90Ms"],
                **entry,
            },
            str(2 * MB_PER_VCPU): {
                "vcpus": 2,
                "median_ms": sample["twoVcpuMs"],
                "p90_ms": sample["twoVcpuP90Ms"],
                **entry,
            },
        },
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="warm runs per image and contender")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="0: one per vCPU")
    parser.add_argument("--images", type=Path, nargs="*", help="default: samples/shapes-1.jpg and bus.jpg")
    parser.add_argument("--memory", action="store_true", help="peak RSS by image size, and cost")
    parser.add_argument("--tiles", action="store_true", help="only the tiling bench: tiled vs untiled")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the figures go")
    parser.add_argument("--child", choices=COLD_CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--image", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--cpus", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--warm-runs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    threads = args.threads or len(os.sched_getaffinity(0))
    if args.tiles:
        write_figures(args.json, {"tiles": tiles(args.runs, threads)})
        return
    print(f"{MODEL.name} vs {CHECKPOINT.name}, {threads} threads on {len(os.sched_getaffinity(0))} vCPUs, "
          f"{platform.processor() or platform.machine()}, {args.runs} warm runs interleaved")  # fmt: skip
    figures: dict[str, Any] = {"machine": {"vcpus": len(os.sched_getaffinity(0)), "arch": platform.machine()}}
    figures["coldStart"] = cold_start(args.cold_runs)
    print("\ncold start: process start to first result (shapes-1.jpg), fresh processes, page cache warm")
    base = figures["coldStart"]["baseline"]["coldMedianMs"]
    print(
        f"  {'contender':<16}{'median ms':>11}{'p90 ms':>9}{'x baseline':>12}{'load ms':>9}{'job ms':>8}{'RSS MB':>8}"
    )
    for name, row in figures["coldStart"].items():
        print(
            f"  {name:<16}{row['coldMedianMs']:>11.0f}{row['coldP90Ms']:>9.0f}{row['coldMedianMs'] / base:>12.2f}"
            f"{row['loadMedianMs']:>9.0f}{row['firstJobMedianMs']:>8.0f}{row['rssAfterFirstResultMb']:>8.0f}"
        )
    figures["warm"] = warm(args.images or default_images(), args.runs, threads)
    if args.memory:
        figures["memory"] = memory()
        figures["cost"] = cost(args.runs)
        write_lambda_figures(figures)
    write_figures(args.json, figures)


def write_figures(path: Path, figures: dict[str, Any]) -> None:
    """Merge `figures` into the JSON at `path` (other runs' figures stay)."""
    previous = json.loads(path.read_text()) if path.is_file() else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**previous, **figures}, indent=2) + "\n")
    print(f"\nfigures written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()

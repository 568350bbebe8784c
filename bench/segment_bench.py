"""Benchmark the segment function's job logic on this machine: per-stage medians and p90.

Runs the real code path (segmentation.service.segment_image) with an in-memory object
store instead of S3, so download/upload are ~0 and the other stages are what Lambda pays.
Cold start is reported as import (torch + Ultralytics) and model load (incl. warm-up).

    python bench/segment_bench.py                         # demo model, bus.jpg + samples/shapes-1.jpg
    python bench/segment_bench.py --model best.pt --imgsz 640 --threads 2 --runs 50
    python bench/segment_bench.py --scene 2560 --tile-size 512   # tiled, on a large synthetic image
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions" / "segment"))
sys.path.insert(0, str(ROOT / "functions" / "shared"))
sys.path.insert(0, str(ROOT / "training"))

from stats import print_table  # noqa: E402 - bench/stats.py, beside this script

import segmentation  # noqa: E402,F401 - Ultralytics env defaults (offline, /tmp) before its import

DEFAULT_MODEL = ROOT / "functions" / "segment" / "model" / "shapes-seg.pt"
DEMO_IMAGES = ROOT / "samples"
STAGES = ("decode", "inference", "postprocess", "annotate", "encode", "total")


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self.objects[(bucket, key)]

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = body


def default_images() -> list[Path]:
    import ultralytics

    images = [Path(ultralytics.__file__).parent / "assets" / "bus.jpg"]
    demos = sorted(DEMO_IMAGES.glob("*.jpg")) if DEMO_IMAGES.is_dir() else []
    return images + demos[:1]


def scene_jpeg(size: int) -> bytes:
    """A size x size JPEG of 24 small shapes (training/synth.py make_scene): what tiling is for."""
    import cv2
    from synth import make_scene

    pixels, _ = make_scene(1, (size, size), 24)
    return cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="YOLO -seg weights (.pt)")
    parser.add_argument("--imgsz", type=int, default=None, help="default: the model's training size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: one per vCPU")
    parser.add_argument("--runs", type=int, default=20, help="warm runs per image")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--images", type=Path, nargs="*", help="default: bus.jpg and the first demo image")
    parser.add_argument("--no-annotate", action="store_true")
    parser.add_argument("--tile-size", type=int, default=None, help="tiled inference (params.tileSize)")
    parser.add_argument("--tile-overlap", type=float, default=0.2)
    parser.add_argument(
        "--scene", type=int, action="append", default=[], metavar="SIDE",
        help="also a synthetic SIDE x SIDE JPEG of 24 small shapes (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.model.is_file():
        parser.error(f"no model at {args.model}: train one (training/train.py) or pass --model")

    started = time.perf_counter()
    import torch
    import ultralytics  # noqa: F401

    from segjob_core.models import JobParams, SegmentRequest
    from segmentation.segmenter import Segmenter
    from segmentation.service import segment_image
    from segmentation.settings import available_cpus

    import_ms = (time.perf_counter() - started) * 1000
    threads = args.threads or available_cpus()
    segmenter = Segmenter.load(args.model, threads=threads)

    params = JobParams(
        imgsz=args.imgsz,
        conf=args.conf,
        annotate=not args.no_annotate,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
    )
    store = MemoryStore()
    print(
        f"model {args.model.name} ({segmenter.info.sha256[:12]}), "
        f"imgsz {params.for_model(segmenter.info.imgsz).imgsz}, "
        f"tiles {f'{args.tile_size} px, overlap {args.tile_overlap}' if args.tile_size else 'off'}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads on {available_cpus()} vCPUs, "
        f"{args.runs} warm runs per image"
    )
    print(
        f"cold start: import torch+ultralytics {import_ms:.0f} ms, "
        f"model load+fuse+warm-up {segmenter.load_ms:.0f} ms"
    )

    first_job_ms: float | None = None
    inputs = [(path.name, path.read_bytes()) for path in args.images or default_images()]
    inputs += [(f"scene-{side}.jpg", scene_jpeg(side)) for side in args.scene]
    for name, data in inputs:
        request = SegmentRequest(job_id="job_bench", bucket="bench", key=name, params=params)
        store.objects[(request.bucket, request.key)] = data
        samples = []
        for run in range(args.runs + 1):
            outcome = segment_image(request, segmenter=segmenter, store=store, max_image_pixels=50_000_000)
            if run == 0:  # first call with this image size: not a warm sample
                first_job_ms = first_job_ms or outcome.timings.total
                continue
            samples.append(outcome.timings)
        image = outcome.image
        print(
            f"\n{name}: {image.width}x{image.height} {image.format}, {len(data) / 1024:.0f} KiB, "
            f"{outcome.tiles or 'no'} tiles, {outcome.summary.count} detections {outcome.summary.by_class}"
        )
        print_table({stage: [getattr(t, stage) for t in samples] for stage in STAGES})
    if first_job_ms is not None:
        cold = import_ms + segmenter.load_ms + first_job_ms
        print(f"\ncold start to first result (import + load + first job): {cold:.0f} ms")


if __name__ == "__main__":
    main()

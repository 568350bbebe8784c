"""Evaluate the demo model on the held-out set and write its model card.

The held-out set is made by the same generator with another seed (synth.SPLIT_SEEDS
"test"), so no test image was seen in training or validation.

    python training/evaluate.py                  # metrics table + MODEL_CARD.md + eval.json
    python training/evaluate.py --no-card        # metrics only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "functions" / "segment" / "model" / "shapes-seg.pt"
DEFAULT_DATA = ROOT / "model" / "data"
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "build" / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluate(weights: Path, data: Path, imgsz: int) -> dict[str, float]:
    from synth import write_dataset
    from ultralytics import YOLO

    if not (data / "data.yaml").exists():
        write_dataset(data, train=600, val=100, test=200)
    model = YOLO(str(weights))
    metrics = model.val(
        data=str(data / "data.yaml"),
        split="test",
        imgsz=imgsz,
        batch=16,
        device="cpu",
        plots=False,
        verbose=False,
    )
    return {
        "box_map50": round(float(metrics.box.map50), 4),
        "box_map50_95": round(float(metrics.box.map), 4),
        "mask_map50": round(float(metrics.seg.map50), 4),
        "mask_map50_95": round(float(metrics.seg.map), 4),
        "images": len(list((data / "images" / "test").glob("*.jpg"))),
        "imgsz": imgsz,
    }


CARD = """# Demo model: shapes-seg

A YOLOv8n-seg network trained **from scratch** by this project on a synthetic data set of
simple shapes, so that the stack can be demonstrated and tested with a model that really
finds something, with no download. It is not a general-purpose model: use your own
`best.pt` for real work (see the README, "Your own model").

| | |
|---|---|
| file | `functions/segment/model/shapes-seg.pt` ({size_mb:.1f} MB, weights only) |
| sha256 | `{sha}` |
{onnx_row}| architecture | YOLOv8n-seg (`yolov8n-seg.yaml`), {nc} classes |
| classes | {classes} |
| training image size | {train_imgsz}: recorded in the checkpoint; a job without `params.imgsz` runs at it (always passed explicitly) |
| trained | {epochs} epochs in {runs} run(s), {hours:.2f} h on {cpus} CPU cores, batch {batch}, {train_images} images |
| data | `training/synth.py`: seeds train=1, val=2, held-out test=3; images 288 to 480 px |

## Held-out metrics ({images} images, seed 3)

| predict imgsz | box mAP50 | box mAP50-95 | mask mAP50 | mask mAP50-95 |
|---|---|---|---|---|
{metric_rows}

At its training size (what a job gets by default) and at 640, twice the scale: the held-out
images are 288 to 480 px, so at 640 every shape is upscaled beyond anything seen in training.
A job that sets `imgsz` should set it near the model's training size, scaled by how large
the objects are in its images.

Re-run: `make eval` (= `python training/evaluate.py`), which regenerates the held-out set
if needed and rewrites this card.

## How it was trained

```
python training/train.py --epochs N            # continues from the committed weights
python training/train.py --epochs N --scratch  # starts again from yolov8n-seg.yaml
```

Runs (from `training_log.json`):

{run_table}
"""


def onnx_row(weights: Path) -> str:
    """The card's row of the ONNX export the function runs (written by training/export.py)."""
    from export import card_row

    record = weights.with_suffix(".export.json")
    return card_row(json.loads(record.read_text())) if record.is_file() else ""


def write_card(weights: Path, results: list[dict[str, float]]) -> Path:
    import torch

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    names = checkpoint["model"].names
    log = json.loads(weights.with_name("training_log.json").read_text())
    runs = log["runs"]
    run_table = "| finished | from | epochs | imgsz | seconds |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {r['finished']} | {r['from']} | {r['epochs']} | {r['imgsz']} | {r['seconds']} |" for r in runs
    )
    card = CARD.format(
        size_mb=weights.stat().st_size / 1e6,
        sha=sha256(weights),
        nc=len(names),
        classes=", ".join(f"{i} `{n}`" for i, n in names.items()),
        train_imgsz=runs[-1]["imgsz"],
        images=results[0]["images"],
        metric_rows="\n".join(
            f"| {r['imgsz']} | {r['box_map50']:.3f} | {r['box_map50_95']:.3f} "
            f"| {r['mask_map50']:.3f} | {r['mask_map50_95']:.3f} |"
            for r in results
        ),
        epochs=log["total_epochs"],
        runs=len(runs),
        hours=log["total_seconds"] / 3600,
        cpus=runs[-1]["cpu_count"],
        batch=runs[-1]["batch"],
        train_images=runs[-1]["train_images"],
        run_table=run_table,
        onnx_row=onnx_row(weights),
    )
    path = weights.with_name("MODEL_CARD.md")
    path.write_text(card)
    weights.with_name("eval.json").write_text(json.dumps(results, indent=2) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--imgsz", type=int, nargs="+", default=[320, 640])
    parser.add_argument("--no-card", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    results = [evaluate(args.weights, args.data, imgsz) for imgsz in args.imgsz]
    print(f"{'metric':<14}" + "".join(f"{'imgsz ' + str(r['imgsz']):>12}" for r in results))
    for key in ("box_map50", "box_map50_95", "mask_map50", "mask_map50_95", "images"):
        print(f"{key:<14}" + "".join(f"{r[key]:>12}" for r in results))
    print(f"evaluated in {time.monotonic() - started:.0f} s")
    if not args.no_card:
        print(f"wrote {write_card(args.weights, results)}")


if __name__ == "__main__":
    main()

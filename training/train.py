"""Train (or continue training) the demo shapes model: YOLOv8n-seg from scratch, on CPU.

A run may span sessions: every run starts from the weights-only checkpoint committed at
``--weights`` when it exists (or from the architecture yaml the first time), trains
``--epochs`` more epochs, strips the optimizer state and writes the new weights back, with
the cumulative history in ``training_log.json`` beside them.

    python training/train.py --epochs 20            # continue from the committed weights
    python training/train.py --epochs 20 --scratch  # start again from the yaml
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "functions" / "segment" / "model" / "shapes-seg.pt"
DEFAULT_DATA = ROOT / "model" / "data"

# Ultralytics writes settings and may try to fetch fonts; keep it offline and out of $HOME.
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "build" / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=600)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--scratch", action="store_true", help="ignore existing weights, start from the yaml")
    parser.add_argument(
        "--lr0", type=float, default=None, help="initial learning rate (default: Ultralytics')"
    )
    args = parser.parse_args()

    from synth import write_dataset

    data_yaml = args.data / "data.yaml"
    if not data_yaml.exists():
        write_dataset(args.data, train=args.train_images, val=100, test=200)

    from ultralytics import YOLO

    resume_from = None if args.scratch or not args.weights.exists() else args.weights
    model = YOLO(str(resume_from) if resume_from else "yolov8n-seg.yaml")
    started = time.monotonic()
    extra = {"lr0": args.lr0} if args.lr0 else {}
    model.train(
        data=str(data_yaml),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        workers=args.workers,
        device="cpu",
        project=str(ROOT / "runs"),
        name="shapes",
        exist_ok=True,
        plots=False,
        amp=False,
        seed=0,
        patience=1000,
        # Light augmentation: the shapes are the task, not the photometric noise.
        hsv_h=0.01,
        hsv_s=0.3,
        hsv_v=0.2,
        degrees=0.0,
        scale=0.3,
        translate=0.1,
        fliplr=0.5,
        mosaic=1.0,
        close_mosaic=max(1, args.epochs // 4),
        verbose=False,
        **extra,
    )
    elapsed = time.monotonic() - started
    best = Path(model.trainer.best)  # stripped of optimizer state by Ultralytics at the end
    args.weights.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, args.weights)

    log_path = args.weights.with_name("training_log.json")
    history = json.loads(log_path.read_text()) if log_path.exists() and resume_from else {"runs": []}
    history["runs"].append(
        {
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "from": "weights" if resume_from else "yolov8n-seg.yaml",
            "epochs": args.epochs,
            "imgsz": args.imgsz,
            "batch": args.batch,
            "train_images": args.train_images,
            "seconds": round(elapsed),
            "cpu_count": os.cpu_count(),
        }
    )
    history["total_epochs"] = sum(r["epochs"] for r in history["runs"])
    history["total_seconds"] = sum(r["seconds"] for r in history["runs"])
    log_path.write_text(json.dumps(history, indent=2) + "\n")
    print(f"wrote {args.weights} ({args.weights.stat().st_size / 1e6:.1f} MB) after {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()

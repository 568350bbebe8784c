"""Train (or continue training) the demo shapes model: YOLOv8n-seg on CPU, then keep it only
if it is at least as good as the committed one.

The data is training/synth.py's recipe (shapes on photographs and textures, hard negatives),
written once under build/data. A run starts from the committed weights (``--weights``), or
from another checkpoint (``--start``, e.g. the weights-only checkpoint a previous session
committed under training/checkpoints/), or from the architecture yaml (``--scratch``), and
trains ``--epochs`` epochs (or for ``--hours``). Run output goes to build/runs/ (outside git).

Then the run's best.pt (by validation fitness) and last.pt, and the committed weights, are
evaluated on the held-out set (training/evaluate.py), each at the size its jobs run at
(export.DEMO_IMGSZ for the candidates, the recorded eval.json's for the committed weights: what
users get before and after); a run's weights replace the committed ones only when they are not
worse on any figure of the bar (``decide``):

    held-out mask mAP50 (class-aware)  new >= committed,
    false positives per held-out image at the default conf  new <= committed,
    false positives per shape-free photo  new <= committed,
    the most detections on any one shape-free photo  new <= committed, and
    the samples' shapes found with the right class  new >= committed, extras  new <= committed.

Of best.pt and last.pt, the one with the higher mAP50 of those that pass is kept (``choose``).
The script prints which it kept; ``--adopt`` replaces the weights without the comparison.
Whatever is kept, the run's last weights (optimizer state stripped, fp16) are written to
``--checkpoint`` so that another session can go on from there: ``--start`` that file.

    python training/train.py --epochs 20                 # from the committed weights
    python training/train.py --hours 1 --start training/checkpoints/shapes-seg-last.pt
    python training/train.py --epochs 20 --scratch       # again from yolov8n-seg.yaml
    python training/train.py --candidate build/runs/shapes/weights/best.pt  # compare only
    python training/train.py --candidate RUN/weights/best.pt --candidate RUN/weights/last.pt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "functions" / "segment" / "model" / "shapes-seg.pt"
DEFAULT_DATA = ROOT / "build" / "data"
DEFAULT_CHECKPOINT = ROOT / "training" / "checkpoints" / "shapes-seg-last.pt"
RUNS = ROOT / "build" / "runs"

# Ultralytics writes settings and may try to fetch fonts; keep it offline and out of $HOME.
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "build" / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")


@dataclass(frozen=True)
class Decision:
    adopt: bool
    reason: str


def decide(new: dict[str, Any], committed: dict[str, Any] | None) -> Decision:
    """Whether the new weights replace the committed ones: only when they are not worse on
    any figure of the issue's bar: held-out mask mAP50 up or equal, false positives per
    held-out image down or equal, false positives per shape-free photo down or equal, no
    shape-free photo with more detections than the committed weights' worst (their "at most
    1 per photo" must not be lost to a better mean), and on the samples no fewer shapes
    right and no more extra. A figure that either evaluation lacks (an older eval.json) is
    not compared. With no committed evaluation (no committed weights) the new ones win."""
    if committed is None:
        return Decision(True, "no committed weights to compare with")
    worse = []
    for key, name, higher_is_worse, fmt in _FIGURES:
        a, b = _figure(new, key), _figure(committed, key)
        if a is not None and b is not None and (a > b if higher_is_worse else a < b):
            worse.append(f"{name} {a:{fmt}} {'>' if higher_is_worse else '<'} {b:{fmt}}")
    if worse:
        return Decision(False, "; ".join(worse))
    return Decision(
        True,
        f"held-out mask mAP50 {new['mask_map50']:.3f} >= {committed['mask_map50']:.3f} and no other "
        f"figure worse (false positives per shape-free photo {new['fp_per_negative_image']:.2f} <= "
        f"{committed['fp_per_negative_image']:.2f})",
    )


# The figures ``decide`` compares: (path in the evaluation, name, whether a
# higher value is worse, format).
_FIGURES = (
    ("mask_map50", "held-out mask mAP50", False, ".3f"),
    ("heldout.false_positives_per_image", "false positives per held-out image", True, ".2f"),
    ("fp_per_negative_image", "false positives per shape-free photo", True, ".2f"),
    ("negatives.max_per_image", "most detections on one shape-free photo", True, "d"),
    ("samples.right", "sample shapes found with the right class", False, "d"),
    ("samples.extra", "extra detections on the samples", True, "d"),
)


def _figure(result: dict[str, Any], path: str) -> float | None:
    value: Any = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def choose(
    candidates: dict[str, dict[str, Any]], committed: dict[str, Any] | None
) -> tuple[str | None, Decision]:
    """Which of a run's weights (by label: its best.pt by validation fitness, its last.pt)
    replaces the committed ones: of those that ``decide`` lets, the one with the highest
    held-out mask mAP50 (then the fewest false positives per shape-free photo). Validation
    fitness alone is not the card's criteria: a run's best.pt can lose a photo's at-most-1
    that its last.pt keeps. None when neither may."""
    decisions = {label: decide(result, committed) for label, result in candidates.items()}
    passing = [label for label, decision in decisions.items() if decision.adopt]
    if not passing:
        return None, Decision(False, "; ".join(f"{label}: {d.reason}" for label, d in decisions.items()))
    label = max(
        passing,
        key=lambda k: (candidates[k]["mask_map50"], -candidates[k]["fp_per_negative_image"]),
    )
    return label, decisions[label]


def strip_to(source: Path, target: Path) -> Path:
    """Copy a training checkpoint without its optimizer state (fp16 weights, a few MB)."""
    from ultralytics.utils.torch_utils import strip_optimizer

    target.parent.mkdir(parents=True, exist_ok=True)
    strip_optimizer(str(source), str(target))
    return target


def write_checkpoint(last: Path, checkpoint: Path, record: dict[str, Any]) -> Path:
    """The run's last weights for the next session, and beside them the run's record with its
    per-epoch validation figures (Ultralytics' results.csv)."""
    import csv

    strip_to(last, checkpoint)
    results = last.parent.parent / "results.csv"
    epochs = [
        {key.strip(): float(value) for key, value in row.items()}
        for row in (csv.DictReader(results.open()) if results.exists() else [])
    ]
    checkpoint.with_suffix(".json").write_text(json.dumps({"run": record, "epochs": epochs}, indent=2) + "\n")
    return checkpoint


def train(args: argparse.Namespace) -> tuple[Path, Path, dict[str, Any]]:
    """One Ultralytics run; returns its best.pt, its last.pt and the run's log record."""
    from synth import RECIPE_VERSION, TRAIN_IMAGES, VAL_IMAGES, write_dataset
    from ultralytics import YOLO

    demo_recipe = args.data.resolve() == DEFAULT_DATA.resolve()
    if demo_recipe:  # written once
        data_yaml = write_dataset(args.data, train=TRAIN_IMAGES, val=VAL_IMAGES, heldout=0)
    else:  # your own data set in the Ultralytics layout
        data_yaml = args.data / "data.yaml"
    resume = RUNS / args.name / "weights" / "last.pt"
    if args.resume:  # an interrupted run on this machine, with its optimizer state
        model = YOLO(str(resume))
        start = f"resume of {resume.relative_to(ROOT)}"
    elif args.scratch or not (args.start or args.weights).exists():
        model, start = YOLO("yolov8n-seg.yaml"), "yolov8n-seg.yaml"
    else:
        source = args.start or args.weights
        model, start = YOLO(str(source)), str(source.resolve().relative_to(ROOT))
    started = time.monotonic()
    budget = {"time": args.hours} if args.hours else {}
    model.train(
        data=str(data_yaml),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        workers=args.workers,
        device="cpu",
        project=str(RUNS),
        name=args.name,
        exist_ok=True,
        resume=args.resume,
        plots=False,
        amp=False,
        seed=0,
        patience=1000,
        cache="ram",
        warmup_epochs=0.5 if start != "yolov8n-seg.yaml" else 3.0,
        # The recipe already varies size, colour, blur and contrast; augmentation adds
        # scale and flips, and mosaic now and then (it shrinks shapes).
        hsv_h=0.015,
        hsv_s=0.5,
        hsv_v=0.3,
        degrees=0.0,
        scale=0.5,
        translate=0.1,
        fliplr=0.5,
        flipud=0.5,
        mosaic=0.3,
        close_mosaic=1,
        verbose=False,
        **budget,
    )
    elapsed = time.monotonic() - started
    trainer = model.trainer
    assert trainer is not None  # model.train() made it
    weights_dir = Path(trainer.save_dir) / "weights"
    record = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "from": start,
        "epochs": int(trainer.epoch) + 1,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "train_images": TRAIN_IMAGES if demo_recipe else None,
        "recipe": RECIPE_VERSION if demo_recipe else None,
        "data": "synth.make_mixed_image" if demo_recipe else str(args.data),
        "seconds": round(elapsed),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
    }
    return weights_dir / "best.pt", weights_dir / "last.pt", record


def append_log(weights: Path, record: dict[str, Any]) -> None:
    """Add the run to training_log.json beside the weights (the history of the kept model)."""
    log_path = weights.with_name("training_log.json")
    history = json.loads(log_path.read_text()) if log_path.exists() else {"runs": []}
    history["runs"].append(record)
    history["total_epochs"] = sum(r["epochs"] for r in history["runs"])
    history["total_seconds"] = sum(r["seconds"] for r in history["runs"])
    log_path.write_text(json.dumps(history, indent=2) + "\n")


def compare_and_keep(candidates: dict[str, Path], weights: Path, *, adopt: bool) -> str | None:
    """Evaluate the candidates (by label) and the committed weights; replace ``weights`` by
    the candidate that ``choose`` picks (or, with ``adopt``, by the first). Returns its label."""
    from evaluate import evaluate_weights, recorded_evaluation

    results = {label: evaluate_weights(path) for label, path in candidates.items()}
    # The committed eval.json when it is of the committed weights on this held-out set.
    committed = (recorded_evaluation(weights) or evaluate_weights(weights)) if weights.exists() else None
    if adopt:
        label: str | None = next(iter(candidates))
        decision = Decision(True, "--adopt")
    else:
        label, decision = choose(results, committed)
    for name, result in [*results.items(), ("committed", committed)]:
        if result:
            negatives = result.get("negatives", {})
            print(
                f"{name:>9} (imgsz {result.get('imgsz', '?')}): held-out mask mAP50 "
                f"{result['mask_map50']:.3f}, false positives per "
                f"held-out image {_figure(result, 'heldout.false_positives_per_image')}, per "
                f"shape-free photo {result['fp_per_negative_image']:.2f} "
                f"(most on one: {negatives.get('max_per_image', '?')}), samples "
                f"{_figure(result, 'samples.right')} right, {_figure(result, 'samples.extra')} extra"
            )
    if label is not None:
        new = results[label]
        weights.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidates[label], weights)
        new["weights"] = weights.name
        weights.with_name("eval.json").write_text(json.dumps(new, indent=2) + "\n")
        print(
            f"kept the NEW weights, the run's {label} ({decision.reason}): wrote {weights} and its eval.json"
        )
        print("next: `make model` (the ONNX export) and `python training/evaluate.py --card-only` (the card)")
    else:
        where = ", ".join(str(path) for path in candidates.values())
        print(f"kept the COMMITTED weights ({decision.reason}); the new ones stay at {where}")
    return label


def run_candidates(best: Path, last: Path) -> dict[str, Path]:
    """The run's weights worth comparing: best.pt, and last.pt unless it holds the same weights."""
    candidates = {"best.pt": best}
    if last.exists() and not same_weights(best, last):
        candidates["last.pt"] = last
    return candidates


def same_weights(a: Path, b: Path) -> bool:
    """Whether two checkpoints hold the same model tensors. Their bytes differ even when the
    last epoch was the best one: Ultralytics strips the optimizer from each file apart, and
    stamps each with the time."""
    if a.read_bytes() == b.read_bytes():
        return True
    import torch

    try:
        first, second = (torch.load(path, map_location="cpu", weights_only=False) for path in (a, b))
        x, y = first["model"].state_dict(), second["model"].state_dict()
    except Exception:  # not two Ultralytics checkpoints: compare as files
        return False
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hours", type=float, default=None, help="train for this long instead of --epochs")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: every core)"
    )
    parser.add_argument("--name", default="shapes", help="run folder under build/runs/")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the committed weights")
    parser.add_argument("--start", type=Path, default=None, help="start from this .pt instead of --weights")
    parser.add_argument("--scratch", action="store_true", help="start from yolov8n-seg.yaml")
    parser.add_argument("--resume", action="store_true", help="resume build/runs/<name> (same machine)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--adopt", action="store_true", help="keep the new weights without comparing")
    parser.add_argument(
        "--candidate",
        type=Path,
        action="append",
        help="do not train: compare this .pt with --weights (repeat: keep the better one that wins)",
    )
    parser.add_argument("--no-compare", action="store_true", help="train only; leave --weights alone")
    args = parser.parse_args()
    from ultralytics.utils import torch_utils

    # Ultralytics gives torch cpu_count - 1 threads on CPU (its select_device): one of two cores
    # here, which halves the speed of training, and of the comparison's evaluations, on a
    # 2-core machine. --threads (all cores) instead.
    torch_utils.NUM_THREADS = args.threads
    if args.candidate:
        candidates: dict[str, Path] = {}
        for path in args.candidate:  # the same weights once (a run's best.pt is often its last.pt)
            if not any(same_weights(path, seen) for seen in candidates.values()):
                candidates[path.name] = path
        run_record = args.candidate[0].with_name("run.json")  # written by a --no-compare run
        kept = compare_and_keep(candidates, args.weights, adopt=args.adopt)
        if kept is not None and run_record.exists():
            append_log(args.weights, {**json.loads(run_record.read_text()), "kept": kept})
        return
    best, last, record = train(args)
    print(f"trained {record['epochs']} epochs in {record['seconds'] / 60:.1f} min: {best}")
    print(f"checkpoint for the next session: {write_checkpoint(last, args.checkpoint, record)}")
    record_path = best.with_name("run.json")
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    if args.no_compare:
        return
    if args.data.resolve() != DEFAULT_DATA.resolve():  # no held-out evaluation of your data here
        shutil.copyfile(best, args.weights)
        append_log(args.weights, record)
        print(f"wrote {args.weights}")
    elif (kept := compare_and_keep(run_candidates(best, last), args.weights, adopt=args.adopt)) is not None:
        append_log(args.weights, {**record, "kept": kept})


if __name__ == "__main__":
    main()

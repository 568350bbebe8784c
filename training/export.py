"""Export a YOLO -seg checkpoint (.pt) to the ONNX model the segment function runs.

    python training/export.py                        # the demo model: functions/segment/model/shapes-seg.onnx
    python training/export.py --weights best.pt      # your own: best.onnx beside it

The same as `yolo export model=best.pt format=onnx dynamic=True imgsz=<training size>` (the
demo model: imgsz 320, its serving size, `DEMO_IMGSZ`)
(Ultralytics writes the class names, image size and stride into the file's metadata, which
is all the function reads), plus what makes the result reproducible and traceable: the
export date in the metadata is the checkpoint's own (so exporting the same .pt twice gives
the same bytes), `source_sha256` records the .pt it came from, and `<name>.export.json`
beside it records both digests for the model card. For the demo model the card's ONNX row
is rewritten too.

``--agnostic-nms`` writes ``agnostic_nms=True`` into the metadata: the model's default for a
job's ``params.agnosticNms`` (NMS across classes, one class per object). It is on for the demo
model, whose shapes never overlap by design: with class-aware NMS a small shape often came
out twice, as a circle and as a rectangle (39 of its 176 false positives on the held-out
set). Off (Ultralytics' behaviour) for any other model unless asked for.

Dynamic axes (batch, height, width): the function letterboxes each image to a rectangle
at the model's stride instead of a square (fewer pixels), and infers tiles in batches. A
static export works as well, at its one size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "functions" / "segment" / "model" / "shapes-seg.pt"
# The demo model's serving defaults, written into its export (a job's default imgsz and NMS);
# evaluate.py measures every demo candidate with them. 320, not the training size (416 since
# 2026-12-02): on the card's image size trade-off it is the size at which no shape-free photo
# gets more than one detection, the held-out set the fewest false positives, and jobs are
# fastest; a job's params.imgsz chooses another.
DEMO_IMGSZ = 320
DEMO_AGNOSTIC_NMS = True
CARD_ROW = re.compile(r"^\| ONNX export \|.*\n", re.MULTILINE)
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "build" / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trained_imgsz(model: Any) -> int:
    """The training size a checkpoint records (int or [h, w]); 640 if it records none."""
    value = model.overrides.get("imgsz")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, list | tuple) and value:
        return max(int(v) for v in value)
    return 640


def is_demo(weights: Path) -> bool:
    return weights.resolve() == DEFAULT_WEIGHTS.resolve()


def default_agnostic_nms(weights: Path) -> bool:
    return DEMO_AGNOSTIC_NMS if is_demo(weights) else False


def export(
    weights: Path, *, imgsz: int | None = None, dynamic: bool = True, agnostic_nms: bool | None = None
) -> Path:
    """Write weights.with_suffix('.onnx') and its .export.json; return the .onnx path."""
    import onnx
    from ultralytics import YOLO

    model = YOLO(str(weights))
    if model.task != "segment":
        raise SystemExit(f"{weights} is a {model.task} model, not a segmentation (-seg) model")
    size = imgsz or (DEMO_IMGSZ if is_demo(weights) else trained_imgsz(model))
    written = Path(model.export(format="onnx", dynamic=dynamic, simplify=True, imgsz=size, verbose=False))
    target = weights.with_suffix(".onnx")
    if written.resolve() != target.resolve():
        written.replace(target)

    source_sha256 = sha256(weights)
    graph = onnx.load(str(target))
    props = {p.key: p.value for p in graph.metadata_props}
    # Reproducible bytes: the checkpoint's date instead of the time of export.
    import torch

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    props["date"] = str(checkpoint.get("date") or "")
    props["source_sha256"] = source_sha256
    agnostic = default_agnostic_nms(weights) if agnostic_nms is None else agnostic_nms
    props["agnostic_nms"] = str(agnostic)  # as Ultralytics writes booleans: "True" / "False"
    # Intermediate shape annotations vary from run to run (the slimmer's shape inference);
    # ONNX Runtime infers shapes itself, so they are left out for the same bytes every time.
    del graph.graph.value_info[:]
    del graph.metadata_props[:]
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(target))

    record = {
        "onnx": target.name,
        "sha256": sha256(target),
        "bytes": target.stat().st_size,
        "source": weights.name,
        "sourceSha256": source_sha256,
        "imgsz": size,
        "dynamic": dynamic,
        "agnosticNms": agnostic,
        "opset": max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")),
        "ultralytics": props.get("version"),
        "command": f"yolo export model={weights.name} format=onnx dynamic={dynamic} simplify=True imgsz={size}",
    }
    target.with_suffix(".export.json").write_text(json.dumps(record, indent=2) + "\n")
    return target


def card_row(record: dict[str, Any]) -> str:
    return (
        f"| ONNX export | `{record['onnx']}` ({record['bytes'] / 1e6:.1f} MB), sha256 `{record['sha256']}`, "
        f"opset {record['opset']}, {'dynamic batch/height/width' if record['dynamic'] else 'static'}, "
        f"{'class-agnostic' if record.get('agnosticNms') else 'class-aware'} NMS by default: "
        f"what the function runs (`make model` re-exports the .pt) |\n"
    )


def update_card(card: Path, record: dict[str, Any]) -> None:
    """Put the ONNX row into the model card, after its sha256 row (or in place of an older one)."""
    text = card.read_text()
    row = card_row(record)
    if CARD_ROW.search(text):
        text = CARD_ROW.sub(row, text, count=1)
    else:
        text = re.sub(r"(^\| sha256 \|.*\n)", lambda m: m.group(1) + row, text, count=1, flags=re.MULTILINE)
    card.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="a YOLO -seg .pt")
    parser.add_argument(
        "--imgsz",
        type=int,
        default=None,
        help="jobs' default size (the demo model: 320; else the training size)",
    )
    parser.add_argument("--static", action="store_true", help="fixed batch 1 and imgsz x imgsz input")
    parser.add_argument(
        "--agnostic-nms",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the model's default NMS across classes (default: on for the demo model, off otherwise)",
    )
    args = parser.parse_args()
    target = export(args.weights, imgsz=args.imgsz, dynamic=not args.static, agnostic_nms=args.agnostic_nms)
    record = json.loads(target.with_suffix(".export.json").read_text())
    card = args.weights.with_name("MODEL_CARD.md")
    if card.is_file():
        update_card(card, record)
    print(f"wrote {target} ({record['bytes'] / 1e6:.1f} MB, sha256 {record['sha256']})")


if __name__ == "__main__":
    main()

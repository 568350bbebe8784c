"""Segmentation models built on the spot for tests: no download, no training.

``build_seg_model`` makes a random-init YOLOv8n-seg from the Ultralytics architecture yaml
with the given class names and saves it as an Ultralytics checkpoint. It finds nothing at
the default threshold, but at ``conf=0`` every candidate survives with a non-empty mask,
so tests that need detections (and class names) get them. ``build_seg_onnx`` exports such
a checkpoint the way ``make model`` does (training/export.py): what the function runs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# As the segment function does (segmentation/__init__.py), before Ultralytics is imported:
# settings under the temp dir, never online, never pip-installing anything.
_TMP = tempfile.gettempdir()
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_TMP, "Ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("YOLO_VERBOSE", "0")
os.environ.setdefault("MPLCONFIGDIR", os.path.join(_TMP, "matplotlib"))


def build_seg_model(path: Path, classes: Mapping[int, str], *, seed: int = 0) -> Path:
    """Save a random-weights YOLOv8n-seg with ``classes`` at ``path`` (a ``.pt`` file)."""
    import torch
    import ultralytics
    import yaml
    from ultralytics import YOLO

    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/v8/yolov8-seg.yaml").read_text())
    cfg["nc"] = len(classes)
    # The "n" in the file name selects the nano scale of the architecture.
    architecture = path.with_name(f"{path.stem}-yolov8n-seg.yaml")
    architecture.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(seed)
    model: Any = YOLO(str(architecture))
    model.model.names = dict(classes)
    # Random weights give masks that are empty as often as not, and Ultralytics drops a
    # detection whose mask is empty. Constant positive prototypes and mask coefficients
    # make every mask fill its box, so every candidate survives (at conf=0).
    head = model.model.model[-1]
    with torch.no_grad():
        head.proto.cv3.conv.weight.zero_()
        head.proto.cv3.bn.bias.fill_(5.0)
        for branch in head.cv4:
            branch[-1].weight.zero_()
            branch[-1].bias.fill_(1.0)
    model.save(str(path))
    architecture.unlink()
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_seg_onnx(
    path: Path, classes: Mapping[int, str], *, dynamic: bool = True, imgsz: int | None = None
) -> Path:
    """``build_seg_model`` at ``path`` with a .pt suffix, exported to ``path`` (a ``.onnx`` file)."""
    from export import export  # training/export.py

    checkpoint = build_seg_model(path.with_suffix(".pt"), classes)
    exported = export(checkpoint, dynamic=dynamic, imgsz=imgsz)
    if exported != path:
        exported.replace(path)
    return path

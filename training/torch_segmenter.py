"""Ultralytics' own predictor (torch) behind the segment function's `Segmenter` interface.

The reference that the parity tests hold the ONNX Runtime path to, and the "torch path" of
`bench/segment_bench.py`: the same weights (.pt), Ultralytics' letterbox, NMS and masks,
with the function's own job logic around it (`segmentation.service.segment_image` takes
either). This is what the segment function ran before it moved to ONNX Runtime: fused
model, inference mode, torch threads set to the vCPUs on purpose. Toolchain only: never
imported by functions/segment.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Ultralytics reads these at import: settings under the temp dir, never online or installing.
_TMP = tempfile.gettempdir()
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(_TMP, "Ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("YOLO_VERBOSE", "0")

from segjob_core.models import JobParams, ModelInfo  # noqa: E402
from segmentation.postprocess import Prediction  # noqa: E402
from segmentation.runtime import check_classes, frames_per_batch  # noqa: E402

BACKEND = "torch"


class TorchSegmenter:
    """A YOLO -seg .pt run by Ultralytics: `infer_many` gives its Results, `postprocess`
    turns them into Predictions (polygons from `masks.xy`), as the function's own code did."""

    def __init__(self, model: Any, info: ModelInfo, threads: int) -> None:
        self._model = model
        self.info = info
        self.threads = threads
        self.load_ms = 0.0

    @property
    def names(self) -> dict[int, str]:
        return self.info.classes

    @classmethod
    def load(cls, path: Path, *, threads: int, warmup: bool = True) -> TorchSegmenter:
        import torch
        from ultralytics import YOLO

        started = time.perf_counter()
        model: Any = YOLO(str(path))
        model.fuse(verbose=False)
        model.model.eval()
        record = export_record(path)
        imgsz = record.get("imgsz") or model.overrides.get("imgsz")  # as the ONNX path
        info = ModelInfo(
            name=path.stem,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            backend=BACKEND,
            task=model.task,
            classes={int(k): str(v) for k, v in model.names.items()},
            imgsz=max(imgsz) if isinstance(imgsz, list | tuple) else (imgsz or 640),
            agnostic_nms=bool(record.get("agnosticNms", False)),
        )
        segmenter = cls(model, info, threads)
        if warmup:  # the first call builds the predictor
            segmenter.infer_many([np.zeros((480, 640, 3), np.uint8)], JobParams())
        torch.set_num_threads(threads)  # after the predictor's setup, which sets vCPUs - 1
        segmenter.load_ms = (time.perf_counter() - started) * 1000
        return segmenter

    def check_params(self, params: JobParams) -> None:
        check_classes(params, self.info)

    def batch_size(self, params: JobParams) -> int:
        return frames_per_batch(params.imgsz or self.info.imgsz or 640)

    def infer_many(self, frames: Sequence[np.ndarray], params: JobParams) -> list[Any]:
        import torch

        with torch.inference_mode():
            return list(
                self._model.predict(
                    source=list(frames),
                    imgsz=params.imgsz or self.info.imgsz,
                    conf=params.conf,
                    iou=params.iou,
                    classes=params.classes,
                    max_det=params.max_detections,
                    agnostic_nms=self.info.agnostic_nms
                    if params.agnostic_nms is None
                    else params.agnostic_nms,
                    retina_masks=params.retina_masks,
                    device="cpu",
                    save=False,
                    verbose=False,
                )
            )

    def postprocess(
        self, outputs: Sequence[Any], params: JobParams, masks_for: int | None = None
    ) -> list[Prediction]:
        """Ultralytics made every detection's mask already: `masks_for` changes nothing."""
        return [extract(result) for result in outputs]

    def predict(self, frame: np.ndarray, params: JobParams) -> Prediction:
        return self.postprocess(self.infer_many([frame], params), params)[0]


def export_record(path: Path) -> dict[str, Any]:
    """The serving defaults (imgsz, agnosticNms) that training/export.py wrote into the .pt's
    ONNX export, from the record beside it; none for a .pt never exported (then the training
    size and class-aware NMS, as Ultralytics' predictor)."""
    record = path.with_suffix(".export.json")
    return json.loads(record.read_text()) if record.is_file() else {}


def extract(result: Any) -> Prediction:
    """Arrays out of an Ultralytics result; polygons from `masks.xy` (already in frame pixels)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Prediction.empty()
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
    polygons = (
        [np.asarray(p, dtype=np.float32).reshape(-1, 2) for p in result.masks.xy]
        if result.masks is not None
        else [np.zeros((0, 2), np.float32) for _ in range(len(xyxy))]
    )
    return Prediction(
        boxes=xyxy,
        confidences=boxes.conf.cpu().numpy().astype(np.float32),
        class_ids=boxes.cls.cpu().numpy().astype(np.int64),
        polygons=polygons,
    )

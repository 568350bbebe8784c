"""Runtime stage: a YOLO -seg model exported to ONNX, run by ONNX Runtime on the CPU.

The model is what Ultralytics' exporter writes (`yolo export model=best.pt format=onnx
dynamic=True`, or `make model` for the demo model): class names, training image size,
stride and task come from the file's own metadata. A dynamic export (batch, height, width)
takes rectangular inputs, each frame letterboxed to a multiple of the stride; a static
export (Ultralytics' default) gets its one fixed size. No torch, no Ultralytics here.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from segjob_core.errors import InvalidParams, ModelUnavailable
from segjob_core.models import JobParams, ModelInfo

from .decode import DEFAULT_IMGSZ
from .loader import EXPORT_COMMAND, ModelOpening, OpenedModel, open_session
from .postprocess import Prediction, select, to_prediction

BACKEND = "onnxruntime"
PAD_VALUE = 114  # grey of the letterbox borders, as the model was trained with
# Frames per forward pass when a job infers several (tiles): 36 tiles at 320 px took 1.17 s in
# batches of 8 against 1.77 s with one call per tile on 2 vCPUs; larger batches gained nothing.
# A batch holds at most the pixels of 8 frames of 640 px, so a large imgsz stays in memory.
MAX_BATCH = 8
BATCH_PIXELS = MAX_BATCH * 640 * 640
_WARMUP_SHAPE = (480, 640, 3)


# preprocess ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Letterbox:
    """Where a frame sits in the model input: resized to `resized` (w, h), keeping its aspect
    ratio, and padded by `left`/`top` (and the rest on the other sides) to `input_size`."""

    frame_size: tuple[int, int]  # (w, h)
    resized: tuple[int, int]  # (w, h)
    input_size: tuple[int, int]  # (w, h)
    left: int
    top: int

    @classmethod
    def plan(
        cls, frame_size: tuple[int, int], target: tuple[int, int], *, stride: int, rect: bool
    ) -> Letterbox:
        """Fit a (w, h) frame into a (w, h) target; with `rect` the padding is only what makes
        each side a multiple of `stride` (a rectangular input, fewer pixels to infer)."""
        width, height = frame_size
        ratio = min(target[0] / width, target[1] / height)
        resized = (max(round(width * ratio), 1), max(round(height * ratio), 1))
        pad_w, pad_h = target[0] - resized[0], target[1] - resized[1]
        if rect:
            pad_w, pad_h = pad_w % stride, pad_h % stride
        # Half the padding on each side; an odd pixel goes right/bottom (round half to even).
        left, top = round(pad_w / 2 - 0.1), round(pad_h / 2 - 0.1)
        right, bottom = round(pad_w / 2 + 0.1), round(pad_h / 2 + 0.1)
        size = (resized[0] + left + right, resized[1] + top + bottom)
        return cls(frame_size=frame_size, resized=resized, input_size=size, left=left, top=top)

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) factors from frame pixels to model-input pixels."""
        return self.resized[0] / self.frame_size[0], self.resized[1] / self.frame_size[1]

    def fit(self, frame: np.ndarray) -> np.ndarray:
        """The frame as the model sees it (BGR uint8, `input_size`)."""
        if (frame.shape[1], frame.shape[0]) != self.resized:
            frame = cv2.resize(frame, self.resized, interpolation=cv2.INTER_LINEAR)
        right = self.input_size[0] - self.resized[0] - self.left
        bottom = self.input_size[1] - self.resized[1] - self.top
        return cv2.copyMakeBorder(
            frame, self.top, bottom, self.left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
        )

    def clip(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) points clipped to the frame."""
        return np.clip(points, 0, np.array(self.frame_size, points.dtype))

    def points_to_frame(self, points: np.ndarray) -> np.ndarray:
        """(k, 2) model-input coordinates -> frame coordinates, clipped to the frame."""
        origin = np.array([self.left, self.top], np.float64)
        return self.clip((points.astype(np.float64) - origin) / np.array(self.scale))

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 4) x1, y1, x2, y2 in model-input pixels -> frame pixels, clipped to the frame."""
        return self.points_to_frame(boxes.reshape(-1, 2)).reshape(-1, 4)


@dataclass(frozen=True)
class ModelOutput:
    """What the model gave for one frame, and how that frame was fitted into its input."""

    detections: np.ndarray  # output0 of this frame
    protos: np.ndarray  # output1 of this frame: (nm, mh, mw)
    letterbox: Letterbox


# the model -----------------------------------------------------------------------------


def _metadata(session: ort.InferenceSession, name: str) -> dict[str, Any]:
    """Ultralytics' export metadata, values parsed from their Python literal text."""
    raw = session.get_modelmeta().custom_metadata_map
    missing = [key for key in ("names", "imgsz", "stride", "task") if key not in raw]
    if missing:
        raise ModelUnavailable(
            f"{name} has no {', '.join(missing)} in its metadata: it was not exported by Ultralytics; "
            f"export the .pt with `{EXPORT_COMMAND.format(name='best.pt')}`"
        )
    try:
        names = ast.literal_eval(raw["names"])
        imgsz = ast.literal_eval(raw["imgsz"])
        return {
            "names": {int(k): str(v) for k, v in names.items()},
            "imgsz": [int(v) for v in (imgsz if isinstance(imgsz, list | tuple) else [imgsz, imgsz])],
            "stride": int(raw["stride"]),
            "task": raw["task"],
            "end2end": raw.get("end2end", "False") == "True",
            # Not Ultralytics': training/export.py --agnostic-nms writes it (a job's default).
            "agnostic_nms": raw.get("agnostic_nms", "False") == "True",
        }
    except (ValueError, SyntaxError, AttributeError, TypeError) as exc:
        raise ModelUnavailable(f"{name} has unreadable export metadata: {exc}") from exc


def check_classes(params: JobParams, info: ModelInfo) -> None:
    """InvalidParams when a job asks for class ids the model does not have."""
    unknown = sorted(set(params.classes or ()) - set(info.classes))
    if unknown:
        raise InvalidParams(f"classes {unknown} are not classes of model {info.name}: {info.classes}")


def frames_per_batch(imgsz: int, limit: int = MAX_BATCH) -> int:
    """At most `limit` frames, and at most the pixels of MAX_BATCH frames of 640 px."""
    return max(1, min(limit, BATCH_PIXELS // imgsz**2))


class Segmenter:
    """A YOLO -seg ONNX model, loaded once and ready for inference."""

    def __init__(
        self, session: ort.InferenceSession, info: ModelInfo, *, stride: int, end2end: bool, threads: int
    ) -> None:
        self._session = session
        self.info = info
        self.threads = threads
        self.load_ms = 0.0
        self._stride = stride
        self._end2end = end2end
        (model_input,) = session.get_inputs()
        self._input_name = model_input.name
        batch, _, height, width = model_input.shape
        self._fixed_batch = batch if isinstance(batch, int) else None
        # A static export takes exactly one size: (w, h).
        self._fixed_size = (width, height) if isinstance(width, int) and isinstance(height, int) else None

    @property
    def names(self) -> dict[int, str]:
        return self.info.classes

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        threads: int,
        expected_sha256: str | None = None,
        warmup: bool = True,
        opening: ModelOpening | None = None,
    ) -> Segmenter:
        """Load, verify and warm up the model at `path` (an Ultralytics ONNX export of a -seg
        model); with `opening` (started on `path` earlier, loader.py), take its session."""
        opened: OpenedModel = (
            opening.result()
            if opening is not None
            else open_session(path, threads=threads, expected_sha256=expected_sha256)
        )
        started = time.perf_counter()
        session, sha256 = opened.session, opened.sha256
        meta = _metadata(session, path.name)
        if meta["task"] != "segment":
            raise ModelUnavailable(f"{path.name} is a {meta['task']} model, not a segmentation model")
        shapes = {len(output.shape) for output in session.get_outputs()}
        if len(session.get_inputs()) != 1 or shapes != {3, 4}:
            raise ModelUnavailable(f"{path.name} does not have the inputs and outputs of a YOLO -seg export")
        info = ModelInfo(
            name=path.stem,
            sha256=sha256,
            backend=BACKEND,
            task="segment",
            classes=meta["names"],
            imgsz=max(meta["imgsz"]) or DEFAULT_IMGSZ,
            agnostic_nms=meta["agnostic_nms"],
        )
        segmenter = cls(session, info, stride=meta["stride"], end2end=meta["end2end"], threads=threads)
        if warmup:  # the first run allocates and plans: pay that at init, not in a job
            segmenter.predict(np.zeros(_WARMUP_SHAPE, dtype=np.uint8), JobParams(conf=1.0))
        segmenter.load_ms = opened.ms + (time.perf_counter() - started) * 1000
        return segmenter

    def check_params(self, params: JobParams) -> None:
        check_classes(params, self.info)
        if self._fixed_size and params.imgsz not in (None, max(self._fixed_size)):
            raise InvalidParams(
                f"model {self.info.name} was exported for {self._fixed_size[0]}x{self._fixed_size[1]} inputs "
                f"only, not imgsz {params.imgsz}; export it with dynamic=True to choose the size per job"
            )

    def batch_size(self, params: JobParams) -> int:
        """Frames per forward pass of `infer_many`."""
        return frames_per_batch(
            params.imgsz or self.info.imgsz or DEFAULT_IMGSZ, self._fixed_batch or MAX_BATCH
        )

    def letterbox(self, frame: np.ndarray, params: JobParams) -> Letterbox:
        size = (frame.shape[1], frame.shape[0])
        if self._fixed_size:
            return Letterbox.plan(size, self._fixed_size, stride=self._stride, rect=False)
        imgsz = params.imgsz or self.info.imgsz or DEFAULT_IMGSZ
        return Letterbox.plan(size, (imgsz, imgsz), stride=self._stride, rect=True)

    def infer_many(self, frames: Sequence[np.ndarray], params: JobParams) -> list[ModelOutput]:
        """Letterbox BGR frames (e.g. the tiles of an image) and run the model on them, frames
        of one input size in one forward pass; one output per frame, in order. Callers pass at
        most `batch_size(params)` frames at a time."""
        self.check_params(params)
        boxes = [self.letterbox(frame, params) for frame in frames]
        outputs: list[ModelOutput | None] = [None] * len(frames)
        for size in dict.fromkeys(box.input_size for box in boxes):  # same size: one batch
            members = [i for i, box in enumerate(boxes) if box.input_size == size]
            blob = cv2.dnn.blobFromImages(
                [boxes[i].fit(frames[i]) for i in members], scalefactor=1 / 255, swapRB=True
            )
            detections, protos = sorted(self._session.run(None, {self._input_name: blob}), key=np.ndim)
            for row, i in enumerate(members):
                outputs[i] = ModelOutput(detections=detections[row], protos=protos[row], letterbox=boxes[i])
        return [output for output in outputs if output is not None]

    def postprocess(
        self, outputs: Sequence[ModelOutput], params: JobParams, masks_for: int | None = None
    ) -> list[Prediction]:
        """Detections of each output in its own frame's pixels; with `masks_for`, only that
        many (the most confident) get masks, the rest come as boxes (`to_prediction`)."""
        params = params.for_model(self.info.imgsz or DEFAULT_IMGSZ, self.info.agnostic_nms)
        return [
            to_prediction(
                select(output.detections, params, classes=len(self.names), end2end=self._end2end),
                output.protos,
                output.letterbox,
                retina_masks=params.retina_masks,
                masks_for=masks_for,
            )
            for output in outputs
        ]

    def predict(self, frame: np.ndarray, params: JobParams) -> Prediction:
        """Inference and postprocess of one frame."""
        return self.postprocess(self.infer_many([frame], params), params)[0]

"""Postprocess stage: raw outputs of a YOLO -seg head -> detections with polygons.

Per frame the head gives `output0`, one row per anchor of 4 box values (centre x, centre y,
width, height in model-input pixels), one score per class and `nm` mask coefficients, and
`output1`, `nm` mask prototypes at a quarter of the input resolution. An end-to-end head
(YOLO26, `end2end` in the export's metadata) gives instead at most 300 rows of x1, y1, x2,
y2, score, class and the coefficients, already free of duplicates.

A detection is the best class of an anchor above `conf`, kept by class-aware NMS at `iou`,
at most `max_detections` by confidence. Its mask is the prototypes weighted by its
coefficients, upsampled bilinearly to the model input (or, with `retinaMasks`, straight to
the frame's pixels), positive inside its box; a detection whose mask is empty is dropped.
These are the semantics of Ultralytics' predictor, which the parity tests hold this module
to, computed differently: the upsampled mask is only ever evaluated inside each box, as two
small matrix products, so memory stays bounded by the largest box, not detections x image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from segjob_core.models import Detection, JobParams, ResultSummary

if TYPE_CHECKING:
    from .runtime import Letterbox

# NMS considers at most this many candidates per frame, the most confident (Ultralytics' cap).
MAX_NMS_CANDIDATES = 30_000
# Prototype masks have a quarter of the model input's resolution in every YOLO -seg head.
PROTO_STRIDE = 4


@dataclass(frozen=True)
class Prediction:
    """Detections of one frame in that frame's pixels (what `render.annotate` draws)."""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2
    confidences: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int64
    polygons: list[np.ndarray]  # n arrays of (k, 2) float32

    def __len__(self) -> int:
        return len(self.class_ids)

    @classmethod
    def empty(cls) -> Prediction:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            confidences=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int64),
            polygons=[],
        )

    def scaled(self, sx: float, sy: float) -> Prediction:
        """The same detections with x times `sx` and y times `sy` (into a larger frame's pixels)."""
        factor = np.array([sx, sy], np.float32)
        return Prediction(
            boxes=self.boxes * np.tile(factor, 2),
            confidences=self.confidences,
            class_ids=self.class_ids,
            polygons=[polygon * factor for polygon in self.polygons],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Prediction]) -> Prediction:
        if not parts:
            return cls.empty()
        return cls(
            boxes=np.concatenate([p.boxes for p in parts]),
            confidences=np.concatenate([p.confidences for p in parts]),
            class_ids=np.concatenate([p.class_ids for p in parts]),
            polygons=[polygon for p in parts for polygon in p.polygons],
        )

    def unmasked(self) -> np.ndarray:
        """Which detections came without a mask (`to_prediction`'s `masks_for`)."""
        return np.array([len(polygon) == 0 for polygon in self.polygons], bool)

    def take(self, index: np.ndarray) -> Prediction:
        """The detections at `index` (integer positions), in that order."""
        return Prediction(
            boxes=self.boxes[index],
            confidences=self.confidences[index],
            class_ids=self.class_ids[index],
            polygons=[self.polygons[i] for i in index],
        )


def cap(prediction: Prediction, limit: int) -> tuple[Prediction, int | None]:
    """The `limit` most confident detections (ties in their order) among those with a mask,
    and the count before the cap if it dropped any (None if it dropped nothing):
    result.json's `truncated` and `countBeforeCap`. Detections without a mask (beyond a
    frame's `masks_for`) count, but are never shown."""
    order = np.argsort(-prediction.confidences, kind="stable")
    kept = order[~prediction.unmasked()[order]][:limit]
    if len(kept) == len(prediction):
        return prediction, None
    return prediction.take(kept), (len(prediction) if len(prediction) > limit else None)


# detections ----------------------------------------------------------------------------


def nms(
    boxes: np.ndarray,
    confidences: np.ndarray,
    class_ids: np.ndarray,
    *,
    iou: float,
    limit: int,
    agnostic: bool = False,
) -> np.ndarray:
    """Indices of the kept boxes (x1, y1, x2, y2), most confident first, at most `limit`: a
    box is dropped when a more confident box of the same class (of any class, `agnostic`)
    overlaps it by more than `iou`.

    OpenCV's batched NMS (boxes of each class moved apart, in double precision)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.asarray(boxes, np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    groups = np.zeros(len(boxes), np.int32) if agnostic else np.asarray(class_ids, np.int32)
    batched: Any = cv2.dnn.NMSBoxesBatched  # its stubs name sequences; it takes arrays natively
    kept = batched(xywh, np.asarray(confidences, np.float32), groups, -1.0, float(iou))
    return np.asarray(kept, np.int64).reshape(-1)[:limit]


@dataclass(frozen=True)
class Candidates:
    """Detections after NMS, before masks: in model-input pixels."""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2
    confidences: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int64
    coefficients: np.ndarray  # (n, nm) float32


def select(rows: np.ndarray, params: JobParams, *, classes: int, end2end: bool) -> Candidates:
    """The detections among one frame's `output0`: (4 + classes + nm, anchors), or for an
    end-to-end head (k, 6 + nm)."""
    if end2end:
        keep = rows[:, 4] > params.conf
        if params.classes is not None:
            keep &= np.isin(rows[:, 5].astype(np.int64), params.classes)
        rows = rows[keep][: params.max_detections]
        return Candidates(
            boxes=rows[:, :4].astype(np.float32),
            confidences=rows[:, 4].astype(np.float32),
            class_ids=rows[:, 5].astype(np.int64),
            coefficients=rows[:, 6:].astype(np.float32),
        )
    scores = rows[4 : 4 + classes]
    class_ids = scores.argmax(0)
    confidences = scores[class_ids, np.arange(scores.shape[1])]
    keep = confidences > params.conf
    if params.classes is not None:  # the best class must be a wanted one, as in Ultralytics
        keep &= np.isin(class_ids, params.classes)
    index = np.flatnonzero(keep)
    if len(index) > MAX_NMS_CANDIDATES:
        index = index[np.argsort(-confidences[index], kind="stable")[:MAX_NMS_CANDIDATES]]
    centre, size = rows[0:2, index].T, rows[2:4, index].T
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
    kept = nms(
        boxes,
        confidences[index],
        class_ids[index],
        iou=params.iou,
        limit=params.max_detections,
        agnostic=bool(params.agnostic_nms),
    )
    index = index[kept]
    return Candidates(
        boxes=boxes[kept],
        confidences=confidences[index].astype(np.float32),
        class_ids=class_ids[index].astype(np.int64),
        coefficients=rows[4 + classes :, index].T.astype(np.float32),
    )


# masks ---------------------------------------------------------------------------------


def bilinear_weights(count: int, start: int, step: float, offset: float, size: int) -> tuple[np.ndarray, int]:
    """Weights of bilinear sampling along one axis: row j of the (count, span) matrix holds the
    weights that target pixel start + j gives to source pixels first .. first + span - 1.

    Target pixel t has its centre at source coordinate (t + 0.5) * step + offset, in source
    pixels whose centres lie at i + 0.5; at the edges the nearest source pixel is repeated
    (as PyTorch's bilinear interpolation without align_corners)."""
    target = np.arange(start, start + count, dtype=np.float64)
    source = np.maximum((target + 0.5) * step + offset - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    fraction = np.clip(source - low, 0.0, 1.0)
    first = int(low.min())
    span = int(high.max()) - first + 1
    weights = np.zeros((count, span), np.float32)
    rows = np.arange(count)
    np.add.at(weights, (rows, low - first), 1.0 - fraction)
    np.add.at(weights, (rows, high - first), fraction)
    return weights, first


def box_window(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels (columns x0..x1-1, rows y0..y1-1) whose index lies in [x1, x2) x [y1, y2)."""
    x0, y0 = (max(0, int(np.ceil(v))) for v in box[:2])
    x1, y1 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    return x0, y0, x1, y1


def mask_in_box(
    logits: np.ndarray,
    box: np.ndarray,
    grid: tuple[int, int],
    step: tuple[float, float],
    offset: tuple[float, float],
) -> tuple[np.ndarray, tuple[int, int]]:
    """One detection's binary mask inside its box, on a target grid (w, h) sampled from its
    prototype-resolution logits (mh, mw): target pixel centres map to prototype coordinates
    by `* step + offset` (per axis x, y). Returns the mask and its window's origin (x, y)."""
    x0, y0, x1, y1 = box_window(box, *grid)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), bool), (x0, y0)
    rows, first_row = bilinear_weights(y1 - y0, y0, step[1], offset[1], logits.shape[0])
    cols, first_col = bilinear_weights(x1 - x0, x0, step[0], offset[0], logits.shape[1])
    window = logits[first_row : first_row + rows.shape[1], first_col : first_col + cols.shape[1]]
    return (rows @ window @ cols.T) > 0, (x0, y0)


def outline(mask: np.ndarray) -> np.ndarray:
    """The polygon of a binary mask, in its pixel indices: the outer contour of each piece
    (OpenCV, simple chain), pieces largest first, each closed and tied to the first piece's
    start by a zero-width bridge walked there and back, so the shoelace area is the sum of
    the pieces' and a fill covers all of them. (0, 2) for an empty mask."""
    framed = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, _ = cv2.findContours(framed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 2), np.float32)
    pieces = [c.reshape(-1, 2).astype(np.float32) - 1 for c in contours]
    if len(pieces) == 1:
        return pieces[0]
    pieces.sort(key=cv2.contourArea, reverse=True)
    anchor = pieces[0][0]
    path = [pieces[0], anchor[None]]
    for piece in pieces[1:]:
        nearest = int(np.argmin(((piece - anchor) ** 2).sum(axis=1)))
        path += [np.roll(piece, -nearest, axis=0), piece[nearest][None], anchor[None]]
    return np.concatenate(path)


def to_prediction(
    candidates: Candidates,
    protos: np.ndarray,
    letterbox: Letterbox,
    *,
    retina_masks: bool,
    masks_for: int | None = None,
) -> Prediction:
    """Masks, polygons and boxes of the candidates in frame pixels.

    Without `retina_masks` a mask lives on the model-input grid (as the model saw it) and
    its polygon is then mapped to the frame; with it, the mask is sampled on the frame's own
    grid. Boxes are mapped to the frame and clipped to it.

    With `masks_for`, masks are made in candidate order (most confident first) until
    `masks_for` of them are not empty; the candidates after that come as boxes with an empty
    polygon: they take part in merges and in the count before maxDetections at the cost of
    NMS only (`Prediction.unmasked` finds them)."""
    nm, mh, mw = protos.shape
    flat_protos = protos.reshape(nm, -1)
    frame_boxes = letterbox.boxes_to_frame(candidates.boxes)
    step = 1.0 / PROTO_STRIDE
    # Retina masks: frame pixel centre -> model input (* scale + padding) -> prototype.
    scale_x, scale_y = letterbox.scale
    retina_step = (scale_x * step, scale_y * step)
    retina_offset = (letterbox.left * step, letterbox.top * step)
    keep: list[int] = []
    polygons: list[np.ndarray] = []
    for i in range(len(candidates.boxes)):
        if masks_for is not None and len(polygons) >= masks_for:  # enough masks: a box is enough
            keep.append(i)
            polygons.append(np.zeros((0, 2), np.float32))
            continue
        logits = (candidates.coefficients[i] @ flat_protos).reshape(mh, mw)
        if retina_masks:
            mask, origin = mask_in_box(
                logits, frame_boxes[i], letterbox.frame_size, retina_step, retina_offset
            )
            polygon = letterbox.clip(outline(mask) + np.array(origin, np.float32))
        else:
            mask, origin = mask_in_box(
                logits, candidates.boxes[i], letterbox.input_size, (step, step), (0.0, 0.0)
            )
            polygon = letterbox.points_to_frame(outline(mask) + np.array(origin, np.float32))
        if mask.any():
            keep.append(i)
            polygons.append(polygon.astype(np.float32))
    return Prediction(
        boxes=frame_boxes[keep].astype(np.float32),
        confidences=candidates.confidences[keep],
        class_ids=candidates.class_ids[keep],
        polygons=polygons,
    )


# detections in original pixels ---------------------------------------------------------


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a closed polygon given as (k, 2) points; 0 for fewer than 3."""
    if len(points) < 3:
        return 0.0
    x = points[:, 0].astype(np.float64)
    y = points[:, 1].astype(np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def to_detections(
    prediction: Prediction, *, scale: tuple[float, float], size: tuple[int, int], names: dict[int, str]
) -> list[Detection]:
    """Detections in original-image pixels: frame coordinates times `scale`, clipped to `size` (w, h)."""
    sx, sy = scale
    width, height = size
    factor = np.array([sx, sy], dtype=np.float64)
    limit = np.array([width, height], dtype=np.float64)
    detections = []
    for box, confidence, class_id, frame_polygon in zip(
        prediction.boxes, prediction.confidences, prediction.class_ids, prediction.polygons, strict=True
    ):
        corners = np.clip(box.astype(np.float64).reshape(2, 2) * factor, 0, limit)
        polygon = np.clip(frame_polygon.astype(np.float64) * factor, 0, limit)
        detections.append(
            Detection(
                class_id=int(class_id),
                class_name=names.get(int(class_id), str(int(class_id))),
                confidence=round(float(confidence), 4),
                bbox=[round(float(v), 2) for v in corners.reshape(-1)],
                polygon=[[round(float(x), 1), round(float(y), 1)] for x, y in polygon],
                area=round(polygon_area(polygon), 1),
            )
        )
    return detections


def summarize(detections: list[Detection], count_before_cap: int | None = None) -> ResultSummary:
    """Count and per-class counts; `count_before_cap` (from `cap`) marks a truncated result."""
    by_class = Counter(d.class_name for d in detections)
    return ResultSummary(
        count=len(detections),
        by_class=dict(sorted(by_class.items())),
        truncated=True if count_before_cap is not None else None,
        count_before_cap=count_before_cap,
    )

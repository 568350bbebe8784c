"""Evaluate the demo model as a user meets it; write eval.json and the model card from it.

What it measures, all at the model's default image size (export.DEMO_IMGSZ, what a job
without ``params.imgsz`` runs at):

- the held-out set (training/synth.py ``make_heldout_image``: photos and texture families
  that training never sees, other image sizes): box and mask mAP50 / mAP50-95 with
  Ultralytics' validator, per class and class-agnostic;
- at the jobs' default threshold (conf 0.25, iou 0.7): recall, class confusion and false
  positives per image on the held-out set, and recall by object size (the square root of
  the object's area in pixels at model input);
- mask AP50 by the same object sizes (pycocotools' COCOeval, down to conf 0.001), class-aware
  and class-agnostic: where the mAP is lost;
- false positives per image on photos without shapes: the held-out photos (scikit-image's,
  full frame) and Ultralytics' bus.jpg and zidane.jpg;
- the 13 shapes of the demo images in samples/ (their labels come from the generator that
  drew them, synth.py ``--demo``): how many are found with the right class, and the extras.

``--sizes`` adds the same figures of the same weights at other image sizes (what a job's
``params.imgsz`` chooses), with recall by size binned at the default size (the same shapes
in every row), and the time of one whole job at each size on the function's code path
(``segment_image`` with the ONNX Runtime ``Segmenter`` on the model's ONNX export, in-memory
store): eval.json's ``imgsz_sweep``, the card's "Image size trade-off".

    python training/evaluate.py                  # eval.json + MODEL_CARD.md (= make eval)
    python training/evaluate.py --sizes 320,416,512,640   # + the image size trade-off
    python training/evaluate.py --no-card        # print only
    python training/evaluate.py --card-only      # re-render the card from eval.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "functions" / "segment" / "model" / "shapes-seg.pt"
DEFAULT_DATA = ROOT / "build" / "data"
OTHER_DATA = ROOT / "build" / "othergen"  # training/othergen.py's set
DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET = 0.25, 0.7, 100  # segjob_core.models.JobParams' defaults
SIZE_BINS: tuple[tuple[str, float, float], ...] = (
    ("< 16 px", 0, 16),
    ("16-32 px", 16, 32),
    ("32-64 px", 32, 64),
    ("64-128 px", 64, 128),
    (">= 128 px", 128, float("inf")),
)
IOU_MATCH = 0.5
STRIDE = 32  # the network's largest stride: Ultralytics rounds other sizes up to a multiple of it
SPEED_IMAGES = (ROOT / "samples" / "shapes-1.jpg", "bus.jpg")  # str: one of Ultralytics' assets
SPEED_RUNS = 20
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "build" / "ultralytics"))
os.environ.setdefault("YOLO_OFFLINE", "1")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raster(polygon: np.ndarray, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    if len(polygon) >= 3:
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def match(
    predicted: list[tuple[int, np.ndarray]], truth: list[tuple[int, np.ndarray]]
) -> tuple[list[int | None], list[int | None]]:
    """Greedy matching, most confident prediction first (``predicted`` in that order), of
    masks at IoU >= 0.5 regardless of class: for each true object the index of its
    prediction (or None), and for each prediction the index of its true object (or None)."""
    truth_of: list[int | None] = [None] * len(predicted)
    pred_of: list[int | None] = [None] * len(truth)
    for p, (_, pmask) in enumerate(predicted):
        best, best_iou = None, IOU_MATCH
        for t, (_, tmask) in enumerate(truth):
            if pred_of[t] is None and (iou := mask_iou(pmask, tmask)) >= best_iou:
                best, best_iou = t, iou
        if best is not None:
            truth_of[p], pred_of[best] = best, p
    return pred_of, truth_of


FALSE_POSITIVE_KINDS = ("background", "wrong_class", "duplicate", "poor_mask")


def false_positive_kind(
    prediction: tuple[int, np.ndarray], truth: list[tuple[int, np.ndarray]], matched: int | None
) -> str:
    """What a false positive is, for the card (what to work on next): ``wrong_class`` (it
    matched a true object of another class), ``duplicate`` (IoU >= 0.5 with a true object
    that another detection had already taken), ``poor_mask`` (it overlaps one, IoU 0.1-0.5),
    or ``background`` (nothing there)."""
    if matched is not None:
        return "wrong_class"
    best = max((mask_iou(prediction[1], mask) for _, mask in truth), default=0.0)
    return "duplicate" if best >= IOU_MATCH else "poor_mask" if best >= 0.1 else "background"


def size_bin(side: float) -> str:
    return next(name for name, low, high in SIZE_BINS if low <= side < high)


def read_polygons(path: Path, h: int, w: int) -> list[tuple[int, np.ndarray]]:
    """A YOLO segmentation label file: (class, polygon in pixels) per object."""
    objects = []
    for line in path.read_text().splitlines():
        values = line.split()
        if values:
            objects.append((int(values[0]), np.array(values[1:], np.float32).reshape(-1, 2) * (w, h)))
    return objects


def predict_polygons(
    model: Any, image: np.ndarray, imgsz: int, conf: float = DEFAULT_CONF, agnostic_nms: bool | None = None
) -> list[tuple[int, float, np.ndarray]]:
    """Detections at the jobs' iou and max_det and the demo model's NMS (across classes unless
    ``agnostic_nms`` says otherwise), most confident first: (class, score, polygon)."""
    from export import DEMO_AGNOSTIC_NMS

    result = model.predict(
        image,
        imgsz=imgsz,
        conf=conf,
        iou=DEFAULT_IOU,
        max_det=DEFAULT_MAX_DET,
        agnostic_nms=DEMO_AGNOSTIC_NMS if agnostic_nms is None else agnostic_nms,
        device="cpu",
        verbose=False,
    )[0]
    if result.masks is None:
        return []
    scores = result.boxes.conf.numpy()
    classes = result.boxes.cls.numpy().astype(int)
    return [(int(classes[k]), float(scores[k]), result.masks.xy[k]) for k in np.argsort(-scores)]


def predict(model: Any, image: np.ndarray, imgsz: int) -> list[tuple[int, np.ndarray]]:
    """Detections at the jobs' defaults, most confident first: (class, mask at image size)."""
    h, w = image.shape[:2]
    found = predict_polygons(model, image, imgsz)
    return [(cls, raster(poly, h, w)) for cls, _, poly in found]


def validate(weights: Path, data_yaml: Path, imgsz: int, *, agnostic: bool) -> Any:
    from ultralytics import YOLO

    return YOLO(str(weights)).val(
        data=str(data_yaml),
        split="test",
        imgsz=imgsz,
        batch=16,
        device="cpu",
        plots=False,
        verbose=False,
        single_cls=agnostic,
    )


def heldout_metrics(weights: Path, data: Path, imgsz: int) -> dict[str, Any]:
    """mAP from Ultralytics' validator (per class and class-agnostic) on the held-out split
    (the demo recipe's, written if needed; or the `test` split of your own data set)."""
    from synth import HELDOUT_IMAGES, write_dataset

    if data.resolve() == DEFAULT_DATA.resolve():
        data_yaml = write_dataset(data, train=0, val=0, heldout=HELDOUT_IMAGES)
    else:
        data_yaml = data / "data.yaml"
    aware = validate(weights, data_yaml, imgsz, agnostic=False)
    agnostic = validate(weights, data_yaml, imgsz, agnostic=True)
    names = aware.names
    per_class = {name: {"mask_map50": 0.0, "mask_map50_95": 0.0} for name in names.values()}
    for i, c in enumerate(aware.seg.ap_class_index):
        per_class[names[int(c)]] = {
            "mask_map50": round(float(aware.seg.ap50[i]), 4),
            "mask_map50_95": round(float(aware.seg.ap[i]), 4),
        }
    return {
        "box_map50": round(float(aware.box.map50), 4),
        "box_map50_95": round(float(aware.box.map), 4),
        "mask_map50": round(float(aware.seg.map50), 4),
        "mask_map50_95": round(float(aware.seg.map), 4),
        "agnostic_mask_map50": round(float(agnostic.seg.map50), 4),
        "agnostic_mask_map50_95": round(float(agnostic.seg.map), 4),
        "per_class": per_class,
    }


def by_background_kind(by_name: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The held-out false positives by background name summed by kind, photo or texture."""
    kinds: dict[str, dict[str, Any]] = {
        kind: {"images": 0, "false_positives": 0} for kind in ("photo", "texture")
    }
    for named in by_name.values():
        kinds[named["kind"]]["images"] += named["images"]
        kinds[named["kind"]]["false_positives"] += named["false_positives"]
    return {
        kind: {**v, "per_image": round(v["false_positives"] / v["images"], 3) if v["images"] else None}
        for kind, v in kinds.items()
    }


def heldout_at_default_conf(
    model: Any,
    data: Path,
    imgsz: int,
    bin_imgsz: int | None = None,
    agnostic_nms: bool | None = None,
    *,
    background_of: Callable[[int], tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """``at_conf`` of the held-out split predicted at conf 0.25 (with ``agnostic_nms``)."""
    scored = heldout_scored(model, data, imgsz, bin_imgsz, conf=DEFAULT_CONF, agnostic_nms=agnostic_nms)
    return at_conf(scored, background_of=background_of)


def at_conf(
    images: list[ScoredImage],
    conf: float = DEFAULT_CONF,
    *,
    background_of: Callable[[int], tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Recall (right class), class confusion, false positives and recall by size of the
    detections at ``conf`` and above. NMS keeps a detection or not whatever the ones below
    the threshold are, so images scored down to ``AP_CONF`` give the figures of a prediction
    at ``conf`` (the threshold table's first row is the same count). ``background_of`` names
    image i's background (default: the demo recipe's held-out set's)."""
    from synth import CLASS_NAMES, heldout_background

    background_of = background_of or heldout_background

    found = {name: [0, 0] for name, _, _ in SIZE_BINS}  # bin: [right class, objects]
    per_class = {name: [0, 0] for name in CLASS_NAMES}
    confusion = np.zeros((len(CLASS_NAMES), len(CLASS_NAMES) + 1), int)  # last column: missed
    false_positives = 0
    kinds = dict.fromkeys(FALSE_POSITIVE_KINDS, 0)
    by_name: dict[str, dict[str, Any]] = {}  # by which photo or texture family
    for image in images:
        kind, name = background_of(image.index)
        named = by_name.setdefault(name, {"kind": kind, "images": 0, "false_positives": 0})
        named["images"] += 1
        truth, predicted, _, (pred_of, truth_of) = matched(image, conf)
        for t, (cls, mask) in enumerate(truth):
            p = pred_of[t]
            right = p is not None and predicted[p][0] == cls
            bin_ = found[size_bin(float(np.sqrt(mask.sum())) * image.scale)]
            bin_[0] += right
            bin_[1] += 1
            per_class[CLASS_NAMES[cls]][0] += right
            per_class[CLASS_NAMES[cls]][1] += 1
            confusion[cls, predicted[p][0] if p is not None else len(CLASS_NAMES)] += 1
        # A false positive: no true object under it, or the wrong class for the one it covers.
        for p, covered in enumerate(truth_of):
            if covered is None or predicted[p][0] != truth[covered][0]:
                false_positives += 1
                kinds[false_positive_kind(predicted[p], truth, covered)] += 1
                named["false_positives"] += 1
    objects = sum(n for _, n in per_class.values())
    return {
        "images": len(images),
        "objects": objects,
        "recall": round(sum(r for r, _ in per_class.values()) / max(1, objects), 4),
        "false_positives_per_image": round(false_positives / max(1, len(images)), 3),
        "false_positives_by_kind": kinds,
        "false_positives_by_background": by_background_kind(by_name),
        "false_positives_by_background_name": dict(
            sorted(by_name.items(), key=lambda item: (-item[1]["false_positives"], item[0]))
        ),
        "recall_per_class": {name: round(r / max(1, n), 4) for name, (r, n) in per_class.items()},
        "recall_by_size": [
            {"size": name, "objects": n, "recall": round(r / n, 4) if n else None}
            for name, (r, n) in found.items()
        ],
        "confusion": {
            CLASS_NAMES[i]: dict(zip([*CLASS_NAMES, "missed"], (int(v) for v in row), strict=True))
            for i, row in enumerate(confusion)
        },
    }


AP_CONF = 0.001  # as Ultralytics' validator: the whole precision-recall curve
AP_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0, float("inf")),
    (">= 16 px", 16, float("inf")),
    *SIZE_BINS,
)


@dataclass
class ScoredImage:
    """One predicted image (``ap50_by_size``, ``conf_tradeoff``, ``at_conf``): its true objects
    and detections as polygons in pixels, the letterbox scale that turns its pixels into
    pixels at model input, and its index in the set (its file name)."""

    height: int
    width: int
    scale: float
    truth: list[tuple[int, np.ndarray]]
    detections: list[tuple[int, float, np.ndarray]]
    index: int = 0


def _coco_annotations(images: list[ScoredImage]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """True objects and detections as COCO annotations (RLE masks), areas at model input."""
    from pycocotools import mask as mask_utils

    truth: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        objects = [(cls, 1.0, polygon, truth) for cls, polygon in image.truth]
        found = [(cls, score, polygon, detections) for cls, score, polygon in image.detections]
        for cls, score, polygon, into in objects + found:
            if len(polygon) < 3:  # a mask too small for the model to draw an outline of
                continue
            flat = np.asarray(polygon, np.float64).reshape(-1).tolist()
            rle = mask_utils.merge(mask_utils.frPyObjects([flat], image.height, image.width))
            into.append(
                {
                    "id": len(into) + 1,
                    "image_id": image_id,
                    "category_id": cls,
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)) * image.scale**2,
                    "bbox": mask_utils.toBbox(rle).tolist(),
                    "iscrowd": 0,
                    "score": score,
                }
            )
    return truth, detections


def ap50_by_size(images: list[ScoredImage], classes: int) -> list[dict[str, Any]]:
    """Mask AP at IoU 0.5 by object size with pycocotools' COCOeval (101-point interpolation,
    up to 100 detections an image), class-aware and class-agnostic. An object's size is the
    square root of its area at model input; COCO's rule for a size range: true objects outside
    it are ignored, and so are the detections that match them or, matching nothing, are
    outside it themselves."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth, detections = _coco_annotations(images)
    precision: dict[bool, np.ndarray] = {}  # agnostic: [iou, recall, class, size range, max dets]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground, found = COCO(), COCO()
        ground.dataset = {
            "images": [{"id": i, "height": im.height, "width": im.width} for i, im in enumerate(images, 1)],
            "annotations": truth,
            "categories": [{"id": c} for c in range(classes)],
        }
        found.dataset = {**ground.dataset, "annotations": detections}
        ground.createIndex()
        found.createIndex()
        for agnostic in (False, True) if detections else ():
            coco_eval = COCOeval(ground, found, iouType="segm")
            coco_eval.params.iouThrs = np.array([IOU_MATCH])
            coco_eval.params.maxDets = [DEFAULT_MAX_DET]
            coco_eval.params.areaRng = [[low**2, high**2] for _, low, high in AP_RANGES]
            coco_eval.params.areaRngLbl = [name for name, _, _ in AP_RANGES]
            coco_eval.params.useCats = int(not agnostic)
            coco_eval.evaluate()
            coco_eval.accumulate()
            precision[agnostic] = coco_eval.eval["precision"]
    rows = []
    for a, (name, low, high) in enumerate(AP_RANGES):
        objects = sum(low**2 <= ann["area"] < high**2 for ann in truth)
        row: dict[str, Any] = {"size": name, "objects": objects}
        for agnostic, key in ((False, "mask_ap50"), (True, "agnostic_mask_ap50")):
            curve = precision[agnostic][0, :, :, a, 0] if agnostic in precision else np.array([])
            defined = curve[curve > -1]  # -1: a class with no object in the range
            row[key] = None if not objects else round(float(defined.mean()), 4) if defined.size else 0.0
        rows.append(row)
    return rows


def heldout_scored(
    model: Any,
    data: Path,
    imgsz: int,
    bin_imgsz: int | None = None,
    *,
    conf: float = AP_CONF,
    agnostic_nms: bool | None = None,
) -> list[ScoredImage]:
    """The held-out split's images with their detections down to ``conf`` (by default
    ``AP_CONF``), sizes at model input of ``bin_imgsz`` (default: ``imgsz``)."""
    from import_photos import read_image

    images = []
    for path in sorted((data / "images" / "heldout").glob("*.jpg")):
        image = read_image(path)
        h, w = image.shape[:2]
        images.append(
            ScoredImage(
                height=h,
                width=w,
                scale=(bin_imgsz or imgsz) / max(h, w),
                truth=read_polygons(data / "labels" / "heldout" / f"{path.stem}.txt", h, w),
                detections=predict_polygons(model, image, imgsz, conf=conf, agnostic_nms=agnostic_nms),
                index=int(path.stem),  # files are named by index
            )
        )
    return images


def matched(
    image: ScoredImage, conf: float
) -> tuple[
    list[tuple[int, np.ndarray]],
    list[tuple[int, np.ndarray]],
    list[float],
    tuple[list[int | None], list[int | None]],
]:
    """An image's true objects and its detections from ``conf`` up as masks, the detections'
    scores, and ``match`` of the two (``at_conf`` and ``conf_tradeoff`` count from it)."""
    h, w = image.height, image.width
    truth = [(cls, raster(poly, h, w)) for cls, poly in image.truth]
    kept = [(cls, score, poly) for cls, score, poly in image.detections if score >= conf]
    predicted = [(cls, raster(poly, h, w)) for cls, _, poly in kept]
    return truth, predicted, [score for _, score, _ in kept], match(predicted, truth)


CONF_STEPS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)


def conf_tradeoff(images: list[ScoredImage], steps: tuple[float, ...] = CONF_STEPS) -> list[dict[str, Any]]:
    """Recall (the right class, mask IoU >= 0.5) and false positives per image at each conf
    threshold: what a job's ``params.conf`` trades. ``match`` is greedy, most confident
    first, so the detections above a threshold match as they would alone: one match per
    image serves every threshold."""
    scored: list[tuple[float, bool]] = []  # (score, right) of every detection >= the lowest step
    lowest = min(steps)
    for image in images:
        truth, predicted, scores, (_, truth_of) = matched(image, lowest)
        scored += [
            (score, t is not None and truth[t][0] == cls)
            for (cls, _), score, t in zip(predicted, scores, truth_of, strict=True)
        ]
    objects = max(1, sum(len(image.truth) for image in images))
    return [
        {
            "conf": step,
            "recall": round(sum(right for score, right in scored if score >= step) / objects, 4),
            "false_positives_per_image": round(
                sum(not right for score, right in scored if score >= step) / max(1, len(images)), 3
            ),
        }
        for step in steps
    ]


# What the card shows of the other generator's figures at conf 0.25.
OTHER_AT_CONF = (
    "images",
    "objects",
    "recall",
    "false_positives_per_image",
    "false_positives_by_kind",
    "false_positives_by_background_name",
    "recall_per_class",
    "recall_by_size",
)


def other_generator(weights: Path, model: Any, imgsz: int) -> dict[str, Any]:
    """The figures on the set of another generator (training/othergen.py), written if needed."""
    from othergen import OTHER_IMAGES, OTHER_VERSION, background_of, write_set

    write_set(OTHER_DATA)
    at_conf = heldout_at_default_conf(model, OTHER_DATA, imgsz, background_of=background_of)
    return {
        "set": {"version": OTHER_VERSION, "images": OTHER_IMAGES},
        **heldout_metrics(weights, OTHER_DATA, imgsz),
        **{k: at_conf[k] for k in OTHER_AT_CONF},
    }


def negative_photos() -> list[tuple[str, np.ndarray]]:
    """Photos with no shapes: the held-out split's photos and Ultralytics' two samples."""
    import ultralytics
    from import_photos import read_image
    from synth import HELDOUT_PHOTOS, load_photo

    assets = Path(ultralytics.__file__).parent / "assets"
    photos = [(f"skimage {name}", load_photo(name)) for name in HELDOUT_PHOTOS]
    return photos + [(name, read_image(assets / name)) for name in ("bus.jpg", "zidane.jpg")]


def negatives(model: Any, imgsz: int) -> dict[str, Any]:
    counts = {name: len(predict(model, image, imgsz)) for name, image in negative_photos()}
    return {
        "detections": counts,
        "false_positives_per_image": round(sum(counts.values()) / len(counts), 3),
        "max_per_image": max(counts.values()),
    }


def samples(model: Any, imgsz: int) -> dict[str, Any]:
    """The demo images: each shape found with the right class? anything extra?"""
    from import_photos import read_image
    from synth import SPLIT_SEEDS, make_image

    right = wrong_class = missed = extra = total = 0
    for i, path in enumerate(sorted((ROOT / "samples").glob("shapes-*.jpg"))):
        image = read_image(path)
        h, w = image.shape[:2]
        _, instances = make_image(SPLIT_SEEDS["demo"], i, size=(h, w))  # as synth.py --demo drew them
        truth = [(inst.class_id, raster(inst.polygon, h, w)) for inst in instances]
        predicted = predict(model, image, imgsz)
        pred_of, truth_of = match(predicted, truth)
        total += len(truth)
        for t, p in enumerate(pred_of):
            if p is None:
                missed += 1
            elif predicted[p][0] == truth[t][0]:
                right += 1
            else:
                wrong_class += 1
        extra += sum(t is None for t in truth_of)
    return {"shapes": total, "right": right, "wrong_class": wrong_class, "missed": missed, "extra": extra}


def evaluate_weights(
    weights: Path, data: Path = DEFAULT_DATA, imgsz: int | None = None, bin_imgsz: int | None = None
) -> dict[str, Any]:
    """The full evaluation of one checkpoint (what eval.json holds); recall by size is binned
    at ``bin_imgsz`` (default: the size evaluated at)."""
    from export import DEMO_AGNOSTIC_NMS, DEMO_IMGSZ
    from ultralytics import YOLO

    model = YOLO(str(weights))
    size = imgsz or DEMO_IMGSZ  # what the demo model's jobs run at (export.py)
    started = time.monotonic()
    heldout = heldout_metrics(weights, data, size)
    from synth import CLASS_NAMES, HELDOUT_IMAGES, HELDOUT_VERSION

    scored = heldout_scored(model, data, size, bin_imgsz)  # one pass, down to AP_CONF
    heldout.update(at_conf(scored))
    heldout["ap50_by_size"] = ap50_by_size(scored, len(CLASS_NAMES))
    if imgsz is None:  # at the default size: other thresholds, and NMS within a class only
        heldout["conf_tradeoff"] = conf_tradeoff(scored)
        aware = heldout_at_default_conf(model, data, size, agnostic_nms=False)
        heldout["class_aware_nms"] = {k: aware[k] for k in ("recall", "false_positives_per_image")}

    result = {
        "weights": weights.name,
        "heldout_set": {"recipe": HELDOUT_VERSION, "images": HELDOUT_IMAGES},  # which held-out set
        "sha256": sha256(weights),
        "imgsz": size,
        "conf": DEFAULT_CONF,
        "iou": DEFAULT_IOU,
        "max_detections": DEFAULT_MAX_DET,
        "agnostic_nms": DEMO_AGNOSTIC_NMS,
        # What `make train` compares (training/train.py decide()).
        "mask_map50": heldout["mask_map50"],
        "fp_per_negative_image": None,
        "heldout": heldout,
        "negatives": negatives(model, size),
        "samples": samples(model, size),
        "other_generator": other_generator(weights, model, size),
    }
    result["fp_per_negative_image"] = result["negatives"]["false_positives_per_image"]
    result["seconds"] = round(time.monotonic() - started)
    return result


def recorded_evaluation(weights: Path) -> dict[str, Any] | None:
    """The eval.json beside ``weights`` when it is of these weights, on this held-out set."""
    from synth import HELDOUT_IMAGES, HELDOUT_VERSION

    path = weights.with_name("eval.json")
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text())
    if not isinstance(recorded, dict) or recorded.get("sha256") != sha256(weights):
        return None
    if recorded.get("heldout_set") != {"recipe": HELDOUT_VERSION, "images": HELDOUT_IMAGES}:
        return None
    return recorded


def parse_sizes(text: str) -> list[int]:
    """``--sizes``: image sizes separated by commas, each a positive multiple of the stride
    (other sizes would be rounded up by the model's letterbox), in increasing order."""
    try:
        sizes = sorted({int(value) for value in text.split(",") if value.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of image sizes: {text!r}") from exc
    if not sizes or any(size <= 0 or size % STRIDE for size in sizes):
        raise argparse.ArgumentTypeError(f"image sizes must be positive multiples of {STRIDE}: {text!r}")
    return sizes


def sweep_row(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the image size trade-off keeps of one size's evaluation (evaluate_weights)."""
    heldout, sample = evaluation["heldout"], evaluation["samples"]
    return {
        "imgsz": evaluation["imgsz"],
        "mask_map50": heldout["mask_map50"],
        "agnostic_mask_map50": heldout["agnostic_mask_map50"],
        "mask_ap50_from_16_px": next(
            (row["mask_ap50"] for row in heldout.get("ap50_by_size", []) if row["size"] == ">= 16 px"), None
        ),
        "recall": heldout["recall"],
        "false_positives_per_image": heldout["false_positives_per_image"],
        "fp_per_negative_image": evaluation["negatives"]["false_positives_per_image"],
        "max_per_negative_image": evaluation["negatives"].get("max_per_image"),
        "recall_by_size": heldout["recall_by_size"],
        "samples": {key: sample[key] for key in ("shapes", "right", "wrong_class", "missed", "extra")},
        "other_generator": {
            key: other[key]
            for key in ("mask_map50", "agnostic_mask_map50", "recall", "false_positives_per_image")
        }
        if (other := evaluation.get("other_generator"))
        else None,
        "seconds": evaluation["seconds"],
    }


def speed_images() -> list[Path]:
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    return [image if isinstance(image, Path) else assets / image for image in SPEED_IMAGES]


def job_times(weights: Path, sizes: list[int], runs: int = SPEED_RUNS) -> dict[str, Any] | None:
    """Warm whole-job times (ms) at each size on the function's code path: ``segment_image``
    with the ONNX Runtime ``Segmenter`` on the export of ``weights`` (as bench/segment_bench.py
    runs it), the sizes interleaved run by run so that load on the machine hits all alike.
    None when there is no export of these weights beside them."""
    onnx, record = weights.with_suffix(".onnx"), weights.with_suffix(".export.json")
    if not (onnx.is_file() and record.is_file()):
        return None
    if json.loads(record.read_text()).get("sourceSha256") != sha256(weights):
        return None
    sys.path.insert(0, str(ROOT / "functions" / "segment"))
    from import_photos import read_image

    from segjob_core.models import JobParams, SegmentRequest
    from segmentation.runtime import Segmenter
    from segmentation.service import MemoryStore, segment_image, warm_up
    from segmentation.settings import SegmentSettings

    threads = len(os.sched_getaffinity(0))
    segmenter = Segmenter.load(onnx, threads=threads)
    warm_up(segmenter)
    store, max_pixels = MemoryStore(), SegmentSettings().max_image_pixels

    def job(key: str, size: int) -> tuple[float, int]:
        request = SegmentRequest(job_id="job_sweep", bucket="sweep", key=key, params=JobParams(imgsz=size))
        outcome = segment_image(request, segmenter=segmenter, store=store, max_image_pixels=max_pixels)
        return outcome.timings.to_json_dict()["total"], outcome.summary.count

    images: dict[str, Any] = {}
    for path in speed_images():
        store.objects[("sweep", path.name)] = path.read_bytes()
        shape = read_image(path).shape
        counts = {size: job(path.name, size)[1] for size in sizes}  # the first at a size: not warm
        totals: dict[int, list[float]] = {size: [] for size in sizes}
        for run in range(runs):
            for size in sizes[run % len(sizes) :] + sizes[: run % len(sizes)]:
                totals[size].append(job(path.name, size)[0])
        images[path.name] = {
            "pixels": f"{shape[1]}x{shape[0]}",
            "by_imgsz": {
                str(size): {
                    "median_ms": round(statistics.median(totals[size]), 1),
                    "p90_ms": round(percentile(totals[size], 0.9), 1),
                    "detections": counts[size],
                }
                for size in sizes
            },
        }
    return {
        "onnx": onnx.name,
        "runs": runs,
        "threads": threads,
        "vcpus": len(os.sched_getaffinity(0)),
        "images": images,
    }


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (nearest rank, as bench/stats.py)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def imgsz_sweep(weights: Path, data: Path, sizes: list[int], evaluation: dict[str, Any]) -> dict[str, Any]:
    """The image size trade-off: ``evaluation`` (at the default size) and the evaluation of the
    same weights at each other size, recall by size binned at the default size; job times."""
    default = evaluation["imgsz"]
    rows = []
    for size in sizes:
        at_size = evaluation if size == default else evaluate_weights(weights, data, size, bin_imgsz=default)
        rows.append(sweep_row(at_size))
        print(f"imgsz {size}: evaluated in {at_size['seconds']} s", flush=True)
    return {"binned_at": default, "sizes": rows, "job_times": job_times(weights, sizes)}


def sweep_section(sweep: dict[str, Any] | None, conf: float) -> str:
    """The card's "Image size trade-off" (empty without a sweep in eval.json)."""
    if not sweep:
        return ""
    times = sweep["job_times"]
    bins = [b["size"] for b in sweep["sizes"][0]["recall_by_size"]]
    images = list(times["images"]) if times else []
    header = (
        ["imgsz", "mask mAP50", "class-agnostic", "mask AP50 >= 16 px"]
        + ["FP / held-out image", "FP / shape-free photo"]
        + [f"recall {name}" for name in bins]
        + ["samples right / extra", "another generator: mAP50 / FP per image"]
        + [f"{name} ms (median / p90)" for name in images]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sweep["sizes"]:
        cells = [
            str(row["imgsz"]),
            f"{row['mask_map50']:.3f}",
            f"{row['agnostic_mask_map50']:.3f}",
            "-" if row.get("mask_ap50_from_16_px") is None else f"{row['mask_ap50_from_16_px']:.3f}",
            f"{row['false_positives_per_image']:.2f}",
            f"{row['fp_per_negative_image']:.2f}"
            + (
                "" if row.get("max_per_negative_image") is None else f" (max {row['max_per_negative_image']})"
            ),
            *("-" if b["recall"] is None else f"{b['recall']:.3f}" for b in row["recall_by_size"]),
            f"{row['samples']['right']}/{row['samples']['shapes']} / {row['samples']['extra']}",
            f"{other['mask_map50']:.3f} / {other['false_positives_per_image']:.2f}"
            if (other := row.get("other_generator"))
            else "-",
        ]
        for name in images:
            time_ = times["images"][name]["by_imgsz"].get(str(row["imgsz"]))
            cells.append(f"{time_['median_ms']:.0f} / {time_['p90_ms']:.0f}" if time_ else "-")
        lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{b['size']} {b['objects']}" for b in sweep["sizes"][0]["recall_by_size"])
    timing = (
        "Times: one whole job (decode, inference, postprocess, annotate, encode; in-memory store)\n"
        "on the function's code path, `segment_image` with the ONNX Runtime `Segmenter` on\n"
        f"`{times['onnx']}`, {times['threads']} threads on {times['vcpus']} vCPUs, median and p90 of "
        f"{times['runs']} warm runs at each size,\nthe sizes interleaved ("
        + ", ".join(f"{name} {image['pixels']}" for name, image in times["images"].items())
        + ")."
        if times
        else "No job times: no ONNX export of these weights beside them."
    )
    return f"""## Image size trade-off

The same weights at other image sizes (a job's `params.imgsz`; the image is scaled so that
its longer side is that size). Figures at conf {conf} as above, except that object sizes
(recall by size, AP50 of the shapes >= 16 px) are taken at imgsz {sweep["binned_at"]} for every
row, so that each column holds the same shapes ({counts}).

{chr(10).join(lines)}

{timing}

"""


CARD = """# Demo model: shapes-seg

A YOLOv8n-seg network trained by this project, on CPU, on synthetic images of four simple
shapes, so that the stack can be demonstrated and tested with a model that really finds
something, with no download. It finds circles, triangles, rectangles and stars drawn
flat on photographs and textures; use your own `best.pt` for real work (see the README,
"Your own model").

| | |
|---|---|
| file | `functions/segment/model/shapes-seg.pt` ({size_mb:.1f} MB, weights only) |
| sha256 | `{sha}` |
{onnx_row}| architecture | YOLOv8n-seg (`yolov8n-seg.yaml`), {nc} classes |
| classes | {classes} |
| default image size | {imgsz}, in the export's metadata: a job without `params.imgsz` runs at it (trained at {trained_imgsz}; other sizes: the image size trade-off below) |
| default threshold | conf {conf}, iou {iou}, at most {max_det} detections (the jobs' defaults), {nms} (the model's default, in its export's metadata: a job's `params.agnosticNms`): every figure below "at conf" is at these |
| trained | {epochs} epochs in {runs} run(s), {hours:.2f} h on {cpus} CPU cores (the last run: {last_run}) |
| data | {data} |

## Held-out evaluation

{heldout_images} images of `make_heldout_image` ({objects} shapes): backgrounds from photos and
texture families that training never sees, image sides 320 to 800 px, 10% without shapes.

| imgsz {imgsz} | box mAP50 | box mAP50-95 | mask mAP50 | mask mAP50-95 |
|---|---|---|---|---|
| all classes | {box_map50:.3f} | {box_map50_95:.3f} | {mask_map50:.3f} | {mask_map50_95:.3f} |
| class-agnostic | | | {agnostic_mask_map50:.3f} | {agnostic_mask_map50_95:.3f} |
{class_rows}

At conf {conf}: recall {recall:.3f} (the right class, mask IoU >= 0.5), **{heldout_fp:.2f} false
positives per image** (a detection on no shape, or of the wrong class).{fp_kinds}

| class | recall at conf {conf} | taken for circle | triangle | rectangle | star | missed |
|---|---|---|---|---|---|---|
{confusion_rows}

Recall by object size (the square root of its area, in pixels at model input: the image is
scaled so that its longer side is {imgsz}):

| size | objects | recall at conf {conf} |
|---|---|---|
{size_rows}

Mask AP50 by object size, the same sizes: where the mAP is lost. pycocotools' COCOeval
(IoU 0.5, 101-point interpolation, detections down to conf {ap_conf}, at most {max_det} an
image); in a size range, true objects outside it do not count, nor do detections that match
them or, matching nothing, are outside it themselves (COCO's rule). Its "all" differs a
little from the validator's mask mAP50 above, which interpolates otherwise.

| size | objects | mask AP50 | class-agnostic |
|---|---|---|---|
{ap_rows}

{other_section}## Photos without shapes

Detections at conf {conf} on photos that contain none of the four shapes, **{negative_fp:.2f} per
photo** (at most {negative_max}):

| photo | detections |
|---|---|
{negative_rows}

The skimage photos are the held-out split's, whole. `coins` and `clock` are not among them:
they show round discs, which are circles to this model, not photos without shapes.

## The demo images

`samples/shapes-*.jpg` ({sample_shapes} shapes, drawn by `training/synth.py --demo`): {sample_right}
found with the right class, {sample_wrong} with the wrong class, {sample_missed} missed, {sample_extra}
extra detections.

## The default threshold

Jobs default to conf {conf}, and the figures above are what a job without `params.conf` gets:
at it, photos without shapes give {negative_fp:.2f} detections each (at most {negative_max}) and
the held-out set {heldout_fp:.2f} false positives per image. {nms_line}The model is not retuned to another
default because the default belongs to the jobs, not to this model (your own model runs with
it too). A lower `params.conf` finds more of the small and low-contrast shapes at the cost of
false positives on photos; the mAP figures (over all thresholds) show what there is to gain.
{conf_section}
{sweep_section}## What it is not for

- Real objects: it knows four flat geometric shapes, nothing else. On a photo of anything
  else it should find nothing, and a round or boxy object (a coin, a clock, a window) may
  well come out as a circle or a rectangle.
- Drawings: line drawings, outlines, 3-D objects and perspective are not in its data.
- Benchmarks of accuracy: the data is synthetic; its figures say how the stack behaves, not
  how a model trained on real data would.

## Data

What `make train` trains on: `training/synth.py` `make_mixed_image`, {recipe_train} training
images (seed 11) and {recipe_val} validation images (seed 12), 256 to 640 px, each a pure
function of (seed, index). {train_photo_share}% of
the backgrounds are photos (the held-out set: {heldout_photo_share}%), the rest generated textures (training families: {train_families};
held-out only: {heldout_families}); a quarter get distractor lines, and {clutter_share}% clutter
under the shapes: text, irregular blobs and open arcs; {object_share}% get 1 to 3 photographed
objects cut out on transparency (animals, tools, household things, trees: {cutouts} of Tux
Paint's stamps) under the shapes (the held-out set has neither). Training
photos are jittered (the held-out ones are not): 30% turned by a quarter, crops from 15% of
the photo's side to all of it, 40% in another palette (channels swapped, hue
turned). This is the recipe's version {recipe_version}, the log's `recipe` column (version 1:
1200 images, no clutter, no marble or grain; version 2: clutter, marble and grain; version 3:
four more photos, the terrain family, photo jitter, more photos than textures; version 4: 18 real
scenes from OpenCV's samples; version 5: 12 photographs among Debian's desktop wallpapers; version 6: 10 more; version 7: the cut-out objects).{recipe_of_weights} 30% of the images have no
shape (hard negatives); the others 1 to 7 shapes with sizes log-uniform from ~10 px across to
half the frame (15% of them one or two shapes filling most of it), mild occlusion (at most
15% covered), a few cut by the border, 15% low contrast; then blur, noise, grayscale (15%),
low contrast (10%) and JPEG quality 40 to 95.

Photos: sample images that the training toolchain's packages ship (read from the installed
package, never downloaded) and, for training only, real scenes from the examples of Debian's
`opencv-doc` package (OpenCV's samples), scaled down and committed in `training/photos/`
(`training/import_photos.py` makes them; Apache-2.0 AND BSD-3-Clause, as Debian's copyright
file for the package says; `training/photos/README.md`) and, since version 5, the photographs
among the wallpapers of Debian's mate-backgrounds (GPL-2.0-or-later) and
plasma-workspace-wallpapers (GPL-2+ by Debian's copyright file, LGPLv3 by each wallpaper's
metadata; authors credited in that README), and since version 6, of lomiri-wallpapers-16.04
and -20.04 (CC-BY-4.0, CC-BY-SA-4.0, CC-BY-SA-3.0 per file; authors credited there). The
cut-out objects: Debian's tuxpaint-stamps-default, GPL-2.0-or-later, committed in
`training/cutouts/` (its README.md). Training photos: {train_photos};
held-out: {heldout_photos}. The scikit-image ones are in `skimage/data/`; scikit-image
is BSD-3-Clause licensed; each image's origin and terms are in the docstring of its
`skimage.data` function: camera, chelsea, coffee, grass, gravel and brick are CC0;
astronaut, hubble_deep_field, text and rocket public domain; ihc "no known copyright
restrictions"; moon and page state nothing beyond the package's license; the motorcycle
pair (held-out only) is from the Middlebury 2014 stereo benchmark. china and flower are
scikit-learn's (`sklearn/datasets/images/`, CC BY 2.0, by danielbuechele and vultilion on
Flickr, as its README.txt says); aero and ascent are PyWavelets' test images (`pywt/data/`,
shipped under its MIT license). The terrain family shades matplotlib's sample elevation
maps (`jacksboro_fault_dem`, `topobathy`). Left out everywhere:
the images that show round discs or drawn shapes (coins, clock, retina, cell,
microaneurysms, phantom, chessboard, color, logo; matplotlib's grace_hopper, for the stars
of the flag behind her).

## How it was trained

Runs (from `training_log.json`):

{run_table}

`make train` (= `python training/train.py`) trains from the committed weights, then keeps
the run's weights (its best.pt or last.pt, the higher mAP50 of those that pass) only when
they are not worse on any figure of the evaluation: held-out mask
mAP50 not lower, false positives per held-out image and per shape-free photo not higher,
no shape-free photo with more detections than the committed weights' worst, and on the
demo images no fewer right and no more extra. It says which it kept
(`--adopt` to keep the new ones anyway). Every run leaves its last weights (optimizer
state stripped) at `training/checkpoints/shapes-seg-last.pt`; to go on from there:

```
python training/train.py --hours 1 --start training/checkpoints/shapes-seg-last.pt
```

Re-run the evaluation: `make eval` (= `python training/evaluate.py`); it writes `eval.json`
and renders this card from it. Evaluated in {seconds} s.
"""


# The card's "data" row, by the "data" of the last run in training_log.json.
DATA_OF_RUN = {
    "synth.make_image": "`training/synth.py` `make_image` (the simple generator: shapes on gradients), "
    "{images} images",
    "synth.make_mixed_image": '`training/synth.py` `make_mixed_image`, {images} images (see "Data")',
}


def onnx_row(weights: Path) -> str:
    """The card's row of the ONNX export the function runs (written by training/export.py)."""
    from export import card_row

    record = weights.with_suffix(".export.json")
    return card_row(json.loads(record.read_text())) if record.is_file() else ""


def recipe_of_weights(trained_on: int | None, current: int) -> str:
    """The card's word on a recipe that the committed weights were not (last) trained on."""
    if trained_on is None or trained_on == current:
        return ""
    return (
        f" The committed weights' last run trained on version {trained_on}: no run on version"
        f" {current} has been kept yet."
    )


def render_card(weights: Path, evaluation: dict[str, Any], log: dict[str, Any], names: dict[int, str]) -> str:
    """The model card: every figure comes from ``evaluation`` (eval.json) or ``log``."""
    from synth import (
        CLUTTER_SHARE,
        HELDOUT_FAMILIES,
        HELDOUT_PHOTOS,
        OBJECT_CUTOUTS,
        OBJECT_SHARE,
        PHOTO_SHARE,
        RECIPE_VERSION,
        TRAIN_FAMILIES,
        TRAIN_IMAGES,
        TRAIN_PHOTO_SHARE,
        TRAIN_PHOTOS,
        VAL_IMAGES,
    )

    heldout, negative, sample = evaluation["heldout"], evaluation["negatives"], evaluation["samples"]
    runs = log["runs"]
    last = runs[-1]
    run_table = (
        "| finished | from | epochs | imgsz | train images | recipe | seconds |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r['finished']} | {r['from']} | {r['epochs']} | {r['imgsz']} | {r.get('train_images')} "
            f"| {r.get('recipe') or '-'} | {r['seconds']} |"
            for r in runs
        )
    )
    return CARD.format(
        size_mb=weights.stat().st_size / 1e6,
        sha=evaluation["sha256"],
        onnx_row=onnx_row(weights),
        nc=len(names),
        classes=", ".join(f"{i} `{n}`" for i, n in names.items()),
        imgsz=evaluation["imgsz"],
        trained_imgsz=last["imgsz"],
        conf=evaluation["conf"],
        iou=evaluation["iou"],
        max_det=evaluation["max_detections"],
        nms="NMS across classes" if evaluation.get("agnostic_nms") else "class-aware NMS",
        nms_line=nms_line(evaluation),
        epochs=log["total_epochs"],
        runs=len(runs),
        hours=log["total_seconds"] / 3600,
        cpus=last["cpu_count"],
        last_run=f"{last['epochs']} epochs from {last['from']}, batch {last['batch']}",
        data=DATA_OF_RUN.get(last.get("data", "synth.make_image"), last.get("data")).format(
            images=last.get("train_images")
        ),
        recipe_train=TRAIN_IMAGES,
        clutter_share=round(CLUTTER_SHARE * 100),
        object_share=round(OBJECT_SHARE * 100),
        cutouts=len(OBJECT_CUTOUTS),
        recipe_version=RECIPE_VERSION,
        recipe_of_weights=recipe_of_weights(last.get("recipe"), RECIPE_VERSION),
        recipe_val=VAL_IMAGES,
        train_photo_share=round(TRAIN_PHOTO_SHARE * 100),
        heldout_photo_share=round(PHOTO_SHARE * 100),
        heldout_images=heldout["images"],
        objects=heldout["objects"],
        box_map50=heldout["box_map50"],
        box_map50_95=heldout["box_map50_95"],
        mask_map50=heldout["mask_map50"],
        mask_map50_95=heldout["mask_map50_95"],
        agnostic_mask_map50=heldout["agnostic_mask_map50"],
        agnostic_mask_map50_95=heldout["agnostic_mask_map50_95"],
        class_rows="\n".join(
            f"| {name} | | | {v['mask_map50']:.3f} | {v['mask_map50_95']:.3f} |"
            for name, v in heldout["per_class"].items()
        ),
        recall=heldout["recall"],
        heldout_fp=heldout["false_positives_per_image"],
        fp_kinds=fp_kinds_line(heldout.get("false_positives_by_kind"))
        + fp_backgrounds_line(
            heldout.get("false_positives_by_background"), heldout.get("false_positives_by_background_name")
        ),
        confusion_rows="\n".join(
            f"| {name} | {heldout['recall_per_class'][name]:.3f} | "
            + " | ".join(str(v) for v in row.values())
            + " |"
            for name, row in heldout["confusion"].items()
        ),
        size_rows="\n".join(
            f"| {b['size']} | {b['objects']} | {'-' if b['recall'] is None else format(b['recall'], '.3f')} |"
            for b in heldout["recall_by_size"]
        ),
        ap_conf=AP_CONF,
        ap_rows="\n".join(
            f"| {r['size']} | {r['objects']} | "
            + " | ".join("-" if r[k] is None else f"{r[k]:.3f}" for k in ("mask_ap50", "agnostic_mask_ap50"))
            + " |"
            for r in heldout["ap50_by_size"]
        ),
        negative_fp=negative["false_positives_per_image"],
        negative_max=negative["max_per_image"],
        negative_rows="\n".join(f"| {name} | {n} |" for name, n in negative["detections"].items()),
        sample_shapes=sample["shapes"],
        sample_right=sample["right"],
        sample_wrong=sample["wrong_class"],
        sample_missed=sample["missed"],
        sample_extra=sample["extra"],
        train_families=", ".join(TRAIN_FAMILIES),
        heldout_families=", ".join(HELDOUT_FAMILIES),
        train_photos=", ".join(TRAIN_PHOTOS),
        heldout_photos=", ".join(HELDOUT_PHOTOS),
        run_table=run_table,
        seconds=evaluation["seconds"],
        sweep_section=sweep_section(evaluation.get("imgsz_sweep"), evaluation["conf"]),
        conf_section=conf_section(heldout.get("conf_tradeoff")),
        other_section=other_section(
            evaluation.get("other_generator"), evaluation["imgsz"], evaluation["conf"]
        ),
    )


def conf_section(rows: list[dict[str, Any]] | None, bar: float = 0.1) -> str:
    """The card's table of a higher ``params.conf``: recall and false positives per held-out
    image at each threshold (absent from older eval.json)."""
    if not rows:
        return ""
    table = "\n".join(
        f"| {r['conf']:.2f} | {r['recall']:.3f} | {r['false_positives_per_image']:.2f} |" for r in rows
    )
    within = next((r for r in rows if r["false_positives_per_image"] <= bar), None)
    line = (
        f"From conf {within['conf']:.2f} the held-out false positives are at most {bar} per image "
        f"(recall {within['recall']:.3f}): a job that would rather miss a shape than report a wrong one "
        f"can ask for it."
        if within
        else f"No threshold here brings the held-out false positives to {bar} per image."
    )
    return f"""
A higher `params.conf` trades recall for fewer false positives (the held-out set, at the
default image size; the same detections as above, kept from each threshold up):

| conf | recall | false positives per held-out image |
|---|---|---|
{table}

{line}
"""


def other_section(other: dict[str, Any] | None, imgsz: int, conf: float) -> str:
    """The card's section on the other generator's set (absent from older eval.json)."""
    if not other:
        return ""
    per_class = ", ".join(f"{name} {v['mask_map50']:.3f}" for name, v in other["per_class"].items())
    by_name = other["false_positives_by_background_name"]
    sizes = ", ".join(
        f"{b['size']} {'-' if b['recall'] is None else format(b['recall'], '.3f')} ({b['objects']})"
        for b in other["recall_by_size"]
    )
    return f"""## Shapes from another generator

{other["images"]} images of `training/othergen.py` ({other["objects"]} shapes): the four classes as PIL's
ImageDraw draws them (exact circles; equilateral, isosceles and right triangles; upright,
turned and rounded rectangles; slim and fat stars; 25% outlined in another colour, 15%
translucent) over embossed noise, radial gradients, blurred noise, flat colours
and the held-out photos, image sides 320 to 800 px. The held-out set above has unseen
backgrounds; this one changes the drawing itself. It is a check only: never trained on,
and the recipe is not tuned to it.

| imgsz {imgsz} | mask mAP50 | mask mAP50-95 | class-agnostic mask mAP50 | recall at conf {conf} | false positives per image |
|---|---|---|---|---|---|
| another generator | {other["mask_map50"]:.3f} | {other["mask_map50_95"]:.3f} | {other["agnostic_mask_map50"]:.3f} | {other["recall"]:.3f} | {other["false_positives_per_image"]:.2f} |

Mask mAP50 by class: {per_class}. Recall at conf {conf} by object size (objects): {sizes}.{fp_kinds_line(other.get("false_positives_by_kind"))}{fp_backgrounds_line(by_background_kind(by_name), by_name)}

"""


def fp_kinds_line(kinds: dict[str, int] | None) -> str:
    """The card's breakdown of the held-out false positives (absent from older eval.json)."""
    if not kinds:
        return ""
    words = {
        "background": "on no shape at all",
        "wrong_class": "a shape taken for another class",
        "duplicate": "a second detection of a shape",
        "poor_mask": "a mask that misses its shape (IoU 0.1 to 0.5)",
    }
    parts = "; ".join(f"{kinds.get(k, 0)} {words[k]}" for k in FALSE_POSITIVE_KINDS)
    return f"\nOf the {sum(kinds.values())} false positives: {parts}."


def fp_backgrounds_line(
    backgrounds: dict[str, dict[str, Any]] | None, by_name: dict[str, dict[str, Any]] | None = None
) -> str:
    """Where the held-out false positives are: on the held-out photos or on the held-out
    textures, and on which ones, most first (absent from older eval.json)."""
    if not backgrounds:
        return ""
    parts = [
        f"{v['false_positives']} on the {v['images']} images over {kind}s ({v['per_image']:.2f} per image)"
        for kind, v in backgrounds.items()
        if v["images"]
    ]
    line = " By background: " + "; ".join(parts) + "."
    if not by_name:
        return line
    named = (f"{name} ({v['kind']}) {v['false_positives']} on {v['images']}" for name, v in by_name.items())
    return line + " By which one: " + ", ".join(named) + "."


def nms_line(evaluation: dict[str, Any]) -> str:
    """The card's word on the model's NMS default, from the class-aware figures eval.json holds."""
    aware = evaluation["heldout"].get("class_aware_nms")
    if not evaluation.get("agnostic_nms") or not aware:
        return ""
    return (
        f"The model suppresses across classes by default (`params.agnosticNms`): its shapes never overlap, and\n"
        f"with class-aware NMS a small shape often came out twice, under two classes. Class-aware, the held-out\n"
        f"set gives recall {aware['recall']:.3f} and {aware['false_positives_per_image']:.2f} false positives "
        f"per image.\n"
    )


def write_card(weights: Path, evaluation: dict[str, Any] | None = None) -> Path:
    """eval.json (when given a new evaluation) and MODEL_CARD.md rendered from eval.json."""
    import torch

    eval_path = weights.with_name("eval.json")
    if evaluation is not None:
        eval_path.write_text(json.dumps(evaluation, indent=2) + "\n")
    evaluation = json.loads(eval_path.read_text())
    names = torch.load(weights, map_location="cpu", weights_only=False)["model"].names
    log = json.loads(weights.with_name("training_log.json").read_text())
    path = weights.with_name("MODEL_CARD.md")
    path.write_text(render_card(weights, evaluation, log, names))
    return path


def summary(evaluation: dict[str, Any]) -> str:
    h, n, s = evaluation["heldout"], evaluation["negatives"], evaluation["samples"]
    return (
        f"{evaluation['weights']} at imgsz {evaluation['imgsz']}: held-out mask mAP50 {h['mask_map50']:.3f} "
        f"(mAP50-95 {h['mask_map50_95']:.3f}, class-agnostic {h['agnostic_mask_map50']:.3f}); at conf "
        f"{evaluation['conf']}: recall {h['recall']:.3f}, {h['false_positives_per_image']:.2f} false positives per "
        f"held-out image, {n['false_positives_per_image']:.2f} per shape-free photo (max {n['max_per_image']}); "
        f"samples {s['right']}/{s['shapes']} right, {s['wrong_class']} wrong class, {s['extra']} extra\n"
        f"recall by size: " + ", ".join(f"{b['size']} {b['recall']}" for b in h["recall_by_size"]) + "\n"
        "mask AP50 by size: " + ", ".join(f"{r['size']} {r['mask_ap50']}" for r in h["ap50_by_size"]) + "\n"
        "per class mask mAP50: "
        + ", ".join(f"{k} {v['mask_map50']}" for k, v in h["per_class"].items())
        + other_summary(evaluation.get("other_generator"))
    )


def other_summary(other: dict[str, Any] | None) -> str:
    if not other:
        return ""
    return (
        f"\nanother generator: mask mAP50 {other['mask_map50']:.3f} (class-agnostic "
        f"{other['agnostic_mask_map50']:.3f}), recall {other['recall']:.3f}, "
        f"{other['false_positives_per_image']:.2f} false positives per image"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--imgsz", type=int, default=None, help="default: the checkpoint's training size")
    parser.add_argument("--no-card", action="store_true", help="print the figures, write nothing")
    parser.add_argument(
        "--map-only", action="store_true", help="only the validator's mAP (e.g. your own --data)"
    )
    parser.add_argument("--card-only", action="store_true", help="render the card from the eval.json there")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help="also evaluate and time the weights at these image sizes, e.g. 320,416,512,640",
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: every core)"
    )
    args = parser.parse_args()
    from ultralytics.utils import torch_utils

    # Ultralytics' predictor and validator give torch cpu_count - 1 threads on CPU (its
    # select_device), one of this machine's two cores. The figures do not depend on it; the
    # time does. (The sweep's job times are the ONNX runtime's, with threads of their own.)
    torch_utils.NUM_THREADS = args.threads
    if args.sizes and (args.card_only or args.map_only or args.data.resolve() != DEFAULT_DATA.resolve()):
        parser.error("--sizes is part of the full evaluation of the demo recipe's held-out set")
    if args.card_only:
        print(f"wrote {write_card(args.weights)}")
        return
    if args.map_only or args.data.resolve() != DEFAULT_DATA.resolve():
        from export import trained_imgsz
        from ultralytics import YOLO

        size = args.imgsz or trained_imgsz(YOLO(str(args.weights)))
        print(json.dumps(heldout_metrics(args.weights, args.data, size), indent=2))
        return
    evaluation = evaluate_weights(args.weights, args.data, args.imgsz)
    print(summary(evaluation))
    print(f"evaluated in {evaluation['seconds']} s")
    if args.sizes:
        evaluation["imgsz_sweep"] = imgsz_sweep(args.weights, args.data, args.sizes, evaluation)
        print(sweep_section(evaluation["imgsz_sweep"], evaluation["conf"]))
    if not args.no_card:
        print(f"wrote {write_card(args.weights, evaluation)}")


if __name__ == "__main__":
    main()

"""COCO instance segmentation from result.json documents (one image or a whole batch).

The format pycocotools and dataset tools (FiftyOne, CVAT, Roboflow, Detectron2) load as
is: ``images``, ``annotations`` (polygon ``segmentation`` as flat x, y lists, ``bbox`` as
x, y, width, height, ``area``, ``iscrowd`` 0, and the detection's ``score``) and
``categories``. Category ids are the model's class ids + 1: COCO tools treat id 0 as
background. Used by the segment function (``params.outputs: ["coco"]``) and by the batch
function (the export of a whole batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .models import Detection, ImageInfo


def category_id(class_id: int) -> int:
    return class_id + 1


@dataclass(frozen=True)
class CocoImage:
    """One image of the dataset: the file name it is listed under, its size, its detections."""

    file_name: str
    image: ImageInfo
    detections: list[Detection]


def _segmentation(detection: Detection) -> list[list[float]]:
    points = detection.polygon
    if len(points) < 3:  # a degenerate polygon: its box, so every annotation has an area
        x1, y1, x2, y2 = detection.bbox
        points = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
    return [[round(value, 2) for point in points for value in point]]


def annotation(detection: Detection, annotation_id: int, image_id: int) -> dict[str, Any]:
    x1, y1, x2, y2 = detection.bbox
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id(detection.class_id),
        "segmentation": _segmentation(detection),
        "area": round(detection.area, 2),
        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
        "iscrowd": 0,
        "score": round(detection.confidence, 5),
    }


def coco_dataset(
    images: Iterable[CocoImage], classes: Mapping[int, str], description: str = "segjob results"
) -> dict[str, Any]:
    """The COCO document of ``images``; image ids count from 1 in the given order."""
    coco_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        info = image.image
        coco_images.append(
            {"id": image_id, "file_name": image.file_name, "width": info.width, "height": info.height}
        )
        for detection in image.detections:
            annotations.append(annotation(detection, len(annotations) + 1, image_id))
    categories = [
        {"id": category_id(class_id), "name": name, "supercategory": "object"}
        for class_id, name in sorted(classes.items())
    ]
    return {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "images": coco_images,
        "annotations": annotations,
        "categories": categories,
    }

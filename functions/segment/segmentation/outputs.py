"""Optional result files of a job (``params.outputs``), beside result.json and annotated.jpg:

- ``coco``: ``results/{jobId}/coco.json``, the job's detections as a COCO instance
  segmentation dataset of one image (``segjob_core.coco``, the same builder as a batch's).
- ``masks``: ``results/{jobId}/masks.png``, a 16-bit single-channel PNG at the original
  resolution; pixel value i (from 1) is detection i of result.json, 0 is background; where
  detections overlap the more confident one (listed first) is shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from segjob_core.coco import CocoImage, coco_dataset
from segjob_core.keys import output_key
from segjob_core.models import Detection, ImageInfo, OutputKind

# A 16-bit label map holds every detection a job may have (maxDetections <= 1000).
MAX_LABEL = np.iinfo(np.uint16).max


@dataclass(frozen=True)
class OutputFile:
    kind: OutputKind
    key: str
    body: bytes
    content_type: str


def instance_label_map(detections: Sequence[Detection], width: int, height: int) -> np.ndarray:
    """uint16 (height, width): detection i (from 1) where its polygon lies, else 0; drawn
    last to first, so an earlier (more confident) detection covers a later one."""
    labels = np.zeros((height, width), np.uint16)
    for index, detection in reversed(list(enumerate(detections[:MAX_LABEL], start=1))):
        if len(detection.polygon) >= 3:
            points = np.round(np.asarray(detection.polygon, np.float64)).astype(np.int32)
            cv2.fillPoly(labels, [points], index)
    return labels


def encode_png(pixels: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", pixels)
    if not ok:
        raise RuntimeError("OpenCV could not encode the label map as PNG")
    return buffer.tobytes()


def render_outputs(
    kinds: Sequence[OutputKind],
    job_id: str,
    *,
    image: ImageInfo,
    detections: list[Detection],
    classes: dict[int, str],
    file_name: str | None = None,
) -> list[OutputFile]:
    """The files ``kinds`` ask for, encoded (the caller uploads them)."""
    files = []
    for kind in dict.fromkeys(kinds):  # each kind once, in the order asked
        if kind == "coco":
            dataset = coco_dataset([CocoImage(file_name or job_id, image, detections)], classes)
            body = json.dumps(dataset, separators=(",", ":")).encode()
            files.append(OutputFile(kind, output_key(job_id, kind), body, "application/json"))
        else:
            png = encode_png(instance_label_map(detections, image.width, image.height))
            files.append(OutputFile(kind, output_key(job_id, kind), png, "image/png"))
    return files

"""Parity: the function's ONNX Runtime path against Ultralytics' own predictor on the same .pt.

Both run through the same job logic (`segment_image`); only the model code differs
(`segmentation.runtime.Segmenter` on the committed .onnx, `torch_segmenter.TorchSegmenter`
on the committed .pt). Nothing here depends on the exact weights: the demo model may be
retrained, and these tests then hold its new export to its new checkpoint (after
`make model`; the first test says when that was forgotten).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from segjob_core.models import Detection, JobParams, ResultDocument, SegmentRequest
from segmentation.loader import file_sha256
from segmentation.runtime import Segmenter
from segmentation.service import segment_image

from .conftest import DEMO_CHECKPOINT, DEMO_MODEL, ROOT

pytestmark = pytest.mark.slow

HELD_OUT_IMAGES = 200  # the simple generator's test images (synth.make_image, seed 3)
VAL = JobParams(conf=0.001, iou=0.7, max_detections=300, annotate=False)  # Ultralytics' val settings


@pytest.fixture(scope="module")
def reference():
    from torch_segmenter import TorchSegmenter

    return TorchSegmenter.load(DEMO_CHECKPOINT, threads=1)


class MemoryStore:
    def __init__(self, data: bytes) -> None:
        self.objects = {"input": data}

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self.objects[key]

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body


def run(segmenter, data: bytes, params: JobParams) -> ResultDocument:
    store = MemoryStore(data)
    request = SegmentRequest(job_id="job_parity", bucket="b", key="input", params=params)
    segment_image(request, segmenter=segmenter, store=store, max_image_pixels=50_000_000)
    return ResultDocument.model_validate_json(store.objects["results/job_parity/result.json"])


def box_iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def raster(polygon: np.ndarray | list[list[float]], size: tuple[int, int]) -> np.ndarray:
    """A polygon filled on a (w, h) canvas, as a boolean mask."""
    canvas = np.zeros((size[1], size[0]), np.uint8)
    points = np.round(np.asarray(polygon, np.float64).reshape(-1, 2)).astype(np.int32)
    if len(points) >= 3:
        cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def assert_same_detections(
    ours: list[Detection], theirs: list[Detection], size: tuple[int, int], *, masks: bool = True
) -> None:
    """Same detections in the same order (most confident first): class, box IoU > 0.9,
    confidence within 0.01; with `masks`, the polygons filled overlap by IoU > 0.8 each and
    0.95 on average. (A mask in several pieces is one polygon whose pieces are tied by
    zero-width bridges, tied differently by each side: compare masks only where the model
    sees whole objects, not on a photo that it breaks into slivers.)"""
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    ious = []
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.class_id == reference.class_id
        assert box_iou(mine.bbox, reference.bbox) > 0.9, (mine.bbox, reference.bbox)
        assert abs(mine.confidence - reference.confidence) < 0.01
        ious.append(mask_iou(raster(mine.polygon, size), raster(reference.polygon, size)))
    if ious and masks:
        assert min(ious) > 0.8 and float(np.mean(ious)) > 0.95, sorted(ious)[:5]


def test_the_committed_export_is_of_the_committed_checkpoint() -> None:
    import onnx

    metadata = {p.key: p.value for p in onnx.load(str(DEMO_MODEL), load_external_data=False).metadata_props}
    record = json.loads(DEMO_MODEL.with_suffix(".export.json").read_text())
    card = (DEMO_MODEL.parent / "MODEL_CARD.md").read_text()

    hint = "the .onnx is not the export of the committed .pt: run `make model`"
    assert metadata["source_sha256"] == file_sha256(DEMO_CHECKPOINT), hint
    assert record["sourceSha256"] == file_sha256(DEMO_CHECKPOINT), hint
    assert record["sha256"] == file_sha256(DEMO_MODEL), hint
    assert record["sha256"] in card, "the model card does not name the export's sha256: run `make model`"


def sample_images() -> list[Path]:
    import ultralytics

    return [
        *sorted((ROOT / "samples").glob("*.jpg")),
        Path(ultralytics.__file__).parent / "assets" / "bus.jpg",
    ]


@pytest.mark.parametrize("image", sample_images(), ids=lambda p: p.name)
@pytest.mark.parametrize("retina_masks", [False, True], ids=["masks", "retina"])
def test_sample_images_give_the_same_detections(
    demo_segmenter: Segmenter, reference, image: Path, retina_masks: bool
) -> None:
    data = image.read_bytes()
    # bus.jpg has no shapes, and at the default conf the demo model rightly finds none there:
    # at conf 0.01 the backends are compared on what it is least sure of.
    conf = 0.25 if image.parent.name == "samples" else 0.01
    params = JobParams(retina_masks=retina_masks, annotate=False, conf=conf)

    ours, theirs = run(demo_segmenter, data, params), run(reference, data, params)

    assert ours.detections, f"the demo model finds something on every sample at conf {conf}"
    size = (ours.image.width, ours.image.height)
    assert_same_detections(ours.detections, theirs.detections, size, masks=image.parent.name == "samples")
    assert ours.model.backend == "onnxruntime" and theirs.model.backend == "torch"


def test_a_tiled_job_gives_the_same_detections(demo_segmenter: Segmenter, reference) -> None:
    from synth import make_scene

    pixels, _ = make_scene(1, (2560, 2560), 24)
    data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    # conf above the default: the whole-image pass (2560 px shrunk to 320) holds large false
    # "stars" at 0.25-0.26, where the backends' confidences (equal to 0.01) flip them
    params = JobParams(tile_size=512, conf=0.3, annotate=False)

    ours, theirs = run(demo_segmenter, data, params), run(reference, data, params)

    assert ours.tiles == theirs.tiles == 36
    assert len(ours.detections) >= 20
    assert_same_detections(ours.detections, theirs.detections, (2560, 2560))


def mask_ap50(segmenter, images: list[tuple[bytes, list]]) -> float:
    """Mask mAP at IoU 0.5 over the images (Ultralytics' AP computation), each detection's
    polygon and each true instance's polygon filled at the image's size."""
    from ultralytics.utils.metrics import ap_per_class

    correct, confidences, predicted, truth = [], [], [], []
    for data, instances in images:
        document = run(segmenter, data, VAL)
        size = (document.image.width, document.image.height)
        true_masks = [raster(i.polygon, size) for i in instances]
        truth += [i.class_id for i in instances]
        matched: set[int] = set()
        for detection in document.detections:  # most confident first
            candidates = [
                (mask_iou(raster(detection.polygon, size), mask), k)
                for k, (mask, instance) in enumerate(zip(true_masks, instances, strict=True))
                if k not in matched and instance.class_id == detection.class_id
            ]
            iou, k = max(candidates, default=(0.0, -1))
            hit = iou >= 0.5
            if hit:
                matched.add(k)
            correct.append([hit])
            confidences.append(detection.confidence)
            predicted.append(detection.class_id)
    ap = ap_per_class(np.array(correct, bool), np.array(confidences), np.array(predicted), np.array(truth))[
        5
    ]  # (classes, 1): AP at IoU 0.5
    return float(ap[:, 0].mean())


def test_held_out_mask_map50_is_the_same(demo_segmenter: Segmenter, reference) -> None:
    from synth import SPLIT_SEEDS, make_image

    images = []
    for index in range(HELD_OUT_IMAGES):
        pixels, instances = make_image(SPLIT_SEEDS["test"], index)
        images.append((cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes(), instances))

    ours, theirs = mask_ap50(demo_segmenter, images), mask_ap50(reference, images)

    print(f"held-out mask mAP50: onnxruntime {ours:.4f}, Ultralytics {theirs:.4f}")
    assert abs(ours - theirs) <= 0.005
    assert theirs > 0.5  # the evaluation itself is sound: a trained model scores on it

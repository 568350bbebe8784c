"""params.outputs: the job's COCO file and instance-label PNG, from the demo model on a sample."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from segjob_core.models import JobParams, ResultDocument, SegmentRequest

from .conftest import ROOT

SAMPLE = ROOT / "samples" / "shapes-1.jpg"


@pytest.fixture(scope="module")
def job(demo_segmenter):
    from segmentation.service import MemoryStore, segment_image

    store = MemoryStore()
    store.objects[("bucket", "uploads/job_out/input")] = SAMPLE.read_bytes()
    request = SegmentRequest(
        job_id="job_out",
        bucket="bucket",
        key="uploads/job_out/input",
        params=JobParams(outputs=["coco", "masks"]),
    )
    outcome = segment_image(request, segmenter=demo_segmenter, store=store, max_image_pixels=50_000_000)
    objects = {key: body for (_, key), body in store.objects.items()}
    document = ResultDocument.model_validate_json(objects["results/job_out/result.json"])
    return outcome, objects, document


def test_default_outputs_are_result_and_annotated_only(demo_segmenter) -> None:
    from segmentation.service import MemoryStore, segment_image

    store = MemoryStore()
    store.objects[("bucket", "in")] = SAMPLE.read_bytes()
    outcome = segment_image(
        SegmentRequest(job_id="job_plain", bucket="bucket", key="in"),
        segmenter=demo_segmenter,
        store=store,
        max_image_pixels=50_000_000,
    )
    assert outcome.output_keys is None
    assert {key for _, key in store.objects} == {
        "in",
        "results/job_plain/result.json",
        "results/job_plain/annotated.jpg",
    }


def test_coco_file_loads_in_pycocotools_and_matches_result_json(job, tmp_path: Path) -> None:
    outcome, objects, document = job
    assert outcome.output_keys == {"coco": "results/job_out/coco.json", "masks": "results/job_out/masks.png"}
    path = tmp_path / "coco.json"
    path.write_bytes(objects["results/job_out/coco.json"])

    coco = COCO(str(path))

    assert document.detections, "the sample has shapes the demo model finds"
    [image] = coco.loadImgs(coco.getImgIds())
    assert (image["width"], image["height"]) == (document.image.width, document.image.height)
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    assert len(annotations) == len(document.detections)
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    for annotation, detection in zip(annotations, document.detections, strict=True):
        assert names[annotation["category_id"]] == detection.class_name
        x, y, w, h = annotation["bbox"]
        assert [x, y, x + w, y + h] == pytest.approx(detection.bbox, abs=0.01)
        pixels = int(coco.annToMask(annotation).sum())
        assert pixels == pytest.approx(detection.area, rel=0.1)
        assert mask_utils.area(coco.annToRLE(annotation)) == pixels


def test_masks_png_is_an_instance_label_map_at_original_resolution(job) -> None:
    _, objects, document = job
    labels = cv2.imdecode(np.frombuffer(objects["results/job_out/masks.png"], np.uint8), cv2.IMREAD_UNCHANGED)

    assert labels.dtype == np.uint16
    assert labels.shape == (document.image.height, document.image.width)
    assert set(np.unique(labels)) <= set(range(len(document.detections) + 1))
    for index, detection in enumerate(document.detections, start=1):
        # its polygon, rasterized alone: labelled i, except where a more confident one lies
        alone = np.zeros(labels.shape, np.uint8)
        cv2.fillPoly(alone, [np.round(np.asarray(detection.polygon)).astype(np.int32)], 1)
        inside = labels[alone.astype(bool)]
        assert np.all((inside == index) | ((inside > 0) & (inside < index)))
        assert np.all(alone[labels == index] == 1)
        assert (inside == index).any()


def test_outputs_are_validated() -> None:
    from pydantic import ValidationError

    assert JobParams.model_validate(json.loads('{"outputs": ["masks"]}')).outputs == ["masks"]
    with pytest.raises(ValidationError):
        JobParams.model_validate({"outputs": ["png"]})

"""Postprocess without a model: selection and NMS, mask sampling, outlines, coordinates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segjob_core.models import JobParams
from segmentation.postprocess import (
    Candidates,
    bilinear_weights,
    mask_in_box,
    nms,
    outline,
    polygon_area,
    select,
    to_prediction,
)
from segmentation.runtime import Letterbox

NM = 2  # mask coefficients per row in these tests


def head_rows(*rows: tuple[list[float], list[float]]) -> np.ndarray:
    """output0 of a 2-class head: (4 + 2 + NM, anchors) from (cx, cy, w, h) and class scores."""
    columns = [[*box, *scores, *([1.0] * NM)] for box, scores in rows]
    return np.array(columns, np.float32).T


def test_select_keeps_the_best_class_above_conf_then_nms_most_confident_first() -> None:
    rows = head_rows(
        ([50, 50, 20, 20], [0.9, 0.1]),  # kept
        ([51, 50, 20, 20], [0.8, 0.2]),  # same place, same class, less confident: suppressed
        ([51, 50, 20, 20], [0.1, 0.85]),  # same place, other class: kept
        ([10, 10, 4, 4], [0.2, 0.1]),  # below conf
    )

    found = select(rows, JobParams(conf=0.25, iou=0.7), classes=2, end2end=False)

    assert found.class_ids.tolist() == [0, 1]
    assert found.confidences.tolist() == pytest.approx([0.9, 0.85])
    assert found.boxes[0].tolist() == [40, 40, 60, 60]  # centre/size -> corners
    assert found.coefficients.shape == (2, NM)


def test_select_filters_classes_after_choosing_the_best_one() -> None:
    rows = head_rows(([50, 50, 20, 20], [0.9, 0.5]), ([80, 80, 20, 20], [0.3, 0.6]))

    found = select(rows, JobParams(conf=0.25, classes=[1]), classes=2, end2end=False)

    # the first anchor's best class is 0: it is not reported as a class-1 detection
    assert found.class_ids.tolist() == [1] and found.confidences.tolist() == pytest.approx([0.6])


def test_select_of_an_end_to_end_head_takes_its_rows_as_they_are() -> None:
    rows = np.array(
        [[1, 2, 3, 4, 0.9, 1, 0.5, 0.5], [5, 6, 7, 8, 0.2, 0, 0.5, 0.5], [0, 0, 9, 9, 0.8, 0, 0.1, 0.1]],
        np.float32,
    )

    found = select(rows, JobParams(conf=0.25, max_detections=5), classes=2, end2end=True)

    assert found.boxes.tolist() == [[1, 2, 3, 4], [0, 0, 9, 9]]
    assert found.class_ids.tolist() == [1, 0]


def test_nms_limit_and_empty_input() -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32)

    assert nms(boxes, np.array([0.5, 0.9, 0.7]), np.zeros(3), iou=0.5, limit=2).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), iou=0.5, limit=9).tolist() == []


def test_nms_across_classes_drops_the_less_confident_of_two_classes_on_one_object() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [40, 40, 50, 50]], np.float32)  # IoU(0, 1) = 0.82
    confidences, class_ids = np.array([0.6, 0.9, 0.7]), np.array([0, 2, 0])

    assert nms(boxes, confidences, class_ids, iou=0.7, limit=9).tolist() == [1, 2, 0]
    assert nms(boxes, confidences, class_ids, iou=0.7, limit=9, agnostic=True).tolist() == [1, 2]


def test_select_applies_the_jobs_nms() -> None:
    # Two anchors on one object, one circle (0.6) and one rectangle (0.9); nm = 0 coefficients.
    rows = np.array(
        [
            [5.0, 6.0],  # cx
            [5.0, 5.0],  # cy
            [10.0, 10.0],  # w
            [10.0, 10.0],  # h
            [0.6, 0.0],  # circle
            [0.0, 0.9],  # rectangle
        ],
        np.float32,
    )

    aware = select(rows, JobParams(agnostic_nms=False), classes=2, end2end=False)
    agnostic = select(rows, JobParams(agnostic_nms=True), classes=2, end2end=False)

    assert sorted(aware.class_ids.tolist()) == [0, 1]
    assert agnostic.class_ids.tolist() == [1]


def test_bilinear_weights_upsample_as_opencv_and_pytorch_do() -> None:
    # GIVEN prototype-resolution logits and the 4x larger grid of the model input
    logits = np.random.default_rng(3).normal(size=(6, 9)).astype(np.float32)

    # WHEN sampled on the whole grid with the weight matrices
    rows, first_row = bilinear_weights(24, 0, 0.25, 0.0, 6)
    cols, first_col = bilinear_weights(36, 0, 0.25, 0.0, 9)
    ours = rows @ logits[first_row:, first_col:] @ cols.T

    # THEN it is OpenCV's (= PyTorch's half-pixel, edge-clamped) bilinear resize
    np.testing.assert_allclose(ours, cv2.resize(logits, (36, 24), interpolation=cv2.INTER_LINEAR), atol=1e-5)


def test_a_mask_is_only_evaluated_inside_its_box() -> None:
    logits = np.ones((10, 10), np.float32)  # positive everywhere

    mask, origin = mask_in_box(logits, np.array([4.5, 8.0, 12.0, 20.2]), (40, 40), (0.25, 0.25), (0.0, 0.0))

    # columns with index in [4.5, 12) and rows in [8, 20.2)
    assert origin == (5, 8) and mask.shape == (13, 7) and mask.all()


def test_outline_of_a_mask_in_pieces_keeps_every_piece() -> None:
    mask = np.zeros((20, 30), bool)
    mask[2:8, 2:10] = True  # 6 x 8
    mask[12:18, 20:24] = True  # 6 x 4

    polygon = outline(mask)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(filled, [np.round(polygon).astype(np.int32)], 1)

    assert polygon_area(polygon) == pytest.approx(5 * 7 + 5 * 3)  # pixel centres: (h-1) x (w-1) each
    assert filled[4, 5] and filled[15, 22]  # both pieces are inside the polygon
    assert outline(np.zeros((5, 5), bool)).shape == (0, 2)


def test_boxes_and_polygons_come_back_in_frame_pixels() -> None:
    # GIVEN a 960x640 frame in a 320x224 input (scale about 1/3, 5 rows of padding on top)
    box = Letterbox.plan((960, 640), (320, 320), stride=32, rect=True)
    candidates = Candidates(
        boxes=np.array([[30, 35, 90, 65]], np.float32),
        confidences=np.array([0.9], np.float32),
        class_ids=np.array([1]),
        coefficients=np.ones((1, 1), np.float32),
    )
    protos = np.ones((1, 56, 80), np.float32)  # a mask that fills its box

    for retina in (False, True):
        prediction = to_prediction(candidates, protos, box, retina_masks=retina)

        # (the frame's 640 rows were resized to 213: a y scale of 640/213, not exactly 3)
        np.testing.assert_allclose(prediction.boxes, [[90, 90, 270, 180]], atol=0.3)
        x, y = prediction.polygons[0][:, 0], prediction.polygons[0][:, 1]
        assert 89 <= x.min() <= x.max() <= 270.5 and 89 <= y.min() <= y.max() <= 180.5

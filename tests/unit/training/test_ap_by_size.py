"""evaluate.ap50_by_size: mask AP50 by object size at model input (pycocotools' COCOeval on
polygons), class-aware and class-agnostic, on made-up images whose answer is known."""

from __future__ import annotations

import numpy as np
from evaluate import ScoredImage, ap50_by_size

CLASSES = 4


def square(x: float, y: float, half: float) -> np.ndarray:
    return np.array([[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half]])


BIG = square(100, 100, 40)  # 80 px across: the 64-128 px bin at scale 1
SMALL = square(200, 200, 4)  # 8 px across: < 16 px


def rows(*images: ScoredImage) -> dict[str, dict]:
    return {row["size"]: row for row in ap50_by_size(list(images), CLASSES)}


def test_every_object_found_with_its_class_is_ap_1_in_every_bin_it_fills() -> None:
    image = ScoredImage(300, 300, 1.0, [(0, BIG), (1, SMALL)], [(0, 0.9, BIG), (1, 0.8, SMALL)])

    result = rows(image)

    for size in ("all", ">= 16 px", "< 16 px", "64-128 px"):
        assert result[size]["mask_ap50"] == 1.0
        assert result[size]["agnostic_mask_ap50"] == 1.0
    assert result["all"]["objects"] == 2
    assert result["16-32 px"] == {
        "size": "16-32 px",
        "objects": 0,
        "mask_ap50": None,
        "agnostic_mask_ap50": None,
    }


def test_a_missed_small_object_costs_the_small_bin_and_all_but_not_the_range_above_16_px() -> None:
    image = ScoredImage(300, 300, 1.0, [(0, BIG), (1, SMALL)], [(0, 0.9, BIG)])

    result = rows(image)

    assert result["< 16 px"]["mask_ap50"] == 0.0
    assert result[">= 16 px"]["mask_ap50"] == 1.0
    assert result["all"]["mask_ap50"] == 0.5  # the mean of circle 1.0 and triangle 0.0


def test_the_wrong_class_counts_against_the_class_aware_figure_only() -> None:
    image = ScoredImage(300, 300, 1.0, [(0, BIG)], [(2, 0.9, BIG)])

    result = rows(image)["64-128 px"]

    assert result["mask_ap50"] == 0.0
    assert result["agnostic_mask_ap50"] == 1.0


def test_a_confident_false_positive_halves_the_precision_in_its_own_size_range() -> None:
    false = square(250, 60, 20)  # 40 px across, on no object
    image = ScoredImage(300, 300, 1.0, [(0, BIG)], [(0, 0.95, false), (0, 0.9, BIG)])

    result = rows(image)

    assert result[">= 16 px"]["mask_ap50"] == 0.5
    assert result["64-128 px"]["mask_ap50"] == 1.0  # unmatched and outside the bin: ignored


def test_sizes_are_taken_at_model_input() -> None:
    # The same 80 px square in an image shrunk 4x at model input: 20 px across there.
    image = ScoredImage(300, 300, 0.25, [(0, BIG)], [(0, 0.9, BIG)])

    result = rows(image)

    assert result["16-32 px"]["objects"] == 1
    assert result["64-128 px"]["objects"] == 0


def test_no_detections_at_all_is_ap_0_not_an_error() -> None:
    image = ScoredImage(300, 300, 1.0, [(0, BIG)], [])

    assert rows(image)["all"]["mask_ap50"] == 0.0

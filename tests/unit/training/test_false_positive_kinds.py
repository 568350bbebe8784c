"""evaluate.false_positive_kind: what each held-out false positive is, for the card."""

from __future__ import annotations

import numpy as np
from evaluate import (
    FALSE_POSITIVE_KINDS,
    by_background_kind,
    false_positive_kind,
    fp_backgrounds_line,
    fp_kinds_line,
    match,
)


def box(y0: int, x0: int, size: int) -> np.ndarray:
    mask = np.zeros((100, 100), bool)
    mask[y0 : y0 + size, x0 : x0 + size] = True
    return mask


TRUTH = [(0, box(10, 10, 20)), (1, box(60, 60, 20))]


def kinds(predicted: list[tuple[int, np.ndarray]]) -> list[str]:
    _, truth_of = match(predicted, TRUTH)
    return [
        false_positive_kind(predicted[p], TRUTH, t)
        for p, t in enumerate(truth_of)
        if t is None or predicted[p][0] != TRUTH[t][0]
    ]


def test_a_right_detection_is_no_false_positive() -> None:
    assert kinds([(0, box(10, 10, 20)), (1, box(61, 61, 19))]) == []


def test_each_kind() -> None:
    assert kinds([(2, box(10, 10, 20))]) == ["wrong_class"]
    assert kinds([(0, box(10, 10, 20)), (0, box(11, 11, 19))]) == ["duplicate"]
    assert kinds([(1, box(52, 52, 20))]) == ["poor_mask"]  # IoU 144 / 656 with the second
    assert kinds([(3, box(40, 5, 10))]) == ["background"]


def test_the_card_line_names_every_kind_and_the_total() -> None:
    line = fp_kinds_line({"background": 3, "wrong_class": 2, "duplicate": 0, "poor_mask": 1})
    assert "Of the 6 false positives" in line and "3 on no shape" in line and "2 a shape taken" in line
    assert fp_kinds_line(None) == "" and set(FALSE_POSITIVE_KINDS) == {
        "background",
        "wrong_class",
        "duplicate",
        "poor_mask",
    }


def test_the_card_says_where_the_false_positives_are() -> None:
    line = fp_backgrounds_line(
        {
            "photo": {"images": 149, "false_positives": 77, "per_image": 0.517},
            "texture": {"images": 151, "false_positives": 31, "per_image": 0.206},
        }
    )
    assert "77 on the 149 images over photos (0.52 per image)" in line
    assert "31 on the 151 images over textures (0.21 per image)" in line
    assert "By which one" not in line  # an eval.json from before the breakdown by name
    assert fp_backgrounds_line(None) == ""


def test_the_card_says_on_which_photos_and_textures_the_false_positives_are() -> None:
    line = fp_backgrounds_line(
        {"photo": {"images": 3, "false_positives": 5, "per_image": 1.667}},
        {
            "rocket": {"kind": "photo", "images": 2, "false_positives": 4},
            "plaid": {"kind": "texture", "images": 1, "false_positives": 1},
        },
    )
    assert line.endswith("By which one: rocket (photo) 4 on 2, plaid (texture) 1 on 1.")


def test_the_false_positives_by_kind_of_background_are_the_sums_of_those_by_name() -> None:
    kinds = by_background_kind(
        {
            "rocket": {"kind": "photo", "images": 2, "false_positives": 4},
            "coffee": {"kind": "photo", "images": 1, "false_positives": 0},
            "plaid": {"kind": "texture", "images": 3, "false_positives": 1},
        }
    )
    assert kinds == {
        "photo": {"images": 3, "false_positives": 4, "per_image": 1.333},
        "texture": {"images": 3, "false_positives": 1, "per_image": 0.333},
    }
    assert by_background_kind({})["photo"]["per_image"] is None

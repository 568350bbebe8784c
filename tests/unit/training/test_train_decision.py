"""`make train` keeps the committed weights unless the new ones are not worse on either
criterion of the held-out evaluation (training/train.py decide())."""

from __future__ import annotations

import pytest
from train import decide


def result(map50: float, fp: float) -> dict[str, float]:
    return {"mask_map50": map50, "fp_per_negative_image": fp}


def test_better_on_both_is_adopted() -> None:
    decision = decide(result(0.8, 0.2), result(0.4, 16.9))
    assert decision.adopt
    assert "0.800 >= 0.400" in decision.reason


def test_equal_is_adopted() -> None:
    assert decide(result(0.5, 1.0), result(0.5, 1.0)).adopt


@pytest.mark.parametrize(
    ("new", "named"),
    [
        (result(0.39, 0.0), "held-out mask mAP50 0.390 < 0.400"),
        (result(0.9, 2.5), "false positives per shape-free photo 2.50 > 1.00"),
    ],
    ids=["lower-map", "more-false-positives"],
)
def test_worse_on_either_keeps_the_committed_weights(new: dict[str, float], named: str) -> None:
    decision = decide(new, result(0.4, 1.0))
    assert not decision.adopt
    assert named in decision.reason


def test_worse_on_both_names_both() -> None:
    reason = decide(result(0.1, 3.0), result(0.4, 1.0)).reason
    assert "mAP50" in reason and "false positives" in reason


def test_without_committed_weights_the_new_ones_are_kept() -> None:
    assert decide(result(0.1, 3.0), None).adopt


def test_a_worse_worst_photo_keeps_the_committed_weights() -> None:
    committed = {**result(0.696, 0.43), "negatives": {"max_per_image": 1}}
    new = {**result(0.711, 0.43), "negatives": {"max_per_image": 2}}
    decision = decide(new, committed)
    assert not decision.adopt
    assert "most detections on one shape-free photo 2 > 1" in decision.reason
    assert decide({**new, "negatives": {"max_per_image": 1}}, committed).adopt

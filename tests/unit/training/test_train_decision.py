"""`make train` keeps the committed weights unless the new ones are not worse on any
figure of the evaluation (training/train.py decide())."""

from __future__ import annotations

from pathlib import Path

import pytest
from train import choose, decide, run_candidates, same_weights


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


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"heldout": {"false_positives_per_image": 0.28}}, "false positives per held-out image 0.28 > 0.27"),
        ({"samples": {"right": 12, "extra": 0}}, "sample shapes found with the right class 12 < 13"),
        ({"samples": {"right": 13, "extra": 1}}, "extra detections on the samples 1 > 0"),
    ],
    ids=["heldout-false-positives", "samples-right", "samples-extra"],
)
def test_a_better_map_does_not_buy_a_worse_figure(changed: dict[str, object], named: str) -> None:
    # The recipe-4 run (2026-12-03) raised mAP50 0.723 -> 0.748 but the false positives per
    # held-out image 0.24 -> 0.27; that is now a reason to keep the committed weights.
    committed = {
        **result(0.748, 0.0),
        "heldout": {"false_positives_per_image": 0.27},
        "samples": {"right": 13, "extra": 0},
    }
    new = {**committed, "mask_map50": 0.8}
    assert decide(new, committed).adopt
    decision = decide({**new, **changed}, committed)
    assert not decision.adopt
    assert decision.reason == named


def test_a_figure_the_older_evaluation_lacks_is_not_compared() -> None:
    new = {**result(0.8, 0.0), "heldout": {"false_positives_per_image": 0.5}}
    assert decide(new, result(0.7, 0.0)).adopt


def with_worst(map50: float, fp: float, worst: int) -> dict[str, object]:
    return {**result(map50, fp), "negatives": {"max_per_image": worst}}


def test_the_runs_last_weights_win_when_its_best_loses_a_photo() -> None:
    # The recipe-2 run (2026-12-02): best.pt by validation fitness had the higher mAP50 but
    # 2 detections on one photo; last.pt kept at most 1.
    committed = with_worst(0.696, 0.43, 1)
    label, decision = choose(
        {"best.pt": with_worst(0.711, 0.43, 2), "last.pt": with_worst(0.708, 0.29, 1)}, committed
    )
    assert label == "last.pt"
    assert decision.adopt and "0.708 >= 0.696" in decision.reason


def test_of_two_that_pass_the_higher_map_wins_then_fewer_false_positives() -> None:
    committed = with_worst(0.5, 1.0, 2)
    assert (
        choose({"best.pt": with_worst(0.6, 0.5, 1), "last.pt": with_worst(0.55, 0.2, 1)}, committed)[0]
        == "best.pt"
    )
    assert (
        choose({"best.pt": with_worst(0.6, 0.5, 1), "last.pt": with_worst(0.6, 0.2, 1)}, committed)[0]
        == "last.pt"
    )


def test_when_neither_passes_the_committed_weights_stay_and_both_reasons_are_given() -> None:
    label, decision = choose(
        {"best.pt": with_worst(0.4, 0.5, 1), "last.pt": with_worst(0.6, 2.0, 1)}, with_worst(0.5, 1.0, 1)
    )
    assert label is None and not decision.adopt
    assert "best.pt: held-out mask mAP50 0.400 < 0.500" in decision.reason
    assert "last.pt: false positives per shape-free photo 2.00 > 1.00" in decision.reason


def test_last_is_a_candidate_only_when_it_differs_from_best(tmp_path: Path) -> None:
    best, last = tmp_path / "best.pt", tmp_path / "last.pt"
    best.write_bytes(b"epoch 7")
    last.write_bytes(b"epoch 7")
    assert run_candidates(best, last) == {"best.pt": best}
    last.write_bytes(b"epoch 9")
    assert run_candidates(best, last) == {"best.pt": best, "last.pt": last}


def test_checkpoints_stamped_apart_with_the_same_tensors_are_the_same_weights(tmp_path: Path) -> None:
    import torch

    # GIVEN a run whose last epoch was its best: two files, each stamped with its own time
    best, last = tmp_path / "best.pt", tmp_path / "last.pt"
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    torch.save({"model": model, "date": "17:18:10"}, best)
    torch.save({"model": model, "date": "17:18:11"}, last)
    assert best.read_bytes() != last.read_bytes()
    # THEN last.pt is no second candidate
    assert same_weights(best, last)
    assert run_candidates(best, last) == {"best.pt": best}
    # WHEN one tensor differs THEN it is
    with torch.no_grad():
        model.bias[0] += 1
    torch.save({"model": model, "date": "17:18:11"}, last)
    assert not same_weights(best, last)
    assert run_candidates(best, last) == {"best.pt": best, "last.pt": last}

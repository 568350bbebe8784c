"""evaluate.conf_tradeoff: recall and false positives per image at higher conf thresholds
(the card's table for a job's params.conf), and evaluate.at_conf, the card's figures at one
threshold from the same scored images, on made-up images whose answer is known."""

from __future__ import annotations

import numpy as np
from evaluate import ScoredImage, at_conf, conf_section, conf_tradeoff


def square(x: float, y: float, half: float) -> np.ndarray:
    return np.array([[x - half, y - half], [x + half, y - half], [x + half, y + half], [x - half, y + half]])


A, B, NOTHING = square(60, 60, 20), square(200, 200, 20), square(150, 50, 15)


def scored_images() -> list[ScoredImage]:
    """Two images scored down to a low conf (as the AP pass predicts): shapes, and none."""
    image = ScoredImage(
        300,
        300,
        1.0,
        [(0, A), (1, B)],
        [
            (0, 0.9, A),  # right
            (2, 0.5, NOTHING),  # on no shape
            (3, 0.4, B),  # B taken for another class
            (0, 0.1, A),  # below every step: a duplicate that does not count
        ],
        index=0,
    )
    return [image, ScoredImage(300, 300, 1.0, [], [(1, 0.3, NOTHING)], index=1)]


def test_each_threshold_keeps_the_detections_from_it_up() -> None:
    rows = {r["conf"]: r for r in conf_tradeoff(scored_images(), steps=(0.25, 0.45, 0.6, 0.95))}

    assert rows[0.25] == {"conf": 0.25, "recall": 0.5, "false_positives_per_image": 1.5}
    assert rows[0.45] == {"conf": 0.45, "recall": 0.5, "false_positives_per_image": 0.5}
    assert rows[0.6] == {"conf": 0.6, "recall": 0.5, "false_positives_per_image": 0.0}
    assert rows[0.95] == {"conf": 0.95, "recall": 0.0, "false_positives_per_image": 0.0}


def test_a_wrong_class_above_the_right_one_takes_the_match() -> None:
    # The most confident detection on B is of the wrong class: it takes B, and the right one
    # under it is a duplicate. Both are counted as they would be at that threshold alone.
    image = ScoredImage(300, 300, 1.0, [(1, B)], [(2, 0.8, B), (1, 0.7, B)])

    rows = conf_tradeoff([image], steps=(0.25, 0.75))

    assert rows == [
        {"conf": 0.25, "recall": 0.0, "false_positives_per_image": 2.0},
        {"conf": 0.75, "recall": 0.0, "false_positives_per_image": 1.0},
    ]


def test_the_card_names_the_first_threshold_within_the_bar() -> None:
    rows = [
        {"conf": 0.25, "recall": 0.633, "false_positives_per_image": 0.27},
        {"conf": 0.45, "recall": 0.575, "false_positives_per_image": 0.093},
        {"conf": 0.5, "recall": 0.551, "false_positives_per_image": 0.07},
    ]

    section = conf_section(rows)

    assert "| 0.45 | 0.575 | 0.09 |" in section
    assert "From conf 0.45 the held-out false positives are at most 0.1 per image (recall 0.575)" in section
    assert "No threshold" in conf_section(rows[:1])
    assert conf_section(None) == ""


def test_the_figures_at_one_threshold_count_only_the_detections_from_it_up() -> None:
    # GIVEN an image with shapes and a shape-free one, scored down to a low conf
    images = scored_images()
    backgrounds = {0: ("photo", "coffee"), 1: ("texture", "plaid")}

    # WHEN the figures are taken at 0.25 and at 0.45
    low = at_conf(images, 0.25, background_of=backgrounds.__getitem__)
    high = at_conf(images, 0.45, background_of=backgrounds.__getitem__)

    # THEN each counts what a prediction at that threshold would have returned
    assert (low["recall"], low["false_positives_per_image"]) == (0.5, 1.5)
    assert low["false_positives_by_kind"]["wrong_class"] == 1
    assert low["confusion"]["circle"]["circle"] == 1
    assert low["confusion"]["triangle"]["star"] == 1
    assert low["false_positives_by_background_name"]["plaid"]["false_positives"] == 1
    assert (high["recall"], high["false_positives_per_image"]) == (0.5, 0.5)
    assert high["confusion"]["triangle"]["missed"] == 1
    assert high["false_positives_by_background_name"]["plaid"]["false_positives"] == 0
    # and agrees with the threshold table's rows
    rows = {r["conf"]: r for r in conf_tradeoff(images, steps=(0.25, 0.45))}
    for figures, conf in ((low, 0.25), (high, 0.45)):
        assert figures["recall"] == rows[conf]["recall"]
        assert figures["false_positives_per_image"] == rows[conf]["false_positives_per_image"]

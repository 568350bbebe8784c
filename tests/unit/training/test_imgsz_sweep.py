"""`evaluate.py --sizes`: the sizes it takes, what it keeps of each size's evaluation, and the
card's "Image size trade-off" rendered from eval.json's `imgsz_sweep` (only when there is one)."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from evaluate import parse_sizes, render_card, sweep_row, sweep_section

MODEL_DIR = Path(__file__).resolve().parents[3] / "functions" / "segment" / "model"
WEIGHTS = MODEL_DIR / "shapes-seg.pt"
BINS = ("< 16 px", "16-32 px", ">= 32 px")


def evaluation_at(imgsz: int, recall: float) -> dict[str, Any]:
    """An evaluate_weights() result, its figures made up."""
    return {
        "imgsz": imgsz,
        "seconds": 100 + imgsz,
        "heldout": {
            "mask_map50": recall / 2,
            "agnostic_mask_map50": recall / 1.5,
            "recall": recall,
            "false_positives_per_image": recall * 2,
            "recall_by_size": [
                {"size": name, "objects": 10 * (i + 1), "recall": None if i == 2 else recall / (i + 1)}
                for i, name in enumerate(BINS)
            ],
            "ap50_by_size": [
                {"size": "all", "objects": 60, "mask_ap50": recall / 2, "agnostic_mask_ap50": recall / 1.5},
                {
                    "size": ">= 16 px",
                    "objects": 50,
                    "mask_ap50": recall * 2,
                    "agnostic_mask_ap50": recall * 2,
                },
            ],
        },
        "negatives": {"false_positives_per_image": 0.25, "max_per_image": 1},
        "samples": {"shapes": 13, "right": 11, "wrong_class": 1, "missed": 1, "extra": 2},
    }


def sweep(times: bool = True) -> dict[str, Any]:
    rows = [sweep_row(evaluation_at(size, recall)) for size, recall in ((320, 0.4), (640, 0.6))]
    job_times = {
        "onnx": "model.onnx",
        "runs": 20,
        "threads": 2,
        "vcpus": 2,
        "images": {
            "a.jpg": {
                "pixels": "960x640",
                "by_imgsz": {
                    "320": {"median_ms": 88.4, "p90_ms": 94.6, "detections": 6},
                    "640": {"median_ms": 286.9, "p90_ms": 297.2, "detections": 7},
                },
            }
        },
    }
    return {"binned_at": 320, "sizes": rows, "job_times": job_times if times else None}


@pytest.mark.parametrize(
    ("text", "sizes"),
    [("320,416,512,640", [320, 416, 512, 640]), ("640, 320,320", [320, 640]), ("480", [480])],
)
def test_sizes_are_read_in_increasing_order(text: str, sizes: list[int]) -> None:
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "320,abc", "320,400", "0", "-320"])
def test_sizes_that_are_not_multiples_of_the_stride_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_sizes(text)


def test_a_row_keeps_the_figures_of_its_evaluation() -> None:
    evaluation = evaluation_at(416, 0.5)

    row = sweep_row(evaluation)

    assert row["imgsz"] == 416
    assert row["mask_map50"] == evaluation["heldout"]["mask_map50"]
    assert row["fp_per_negative_image"] == evaluation["negatives"]["false_positives_per_image"]
    assert row["max_per_negative_image"] == evaluation["negatives"]["max_per_image"]
    assert row["recall_by_size"] == evaluation["heldout"]["recall_by_size"]
    assert row["samples"]["extra"] == evaluation["samples"]["extra"]
    assert row["other_generator"] is None  # an evaluation before training/othergen.py


def test_a_row_keeps_the_other_generators_figures_and_the_table_shows_them() -> None:
    other = {"mask_map50": 0.61, "agnostic_mask_map50": 0.7, "recall": 0.5, "false_positives_per_image": 0.9}
    with_other = {**evaluation_at(320, 0.4), "other_generator": {**other, "per_class": {}}}

    row = sweep_row(with_other)

    assert row["other_generator"] == other
    section = sweep_section({**sweep(), "sizes": [row, *sweep()["sizes"][1:]]}, conf=0.25)
    rows = [line for line in section.splitlines() if line.startswith("| 320") or line.startswith("| 640")]
    assert "| 11/13 / 2 | 0.610 / 0.90 |" in rows[0]
    assert "| 11/13 / 2 | - |" in rows[1]


def test_the_section_has_a_row_per_size_and_a_column_per_size_bin_and_image() -> None:
    section = sweep_section(sweep(), conf=0.25)

    table = [line for line in section.splitlines() if line.startswith("|")]
    header, rule, *rows = table
    assert section.startswith("## Image size trade-off")
    assert [f"recall {name}" in header for name in BINS] == [True] * len(BINS)
    assert "a.jpg ms (median / p90)" in header
    assert len(rows) == 2
    assert all(row.count("|") == header.count("|") == rule.count("|") for row in rows)
    assert rows[0].startswith(
        "| 320 | 0.200 | 0.267 | 0.800 | 0.80 | 0.25 (max 1) | 0.400 | 0.200 | - | 11/13 / 2 |"
    )
    assert rows[1].endswith("| 287 / 297 |")
    assert "taken at imgsz 320" in section


def test_without_job_times_the_section_says_so() -> None:
    section = sweep_section(sweep(times=False), conf=0.25)

    assert "ms (median / p90)" not in section
    assert "No job times" in section


def test_the_card_shows_the_trade_off_only_when_eval_json_has_a_sweep() -> None:
    committed = json.loads((MODEL_DIR / "eval.json").read_text())
    without = {key: value for key, value in committed.items() if key != "imgsz_sweep"}
    with_sweep = {**copy.deepcopy(without), "imgsz_sweep": sweep()}
    names = torch.load(WEIGHTS, map_location="cpu", weights_only=False)["model"].names
    log = json.loads((MODEL_DIR / "training_log.json").read_text())

    plain = render_card(WEIGHTS, without, log, names)
    card = render_card(WEIGHTS, with_sweep, log, names)

    assert "Image size trade-off" not in plain
    assert card.index("## Image size trade-off") < card.index("## What it is not for")
    assert card.replace(sweep_section(sweep(), conf=without["conf"]), "") == plain

"""The demo model's card is rendered from its eval.json, and eval.json is of the committed
weights: a card edited by hand or an evaluation of other weights fails here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from evaluate import recipe_of_weights, render_card

MODEL_DIR = Path(__file__).resolve().parents[3] / "functions" / "segment" / "model"
WEIGHTS = MODEL_DIR / "shapes-seg.pt"


def evaluation() -> dict:
    return json.loads((MODEL_DIR / "eval.json").read_text())


def test_eval_json_is_of_the_committed_weights() -> None:
    assert evaluation()["sha256"] == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest(), "run `make eval`"


def test_the_card_is_rendered_from_eval_json() -> None:
    names = torch.load(WEIGHTS, map_location="cpu", weights_only=False)["model"].names
    log = json.loads((MODEL_DIR / "training_log.json").read_text())

    expected = render_card(WEIGHTS, evaluation(), log, names)

    assert (MODEL_DIR / "MODEL_CARD.md").read_text() == expected, (
        "run `make eval` (or evaluate.py --card-only)"
    )


def test_the_card_states_the_figures_a_user_needs() -> None:
    card, result = (MODEL_DIR / "MODEL_CARD.md").read_text(), evaluation()

    assert f"{result['heldout']['mask_map50']:.3f}" in card
    assert f"{result['negatives']['false_positives_per_image']:.2f} per" in card
    for heading in (
        "Recall by object size",
        "Photos without shapes",
        "The default threshold",
        "What it is not for",
    ):
        assert heading in card


def test_the_card_says_when_the_weights_were_not_trained_on_the_current_recipe() -> None:
    assert recipe_of_weights(4, 4) == ""
    assert recipe_of_weights(None, 4) == ""  # runs before the log recorded recipes
    assert "last run trained on version 3: no run on version 4" in recipe_of_weights(3, 4)

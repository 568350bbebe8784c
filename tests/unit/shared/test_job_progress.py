"""A tiled job's progress on its item (written by the segment function) in the API view."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from segjob_core.jobs import from_dynamodb, item_to_job

ROOT = Path(__file__).resolve().parents[3]


def item(**extra: object) -> dict:
    base = from_dynamodb(json.loads((ROOT / "tests/events/notify_succeeded.json").read_text())["item"])
    return {**base, **extra}


def test_progress_shows_tiles_done_of_the_total() -> None:
    job = item_to_job(item(tilesDone=Decimal(16), tilesTotal=Decimal(25)))

    assert job.to_json_dict()["progress"] == {"tilesDone": 16, "tilesTotal": 25}


def test_a_job_without_tiles_has_no_progress() -> None:
    assert "progress" not in item_to_job(item()).to_json_dict()

"""One timestamp format wherever the API, result.json and webhooks show one: ISO 8601 UTC
with milliseconds and Z. Step Functions writes `$$.State.EnteredTime` into job items (AWS:
milliseconds and Z; moto: microseconds and +00:00); the API view normalises both."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from job_notify.logic import build_event
from segjob_core.jobs import from_dynamodb, iso, item_to_job, normalize_timestamp
from segjob_core.models import EventType

ROOT = Path(__file__).resolve().parents[3]
ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MOTO = "2026-11-22T10:15:30.123456+00:00"
AWS = "2026-11-22T10:15:30.123Z"


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (MOTO, AWS),  # moto's EnteredTime: microseconds cut to milliseconds
        (AWS, AWS),  # AWS's EnteredTime and the API's own format: unchanged
        ("2026-11-22T11:15:30.123+01:00", AWS),  # another offset: converted to UTC
        ("2026-11-22T10:15:30", "2026-11-22T10:15:30.000Z"),  # no offset: taken as UTC
        ("2026-11-22T10:15:30Z", "2026-11-22T10:15:30.000Z"),
        ("not a time", "not a time"),  # never raises on a value it does not know
    ],
)
def test_normalize_timestamp(written: str, shown: str) -> None:
    assert normalize_timestamp(written) == shown


def test_iso_is_milliseconds_and_z() -> None:
    assert ISO_MS_Z.match(iso(datetime.now(UTC)))


def moto_written_item() -> dict:
    """A finished job item as the state machine left it under moto."""
    item = from_dynamodb(json.loads((ROOT / "tests/events/notify_succeeded.json").read_text())["item"])
    for name in ("updatedAt", "startedAt", "finishedAt", "webhookDeliveredAt"):
        item[name] = MOTO
    item["webhookStatus"] = "DELIVERED"
    return item


def test_the_api_view_shows_every_timestamp_in_one_format() -> None:
    job = item_to_job(moto_written_item()).to_json_dict()

    stamps = {
        "createdAt": job["createdAt"],
        "updatedAt": job["updatedAt"],
        "expiresAt": job["expiresAt"],
        "startedAt": job["startedAt"],
        "finishedAt": job["finishedAt"],
        "webhook.deliveredAt": job["webhook"]["deliveredAt"],
    }
    assert all(ISO_MS_Z.match(value) for value in stamps.values()), stamps
    assert job["finishedAt"] == AWS


def test_the_webhook_timestamp_is_the_normalised_status_write() -> None:
    event = build_event(EventType.SUCCEEDED, moto_written_item(), presign=lambda key: f"https://x/{key}")

    assert event.timestamp == AWS == event.data.updated_at

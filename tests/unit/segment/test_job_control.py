"""The segment function's side of progress, cancel and the time budget: the DynamoDB adapter
against moto's in-process DynamoDB, and the job logic with a recording fake of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from moto import mock_aws

from segjob_core.errors import InvalidParams, JobCanceled, TimeBudgetExceeded
from segjob_core.models import JobParams, JobProgress, SegmentRequest
from segmentation.budget import TileCost
from segmentation.runtime import Segmenter
from segmentation.service import MemoryStore, segment_image
from segmentation.storage import DynamoJobRecord

TABLE = "jobs"
JOB_ID = "job_0123456789abcdef0123456789abcdef"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def put_job(dynamodb: Any, status: str) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"jobId": {"S": JOB_ID}, "status": {"S": status}})


def stored(dynamodb: Any) -> dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"jobId": {"S": JOB_ID}})["Item"]


# the adapter -----------------------------------------------------------------------------


def test_progress_is_written_while_the_job_runs(dynamodb: Any) -> None:
    put_job(dynamodb, "RUNNING")
    record = DynamoJobRecord(TABLE, client=dynamodb)

    assert record.still_running(JOB_ID, JobProgress(tiles_done=8, tiles_total=25))
    assert record.still_running(JOB_ID)

    item = stored(dynamodb)
    assert (item["tilesDone"], item["tilesTotal"]) == ({"N": "8"}, {"N": "25"})


def test_a_canceled_job_is_not_running_and_gets_no_progress(dynamodb: Any) -> None:
    put_job(dynamodb, "CANCELED")
    record = DynamoJobRecord(TABLE, client=dynamodb)

    assert not record.still_running(JOB_ID, JobProgress(tiles_done=8, tiles_total=25))
    assert not record.still_running(JOB_ID)
    assert "tilesDone" not in stored(dynamodb)


def test_an_invocation_without_a_job_item_runs_on(dynamodb: Any) -> None:
    record = DynamoJobRecord(TABLE, client=dynamodb)

    assert record.still_running(JOB_ID, JobProgress(tiles_done=0, tiles_total=3))
    assert record.still_running(JOB_ID)
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"jobId": {"S": JOB_ID}})


# the job logic ---------------------------------------------------------------------------


class FakeRecord:
    """Records every check; the job is canceled once `cancel_after` checks have passed."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.checks: list[JobProgress | None] = []
        self.cancel_after = cancel_after

    def still_running(self, job_id: str, progress: JobProgress | None = None) -> bool:
        self.checks.append(progress)
        return self.cancel_after is None or len(self.checks) <= self.cancel_after


@pytest.fixture(scope="module")
def image() -> bytes:
    """1024x1024 of a few discs: 25 tiles of 256 px (0.2 overlap)."""
    pixels = np.full((1024, 1024, 3), 180, np.uint8)
    for x, y in [(200, 200), (700, 300), (500, 800)]:
        cv2.circle(pixels, (x, y), 60, (40, 40, 200), cv2.FILLED)
    return cv2.imencode(".png", pixels)[1].tobytes()


def run(segmenter: Segmenter, data: bytes, params: JobParams, **control: Any) -> tuple[MemoryStore, Any]:
    store = MemoryStore()
    store.objects[("b", "input")] = data
    request = SegmentRequest(job_id=JOB_ID, bucket="b", key="input", params=params)
    outcome = segment_image(request, segmenter=segmenter, store=store, max_image_pixels=50_000_000, **control)
    return store, outcome


TILED = JobParams(tile_size=256)


def test_a_tiled_job_reports_its_progress_batch_by_batch(demo_segmenter: Segmenter, image: bytes) -> None:
    record = FakeRecord()

    store, outcome = run(demo_segmenter, image, TILED, record=record)

    progress = [(p.tiles_done, p.tiles_total) for p in record.checks if p is not None]
    assert progress == [(0, 25), (8, 25), (16, 25), (24, 25), (25, 25)]  # batches of 8
    assert record.checks[-1] is None  # the last check: before writing the results
    assert outcome.tiles == 25 and len(store.objects) == 3  # input, annotated.jpg, result.json


def test_a_job_canceled_between_batches_stops_and_writes_nothing(
    demo_segmenter: Segmenter, image: bytes
) -> None:
    record = FakeRecord(cancel_after=2)  # the start and the first batch pass

    with pytest.raises(JobCanceled, match="after 16 of 25 tiles"):
        run(demo_segmenter, image, TILED, record=record)

    assert len(record.checks) == 3


def test_an_untiled_job_canceled_before_its_results_writes_nothing(
    demo_segmenter: Segmenter, image: bytes
) -> None:
    record = FakeRecord(cancel_after=0)
    store = MemoryStore()
    store.objects[("b", "input")] = image
    request = SegmentRequest(job_id=JOB_ID, bucket="b", key="input")

    with pytest.raises(JobCanceled, match="before writing its results"):
        segment_image(
            request, segmenter=demo_segmenter, store=store, max_image_pixels=50_000_000, record=record
        )

    assert list(store.objects) == [("b", "input")]


def test_a_tiled_job_that_cannot_finish_is_refused_before_its_first_tile(
    demo_segmenter: Segmenter, image: bytes
) -> None:
    record = FakeRecord()

    with pytest.raises(InvalidParams, match=r"25 tiles .* estimated to take"):
        run(demo_segmenter, image, TILED, record=record, remaining_ms=lambda: 1_000, tile_cost=TileCost())

    assert record.checks == []  # not a single tile, no progress written


def test_a_tiled_job_slower_than_estimated_stops_cleanly(demo_segmenter: Segmenter, image: bytes) -> None:
    # GIVEN an estimate that lets it start (a fast calibration) and time that then runs out
    left = iter([60_000, 2_100, 2_050, 2_000, 1_950])

    with pytest.raises(TimeBudgetExceeded, match="stopped after 8 of 25 tiles"):
        run(
            demo_segmenter,
            image,
            TILED,
            remaining_ms=lambda: next(left),
            tile_cost=TileCost(ms_per_input_megapixel=1.0),
        )


def test_each_tiled_job_calibrates_the_next_estimate(demo_segmenter: Segmenter, image: bytes) -> None:
    cost = TileCost(ms_per_input_megapixel=1e-3)

    run(demo_segmenter, image, TILED, tile_cost=cost)

    assert cost.ms_per_input_megapixel > 1.0  # what 26 frames at 320 px really took

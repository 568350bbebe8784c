"""The time budget of tiled jobs (pure logic): the up-front estimate, the check after each
batch, and the per-process calibration."""

from __future__ import annotations

import pytest

from segjob_core.errors import InvalidParams, TimeBudgetExceeded
from segmentation.budget import (
    DEFAULT_MS_PER_INPUT_MEGAPIXEL,
    FINISH_MS,
    TileCost,
    TimeBudget,
    finish_ms,
    frame_ms,
)

# 100 frames at imgsz 1000 (1 input megapixel) in a frame of 0 pixels: 100 ms a frame
# at 100 ms per megapixel, and FINISH_MS kept back.
PLAN = TimeBudget(frames=101, imgsz=1000, frame_pixels=0)


def test_a_frame_costs_in_proportion_to_its_input_pixels() -> None:
    assert frame_ms(640, 100.0) == pytest.approx(4 * frame_ms(320, 100.0))
    assert frame_ms(1000, 100.0) == pytest.approx(100.0)
    assert finish_ms(10_000_000) > finish_ms(1_000_000) >= FINISH_MS


def test_the_estimate_is_every_frame_and_the_finish() -> None:
    assert PLAN.estimate_ms(100.0) == pytest.approx(101 * 100.0 + FINISH_MS)


def test_a_job_that_fits_starts() -> None:
    PLAN.check_start(remaining_ms=PLAN.estimate_ms(100.0) + 1, ms_per_input_megapixel=100.0)
    PLAN.check_start(remaining_ms=None, ms_per_input_megapixel=100.0)  # no deadline known


def test_a_job_that_cannot_finish_is_refused_at_once_naming_the_estimate() -> None:
    with pytest.raises(InvalidParams) as refused:
        PLAN.check_start(remaining_ms=5_000, ms_per_input_megapixel=100.0)

    message = str(refused.value)
    assert "100 tiles" in message and "12.1 s" in message and "5.0 s left" in message
    assert "SegmentTimeout" in message


def test_on_schedule_the_job_goes_on() -> None:
    # 51 frames done in 5.1 s (100 ms each): 50 more need 5 s + the finish
    PLAN.check_progress(done=51, elapsed_ms=5_100, remaining_ms=5_000 + FINISH_MS + 1)


def test_slower_than_estimated_stops_cleanly_before_the_timeout() -> None:
    # 11 frames took 3.3 s (300 ms each): 90 more need 27 s, only 20 s are left
    with pytest.raises(TimeBudgetExceeded) as stopped:
        PLAN.check_progress(done=11, elapsed_ms=3_300, remaining_ms=20_000)

    message = str(stopped.value)
    assert "after 10 of 100 tiles" in message and "300 ms a frame" in message and "20.0 s left" in message


@pytest.mark.parametrize(("done", "remaining"), [(0, 1.0), (101, 1.0), (50, None)])
def test_nothing_to_project(done: int, remaining: float | None) -> None:
    PLAN.check_progress(done=done, elapsed_ms=1e9, remaining_ms=remaining)


def test_the_next_estimate_uses_the_rate_a_job_measured() -> None:
    cost = TileCost()
    assert cost.ms_per_input_megapixel == DEFAULT_MS_PER_INPUT_MEGAPIXEL

    cost.record(frames=37, elapsed_ms=37 * 50.0, imgsz=500)  # 50 ms a frame of 0.25 MP

    assert cost.ms_per_input_megapixel == pytest.approx(200.0)
    cost.record(frames=0, elapsed_ms=0.0, imgsz=500)  # nothing measured: unchanged
    assert cost.ms_per_input_megapixel == pytest.approx(200.0)


def test_a_rate_measured_at_one_imgsz_does_not_lower_the_estimate_at_another() -> None:
    cost = TileCost()
    cost.record(frames=10, elapsed_ms=10 * 5.0, imgsz=320)  # ~49 ms per megapixel: fast small frames

    assert cost.rate(320) == pytest.approx(5.0 / 0.1024)
    assert cost.rate(2048) == DEFAULT_MS_PER_INPUT_MEGAPIXEL
    cost.record(frames=10, elapsed_ms=10 * 100.0, imgsz=320)  # a slow CPU shows at every size
    assert cost.rate(2048) == pytest.approx(100.0 / 0.1024)

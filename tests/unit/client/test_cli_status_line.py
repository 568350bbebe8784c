"""What `segjob status` prints for a running tiled job and for a truncated result."""

from __future__ import annotations

import pytest

from segjob.cli import _print_job
from segjob_core.models import Job, JobParams, JobProgress, JobResult, JobStatus, ResultSummary

NOW = "2026-12-01T23:00:00.000Z"


def job(**fields: object) -> Job:
    base: dict[str, object] = {
        "job_id": "job_1",
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW,
        "content_type": "image/png",
        "params": JobParams(tile_size=512),
    }
    return Job.model_validate({**base, **fields})


def test_a_running_tiled_job_shows_its_tiles_done(capsys: pytest.CaptureFixture[str]) -> None:
    _print_job(
        job(status=JobStatus.RUNNING, progress=JobProgress(tiles_done=37, tiles_total=100)), as_json=False
    )

    assert "RUNNING" in (line := capsys.readouterr().out) and "tiles 37/100" in line


def test_a_truncated_result_says_how_many_there_were(capsys: pytest.CaptureFixture[str]) -> None:
    summary = ResultSummary(count=2, by_class={"circle": 2}, truncated=True, count_before_cap=9)
    result = JobResult(summary=summary, timings={"total": 12.0}, result_key="results/job_1/result.json")

    _print_job(
        job(status=JobStatus.SUCCEEDED, progress=JobProgress(tiles_done=6, tiles_total=6), result=result),
        as_json=False,
    )

    line = capsys.readouterr().out
    assert "2 detections (circle 2) (maxDetections kept 2 of 9)" in line and "tiles" not in line

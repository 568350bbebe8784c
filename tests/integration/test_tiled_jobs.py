"""Tiled jobs in local mode, over real HTTP through our flows and the real segment function:
objects larger than a tile kept (the whole-image pass), maxDetections after the merge with
`truncated`, the time budget refusing a job that cannot finish, progress while running,
a cancel that stops the work and leaves no result objects, and the same pixels giving the
same answer in any container format."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segjob_core.models import Detection, Job, JobStatus, ResultDocument
from tests.support.local_mode import executions_for, finished, result_keys, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "shapes-1.jpg"


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def truth_boxes(instances) -> list[tuple[int, list[float]]]:
    return [
        (i.class_id, [*i.polygon.min(axis=0).tolist(), *i.polygon.max(axis=0).tolist()]) for i in instances
    ]


def found(detections: list[Detection], truth: list[tuple[int, list[float]]]) -> int:
    return sum(any(d.class_id == cls and iou(d.bbox, box) > 0.6 for d in detections) for cls, box in truth)


def write_png(path: Path, bgr: np.ndarray) -> Path:
    ok, buffer = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    path.write_bytes(buffer.tobytes())
    return path


def result_of(client, job: Job, tmp_path: Path) -> tuple[ResultDocument, tuple[int, int] | None]:
    """result.json of a SUCCEEDED job and the (w, h) of its annotated.jpg."""
    assert job.status is JobStatus.SUCCEEDED, job.error
    client.download_results(job, tmp_path)
    folder = tmp_path / job.job_id
    document = ResultDocument.model_validate_json((folder / "result.json").read_text())
    annotated = folder / "annotated.jpg"
    return document, (Image.open(annotated).size if annotated.exists() else None)


@pytest.fixture(scope="module")
def mixed_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, list[float]]]]:
    """1536x1024 PNG: two shapes wider than a 512 px tile and six small ones."""
    from synth import make_mixed_scene

    pixels, instances = make_mixed_scene(7, (1024, 1536), [(2, (290.0, 320.0)), (6, (35.0, 55.0))])
    path = write_png(tmp_path_factory.mktemp("scene") / "mixed.png", pixels)
    return path, truth_boxes(instances)


def test_an_object_larger_than_a_tile_is_kept(client, mixed_scene, tmp_path) -> None:
    # GIVEN an image with two shapes wider than the tiles (512 px) among small ones
    path, truth = mixed_scene
    large = truth[:2]

    # WHEN it is segmented in tiles
    job = client.wait(client.submit(path, params={"tileSize": 512}).job_id, timeout=180)
    document, _ = result_of(client, job, tmp_path)

    # THEN both large shapes are found whole (the whole-image pass) next to the small ones
    assert document.tiles == 12
    assert found(document.detections, large) == 2, [(d.class_name, d.bbox) for d in document.detections]
    assert found(document.detections, truth) >= len(truth) - 1
    assert document.summary.truncated is None and document.summary.count_before_cap is None


@pytest.mark.parametrize("params", [{}, {"tileSize": 512}], ids=["untiled", "tiled"])
def test_max_detections_applies_after_the_merge_and_says_it_truncated(client, params, tmp_path) -> None:
    # GIVEN how many shapes the sample has
    full = client.wait(client.submit(SAMPLE, params=params).job_id, timeout=180)
    everything, _ = result_of(client, full, tmp_path)
    count = everything.summary.count
    assert count >= 3 and everything.summary.truncated is None

    # WHEN a job of the same image keeps fewer
    capped_job = client.wait(client.submit(SAMPLE, params={**params, "maxDetections": 2}).job_id, timeout=180)
    capped, _ = result_of(client, capped_job, tmp_path)

    # THEN it keeps the two most confident, says it truncated and how many there were
    assert capped.summary.count == len(capped.detections) == 2
    assert capped.summary.truncated is True and capped.summary.count_before_cap == count
    assert capped_job.result.summary == capped.summary
    top = sorted((d.confidence for d in everything.detections), reverse=True)[:2]
    assert [d.confidence for d in capped.detections] == pytest.approx(top, abs=1e-3)


def test_a_job_that_cannot_finish_in_time_is_refused_at_once(client, tmp_path) -> None:
    # GIVEN 225 tiles of 256 px, each inferred at imgsz 2048: minutes of work for a 120 s function
    path = write_png(tmp_path / "flat.png", np.full((3000, 3000, 3), 200, np.uint8))

    started = time.monotonic()
    job = client.wait(client.submit(path, params={"tileSize": 256, "imgsz": 2048}).job_id, timeout=120)

    # THEN it fails at once with InvalidParams naming the estimate
    assert job.status is JobStatus.FAILED and job.error.code == "InvalidParams"
    assert "225 tiles" in job.error.message and "estimated to take" in job.error.message
    assert time.monotonic() - started < 60
    assert job.progress is None


@pytest.fixture(scope="module")
def slow_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2048x2048 JPEG of small shapes: 100 tiles of 256 px (at the model's 320) run for seconds."""
    yy, xx = np.mgrid[0:2048, 0:2048].astype(np.float32)
    pixels = np.stack([80 + xx / 30, 100 + yy / 30, 160 - xx / 40], axis=-1).astype(np.uint8)
    rng = np.random.default_rng(11)
    for x, y in rng.integers(60, 1988, (30, 2)):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(pixels, (int(x), int(y)), int(rng.integers(25, 50)), colour, cv2.FILLED, cv2.LINE_AA)
    path = tmp_path_factory.mktemp("slow") / "slow.jpg"
    path.write_bytes(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return path


SLOW_TILES = {"tileSize": 256}


def test_progress_of_a_running_tiled_job_is_visible(client, slow_scene, tmp_path) -> None:
    created = client.submit(slow_scene, params=SLOW_TILES)

    # WHEN its owner polls while it runs THEN the tiles done rise to the total
    seen: list[tuple[int, int]] = []

    def finished_job() -> Job | None:
        job = client.get_job(created.job_id)
        if job.progress and job.status is JobStatus.RUNNING:
            seen.append((job.progress.tiles_done, job.progress.tiles_total))
        return job if job.status.terminal else None

    job = wait_for(finished_job, timeout=300, interval=0.1)
    document, _ = result_of(client, job, tmp_path)
    assert document.tiles == 100
    assert any(0 < done < total for done, total in seen), seen
    assert all(total == 100 for _, total in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert (job.progress.tiles_done, job.progress.tiles_total) == (100, 100)


def test_a_canceled_tiled_job_stops_and_writes_nothing(runtime, client, slow_scene) -> None:
    # GIVEN a tiled job that is part-way through its tiles
    created = client.submit(slow_scene, params=SLOW_TILES)
    running = wait_for(
        lambda: (j := client.get_job(created.job_id)).progress and j.progress.tiles_done > 0 and j,
        timeout=300,
        interval=0.05,
    )
    assert running.status is JobStatus.RUNNING

    # WHEN its owner cancels it
    assert client.cancel(created.job_id).status is JobStatus.CANCELED

    # THEN the segment function stops at its next check, before the last tile, and fails the
    # Segment task with JobCanceled; the flow keeps the job CANCELED, and no result object exists
    executions = wait_for(lambda: finished(executions_for(runtime, created.job_id)), timeout=120)
    errors = segment_errors(runtime, executions)
    assert errors == ["JobCanceled"], errors
    job = client.get_job(created.job_id)
    assert job.status is JobStatus.CANCELED and job.result is None
    assert job.progress.tiles_done < job.progress.tiles_total == 100
    assert result_keys(runtime, created.job_id) == []


def segment_errors(runtime, executions: list[dict]) -> list[str]:
    """Error codes of the failed Segment tasks of these executions."""
    sfn = runtime.boto3_client("stepfunctions")
    errors = []
    for execution in executions:
        history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        for event in history:
            details = event.get("taskFailedEventDetails")
            if details and details.get("resourceType") == "lambda":
                errors.append(details["error"])
    return errors


# --- same pixels, same answer --------------------------------------------------------------


def smooth_scene() -> np.ndarray:
    """2400x1600 BGR: flat shapes on a gradient, no noise, so every container stays small."""
    yy, xx = np.mgrid[0:1600, 0:2400].astype(np.float32)
    image = np.stack([60 + xx / 40, 90 + yy / 30, 150 - xx / 60], axis=-1).astype(np.uint8)
    shapes = [
        ("circle", (500, 450), 200, (30, 30, 220)),
        ("rectangle", (1300, 500), 210, (220, 200, 40)),
        ("circle", (1900, 1150), 170, (240, 240, 240)),
        ("rectangle", (700, 1200), 180, (20, 120, 20)),
    ]
    for kind, (cx, cy), r, colour in shapes:
        if kind == "circle":
            cv2.circle(image, (cx, cy), r, colour, cv2.FILLED, cv2.LINE_AA)
        else:
            cv2.rectangle(
                image, (cx - r, cy - r * 2 // 3), (cx + r, cy + r * 2 // 3), colour, cv2.FILLED, cv2.LINE_AA
            )
    return image


FORMATS = {
    "jpeg": ("JPEG", {"quality": 100, "subsampling": 0}),
    "png": ("PNG", {"optimize": True}),
    "tiff": ("TIFF", {"compression": "tiff_deflate"}),
    "webp": ("WEBP", {"lossless": True}),
}


@pytest.mark.parametrize("params", [{}, {"tileSize": 1024}], ids=["untiled", "tiled"])
def test_the_same_pixels_give_the_same_answer_in_every_format(client, params, tmp_path) -> None:
    # GIVEN the same pixels as JPEG (quality 100), PNG, TIFF and lossless WebP
    rgb = Image.fromarray(cv2.cvtColor(smooth_scene(), cv2.COLOR_BGR2RGB))
    paths = {}
    for name, (fmt, save_args) in FORMATS.items():
        buffer = io.BytesIO()
        rgb.save(buffer, fmt, **save_args)
        paths[name] = tmp_path / f"scene.{name}"
        paths[name].write_bytes(buffer.getvalue())

    # WHEN each is segmented with the same params
    submitted = {name: client.submit(path, params=params).job_id for name, path in paths.items()}
    results = {
        name: result_of(client, client.wait(job_id, timeout=180), tmp_path)
        for name, job_id in submitted.items()
    }

    # THEN every format gives the same detections (class, box) and the same annotated size
    reference, reference_size = results["png"]
    assert reference.summary.count >= 3, json.dumps(reference.summary.to_json_dict())
    for name, (document, size) in results.items():
        assert document.image.format == name
        assert size == reference_size, name
        assert document.summary.by_class == reference.summary.by_class, name
        for detection in document.detections:
            assert any(
                d.class_id == detection.class_id and iou(d.bbox, detection.bbox) > 0.9
                for d in reference.detections
            ), (name, detection.class_name, detection.bbox)
    expected_size = (2400, 1600) if params else (1280, 853)
    assert reference_size == expected_size

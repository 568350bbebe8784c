"""lambda_handler end to end against moto's in-process S3."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image
from pydantic import ValidationError

from segjob_core.errors import InputMissing, InvalidParams, ModelUnavailable, UnsupportedFormat
from segjob_core.models import ResultDocument, SegmentOutcome

from .conftest import FUNCTION_DIR, ROOT, FakeLambdaContext

EVENT = json.loads((ROOT / "tests" / "events" / "segment_request.json").read_text())
BUCKET, KEY, JOB_ID = EVENT["bucket"], EVENT["key"], EVENT["jobId"]
QUICK = {"conf": 0.0, "imgsz": 320, "maxDetections": 5}  # a random model finds nothing above 0


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def event(**params: Any) -> dict[str, Any]:
    return {**EVENT, "params": {**EVENT["params"], **QUICK, **params}}


def keys(s3: Any) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_segments_an_upload_and_writes_results(
    app: ModuleType, s3: Any, bus_jpeg: bytes, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN an uploaded photo
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=bus_jpeg)

    # WHEN the state machine invokes the function
    returned = app.lambda_handler(event(), lambda_context)

    # THEN it returns the outcome and wrote result.json and annotated.jpg next to the upload
    outcome = SegmentOutcome.model_validate(returned)
    assert outcome.result_key == f"results/{JOB_ID}/result.json"
    assert outcome.annotated_key == f"results/{JOB_ID}/annotated.jpg"
    assert keys(s3) == {KEY, outcome.result_key, outcome.annotated_key}

    stored = s3.get_object(Bucket=BUCKET, Key=outcome.result_key)
    assert stored["ContentType"] == "application/json"
    raw = json.loads(stored["Body"].read())
    assert set(raw) == {"jobId", "image", "model", "params", "detections", "summary", "timings", "createdAt"}
    document = ResultDocument.model_validate(raw)
    assert document.job_id == JOB_ID
    assert (document.image.width, document.image.height, document.image.format) == (810, 1080, "jpeg")
    assert document.model == outcome.model
    assert document.model.name == "tiny-seg" and len(document.model.sha256) == 64
    assert document.params.imgsz == 320
    assert document.summary == outcome.summary
    assert document.summary.count == len(document.detections) > 0
    assert document.timings == outcome.timings
    assert set(raw["detections"][0]) == {"classId", "className", "confidence", "bbox", "polygon", "area"}
    timings = document.timings
    for stage in ("download", "decode", "inference", "postprocess", "annotate", "encode", "upload"):
        assert getattr(timings, stage) > 0, stage
    assert timings.total >= timings.inference + timings.decode

    annotated = s3.get_object(Bucket=BUCKET, Key=outcome.annotated_key)
    assert annotated["ContentType"] == "image/jpeg"
    pixels = cv2.imdecode(np.frombuffer(annotated["Body"].read(), np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    assert pixels.shape == (1080, 810, 3)


def test_annotation_can_be_turned_off(
    app: ModuleType, s3: Any, bus_jpeg: bytes, lambda_context: FakeLambdaContext
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=bus_jpeg)

    returned = app.lambda_handler(event(annotate=False), lambda_context)

    assert "annotatedKey" not in returned
    assert keys(s3) == {KEY, f"results/{JOB_ID}/result.json"}
    assert (
        returned["timings"]["annotate"] == returned["timings"]["encode"] == returned["timings"]["upload"] == 0
    )


def test_missing_upload_is_input_missing(app: ModuleType, s3: Any, lambda_context: FakeLambdaContext) -> None:
    with pytest.raises(InputMissing, match=KEY):
        app.lambda_handler(event(), lambda_context)
    assert keys(s3) == set()


def test_unsupported_upload_fails_the_job_and_writes_nothing(
    app: ModuleType, s3: Any, lambda_context: FakeLambdaContext
) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 128, 0)).save(gif, "GIF")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=gif.getvalue())

    with pytest.raises(UnsupportedFormat) as caught:
        app.lambda_handler(event(), lambda_context)

    assert caught.value.code == "UnsupportedFormat"  # what the state machine stores
    assert keys(s3) == {KEY}


@pytest.mark.parametrize("params", [{"classes": [0, 9]}, {"imgsz": 100}, {"conf": 2}])
def test_bad_params_are_invalid_params(
    app: ModuleType, s3: Any, bus_jpeg: bytes, lambda_context: FakeLambdaContext, params: dict[str, Any]
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=bus_jpeg)

    with pytest.raises(InvalidParams):
        app.lambda_handler(event(**params), lambda_context)


def test_malformed_event_is_a_validation_error(app: ModuleType, lambda_context: FakeLambdaContext) -> None:
    with pytest.raises(ValidationError):
        app.lambda_handler({"bucket": BUCKET}, lambda_context)


@pytest.fixture
def app_without_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app: ModuleType
) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        spec = importlib.util.spec_from_file_location("segment_app_without_model", FUNCTION_DIR / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "missing.pt"))
    assert os.environ["MODEL_URI"] == ""
    return load


def test_missing_model_fails_jobs_not_the_import(
    app_without_model: Callable[[], ModuleType], s3: Any, bus_jpeg: bytes, lambda_context: FakeLambdaContext
) -> None:
    module = app_without_model()  # the import succeeds
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=bus_jpeg)

    with pytest.raises(ModelUnavailable, match="does not exist"):
        module.lambda_handler(event(), lambda_context)


def test_tiled_job_records_its_tiles_and_keeps_original_pixels(
    app: ModuleType, s3: Any, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a 2600x1000 photo, large enough to be decoded reduced when not tiled
    noise = np.random.default_rng(7).integers(0, 255, (1000, 2600, 3), dtype=np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noise)
    assert ok
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=jpeg.tobytes())

    # WHEN the job asks for 1024 px tiles (3 along the width, one row: the height fits)
    returned = app.lambda_handler(event(tileSize=1024, maxDetections=40), lambda_context)

    # THEN result.json records the tiles, and detections and annotated.jpg are in original pixels
    raw = json.loads(s3.get_object(Bucket=BUCKET, Key=returned["resultKey"])["Body"].read())
    assert raw["tiles"] == 3
    assert raw["params"]["tileSize"] == 1024 and raw["params"]["tileOverlap"] == 0.2
    document = ResultDocument.model_validate(raw)
    assert (document.image.width, document.image.height) == (2600, 1000)
    assert 0 < len(document.detections) <= 40
    boxes = np.array([d.bbox for d in document.detections])
    assert boxes.min() >= 0 and boxes[:, [0, 2]].max() <= 2600 and boxes[:, [1, 3]].max() <= 1000
    assert boxes[:, 2].max() > 1024  # found beyond the first tile, placed where it is in the image
    for detection in document.detections:
        x1, y1, x2, y2 = detection.bbox
        assert all(x1 - 1 <= x <= x2 + 1 and y1 - 1 <= y <= y2 + 1 for x, y in detection.polygon)
    annotated = s3.get_object(Bucket=BUCKET, Key=returned["annotatedKey"])["Body"].read()
    assert cv2.imdecode(np.frombuffer(annotated, np.uint8), cv2.IMREAD_COLOR).shape == (1000, 2600, 3)

    # AND the same upload without tiles works at the working size (longer side 1280), no tiles
    untiled = app.lambda_handler(event(maxDetections=40), lambda_context)
    raw = json.loads(s3.get_object(Bucket=BUCKET, Key=untiled["resultKey"])["Body"].read())
    assert "tiles" not in raw and "tileSize" not in raw["params"]
    annotated = s3.get_object(Bucket=BUCKET, Key=untiled["annotatedKey"])["Body"].read()
    assert cv2.imdecode(np.frombuffer(annotated, np.uint8), cv2.IMREAD_COLOR).shape == (492, 1280, 3)

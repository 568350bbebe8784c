"""Fixtures of the segment function's unit tests: no network, models built on the spot.

A random-weights YOLOv8n-seg (2 classes) is built from the Ultralytics architecture yaml
once per session and exported to ONNX as `make model` does; it finds nothing at the
default threshold, so tests that need detections use conf=0. Tests of real content use the
trained demo model (its committed ONNX export).
"""

from __future__ import annotations

import importlib.util
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
FUNCTION_DIR = ROOT / "functions" / "segment"
DEMO_MODEL = FUNCTION_DIR / "model" / "shapes-seg.onnx"
DEMO_CHECKPOINT = DEMO_MODEL.with_suffix(".pt")
TEST_CLASSES = {0: "circle", 1: "square"}

# Fake credentials and a region before anything creates a boto3 client (the storage
# adapter creates its client at import, as in Lambda); moto intercepts every call.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_NAMESPACE": "SegJobTests",
    "POWERTOOLS_TRACE_DISABLED": "true",
}.items():
    os.environ.setdefault(_name, _value)
os.environ.pop("AWS_ENDPOINT_URL", None)  # never a real or local endpoint: moto only

import moto  # noqa: E402,F401 - registers its botocore hook before the adapter's client exists

from tests.support.models import build_seg_onnx  # noqa: E402 - Ultralytics env defaults (/tmp, offline)


@pytest.fixture(scope="session")
def bus_jpeg() -> bytes:
    import ultralytics

    return (Path(ultralytics.__file__).parent / "assets" / "bus.jpg").read_bytes()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-init YOLOv8n-seg with TEST_CLASSES, exported to ONNX (the .pt is beside it)."""
    return build_seg_onnx(tmp_path_factory.mktemp("model") / "tiny-seg.onnx", TEST_CLASSES)


@pytest.fixture(scope="session")
def segmenter(tiny_model_path: Path):
    from segmentation.runtime import Segmenter

    return Segmenter.load(tiny_model_path, threads=1)


@pytest.fixture(scope="session")
def demo_segmenter():
    if not DEMO_MODEL.is_file():
        pytest.fail(f"demo model {DEMO_MODEL.relative_to(ROOT)} is missing: `make model` exports it")
    from segmentation.runtime import Segmenter

    return Segmenter.load(DEMO_MODEL, threads=1)


@pytest.fixture(scope="session")
def app(tiny_model_path: Path) -> Iterator[ModuleType]:
    """functions/segment/app.py, imported as Lambda would, with the tiny model baked in."""
    previous = {name: os.environ.get(name) for name in ("MODEL_PATH", "MODEL_URI", "MODEL_THREADS")}
    os.environ.update({"MODEL_PATH": str(tiny_model_path), "MODEL_URI": "", "MODEL_THREADS": "1"})
    spec = importlib.util.spec_from_file_location("segment_app", FUNCTION_DIR / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass
class FakeLambdaContext:
    function_name: str = "SegmentFunction"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:SegmentFunction"
    aws_request_id: str = "5c7b6f0c-0000-4000-8000-000000000000"
    remaining_ms: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def _jpeg_bytes(
    width: int, height: int, colour: tuple[int, int, int] = (90, 140, 200), **save_args: object
) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=90, **save_args)
    return buffer.getvalue()


@pytest.fixture
def make_jpeg():
    """make_jpeg(width, height, colour=..., **PIL save args) -> JPEG bytes of one colour."""
    return _jpeg_bytes

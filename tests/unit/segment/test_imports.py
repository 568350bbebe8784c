"""The segment function runs without the training toolchain: no torch, no Ultralytics.

A fresh interpreter imports the handler as Lambda (and local mode's worker) does, with only
the function's own code and the shared package on its path, lets it load the bundled model
at init and runs a job; the test process itself has torch loaded, so this must be a
subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from local.lambda_runtime import new_trace_header

from .conftest import FUNCTION_DIR, ROOT

TOOLCHAIN = ("torch", "torchvision", "ultralytics")
# What a cold start need not pay for: boto3 and s3transfer (storage.py calls botocore), and
# the HTTP and database libraries the X-Ray SDK would patch if the Tracer patched them all.
COLD_START_EXTRAS = ("boto3", "s3transfer", "requests", "httpx", "sqlite3", "pynamodb", "sqlalchemy")

SCRIPT = """
import json, sys
import app
from segjob_core.models import JobParams, SegmentRequest
from segmentation.service import segment_image

class Store:
    def __init__(self, data): self.objects = {"in": data}
    def get_bytes(self, bucket, key, version_id=None): return self.objects[key]
    def put_bytes(self, bucket, key, body, content_type): self.objects[key] = body

store = Store(open(sys.argv[1], "rb").read())
request = SegmentRequest(job_id="job_imports", bucket="b", key="in", params=JobParams(tile_size=512))
outcome = segment_image(request, segmenter=app.models.get(), store=store, max_image_pixels=50_000_000)
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"count": outcome.summary.count, "backend": outcome.model.backend, "modules": loaded}))
"""


def run_job(**environ: str) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(FUNCTION_DIR), str(ROOT / "functions" / "shared")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "SegJobTests",
        "MODEL_THREADS": "1",
        **environ,
    }
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "samples" / "shapes-1.jpg")],
        cwd=FUNCTION_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def test_the_function_imports_neither_torch_nor_ultralytics() -> None:
    report = run_job()

    assert report["backend"] == "onnxruntime" and report["count"] > 0  # a real job ran (tiled: 960 > 512)
    assert "onnxruntime" in report["modules"]
    assert not set(TOOLCHAIN) & set(report["modules"])


def test_a_traced_cold_start_imports_only_what_the_function_calls(tmp_path) -> None:
    """As on Lambda with active tracing: the Tracer patches botocore only, and no boto3."""
    report = run_job(
        LAMBDA_TASK_ROOT=str(FUNCTION_DIR),
        AWS_LAMBDA_FUNCTION_NAME="SegmentFunction",
        POWERTOOLS_TRACE_DISABLED="false",
        _X_AMZN_TRACE_ID=new_trace_header(),
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:9",  # UDP, nobody listens: segments are dropped
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
        TMPDIR=str(tmp_path),
    )

    assert report["count"] > 0
    assert "botocore" in report["modules"] and "aws_xray_sdk" in report["modules"]
    assert not set(COLD_START_EXTRAS) & set(report["modules"])

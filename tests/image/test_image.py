"""The segment function's container image, built and run on this machine (`make image-test`).

The image is built from functions/segment/Dockerfile with Docker's classic builder (what
`sam build` uses) on a stand-in for the Lambda Python base image (tests/image/docker.sh
makes it: Debian bookworm, CPython 3.12, awslambdaric). It then runs as Lambda runs it:
its own entry point and CMD, the template's environment for SegmentFunction, a read-only
root file system with /tmp as the only writable place, the memory limit of the template's
smallest SegmentMemorySize, and no network but loopback in a namespace of its own, where
tests/image/runtime_api.py serves local mode's S3 and a Lambda Runtime API. One real job:
an image uploaded with a presigned POST, result.json and annotated.jpg written back.

Figures (build time, image size, cold start in the container) are printed and written to
build/image-test/report.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.template import Stack, load_template
from segjob_core.models import ResultDocument, SegmentOutcome

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"
BASE_IMAGE = os.environ.get("STANDIN_BASE_IMAGE", "segjob/lambda-python-standin:3.12")
IMAGE = "segjob/segment-function:image-test"
WORK = ROOT / "build" / "image-test"
SAMPLE = ROOT / "samples" / "shapes-1.jpg"
# Where pip inside the build finds this machine's CA bundle (TLS to PyPI is intercepted here).
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
MAX_IMAGE_MB = 400  # above the base image

pytestmark = pytest.mark.slow


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    if check and completed.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} failed:\n{completed.stderr[-3000:]}")
    return completed


def image_bytes(tag: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)


def minimum_memory_mb() -> int:
    return int(load_template(ROOT / "template.yaml")["Parameters"]["SegmentMemorySize"]["MinValue"])


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, Any]]:
    WORK.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"base": BASE_IMAGE}
    yield figures
    (WORK / "report.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("\nimage test:", json.dumps(figures, indent=2))


@pytest.fixture(scope="module")
def built(report: dict[str, Any]) -> str:
    assert Path(DOCKER).is_file(), (
        "Docker is not installed: `make image-test` runs tests/image/docker.sh first"
    )
    docker("image", "inspect", BASE_IMAGE)  # made by tests/image/docker.sh
    context = WORK / "context"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(
        ROOT / "functions",
        context,
        ignore=shutil.ignore_patterns("__pycache__", ".mypy_cache", "build-ca.pem"),
    )
    bundle = next((path for path in CA_BUNDLES if Path(path).is_file()), None)
    if bundle:
        shutil.copyfile(bundle, context / "segment" / "build-ca.pem")
    started = time.perf_counter()
    docker(
        "build", "--force-rm", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-f", str(context / "segment" / "Dockerfile"),
        "-t", IMAGE, str(context), timeout=1800,
    )  # fmt: skip
    report["buildSeconds"] = round(time.perf_counter() - started, 1)
    report["imageMb"] = round(image_bytes(IMAGE) / 1e6, 1)
    report["baseMb"] = round(image_bytes(BASE_IMAGE) / 1e6, 1)
    report["aboveBaseMb"] = round(report["imageMb"] - report["baseMb"], 1)
    return IMAGE


def run_python(image: str, code: str) -> str:
    return docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", code
    ).stdout.strip()


def test_the_image_holds_the_runtime_only(built: str, report: dict[str, Any]) -> None:
    found = run_python(
        built,
        "import importlib.util as u, json, sys; "
        "print(json.dumps({'python': sys.version.split()[0], "
        "'present': [m for m in ('onnxruntime', 'cv2', 'numpy', 'PIL', 'botocore') if u.find_spec(m)], "
        "'toolchain': [m for m in ('torch', 'torchvision', 'ultralytics', 'onnx') if u.find_spec(m)]}))",
    )
    facts = json.loads(found)
    report["python"] = facts["python"]

    assert facts["toolchain"] == []
    assert facts["present"] == ["onnxruntime", "cv2", "numpy", "PIL", "botocore"]
    # the build stage's CA bundle and pip's work stay in the build stage
    leftovers = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", built, "-c",
                       "find / -xdev -name build-ca.pem 2>/dev/null; ls /opt/build 2>/dev/null; true").stdout  # fmt: skip
    assert leftovers.strip() == ""
    assert report["aboveBaseMb"] <= MAX_IMAGE_MB, report


@pytest.fixture
def network_namespace() -> Iterator[tuple[str, int]]:
    """A container that only holds a network namespace with loopback (no interface, no route)."""
    name = f"segjob-image-test-net-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--rm", "--network", "none", "--name", name, "--entrypoint", "sleep", BASE_IMAGE, "600"
    )
    try:
        yield name, int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout)
    finally:
        docker("rm", "-f", name, check=False)


def largest_permitted_png() -> Path:
    """A PNG of MaxImagePixels (50 MP, 8660x5773) under MaxUploadBytes: shapes on a gradient."""
    import cv2
    import numpy as np

    path = WORK / "largest-permitted.png"
    if not path.is_file():
        width, height = 8660, 5773
        ramp = np.linspace(60, 200, width, dtype=np.float32)
        pixels = np.repeat(np.stack([ramp, ramp[::-1], np.full(width, 128.0)], axis=1)[None], height, axis=0)
        pixels = pixels.astype(np.uint8)
        rng = np.random.default_rng(5)
        for _ in range(80):
            x, y, r = (
                int(rng.integers(100, width - 100)),
                int(rng.integers(100, height - 100)),
                int(rng.integers(30, 90)),
            )
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            if rng.random() < 0.5:
                cv2.circle(pixels, (x, y), r, colour, -1)
            else:
                cv2.rectangle(pixels, (x - r, y - r), (x + r, y + r // 2), colour, -1)
        cv2.imwrite(str(path), pixels, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    return path


JOBS = {  # (image, params, annotated.jpg shape)
    "sample": (SAMPLE, {}, [640, 960, 3]),
    "50MP-png-tiled": (None, {"tileSize": 640}, [5773, 8660, 3]),
}


@pytest.mark.parametrize("job", JOBS, ids=list(JOBS))
def test_the_handler_runs_in_the_image_read_only_at_the_minimum_memory(
    built: str, network_namespace: tuple[str, int], report: dict[str, Any], tmp_path: Path, job: str
) -> None:
    image, params, annotated_shape = JOBS[job]
    image = image or largest_permitted_png()
    assert image.stat().st_size <= int(Stack(ROOT / "template.yaml").parameters["MaxUploadBytes"])
    # GIVEN local mode's S3 with an uploaded image, and a Runtime API with its job, on the
    # loopback of a network namespace that the function's container will share
    name, pid = network_namespace
    job_report = tmp_path / "job.json"
    driver = subprocess.Popen(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, str(ROOT / "tests" / "image" / "runtime_api.py"),
         "--image", str(image), "--report", str(job_report), "--timeout", "600", "--params", json.dumps(params)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    function = f"segjob-image-test-fn-{uuid.uuid4().hex[:8]}"
    try:
        ready = json.loads(driver.stdout.readline() or "{}")
        assert ready, driver.stderr.read()[-3000:]

        # WHEN the image runs as Lambda runs it, with the template's environment for the function
        memory = minimum_memory_mb()
        environment = {
            **Stack(ROOT / "template.yaml").function("SegmentFunction").environment,
            "AWS_LAMBDA_RUNTIME_API": ready["runtimeApi"],
            "AWS_ENDPOINT_URL": ready["s3"],
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_LAMBDA_FUNCTION_NAME": "SegmentFunction",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/SegmentFunction",
            "AWS_LAMBDA_LOG_STREAM_NAME": "image-test",
        }
        options = ["--name", function, "--network", f"container:{name}", "--read-only", "--tmpfs", "/tmp",
                   "--memory", f"{memory}m", "--memory-swap", f"{memory}m"]  # fmt: skip
        for key, value in environment.items():
            options += ["-e", f"{key}={value}"]
        started = time.time()
        docker("run", "-d", *options, built)
        done = driver.stdout.readline()  # the job was answered (or timed out) and its report written
        peak = docker(  # cgroup v2, else v1 (whose peak counts the page cache too)
            "exec", function, "sh", "-c",
            "cat /sys/fs/cgroup/memory.peak || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes",
            check=False,
        ).stdout.strip()  # fmt: skip
        logs = docker("logs", function, check=False)
        (WORK / f"function-{job}.log").write_text(logs.stdout + logs.stderr)
        state = json.loads(docker("inspect", "-f", "{{json .State}}", function).stdout)
        limit = int(docker("inspect", "-f", "{{.HostConfig.Memory}}", function).stdout)
        assert done, driver.stderr.read()[-3000:]
    finally:
        if driver.stdin:
            driver.stdin.close()
        docker("rm", "-f", function, check=False)
        try:
            driver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            driver.kill()

    # THEN it answered with the outcome, and wrote result.json and annotated.jpg
    assert job_report.is_file()
    answer = json.loads(job_report.read_text())
    assert answer["outcome"] == "response", (answer["body"], logs.stdout[-3000:], logs.stderr[-3000:])
    assert not state["OOMKilled"] and limit == memory * 2**20
    outcome = SegmentOutcome.model_validate(answer["body"])
    assert outcome.summary.count > 0 and outcome.model.backend == "onnxruntime"
    assert outcome.timings.total > 0 and outcome.timings.inference > 0
    document = ResultDocument.model_validate(answer["objects"]["result.json"]["document"])
    assert document.timings == outcome.timings and document.detections
    assert answer["objects"]["annotated.jpg"]["contentType"] == "image/jpeg"
    assert answer["objects"]["annotated.jpg"]["shape"] == annotated_shape
    report["memoryLimitMb"] = memory
    report[job] = dict(
        containerStartToInitDoneMs=round((answer["firstPollAt"] - started) * 1000),
        containerStartToResultMs=round((answer["answeredAt"] - started) * 1000),
        imageBytes=image.stat().st_size,
        peakMemoryMb=round(int(peak) / 2**20) if peak.isdigit() else None,
        detections=outcome.summary.count,
        timingsMs=outcome.timings.to_json_dict(),
    )

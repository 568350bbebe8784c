"""Opening the model file: checks, sha256, the ONNX Runtime session, and its first run.

Only numpy and onnxruntime here (no pydantic, no OpenCV), so that a process can start
opening its model first and import everything else while ONNX Runtime works:
`ModelOpening` runs `open_session` and one inference on a thread, and ONNX Runtime releases
the GIL while it builds the session and while it runs, so the imports that follow (the
contract models, OpenCV, Powertools, boto3: pure Python, most of a cold start) go on beside
it on the other vCPU. `Segmenter.load` then takes the opened session (runtime.py).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from segjob_core.errors import ModelUnavailable

if TYPE_CHECKING:
    from .settings import SegmentSettings

EXPORT_COMMAND = "yolo export model={name} format=onnx dynamic=True"
CHECKPOINT_SUFFIXES = (".pt", ".pth")
# The first run's input: the letterboxed 640x480 frame of the warm-up at the default 320.
FIRST_RUN_SHAPE = (1, 3, 256, 320)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_torch_checkpoint(path: Path) -> bool:
    """A PyTorch checkpoint (.pt) rather than an ONNX file: by name, or by content (a zip
    archive or a pickle, where an ONNX protobuf starts with its IR version field)."""
    with path.open("rb") as stream:
        head = stream.read(4)
    return path.suffix.lower() in CHECKPOINT_SUFFIXES or head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def checkpoint_unavailable(name: str) -> ModelUnavailable:
    """The error for a .pt where the ONNX export is needed: it names the command that makes it."""
    return ModelUnavailable(
        f"{name} is a PyTorch checkpoint; the segment function runs its ONNX export: "
        f"`{EXPORT_COMMAND.format(name=name)}` writes {Path(name).stem}.onnx (README: Your own model)"
    )


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # on purpose: all the vCPUs the function has
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads spin for a while after each run (~60 ms of CPU) and slow the numpy and
    # OpenCV work that follows: whole-job times were steadier without (DESIGN.md section 7).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return options


@dataclass(frozen=True)
class OpenedModel:
    path: Path
    sha256: str
    session: ort.InferenceSession
    ms: float  # opening it took (and its first run, when it had one)


def open_session(path: Path, *, threads: int, expected_sha256: str | None = None) -> OpenedModel:
    """Check the file (exists, not a .pt, the expected sha256) and build its session."""
    started = time.perf_counter()
    if not path.is_file():
        raise ModelUnavailable(f"model file {path} does not exist")
    if is_torch_checkpoint(path):
        raise checkpoint_unavailable(path.name)
    sha256 = file_sha256(path)
    if expected_sha256 and sha256 != expected_sha256.lower():
        raise ModelUnavailable(
            f"model file {path} does not match the expected sha256: "
            f"it has {sha256}, expected {expected_sha256.lower()}"
        )
    try:
        session = ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        raise ModelUnavailable(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc
    return OpenedModel(path, sha256, session, (time.perf_counter() - started) * 1000)


def first_run(session: ort.InferenceSession) -> None:
    """One inference on a blank input: the first run allocates and plans (several times a
    warm one). Skipped when the input is not a YOLO image input; the warm-up covers that."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return
    (model_input,) = inputs
    if len(model_input.shape) != len(FIRST_RUN_SHAPE) or model_input.type != "tensor(float)":
        return  # not a YOLO export: Segmenter.load says what is wrong with it
    shape = [
        dim if isinstance(dim, int) else want
        for dim, want in zip(model_input.shape, FIRST_RUN_SHAPE, strict=True)
    ]
    try:
        session.run(None, {model_input.name: np.zeros(shape, np.float32)})
    except Exception:  # a model that cannot run: Segmenter.load's checks or the warm-up say why
        return


class ModelOpening:
    """`open_session` and its first run on a thread, started at construction; `result()`
    waits for it and returns the opened model, or raises what opening it raised."""

    def __init__(self, path: Path, *, threads: int, expected_sha256: str | None = None) -> None:
        self.path = path
        self._threads = threads
        self._expected_sha256 = expected_sha256
        self._opened: OpenedModel | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._open, name="model-opening", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        try:
            opened = open_session(self.path, threads=self._threads, expected_sha256=self._expected_sha256)
            started = time.perf_counter()
            first_run(opened.session)
            ms = opened.ms + (time.perf_counter() - started) * 1000
            self._opened = OpenedModel(opened.path, opened.sha256, opened.session, ms)
        except BaseException as exc:  # handed to whoever waits (ModelUnavailable, or a bad input shape)
            self._error = exc

    def result(self) -> OpenedModel:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._opened is not None
        return self._opened


def open_bundled(settings: SegmentSettings) -> ModelOpening | None:
    """Start opening the baked-in model (MODEL_PATH) on a thread, for the ModelProvider to
    take once the rest is imported; None when MODEL_URI names a model to fetch instead."""
    if settings.model_uri is not None:
        return None
    return ModelOpening(
        Path(settings.model_path), threads=settings.thread_count, expected_sha256=settings.model_sha256
    )

"""Job logic of the segment function: one image in, result.json (+ annotated.jpg) out.

No AWS here: objects go through an `ObjectStore` (S3 in Lambda, memory in the benchmark)
and the weights come from a `ModelProvider` that loads them once per process.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

import cv2
import numpy as np

from segjob_core.errors import JobCanceled, ModelUnavailable
from segjob_core.jobs import iso, utc_now
from segjob_core.keys import annotated_key, result_key
from segjob_core.models import JobParams, JobProgress, ResultDocument, SegmentOutcome, SegmentRequest, Timings

from .budget import TileCost, TimeBudget
from .decode import decode_image, working_size
from .loader import CHECKPOINT_SUFFIXES, ModelOpening, checkpoint_unavailable
from .outputs import render_outputs
from .postprocess import Prediction, cap, summarize, to_detections
from .render import annotate, encode_jpeg
from .runtime import Segmenter
from .settings import SegmentSettings
from .tiling import Tile, merge_tiles, tile_grid

MODEL_CACHE_DIR = Path(tempfile.gettempdir()) / "models"  # /tmp/models in Lambda


class ObjectStore(Protocol):
    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes: ...

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...


ModelFetcher = Callable[[str, Path], Path]
RemainingMs = Callable[[], int]  # the Lambda context's get_remaining_time_in_millis

# Per frame (the image, a tile, the whole-image pass) at most this many detections (the most
# maxDetections may be) go into the merge; the job's maxDetections applies after it, and
# result.json's countBeforeCap counts what it dropped.
FRAME_DETECTIONS = 1000


class JobRecord(Protocol):
    """The job's record as the segment function sees it (`storage.DynamoJobRecord`)."""

    def still_running(self, job_id: str, progress: JobProgress | None = None) -> bool: ...


# The per-process calibration of the time budget: each tiled job's measured rate is the next one's estimate.
TILE_COST = TileCost()


class ModelProvider:
    """The segmenter of this process: the baked-in model, or MODEL_URI fetched once to /tmp.

    A failure is not remembered: the next job tries again (an S3 hiccup should not poison
    a warm container), and each failing job reports ModelUnavailable with the reason.
    """

    def __init__(
        self,
        settings: SegmentSettings,
        fetch: ModelFetcher | None = None,
        cache_dir: Path = MODEL_CACHE_DIR,
        opening: ModelOpening | None = None,
    ) -> None:
        self._settings = settings
        self._fetch = fetch
        self._cache_dir = cache_dir
        self._segmenter: Segmenter | None = None
        self._lock = threading.Lock()
        self._opening = opening  # the baked-in model, already being opened (loader.open_bundled)

    @property
    def loaded(self) -> Segmenter | None:
        return self._segmenter

    def get(self) -> Segmenter:
        if self._segmenter is None:
            with self._lock:
                if self._segmenter is None:
                    opening, self._opening = self._opening, None  # used once: a failure is not remembered
                    segmenter = Segmenter.load(
                        self._weights_path(),
                        threads=self._settings.thread_count,
                        expected_sha256=self._settings.model_sha256,
                        warmup=False,
                        opening=opening,
                    )
                    warm_up(segmenter, infer=opening is None)
                    self._segmenter = segmenter
        return self._segmenter

    def _weights_path(self) -> Path:
        uri = self._settings.model_uri
        if uri is None:
            return Path(self._settings.model_path)
        if self._fetch is None:
            raise ModelUnavailable("MODEL_URI is set but this runtime cannot fetch models")
        if uri.lower().endswith(CHECKPOINT_SUFFIXES):  # refused before downloading it
            raise checkpoint_unavailable(PurePosixPath(uri).name)
        return self._fetch(uri, self._cache_dir)


class MemoryStore:
    """An ObjectStore in memory (the warm-up's; the benchmark's)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self.objects[(bucket, key)]

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = body


def warm_up(segmenter: Segmenter, *, infer: bool = True) -> None:
    """One job on a grey JPEG, and one drawn detection, before the first real job: the first
    call of each stage (the JPEG decoder, the model's plan for an input size, OpenCV's drawing
    and encoding) costs several times a warm one, and this way the init phase pays it. With
    `infer=False` (the model had its first run when it was opened: loader.ModelOpening) only
    the stages around the model: decode, draw, encode."""
    grey = encode_jpeg(np.full((480, 640, 3), 128, np.uint8))
    if infer:
        store = MemoryStore()
        store.objects[("warm-up", "input")] = grey
        request = SegmentRequest(job_id="job_warmup", bucket="warm-up", key="input")
        segment_image(request, segmenter=segmenter, store=store, max_image_pixels=640 * 480)
    else:
        encode_jpeg(decode_image(grey, max_pixels=640 * 480).pixels)
    square = np.array([[10, 10], [60, 10], [60, 60], [10, 60]], np.float32)
    annotate(
        np.zeros((80, 80, 3), np.uint8),
        Prediction(square[[0, 2]].reshape(1, 4), np.ones(1, np.float32), np.zeros(1, np.int64), [square]),
        segmenter.names,
    )


class StageClock:
    """Milliseconds per stage, and the total since the clock was made."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._stages[name] = self._stages.get(name, 0.0) + (time.perf_counter() - started) * 1000

    def timings(self) -> Timings:
        total = (time.perf_counter() - self._started) * 1000
        return Timings(**{name: round(ms, 2) for name, ms in self._stages.items()}, total=round(total, 2))


def segment_image(
    request: SegmentRequest,
    *,
    segmenter: Segmenter,
    store: ObjectStore,
    max_image_pixels: int,
    record: JobRecord | None = None,
    remaining_ms: RemainingMs | None = None,
    tile_cost: TileCost = TILE_COST,
) -> SegmentOutcome:
    """Run one job: download, decode, infer, postprocess, annotate, encode, upload.

    With `params.tile_size` and an image whose longer side exceeds it, the full-resolution
    frame is inferred tile by tile, and as a whole (see `TiledJob`); `inference`
    covers all of it. maxDetections keeps the most confident after the merge; result.json
    says when it dropped some. Before writing anything the job's `record` is checked: a
    canceled job writes no results (JobCanceled). Timings in result.json and in the outcome
    are the same numbers; `upload` and `total` cover annotated.jpg, not the write of
    result.json itself (which carries them).
    """
    # result.json shows the size and the NMS used
    params = request.params.for_model(segmenter.info.imgsz, segmenter.info.agnostic_nms)
    results_bucket = request.result_bucket or request.bucket
    segmenter.check_params(params)  # before any download: a bad class id fails fast
    clock = StageClock()
    with clock.stage("download"):
        data = store.get_bytes(request.bucket, request.key, request.version_id)
    with clock.stage("decode"):
        image = decode_image(data, max_pixels=max_image_pixels, params=params)
        del data  # the upload's bytes: not needed once decoded (a large PNG is tens of MB)
    height, width = image.pixels.shape[:2]
    tiles = tile_grid(width, height, params.tile_size, params.tile_overlap) if params.tile_size else []
    tiled = len(tiles) > 1  # an image that fits one tile runs as without tiling
    if tiled:
        job = TiledJob(
            request.job_id,
            segmenter=segmenter,
            params=params,
            clock=clock,
            record=record,
            remaining_ms=remaining_ms,
            tile_cost=tile_cost,
        )
        prediction = job.segment(image.pixels, tiles)
    else:
        frame_params = params.model_copy(update={"max_detections": FRAME_DETECTIONS})
        with clock.stage("inference"):
            outputs = segmenter.infer_many([image.pixels], frame_params)
        with clock.stage("postprocess"):
            (prediction,) = segmenter.postprocess(outputs, frame_params, masks_for=params.max_detections)
    with clock.stage("postprocess"):
        prediction, count_before_cap = cap(prediction, params.max_detections)
        detections = to_detections(
            prediction,
            scale=image.scale,
            size=(image.info.width, image.info.height),
            names=segmenter.names,
        )
        summary = summarize(detections, count_before_cap)

    jpeg = None
    if params.annotate:
        with clock.stage("annotate"):
            canvas = annotate(image.pixels, prediction, segmenter.names)
        with clock.stage("encode"):
            jpeg = encode_jpeg(canvas)
    ensure_running(record, request.job_id, "before writing its results")
    annotated = annotated_key(request.job_id) if jpeg is not None else None
    if annotated is not None and jpeg is not None:
        with clock.stage("upload"):
            store.put_bytes(results_bucket, annotated, jpeg, "image/jpeg")
    output_keys = None
    if params.outputs:  # coco.json, masks.png: timed as encode and upload
        with clock.stage("encode"):
            extra = render_outputs(
                params.outputs,
                request.job_id,
                image=image.info,
                detections=detections,
                classes=segmenter.names,
            )
        with clock.stage("upload"):
            for file in extra:
                store.put_bytes(results_bucket, file.key, file.body, file.content_type)
        output_keys = {file.kind: file.key for file in extra}

    timings = clock.timings()
    document = ResultDocument(
        job_id=request.job_id,
        image=image.info,
        model=segmenter.info,
        params=params,
        detections=detections,
        summary=summary,
        timings=timings,
        tiles=len(tiles) if tiled else None,
        created_at=iso(utc_now()),
    )
    body = json.dumps(document.to_json_dict(), separators=(",", ":")).encode()
    store.put_bytes(results_bucket, result_key(request.job_id), body, "application/json")
    return SegmentOutcome(
        result_key=result_key(request.job_id),
        annotated_key=annotated,
        summary=summary,
        timings=timings,
        image=image.info,
        model=segmenter.info,
        tiles=document.tiles,
        output_keys=output_keys,
    )


def ensure_running(
    record: JobRecord | None, job_id: str, when: str, progress: JobProgress | None = None
) -> None:
    """JobCanceled if the job is no longer RUNNING (its owner canceled it); writes `progress`."""
    if record is not None and not record.still_running(job_id, progress):
        raise JobCanceled(f"the job was canceled; the segment function stopped {when} and wrote no results")


class TiledJob:
    """The inference of a tiled job: the whole-image pass, then the tiles in batches, within
    the function's time budget, reporting progress and stopping at a cancel between batches."""

    def __init__(
        self,
        job_id: str,
        *,
        segmenter: Segmenter,
        params: JobParams,
        clock: StageClock,
        record: JobRecord | None,
        remaining_ms: RemainingMs | None,
        tile_cost: TileCost,
    ) -> None:
        self.job_id = job_id
        self.segmenter = segmenter
        self.params = params.model_copy(update={"max_detections": FRAME_DETECTIONS})
        self.masks_for = params.max_detections
        self.clock = clock
        self.record = record
        self.remaining_ms = remaining_ms
        self.tile_cost = tile_cost

    def _remaining(self) -> float | None:
        return float(self.remaining_ms()) if self.remaining_ms is not None else None

    def _infer(self, frames: list[np.ndarray]) -> list[Prediction]:
        with self.clock.stage("inference"):
            outputs = self.segmenter.infer_many(frames, self.params)
        with self.clock.stage("postprocess"):
            return self.segmenter.postprocess(outputs, self.params, masks_for=self.masks_for)

    def whole(self, pixels: np.ndarray) -> Prediction:
        """The whole-image pass: the frame as an untiled job of it sees it (the working
        size, `decode.working_size`, then the model's letterbox), so its detections are the
        untiled job's; returned in frame pixels."""
        height, width = pixels.shape[:2]
        small_size = working_size(width, height, self.params.model_copy(update={"tile_size": None}))
        with self.clock.stage("inference"):
            small = cv2.resize(pixels, small_size, interpolation=cv2.INTER_AREA)
        (prediction,) = self._infer([small])
        return prediction.scaled(width / small_size[0], height / small_size[1])

    def segment(self, pixels: np.ndarray, tiles: list[Tile]) -> Prediction:
        imgsz = self.params.imgsz or self.segmenter.info.imgsz or 0
        total = len(tiles)
        budget = TimeBudget(frames=total + 1, imgsz=imgsz, frame_pixels=pixels.shape[0] * pixels.shape[1])
        budget.check_start(self._remaining(), self.tile_cost.rate(budget.imgsz))
        ensure_running(
            self.record, self.job_id, "before its first tile", JobProgress(tiles_done=0, tiles_total=total)
        )
        started = time.perf_counter()
        whole = self.whole(pixels)
        predictions: list[Prediction] = []
        batch = self.segmenter.batch_size(self.params)
        for start in range(0, total, batch):
            predictions += self._infer([tile.crop(pixels) for tile in tiles[start : start + batch]])
            done = len(predictions)
            progress = JobProgress(tiles_done=done, tiles_total=total)
            ensure_running(self.record, self.job_id, f"after {done} of {total} tiles", progress)
            budget.check_progress(done + 1, (time.perf_counter() - started) * 1000, self._remaining())
        self.tile_cost.record(total + 1, (time.perf_counter() - started) * 1000, imgsz)
        with self.clock.stage("postprocess"):
            return merge_tiles(
                tiles, predictions, iou=self.params.iou, whole=whole, agnostic=bool(self.params.agnostic_nms)
            )

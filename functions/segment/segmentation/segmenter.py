"""Model code: decode, infer, postprocess, annotate, encode. Knows nothing of Lambda or S3.

Coordinates: the model sees a (possibly reduced) decoded frame; every coordinate that
leaves this module (`Detection`) is in pixels of the original image after its EXIF
orientation is applied, which is the image as a viewer shows it.
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segjob_core.errors import ImageTooLarge, InvalidImage, InvalidParams, ModelUnavailable, UnsupportedFormat
from segjob_core.models import Detection, ImageInfo, JobParams, ModelInfo, ResultSummary

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

# Pillow format name -> the name we report. MPO is how Pillow names the JPEGs that many
# cameras and phones write (a JPEG with extra preview frames).
ACCEPTED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
JPEG_QUALITY = 85
# Ultralytics' own default, for a checkpoint that records no training size (built from a yaml).
DEFAULT_IMGSZ = 640
# A large JPEG is decoded at 1/2, 1/4 or 1/8 scale while its longer side stays at least
# max(2 * imgsz, this): plenty for the model and for a readable annotated image.
MIN_DECODED_SIDE = 1280
# Frames per forward pass when a job infers several (tiles): 36 tiles at 320 px took 1.17 s in
# batches of 8 against 1.77 s with one call per tile on 2 vCPUs; larger batches gained nothing.
# A batch holds at most the pixels of 8 frames of 640 px, so a large imgsz stays in memory.
MAX_BATCH = 8
BATCH_PIXELS = MAX_BATCH * 640 * 640
EXIF_ORIENTATION = 0x0112
BACKEND = "torch"
_WARMUP_SHAPE = (480, 640, 3)
# Pillow's own Image.open. Importing Ultralytics (Segmenter.load does) replaces Image.open
# with a wrapper that meets bytes Pillow cannot identify by importing pi_heif, which is not
# installed: ModuleNotFoundError instead of UnidentifiedImageError (InvalidImage). The
# wrapper keeps the original, which we take if Ultralytics was imported first.
_PIL_OPEN = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", Image.open)


def decoded_side_for(params: JobParams) -> int | None:
    """Longer side a JPEG may be reduced to for these params; None: decode at full size."""
    if params.retina_masks:  # full-resolution masks were asked for: keep every pixel
        return None
    return max(2 * (params.imgsz or DEFAULT_IMGSZ), MIN_DECODED_SIDE)


# decode --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # BGR uint8 (h, w, 3), possibly reduced from the original
    info: ImageInfo  # size of the original image (EXIF orientation applied) and its format

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) factors from decoded-frame pixels to original-image pixels."""
        h, w = self.pixels.shape[:2]
        return self.info.width / w, self.info.height / h


def decode_image(
    data: bytes, *, max_pixels: int, reduce_to: int | None = None, full_above: int | None = None
) -> DecodedImage:
    """Decode an upload into a BGR frame, refusing what is not an accepted, sane image.

    Not an image at all, corrupt or truncated -> InvalidImage; a real image in a format we
    do not accept (GIF, ICO, ...) -> UnsupportedFormat; more than `max_pixels` pixels ->
    ImageTooLarge, decided from the header before any pixel is decoded. A JPEG whose longer
    side exceeds twice `reduce_to` is decoded reduced (DCT scaling, much faster), unless
    that side exceeds `full_above` (a job's tile size: tiles need every pixel).
    """
    if not data:
        raise InvalidImage("the upload is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check below
            image: Image.Image = _PIL_OPEN(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image exceeds {max_pixels} pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("the upload is not an image (or its header is corrupt)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"the image header cannot be read: {exc}") from exc

    fmt = ACCEPTED_FORMATS.get(image.format or "")
    if fmt is None:
        raise UnsupportedFormat(
            f"{image.format} images are not accepted; use one of JPEG, PNG, WebP, BMP, TIFF"
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} pixels, the limit is {max_pixels}")

    try:
        orientation = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a malformed EXIF block must not fail an otherwise fine image
        orientation = 1
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: the viewer sees it transposed
        width, height = height, width

    try:
        tiled = full_above is not None and max(image.size) > full_above
        if fmt == "jpeg" and reduce_to is not None and max(image.size) >= 2 * reduce_to and not tiled:
            factor = reduce_to / max(image.size)
            image.draft("RGB", (max(1, round(image.width * factor)), max(1, round(image.height * factor))))
        image.load()
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
        pixels = _to_bgr(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow raises OSError("image file is truncated ...") for cut-off data.
        raise InvalidImage(f"the image data is corrupt or truncated: {exc}") from exc
    return DecodedImage(pixels=pixels, info=ImageInfo(width=width, height=height, format=fmt))


def _to_bgr(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):  # 16-bit or float TIFF/PNG: scale to 8 bits
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") else max(float(values.max()), 1.0)
        grey = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, as most viewers show them, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)


# model ---------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _trained_imgsz(value: Any) -> int:
    """The training image size a checkpoint records (an int, or [h, w]); DEFAULT_IMGSZ if none."""
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, int) and v > 0 for v in value):
        return max(value)
    return DEFAULT_IMGSZ


@dataclass(frozen=True)
class Prediction:
    """Raw detections in decoded-frame pixels (what `annotate` draws)."""

    boxes: np.ndarray  # (n, 4) float32 x1, y1, x2, y2
    confidences: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int64
    polygons: list[np.ndarray]  # n arrays of (k, 2) float32; k may be 0 for an empty mask

    def __len__(self) -> int:
        return len(self.class_ids)

    @classmethod
    def empty(cls) -> Prediction:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            confidences=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int64),
            polygons=[],
        )


class Segmenter:
    """An Ultralytics YOLO segmentation model, loaded once and ready for inference."""

    def __init__(self, model: Any, info: ModelInfo, threads: int, load_ms: float) -> None:
        self._model = model
        self.info = info
        self.threads = threads
        self.load_ms = load_ms
        # One inference at a time: the Ultralytics predictor keeps per-call state, and the
        # local runtime may call a handler from several threads.
        self._lock = threading.Lock()

    @property
    def names(self) -> dict[int, str]:
        return self.info.classes

    @classmethod
    def load(
        cls, path: Path, *, threads: int, expected_sha256: str | None = None, warmup: bool = True
    ) -> Segmenter:
        """Load, verify, fuse and warm up the weights at `path` (a YOLO `-seg` .pt file)."""
        started = time.perf_counter()
        if not path.is_file():
            raise ModelUnavailable(f"model file {path} does not exist")
        sha256 = file_sha256(path)
        if expected_sha256 and sha256 != expected_sha256.lower():
            raise ModelUnavailable(
                f"model file {path} does not match the expected sha256: "
                f"it has {sha256}, expected {expected_sha256.lower()}"
            )

        import torch  # noqa: PLC0415 - heavy imports, paid once at load time
        from ultralytics import YOLO  # noqa: PLC0415

        try:
            model: Any = YOLO(str(path))
            if model.task != "segment":
                raise ModelUnavailable(f"{path.name} is a {model.task} model, not a segmentation model")
            model.fuse(verbose=False)
            model.model.eval()
            names = {int(k): str(v) for k, v in model.names.items()}
            trained_imgsz = _trained_imgsz(model.overrides.get("imgsz"))
        except ModelUnavailable:
            raise
        except Exception as exc:  # torch/ultralytics raise many types for a bad checkpoint
            raise ModelUnavailable(f"cannot load model {path.name}: {type(exc).__name__}: {exc}") from exc

        info = ModelInfo(
            name=path.stem, sha256=sha256, backend=BACKEND, task="segment", classes=names, imgsz=trained_imgsz
        )
        segmenter = cls(model, info, threads, load_ms=0.0)
        if warmup:  # the first call builds the predictor: pay that at init, not in a job
            segmenter.infer(np.zeros(_WARMUP_SHAPE, dtype=np.uint8), JobParams())
        # After the predictor exists: its setup sets 1 thread on 2 cores (cpu_count - 1).
        torch.set_num_threads(threads)
        segmenter.load_ms = (time.perf_counter() - started) * 1000
        return segmenter

    def check_params(self, params: JobParams) -> None:
        unknown = sorted(set(params.classes or ()) - set(self.names))
        if unknown:
            raise InvalidParams(f"classes {unknown} are not classes of model {self.info.name}: {self.names}")

    def infer(self, pixels: np.ndarray, params: JobParams) -> Results:
        """Run the model on a BGR frame; coordinates of the result are in that frame's pixels."""
        return self.infer_many([pixels], params)[0]

    def batch_size(self, params: JobParams) -> int:
        """Frames per forward pass of `infer_many`."""
        imgsz = params.imgsz or self.info.imgsz
        return max(1, min(MAX_BATCH, BATCH_PIXELS // imgsz**2))

    def infer_many(self, frames: Sequence[np.ndarray], params: JobParams) -> list[Results]:
        """Run the model on BGR frames (e.g. the tiles of an image) in one forward pass; one
        result per frame, in order, each in its own frame's pixels. Callers pass at most
        `batch_size(params)` frames at a time (the results hold every frame's masks)."""
        import torch  # noqa: PLC0415 - already imported by load()

        self.check_params(params)
        with self._lock, torch.inference_mode():
            results: list[Results] = self._model.predict(
                source=list(frames),
                imgsz=params.imgsz or self.info.imgsz,  # always explicit, never the checkpoint's
                conf=params.conf,
                iou=params.iou,
                classes=params.classes,
                max_det=params.max_detections,
                retina_masks=params.retina_masks,
                device="cpu",  # same value every call, or Ultralytics rebuilds the predictor
                half=False,
                save=False,
                verbose=False,
            )
        return results


# postprocess ---------------------------------------------------------------------------


def extract(result: Results) -> Prediction:
    """Arrays out of an Ultralytics result; polygons from `masks.xy` (already in frame pixels)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Prediction.empty()
    xyxy = _as_numpy(boxes.xyxy).astype(np.float32)
    polygons = (
        [np.asarray(p, dtype=np.float32).reshape(-1, 2) for p in result.masks.xy]
        if result.masks is not None
        else [np.zeros((0, 2), np.float32) for _ in range(len(xyxy))]
    )
    return Prediction(
        boxes=xyxy,
        confidences=_as_numpy(boxes.conf).astype(np.float32),
        class_ids=_as_numpy(boxes.cls).astype(np.int64),
        polygons=polygons,
    )


def _as_numpy(values: Any) -> np.ndarray:
    return values.cpu().numpy() if hasattr(values, "cpu") else np.asarray(values)


def polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a closed polygon given as (k, 2) points; 0 for fewer than 3."""
    if len(points) < 3:
        return 0.0
    x = points[:, 0].astype(np.float64)
    y = points[:, 1].astype(np.float64)
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def to_detections(
    prediction: Prediction, *, scale: tuple[float, float], size: tuple[int, int], names: dict[int, str]
) -> list[Detection]:
    """Detections in original-image pixels: frame coordinates times `scale`, clipped to `size` (w, h)."""
    sx, sy = scale
    width, height = size
    factor = np.array([sx, sy], dtype=np.float64)
    limit = np.array([width, height], dtype=np.float64)
    detections = []
    for box, confidence, class_id, frame_polygon in zip(
        prediction.boxes, prediction.confidences, prediction.class_ids, prediction.polygons, strict=True
    ):
        corners = np.clip(box.astype(np.float64).reshape(2, 2) * factor, 0, limit)
        polygon = np.clip(frame_polygon.astype(np.float64) * factor, 0, limit)
        detections.append(
            Detection(
                class_id=int(class_id),
                class_name=names.get(int(class_id), str(int(class_id))),
                confidence=round(float(confidence), 4),
                bbox=[round(float(v), 2) for v in corners.reshape(-1)],
                polygon=[[round(float(x), 1), round(float(y), 1)] for x, y in polygon],
                area=round(polygon_area(polygon), 1),
            )
        )
    return detections


def summarize(detections: list[Detection]) -> ResultSummary:
    by_class = Counter(d.class_name for d in detections)
    return ResultSummary(count=len(detections), by_class=dict(sorted(by_class.items())))


# annotate and encode -------------------------------------------------------------------

# BGR, distinguishable on photos; class i gets colour i modulo the palette.
PALETTE = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
)  # fmt: skip
MASK_ALPHA = 0.4


def annotate(pixels: np.ndarray, prediction: Prediction, names: dict[int, str]) -> np.ndarray:
    """Boxes, labels and semi-transparent masks drawn on a copy of the frame.

    Masks are blended only inside each box (Results.plot() blends whole-image masks, ~40 ms
    for a few detections) and labels use OpenCV's built-in font (plot() may download one).
    """
    canvas = pixels.copy()
    height, width = canvas.shape[:2]
    line = max(1, round((height + width) / 2 * 0.003))
    font_scale = line / 3
    for box, confidence, class_id, polygon in zip(
        prediction.boxes, prediction.confidences, prediction.class_ids, prediction.polygons, strict=True
    ):
        colour = PALETTE[int(class_id) % len(PALETTE)]
        x1, y1 = (max(0, int(np.floor(v))) for v in box[:2])
        x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
        if x2 <= x1 or y2 <= y1:
            continue
        if len(polygon) >= 3:
            region = canvas[y1:y2, x1:x2]
            mask = np.zeros(region.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(polygon - (x1, y1)).astype(np.int32)], 255)
            tinted = cv2.addWeighted(region, 1 - MASK_ALPHA, np.full_like(region, colour), MASK_ALPHA, 0)
            np.copyto(region, tinted, where=mask[:, :, None].astype(bool))
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, line, cv2.LINE_AA)
        label = f"{names.get(int(class_id), str(int(class_id)))} {float(confidence):.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(
            label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, line - 1)
        )
        top = (
            y1 - text_h - baseline - 2 if y1 - text_h - baseline - 2 >= 0 else y1
        )  # inside the box at the top edge
        cv2.rectangle(canvas, (x1, top), (x1 + text_w + 2, top + text_h + baseline + 2), colour, cv2.FILLED)
        cv2.putText(
            canvas,
            label,
            (x1 + 1, top + text_h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            max(1, line - 1),
            cv2.LINE_AA,
        )
    return canvas


def encode_jpeg(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG, not PNG: ~4 ms instead of ~50 ms at 540x960 (DESIGN.md section 7)."""
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the annotated image as JPEG")
    return buffer.tobytes()

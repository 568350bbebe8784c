"""Decode stage: an upload's bytes -> a BGR frame, refusing what is not an accepted, sane image.

Coordinates: the model sees a (possibly reduced) decoded frame; every coordinate that
leaves the segment code (`Detection`) is in pixels of the original image after its EXIF
orientation is applied, which is the image as a viewer shows it. `DecodedImage.scale`
maps one to the other.
"""

from __future__ import annotations

import io
import sys
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segjob_core.errors import ImageTooLarge, InvalidImage, UnsupportedFormat
from segjob_core.models import ImageInfo, JobParams

# Pillow format name -> the name we report. MPO is how Pillow names the JPEGs that many
# cameras and phones write (a JPEG with extra preview frames).
ACCEPTED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
# A job's imgsz when neither the job nor the model says (Ultralytics' own default).
DEFAULT_IMGSZ = 640
# The working frame (what the model, the tiles and annotated.jpg see) of an untiled job has
# a longer side of at most max(2 * imgsz, this): plenty for the model and a readable image.
MIN_WORKING_SIDE = 1280
EXIF_ORIENTATION = 0x0112
ALPHA_BAND_ROWS = 256  # rows blended at a time: small float temporaries
# Pillow's own Image.open. Importing Ultralytics (the parity tests and the benchmark do, in
# the same process) replaces Image.open with a wrapper that meets bytes Pillow cannot
# identify by importing pi_heif: ModuleNotFoundError instead of UnidentifiedImageError
# (InvalidImage). The wrapper keeps the original, which we take if Ultralytics came first.
_PIL_OPEN = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", Image.open)


def working_size(width: int, height: int, params: JobParams) -> tuple[int, int]:
    """The one size rule: the (w, h) of the frame a job works on, for an image of (w, h)
    (as viewed, EXIF orientation applied), whatever its format.

    Full size when the job is tiled (tiles need every pixel) or asks for retina masks;
    otherwise scaled down, aspect kept, so its longer side is at most max(2 * imgsz, 1280).
    annotated.jpg has this size; detections are always in original pixels."""
    if params.retina_masks or params.tile_size is not None:
        return width, height
    side = max(2 * (params.imgsz or DEFAULT_IMGSZ), MIN_WORKING_SIDE)
    longest = max(width, height)
    if longest <= side:
        return width, height
    factor = side / longest
    return max(1, round(width * factor)), max(1, round(height * factor))


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # BGR uint8 (h, w, 3), possibly reduced from the original
    info: ImageInfo  # size of the original image (EXIF orientation applied) and its format

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) factors from decoded-frame pixels to original-image pixels."""
        h, w = self.pixels.shape[:2]
        return self.info.width / w, self.info.height / h


def decode_image(data: bytes, *, max_pixels: int, params: JobParams | None = None) -> DecodedImage:
    """Decode an upload into a BGR frame of `working_size` (full size without `params`),
    refusing what is not an accepted, sane image.

    Not an image at all, corrupt or truncated -> InvalidImage; a real image in a format we
    do not accept (GIF, ICO, ...) -> UnsupportedFormat; more than `max_pixels` pixels ->
    ImageTooLarge, decided from the header before any pixel is decoded. Every format ends
    at the same working size by the same resampling (`cv2.INTER_AREA`): a JPEG may first be
    decoded reduced (DCT scaling, much faster) but never below that size, so the same
    pixels give the same frame, and the same detections, in any container.
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

    target = working_size(width, height, params) if params is not None else (width, height)
    try:
        if fmt == "jpeg" and target != (width, height):
            # draft picks the smallest DCT scale (1/2, 1/4, 1/8) still at least this size.
            stored = target[::-1] if orientation in (5, 6, 7, 8) else target
            image.draft("RGB", stored)
        image.load()
        if orientation != 1:
            transposed = ImageOps.exif_transpose(image)
            image.close()
            image = transposed
        pixels = _to_bgr(image)
        if (pixels.shape[1], pixels.shape[0]) != target:
            pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow raises OSError("image file is truncated ...") for cut-off data.
        raise InvalidImage(f"the image data is corrupt or truncated: {exc}") from exc
    return DecodedImage(pixels=pixels, info=ImageInfo(width=width, height=height, format=fmt))


def _to_bgr(image: Image.Image) -> np.ndarray:
    """The image as a BGR uint8 array; `image` is closed as soon as its pixels are copied out.

    Memory matters here (a 50 MP frame is 150 MB at 8 bits and 3 channels): at most one
    array the size of the source and one of the result exist at a time, and the alpha blend
    runs in bands of rows, so a job's peak stays a few frames, whatever the mode."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):  # 16-bit or float TIFF/PNG: scale to 8 bits
        values = _pixels_of(image)
        top = 65535.0 if mode.startswith("I;16") else max(float(values.max()), 1.0)
        grey = cv2.convertScaleAbs(values, alpha=255.0 / top)
        del values
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, as most viewers show them, not black.
        if mode != "RGBA":
            converted = image.convert("RGBA")
            image.close()
            image = converted
        rgba = _pixels_of(image)
        bgr = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR)
        for top in range(0, len(bgr), ALPHA_BAND_ROWS):
            band = slice(top, top + ALPHA_BAND_ROWS)
            alpha = rgba[band, :, 3:4].astype(np.float32) * (1 / 255)
            blended = bgr[band] * alpha + 255.0 * (1.0 - alpha)
            bgr[band] = np.rint(blended).astype(np.uint8)
        return bgr
    if mode != "RGB":
        converted = image.convert("RGB")
        image.close()
        image = converted
    return cv2.cvtColor(_pixels_of(image), cv2.COLOR_RGB2BGR)


def _pixels_of(image: Image.Image) -> np.ndarray:
    """A (read-only) array of the image's pixels; the image itself is closed (its memory freed)."""
    pixels = np.asarray(image)
    image.close()
    return pixels

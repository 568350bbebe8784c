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
# A large JPEG is decoded at 1/2, 1/4 or 1/8 scale while its longer side stays at least
# max(2 * imgsz, this): plenty for the model and for a readable annotated image.
MIN_DECODED_SIDE = 1280
EXIF_ORIENTATION = 0x0112
ALPHA_BAND_ROWS = 256  # rows blended at a time: small float temporaries
# Pillow's own Image.open. Importing Ultralytics (the parity tests and the benchmark do, in
# the same process) replaces Image.open with a wrapper that meets bytes Pillow cannot
# identify by importing pi_heif: ModuleNotFoundError instead of UnidentifiedImageError
# (InvalidImage). The wrapper keeps the original, which we take if Ultralytics came first.
_PIL_OPEN = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", Image.open)


def decoded_side_for(params: JobParams) -> int | None:
    """Longer side a JPEG may be reduced to for these params; None: decode at full size."""
    if params.retina_masks:  # full-resolution masks were asked for: keep every pixel
        return None
    return max(2 * (params.imgsz or DEFAULT_IMGSZ), MIN_DECODED_SIDE)


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
            transposed = ImageOps.exif_transpose(image)
            image.close()
            image = transposed
        pixels = _to_bgr(image)
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

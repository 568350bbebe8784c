"""decode_image: orientation, limits from the header, and the InvalidImage/UnsupportedFormat split."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from segjob_core.errors import ImageTooLarge, InvalidImage, UnsupportedFormat
from segjob_core.models import JobParams
from segmentation.decode import decode_image, working_size

LIMIT = 50_000_000


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries a single compressed row: what a
    decompression bomb looks like to a decoder before it allocates."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = zlib.compress(b"\x00" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def test_exif_orientation_is_applied(make_jpeg: Callable[..., bytes]) -> None:
    # GIVEN a 40x20 JPEG whose EXIF says "rotate 90 degrees clockwise to view" (6)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = make_jpeg(40, 20, exif=exif.tobytes())

    # WHEN it is decoded
    image = decode_image(data, max_pixels=LIMIT)

    # THEN the frame and the reported size are the viewed (portrait) image
    assert image.pixels.shape == (40, 20, 3)
    assert (image.info.width, image.info.height, image.info.format) == (20, 40, "jpeg")
    assert image.scale == (1.0, 1.0)


def test_pixels_are_bgr() -> None:
    data = encoded(Image.new("RGB", (8, 8), (255, 0, 0)), "PNG")

    image = decode_image(data, max_pixels=LIMIT)

    assert image.pixels.dtype == np.uint8
    assert tuple(image.pixels[0, 0]) == (0, 0, 255)


@pytest.mark.parametrize(("width", "height"), [(10_000, 6_000), (20_000, 20_000)])
def test_too_many_pixels_is_refused_from_the_header(
    width: int, height: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = png_header_only(width, height)
    assert len(data) < 100_000  # tiny file, huge image

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(Image.core, "new", no_decoding)  # no pixel buffer may be allocated

    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(data, max_pixels=LIMIT)


def test_limit_is_the_configured_one(make_jpeg: Callable[..., bytes]) -> None:
    data = make_jpeg(100, 50)

    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=4_999)
    assert decode_image(data, max_pixels=5_000).info.width == 100


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is text and not an image\n", bytes(range(256)) * 8, b"\xff\xd8\xff\xe0garbage"],
    ids=["empty", "text", "binary-noise", "jpeg-magic-then-garbage"],
)
def test_not_an_image_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        decode_image(data, max_pixels=LIMIT)


def test_not_an_image_is_invalid_once_ultralytics_patched_pillow() -> None:
    # As in Lambda: the model is loaded (Ultralytics imported) before any upload is decoded.
    import ultralytics.utils.patches  # noqa: F401 - replaces PIL.Image.open

    with pytest.raises(InvalidImage):
        decode_image(b"hello, this is text and not an image\n", max_pixels=LIMIT)


def test_truncated_jpeg_is_invalid(bus_jpeg: bytes) -> None:
    with pytest.raises(InvalidImage, match="truncated"):
        decode_image(bus_jpeg[: len(bus_jpeg) // 2], max_pixels=LIMIT)


def test_truncated_png_is_invalid() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), "PNG")

    with pytest.raises(InvalidImage):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)


@pytest.mark.parametrize("fmt", ["GIF", "ICO", "PPM", "TGA"])
def test_real_image_in_other_format_is_unsupported(fmt: str) -> None:
    data = encoded(Image.new("RGB", (16, 16), (10, 200, 30)), fmt)

    with pytest.raises(UnsupportedFormat, match=fmt):
        decode_image(data, max_pixels=LIMIT)


@pytest.mark.parametrize(
    ("fmt", "mode", "reported"),
    [
        ("PNG", "RGBA", "png"),
        ("WEBP", "RGB", "webp"),
        ("BMP", "RGB", "bmp"),
        ("TIFF", "I;16", "tiff"),
        ("PNG", "P", "png"),
    ],
)
def test_accepted_formats_decode(fmt: str, mode: str, reported: str) -> None:
    data = encoded(Image.new(mode, (30, 20)), fmt)

    image = decode_image(data, max_pixels=LIMIT)

    assert image.pixels.shape == (20, 30, 3)
    assert image.info.format == reported


def test_transparent_pixels_become_white() -> None:
    data = encoded(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG")

    assert decode_image(data, max_pixels=LIMIT).pixels.min() == 255


@pytest.mark.parametrize(
    ("size", "params", "expected"),
    [
        ((4000, 3000), JobParams(imgsz=320), (1280, 960)),  # longer side max(2 * 320, 1280)
        ((3000, 4000), JobParams(imgsz=1024), (1536, 2048)),  # max(2 * 1024, 1280)
        ((1280, 700), JobParams(imgsz=320), (1280, 700)),  # small enough: untouched
        ((4000, 3000), JobParams(imgsz=320, tile_size=512), (4000, 3000)),  # tiles need every pixel
        ((4000, 3000), JobParams(imgsz=320, tile_size=4096), (4000, 3000)),  # even one tile: one rule
        ((4000, 3000), JobParams(imgsz=320, retina_masks=True), (4000, 3000)),
        ((5000, 3), JobParams(imgsz=320), (1280, 1)),  # never below one pixel
    ],
)
def test_working_size_is_one_rule(
    size: tuple[int, int], params: JobParams, expected: tuple[int, int]
) -> None:
    assert working_size(*size, params) == expected


def test_large_jpeg_is_decoded_at_the_working_size_and_reports_its_original_size(
    make_jpeg: Callable[..., bytes],
) -> None:
    # GIVEN a 4000x3000 JPEG and a model input that needs far fewer pixels
    data = make_jpeg(4000, 3000)

    # WHEN decoded for a job at imgsz 320 (working side 1280)
    image = decode_image(data, max_pixels=LIMIT, params=JobParams(imgsz=320))

    # THEN the frame has the working size, and the scale maps back to the original
    assert image.pixels.shape == (960, 1280, 3)
    assert (image.info.width, image.info.height) == (4000, 3000)
    assert image.scale == (3.125, 3.125)


def test_reduced_decode_with_rotation_keeps_viewed_orientation(make_jpeg: Callable[..., bytes]) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = make_jpeg(4000, 2000, exif=exif.tobytes())

    image = decode_image(data, max_pixels=LIMIT, params=JobParams(imgsz=320))

    assert image.pixels.shape == (1280, 640, 3)  # transposed, longer side 1280
    assert (image.info.width, image.info.height) == (2000, 4000)
    assert image.scale == (3.125, 3.125)


def test_small_jpeg_is_never_reduced(bus_jpeg: bytes) -> None:
    image = decode_image(bus_jpeg, max_pixels=LIMIT, params=JobParams(imgsz=320))

    assert image.pixels.shape == (1080, 810, 3)
    assert image.scale == (1.0, 1.0)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP", "BMP"])
def test_every_format_ends_at_the_same_working_frame(fmt: str) -> None:
    # GIVEN the same smooth pixels (a gradient: JPEG at quality 100 keeps it) in each container
    yy, xx = np.mgrid[0:1500, 0:2000]
    rgb = np.stack([xx * 255 // 2000, yy * 255 // 1500, (xx + yy) * 255 // 3500], axis=-1).astype(np.uint8)
    reference = decode_image(
        encoded(Image.fromarray(rgb), "PNG"), max_pixels=LIMIT, params=JobParams(imgsz=320)
    )
    save_args = {"quality": 100} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}

    # WHEN decoded for the same job
    image = decode_image(
        encoded(Image.fromarray(rgb), fmt, **save_args), max_pixels=LIMIT, params=JobParams(imgsz=320)
    )

    # THEN the working frame has the same size and (near enough) the same pixels
    assert image.pixels.shape == reference.pixels.shape == (960, 1280, 3)
    difference = np.abs(image.pixels.astype(np.int16) - reference.pixels.astype(np.int16))
    assert difference.mean() < 1.0 and difference.max() <= 8

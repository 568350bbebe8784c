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
from segmentation.decode import decode_image

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


def test_large_jpeg_is_decoded_reduced_and_reports_its_original_size(make_jpeg: Callable[..., bytes]) -> None:
    # GIVEN a 4000x3000 JPEG and a model input that needs far fewer pixels
    data = make_jpeg(4000, 3000)

    # WHEN decoded for a longer side of at least 1280
    image = decode_image(data, max_pixels=LIMIT, reduce_to=1280)

    # THEN it is decoded at 1/2 (DCT scaling), and the scale maps back to the original
    assert image.pixels.shape == (1500, 2000, 3)
    assert (image.info.width, image.info.height) == (4000, 3000)
    assert image.scale == (2.0, 2.0)


def test_reduced_decode_with_rotation_keeps_viewed_orientation(make_jpeg: Callable[..., bytes]) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = make_jpeg(4000, 2000, exif=exif.tobytes())

    image = decode_image(data, max_pixels=LIMIT, reduce_to=900)

    assert image.pixels.shape == (1000, 500, 3)  # 1/4 scale, transposed
    assert (image.info.width, image.info.height) == (2000, 4000)
    assert image.scale == (4.0, 4.0)


def test_small_jpeg_is_never_reduced(bus_jpeg: bytes) -> None:
    image = decode_image(bus_jpeg, max_pixels=LIMIT, reduce_to=640)

    assert image.pixels.shape == (1080, 810, 3)
    assert image.scale == (1.0, 1.0)


@pytest.mark.parametrize(("full_above", "shape"), [(2048, (3000, 4000, 3)), (4000, (1500, 2000, 3))])
def test_an_image_larger_than_its_tiles_is_decoded_at_full_size(
    make_jpeg: Callable[..., bytes], full_above: int, shape: tuple[int, int, int]
) -> None:
    # GIVEN a 4000x3000 JPEG that would be decoded at 1/2 for a longer side of 1280
    data = make_jpeg(4000, 3000)

    # WHEN its job tiles it (2048 px tiles), or would not (4000 px: it fits one tile)
    image = decode_image(data, max_pixels=LIMIT, reduce_to=1280, full_above=full_above)

    # THEN tiles get every pixel; an image that fits one tile is reduced as before
    assert image.pixels.shape == shape
    assert (image.info.width, image.info.height) == (4000, 3000)

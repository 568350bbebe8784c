"""A second held-out set, drawn by another generator: shapes as PIL's ImageDraw draws them
(anti-aliased: drawn at 4x and scaled down), on backgrounds that PIL makes (embossed
noise, radial gradients, blurred Gaussian noise, flat colours) or on the held-out
photos, with outlines and translucent fills that training/synth.py never draws.

Users' shapes come from other generators than the one the model was trained on. The demo
model's held-out set (``synth.make_heldout_image``) has backgrounds that training never
sees, but its shapes are synth.py's own polygons; this set measures how much of the
figures survive a change of the drawing itself. It is a check only: never training data,
and the training recipe is not tuned to it (its figures are on the card; ``make train``
does not decide by them).

    python training/othergen.py --out build/othergen     # writes the set (evaluate.py does too)
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from synth import (
    CLASS_NAMES,
    HELDOUT_PHOTOS,
    _visible_instances,
    jpeg_round_trip,
    load_photo,
    write_data_yaml,
    write_example,
)

OTHER_IMAGES = 200
OTHER_SEED = 31
OTHER_VERSION = 1  # change with anything that changes the images
SIDE = (320, 801)
SUPERSAMPLE = 4
NEGATIVE_SHARE = 0.1
# Not the Mandelbrot set that PIL also draws: its bulbs are discs (the second one exactly a
# circle), circles to this model as skimage's coins are; on the first trial they drew 79
# "false positives" on 38 images, most of them circles on the bulbs.
BACKGROUNDS = ("emboss", "radial", "noise", "flat", "photo")
SPLIT = "heldout"  # the data.yaml's test split, as synth's held-out set


def _rng(index: int) -> np.random.Generator:
    return np.random.default_rng([OTHER_SEED, index])


def _draw_background_choice(rng: np.random.Generator) -> tuple[int, int, str, str]:
    """The first draws of every image: its size and background (kind, name)."""
    h, w = int(rng.integers(*SIDE)), int(rng.integers(*SIDE))
    name = str(rng.choice(BACKGROUNDS))
    if name == "photo":
        return h, w, "photo", str(rng.choice(HELDOUT_PHOTOS))
    return h, w, "texture", name


def background_of(index: int) -> tuple[str, str]:
    """("photo" or "texture", which one) of image ``index``, by the draws that make it."""
    _, _, kind, name = _draw_background_choice(_rng(index))
    return kind, name


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return r, g, b


def _noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> Image.Image:
    """Grey Gaussian noise around mid-grey (as PIL's effect_noise, which is not seeded)."""
    return Image.fromarray(np.clip(128 + rng.normal(0, sigma, size=(h, w)), 0, 255).astype(np.uint8))


def _background(rng: np.random.Generator, kind: str, name: str, h: int, w: int) -> Image.Image:
    if kind == "photo":
        photo = cv2.cvtColor(load_photo(name), cv2.COLOR_BGR2RGB)
        ph, pw = photo.shape[:2]
        ch, cw = int(ph * rng.uniform(0.5, 1.0)), int(pw * rng.uniform(0.5, 1.0))
        y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
        return Image.fromarray(np.ascontiguousarray(photo[y0 : y0 + ch, x0 : x0 + cw])).resize((w, h))
    if name == "emboss":  # a relief: blurred noise, embossed
        grey = _noise(rng, h, w, float(rng.uniform(40, 100)))
        grey = grey.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 8)))).filter(ImageFilter.EMBOSS)
        grey = ImageOps.autocontrast(grey, cutoff=1)
    elif name == "radial":
        grey = Image.radial_gradient("L").resize((int(w * rng.uniform(1, 3)), int(h * rng.uniform(1, 3))))
        x0, y0 = int(rng.integers(0, grey.width - w + 1)), int(rng.integers(0, grey.height - h + 1))
        grey = grey.crop((x0, y0, x0 + w, y0 + h))
    elif name == "noise":
        grey = _noise(rng, h, w, float(rng.uniform(20, 80)))
        grey = grey.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 6))))
    else:  # flat: one colour with a little noise
        grey = _noise(rng, h, w, float(rng.uniform(2, 12)))
    return ImageOps.colorize(grey, _colour(rng), _colour(rng)).convert("RGB")


def _turned(pts: np.ndarray, rot: float) -> np.ndarray:
    c, s = math.cos(rot), math.sin(rot)
    return pts @ np.array([[c, s], [-s, c]])


def _geometry(rng: np.random.Generator, class_id: int, cx: float, cy: float, r: float) -> tuple[str, Any]:
    """How ImageDraw draws the shape, at 4x: ("ellipse"|"rounded"|"polygon", its argument)."""
    s = SUPERSAMPLE
    if class_id == 0:  # an exact circle
        return "ellipse", [s * (cx - r), s * (cy - r), s * (cx + r), s * (cy + r)]
    rot = rng.uniform(0, 2 * math.pi)
    if class_id == 1:
        if rng.random() < 0.5:  # equilateral
            t = rot + np.array([0, 2, 4]) * math.pi / 3
            pts = np.stack([np.cos(t), np.sin(t)], axis=1) * r
        else:  # isosceles or right-angled, upright or turned
            base, height = r * rng.uniform(0.9, 1.8), r * rng.uniform(1.0, 1.8)
            apex = rng.choice([0.0, 0.5])  # right-angled or isosceles
            pts = np.array(
                [[-base / 2, height / 2], [base / 2, height / 2], [-base / 2 + apex * base, -height / 2]]
            )
            pts = _turned(pts, rot)
    elif class_id == 2:
        hw, hh = r, r * rng.uniform(0.4, 1.0)
        if rng.random() < 0.3:  # axis-aligned with rounded corners
            box = [s * (cx - hw), s * (cy - hh), s * (cx + hw), s * (cy + hh)]
            return "rounded", (box, s * min(hw, hh) * rng.uniform(0.05, 0.2))
        pts = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
        if rng.random() < 0.6:
            pts = _turned(pts, rot)
    else:  # a five-pointed star, slim or fat
        t = rot + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.35, 0.6))
        pts = np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)
    return "polygon", [(float(s * (cx + x)), float(s * (cy + y))) for x, y in pts]


Ink = float | tuple[int, ...] | str | None  # a fill or outline colour, as Pillow takes it


def _draw(draw: ImageDraw.ImageDraw, geometry: tuple[str, Any], fill: Ink, outline: Ink, width: int) -> None:
    how, arg = geometry
    if how == "ellipse":
        draw.ellipse(arg, fill=fill, outline=outline, width=width)
    elif how == "rounded":
        box, radius = arg
        draw.rounded_rectangle(box, radius, fill=fill, outline=outline, width=width)
    else:
        draw.polygon(arg, fill=fill, outline=outline, width=width)


def make_other_image(index: int) -> tuple[np.ndarray, list]:
    """Image ``index`` of the set (BGR) and its shapes (synth.Instance, visible outlines)."""
    rng = _rng(index)
    h, w, kind, name = _draw_background_choice(rng)
    s = SUPERSAMPLE
    background = _background(rng, kind, name, h, w)
    small = np.asarray(background)  # to pick colours by (shapes never overlap)
    base = background.resize((w * s, h * s), Image.Resampling.BICUBIC)
    owner = np.full((h, w), -1, np.int32)
    taken = np.zeros((h, w), np.uint8)  # the drawn shapes, grown by 2 px: where no new one may go
    drawn: list[int] = []
    if rng.random() >= NEGATIVE_SHARE:
        short = min(h, w)
        count = int(rng.integers(1, 7))
        for _ in range(count * 6):
            if len(drawn) == count:
                break
            class_id = int(rng.integers(0, len(CLASS_NAMES)))
            if rng.random() < 0.1:  # one that fills much of the frame
                r = float(rng.uniform(0.3, 0.45) * short)
            else:  # log-uniform from ~12 px across to 60% of the short side
                r = float(math.exp(rng.uniform(math.log(6.0), math.log(0.3 * short))))
            if 2 * r >= short:
                continue
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            geometry = _geometry(rng, class_id, cx, cy, r)
            width = int(rng.integers(1, 6)) * s if rng.random() < 0.25 else 0
            mask4 = Image.new("L", base.size, 0)
            _draw(ImageDraw.Draw(mask4), geometry, 255, 255 if width else None, width)
            mask = np.asarray(mask4.resize((w, h), Image.Resampling.BOX)) >= 128
            # No overlap (with a pixel to spare): every shape is whole.
            if mask.sum() < 30 or np.any(taken[mask]):
                continue
            # A colour that stands out from the background under the shape.
            under = small[mask].mean(axis=0)
            for _ in range(20):
                colour = _colour(rng)
                if np.linalg.norm(np.array(colour) - under) > 90:
                    break
            alpha = int(rng.uniform(150, 220)) if rng.random() < 0.15 else 255  # translucent
            fill = Image.new("L", base.size, 0)
            _draw(ImageDraw.Draw(fill), geometry, alpha, None, 0)
            base.paste(colour, mask=fill)
            if width:
                line = Image.new("L", base.size, 0)
                _draw(ImageDraw.Draw(line), geometry, None, 255, width)
                base.paste(_colour(rng), mask=line)
            owner[mask] = len(drawn)
            taken |= np.asarray(
                cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2), np.uint8
            )
            drawn.append(class_id)
    image = cv2.cvtColor(np.asarray(base.resize((w, h), Image.Resampling.LANCZOS)), cv2.COLOR_RGB2BGR)
    return jpeg_round_trip(image, int(rng.integers(60, 96))), _visible_instances(owner, drawn, min_area=25)


def write_set(root: Path, n: int = OTHER_IMAGES) -> Path:
    """The set under ``root`` (written once: a marker records the count and version) and its
    data.yaml, whose test split it is."""
    marker = root / f"{SPLIT}.json"
    stamp = json.dumps({"version": OTHER_VERSION, "images": n})
    if not (marker.exists() and marker.read_text() == stamp):
        for folder in (root / "images" / SPLIT, root / "labels" / SPLIT):
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():
                old.unlink()
        for i in range(n):
            write_example(root, SPLIT, i, *make_other_image(i))
        marker.write_text(stamp)
    return write_data_yaml(root, train=SPLIT, val=SPLIT, test=SPLIT)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "build" / "othergen"
    )
    parser.add_argument("--images", type=int, default=OTHER_IMAGES)
    args = parser.parse_args()
    print(f"wrote {write_set(args.out, args.images)}")


if __name__ == "__main__":
    main()

"""Deterministic synthetic instance-segmentation data set of simple shapes.

Every image is a pure function of (seed, index), so the training set, the validation set
and the held-out test set (another seed) can be regenerated bit for bit anywhere.
Labels are in the Ultralytics YOLO-seg format: one line per instance,
``class x1 y1 x2 y2 ...`` with polygon coordinates normalised to [0, 1].

    python training/synth.py --demo samples  # the demo JPEGs (the simple generator)
    python training/synth.py --out build/data        # the training recipe's data set (see below)

Two generators live here:

- ``make_image``/``make_scene``: the simple one (gradient backgrounds, mid-sized shapes).
  It makes the demo images in samples/ and the tests' scenes; it is not what the demo model
  is trained on any more.
- ``make_mixed_image``: the training recipe. Shapes on real photographs (scikit-image's
  data module, a few that scikit-learn and PyWavelets ship, and OpenCV's sample photos in
  training/photos/; jittered in training) and on
  many generated texture families (real elevation maps among them), about 30% hard negatives (no shape
  at all), shapes from ~10 px to the whole frame, grayscale, low contrast, blur, noise,
  JPEG artefacts, mild occlusion, and clutter that is none of the classes (text, irregular
  blobs, open arcs; training and validation only). The photos and the texture families are split: the
  held-out generator (``make_heldout_image``, ``--heldout``) draws only on photos and
  families that training never sees, at other image sizes, so its scores say how the model
  does on backgrounds it does not know.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import cv2
import numpy as np
from import_photos import CUTOUTS as _CUTOUT_SOURCES
from import_photos import CUTOUTS_DIR, read_image
from import_photos import PHOTOS as REPO_PHOTOS
from import_photos import SOURCES as _OPENCV_SOURCES
from import_photos import WALLPAPERS as _WALLPAPER_SOURCES

CLASS_NAMES: tuple[str, ...] = ("circle", "triangle", "rectangle", "star")

# Seeds: one per split, so the held-out test set never overlaps the training images.
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3, "demo": 4}


@dataclass(frozen=True)
class Instance:
    class_id: int
    polygon: np.ndarray  # (N, 2) float32, pixels


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A gradient with low-frequency texture and pixel noise: busy but not adversarial."""
    base = rng.uniform(40, 215, size=3)
    tilt = rng.uniform(-50, 50, size=3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None]
    img = base + tilt * ramp
    # Texture: a coarse random field upsampled smoothly.
    coarse = rng.normal(0, 18, size=(max(2, h // 40), max(2, w // 40), 3)).astype(np.float32)
    img = img + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    img = img + rng.normal(0, 6, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_polygon(rng: np.random.Generator, class_id: int, cx: float, cy: float, r: float) -> np.ndarray:
    rot = rng.uniform(0, 2 * math.pi)
    if class_id == 0:  # circle (slightly elliptic)
        ax = r * rng.uniform(0.85, 1.0)
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        pts = np.stack([ax * np.cos(t), r * np.sin(t)], axis=1)
    elif class_id == 1:  # triangle, roughly equilateral
        t = np.array([0, 2 * math.pi / 3, 4 * math.pi / 3]) + rng.uniform(-0.15, 0.15, size=3)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    elif class_id == 2:  # rectangle with a random aspect ratio
        aspect = rng.uniform(0.5, 1.0)
        hw, hh = r * 0.85, r * 0.85 * aspect
        pts = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]], dtype=np.float64)
    else:  # five-pointed star
        t = np.linspace(0, 2 * math.pi, 10, endpoint=False)
        radii = np.where(np.arange(10) % 2 == 0, r, r * rng.uniform(0.4, 0.5))
        pts = np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)
    c, s = math.cos(rot), math.sin(rot)
    pts = pts @ np.array([[c, s], [-s, c]])
    return (pts + np.array([cx, cy])).astype(np.float32)


def _window(poly: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    """The polygon's bounds in an (h, w) frame, (x0, y0, x1, y1) with exclusive ends: where to
    draw it instead of the whole frame."""
    x0, y0 = max(0, int(poly[:, 0].min())), max(0, int(poly[:, 1].min()))
    return x0, y0, min(w, int(poly[:, 0].max()) + 2), min(h, int(poly[:, 1].max()) + 2)


def _contrasting_colour(rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
    for _ in range(20):
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - bg).sum() > 150:
            return colour
    return 255 - bg


def make_image(
    seed: int, index: int, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, list[Instance]]:
    """Image ``index`` of the set with ``seed``: BGR uint8 array and its visible instances."""
    rng = np.random.default_rng([seed, index])
    h, w = size if size else (int(rng.integers(288, 481)), int(rng.integers(288, 481)))
    img = _background(rng, h, w)
    owner = np.full((h, w), -1, dtype=np.int32)  # which instance each pixel shows
    drawn: list[tuple[int, np.ndarray]] = []
    count = int(rng.integers(2, 7))
    for _ in range(count * 3):  # a few attempts per instance to respect the overlap limit
        if len(drawn) == count:
            break
        class_id = int(rng.integers(0, len(CLASS_NAMES)))
        r = float(rng.uniform(0.07, 0.2) * min(h, w))
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = _shape_polygon(rng, class_id, cx, cy, r)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        covered = owner[mask.astype(bool)]
        # Keep occlusion mild: at most 30% of the new shape over earlier ones, and no
        # earlier shape may lose more than 40% of what it still shows.
        if (covered >= 0).mean() > 0.3:
            continue
        if any(
            ((owner == k) & mask.astype(bool)).sum() > 0.4 * (owner == k).sum() for k in range(len(drawn))
        ):
            continue
        bg_colour = img[mask.astype(bool)].mean(axis=0)
        colour = _contrasting_colour(rng, bg_colour)
        shade = np.clip(colour + rng.normal(0, 5, size=(h, w, 3)), 0, 255).astype(np.uint8)
        img[mask.astype(bool)] = shade[mask.astype(bool)]
        owner[mask.astype(bool)] = len(drawn)
        drawn.append((class_id, poly))
    img = cv2.GaussianBlur(img, (3, 3), 0)

    instances: list[Instance] = []
    for k, (class_id, _) in enumerate(drawn):
        visible = (owner == k).astype(np.uint8)
        contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        largest = max(contours, key=cv2.contourArea)
        if cv2.contourArea(largest) < 60:
            continue
        approx = cv2.approxPolyDP(largest, 1.0, True).reshape(-1, 2).astype(np.float32)
        if len(approx) >= 3:
            instances.append(Instance(class_id, approx))
    return img, instances


def make_scene(
    seed: int, size: tuple[int, int], count: int, radius: tuple[float, float] = (30.0, 60.0)
) -> tuple[np.ndarray, list[Instance]]:
    """A large (h, w) image with `count` separate shapes of `radius` pixels (the training
    images' scale, 20 to 96 px): small objects in a big frame, for tiled inference."""
    return make_mixed_scene(seed, size, [(count, radius)])


def make_mixed_scene(
    seed: int,
    size: tuple[int, int],
    groups: list[tuple[int, tuple[float, float]]],
    classes: list[tuple[int, ...] | None] | None = None,
) -> tuple[np.ndarray, list[Instance]]:
    """A large (h, w) image with separate shapes, `count` of each (count, radius range) group,
    placed group by group (largest first is easiest): e.g. a few objects larger than a tile
    among many small ones. `classes` may restrict a group to some class ids."""
    rng = np.random.default_rng([seed, *size, *(count for count, _ in groups)])
    h, w = size
    img = _background(rng, h, w)
    placed: list[tuple[float, float, float]] = []
    instances: list[Instance] = []
    for group, (count, radius) in enumerate(groups):
        allowed = (classes[group] if classes else None) or tuple(range(len(CLASS_NAMES)))
        target = len(instances) + count
        while len(instances) < target:
            r = float(rng.uniform(*radius))
            cx, cy = float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r))
            if any(math.hypot(cx - x, cy - y) < r + other + 8 for x, y, other in placed):
                continue  # shapes never touch: every instance is whole and visible
            class_id = int(allowed[int(rng.integers(0, len(allowed)))])
            poly = _shape_polygon(rng, class_id, cx, cy, r)
            # Draw in the polygon's own bounds (a rotated rectangle's corners reach 1.2 r from
            # its centre: a window of radius r cut them off, an octagon labelled rectangle).
            x0, y0, x1, y1 = _window(poly, h, w)
            window = img[y0:y1, x0:x1]
            mask = np.zeros(window.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(poly - (x0, y0)).astype(np.int32)], 1)
            inside = mask.astype(bool)
            colour = _contrasting_colour(rng, window[inside].mean(axis=0))
            window[inside] = np.clip(colour + rng.normal(0, 5, size=(int(inside.sum()), 3)), 0, 255)
            placed.append((cx, cy, r))
            instances.append(Instance(class_id, poly))
    return cv2.GaussianBlur(img, (3, 3), 0), instances


# --- The training recipe: shapes on photographs and textures, hard negatives ---------------

# Real scenes from OpenCV's samples (training only), committed as training/photos/<name>.jpg
# by import_photos.py; their license: training/photos/README.md.
OPENCV_PHOTOS: tuple[str, ...] = tuple(_OPENCV_SOURCES)
# The photographs among Debian's desktop wallpapers (mate-backgrounds, plasma-workspace-wallpapers,
# lomiri-wallpapers-16.04 and -20.04), committed the same way; their license: training/photos/README.md.
WALLPAPER_PHOTOS: tuple[str, ...] = tuple(_WALLPAPER_SOURCES)
# Every photo committed under training/photos/ (what load_photo reads from the repository).
REPO_PHOTO_NAMES: tuple[str, ...] = OPENCV_PHOTOS + WALLPAPER_PHOTOS
# scikit-image's bundled sample photographs (skimage.data; license: see the model card).
# Left out everywhere: the ones that show the four classes or look like them (coins, clock,
# retina, cell, microaneurysms, phantom: round discs; chessboard, color, logo: squares and
# drawn shapes) and the tiny or non-photo ones.
TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "camera",
    "chelsea",
    "grass",
    "brick",
    "moon",
    "ihc",
    "page",
    "hubble_deep_field",
    "text",
    # Since recipe version 3: photos that other packages of the training toolchain ship
    # (_PACKAGE_PHOTOS). matplotlib's grace_hopper is left out: the flag behind her has stars.
    "china",
    "flower",
    "aero",
    "ascent",
    # Since recipe version 4: the photos were still where most held-out false positives were.
    *OPENCV_PHOTOS,
    # Since recipe version 5: at imgsz 640 (run r7) 88 of 117 held-out false positives were
    # low-scored detections on the held-out photos' detail; more real scenes behind and
    # without the shapes. Since version 6: 10 more, from the Lomiri wallpapers (run r8 on
    # version 5 had 0.34 held-out false positives per image at 640, most still on photos).
    *WALLPAPER_PHOTOS,
)
# Since recipe version 7: photographed objects cut out on transparency (Tux Paint's stamps:
# animals, tools, household things, trees), committed as training/cutouts/<name>.webp by
# import_photos.py, pasted under the shapes and on hard negatives in training only. Real
# things with sharp outlines on any background, none of them one of the classes: what the
# held-out photos' false positives were drawn to (motorcycles, a rocket, a cup).
OBJECT_CUTOUTS: tuple[str, ...] = tuple(_CUTOUT_SOURCES)
HELDOUT_PHOTOS: tuple[str, ...] = ("coffee", "rocket", "gravel", "motorcycle_left", "motorcycle_right")
# Generated texture families; the held-out ones are never used for training images.
TRAIN_FAMILIES: tuple[str, ...] = (
    "gradient",
    "octaves",
    "flat_noise",
    "stripes",
    "blobs",
    "marble",
    "grain",
    "terrain",
)
HELDOUT_FAMILIES: tuple[str, ...] = ("blurred_colour", "plaid", "speckle")
# Seeds of the recipe's splits (the simple generator's SPLIT_SEEDS are 1 to 4).
MIXED_SEEDS = {"train": 11, "val": 12, "heldout": 13}
NEGATIVE_SHARE = 0.3
CLUTTER_SHARE = 0.35  # training images with clutter (text, irregular blobs, arcs) under the shapes
OBJECT_SHARE = 0.4  # since version 7: training images with 1 to 3 cut-out objects under the shapes
PHOTO_SHARE = 0.45  # backgrounds that are photos (the held-out set's share)
TRAIN_PHOTO_SHARE = 0.55  # since version 3: most false positives left were on held-out photos
RECIPE_VERSION = 7  # bump when the training recipe changes: train and val on disk are rewritten
# Bump only when the held-out set itself changes: that is a new benchmark, every eval.json
# (keyed by it) is void and every card figure changes meaning. Version 2 of the training
# recipe left it as it was.
HELDOUT_VERSION = 1
TRAIN_IMAGES, VAL_IMAGES, HELDOUT_IMAGES = 1600, 100, 300


# Photos that other packages of the training toolchain ship, by name: (package, file in its
# folder). Found without importing the package; .npz files hold a grey image under "data".
# scikit-learn's two are CC BY 2.0 (sklearn/datasets/images/README.txt); PyWavelets' aero
# and ascent are the classic test images it ships under its MIT license.
_PACKAGE_PHOTOS: dict[str, tuple[str, str]] = {
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "aero": ("pywt", "data/aero.npz"),
    "ascent": ("pywt", "data/ascent.npz"),
}


def _package_folder(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the package {package!r} is not installed (requirements-dev.txt)")
    return Path(spec.origin).parent


def load_photo(name: str) -> np.ndarray:
    """A photo that skimage.data (or another package, _PACKAGE_PHOTOS) ships, by name, as
    BGR uint8 (grey ones as three channels)."""
    return _photo_cache(name).copy()


def _photo_cache(name: str, _cache: dict[str, np.ndarray] = {}) -> np.ndarray:  # noqa: B006 - a cache
    if name not in _cache:
        if name in REPO_PHOTO_NAMES:
            path: Path | None = REPO_PHOTOS / f"{name}.jpg"
        elif name in _PACKAGE_PHOTOS:
            package, file = _PACKAGE_PHOTOS[name]
            path = _package_folder(package) / file
        else:
            folder = _package_folder("skimage") / "data"
            path = next(folder.glob(f"{name}.*"), None)  # the files skimage.data ships (no download)
        if path is not None and path.suffix == ".npz" and path.exists():
            grey = np.load(path)["data"]
            img = cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        else:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path else None
        if img is None:
            raise FileNotFoundError(f"no photo {name!r} ({path})")
        _cache[name] = img
    return _cache[name]


def _photo_background(
    rng: np.random.Generator, name: str, h: int, w: int, *, jitter: bool = False
) -> np.ndarray:
    """A random crop of the photo (a quarter to all of it), resized to h x w, maybe flipped.
    ``jitter`` (training since recipe version 3) gets more out of few photos: turned by a
    quarter, crops from 15% of its side (details at other scales), colours rotated."""
    photo = load_photo(name)
    if jitter and rng.random() < 0.3:
        photo = np.rot90(photo, int(rng.integers(1, 4)))
    ph, pw = photo.shape[:2]
    scale = math.exp(rng.uniform(math.log(0.15), 0.0)) if jitter else rng.uniform(0.4, 1.0)
    ch = max(16, int(min(ph, pw * h / w) * scale))
    cw = max(16, min(pw, int(ch * w / h)))
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    # INTER_AREA enlarges in blocks (squares that are no shape); jitter's crops enlarge often.
    upscale = jitter and cw < w
    interpolation = cv2.INTER_CUBIC if upscale else cv2.INTER_AREA
    crop = cv2.resize(photo[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=interpolation)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if jitter and rng.random() < 0.4:  # another palette: channels swapped, hue turned
        crop = np.ascontiguousarray(crop[:, :, rng.permutation(3)])
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(0, 180))) % 180
        crop = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return np.ascontiguousarray(crop)


def _smooth_field(rng: np.random.Generator, h: int, w: int, cell: int, channels: int = 3) -> np.ndarray:
    coarse = rng.normal(0, 1, size=(max(2, h // cell), max(2, w // cell), channels)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return field.reshape(h, w, channels)


def _texture_background(rng: np.random.Generator, family: str, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(30, 225, size=3).astype(np.float32)
    img: np.ndarray  # float32 until the end (OpenCV's stubs type its results loosely)
    if family == "gradient":
        return _background(rng, h, w)
    if family == "octaves":  # multi-scale value noise
        img = np.zeros((h, w, 3), np.float32) + base
        for cell, amp in ((64, 40), (24, 25), (8, 15), (3, 8)):
            img += amp * rng.uniform(0.3, 1.2) * _smooth_field(rng, h, w, cell)
    elif family == "flat_noise":  # a flat colour with pixel noise of any strength
        img = base + rng.normal(0, rng.uniform(2, 40), size=(h, w, 3)).astype(np.float32)
    elif family == "stripes":  # sinusoidal stripes at an angle
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 80)
        wave = np.sin(2 * math.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)[..., None]
        img = base + rng.uniform(15, 70) * wave * rng.uniform(0.3, 1.0, size=3).astype(np.float32)
    elif family == "blobs":  # soft, heavily blurred colour blobs (no sharp edges)
        img = np.zeros((h, w, 3), np.float32) + base
        for _ in range(int(rng.integers(4, 14))):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(10, max(11, w // 3))), int(rng.integers(10, max(11, h // 3))))
            cv2.ellipse(
                img, centre, axes, float(rng.uniform(0, 180)), 0, 360, rng.uniform(0, 255, 3).tolist(), -1
            )
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(12, 30))
    elif family == "marble":  # veins: stripes bent by smooth turbulence
        angle, period = rng.uniform(0, math.pi), rng.uniform(12, 90)
        phase = (np.cos(angle) * xx + np.sin(angle) * yy) / period
        phase = phase + rng.uniform(0.5, 3.0) * _smooth_field(rng, h, w, int(rng.integers(16, 96)), 1)[..., 0]
        wave = np.abs(np.sin(2 * math.pi * phase))[..., None] ** rng.uniform(0.3, 3.0)
        img = base + rng.uniform(20, 90) * (wave - 0.5) * rng.uniform(0.3, 1.0, size=3).astype(np.float32)
    elif family == "grain":  # anisotropic noise: wood, brushed metal, fabric, rain
        noise: np.ndarray = rng.normal(0, 1, size=(h, w)).astype(np.float32)
        length = float(rng.uniform(5, 40))
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=length, sigmaY=rng.uniform(0.5, 2.0))
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(0, 180)), 1.0)
        noise = cv2.warpAffine(noise, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
        noise = noise / (noise.std() + 1e-6)
        img = base + rng.uniform(8, 40) * noise[..., None] * rng.uniform(0.4, 1.0, size=3).astype(np.float32)
    elif family == "terrain":  # relief: a real elevation map, hill-shaded in a random light
        img = _terrain(rng, h, w)
    elif family == "blurred_colour":  # held out: coloured noise blurred at any scale
        img = rng.uniform(0, 255, size=(h, w, 3)).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(2, 12))
        img = base + (img - img.mean()) * rng.uniform(2, 6)
    elif family == "plaid":  # held out: two crossing sets of stripes
        img = np.zeros((h, w, 3), np.float32) + base
        for angle in (rng.uniform(0, math.pi / 2), rng.uniform(math.pi / 2, math.pi)):
            period = rng.uniform(10, 60)
            wave = np.sin(2 * math.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)[..., None]
            img += rng.uniform(10, 45) * wave * rng.uniform(-1, 1, size=3).astype(np.float32)
    elif family == "speckle":  # held out: a gradient with salt-and-pepper speckle, blurred
        img = _background(rng, h, w).astype(np.float32)
        speckle = rng.random((h, w)) < rng.uniform(0.02, 0.2)
        img[speckle] = rng.uniform(0, 255, size=(int(speckle.sum()), 3))
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 2.0))
    else:
        raise ValueError(f"unknown texture family {family!r}")
    return np.clip(img, 0, 255).astype(np.uint8)


# Elevation maps that matplotlib ships as sample data (file, array); the "terrain" family.
_DEMS: tuple[tuple[str, str], ...] = (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo"))
_TERRAIN_COLOURMAPS = ("gist_earth", "terrain", "copper", "bone", "YlGn", "cividis", "pink", "gray")


def _dem(file: str, key: str, _cache: dict[str, np.ndarray] = {}) -> np.ndarray:  # noqa: B006 - a cache
    if file not in _cache:
        _cache[file] = np.load(_package_folder("matplotlib") / "mpl-data" / "sample_data" / file)[key]
    return _cache[file]


def _terrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random crop of a real elevation map, hill-shaded (matplotlib's LightSource) from a
    random sun, in a random colour map: relief, ridges and valleys at many scales."""
    from matplotlib import colormaps
    from matplotlib.colors import LightSource

    file, key = _DEMS[int(rng.integers(len(_DEMS)))]
    dem: np.ndarray = _dem(file, key).astype(np.float32)
    dh, dw = dem.shape
    ch = max(8, int(dh * rng.uniform(0.3, 1.0)))
    cw = max(8, min(dw, int(ch * w / h)))
    y0, x0 = int(rng.integers(0, dh - ch + 1)), int(rng.integers(0, dw - cw + 1))
    dem = cv2.resize(dem[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_CUBIC)
    dem = (dem - dem.min()) / (np.ptp(dem) + 1e-6) * rng.uniform(20, 200)  # relief in pixels
    light = LightSource(azdeg=float(rng.uniform(0, 360)), altdeg=float(rng.uniform(20, 70)))
    cmap = colormaps[str(rng.choice(_TERRAIN_COLOURMAPS))]
    mode = cast(Literal["soft", "overlay", "hsv"], str(rng.choice(("soft", "overlay", "hsv"))))
    rgb = light.shade(dem, cmap=cmap, vert_exag=1.0, blend_mode=mode)[..., :3]
    return (rgb[..., ::-1] * 255).astype(np.float32)


def _distractor_lines(rng: np.random.Generator, img: np.ndarray) -> None:
    """Straight and bent line segments: edges that belong to no shape."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(2, 12))):
        points = rng.uniform(0, 1, size=(int(rng.integers(2, 4)), 2)) * (w, h)
        colour = rng.uniform(0, 255, size=3).tolist()
        cv2.polylines(img, [points.astype(np.int32)], False, colour, int(rng.integers(1, 5)), cv2.LINE_AA)


_CLUTTER_TEXT = "ABCDEFGHKLMNOPRSTUVWXYZabdegmnopqrsw0123456789&%#@?"
_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
)


def _clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Things that are none of the four classes, drawn under the shapes (never labelled):
    text (letters such as O, D and A come close to the classes), irregular filled blobs
    (objects in a photo that are not shapes), and open arcs (a circle's edge, not a circle)."""
    h, w = img.shape[:2]
    short = min(h, w)
    for _ in range(int(rng.integers(1, 6))):
        colour = rng.uniform(0, 255, size=3).tolist()
        kind = rng.random()
        if kind < 0.4:
            text = "".join(rng.choice(list(_CLUTTER_TEXT), size=int(rng.integers(1, 8))))
            scale = float(math.exp(rng.uniform(math.log(0.4), math.log(max(0.5, short / 80)))))
            org = (int(rng.integers(0, max(1, w - 20))), int(rng.integers(10, h)))
            thickness = max(1, int(scale * rng.uniform(0.8, 2.5)))
            cv2.putText(img, text, org, int(rng.choice(_FONTS)), scale, colour, thickness, cv2.LINE_AA)
        elif kind < 0.75:  # a lumpy blob: 6-11 vertices at very different radii, smoothed
            r = float(math.exp(rng.uniform(math.log(10.0), math.log(max(11.0, 0.2 * short)))))
            n = int(rng.integers(6, 12))
            t = np.sort(rng.uniform(0, 2 * math.pi, size=n))
            radii = r * rng.uniform(0.2, 1.0, size=n)
            middle = rng.uniform(0, 1, size=2) * (w, h)
            pts = np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1) + middle
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], colour, cv2.LINE_AA)
        else:  # an open arc of an ellipse
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(5, max(6, short // 3))), int(rng.integers(5, max(6, short // 3))))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(
                img,
                centre,
                axes,
                float(rng.uniform(0, 180)),
                start,
                start + float(rng.uniform(60, 270)),
                colour,
                int(rng.integers(1, 5)),
                cv2.LINE_AA,
            )


def _mixed_polygon(rng: np.random.Generator, class_id: int, cx: float, cy: float, r: float) -> np.ndarray:
    """The four classes with more variety of proportions than the simple generator's."""
    if class_id == 1 and rng.random() < 0.5:  # any clearly triangular triangle
        t = np.sort(rng.uniform(0, 2 * math.pi, size=3))
        while np.min(np.diff(np.append(t, t[0] + 2 * math.pi))) < 0.9:
            t = np.sort(rng.uniform(0, 2 * math.pi, size=3))
        pts = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
        return (pts + np.array([cx, cy])).astype(np.float32)
    if class_id == 2 and rng.random() < 0.5:  # squares to long bars
        rot, aspect = rng.uniform(0, math.pi), rng.uniform(0.3, 1.0)
        hw, hh = r * 0.85, r * 0.85 * aspect
        pts = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
        c, s = math.cos(rot), math.sin(rot)
        return (pts @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])).astype(np.float32)
    if class_id == 0 and rng.random() < 0.3:  # ellipses
        ax, rot = r * rng.uniform(0.6, 0.85), rng.uniform(0, math.pi)
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        pts = np.stack([ax * np.cos(t), r * np.sin(t)], axis=1)
        c, s = math.cos(rot), math.sin(rot)
        return (pts @ np.array([[c, s], [-s, c]]) + np.array([cx, cy])).astype(np.float32)
    return _shape_polygon(rng, class_id, cx, cy, r)


def _fill(rng: np.random.Generator, region: np.ndarray, low_contrast: bool) -> np.ndarray:
    """Pixels for a shape over `region` (its background pixels): a colour that stands out
    (or barely, when low_contrast), flat or shaded, with some noise."""
    bg = region.reshape(-1, 3).mean(axis=0)
    if low_contrast:
        colour = np.clip(bg + rng.choice([-1, 1], size=3) * rng.uniform(12, 30, size=3), 0, 255)
    else:
        colour = _contrasting_colour(rng, bg)
    pixels = np.zeros(region.shape, np.float32) + colour
    if rng.random() < 0.25 and region.shape[0] > 4:  # a shading gradient across the shape
        ramp = np.linspace(-1, 1, region.shape[0], dtype=np.float32)[:, None, None]
        pixels = pixels + ramp * rng.uniform(10, 40)
    pixels = pixels + rng.normal(0, rng.uniform(1, 10), size=region.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _visible_instances(owner: np.ndarray, drawn: list[int], min_area: float) -> list[Instance]:
    instances: list[Instance] = []
    for k, class_id in enumerate(drawn):
        visible = (owner == k).astype(np.uint8)
        contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        largest = max(contours, key=cv2.contourArea)
        if cv2.contourArea(largest) < min_area:
            continue
        approx = cv2.approxPolyDP(largest, 0.7, True).reshape(-1, 2).astype(np.float32)
        if len(approx) >= 3:
            instances.append(Instance(class_id, approx))
    return instances


def _draw_background(
    rng: np.random.Generator,
    photos: tuple[str, ...],
    families: tuple[str, ...],
    side: tuple[int, int],
    photo_share: float,
) -> tuple[int, int, str, str]:
    """An image's first draws: its height, width and background ("photo" or "texture", and
    which)."""
    h, w = int(rng.integers(*side)), int(rng.integers(*side))
    if rng.random() < photo_share:
        return h, w, "photo", str(rng.choice(photos))
    return h, w, "texture", str(rng.choice(families))


def make_mixed_image(
    seed: int,
    index: int,
    *,
    photos: tuple[str, ...] = TRAIN_PHOTOS,
    families: tuple[str, ...] = TRAIN_FAMILIES,
    side: tuple[int, int] = (256, 641),
    negatives: float = NEGATIVE_SHARE,
    clutter: float = CLUTTER_SHARE,
    objects: float = OBJECT_SHARE,
    photo_share: float = TRAIN_PHOTO_SHARE,
    photo_jitter: bool = True,
) -> tuple[np.ndarray, list[Instance]]:
    """Image ``index`` of the recipe's set with ``seed`` (a pure function of both)."""
    rng = np.random.default_rng([seed, index, 7])
    h, w, kind, name = _draw_background(rng, photos, families, side, photo_share)
    if kind == "photo":
        img = _photo_background(rng, name, h, w, jitter=photo_jitter)
    else:
        img = _texture_background(rng, name, h, w)
    if rng.random() < 0.25:
        _distractor_lines(rng, img)
    if clutter and rng.random() < clutter:  # no draw at all when off: the held-out set stays as it was
        _clutter(rng, img)
    if objects and rng.random() < objects:  # likewise
        _paste_objects(rng, img)
    owner = np.full((h, w), -1, dtype=np.int32)
    drawn: list[int] = []
    shown: list[int] = []  # pixels each drawn shape still shows
    if rng.random() >= negatives:
        short = min(h, w)
        large = rng.random() < 0.15  # one or two shapes that fill much of the frame
        count = int(rng.integers(1, 3)) if large else int(rng.integers(1, 8))
        for _ in range(count * 4):
            if len(drawn) == count:
                break
            class_id = int(rng.integers(0, len(CLASS_NAMES)))
            if large:
                r = float(rng.uniform(0.25, 0.5) * short)
            else:  # log-uniform from ~10 px across to about half the frame
                r = float(math.exp(rng.uniform(math.log(5.0), math.log(0.25 * short))))
            margin = r * (0.7 if rng.random() < 0.1 else 1.0)  # a few cut by the border
            if w - 2 * margin <= 0 or h - 2 * margin <= 0:
                continue
            cx, cy = rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)
            poly = _mixed_polygon(rng, class_id, cx, cy, r)
            # Draw in the shape's window only (not the whole frame): this runs thousands of times.
            x0, y0, x1, y1 = _window(poly, h, w)
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.round(poly - (x0, y0)).astype(np.int32)], 1)
            inside = mask.astype(bool)
            if inside.sum() < 30:
                continue
            window = owner[y0:y1, x0:x1]
            # Mild occlusion: at most 15% of the new shape over earlier ones, and no earlier
            # shape loses more than 20% of what it still shows.
            covered = np.bincount(window[inside] + 1, minlength=len(drawn) + 1)[1:]
            if covered.sum() > 0.15 * inside.sum() or np.any(covered > 0.2 * np.array(shown)):
                continue
            low_contrast = r > 12 and rng.random() < 0.15
            pixels = img[y0:y1, x0:x1]
            pixels[inside] = _fill(rng, pixels[inside][:, None, :], low_contrast)[:, 0, :]
            window[inside] = len(drawn)
            shown = [a - c for a, c in zip(shown, covered.tolist(), strict=True)] + [int(inside.sum())]
            drawn.append(class_id)
    img = _degrade(rng, img)
    return img, _visible_instances(owner, drawn, min_area=25)


def load_cutout(name: str) -> np.ndarray:
    """A cut-out object of the recipe (OBJECT_CUTOUTS), as BGRA uint8."""
    return _cutout_cache(name).copy()


def _cutout_cache(name: str, _cache: dict[str, np.ndarray] = {}) -> np.ndarray:  # noqa: B006 - a cache
    if name not in _cache:
        if name not in _CUTOUT_SOURCES:
            raise FileNotFoundError(f"no cut-out object {name!r} in the recipe (OBJECT_CUTOUTS)")
        _cache[name] = read_image(CUTOUTS_DIR / f"{name}.webp", alpha=True)
    return _cache[name]


def _paste_objects(rng: np.random.Generator, img: np.ndarray) -> None:
    """1 to 3 cut-out objects, each from a tenth of the short side to most of it across,
    mirrored, turned up to 30 degrees and recoloured, some partly out of the frame."""
    h, w = img.shape[:2]
    short = min(h, w)
    for _ in range(int(rng.integers(1, 4))):
        cut = load_cutout(OBJECT_CUTOUTS[int(rng.integers(len(OBJECT_CUTOUTS)))])
        if rng.random() < 0.5:
            cut = cut[:, ::-1]
        ch, cw = cut.shape[:2]
        side = math.exp(rng.uniform(math.log(0.1 * short), math.log(0.8 * short)))
        turn = cv2.getRotationMatrix2D((cw / 2, ch / 2), float(rng.uniform(-30, 30)), side / max(ch, cw))
        cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
        ow, oh = int(ch * sin + cw * cos) + 2, int(ch * cos + cw * sin) + 2
        turn[:, 2] += (ow / 2 - cw / 2, oh / 2 - ch / 2)
        # Premultiplied by alpha, so that the edges do not pick up the transparent pixels' colour.
        alpha = cut[..., 3:].astype(np.float32) / 255
        premultiplied = np.concatenate([cut[..., :3] * alpha, alpha], axis=2)
        warped = cv2.warpAffine(premultiplied, turn, (ow, oh), flags=cv2.INTER_LINEAR)
        colour, cover = warped[..., :3] * rng.uniform(0.7, 1.3, size=3), warped[..., 3:]
        x0 = int(rng.integers(-ow // 3, max(-ow // 3 + 1, w - 2 * ow // 3)))
        y0 = int(rng.integers(-oh // 3, max(-oh // 3 + 1, h - 2 * oh // 3)))
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + ow, w), min(y0 + oh, h)
        if ix1 <= ix0 or iy1 <= iy0:
            continue
        part = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        under = img[iy0:iy1, ix0:ix1].astype(np.float32)
        img[iy0:iy1, ix0:ix1] = np.clip(under * (1 - cover[part]) + colour[part], 0, 255).astype(np.uint8)


def _degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """What photos of real scenes do to shapes: blur, noise, grey, low contrast, JPEG."""
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
    else:
        img = cv2.GaussianBlur(img, (3, 3), 0)
    if rng.random() < 0.25:
        noisy = img.astype(np.float32) + rng.normal(0, rng.uniform(2, 15), size=img.shape)
        img = np.clip(noisy, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.1:
        mean = img.reshape(-1, 3).mean(axis=0)
        img = np.clip(mean + (img.astype(np.float32) - mean) * rng.uniform(0.35, 0.7), 0, 255).astype(
            np.uint8
        )
    return jpeg_round_trip(img, int(rng.integers(40, 96)))


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` as it comes back from a JPEG file of that quality (BGR uint8)."""
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise ValueError(f"could not encode an image of shape {img.shape} as JPEG")
    return decoded


HELDOUT_SIDE = (320, 801)  # image sides of the held-out set (training: 256 to 640)


def make_heldout_image(index: int) -> tuple[np.ndarray, list[Instance]]:
    """Image ``index`` of the held-out set: photos and texture families that training never
    uses, image sides of 320 to 800 px, 10% without shapes."""
    return make_mixed_image(
        MIXED_SEEDS["heldout"],
        index,
        photos=HELDOUT_PHOTOS,
        families=HELDOUT_FAMILIES,
        side=HELDOUT_SIDE,
        negatives=0.1,
        clutter=0.0,
        objects=0.0,
        photo_share=PHOTO_SHARE,
        photo_jitter=False,
    )


def heldout_background(index: int) -> tuple[str, str]:
    """The background of held-out image ``index``: ("photo" or "texture", which one), by the
    same draws that make it (for the evaluation's false positives by background)."""
    rng = np.random.default_rng([MIXED_SEEDS["heldout"], index, 7])
    _, _, kind, name = _draw_background(rng, HELDOUT_PHOTOS, HELDOUT_FAMILIES, HELDOUT_SIDE, PHOTO_SHARE)
    return kind, name


def label_lines(instances: list[Instance], h: int, w: int) -> list[str]:
    lines = []
    for inst in instances:
        norm = inst.polygon / np.array([w, h], dtype=np.float32)
        coords = " ".join(f"{v:.5f}" for v in np.clip(norm, 0, 1).reshape(-1))
        lines.append(f"{inst.class_id} {coords}")
    return lines


def _write_one(root: Path, split: str, i: int) -> None:
    label = root / "labels" / split / f"{i:05d}.txt"
    if label.exists():  # written after its image: both are complete (each a pure function of i)
        return
    img, instances = make_heldout_image(i) if split == "heldout" else make_mixed_image(MIXED_SEEDS[split], i)
    write_example(root, split, i, img, instances)


def write_example(root: Path, split: str, i: int, img: np.ndarray, instances: list[Instance]) -> None:
    """Image ``i`` of ``split`` and its YOLO label file (the label last: both are complete
    once it exists)."""
    h, w = img.shape[:2]
    cv2.imwrite(str(root / "images" / split / f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    label = root / "labels" / split / f"{i:05d}.txt"
    label.write_text("".join(line + "\n" for line in label_lines(instances, h, w)))


def write_split(root: Path, split: str, n: int, jobs: int = 1) -> None:
    """``n`` images of the recipe's ``split`` (train, val or heldout) with their labels,
    unless they are there already (a marker records the count and the recipe version; an
    interrupted split is completed)."""
    marker = root / f"{split}.json"
    version = HELDOUT_VERSION if split == "heldout" else RECIPE_VERSION
    recipe = {"images": n, "seed": MIXED_SEEDS[split], "version": version}
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return
    for folder in ("images", "labels"):
        (root / folder / split).mkdir(parents=True, exist_ok=True)
    if marker.exists():  # another recipe version or size: start again
        for old in (root / "labels" / split).glob("*.txt"):
            old.unlink()
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(partial(_write_one, root, split), range(n), chunksize=8))
    else:
        for i in range(n):
            _write_one(root, split, i)
    marker.write_text(json.dumps(recipe) + "\n")


def write_dataset(root: Path, train: int, val: int, heldout: int, jobs: int = 1) -> Path:
    """The recipe's data set under ``root`` (each split written once) and its data.yaml,
    whose test split is the held-out set. ``heldout=0`` leaves that split for later."""
    for split, n in (("train", train), ("val", val), ("heldout", heldout)):
        if n:
            write_split(root, split, n, jobs)
    return write_data_yaml(root, train="train", val="val", test="heldout")


def write_data_yaml(root: Path, *, train: str, val: str, test: str) -> Path:
    """The data.yaml that Ultralytics reads for a data set under ``root`` (splits by folder)."""
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(
        f"path: {root.resolve()}\ntrain: images/{train}\nval: images/{val}\ntest: images/{test}\nnames:\n{names}\n"
    )
    return data_yaml


def write_demo_images(out: Path, n: int = 3) -> None:
    """Larger demo photos (960x640) so results show coordinates in original pixels."""
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, _ = make_image(SPLIT_SEEDS["demo"], i, size=(640, 960))
        cv2.imwrite(str(out / f"shapes-{i + 1}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("build/data"))
    parser.add_argument("--train", type=int, default=TRAIN_IMAGES)
    parser.add_argument("--val", type=int, default=VAL_IMAGES)
    parser.add_argument("--heldout", type=int, default=HELDOUT_IMAGES)
    parser.add_argument("--jobs", type=int, default=1, help="processes that draw images")
    parser.add_argument("--demo", type=Path, help="write the demo images to this folder instead")
    args = parser.parse_args()
    if args.demo:
        write_demo_images(args.demo)
    else:
        print(write_dataset(args.out, args.train, args.val, args.heldout, args.jobs))


if __name__ == "__main__":
    main()

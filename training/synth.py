"""Deterministic synthetic instance-segmentation data set of simple shapes.

Every image is a pure function of (seed, index), so the training set, the validation set
and the held-out test set (another seed) can be regenerated bit for bit anywhere.
Labels are in the Ultralytics YOLO-seg format: one line per instance,
``class x1 y1 x2 y2 ...`` with polygon coordinates normalised to [0, 1].

    python training/synth.py --out model/data --train 600 --val 100 --test 200
    python training/synth.py --demo functions/segment/demo_images  # the demo JPEGs
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

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
            x0, y0 = int(cx - r) - 1, int(cy - r) - 1  # the shape's window: draw there, not on all of img
            window = img[max(0, y0) : int(cy + r) + 2, max(0, x0) : int(cx + r) + 2]
            mask = np.zeros(window.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(poly - (max(0, x0), max(0, y0))).astype(np.int32)], 1)
            inside = mask.astype(bool)
            colour = _contrasting_colour(rng, window[inside].mean(axis=0))
            window[inside] = np.clip(colour + rng.normal(0, 5, size=(int(inside.sum()), 3)), 0, 255)
            placed.append((cx, cy, r))
            instances.append(Instance(class_id, poly))
    return cv2.GaussianBlur(img, (3, 3), 0), instances


def label_lines(instances: list[Instance], h: int, w: int) -> list[str]:
    lines = []
    for inst in instances:
        norm = inst.polygon / np.array([w, h], dtype=np.float32)
        coords = " ".join(f"{v:.5f}" for v in np.clip(norm, 0, 1).reshape(-1))
        lines.append(f"{inst.class_id} {coords}")
    return lines


def write_split(root: Path, split: str, n: int) -> None:
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, instances = make_image(SPLIT_SEEDS[split], i)
        h, w = img.shape[:2]
        cv2.imwrite(str(images / f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (labels / f"{i:05d}.txt").write_text("\n".join(label_lines(instances, h, w)) + "\n")


def write_dataset(root: Path, train: int, val: int, test: int) -> Path:
    for split, n in (("train", train), ("val", val), ("test", test)):
        write_split(root, split, n)
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(
        f"path: {root.resolve()}\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n{names}\n"
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
    parser.add_argument("--out", type=Path, default=Path("model/data"))
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--demo", type=Path, help="write the demo images to this folder instead")
    args = parser.parse_args()
    if args.demo:
        write_demo_images(args.demo)
    else:
        print(write_dataset(args.out, args.train, args.val, args.test))


if __name__ == "__main__":
    main()

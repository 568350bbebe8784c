"""Sliced inference for large images with small objects: the tile grid and the merge.

Pure logic on numpy arrays, no model. A large frame is cut into overlapping tiles of
`tile_size` pixels, each tile is inferred at the job's imgsz (so small objects keep their
pixels instead of being shrunk with the whole image). As in SAHI (slicing-aided hyper
inference), the whole frame is inferred too, shrunk to imgsz, so that objects larger than a
tile are found whole. The tiles' detections are shifted back into frame pixels, partial
views cut by a tile edge give way to a whole view of the same object (another tile's or
the whole frame's), and the union is merged by non-maximum suppression (the same as within
one frame, class-aware or across classes as the job says: `postprocess.nms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segjob_core.errors import InvalidParams

from .postprocess import Prediction, nms

# A box side within this fraction of the tile side from a tile side inside the frame: the
# object is cut there (a model input pixel is tile_size / imgsz frame pixels).
EDGE_MARGIN = 0.01
# A cut box lying this much (of its area) inside a whole box is a partial view of that object.
FRAGMENT_COVERAGE = 0.7
# At most this many tiles per job (~33 ms each at imgsz 320 on 2 vCPUs: about 13 s): a tile
# size far too small for the image fails the job at once with InvalidParams, not at the
# function's timeout.
MAX_TILES = 400


@dataclass(frozen=True)
class Tile:
    """A window of the frame: origin (x, y) and size in frame pixels."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, pixels: np.ndarray) -> np.ndarray:
        return pixels[self.y : self.y + self.height, self.x : self.x + self.width]


def tile_starts(length: int, tile_size: int, overlap: float) -> list[int]:
    """Origins along one axis: a step of tile_size minus the overlap, the last tile flush
    with the end (so it may overlap its neighbour by more); one tile if it all fits."""
    if length <= tile_size:
        return [0]
    step = tile_size - round(tile_size * overlap)
    last = length - tile_size
    return [*range(0, last, step), last]


def tile_grid(width: int, height: int, tile_size: int, overlap: float) -> list[Tile]:
    """Tiles covering a width x height frame, row by row; each is tile_size square, clipped
    to a side of the frame that is shorter than tile_size. InvalidParams above MAX_TILES."""
    count = len(tile_starts(width, tile_size, overlap)) * len(tile_starts(height, tile_size, overlap))
    if count > MAX_TILES:
        raise InvalidParams(
            f"tileSize {tile_size} with tileOverlap {overlap} cuts this {width}x{height} image into "
            f"{count} tiles, more than {MAX_TILES}: use larger tiles or less overlap"
        )
    return [
        Tile(x, y, min(tile_size, width), min(tile_size, height))
        for y in tile_starts(height, tile_size, overlap)
        for x in tile_starts(width, tile_size, overlap)
    ]


def _intersection(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    return width * height


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def cut_by_tile(boxes: np.ndarray, tile: Tile, frame: tuple[int, int]) -> np.ndarray:
    """Which boxes (tile pixels) reach a side of the tile that lies inside the frame (w, h):
    the tile saw only part of that object."""
    x1, y1, x2, y2 = boxes.T
    margin = EDGE_MARGIN * max(tile.width, tile.height)
    return (
        ((tile.x > 0) & (x1 <= margin))
        | ((tile.y > 0) & (y1 <= margin))
        | ((tile.x + tile.width < frame[0]) & (x2 >= tile.width - margin))
        | ((tile.y + tile.height < frame[1]) & (y2 >= tile.height - margin))
    )


def fragments(boxes: np.ndarray, tile_ids: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Which cut boxes lie mostly (FRAGMENT_COVERAGE of their area) inside an uncut box from
    another tile: partial views of an object another tile saw whole. Of any class: a
    partial view is where the model confuses classes (half a rectangle is no rectangle)."""
    found = np.zeros(len(boxes), bool)
    for i in np.flatnonzero(cut):
        whole = ~cut & (tile_ids != tile_ids[i])
        if whole.any() and _area(boxes[i]) > 0:
            found[i] = _intersection(boxes[i], boxes[whole]).max() >= FRAGMENT_COVERAGE * _area(boxes[i])
    return found


def shift(prediction: Prediction, tile: Tile) -> Prediction:
    """A tile's prediction with boxes and polygons moved from tile to frame pixels."""
    origin = np.array([tile.x, tile.y], np.float32)
    return Prediction(
        boxes=prediction.boxes + np.tile(origin, 2),
        confidences=prediction.confidences,
        class_ids=prediction.class_ids,
        polygons=[polygon + origin for polygon in prediction.polygons],
    )


def inside_whole(parts: np.ndarray, wholes: np.ndarray) -> np.ndarray:
    """(parts, wholes) bool: part box i lies for FRAGMENT_COVERAGE of its area inside whole box j."""
    if len(parts) == 0 or len(wholes) == 0:
        return np.zeros((len(parts), len(wholes)), bool)
    covered = np.stack([_intersection(part, wholes) for part in parts])
    return covered >= FRAGMENT_COVERAGE * np.maximum(_area(parts), 1e-6)[:, None]


def merge_tiles(
    tiles: Sequence[Tile],
    predictions: Sequence[Prediction],
    *,
    iou: float,
    whole: Prediction | None = None,
    max_detections: int | None = None,
    agnostic: bool = False,
) -> Prediction:
    """One prediction in frame pixels from each tile's own (in tile pixels) and, if given,
    the `whole` frame's (in frame pixels), most confident first.

    Boxes and polygons are shifted by the tile origin; a partial view cut by a tile edge is
    dropped where a neighbouring tile saw the object whole (see `fragments`: plain IoU
    misses these, a half box has an IoU of about 0.5 with the whole one). The whole-image
    pass adds what no tile could see whole: a detection of it is kept where it holds a
    partial view that no tile saw whole (which then gives way to it); the rest of it is
    dropped, as the tiles saw those places at a higher resolution (an object they saw whole,
    or nothing: at a scale far from the training images' the whole pass also hallucinates).
    Duplicates across overlapping tiles are suppressed by NMS at `iou` (across classes with
    `agnostic`), the more confident kept; then the top `max_detections` (all without it: `cap` applies the
    job's limit and says what it dropped).
    """
    if not tiles:
        return Prediction.empty()
    frame = (max(t.x + t.width for t in tiles), max(t.y + t.height for t in tiles))
    pairs = list(zip(tiles, predictions, strict=True))
    cut = np.concatenate([cut_by_tile(p.boxes, tile, frame) for tile, p in pairs])
    tile_ids = np.concatenate([np.full(len(p), i) for i, (_, p) in enumerate(pairs)])
    union = Prediction.concatenate([shift(p, tile) for tile, p in pairs])
    dropped = fragments(union.boxes, tile_ids, cut)
    if whole is not None and len(whole):
        orphans = np.flatnonzero(cut & ~dropped)  # partial views no tile saw whole
        holds = inside_whole(union.boxes[orphans], whole.boxes)
        sizes = whole.boxes[:, 2:] - whole.boxes[:, :2]
        tile_side = np.array([max(t.width for t in tiles), max(t.height for t in tiles)])
        larger_than_a_tile = (sizes > tile_side).any(axis=1)
        keep_whole = holds.any(axis=0) | larger_than_a_tile
        dropped[orphans[holds[:, keep_whole].any(axis=1)]] = True
        union = Prediction.concatenate(
            [union.take(np.flatnonzero(~dropped)), whole.take(np.flatnonzero(keep_whole))]
        )
        dropped = np.zeros(len(union), bool)
    candidates = np.flatnonzero(~dropped)
    limit = len(candidates) if max_detections is None else max_detections
    kept = candidates[
        nms(
            union.boxes[candidates],
            union.confidences[candidates],
            union.class_ids[candidates],
            iou=iou,
            limit=limit,
            agnostic=agnostic,
        )
    ]
    return union.take(kept)

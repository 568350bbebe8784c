"""Tiled inference: the tile grid and the merge (pure logic), and the demo model on a large
image of small shapes, with and without tiles."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segjob_core.errors import InvalidParams
from segjob_core.models import Detection, JobParams, ResultDocument, SegmentRequest
from segmentation.postprocess import Prediction, cap
from segmentation.runtime import Segmenter
from segmentation.service import segment_image
from segmentation.tiling import MAX_TILES, Tile, merge_tiles, tile_grid, tile_starts

# grid ----------------------------------------------------------------------------------

SIZES = [(2560, 2560, 512, 0.2), (3000, 1700, 640, 0.25), (1000, 999, 256, 0.0), (4100, 300, 256, 0.5)]


@pytest.mark.parametrize(("width", "height", "tile_size", "overlap"), SIZES)
def test_tiles_cover_every_pixel_inside_the_frame(
    width: int, height: int, tile_size: int, overlap: float
) -> None:
    covered = np.zeros((height, width), np.int32)

    for tile in tile_grid(width, height, tile_size, overlap):
        assert tile.x >= 0 and tile.y >= 0
        assert tile.x + tile.width <= width and tile.y + tile.height <= height
        covered[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width] += 1

    assert covered.min() >= 1


@pytest.mark.parametrize(("width", "height", "tile_size", "overlap"), SIZES)
def test_neighbours_share_at_least_the_overlap_and_the_last_tile_meets_the_edge(
    width: int, height: int, tile_size: int, overlap: float
) -> None:
    for length in (width, height):
        starts = tile_starts(length, tile_size, overlap)
        if length <= tile_size:
            assert starts == [0]
            continue
        assert starts[0] == 0 and starts[-1] == length - tile_size  # flush with both edges
        steps = np.diff(starts)
        assert (steps > 0).all()  # no tile twice
        assert (tile_size - steps >= round(tile_size * overlap)).all()
        assert (steps[:-1] == tile_size - round(tile_size * overlap)).all()  # only the last one is shifted


def test_grid_of_a_square_image() -> None:
    tiles = tile_grid(2560, 2560, 512, 0.2)  # step 410: 0, 410, 820, 1230, 1640 and 2048 at the edge

    assert len(tiles) == 36
    assert {(t.width, t.height) for t in tiles} == {(512, 512)}
    assert [t.x for t in tiles[:6]] == [0, 410, 820, 1230, 1640, 2048]
    assert tiles[0] == Tile(0, 0, 512, 512) and tiles[-1] == Tile(2048, 2048, 512, 512)
    assert tiles == tile_grid(2560, 2560, 512, 0.2)  # deterministic, row by row


def test_a_side_shorter_than_the_tile_gives_one_row_of_clipped_tiles() -> None:
    tiles = tile_grid(3000, 400, 1024, 0.2)

    assert [(t.x, t.y, t.width, t.height) for t in tiles] == [
        (0, 0, 1024, 400),
        (819, 0, 1024, 400),
        (1638, 0, 1024, 400),
        (1976, 0, 1024, 400),
    ]


@pytest.mark.parametrize(("width", "height"), [(512, 512), (300, 500), (512, 17)])
def test_an_image_that_fits_one_tile_is_one_tile(width: int, height: int) -> None:
    assert tile_grid(width, height, 512, 0.2) == [Tile(0, 0, width, height)]


def test_more_tiles_than_the_cap_is_invalid_params_naming_the_count() -> None:
    assert len(tile_grid(6000, 4000, 512, 0.2)) <= MAX_TILES  # a 24 MP photo in 512 px tiles is fine
    with pytest.raises(InvalidParams, match=r"cuts this 6000x4000 image into 1426 tiles, more than 400"):
        tile_grid(6000, 4000, 256, 0.5)


def test_crop_is_the_tiles_window() -> None:
    frame = np.arange(6 * 8).reshape(6, 8)

    assert Tile(x=2, y=1, width=3, height=4).crop(frame).tolist() == frame[1:5, 2:5].tolist()


# merge ---------------------------------------------------------------------------------


def prediction(*detections: tuple[list[float], float, int]) -> Prediction:
    """Boxes with confidence and class; each polygon is its box's four corners."""
    boxes = np.array([box for box, _, _ in detections], np.float32).reshape(-1, 4)
    return Prediction(
        boxes=boxes,
        confidences=np.array([conf for _, conf, _ in detections], np.float32),
        class_ids=np.array([cls for _, _, cls in detections], np.int64),
        polygons=[np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32) for x1, y1, x2, y2 in boxes],
    )


TWO_TILES = [Tile(0, 0, 100, 100), Tile(80, 0, 100, 100)]  # x 80..100 is seen by both


def test_two_tiles_sharing_twenty_columns() -> None:
    assert tile_grid(180, 100, 100, 0.2) == TWO_TILES


def test_offsets_move_boxes_and_polygons_into_frame_pixels() -> None:
    tiles = [Tile(0, 0, 100, 100), Tile(300, 200, 100, 100)]

    merged = merge_tiles(
        tiles, [prediction(), prediction(([10, 20, 30, 50], 0.9, 1))], iou=0.7, max_detections=10
    )

    assert merged.boxes.tolist() == [[310, 220, 330, 250]]
    assert merged.polygons[0].tolist() == [[310, 220], [330, 220], [330, 250], [310, 250]]
    assert (merged.confidences.tolist(), merged.class_ids.tolist()) == ([pytest.approx(0.9)], [1])


def test_an_object_seen_by_two_tiles_is_kept_once_with_the_higher_confidence() -> None:
    # GIVEN the object at frame x 84..96 inside both tiles' shared columns
    left = prediction(([84, 10, 96, 30], 0.8, 0))
    right = prediction(([4.5, 10.5, 16.5, 30.5], 0.9, 0))  # the same object, boxed slightly differently

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=10)

    assert len(merged) == 1
    assert merged.confidences.tolist() == [pytest.approx(0.9)]
    assert merged.boxes.tolist() == [[84.5, 10.5, 96.5, 30.5]]


def test_different_classes_in_the_same_place_are_both_kept() -> None:
    left = prediction(([84, 10, 96, 30], 0.8, 0))
    right = prediction(([4, 10, 16, 30], 0.9, 1))

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=10)

    assert sorted(merged.class_ids.tolist()) == [0, 1]


def test_across_classes_the_more_confident_class_in_the_same_place_is_kept() -> None:
    left = prediction(([84, 10, 96, 30], 0.8, 0))
    right = prediction(([4, 10, 16, 30], 0.9, 1))

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=10, agnostic=True)

    assert merged.class_ids.tolist() == [1]


def test_objects_that_overlap_less_than_iou_are_both_kept() -> None:
    left = prediction(([60, 10, 90, 30], 0.8, 0))
    right = prediction(([5, 10, 35, 30], 0.9, 0))  # frame 85..115: IoU 5/55

    assert len(merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=10)) == 2
    assert len(merge_tiles(TWO_TILES, [left, right], iou=0.05, max_detections=10)) == 1


def test_a_partial_view_cut_by_a_tile_edge_gives_way_to_the_whole_view() -> None:
    # GIVEN an object at frame x 90..110: the left tile ends at 100 and sees only its left part
    left = prediction(([90, 10, 100, 30], 0.95, 1))  # cut at the tile's right edge, another class even
    right = prediction(([10, 10, 30, 30], 0.7, 0))  # whole

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=10)

    # THEN the whole view is kept, though the cut one is more confident (their IoU is only 0.5)
    assert merged.boxes.tolist() == [[90, 10, 110, 30]]
    assert merged.class_ids.tolist() == [0]


def test_partial_views_nobody_saw_whole_are_kept() -> None:
    # GIVEN an object larger than the shared columns: both tiles see only a part of it
    left = prediction(([40, 10, 100, 30], 0.9, 0))
    right = prediction(([0, 10, 60, 30], 0.8, 0))

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=10)

    assert len(merged) == 2


def test_at_most_max_detections_most_confident_first() -> None:
    confidences = [0.3, 0.9, 0.5, 0.7]
    left = prediction(*[([10 * i, 0, 10 * i + 5, 5], c, 0) for i, c in enumerate(confidences[:2])])
    right = prediction(*[([10 * i + 20, 50, 10 * i + 25, 55], c, 0) for i, c in enumerate(confidences[2:])])

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, max_detections=3)

    assert merged.confidences.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert len(merged.polygons) == 3


def test_an_object_larger_than_a_tile_is_kept_whole_from_the_whole_image_pass() -> None:
    # GIVEN an object at frame x 20..170 (wider than a tile): each tile sees only a cut part,
    # more confidently than the whole-image pass sees it whole
    left = prediction(([20, 10, 100, 60], 0.9, 2))  # cut at the left tile's right edge
    right = prediction(([0, 10, 90, 60], 0.85, 2))  # cut at the right tile's left edge
    whole = prediction(([21, 11, 169, 59], 0.6, 2))

    merged = merge_tiles(TWO_TILES, [left, right], iou=0.7, whole=whole)

    # THEN the whole view is the one detection: the fragments give way to it
    assert merged.boxes.tolist() == [[21, 11, 169, 59]]
    assert merged.class_ids.tolist() == [2]


def test_a_small_object_seen_by_a_tile_and_the_whole_pass_is_kept_once() -> None:
    left = prediction(([10, 10, 30, 30], 0.9, 0))
    whole = prediction(([10.5, 10.5, 30.5, 29.5], 0.5, 0))  # the same object, coarser

    merged = merge_tiles(TWO_TILES, [left, prediction()], iou=0.7, whole=whole)

    assert merged.boxes.tolist() == [[10, 10, 30, 30]] and merged.confidences.tolist() == [pytest.approx(0.9)]


def test_the_whole_pass_adds_nothing_where_the_tiles_saw_better() -> None:
    # GIVEN whole-image detections that fit a tile and hold no partial view: the tiles saw
    # those places at a higher resolution (and found nothing there)
    whole = prediction(([10, 10, 60, 60], 0.9, 3), ([120, 20, 170, 80], 0.8, 1))

    merged = merge_tiles(TWO_TILES, [prediction(), prediction()], iou=0.7, whole=whole)

    assert len(merged) == 0


def test_a_whole_pass_detection_larger_than_a_tile_is_kept_even_where_tiles_saw_nothing() -> None:
    whole = prediction(([5, 5, 175, 95], 0.7, 2))  # 170 px wide: no 100 px tile sees it whole

    merged = merge_tiles(TWO_TILES, [prediction(), prediction()], iou=0.7, whole=whole)

    assert merged.boxes.tolist() == [[5, 5, 175, 95]]


def test_without_a_limit_everything_merged_is_kept_most_confident_first() -> None:
    left = prediction(*[([10 * i, 0, 10 * i + 5, 5], c, 0) for i, c in enumerate([0.3, 0.9, 0.5])])

    merged = merge_tiles(TWO_TILES, [left, prediction()], iou=0.7)

    assert merged.confidences.tolist() == pytest.approx([0.9, 0.5, 0.3])


def test_cap_keeps_the_most_confident_and_counts_what_it_dropped() -> None:
    found = prediction(*[([10 * i, 0, 10 * i + 5, 5], c, 0) for i, c in enumerate([0.3, 0.9, 0.5, 0.7])])

    kept, before = cap(found, 2)
    untouched, nothing = cap(found, 4)

    assert kept.confidences.tolist() == pytest.approx([0.9, 0.7]) and len(kept.polygons) == 2
    assert kept.boxes.tolist() == [[10, 0, 15, 5], [30, 0, 35, 5]]
    assert before == 4
    assert untouched is found and nothing is None


def test_no_detections_anywhere() -> None:
    merged = merge_tiles(TWO_TILES, [prediction(), prediction()], iou=0.7, max_detections=10)

    assert len(merged) == 0 and merged.boxes.shape == (0, 4) and merged.polygons == []


# real content --------------------------------------------------------------------------


class MemoryStore:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None) -> bytes:
        return self.objects[key]

    def put_bytes(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body


@pytest.fixture(scope="module")
def scene() -> tuple[bytes, list[list[float]], list[int]]:
    """A 2560x2560 JPEG with 24 separate shapes of 30 to 60 px radius (the training images'
    scale), and their true boxes and classes."""
    from synth import make_scene

    pixels, instances = make_scene(1, (2560, 2560), 24)
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    boxes = [[*i.polygon.min(axis=0).tolist(), *i.polygon.max(axis=0).tolist()] for i in instances]
    return buffer.tobytes(), boxes, [i.class_id for i in instances]


def iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def found(detections: list[Detection], boxes: list[list[float]], classes: list[int]) -> int:
    """True shapes with a detection of their class whose box is near theirs (IoU > 0.6)."""
    return sum(
        any(d.class_id == cls and iou(d.bbox, box) > 0.6 for d in detections)
        for box, cls in zip(boxes, classes, strict=True)
    )


def run(segmenter: Segmenter, data: bytes, params: JobParams) -> tuple[list[Detection], int | None]:
    store = MemoryStore({"input": data})
    request = SegmentRequest(job_id="job_tiles", bucket="b", key="input", params=params)
    segment_image(request, segmenter=segmenter, store=store, max_image_pixels=50_000_000)
    document = ResultDocument.model_validate_json(store.objects["results/job_tiles/result.json"])
    return document.detections, document.tiles


def test_tiles_find_small_shapes_in_a_large_image_that_the_whole_image_misses(
    demo_segmenter: Segmenter, scene: tuple[bytes, list[list[float]], list[int]]
) -> None:
    # GIVEN a 2560 px image of 24 small shapes and the demo model (trained at 320 px)
    data, boxes, classes = scene

    # WHEN it is segmented as a whole (shrunk 8x to 320) and in 512 px tiles (each at 320)
    whole, whole_tiles = run(demo_segmenter, data, JobParams(annotate=False))
    tiled, tiles = run(demo_segmenter, data, JobParams(tile_size=512, annotate=False))

    # THEN the tiles find most shapes with boxes near the truth in original pixels, once each
    # (no partial duplicates along tile edges), and the whole image at most half of them
    # (the demo model at 320 px finds a third of these 8x-shrunk shapes)
    assert (whole_tiles, tiles) == (None, 36)
    assert found(tiled, boxes, classes) >= len(boxes) - 2, [(d.class_name, d.bbox) for d in tiled]
    assert len(tiled) <= len(boxes) + 2
    assert found(whole, boxes, classes) <= len(boxes) // 2

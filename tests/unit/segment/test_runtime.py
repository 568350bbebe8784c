"""Model code: loading the ONNX export, inference in original-image pixels, area, annotation, encoding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from segjob_core.errors import InvalidParams, ModelUnavailable
from segjob_core.models import JobParams
from segmentation.decode import decode_image
from segmentation.loader import file_sha256
from segmentation.postprocess import Prediction, polygon_area, summarize, to_detections
from segmentation.render import annotate, encode_jpeg
from segmentation.runtime import Letterbox, Segmenter

from .conftest import TEST_CLASSES

LIMIT = 50_000_000
EVERYTHING = JobParams(conf=0.0, max_detections=25, imgsz=320)  # a random model finds nothing above 0


def test_model_info_comes_from_the_weights(segmenter: Segmenter, tiny_model_path: Path) -> None:
    info = segmenter.info

    assert info.name == "tiny-seg"
    assert info.classes == TEST_CLASSES
    assert info.sha256 == file_sha256(tiny_model_path)
    assert (info.backend, info.task) == ("onnxruntime", "segment")
    assert info.imgsz == 640  # built from a yaml, never trained: exported at Ultralytics' default size
    assert info.agnostic_nms is False  # Ultralytics' export records none: class-aware, as its predictor
    assert segmenter.load_ms > 0


def test_the_demo_model_records_its_training_size(demo_segmenter: Segmenter) -> None:
    assert demo_segmenter.info.imgsz == 320
    assert JobParams().for_model(demo_segmenter.info.imgsz).imgsz == 320
    assert JobParams(imgsz=640).for_model(demo_segmenter.info.imgsz).imgsz == 640


def test_the_demo_model_suppresses_across_classes_unless_a_job_says_otherwise(
    demo_segmenter: Segmenter,
) -> None:
    info = demo_segmenter.info

    assert info.agnostic_nms is True  # training/export.py wrote it into the export's metadata
    assert JobParams().for_model(320, info.agnostic_nms).agnostic_nms is True
    assert JobParams(agnostic_nms=False).for_model(320, info.agnostic_nms).agnostic_nms is False


def test_threads_are_set_on_purpose(segmenter: Segmenter) -> None:
    options = segmenter._session.get_session_options()

    assert options.intra_op_num_threads == segmenter.threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_missing_weights_are_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        Segmenter.load(tmp_path / "nope.onnx", threads=1)


def test_weights_with_another_digest_are_unavailable(tiny_model_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="sha256"):
        Segmenter.load(tiny_model_path, threads=1, expected_sha256="0" * 64, warmup=False)


def test_a_file_that_is_not_a_checkpoint_is_unavailable(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not an ONNX model")

    with pytest.raises(ModelUnavailable, match="cannot load"):
        Segmenter.load(junk, threads=1, warmup=False)


@pytest.mark.parametrize("name", ["best.pt", "best.onnx"])
def test_a_pytorch_checkpoint_is_unavailable_naming_the_export_command(
    tmp_path: Path, tiny_model_path: Path, name: str
) -> None:
    # GIVEN the .pt itself, under its own name or renamed as if it were the export
    checkpoint = tmp_path / name
    checkpoint.write_bytes(tiny_model_path.with_suffix(".pt").read_bytes())

    with pytest.raises(ModelUnavailable) as caught:
        Segmenter.load(checkpoint, threads=1)

    message = str(caught.value)
    assert "PyTorch checkpoint" in message
    assert f"yolo export model={name} format=onnx dynamic=True" in message


def test_an_onnx_file_without_ultralytics_metadata_is_unavailable(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    import onnx

    graph = onnx.load(str(tiny_model_path))
    del graph.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(graph, str(bare))

    with pytest.raises(ModelUnavailable, match="no names, imgsz, stride, task in its metadata"):
        Segmenter.load(bare, threads=1)


def test_class_names_size_and_stride_come_from_the_export_metadata(tiny_model_path: Path) -> None:
    import onnx

    graph = onnx.load(str(tiny_model_path))
    props = {p.key: p for p in graph.metadata_props}
    props["names"].value = "{0: 'cat', 1: 'dog'}"
    props["imgsz"].value = "[416, 416]"
    entry = graph.metadata_props.add()
    entry.key, entry.value = "agnostic_nms", "True"
    renamed = tiny_model_path.with_name("renamed.onnx")
    onnx.save(graph, str(renamed))

    info = Segmenter.load(renamed, threads=1, warmup=False).info

    assert (info.classes, info.imgsz, info.name) == ({0: "cat", 1: "dog"}, 416, "renamed")
    assert info.agnostic_nms is True


@pytest.fixture(scope="module")
def static_segmenter(tmp_path_factory: pytest.TempPathFactory) -> Segmenter:
    """An export with Ultralytics' defaults: static batch 1 at 320x320."""
    from tests.support.models import build_seg_onnx

    path = build_seg_onnx(
        tmp_path_factory.mktemp("static") / "static-seg.onnx", TEST_CLASSES, dynamic=False, imgsz=320
    )
    return Segmenter.load(path, threads=1)


def test_a_static_export_runs_at_its_one_size(static_segmenter: Segmenter, bus_jpeg: bytes) -> None:
    image = decode_image(bus_jpeg, max_pixels=LIMIT)
    params = EVERYTHING.model_copy(update={"imgsz": None})

    prediction = static_segmenter.predict(image.pixels, params)

    assert static_segmenter.info.imgsz == 320 and static_segmenter.batch_size(params) == 1
    assert static_segmenter.letterbox(image.pixels, params).input_size == (320, 320)  # square, not 240x320
    assert 0 < len(prediction) <= 25
    with pytest.raises(InvalidParams, match="exported for 320x320 inputs only, not imgsz 640"):
        static_segmenter.check_params(JobParams(imgsz=640))


@pytest.mark.parametrize(
    ("frame", "target", "rect", "resized", "size", "origin"),
    [
        ((960, 640), (320, 320), True, (320, 213), (320, 224), (0, 5)),  # 11 px of padding: 5 on top, 6 below
        ((810, 1080), (320, 320), True, (240, 320), (256, 320), (8, 0)),
        ((960, 640), (320, 320), False, (320, 213), (320, 320), (0, 53)),  # static: the whole square
        ((100, 50), (640, 640), True, (640, 320), (640, 320), (0, 0)),  # upscaled, already a multiple of 32
    ],
)
def test_letterbox_plan(
    frame: tuple[int, int],
    target: tuple[int, int],
    rect: bool,
    resized: tuple[int, int],
    size: tuple[int, int],
    origin: tuple[int, int],
) -> None:
    box = Letterbox.plan(frame, target, stride=32, rect=rect)

    assert (box.resized, box.input_size, (box.left, box.top)) == (resized, size, origin)
    fitted = box.fit(np.full((frame[1], frame[0], 3), 200, np.uint8))
    assert (fitted.shape[1], fitted.shape[0]) == size
    assert (fitted[origin[1], origin[0]] == 200).all()  # the frame starts at the origin, grey around it
    assert box.left == 0 or (fitted[0, 0] == 114).all()
    # and coordinates go back: the input's content corners are the frame's corners
    corners = np.array([[box.left, box.top], [box.left + resized[0], box.top + resized[1]]], np.float32)
    np.testing.assert_allclose(box.points_to_frame(corners), [[0, 0], list(frame)], atol=1e-4)


def test_unknown_class_ids_are_invalid_params(segmenter: Segmenter) -> None:
    with pytest.raises(InvalidParams, match=r"\[7\]"):
        segmenter.check_params(JobParams(classes=[0, 7]))


def test_coordinates_are_in_original_pixels(segmenter: Segmenter, bus_jpeg: bytes) -> None:
    # GIVEN the 810x1080 bus photo, inferred at 320 (so the model sees a 240x320 frame)
    image = decode_image(bus_jpeg, max_pixels=LIMIT)

    # WHEN every candidate is kept
    prediction = segmenter.predict(image.pixels, EVERYTHING)
    detections = to_detections(prediction, scale=image.scale, size=(810, 1080), names=segmenter.names)

    # THEN boxes and polygons lie in the original image, not in the 320 model input
    assert 0 < len(detections) <= 25
    boxes = np.array([d.bbox for d in detections])
    points = np.concatenate([np.array(d.polygon).reshape(-1, 2) for d in detections])
    assert boxes.min() >= 0 and boxes[:, [0, 2]].max() <= 810 and boxes[:, [1, 3]].max() <= 1080
    assert points.min() >= 0 and points[:, 0].max() <= 810 and points[:, 1].max() <= 1080
    assert max(boxes[:, [1, 3]].max(), points[:, 1].max()) > 320
    assert all(d.class_name == TEST_CLASSES[d.class_id] and 0 <= d.confidence <= 1 for d in detections)


def test_classes_and_max_detections_are_applied(segmenter: Segmenter, bus_jpeg: bytes) -> None:
    image = decode_image(bus_jpeg, max_pixels=LIMIT)

    prediction = segmenter.predict(
        image.pixels, EVERYTHING.model_copy(update={"classes": [1], "max_detections": 3})
    )

    assert len(prediction) <= 3
    assert set(prediction.class_ids.tolist()) <= {1}


def test_reduced_frame_coordinates_are_scaled_back() -> None:
    # GIVEN a detection in a frame decoded at 1/4 of a 4000x3000 original
    prediction = Prediction(
        boxes=np.array([[10, 20, 110, 220]], np.float32),
        confidences=np.array([0.87654], np.float32),
        class_ids=np.array([1]),
        polygons=[np.array([[10, 20], [110, 20], [110, 220], [10, 220]], np.float32)],
    )

    # WHEN converted to detections
    (detection,) = to_detections(prediction, scale=(4.0, 4.0), size=(4000, 3000), names=TEST_CLASSES)

    # THEN coordinates and area are those of the original image
    assert detection.bbox == [40.0, 80.0, 440.0, 880.0]
    assert detection.polygon == [[40.0, 80.0], [440.0, 80.0], [440.0, 880.0], [40.0, 880.0]]
    assert detection.area == 400.0 * 800.0
    assert (detection.class_id, detection.class_name, detection.confidence) == (1, "square", 0.8765)


def test_coordinates_are_clipped_to_the_image() -> None:
    prediction = Prediction(
        boxes=np.array([[-3, -1, 60, 45]], np.float32),
        confidences=np.array([0.5], np.float32),
        class_ids=np.array([0]),
        polygons=[np.zeros((0, 2), np.float32)],
    )

    (detection,) = to_detections(prediction, scale=(1.0, 1.0), size=(50, 40), names=TEST_CLASSES)

    assert detection.bbox == [0.0, 0.0, 50.0, 40.0]
    assert (detection.polygon, detection.area) == ([], 0.0)


@pytest.mark.parametrize(
    ("points", "area"),
    [
        ([[0, 0], [4, 0], [4, 3], [0, 3]], 12.0),
        ([[0, 0], [0, 3], [4, 3], [4, 0]], 12.0),  # clockwise: same area
        ([[0, 0], [10, 0], [0, 10]], 50.0),
        ([[0, 0], [2, 0], [2, 2], [1, 1], [0, 2]], 3.0),  # concave
        ([[0, 0], [5, 5]], 0.0),
        ([], 0.0),
    ],
)
def test_polygon_area(points: list[list[float]], area: float) -> None:
    assert polygon_area(np.array(points, np.float32).reshape(-1, 2)) == pytest.approx(area)


def test_summary_counts_per_class() -> None:
    prediction = Prediction(
        boxes=np.tile(np.array([[0, 0, 5, 5]], np.float32), (3, 1)),
        confidences=np.array([0.9, 0.8, 0.7], np.float32),
        class_ids=np.array([1, 0, 1]),
        polygons=[np.zeros((0, 2), np.float32)] * 3,
    )

    summary = summarize(to_detections(prediction, scale=(1, 1), size=(10, 10), names=TEST_CLASSES))

    assert summary.count == 3
    assert summary.by_class == {"circle": 1, "square": 2}


def test_annotated_jpeg_has_the_frame_size(segmenter: Segmenter, bus_jpeg: bytes) -> None:
    image = decode_image(bus_jpeg, max_pixels=LIMIT)
    prediction = segmenter.predict(image.pixels, EVERYTHING)

    canvas = annotate(image.pixels, prediction, segmenter.names)
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(canvas), np.uint8), cv2.IMREAD_COLOR)

    assert decoded is not None
    assert decoded.shape == (1080, 810, 3)
    assert not np.array_equal(canvas, image.pixels)  # something was drawn
    assert np.array_equal(image.pixels, decode_image(bus_jpeg, max_pixels=LIMIT).pixels)  # on a copy


def test_annotate_tints_only_inside_the_mask() -> None:
    frame = np.full((100, 100, 3), 128, np.uint8)
    square = np.array([[20, 20], [60, 20], [60, 60], [20, 60]], np.float32)
    prediction = Prediction(
        boxes=np.array([[10, 10, 80, 80]], np.float32),
        confidences=np.array([0.9], np.float32),
        class_ids=np.array([0]),
        polygons=[square],
    )

    canvas = annotate(frame, prediction, TEST_CLASSES)

    assert not np.array_equal(canvas[40, 40], frame[40, 40])  # inside the polygon: tinted
    assert np.array_equal(canvas[70, 70], frame[70, 70])  # inside the box, outside the mask


def test_nothing_found_draws_nothing(segmenter: Segmenter, bus_jpeg: bytes) -> None:
    image = decode_image(bus_jpeg, max_pixels=LIMIT)
    prediction = segmenter.predict(image.pixels, JobParams(conf=1.0))

    assert len(prediction) == 0
    assert np.array_equal(annotate(image.pixels, prediction, segmenter.names), image.pixels)


def test_trained_model_finds_the_synthetic_shapes(demo_segmenter: Segmenter) -> None:
    """Real content: the demo model on a held-out synthetic image with known instances."""
    from synth import SPLIT_SEEDS, make_image

    pixels, instances = make_image(SPLIT_SEEDS["demo"], 0, size=(640, 960))
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    image = decode_image(buffer.tobytes(), max_pixels=LIMIT)
    prediction = demo_segmenter.predict(image.pixels, JobParams())  # at the model's own size
    detections = to_detections(prediction, scale=image.scale, size=(960, 640), names=demo_segmenter.names)

    def iou(a: list[float], b: list[float]) -> float:
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    matched = 0
    for instance in instances:
        x, y = instance.polygon[:, 0], instance.polygon[:, 1]
        truth = [float(x.min()), float(y.min()), float(x.max()), float(y.max())]
        if any(d.class_id == instance.class_id and iou(d.bbox, truth) > 0.5 for d in detections):
            matched += 1
    found = [(d.class_name, d.confidence) for d in detections]
    confident = [d for d in detections if d.confidence >= 0.5]
    assert matched >= len(instances) - 1 and len(confident) <= len(instances), (
        f"{matched} of {len(instances)} shapes found; detections {found}"
    )


def test_frames_inferred_together_get_their_own_results(segmenter: Segmenter, bus_jpeg: bytes) -> None:
    # GIVEN three different frames (and the batch size a caller keeps to: 2 per pass at 1280)
    image = decode_image(bus_jpeg, max_pixels=LIMIT)
    frames = [
        image.pixels[:512, :512],
        image.pixels[500:1012, 298:810],
        np.ascontiguousarray(image.pixels[::-1, :512][:512]),
    ]
    params = EVERYTHING.model_copy(update={"imgsz": 1280})
    assert (segmenter.batch_size(EVERYTHING), segmenter.batch_size(params)) == (8, 2)

    # WHEN inferred in one call
    together = segmenter.postprocess(segmenter.infer_many(frames, params), params)

    # THEN each result is the one that frame gets alone, in order
    alone = [segmenter.predict(frame, params) for frame in frames]
    assert len(together) == 3
    for mine, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(mine.boxes, single.boxes, atol=0.5)
        assert mine.class_ids.tolist() == single.class_ids.tolist()

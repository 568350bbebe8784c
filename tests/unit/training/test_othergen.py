"""The other generator's set (training/othergen.py): a pure function of the index, every
label on a drawn shape, whole shapes, and nothing of it in the training recipe."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from evaluate import other_section, raster, read_polygons
from othergen import BACKGROUNDS, SPLIT, background_of, make_other_image, write_set
from synth import CLASS_NAMES, HELDOUT_PHOTOS, TRAIN_PHOTOS

FIRST = range(24)


@pytest.fixture(scope="module")
def images() -> list:
    return [make_other_image(i) for i in FIRST]


def test_an_image_is_a_pure_function_of_its_index(images: list) -> None:
    again, instances = make_other_image(3)
    assert np.array_equal(again, images[3][0])
    assert [i.class_id for i in instances] == [i.class_id for i in images[3][1]]


def test_the_set_is_pinned(images: list) -> None:
    # Its figures are compared across sessions: a change to the drawing is a new OTHER_VERSION.
    assert [[inst.class_id for inst in instances] for _, instances in images[:8]] == [
        [3, 1, 1, 3],
        [],
        [0, 1, 0, 0, 2],
        [3, 0],
        [2, 3],
        [3, 3, 0],
        [2, 3, 1],
        [2, 1, 2, 0, 0],
    ]


def test_every_label_is_on_a_shape_that_stands_out(images: list) -> None:
    # Inside each labelled outline the pixels differ from the ring just outside it: the
    # label is where something was drawn, not on bare background.
    checked = 0
    for image, instances in images:
        h, w = image.shape[:2]
        for inst in instances:
            inside = raster(inst.polygon, h, w)
            eroded = cv2.erode(inside.astype(np.uint8), None, iterations=1).astype(bool)
            ring = cv2.dilate(inside.astype(np.uint8), None, iterations=3).astype(bool) & ~inside
            if eroded.sum() < 20:  # too small to tell inside from edge
                continue
            colour_in = image[eroded].mean(axis=0)
            colour_out = image[ring].mean(axis=0)
            assert np.linalg.norm(colour_in - colour_out) > 20
            checked += 1
    assert checked > 30


def test_shapes_are_whole_in_the_frame_and_apart(images: list) -> None:
    classes = set()
    for image, instances in images:
        h, w = image.shape[:2]
        assert 320 <= h <= 800 and 320 <= w <= 800
        masks = [raster(inst.polygon, h, w) for inst in instances]
        for k, inst in enumerate(instances):
            classes.add(inst.class_id)
            assert inst.polygon[:, 0].min() >= 0 and inst.polygon[:, 0].max() <= w
            for other in masks[k + 1 :]:
                assert not np.any(masks[k] & other)
    assert classes == set(range(len(CLASS_NAMES)))


def test_backgrounds_are_pils_and_the_held_out_photos_never_the_training_ones() -> None:
    named = [background_of(i) for i in range(60)]
    assert {name for kind, name in named if kind == "texture"} == set(BACKGROUNDS) - {"photo"}
    photos = {name for kind, name in named if kind == "photo"}
    assert photos and photos <= set(HELDOUT_PHOTOS)
    assert not photos & set(TRAIN_PHOTOS)


def test_the_written_set_is_labelled_for_the_validator(tmp_path: Path) -> None:
    data_yaml = write_set(tmp_path, n=4)
    assert f"test: images/{SPLIT}" in data_yaml.read_text()
    for i in range(4):
        image = cv2.imread(str(tmp_path / "images" / SPLIT / f"{i:05d}.jpg"))
        h, w = image.shape[:2]
        labels = read_polygons(tmp_path / "labels" / SPLIT / f"{i:05d}.txt", h, w)
        assert [cls for cls, _ in labels] == [inst.class_id for inst in make_other_image(i)[1]]
    stamp = (tmp_path / f"{SPLIT}.json").read_text()
    write_set(tmp_path, n=4)  # written once
    assert (tmp_path / f"{SPLIT}.json").read_text() == stamp


def test_the_card_section_is_absent_without_figures_and_states_them_with() -> None:
    assert other_section(None, 320, 0.25) == ""
    figures = {
        "images": 200,
        "objects": 612,
        "mask_map50": 0.5123,
        "mask_map50_95": 0.4,
        "agnostic_mask_map50": 0.7,
        "recall": 0.55,
        "false_positives_per_image": 0.75,
        "per_class": {name: {"mask_map50": 0.5} for name in CLASS_NAMES},
        "recall_by_size": [{"size": "< 16 px", "objects": 100, "recall": 0.2}],
        "false_positives_by_kind": {"background": 100, "wrong_class": 50},
        "false_positives_by_background_name": {
            "noise": {"kind": "texture", "images": 40, "false_positives": 30}
        },
    }
    section = other_section(figures, 320, 0.25)
    assert "## Shapes from another generator" in section
    assert "| 0.512 |" in section and "| 0.75 |" in section
    assert "< 16 px 0.200 (100)" in section
    assert "noise (texture) 30 on 40" in section

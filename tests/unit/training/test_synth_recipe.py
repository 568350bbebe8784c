"""training/synth.py's recipe: the held-out set stays what every card figure was measured on,
whatever the training recipe adds, and clutter is never labelled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import import_photos
import numpy as np
import pytest
import synth

# The held-out set's first 30 images (their sizes, classes and polygons) as the cards since
# the recipe's first version measured them. A change to the training recipe must leave this
# alone; a change to the held-out set is a new benchmark, and every card figure changes meaning.
HELDOUT_LABELS_SHA256 = "d20f3f57b570bd42d027467667273598d6c08ea7a2b819781cf234ce72dc920a"


def test_the_heldout_set_does_not_change_with_the_training_recipe() -> None:
    digest = hashlib.sha256()
    for i in range(30):
        img, instances = synth.make_heldout_image(i)
        labels = [[inst.class_id, inst.polygon.round(1).tolist()] for inst in instances]
        digest.update(json.dumps([img.shape, labels]).encode())
    assert digest.hexdigest() == HELDOUT_LABELS_SHA256


def test_training_and_heldout_backgrounds_do_not_overlap() -> None:
    assert not set(synth.TRAIN_FAMILIES) & set(synth.HELDOUT_FAMILIES)
    assert not set(synth.TRAIN_PHOTOS) & set(synth.HELDOUT_PHOTOS)


def test_every_training_family_draws_a_textured_background() -> None:
    for family in synth.TRAIN_FAMILIES + synth.HELDOUT_FAMILIES:
        img = synth._texture_background(np.random.default_rng(0), family, 120, 160)
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8
        assert img.std() > 3, family  # not a flat colour


def test_clutter_is_drawn_but_never_labelled() -> None:
    for i in range(12):
        flat = np.full((200, 300, 3), 128, np.uint8)
        synth._clutter(np.random.default_rng(i), flat)
        assert (flat != 128).any(axis=2).sum() > 20  # something visible on a flat grey image
        _, labels = synth.make_mixed_image(11, i, negatives=1.0, clutter=1.0)
        assert labels == []  # an image of clutter alone is a hard negative


def test_cut_out_objects_cover_part_of_the_image_with_a_real_things_pixels_and_are_never_labelled() -> None:
    for i in range(12):
        flat = np.full((240, 320, 3), 128, np.uint8)
        synth._paste_objects(np.random.default_rng(i), flat)
        changed = (flat != 128).any(axis=2)
        assert 0 < changed.sum() < changed.size  # their transparent pixels leave the image as it was
        assert len(np.unique(flat[changed].reshape(-1, 3), axis=0)) > 20  # a photo, not a silhouette
        _, labels = synth.make_mixed_image(11, i, negatives=1.0, objects=1.0)
        assert labels == []  # an image of objects alone is a hard negative


def test_the_committed_cutouts_are_the_recipes_with_their_transparency() -> None:
    committed = {path.stem for path in import_photos.CUTOUTS_DIR.glob("*.webp")}
    assert committed == set(synth.OBJECT_CUTOUTS) and len(committed) == len(import_photos.CUTOUTS)
    assert (import_photos.CUTOUTS_DIR / "README.md").is_file()  # their license
    means = set()
    for name in synth.OBJECT_CUTOUTS:
        cut = synth.load_cutout(name)
        assert cut.ndim == 3 and cut.shape[2] == 4 and cut.dtype == np.uint8, name
        assert max(cut.shape[:2]) <= import_photos.CUTOUT_MAX_SIDE, name
        alpha = cut[..., 3]
        assert (alpha == 0).mean() > 0.05 and (alpha > 240).mean() > 0.02, name  # cut out, not a box
        means.add(tuple(cut.reshape(-1, 4).mean(axis=0).round(1)))
    assert len(means) == len(synth.OBJECT_CUTOUTS)  # each its own
    with pytest.raises(FileNotFoundError, match="no cut-out object"):
        synth.load_cutout("not_a_cutout")


def test_the_recipe_is_a_pure_function_of_seed_and_index() -> None:
    a, a_labels = synth.make_mixed_image(11, 5)
    b, b_labels = synth.make_mixed_image(11, 5)
    assert np.array_equal(a, b)
    assert [(x.class_id, x.polygon.tolist()) for x in a_labels] == [
        (x.class_id, x.polygon.tolist()) for x in b_labels
    ]


def test_every_photo_loads_from_an_installed_package_or_the_repository() -> None:
    for name in synth.TRAIN_PHOTOS + synth.HELDOUT_PHOTOS:
        img = synth.load_photo(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, name
        assert min(img.shape[:2]) >= 128 and img.std() > 10, name  # a photo, not a stub


def test_the_committed_photos_are_the_recipes_and_each_is_its_own() -> None:
    repository = synth.REPO_PHOTO_NAMES
    committed = {path.stem for path in import_photos.PHOTOS.glob("*.jpg")}
    assert committed == set(repository)  # none missing, none unused
    assert set(repository) <= set(synth.TRAIN_PHOTOS)
    assert (import_photos.PHOTOS / "README.md").is_file()  # their license
    means = [tuple(synth.load_photo(name).reshape(-1, 3).mean(axis=0).round(1)) for name in repository]
    assert len(set(means)) == len(means) == 40  # 40 different photos, not one copied 40 times
    assert max(max(synth.load_photo(name).shape[:2]) for name in repository) <= import_photos.MAX_SIDE


def test_importing_a_photo_scales_it_down_to_the_longest_side_and_never_up(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    cv2.imwrite(str(big), rng.integers(0, 255, size=(1200, 1600, 3), dtype=np.uint8))
    cv2.imwrite(str(small), rng.integers(0, 255, size=(300, 200, 3), dtype=np.uint8))

    assert import_photos.import_photo(big, tmp_path / "big.jpg") == (600, 800)
    assert import_photos.import_photo(small, tmp_path / "small.jpg") == (300, 200)
    assert cv2.imread(str(tmp_path / "big.jpg")).shape == (600, 800, 3)
    with pytest.raises(FileNotFoundError):
        import_photos.import_photo(tmp_path / "absent.png", tmp_path / "absent.jpg")


def test_training_photos_are_jittered_and_heldout_ones_are_not() -> None:
    plain = [synth._photo_background(np.random.default_rng(i), "china", 240, 320) for i in range(8)]
    jittered = [
        synth._photo_background(np.random.default_rng(i), "china", 240, 320, jitter=True) for i in range(8)
    ]
    assert all(img.shape == (240, 320, 3) for img in plain + jittered)
    # Jitter changes the crops (scale, a quarter turn, the palette) for the same draws.
    assert sum(not np.array_equal(a, b) for a, b in zip(plain, jittered, strict=True)) >= 6
    # Another palette: the mean colour of some jittered crops moves far from any plain crop's.
    plain_means = np.array([img.reshape(-1, 3).mean(axis=0) for img in plain])
    moved = [
        np.min(np.abs(plain_means - img.reshape(-1, 3).mean(axis=0)).max(axis=1)) > 25 for img in jittered
    ]
    assert any(moved)


def test_heldout_background_names_what_the_image_is_drawn_on() -> None:
    kinds = [synth.heldout_background(i) for i in range(60)]
    assert {kind for kind, _ in kinds} == {"photo", "texture"}
    for i, (kind, name) in enumerate(kinds[:12]):
        assert name in (synth.HELDOUT_PHOTOS if kind == "photo" else synth.HELDOUT_FAMILIES)
        if kind == "photo":  # the image is that photo (its crop, before the shapes and the blur)
            img, _ = synth.make_heldout_image(i)
            photo = synth.load_photo(name)
            # The image's mean colour is near its photo's: not another photo's or a texture's.
            others = [synth.load_photo(n) for n in synth.HELDOUT_PHOTOS if n != name]
            distance = abs(img.mean() - photo.mean())
            assert distance < 40 and any(abs(img.mean() - o.mean()) > distance for o in others)


def test_reading_an_image_that_is_not_there_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no image at .*missing\.jpg"):
        import_photos.read_image(tmp_path / "missing.jpg")
    (tmp_path / "not-an-image.jpg").write_text("text")
    with pytest.raises(FileNotFoundError):
        import_photos.read_image(tmp_path / "not-an-image.jpg")
    img = np.random.default_rng(0).integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), img)
    assert np.array_equal(import_photos.read_image(tmp_path / "noise.png"), img)
    with pytest.raises(ValueError, match="has no alpha channel"):  # a cut-out must be one
        import_photos.read_image(tmp_path / "noise.png", alpha=True)


def test_a_jpeg_round_trip_loses_more_at_a_lower_quality() -> None:
    img = cv2.GaussianBlur(
        np.random.default_rng(1).integers(0, 256, size=(64, 96, 3), dtype=np.uint8), (5, 5), 0
    )
    errors = []
    for quality in (40, 95):
        out = synth.jpeg_round_trip(img, quality)
        assert out.shape == img.shape and out.dtype == np.uint8
        errors.append(float(np.abs(out.astype(int) - img.astype(int)).mean()))
    assert errors[0] > errors[1] > 0

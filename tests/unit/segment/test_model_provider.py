"""ModelProvider: baked-in weights or MODEL_URI fetched once to /tmp and verified."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from segjob_core.errors import ModelUnavailable
from segmentation import storage
from segmentation.loader import ModelOpening, file_sha256, open_bundled
from segmentation.service import ModelProvider
from segmentation.settings import SegmentSettings

MODELS_BUCKET = "segjob-models-test"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=MODELS_BUCKET)
        yield client


def provider(tmp_path: Path, **environ: str) -> ModelProvider:
    settings = SegmentSettings.from_env({"MODEL_THREADS": "1", **environ})
    return ModelProvider(settings, fetch=storage.download_model, cache_dir=tmp_path / "models")


def test_model_uri_is_fetched_verified_and_loaded_once(
    s3: Any, tmp_path: Path, tiny_model_path: Path
) -> None:
    s3.upload_file(str(tiny_model_path), MODELS_BUCKET, "seg/custom-seg.onnx")
    models = provider(
        tmp_path,
        MODEL_PATH=str(tmp_path / "not-used.onnx"),
        MODEL_URI=f"s3://{MODELS_BUCKET}/seg/custom-seg.onnx",
        MODEL_SHA256=file_sha256(tiny_model_path).upper(),
    )

    first = models.get()

    assert first.info.name == "custom-seg"
    assert (tmp_path / "models" / "custom-seg.onnx").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["custom-seg.onnx"]  # no partial file left
    s3.delete_object(Bucket=MODELS_BUCKET, Key="seg/custom-seg.onnx")
    assert models.get() is first  # once per process: no second fetch


def test_model_uri_with_other_digest_is_unavailable(s3: Any, tmp_path: Path, tiny_model_path: Path) -> None:
    s3.upload_file(str(tiny_model_path), MODELS_BUCKET, "seg/custom-seg.onnx")
    models = provider(tmp_path, MODEL_URI=f"s3://{MODELS_BUCKET}/seg/custom-seg.onnx", MODEL_SHA256="ab" * 32)

    with pytest.raises(ModelUnavailable, match="expected abab"):
        models.get()
    assert models.loaded is None


def test_missing_model_object_is_unavailable(s3: Any, tmp_path: Path) -> None:
    models = provider(tmp_path, MODEL_URI=f"s3://{MODELS_BUCKET}/seg/absent.onnx")

    with pytest.raises(ModelUnavailable, match="does not exist"):
        models.get()
    assert not list((tmp_path / "models").iterdir())


def test_model_uri_of_a_checkpoint_is_unavailable_before_any_download(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=MODELS_BUCKET, Key="seg/best.pt", Body=b"PK\x03\x04 a large checkpoint")
    models = provider(tmp_path, MODEL_URI=f"s3://{MODELS_BUCKET}/seg/best.pt", MODEL_SHA256="ab" * 32)

    with pytest.raises(ModelUnavailable, match=r"PyTorch checkpoint.*yolo export model=best.pt format=onnx"):
        models.get()
    assert not (tmp_path / "models").exists()  # nothing fetched


@pytest.mark.parametrize("uri", ["https://example.com/best.onnx", "s3://bucket-only", "s3://bucket/folder/"])
def test_malformed_model_uri_is_unavailable(tmp_path: Path, uri: str) -> None:
    with pytest.raises(ModelUnavailable, match="s3://bucket/key"):
        provider(tmp_path, MODEL_URI=uri).get()


def test_baked_in_model_that_is_missing_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        provider(tmp_path, MODEL_PATH=str(tmp_path / "absent.onnx")).get()


# The baked-in model opened on a thread at import (app.py, loader.open_bundled) ----------------


def opened_provider(tmp_path: Path, **environ: str) -> ModelProvider:
    settings = SegmentSettings.from_env({"MODEL_THREADS": "1", **environ})
    opening = open_bundled(settings)
    return ModelProvider(
        settings, fetch=storage.download_model, cache_dir=tmp_path / "models", opening=opening
    )


def test_baked_in_model_opened_early_is_the_one_loaded(tmp_path: Path, tiny_model_path: Path) -> None:
    models = opened_provider(
        tmp_path, MODEL_PATH=str(tiny_model_path), MODEL_SHA256=file_sha256(tiny_model_path)
    )

    segmenter = models.get()

    assert segmenter.info.sha256 == file_sha256(tiny_model_path)
    assert segmenter.threads == 1
    assert models.get() is segmenter


def test_model_uri_is_not_opened_early(tmp_path: Path) -> None:
    settings = SegmentSettings.from_env({"MODEL_URI": "s3://bucket/custom-seg.onnx"})

    assert open_bundled(settings) is None


def test_early_opening_that_failed_is_reported_then_retried(tmp_path: Path, tiny_model_path: Path) -> None:
    path = tmp_path / "late.onnx"
    models = opened_provider(tmp_path, MODEL_PATH=str(path))  # opens before the file is there

    with pytest.raises(ModelUnavailable, match="does not exist"):
        models.get()
    path.write_bytes(tiny_model_path.read_bytes())
    assert models.get().info.name == "late"  # a failure is not remembered: opened again


def test_early_opening_checks_the_expected_digest(tmp_path: Path, tiny_model_path: Path) -> None:
    models = opened_provider(tmp_path, MODEL_PATH=str(tiny_model_path), MODEL_SHA256="ab" * 32)

    with pytest.raises(ModelUnavailable, match="expected abab"):
        models.get()


def test_early_opening_of_a_checkpoint_names_the_export_command(tmp_path: Path) -> None:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"PK\x03\x04 a checkpoint")
    opening = ModelOpening(checkpoint, threads=1)

    with pytest.raises(ModelUnavailable, match=r"yolo export model=best.pt format=onnx"):
        opening.result()

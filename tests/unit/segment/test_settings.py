"""SegmentSettings: defaults and parsing of the environment template.yaml sets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from segmentation.settings import PIL_HARD_PIXEL_LIMIT, SegmentSettings, available_cpus


def test_defaults_need_no_environment() -> None:
    settings = SegmentSettings.from_env({})

    assert settings.model_path.endswith("functions/segment/model/shapes-seg.onnx")
    assert settings.model_uri is None
    assert settings.model_sha256 is None
    assert settings.max_image_pixels == 50_000_000
    assert settings.model_threads == 0
    assert settings.thread_count == available_cpus() >= 1


def test_environment_is_parsed() -> None:
    settings = SegmentSettings.from_env(
        {
            "MODEL_PATH": "/opt/ml/model/best.onnx",
            "MODEL_URI": "s3://models-bucket/seg/best.onnx",
            "MODEL_SHA256": "  ABCDEF0123  ",
            "MAX_IMAGE_PIXELS": "24000000",
            "MODEL_THREADS": "3",
            "UNRELATED": "ignored",
        }
    )

    assert settings.model_path == "/opt/ml/model/best.onnx"
    assert settings.model_uri == "s3://models-bucket/seg/best.onnx"
    assert settings.model_sha256 == "abcdef0123"
    assert settings.max_image_pixels == 24_000_000
    assert settings.thread_count == 3


def test_blank_optional_values_mean_unset() -> None:
    # CloudFormation passes "" for a parameter left empty.
    settings = SegmentSettings.from_env({"MODEL_URI": "", "MODEL_SHA256": " "})

    assert settings.model_uri is None
    assert settings.model_sha256 is None


@pytest.mark.parametrize(
    "environ",
    [
        {"MAX_IMAGE_PIXELS": "0"},
        {"MAX_IMAGE_PIXELS": str(PIL_HARD_PIXEL_LIMIT + 1)},
        {"MAX_IMAGE_PIXELS": "lots"},
        {"MODEL_THREADS": "-1"},
        {"MODEL_PATH": ""},
    ],
)
def test_invalid_values_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SegmentSettings.from_env(environ)

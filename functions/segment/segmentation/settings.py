"""Environment of the segment function, parsed once (names as template.yaml sets them)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from segjob_core.settings import EnvSettings

# Pillow refuses, from the header alone, images above twice its own bomb limit; a larger
# MAX_IMAGE_PIXELS could never be honoured.
PIL_HARD_PIXEL_LIMIT = 178_956_970


def available_cpus() -> int:
    """vCPUs this process may run on (the Lambda memory size decides how many)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# The baked-in model (the demo model's ONNX export) sits beside the code, in the image
# (/var/task/model/) as in the repository (functions/segment/model/): neither sets MODEL_PATH.
BUNDLED_MODEL = str(Path(__file__).resolve().parents[1] / "model" / "shapes-seg.onnx")


class SegmentSettings(EnvSettings):
    model_path: str = Field(BUNDLED_MODEL, alias="MODEL_PATH", min_length=1)
    model_uri: str | None = Field(
        None, alias="MODEL_URI", description="s3://bucket/key of an ONNX model to use instead"
    )
    model_sha256: str | None = Field(None, alias="MODEL_SHA256", description="expected sha256 of the model")
    max_image_pixels: int = Field(50_000_000, alias="MAX_IMAGE_PIXELS", ge=1, le=PIL_HARD_PIXEL_LIMIT)
    model_threads: int = Field(
        0, alias="MODEL_THREADS", ge=0, le=256, description="ONNX Runtime intra-op threads; 0: one per vCPU"
    )
    jobs_table: str | None = Field(
        None,
        alias="JOBS_TABLE",
        description="the jobs table: tiled jobs write their progress there, and every job checks it for a cancel",
    )

    @field_validator("model_uri", "model_sha256", "jobs_table", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # CloudFormation cannot omit a variable conditionally without noise: "" means unset.
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("model_sha256")
    @classmethod
    def _lower_hex(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    @property
    def thread_count(self) -> int:
        return self.model_threads or available_cpus()

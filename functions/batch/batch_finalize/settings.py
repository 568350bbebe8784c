"""Settings of the batch function, parsed from the environment that template.yaml sets."""

from __future__ import annotations

from pydantic import Field

from segjob_core.settings import EnvSettings


class BatchSettings(EnvSettings):
    jobs_table: str = Field(alias="JOBS_TABLE", min_length=1)
    jobs_bucket: str = Field(alias="JOBS_BUCKET", min_length=1)
    batches_table: str = Field(alias="BATCHES_TABLE", min_length=1)
    read_threads: int = Field(
        16, alias="RESULT_READ_THREADS", ge=1, le=64, description="result.json reads at once"
    )

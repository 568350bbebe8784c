"""ApiFunction settings: the env vars template.yaml sets on it."""

from __future__ import annotations

from pydantic import Field

from segjob_core.settings import EnvSettings


class ApiSettings(EnvSettings):
    jobs_table: str = Field(alias="JOBS_TABLE")
    jobs_bucket: str = Field(alias="JOBS_BUCKET")
    job_state_machine_arn: str = Field(alias="JOB_STATE_MACHINE_ARN")
    standard_job_state_machine_arn: str = Field(alias="STANDARD_JOB_STATE_MACHINE_ARN")
    expiry_schedule_group: str = Field(alias="EXPIRY_SCHEDULE_GROUP")
    expiry_scheduler_role_arn: str = Field(alias="EXPIRY_SCHEDULER_ROLE_ARN")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    max_upload_bytes: int = Field(50 * 1024 * 1024, alias="MAX_UPLOAD_BYTES", ge=1)
    upload_window_seconds: int = Field(900, alias="UPLOAD_WINDOW_SECONDS", ge=1)
    retention_days: int = Field(7, alias="RETENTION_DAYS", ge=1)
    allow_loopback_webhooks: bool = Field(False, alias="ALLOW_LOOPBACK_WEBHOOKS")
    result_url_ttl: int = Field(3600, alias="RESULT_URL_TTL", ge=60)
    batches_table: str = Field(alias="BATCHES_TABLE")
    batch_state_machine_arn: str = Field(alias="BATCH_STATE_MACHINE_ARN")
    batch_source_buckets: str = Field(
        "", alias="BATCH_SOURCE_BUCKETS", description="comma-separated buckets a batch may read"
    )

    @property
    def allowed_source_buckets(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.batch_source_buckets.split(",") if name.strip())

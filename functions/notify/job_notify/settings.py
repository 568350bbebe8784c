"""Settings of the notify function, parsed from the environment that template.yaml sets."""

from __future__ import annotations

from pydantic import Field

from segjob_core.settings import EnvSettings

# SigV4 presigned URLs are valid for at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class NotifySettings(EnvSettings):
    webhook_secret_arn: str = Field(
        alias="WEBHOOK_SECRET_ARN",
        min_length=1,
        description="Secrets Manager secret id whose SecretString is the base64 signing key",
    )
    jobs_bucket: str = Field(alias="JOBS_BUCKET", min_length=1)
    webhook_timeout_seconds: float = Field(
        10.0, alias="WEBHOOK_TIMEOUT_SECONDS", gt=0, le=300, description="budget of one delivery attempt"
    )
    allow_loopback_webhooks: bool = Field(
        False, alias="ALLOW_LOOPBACK_WEBHOOKS", description="local mode only: allow http and loopback targets"
    )
    result_url_ttl: int = Field(
        3600,
        alias="RESULT_URL_TTL",
        ge=60,
        le=MAX_PRESIGN_SECONDS,
        description="seconds a result URL is valid",
    )

"""Settings of the notify function, parsed from the environment that template.yaml sets."""

from __future__ import annotations

from pydantic import Field

from segjob_core.signing_store import SigningSettings

# SigV4 presigned URLs are valid for at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class NotifySettings(SigningSettings):
    """The signing settings (master key, state table) and the delivery's own."""

    jobs_bucket: str = Field(alias="JOBS_BUCKET", min_length=1)
    webhook_timeout_seconds: float = Field(
        10.0,
        alias="WEBHOOK_TIMEOUT_SECONDS",
        gt=0,
        le=300,
        description="deadline of one delivery attempt (connect to headers)",
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

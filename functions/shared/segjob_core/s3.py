"""S3 client settings shared by the functions that presign URLs (api, notify)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.config import Config


def presign_config(base: Config | None = None) -> Config:
    """SigV4 presigning for the bucket's regional endpoint.

    Unless virtual addressing is set, botocore presigns for the legacy global endpoint
    (bucket.s3.amazonaws.com), which redirects requests for a new bucket outside us-east-1
    (a presigned request then fails: the signed host differs) and does not serve opt-in
    regions at all. A configured endpoint (local mode) keeps botocore's path style.
    """
    from botocore.config import Config  # noqa: PLC0415 - the functions have botocore; the client need not

    config = Config(signature_version="s3v4")
    if base is not None:
        config = base.merge(config)
    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return config
    return config.merge(Config(s3={"addressing_style": "virtual"}))

"""The notify function's AWS side: S3 presigning (the signing secrets come from
``segjob_core.signing_store``, the receiver is reached by ``job_notify.sender``).

Only adapters call boto3 or open connections; the logic module gets them as plain
objects so tests can swap or spy on them.
"""

from __future__ import annotations

from typing import Any

import boto3

from segjob_core.s3 import presign_config


class S3Presigner:
    """Presigned GET URLs for objects of the jobs bucket (SigV4, fixed lifetime)."""

    def __init__(self, bucket: str, expires_in: int, client: Any | None = None) -> None:
        self._bucket = bucket
        self._expires_in = expires_in
        self.client = client if client is not None else boto3.client("s3", config=presign_config())

    def presign_get(self, key: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._expires_in
        )
        return url

"""Presigned URLs name the bucket's regional endpoint (no AWS call: presigning is local)."""

from __future__ import annotations

from urllib.parse import urlsplit

import boto3
import pytest

from segjob_core.s3 import presign_config


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-7", "us-east-1"])
def test_presigned_get_and_post_use_the_regional_virtual_host(no_endpoint, region: str) -> None:
    s3 = boto3.client("s3", region_name=region, config=presign_config())
    get = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": "jobs-b", "Key": "results/x"}))
    post = urlsplit(s3.generate_presigned_post("jobs-b", "uploads/x/input")["url"])
    # us-east-1's regional endpoint is the global one
    expected = "jobs-b.s3.amazonaws.com" if region == "us-east-1" else f"jobs-b.s3.{region}.amazonaws.com"
    assert get.hostname == post.hostname == expected
    assert "X-Amz-Signature" in get.query


def test_a_configured_endpoint_keeps_path_style(monkeypatch: pytest.MonkeyPatch, no_endpoint) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    s3 = boto3.client("s3", region_name="us-east-1", config=presign_config())
    url = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": "jobs-b", "Key": "k"}))
    assert (url.netloc, url.path) == ("127.0.0.1:5000", "/jobs-b/k")

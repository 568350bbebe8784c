"""Presigned POST policy checks of local mode (S3 enforces them, moto does not), on
policies that boto3 itself generates."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config

from local.middleware import encode_post_upload, parse_post_upload
from local.post_policy import PostUpload, S3Error, check_post_upload

ACCESS_KEY = "AKIDLOCALTEST"
SECRET_KEY = "local-test-secret"
BUCKET = "jobsbucket-local"
KEY = "uploads/job_1/input"


@pytest.fixture(scope="module")
def s3():
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def presign(s3, key: str = KEY, expires: int = 60, **kwargs) -> dict[str, str]:
    fields = {"Content-Type": "image/jpeg", **kwargs.pop("fields", {})}
    conditions = [
        {"Content-Type": "image/jpeg"},
        ["content-length-range", 10, 100],
        *kwargs.pop("conditions", []),
    ]
    return s3.generate_presigned_post(BUCKET, key, Fields=fields, Conditions=conditions, ExpiresIn=expires)[
        "fields"
    ]


def check(fields: dict[str, str], content: bytes = b"x" * 50, now: datetime | None = None) -> None:
    upload = PostUpload(bucket=BUCKET, fields=list(fields.items()), file_content=content)
    check_post_upload(upload, {ACCESS_KEY: SECRET_KEY}.get, "us-east-1", now=now)


def refused(fields: dict[str, str], **kwargs) -> S3Error:
    with pytest.raises(S3Error) as error:
        check(fields, **kwargs)
    return error.value


def test_upload_within_the_policy_is_accepted(s3) -> None:
    check(presign(s3))


def test_size_over_the_range_is_entity_too_large(s3) -> None:
    error = refused(presign(s3), content=b"x" * 101)

    assert (error.status, error.code) == (400, "EntityTooLarge")
    assert error.extra == {"ProposedSize": "101", "MaxSizeAllowed": "100"}
    assert b"<Code>EntityTooLarge</Code>" in error.to_xml()


def test_size_under_the_range_is_entity_too_small(s3) -> None:
    error = refused(presign(s3), content=b"x" * 9)

    assert (error.status, error.code) == (400, "EntityTooSmall")
    assert error.extra["MinSizeAllowed"] == "10"


def test_another_key_fails_the_key_condition(s3) -> None:
    fields = presign(s3) | {"key": "uploads/someone-else/input"}

    error = refused(fields)

    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == f'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{KEY}"]'


def test_another_content_type_fails_its_condition(s3) -> None:
    error = refused(presign(s3) | {"Content-Type": "text/html"})

    assert error.code == "AccessDenied"
    assert '"$Content-Type", "image/jpeg"' in error.message


def test_starts_with_condition(s3) -> None:
    fields = presign(s3, key="uploads/a/${filename}", conditions=[["starts-with", "$key", "uploads/a/"]])

    check(fields | {"key": "uploads/a/anything"})
    assert "starts-with" in refused(fields | {"key": "results/a/x"}).message


def test_expired_policy_is_refused(s3) -> None:
    error = refused(presign(s3, expires=1), now=datetime.now(UTC) + timedelta(seconds=5))

    assert (error.status, error.code, error.message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )


def test_tampered_signature_is_refused(s3) -> None:
    fields = presign(s3)
    fields["x-amz-signature"] = fields["x-amz-signature"][:-1] + (
        "0" if fields["x-amz-signature"][-1] != "0" else "1"
    )

    assert refused(fields).code == "SignatureDoesNotMatch"


def test_tampered_policy_is_refused(s3) -> None:
    fields = presign(s3)
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"] = [
        c if not isinstance(c, list) else ["content-length-range", 0, 10**9] for c in policy["conditions"]
    ]
    fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()

    error = refused(fields, content=b"x" * 1000)

    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")


def test_unknown_access_key_is_refused(s3) -> None:
    fields = presign(s3)
    fields["x-amz-credential"] = fields["x-amz-credential"].replace(ACCESS_KEY, "AKIDUNKNOWN")

    assert refused(fields).code == "InvalidAccessKeyId"


def test_field_without_a_condition_is_refused_except_exempt_ones(s3) -> None:
    fields = presign(s3)

    error = refused(fields | {"x-amz-meta-owner": "me"})
    check(fields | {"x-ignore-tracking": "1"})

    assert error.message == "Invalid according to Policy: Extra input fields: x-amz-meta-owner"


def test_success_action_status_needs_its_condition(s3) -> None:
    allowed = presign(
        s3, fields={"success_action_status": "201"}, conditions=[{"success_action_status": "201"}]
    )

    check(allowed)
    assert "success_action_status" in refused(presign(s3) | {"success_action_status": "201"}).message


def test_missing_key_or_policy(s3) -> None:
    fields = presign(s3)

    assert refused({k: v for k, v in fields.items() if k != "key"}).code == "InvalidArgument"
    no_policy = refused({k: v for k, v in fields.items() if k != "policy"})
    assert (no_policy.status, no_policy.code) == (403, "AccessDenied")


def test_multipart_round_trip_drops_fields_after_the_file(s3) -> None:
    fields = presign(s3)
    boundary = "b0undary"
    body = b""
    for name, value in [*fields.items()]:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"\xff\xd8"
        + b"d" * 20
        + b"\r\n"
    )
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="late"\r\n\r\nx\r\n--{boundary}--\r\n'.encode()
    )

    upload = parse_post_upload(BUCKET, boundary, body)
    again = parse_post_upload(BUCKET, *encode_post_upload(upload))

    assert upload.file_content == b"\xff\xd8" + b"d" * 20
    assert upload.field("late") is None
    assert again == upload
    check_post_upload(upload, {ACCESS_KEY: SECRET_KEY}.get, "us-east-1")

"""S3 notification records become the EventBridge events AWS sends, and the template's
rule pattern selects them."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.events import EventBus, eventbridge_event_from_s3_record, pattern_matches
from local.template import Stack

ROOT = Path(__file__).resolve().parents[3]


def s3_record(key: str, event_name: str = "ObjectCreated:Post", bucket: str = "jobsbucket-local") -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T03:00:00.123Z",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 1234, "eTag": "d41d8cd98f00b204e9800998ecf8427e"},
        },
    }


@pytest.fixture(scope="module")
def rule():
    (rule,) = Stack(ROOT / "template.yaml").event_rules()
    return rule


def test_object_created_event_has_the_aws_shape() -> None:
    event = eventbridge_event_from_s3_record(s3_record("uploads/job%3A1/my+input"), message_id="m-1")

    assert event is not None
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["version"], event["detail-type"], event["source"]) == ("0", "Object Created", "aws.s3")
    assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
    assert event["time"] == "2026-11-22T03:00:00Z"
    assert event["resources"] == ["arn:aws:s3:::jobsbucket-local"]
    detail = event["detail"]
    assert set(detail) == {
        "version",
        "bucket",
        "object",
        "request-id",
        "requester",
        "source-ip-address",
        "reason",
    }
    assert detail["bucket"] == {"name": "jobsbucket-local"}
    assert detail["object"]["key"] == "uploads/job:1/my input"  # S3 notification keys are URL-encoded
    assert (detail["object"]["size"], detail["object"]["etag"]) == (1234, "d41d8cd98f00b204e9800998ecf8427e")
    assert detail["object"]["sequencer"]
    assert detail["reason"] == "PostObject"


@pytest.mark.parametrize(
    ("event_name", "reason"),
    [
        ("ObjectCreated:Put", "PutObject"),
        ("ObjectCreated:Copy", "CopyObject"),
        ("ObjectCreated:CompleteMultipartUpload", "CompleteMultipartUpload"),
    ],
)
def test_reason_follows_the_s3_operation(event_name: str, reason: str) -> None:
    event = eventbridge_event_from_s3_record(s3_record("uploads/j/input", event_name))

    assert event is not None and event["detail"]["reason"] == reason


def test_same_message_gives_the_same_event_id() -> None:
    first = eventbridge_event_from_s3_record(s3_record("uploads/j/input"), message_id="m-1")
    again = eventbridge_event_from_s3_record(s3_record("uploads/j/input"), message_id="m-1")
    other = eventbridge_event_from_s3_record(s3_record("uploads/j/input"), message_id="m-2")

    assert first == again
    assert first is not None and other is not None and first["id"] != other["id"]


def test_delete_is_an_object_deleted_event() -> None:
    event = eventbridge_event_from_s3_record(s3_record("uploads/j/input", "ObjectRemoved:Delete"))

    assert event is not None and event["detail-type"] == "Object Deleted"
    assert "size" not in event["detail"]["object"]


@pytest.mark.parametrize(
    ("key", "event_name", "bucket", "matches"),
    [
        ("uploads/job_1/input", "ObjectCreated:Post", "jobsbucket-local", True),
        ("uploads/job_1/input", "ObjectCreated:Put", "jobsbucket-local", True),
        ("results/job_1/result.json", "ObjectCreated:Put", "jobsbucket-local", False),
        ("uploads/job_1/input", "ObjectRemoved:Delete", "jobsbucket-local", False),
        ("uploads/job_1/input", "ObjectCreated:Put", "other-bucket", False),
    ],
)
def test_template_rule_selects_uploads_only(rule, key, event_name, bucket, matches) -> None:
    event = eventbridge_event_from_s3_record(s3_record(key, event_name, bucket))

    assert event is not None and pattern_matches(rule.pattern, event) is matches


def test_bus_records_deliveries_and_returns_target_ids(rule) -> None:
    started = []
    bus = EventBus([(rule, lambda event: started.append(event) or f"arn:execution:{len(started)}")])
    upload = eventbridge_event_from_s3_record(s3_record("uploads/job_1/input"))
    result = eventbridge_event_from_s3_record(s3_record("results/job_1/result.json", "ObjectCreated:Put"))

    delivered = bus.put_event(upload)
    ignored = bus.put_event(result)

    assert [d.target_id for d in delivered] == ["arn:execution:1"]
    assert [d.matched for d in ignored] == [False]
    assert started == [upload]
    assert bus.wait_for_key("results/job_1/result.json", timeout=0.1)[0].matched is False
    with pytest.raises(TimeoutError):
        bus.wait_for_key("uploads/never", timeout=0.1)

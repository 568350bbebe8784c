"""Batches end to end in local mode: POST /batches, uploads, our batch state machine (a
Distributed Map in moto's ASL interpreter) running the real segment function per item, the
batch function's manifest and COCO export, and the signed batch.completed webhook."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from pycocotools.coco import COCO
from synth import make_image  # training/ is on the test path (pyproject)

from segjob.client import batch_finished
from segjob_core import keys
from segjob_core.batches import BatchFile, BatchStatus, ManifestLine
from segjob_core.models import EventType, JobStatus, ResultDocument
from tests.conftest import BATCH_SOURCE_BUCKET
from tests.support.local_mode import gated_segment, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


def jpeg(pixels: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buffer.tobytes()


def distinct_images() -> dict[str, bytes]:
    """20 small images: crops and resizes of the samples, and generated shapes."""
    images = {}
    for sample in SAMPLES:
        pixels = cv2.imread(str(sample))
        height, width = pixels.shape[:2]
        images[f"{sample.stem}-half.jpg"] = jpeg(cv2.resize(pixels, (width // 2, height // 2)))
        images[f"{sample.stem}-left.jpg"] = jpeg(pixels[: height // 2, : width // 2])
        images[f"{sample.stem}-right.jpg"] = jpeg(pixels[height // 2 :, width // 2 :])
        images[f"{sample.stem}-third.jpg"] = jpeg(cv2.resize(pixels, (width // 3, height // 3)))
    for index in range(8):
        pixels, _ = make_image(20261201, index, size=(256, 320))
        images[f"generated-{index}.jpg"] = jpeg(pixels)
    return images


def png_of_size(width: int, height: int) -> bytes:
    """A valid PNG of width x height (black, grey): tiny on disk, too many pixels to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = zlib.compress(b"\0" * (width + 1) * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


BAD = {  # name -> (content type, the error code its item fails with)
    "truncated.jpg": ("image/jpeg", "InvalidImage"),
    "text.jpg": ("image/jpeg", "InvalidImage"),
    "huge.png": ("image/png", "ImageTooLarge"),
    "never-uploaded.jpg": ("image/jpeg", "InputMissing"),
}
REPEATS = 10  # 20 distinct images x 10 + 4 bad ones = 204 items


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    return distinct_images()


@pytest.fixture(scope="module")
def batch_run(runtime, client, receiver, images):
    """One batch of 204 items, uploaded and run to completion; its webhook event."""
    names = [f"{i:03d}-{name}" for i in range(REPEATS) for name in images]
    bodies = {name: images[name.split("-", 1)[1]] for name in names}
    bodies["truncated.jpg"] = SAMPLES[0].read_bytes()[:2000]
    bodies["text.jpg"] = b"this is not an image at all" * 10
    bodies["huge.png"] = png_of_size(10_000, 6_000)  # 60 MP: above the 50 MP default
    files = [BatchFile(filename=name, content_length=len(body)) for name, body in bodies.items()]
    files += [BatchFile(filename="never-uploaded.jpg")]
    for file in files:
        if file.filename in BAD:
            file.content_type = BAD[file.filename][0]

    created = client.create_batch(files=files, webhook_url=receiver.url, params={"outputs": ["coco"]})
    assert created.status is BatchStatus.AWAITING_UPLOAD and created.total == len(files) == 204
    assert created.uploads and len(created.uploads) == 204
    session = requests.Session()
    for upload in created.uploads:
        if upload.filename in bodies:
            form = upload.upload
            response = session.post(
                form.url,
                data=form.fields,
                files={"file": (upload.filename, bodies[upload.filename])},
                timeout=30,
            )
            assert response.status_code in (200, 201, 204), response.text
    # the uploads start nothing: the batch runs when started
    assert client.get_batch(created.batch_id).counts == {JobStatus.AWAITING_UPLOAD: 204}

    started = client.start_batch(created.batch_id)
    assert started.status is BatchStatus.RUNNING
    progress: list[float] = []
    batch = client.wait_batch(
        created.batch_id, timeout=600, on_progress=lambda b: progress.append(b.progress)
    )
    event = receiver.wait_for_batch(created.batch_id, timeout=60)
    return created, batch, event, progress, bodies


def test_batch_items_end_succeeded_or_failed_with_codes(batch_run, client) -> None:
    created, batch, _, progress, _ = batch_run
    assert batch.status is BatchStatus.COMPLETED
    assert batch.counts == {JobStatus.SUCCEEDED: 200, JobStatus.FAILED: 4}
    assert batch.progress == 1.0 and progress == sorted(progress)
    assert batch.timings and batch.timings.images_per_minute and batch.timings.segment_ms_median
    assert batch.started_at and batch.finished_at
    # each item is an ordinary job: the usual status, error code, results under its id
    by_name = {upload.filename: upload.job_id for upload in created.uploads or []}
    for name, (_, code) in BAD.items():
        job = client.get_job(by_name[name])
        assert job.status is JobStatus.FAILED and job.error and job.error.code == code, (name, job.error)
    job = client.get_job(by_name["000-generated-0.jpg"])
    assert job.status is JobStatus.SUCCEEDED and job.result and job.result.result_url
    assert job.webhook is None  # per-item webhooks are off


def test_manifest_lists_every_item_in_order(batch_run, client, tmp_path) -> None:
    created, batch, _, _, _ = batch_run
    files = client.batch_result_files(batch)
    lines = [ManifestLine.model_validate_json(line) for line in files["manifest.jsonl"].decode().splitlines()]

    assert [line.index for line in lines] == list(range(204))
    assert [line.job_id for line in lines] == [u.job_id for u in created.uploads or []]
    failed = {line.name: line.error.code for line in lines if line.status is JobStatus.FAILED and line.error}
    assert failed == {name: code for name, (_, code) in BAD.items()}
    for line in lines:
        if line.status is JobStatus.SUCCEEDED:
            assert line.result_key == keys.result_key(line.job_id)
            assert line.output_keys == {"coco": keys.output_key(line.job_id, "coco")}
            assert line.detections is not None and line.coco_image_id


def test_coco_export_loads_in_pycocotools_and_equals_single_job_results(
    batch_run, client, images, tmp_path
) -> None:
    _, batch, _, _, _ = batch_run
    path = tmp_path / "coco.json"
    path.write_bytes(client.batch_result_files(batch)["coco.json"])
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 200

    # GIVEN each distinct image run once as a single job
    single: dict[str, ResultDocument] = {}
    for name, body in images.items():
        source = tmp_path / name
        source.write_bytes(body)
        job = client.wait(client.submit(source, params={"outputs": ["coco"]}).job_id, timeout=120)
        assert job.status is JobStatus.SUCCEEDED, job.error
        single[name] = ResultDocument.model_validate_json(client.result_files(job)["result.json"])

    # THEN every batch item's annotations are that image's single-job detections
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    found = 0
    for image in coco.loadImgs(coco.getImgIds()):
        expected = single[image["file_name"].split("-", 1)[1]]
        assert (image["width"], image["height"]) == (expected.image.width, expected.image.height)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert len(annotations) == len(expected.detections)
        for annotation, detection in zip(annotations, expected.detections, strict=True):
            assert names[annotation["category_id"]] == detection.class_name
            x, y, w, h = annotation["bbox"]
            assert [x, y, x + w, y + h] == pytest.approx(detection.bbox, abs=0.02)
            assert annotation["score"] == pytest.approx(detection.confidence, abs=1e-4)
            assert coco.annToMask(annotation).sum() == pytest.approx(detection.area, rel=0.1, abs=20)
        found += len(annotations)
    assert found > 200  # the images have shapes the demo model finds


def test_one_signed_batch_completed_webhook(batch_run, client, receiver) -> None:
    created, batch, event, _, _ = batch_run
    assert event.type is EventType.BATCH_COMPLETED
    assert event.data.batch_id == created.batch_id and event.data.status is BatchStatus.COMPLETED
    assert event.data.counts == batch.counts
    assert event.data.results and requests.get(event.data.results.manifest_url, timeout=30).status_code == 200
    assert len([e for e in receiver.batch_events if e.data.batch_id == created.batch_id]) == 1
    # and no per-item events
    assert not [e for e in receiver.events if e.data.job_id in {u.job_id for u in created.uploads or []}]
    delivered = wait_for(
        lambda: (b := client.get_batch(created.batch_id)).webhook.status == "DELIVERED" and b
    )
    assert delivered.webhook.delivered_at


def test_prefix_batch_over_a_bucket_the_stack_may_read(runtime, client, images) -> None:
    # GIVEN a bucket named by BatchSourceBuckets with images under a prefix (and one elsewhere)
    s3 = runtime.boto3_client("s3")
    s3.create_bucket(Bucket=BATCH_SOURCE_BUCKET)
    chosen = dict(list(images.items())[:6])
    for name, body in chosen.items():
        s3.put_object(Bucket=BATCH_SOURCE_BUCKET, Key=f"survey/day-1/{name}", Body=body)
    s3.put_object(Bucket=BATCH_SOURCE_BUCKET, Key="survey/day-1/notes.txt", Body=b"not an image")
    s3.put_object(Bucket=BATCH_SOURCE_BUCKET, Key="other/elsewhere.jpg", Body=next(iter(images.values())))

    # WHEN a batch names the prefix
    created = client.create_batch(source={"bucket": BATCH_SOURCE_BUCKET, "prefix": "survey/day-1/"})
    assert created.status is BatchStatus.RUNNING and created.total == 7 and not created.uploads
    batch = client.wait_batch(created.batch_id, timeout=120)

    # THEN every object under it is an item, images succeed, the text file fails with a code
    assert batch.status is BatchStatus.COMPLETED
    assert batch.counts == {JobStatus.SUCCEEDED: 6, JobStatus.FAILED: 1}
    lines = [
        ManifestLine.model_validate_json(line)
        for line in client.batch_result_files(batch)["manifest.jsonl"].decode().splitlines()
    ]
    assert {line.name for line in lines} == {f"survey/day-1/{n}" for n in chosen} | {"survey/day-1/notes.txt"}
    [failed] = [line for line in lines if line.status is JobStatus.FAILED]
    assert failed.name.endswith("notes.txt") and failed.error and failed.error.code == "InvalidImage"
    # AND a manifest of keys works the same way
    s3.put_object(Bucket=BATCH_SOURCE_BUCKET, Key="lists/one.txt", Body=b"other/elsewhere.jpg\n")
    listed = client.create_batch(source={"bucket": BATCH_SOURCE_BUCKET, "manifestKey": "lists/one.txt"})
    assert client.wait_batch(listed.batch_id, timeout=120).counts == {JobStatus.SUCCEEDED: 1}


def test_a_bucket_outside_batch_source_buckets_is_refused(runtime, client) -> None:
    from segjob import SegjobError

    runtime.boto3_client("s3").create_bucket(Bucket="segjob-test-not-allowed")
    with pytest.raises(SegjobError) as refused:
        client.create_batch(source={"bucket": "segjob-test-not-allowed", "prefix": ""})
    assert refused.value.status == 403 and refused.value.code == "SourceNotAllowed"
    with pytest.raises(SegjobError) as empty:
        client.create_batch(source={"bucket": BATCH_SOURCE_BUCKET, "prefix": "nothing-here/"})
    assert empty.value.status == 400 and empty.value.code == "InvalidSource"


def test_cancel_of_a_running_batch(runtime, client, receiver, images, tmp_path) -> None:
    # GIVEN the segment function held before it reads its input, and a running batch of 30
    gate = tmp_path / "open"
    body = next(iter(images.values()))
    with gated_segment(runtime, gate):
        created = client.create_batch(
            files=[BatchFile(filename=f"{i}.jpg", content_length=len(body)) for i in range(30)],
            webhook_url=receiver.url,
        )
        for upload in created.uploads or []:
            form = upload.upload
            requests.post(form.url, data=form.fields, files={"file": ("x.jpg", body)}, timeout=30)
        client.start_batch(created.batch_id)
        wait_for(
            lambda: client.get_batch(created.batch_id).counts.get(JobStatus.RUNNING),
            timeout=60,
            interval=0.05,
        )

        # WHEN it is canceled while items run
        canceled = client.cancel_batch(created.batch_id)
        gate.touch()
        batch = client.wait_batch(created.batch_id, timeout=120)

    # THEN every item is CANCELED: the running ones keep no result, the others never ran
    assert canceled.status is BatchStatus.CANCELED
    assert batch.status is BatchStatus.CANCELED and batch.finished_at
    assert batch.counts == {JobStatus.CANCELED: 30}
    s3 = runtime.boto3_client("s3")
    for upload in created.uploads or []:
        job = client.get_job(upload.job_id)
        assert job.status is JobStatus.CANCELED and job.result is None
    started = [u.job_id for u in created.uploads or [] if client.get_job(u.job_id).started_at]
    assert len(started) < 30  # items not started never ran
    for job_id in {u.job_id for u in created.uploads or []} - set(started):
        listing = s3.list_objects_v2(Bucket=runtime.bucket, Prefix=f"results/{job_id}/")
        assert not listing.get("Contents")
    # AND one batch.completed event says so; a second cancel is a conflict
    event = receiver.wait_for_batch(created.batch_id, timeout=60)
    assert event.data.status is BatchStatus.CANCELED and batch_finished(event.data)
    from segjob import SegjobError

    with pytest.raises(SegjobError) as again:
        client.cancel_batch(created.batch_id)
    assert again.value.status == 409


def test_resuming_uploads_renews_only_the_missing_forms(client, images) -> None:
    body = next(iter(images.values()))
    created = client.create_batch(
        files=[BatchFile(filename=f"{i}.jpg", content_length=len(body)) for i in range(3)]
    )
    first = (created.uploads or [])[0]
    requests.post(first.upload.url, data=first.upload.fields, files={"file": ("x.jpg", body)}, timeout=30)

    renewed = client.renew_batch_uploads(created.batch_id)

    assert [u.job_id for u in renewed.uploads] == [u.job_id for u in (created.uploads or [])[1:]]
    client.cancel_batch(created.batch_id)  # never started: nothing runs
    assert client.get_batch(created.batch_id).counts == {JobStatus.CANCELED: 3}

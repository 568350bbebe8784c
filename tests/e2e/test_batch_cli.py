"""`segjob batch ...` as a subprocess against local mode, and a resumed submission through
the client library: only what had not arrived is uploaded again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from segjob import Client
from segjob.batch_cli import state_file
from segjob.batches import submit_batch
from segjob_core.batches import Batch, BatchStatus, ManifestLine, item_upload_key
from segjob_core.models import JobStatus
from tests.e2e.test_cli import EXIT_JOB_FAILED, EXIT_OK, EXIT_USAGE, SAMPLES, clean_env, segjob

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(runtime) -> dict[str, str]:
    return clean_env(SEGJOB_API_URL=runtime.api_url)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for sample in SAMPLES:
        shutil.copy(sample, folder / sample.name)
        shutil.copy(sample, folder / "more" / f"again-{sample.name}")
    (folder / "notes.txt").write_text("not an image: a folder's other files are left out")
    return folder


def test_batch_submit_wait_out_then_status_list_results(env, photos, tmp_path) -> None:
    out = tmp_path / "out"
    done = segjob("batch", "submit", photos, "--wait", "--out", out, "--outputs", "coco", "--json", env=env)

    assert done.returncode == EXIT_OK, done.stderr
    batch = Batch.model_validate_json(done.stdout.splitlines()[-1])
    assert batch.status is BatchStatus.COMPLETED and batch.counts == {JobStatus.SUCCEEDED: 6}
    lines = [
        ManifestLine.model_validate_json(line) for line in (out / "manifest.jsonl").read_text().splitlines()
    ]
    assert sorted(line.name for line in lines) == sorted(
        [s.name for s in SAMPLES] + [f"again-{s.name}" for s in SAMPLES]
    )
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == 6 and coco["annotations"]

    status = segjob("batch", "status", batch.batch_id, env=env)
    assert status.returncode == EXIT_OK and "COMPLETED" in status.stdout and "SUCCEEDED 6" in status.stdout
    listing = segjob("batch", "list", "--json", env=env)
    assert batch.batch_id in {json.loads(line)["batchId"] for line in listing.stdout.splitlines()}
    every = tmp_path / "every"
    results = segjob("batch", "results", batch.batch_id, "--out", every, "--all", env=env)
    assert results.returncode == EXIT_OK, results.stderr
    assert all((every / line.job_id / "result.json").is_file() for line in lines)
    assert all((every / line.job_id / "coco.json").is_file() for line in lines)


def test_batch_submit_refuses_a_folder_without_images_and_a_failed_item_exits_1(env, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    refused = segjob("batch", "submit", tmp_path / "empty", env=env)
    assert refused.returncode == EXIT_USAGE and "no image files" in refused.stderr

    big = tmp_path / "big"
    big.mkdir()
    shutil.copy(SAMPLES[0], big / "fine.jpg")
    (big / "broken.jpg").write_bytes(SAMPLES[0].read_bytes()[:64])  # a JPEG header, then nothing
    failed = segjob("batch", "submit", big, "--wait", "--out", tmp_path / "out", env=env)
    assert failed.returncode == EXIT_JOB_FAILED, failed.stderr
    assert "1/2 succeeded" in failed.stderr


def test_an_interrupted_submission_resumes_with_only_the_missing_uploads(runtime, photos) -> None:
    paths = sorted(p for p in photos.rglob("*.jpg"))
    state = state_file(photos.parent, paths)
    client = Client(runtime.api_url)

    class Interrupted(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    # GIVEN a submission interrupted after two uploads
    with pytest.raises(Interrupted):
        submit_batch(client, paths, state_file=state, concurrency=1, on_upload=stop_after_two)
    batch_id = json.loads(state.read_text())["batchId"]
    assert client.get_batch(batch_id).status is BatchStatus.AWAITING_UPLOAD
    missing = len(client.renew_batch_uploads(batch_id).uploads)
    assert 0 < missing < 6

    # WHEN it runs again
    batch = submit_batch(client, paths, state_file=state)
    batch = client.wait_batch(batch.batch_id, timeout=300)

    # THEN the same batch ran every image, and each file was uploaded exactly once
    assert batch.batch_id == batch_id and batch.counts == {JobStatus.SUCCEEDED: 6}
    s3 = runtime.boto3_client("s3")
    for line in client.batch_result_files(batch)["manifest.jsonl"].decode().splitlines():
        key = item_upload_key(ManifestLine.model_validate_json(line).job_id)
        versions = s3.list_object_versions(Bucket=runtime.bucket, Prefix=key).get("Versions", [])
        assert len(versions) == 1, key
    # AND a third run sends nothing and returns the started batch
    assert submit_batch(client, paths, state_file=state).batch_id == batch_id

"""Submitting a batch of local files, resumably.

    from segjob import Client
    from segjob.batches import submit_batch
    batch = submit_batch(Client(url), sorted(Path("photos").glob("*.jpg")), state_file=Path("photos.batch.json"))
    batch = client.wait_batch(batch.batch_id)
    client.batch_result_files(batch)  # manifest.jsonl, coco.json

The state file records the batch and which local file is which item. Run again after an
interruption, it finds the batch: if it has not started, only the files whose upload did not
arrive are sent (with fresh forms), then it starts; if it runs or ran, nothing is sent again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from segjob.client import Client, SegjobError, image_content_type
from segjob_core.batches import Batch, BatchFile, BatchItemUpload, BatchStatus

STATE_VERSION = 1


def _fingerprint(paths: Sequence[Path]) -> list[dict[str, Any]]:
    return [{"path": str(path.resolve()), "size": path.stat().st_size} for path in paths]


def _load_state(state_file: Path, files: list[dict[str, Any]]) -> str | None:
    """The batch id recorded for exactly these files, or None."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if state.get("version") != STATE_VERSION or state.get("files") != files:
        return None
    return str(state["batchId"])


def submit_batch(
    client: Client,
    paths: Sequence[Path],
    *,
    state_file: Path,
    params: dict[str, Any] | None = None,
    webhook_url: str | None = None,
    metadata: dict[str, Any] | None = None,
    concurrency: int = 8,
    on_upload: Callable[[int, int], None] | None = None,
) -> Batch:
    """Create (or resume) the batch of ``paths``, upload what is missing, start it.
    ``on_upload(done, total)`` after each upload (``done`` counts those already there)."""
    paths = [Path(p) for p in paths]
    content_types = {path: image_content_type(path) for path in paths}  # InvalidInput before any request
    files = _fingerprint(paths)
    batch_id = _load_state(state_file, files)
    by_name: dict[str, Path] = {}
    if batch_id is not None:
        batch = client.get_batch(batch_id)
        if batch.status is not BatchStatus.AWAITING_UPLOAD:
            return batch  # started before: nothing to send again
        uploads = client.renew_batch_uploads(batch_id).uploads
        recorded = json.loads(state_file.read_text(encoding="utf-8"))["jobs"]
        by_name = {job_id: Path(path) for job_id, path in recorded.items()}
    else:
        created = client.create_batch(
            files=[
                BatchFile(
                    filename=path.name, content_type=content_types[path], content_length=path.stat().st_size
                )
                for path in paths
            ],
            params=params,
            webhook_url=webhook_url,
            metadata=metadata,
        )
        batch_id = created.batch_id
        uploads = created.uploads or []
        by_name = {upload.job_id: path for upload, path in zip(uploads, paths, strict=True)}
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "version": STATE_VERSION,
            "batchId": batch_id,
            "files": files,
            "jobs": {job_id: str(path) for job_id, path in by_name.items()},
        }
        state_file.write_text(json.dumps(state, indent=1), encoding="utf-8")
    done = len(paths) - len(uploads)
    if on_upload:
        on_upload(done, len(paths))

    def send(upload: BatchItemUpload) -> None:
        client.upload(upload, by_name[upload.job_id])

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch-upload")
    try:
        for _ in pool.map(send, uploads):
            done += 1
            if on_upload:
                on_upload(done, len(paths))
    finally:  # interrupted: the uploads not begun are dropped (a re-run sends them)
        pool.shutdown(wait=True, cancel_futures=True)
    try:
        return client.start_batch(batch_id)
    except SegjobError as exc:
        if exc.status == 409:  # started meanwhile (another run of the same command)
            return client.get_batch(batch_id)
        raise

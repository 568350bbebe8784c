"""Finalize a batch whose items are all terminal: manifest.jsonl (one line per item, in
submission order), coco.json (every succeeded item's detections, one COCO dataset), counts
and timings on the batch, and the claim of its one batch.completed event."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from segjob_core.batches import BatchTimings, ManifestLine, coco_key, manifest_key
from segjob_core.coco import CocoImage, coco_dataset
from segjob_core.jobs import iso, job_error, utc_now
from segjob_core.models import EventType, JobStatus, ResultDocument, SegmentOutcome


class BatchStore(Protocol):
    def batch(self, batch_id: str) -> dict[str, Any]: ...

    def items(self, batch_id: str) -> list[dict[str, Any]]: ...

    def read_all(self, keys: Sequence[str]) -> list[bytes]: ...

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def complete(self, batch_id: str, values: dict[str, str]) -> dict[str, Any]: ...


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def timings(
    started_at: str | None, finished: datetime, terminal: int, segment_ms: Sequence[float]
) -> BatchTimings:
    elapsed = (finished - datetime.fromisoformat(started_at)).total_seconds() * 1000 if started_at else None
    return BatchTimings(
        elapsed_ms=round(elapsed, 1) if elapsed is not None else None,
        images_per_minute=round(terminal / (elapsed / 60_000), 1) if elapsed else None,
        segment_ms_median=round(statistics.median(segment_ms), 1) if segment_ms else None,
        segment_ms_p90=round(p90(segment_ms), 1) if segment_ms else None,
    )


def finalize(batch_id: str, store: BatchStore) -> dict[str, Any]:
    batch = store.batch(batch_id)
    items = sorted(store.items(batch_id), key=lambda item: int(item["batchIndex"]))
    succeeded = [item for item in items if item["status"] == JobStatus.SUCCEEDED and item.get("result")]
    outcomes = {item["jobId"]: SegmentOutcome.model_validate_json(item["result"]) for item in succeeded}
    documents = [
        ResultDocument.model_validate_json(body)
        for body in store.read_all([outcomes[item["jobId"]].result_key for item in succeeded])
    ]
    image_ids = {item["jobId"]: image_id for image_id, item in enumerate(succeeded, start=1)}

    lines = []
    for item in items:
        outcome = outcomes.get(item["jobId"])
        lines.append(
            ManifestLine(
                index=int(item["batchIndex"]),
                job_id=item["jobId"],
                name=item.get("filename", item["jobId"]),
                status=JobStatus(item["status"]),
                error=job_error(item),
                detections=outcome.summary.count if outcome else None,
                by_class=outcome.summary.by_class if outcome else None,
                result_key=outcome.result_key if outcome else None,
                annotated_key=outcome.annotated_key if outcome else None,
                output_keys=outcome.output_keys if outcome else None,
                coco_image_id=image_ids.get(item["jobId"]),
            ).model_dump_json(by_alias=True, exclude_none=True)
        )
    store.put(manifest_key(batch_id), "".join(line + "\n" for line in lines).encode(), "application/x-ndjson")

    classes = documents[0].model.classes if documents else {}
    coco = coco_dataset(
        [
            CocoImage(item.get("filename", item["jobId"]), doc.image, doc.detections)
            for item, doc in zip(succeeded, documents, strict=True)
        ],
        classes,
        description=f"segjob batch {batch_id}",
    )
    store.put(coco_key(batch_id), json.dumps(coco, separators=(",", ":")).encode(), "application/json")

    now = utc_now()
    counts = Counter(item["status"] for item in items)
    terminal = sum(n for status, n in counts.items() if JobStatus(status).terminal)
    batch_timings = timings(
        batch.get("startedAt"), now, terminal, [o.timings.total for o in outcomes.values()]
    )
    written = store.complete(
        batch_id,
        {
            "counts": json.dumps(dict(counts)),
            "timings": batch_timings.model_dump_json(by_alias=True, exclude_none=True),
            "manifestKey": manifest_key(batch_id),
            "cocoKey": coco_key(batch_id),
            "finishedAt": iso(now),
            "updatedAt": iso(now),
            "webhookEvent": EventType.BATCH_COMPLETED.value,
        },
    )
    return {
        "type": EventType.BATCH_COMPLETED.value,
        "item": written,
        "hasWebhook": bool(written.get("hasWebhook", {}).get("BOOL")),
    }

"""The batch function's aggregation, against an in-memory store: manifest lines in
submission order, the COCO file of the succeeded items, counts, timings, and the claim."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from batch_finalize.logic import finalize, p90
from segjob_core.models import (
    Detection,
    ImageInfo,
    ModelInfo,
    ResultDocument,
    ResultSummary,
    SegmentOutcome,
    Timings,
)

MODEL = ModelInfo(name="m", sha256="0" * 64, backend="onnxruntime", classes={0: "circle", 1: "star"})


def result(job_id: str, detections: int, total_ms: float) -> tuple[SegmentOutcome, ResultDocument]:
    found = [
        Detection(
            class_id=i % 2,
            class_name=MODEL.classes[i % 2],
            confidence=0.9,
            bbox=[10.0 * i, 5.0, 10.0 * i + 8, 13.0],
            polygon=[[10.0 * i, 5.0], [10.0 * i + 8, 5.0], [10.0 * i + 8, 13.0]],
            area=32.0,
        )
        for i in range(detections)
    ]
    summary = ResultSummary(count=detections, by_class={"circle": detections})
    image = ImageInfo(width=100, height=50, format="jpeg")
    outcome = SegmentOutcome(
        result_key=f"results/{job_id}/result.json",
        annotated_key=f"results/{job_id}/annotated.jpg",
        summary=summary,
        timings=Timings(total=total_ms),
        image=image,
        model=MODEL,
    )
    document = ResultDocument(
        job_id=job_id,
        image=image,
        model=MODEL,
        params={},
        detections=found,
        summary=summary,
        timings=Timings(total=total_ms),
        created_at="2026-12-01T00:00:00.000Z",
    )
    return outcome, document


class MemoryStore:
    def __init__(self, items: list[dict[str, Any]], documents: dict[str, ResultDocument]) -> None:
        self._items = items
        self._documents = documents
        self.objects: dict[str, bytes] = {}
        self.completed: dict[str, str] = {}

    def batch(self, batch_id: str) -> dict[str, Any]:
        return {"batchId": batch_id, "startedAt": "2026-12-01T00:00:00.000+00:00"}

    def items(self, batch_id: str) -> list[dict[str, Any]]:
        return list(reversed(self._items))  # the index's order is not relied on

    def read_all(self, keys: Sequence[str]) -> list[bytes]:
        return [self._documents[key].model_dump_json(by_alias=True).encode() for key in keys]

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body

    def complete(self, batch_id: str, values: dict[str, str]) -> dict[str, Any]:
        self.completed = values
        return {"batchId": {"S": batch_id}, "hasWebhook": {"BOOL": True}}


def test_finalize_writes_manifest_coco_counts_and_claims_the_event() -> None:
    items, documents = [], {}
    for index, (status, detections) in enumerate(
        [("SUCCEEDED", 2), ("FAILED", 0), ("SUCCEEDED", 1), ("CANCELED", 0)]
    ):
        job_id = f"job_x_{index:05d}"
        item = {"jobId": job_id, "batchIndex": index, "status": status, "filename": f"{index}.jpg"}
        if status == "SUCCEEDED":
            outcome, document = result(job_id, detections, total_ms=50.0 + index)
            item["result"] = outcome.model_dump_json(by_alias=True)
            documents[outcome.result_key] = document
        if status == "FAILED":
            item |= {"errorCode": "InvalidImage", "errorCause": '{"errorMessage": "not an image"}'}
        items.append(item)
    store = MemoryStore(items, documents)

    answer = finalize("batch_x", store)

    assert answer["type"] == "batch.completed" and answer["hasWebhook"] is True
    lines = [
        json.loads(line) for line in store.objects["batches/batch_x/manifest.jsonl"].decode().splitlines()
    ]
    assert [line["index"] for line in lines] == [0, 1, 2, 3]
    assert lines[1]["error"] == {"code": "InvalidImage", "message": "not an image"}
    assert [line.get("cocoImageId") for line in lines] == [1, None, 2, None]
    coco = json.loads(store.objects["batches/batch_x/coco.json"])
    assert [image["file_name"] for image in coco["images"]] == ["0.jpg", "2.jpg"]
    assert [a["image_id"] for a in coco["annotations"]] == [1, 1, 2]
    assert [c["id"] for c in coco["categories"]] == [1, 2]  # class id + 1
    assert json.loads(store.completed["counts"]) == {"SUCCEEDED": 2, "FAILED": 1, "CANCELED": 1}
    timings = json.loads(store.completed["timings"])
    assert timings["segmentMsMedian"] == 51.0 and timings["elapsedMs"] > 0


def test_p90_is_nearest_rank() -> None:
    assert p90([1.0]) == 1.0
    assert p90([float(v) for v in range(1, 11)]) == 9.0

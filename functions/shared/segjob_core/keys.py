"""S3 layout (DESIGN.md section 3): one place that knows where a job's objects live."""

from __future__ import annotations

import secrets

UPLOAD_PREFIX = "uploads/"
RESULT_PREFIX = "results/"


def new_job_id() -> str:
    """An unguessable, URL- and key-safe id (128 bits of randomness)."""
    return "job_" + secrets.token_hex(16)


def upload_key(job_id: str) -> str:
    return f"{UPLOAD_PREFIX}{job_id}/input"


def result_key(job_id: str) -> str:
    return f"{RESULT_PREFIX}{job_id}/result.json"


def annotated_key(job_id: str) -> str:
    return f"{RESULT_PREFIX}{job_id}/annotated.jpg"


OUTPUT_FILE_NAMES = {"coco": "coco.json", "masks": "masks.png"}


def output_key(job_id: str, kind: str) -> str:
    """Where an optional result file of ``params.outputs`` goes (``coco``, ``masks``)."""
    return f"{RESULT_PREFIX}{job_id}/{OUTPUT_FILE_NAMES[kind]}"


def job_id_from_upload_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and f"{parts[0]}/" == UPLOAD_PREFIX and parts[2] == "input" and parts[1]:
        return parts[1]
    return None

"""The one contract: job statuses, API bodies, result.json and webhook payloads.

Used by the API, segment and notify functions, the local runtime and the client; nothing
else defines these shapes. JSON field names are camelCase (DESIGN.md section 3).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.alias_generators import to_camel


class JobStatus(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.EXPIRED})


class WebhookStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class EventType(StrEnum):
    SUCCEEDED = "job.succeeded"
    FAILED = "job.failed"
    CANCELED = "job.canceled"
    EXPIRED = "job.expired"
    BATCH_COMPLETED = "batch.completed"  # segjob_core.batches.BatchWebhookEvent


class Contract(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused; absent
    values are left out rather than sent as null (whoever serializes the model)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return {key: value for key, value in handler(self).items() if value is not None}

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# Image types the segment function decodes; the presigned POST fixes one of them.
SUPPORTED_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff")


class ClientInput(Contract):
    """What a client sends: JSON types as they are, never coerced (no true for 1.0, no
    "0.5" for 0.5), so that a wrong type is a 400, not a guess."""

    model_config = ConfigDict(strict=True)


# Optional result files of a job (``params.outputs``). A Literal, not an enum: client input
# is strict, and strict mode takes a JSON string for a Literal but not for an enum.
OutputKind = Literal["coco", "masks"]
OUTPUT_KINDS: tuple[OutputKind, ...] = ("coco", "masks")


class JobParams(ClientInput):
    """Inference parameters of one job; every field has a default."""

    conf: float = Field(0.25, ge=0.0, le=1.0, description="minimum confidence of a detection")
    iou: float = Field(0.7, ge=0.0, le=1.0, description="IoU threshold of non-maximum suppression")
    imgsz: int | None = Field(
        None,
        ge=32,
        le=2048,
        multiple_of=32,
        description="inference size (longest side, pixels); default: the model's own (its export's, by default "
        "the size it was trained at; the demo model: 320)",
    )
    classes: list[Annotated[int, Field(ge=0, le=9999)]] | None = Field(
        None, max_length=1000, description="keep only these class ids"
    )
    max_detections: int = Field(100, ge=1, le=1000)
    agnostic_nms: bool | None = Field(
        None,
        description="non-maximum suppression across classes: of two boxes that overlap by more than iou, the "
        "less confident one is dropped whatever its class (one class per object); false: only boxes of the "
        "same class suppress each other; default: the model's own (its export's agnostic_nms metadata; the "
        "demo model: true), false for a model that records none",
    )
    annotate: bool = Field(True, description="write results/{jobId}/annotated.jpg")
    retina_masks: bool = Field(False, description="polygons from full-resolution masks (slower)")
    tile_size: int | None = Field(
        None,
        ge=256,
        le=4096,
        multiple_of=32,
        description="sliced inference for large images with small objects: tile side in pixels of the "
        "original image, each tile inferred at imgsz; only when the image's longer side exceeds it; "
        "default: no tiling",
    )
    tile_overlap: float = Field(
        0.2, ge=0.0, le=0.5, description="fraction of tileSize that neighbouring tiles share"
    )
    outputs: list[OutputKind] | None = Field(
        None,
        max_length=len(OUTPUT_KINDS),
        description="extra result files besides result.json and annotated.jpg: coco (results/{jobId}/coco.json, "
        "COCO instance segmentation) and masks (results/{jobId}/masks.png, a 16-bit instance-label map at "
        "the original resolution: 0 = background, i = detection i of result.json, counted from 1)",
    )

    def for_model(self, model_imgsz: int, agnostic_nms: bool = False) -> JobParams:
        """These params with every default filled in: imgsz and agnostic_nms fall back to the
        model's own (its export's)."""
        update: dict[str, Any] = {}
        if not self.imgsz:
            update["imgsz"] = model_imgsz
        if self.agnostic_nms is None:
            update["agnostic_nms"] = agnostic_nms
        return self.model_copy(update=update) if update else self


# Bounded so that a job item stays far below DynamoDB's 400 KB item limit.
MetadataKey = Annotated[str, Field(min_length=1, max_length=64)]
MetadataValue = (
    Annotated[str, Field(max_length=1024)]
    | Annotated[int, Field(ge=-(2**63), lt=2**63)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]


class CreateJobRequest(ClientInput):
    filename: str | None = Field(None, max_length=255)
    content_type: Literal[SUPPORTED_CONTENT_TYPES] = "image/jpeg"  # type: ignore[valid-type]
    content_length: int | None = Field(None, ge=1, description="exact upload size, if known")
    webhook_url: str | None = Field(None, max_length=2048)
    params: JobParams = Field(default_factory=lambda: JobParams())  # noqa: PLW0108 - mypy needs the call
    metadata: Metadata | None = None


class UploadForm(Contract):
    """A presigned S3 POST: send `fields` plus the file (last) as multipart/form-data to `url`."""

    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_at: str


class ErrorInfo(Contract):
    code: str
    message: str


class ErrorResponse(Contract):
    error: ErrorInfo


class ResultSummary(Contract):
    count: int
    by_class: dict[str, int]
    truncated: bool | None = Field(
        None,
        description="true: maxDetections dropped the least confident detections (absent: nothing dropped)",
    )
    count_before_cap: int | None = Field(
        None, description="detections found before maxDetections kept the most confident (truncated only)"
    )


class JobResult(Contract):
    summary: ResultSummary
    timings: dict[str, float]
    result_key: str
    annotated_key: str | None = None
    result_url: str | None = None
    annotated_url: str | None = None
    tiles: int | None = Field(None, description="how many tiles the image was cut into (tiled jobs only)")
    output_keys: dict[OutputKind, str] | None = Field(
        None, description="S3 keys of the files params.outputs asked for"
    )
    output_urls: dict[OutputKind, str] | None = Field(
        None, description="presigned GET of each of output_keys"
    )


class WebhookAttempt(Contract):
    """One delivery attempt of a job's webhook, as the flow recorded it."""

    at: str
    event: EventType
    outcome: WebhookStatus = Field(description="DELIVERED or FAILED")
    status_code: int | None = Field(None, description="the receiver's answer (delivered attempts)")
    error: str | None = Field(None, description="error code of a failed attempt, e.g. WebhookDeliveryFailed")


class WebhookInfo(Contract):
    url: str
    status: WebhookStatus
    error: str | None = Field(None, description="the last failed attempt's error")
    delivered_at: str | None = None
    attempts: list[WebhookAttempt] | None = Field(
        None, description="every delivery attempt, oldest first (retries follow a day-long schedule)"
    )


class JobProgress(Contract):
    """How far a tiled job's segmentation got (written by the segment function after each batch)."""

    tiles_done: int = Field(ge=0, description="tiles inferred so far")
    tiles_total: int = Field(ge=1, description="tiles of the image (the whole-image pass is not counted)")


class Job(Contract):
    """A job as the API, the webhook and the client see it."""

    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    expires_at: str
    filename: str | None = None
    content_type: str
    params: JobParams
    metadata: dict[str, Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    progress: JobProgress | None = Field(None, description="tiled jobs: tiles done of the total")
    webhook: WebhookInfo | None = None
    result: JobResult | None = None
    error: ErrorInfo | None = None


class CreateJobResponse(Job):
    upload: UploadForm


class JobList(Contract):
    jobs: list[Job]
    next_token: str | None = None


class WebhookEvent(Contract):
    type: EventType
    timestamp: str
    data: Job


# Rotation overlap of a webhook secret: a day by default, a week at most.
DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class WebhookSecret(Contract):
    """The caller's webhook signing secret (``GET /webhook-secret``, ``POST /webhook-secret/rotate``)."""

    secret: str = Field(description="whsec_...: verify this caller's deliveries with it (Standard Webhooks)")
    generation: int = Field(ge=1, description="1 for the first secret, +1 per rotation")
    created_at: str = Field(description="when this secret became current")
    previous_valid_until: str | None = Field(
        None, description="deliveries also carry a signature of the previous secret until then"
    )


class RotateWebhookSecretRequest(ClientInput):
    overlap_seconds: int = Field(
        DEFAULT_OVERLAP_SECONDS,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="how long deliveries are also signed with the secret being replaced (0: revoke it now)",
    )


# result.json ---------------------------------------------------------------------------


class ImageInfo(Contract):
    width: int
    height: int
    format: str


class ModelInfo(Contract):
    name: str
    sha256: str
    backend: str
    task: str = "segment"
    classes: dict[int, str]
    imgsz: int | None = Field(
        None,
        description="the model's own image size (its export's, by default its training size): a job's default imgsz",
    )
    agnostic_nms: bool = Field(False, description="the model's default for a job's agnosticNms")


class Detection(Contract):
    class_id: int
    class_name: str
    confidence: float
    bbox: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in original pixels")
    polygon: list[list[float]]
    area: float = Field(description="polygon area in original pixels")


class Timings(Contract):
    """Milliseconds per stage of the segment function."""

    download: float = 0.0
    decode: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    annotate: float = 0.0
    encode: float = 0.0
    upload: float = 0.0
    total: float = 0.0


class ResultDocument(Contract):
    """results/{jobId}/result.json."""

    job_id: str
    image: ImageInfo
    model: ModelInfo
    params: JobParams
    detections: list[Detection]
    summary: ResultSummary
    timings: Timings
    tiles: int | None = Field(None, description="tiles inferred (params.tileSize); absent: not tiled")
    created_at: str


class SegmentRequest(Contract):
    """What the state machine passes to the segment function."""

    job_id: str
    bucket: str
    key: str
    version_id: str | None = Field(
        None, description="the S3 version the upload event named; re-uploads change nothing"
    )
    result_bucket: str | None = Field(
        None, description="where results go (a batch over another bucket); default: the input's bucket"
    )
    params: JobParams = Field(default_factory=lambda: JobParams())  # noqa: PLW0108 - mypy needs the call


class SegmentOutcome(Contract):
    """What the segment function returns to the state machine (stored on the job)."""

    result_key: str
    annotated_key: str | None = None  # absent when params.annotate is false (None is not serialized)
    summary: ResultSummary
    timings: Timings
    image: ImageInfo
    model: ModelInfo
    tiles: int | None = None
    output_keys: dict[OutputKind, str] | None = None


class NotifyRequest(Contract):
    """What the state machine passes to the notify function: the event type and the job
    item exactly as the last status write returned it (DynamoDB attribute values)."""

    type: EventType
    item: dict[str, Any]


class NotifyOutcome(Contract):
    status_code: int
    webhook_id: str
    attempt_ms: float

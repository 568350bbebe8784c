"""SegmentFunction: segment the job's uploaded image, write result.json and annotated.jpg.

Invoked by the state machine with a SegmentRequest; returns a SegmentOutcome. A domain
error (segjob_core.errors.JobError) propagates: Lambda reports its class name as the
errorType, which the state machine's Catch stores as the job's error code.
"""

from __future__ import annotations

from typing import Any

from segmentation.loader import open_bundled
from segmentation.settings import SegmentSettings

settings = SegmentSettings.from_env()
# The baked-in model opens from here on, on a thread: ONNX Runtime builds its session and
# runs it once with the GIL released while this thread imports the rest (the contract
# models, OpenCV, Powertools and X-Ray, boto3: most of a cold start). Hence the late imports.
opening = open_bundled(settings)

from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from segjob_core.errors import InvalidParams, JobCanceled, JobError, ModelUnavailable  # noqa: E402
from segjob_core.models import SegmentRequest  # noqa: E402
from segmentation import storage  # noqa: E402
from segmentation.service import ModelProvider, segment_image  # noqa: E402

logger = Logger(service="segment")
tracer = Tracer(service="segment", patch_modules=("botocore",))  # the only library it calls out with
metrics = Metrics(service="segment")  # namespace: POWERTOOLS_METRICS_NAMESPACE

models = ModelProvider(settings, fetch=storage.download_model, opening=opening)
store = storage.S3ObjectStore()
# Progress of tiled jobs and the cancel checks; none outside a stack (no JOBS_TABLE).
jobs = storage.DynamoJobRecord(settings.jobs_table) if settings.jobs_table else None

if settings.model_uri is None:
    # Baked-in weights: load at init (the init phase has the full CPU and is not billed
    # against the first job's timings). A failure must not break the import: every job
    # then fails with ModelUnavailable and the reason, instead of an opaque init error.
    try:
        segmenter = models.get()
        logger.info("model loaded", extra={"model": segmenter.info.name, "load_ms": round(segmenter.load_ms)})
    except ModelUnavailable:
        logger.exception("model unavailable at init")


def parse_request(event: dict[str, Any]) -> SegmentRequest:
    try:
        return SegmentRequest.model_validate(event)
    except ValidationError as exc:
        if all(error["loc"][:1] == ("params",) for error in exc.errors()):
            raise InvalidParams(str(exc)) from exc
        raise  # a malformed event is a bug in the caller, not a property of the job


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = parse_request(event)
        logger.append_keys(job_id=request.job_id)
        tracer.put_annotation("job_id", request.job_id)
        outcome = segment_image(
            request,
            segmenter=models.get(),
            store=store,
            max_image_pixels=settings.max_image_pixels,
            record=jobs,
            remaining_ms=context.get_remaining_time_in_millis,
        )
    except JobCanceled as exc:  # not a failure: the flow keeps the job CANCELED
        metrics.add_metric(name="JobsCanceled", unit=MetricUnit.Count, value=1)
        logger.info("job canceled: stopped", extra={"reason": str(exc)})
        raise
    except JobError as exc:  # the job fails with this code; count it, then let Lambda report it
        metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
        metrics.add_metadata(key="error_code", value=exc.code)
        logger.warning("job failed", extra={"error_code": exc.code, "reason": str(exc)})
        raise
    metrics.add_metric("Detections", MetricUnit.Count, outcome.summary.count)
    metrics.add_metric("InferenceTime", MetricUnit.Milliseconds, outcome.timings.inference)
    metrics.add_metric("SegmentTime", MetricUnit.Milliseconds, outcome.timings.total)
    logger.info(
        "segmented",
        extra={"summary": outcome.summary.to_json_dict(), "timings": outcome.timings.to_json_dict()},
    )
    return outcome.to_json_dict()

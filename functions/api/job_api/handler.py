"""HTTP routes of the job API (API Gateway HTTP API, payload v2, IAM auth).

Routes are explicit; domain exceptions map to responses in one place (the exception
handlers below); every error body is ``{"error": {"code", "message"}}``.
"""

import base64
import binascii
import functools
import json
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseContentModel,
    OpenAPIResponseContentSchema,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from job_api.batch_storage import BatchFlow, BatchNotFound, BatchStateConflict, BatchStore
from job_api.batches import BatchService, InvalidSource, SourceNotAllowed
from job_api.idempotency import IdempotentCreate
from job_api.service import JobService, UploadTooLarge
from job_api.settings import ApiSettings
from job_api.storage import (
    ExpirySchedules,
    InvalidToken,
    JobFlows,
    JobNotFound,
    JobStateConflict,
    JobStore,
    ObjectStore,
)
from segjob_core.batches import Batch, BatchList, BatchUploads, CreateBatchRequest, CreateBatchResponse
from segjob_core.errors import WebhookTargetRefused
from segjob_core.models import (
    Contract,
    CreateJobRequest,
    CreateJobResponse,
    ErrorInfo,
    ErrorResponse,
    Job,
    JobList,
    JobStatus,
    RotateWebhookSecretRequest,
    WebhookSecret,
)
from segjob_core.signing_store import RotationConflict, SigningSecrets, SigningSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver(enable_validation=True)


@functools.cache
def service() -> JobService:
    """Built on first use, once per container (settings come from the environment)."""
    settings = ApiSettings.from_env()
    return JobService(
        settings,
        JobStore(settings.jobs_table),
        ObjectStore(settings.jobs_bucket),
        JobFlows(settings.job_state_machine_arn, settings.standard_job_state_machine_arn),
        ExpirySchedules(
            settings.expiry_schedule_group, settings.job_state_machine_arn, settings.expiry_scheduler_role_arn
        ),
    )


@functools.cache
def idempotent_create() -> IdempotentCreate:
    settings = service().settings
    return IdempotentCreate(settings.idempotency_table, settings.upload_window_seconds, service().create)


def caller() -> str:
    """The IAM principal that signed the request; jobs belong to it."""
    iam = app.current_event.request_context.authorizer.iam
    principal = iam.user_arn if iam else None
    if not principal:
        raise Unauthenticated()
    return principal


def json_response(status: HTTPStatus, model: Contract | dict[str, Any]) -> Response:
    return Response(status_code=status, content_type="application/json", body=model)


def error_response(status: HTTPStatus, code: str, message: str) -> Response:
    return json_response(status, ErrorResponse(error=ErrorInfo(code=code, message=message)))


def _responses(ok: int, model: type[Contract], *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success body and the error bodies it can return."""
    out: dict[int, OpenAPIResponse] = {ok: {"description": HTTPStatus(ok).phrase, "content": _json(model)}}
    for status in (400, 403, *errors):
        out[status] = {"description": HTTPStatus(status).phrase, "content": _json(ErrorResponse)}
    return out


def _json(model: type[Contract]) -> dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel]:
    return {"application/json": {"model": model}}


@app.post("/jobs", summary="Create a job", responses=_responses(201, CreateJobResponse, 409, 413, 415))
@tracer.capture_method
def create_job(
    request: Annotated[CreateJobRequest, Body()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="retries with the same key return the same job",
        ),
    ] = None,
) -> Response[CreateJobResponse]:
    if idempotency_key is None:
        job = service().create(caller(), request)
    else:
        job = idempotent_create()(caller(), idempotency_key, request, app.lambda_context)
    logger.append_keys(job_id=job.job_id)
    metrics.add_metric(name="JobCreated", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.CREATED, job)


@app.get("/jobs", summary="List your jobs, newest first", responses=_responses(200, JobList))
@tracer.capture_method
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2048)] = None,
    status: Annotated[JobStatus | None, Query(description="only jobs in this status")] = None,
) -> Response[JobList]:
    return json_response(HTTPStatus.OK, service().list(caller(), limit, next_token, status))


@app.get("/jobs/<jobId>", summary="Get a job", responses=_responses(200, Job, 404))
@tracer.capture_method
def get_job(jobId: str) -> Response[Job]:  # the path parameter's name, as in template.yaml
    logger.append_keys(job_id=jobId)
    return json_response(HTTPStatus.OK, service().get(caller(), jobId))


@app.delete("/jobs/<jobId>", summary="Cancel a job", responses=_responses(200, Job, 404, 409))
@tracer.capture_method
def cancel_job(jobId: str) -> Response[Job]:
    logger.append_keys(job_id=jobId)
    job = service().cancel(caller(), jobId)
    metrics.add_metric(name="JobCanceled", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, job)


@app.post(
    "/jobs/<jobId>/webhook/redeliver",
    summary="Send the job's last webhook event again",
    description="Same webhook-id as the first delivery; retried on the day-long schedule until delivered. "
    "409 while a delivery is under way, or when the job has no webhook or sent no event yet.",
    responses=_responses(202, Job, 404, 409),
)
@tracer.capture_method(capture_response=False)
def redeliver_webhook(jobId: str) -> Response[Job]:
    logger.append_keys(job_id=jobId)
    job = service().redeliver(caller(), jobId)
    metrics.add_metric(name="WebhookRedelivered", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.ACCEPTED, job)


@functools.cache
def batch_service() -> BatchService:
    settings = service().settings
    return BatchService(
        settings,
        BatchStore(settings.batches_table, settings.jobs_table),
        ObjectStore(settings.jobs_bucket),
        BatchFlow(settings.batch_state_machine_arn),
    )


@app.post(
    "/batches",
    summary="Create a batch: many images, one request",
    description="Either `files` (one upload form each; upload them, then POST /batches/{batchId}/start) or "
    "`source` (objects under a prefix, or listed in a manifest, of a bucket the stack may read; the batch "
    "starts at once). Every item is a job; one batch.completed webhook when all are finished.",
    responses=_responses(201, CreateBatchResponse, 409, 413, 415),
)
@tracer.capture_method(capture_response=False)
def create_batch(request: Annotated[CreateBatchRequest, Body()]) -> Response[CreateBatchResponse]:
    batch = batch_service().create(caller(), request)
    logger.append_keys(batch_id=batch.batch_id)
    metrics.add_metric(name="BatchCreated", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BatchItems", unit=MetricUnit.Count, value=batch.total)
    return json_response(HTTPStatus.CREATED, batch)


@app.get("/batches", summary="List your batches, newest first", responses=_responses(200, BatchList))
@tracer.capture_method(capture_response=False)
def list_batches(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2048)] = None,
) -> Response[BatchList]:
    return json_response(HTTPStatus.OK, batch_service().list_page(caller(), limit, next_token))


@app.get(
    "/batches/<batchId>",
    summary="Get a batch: counts, progress, timings, results manifest and COCO export",
    responses=_responses(200, Batch, 404),
)
@tracer.capture_method(capture_response=False)
def get_batch(batchId: str) -> Response[Batch]:
    logger.append_keys(batch_id=batchId)
    return json_response(HTTPStatus.OK, batch_service().get(caller(), batchId))


@app.delete(
    "/batches/<batchId>",
    summary="Cancel a batch (items not started never run)",
    responses=_responses(200, Batch, 404, 409),
)
@tracer.capture_method(capture_response=False)
def cancel_batch(batchId: str) -> Response[Batch]:
    logger.append_keys(batch_id=batchId)
    batch = batch_service().cancel(caller(), batchId)
    metrics.add_metric(name="BatchCanceled", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, batch)


@app.post(
    "/batches/<batchId>/start",
    summary="Start a batch of files (after its uploads)",
    description="An item whose file was not uploaded fails with InputMissing.",
    responses=_responses(202, Batch, 404, 409),
)
@tracer.capture_method(capture_response=False)
def start_batch(batchId: str) -> Response[Batch]:
    logger.append_keys(batch_id=batchId)
    return json_response(HTTPStatus.ACCEPTED, batch_service().start(caller(), batchId))


@app.post(
    "/batches/<batchId>/uploads",
    summary="Fresh upload forms for the items of a batch whose file has not arrived",
    description="Resumes an interrupted upload: re-upload only these, then start the batch.",
    responses=_responses(200, BatchUploads, 404, 409),
)
@tracer.capture_method(capture_response=False)
def renew_batch_uploads(batchId: str) -> Response[BatchUploads]:
    logger.append_keys(batch_id=batchId)
    return json_response(HTTPStatus.OK, batch_service().renew_uploads(caller(), batchId))


@functools.cache
def signing_secrets() -> SigningSecrets:
    return SigningSecrets.from_settings(SigningSettings.from_env())


DEFAULT_ROTATION = RotateWebhookSecretRequest()  # without a body: a day of overlap


def secret_response(secret: WebhookSecret) -> Response[WebhookSecret]:
    """A caller's secret: never stored by a cache on the way."""
    return Response(HTTPStatus.OK, "application/json", secret, headers={"Cache-Control": "no-store"})


@app.get("/webhook-secret", summary="Your webhook signing secret", responses=_responses(200, WebhookSecret))
@tracer.capture_method(capture_response=False)
def get_webhook_secret() -> Response[WebhookSecret]:
    return secret_response(signing_secrets().current(caller()))


@app.post(
    "/webhook-secret/rotate",
    summary="Replace your webhook signing secret (the old one keeps signing during the overlap)",
    responses=_responses(200, WebhookSecret, 409, 415),
)
@tracer.capture_method(capture_response=False)
def rotate_webhook_secret(
    request: Annotated[RotateWebhookSecretRequest, Body()] = DEFAULT_ROTATION,
) -> Response[WebhookSecret]:
    secret = signing_secrets().rotate(caller(), request.overlap_seconds)
    metrics.add_metric(name="WebhookSecretRotated", unit=MetricUnit.Count, value=1)
    return secret_response(secret)


class Unauthenticated(Exception):
    """The request reached the function without an IAM caller (auth misconfigured)."""


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    problems = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if loc[:1] == ("header",):  # Powertools lower-cases header names: show them as sent
            loc = ("header", "-".join(word.capitalize() for word in str(loc[-1]).split("-")))
        location = ".".join(str(part) for part in loc if part != "body")
        problems.append(f"{location}: {error.get('msg')}" if location else str(error.get("msg")))
    return error_response(HTTPStatus.BAD_REQUEST, "InvalidRequest", "; ".join(problems) or "invalid request")


@app.exception_handler(WebhookTargetRefused)
def _webhook_refused(exc: WebhookTargetRefused) -> Response:
    return error_response(HTTPStatus.BAD_REQUEST, "InvalidWebhookUrl", str(exc))


@app.exception_handler(IdempotencyValidationError)
def _idempotency_key_reused(exc: IdempotencyValidationError) -> Response:
    message = "this Idempotency-Key was used for a different request"
    return error_response(HTTPStatus.CONFLICT, "IdempotencyKeyReused", message)


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _idempotency_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response:
    message = "a request with this Idempotency-Key is still in progress; retry shortly"
    return error_response(HTTPStatus.CONFLICT, "RequestInProgress", message)


@app.exception_handler(UploadTooLarge)
def _upload_too_large(exc: UploadTooLarge) -> Response:
    return error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "UploadTooLarge", str(exc))


@app.exception_handler(InvalidToken)
def _invalid_token(exc: InvalidToken) -> Response:
    return error_response(
        HTTPStatus.BAD_REQUEST, "InvalidRequest", "nextToken is not a token this API issued"
    )


@app.exception_handler(JobNotFound)
def _not_found(exc: JobNotFound) -> Response:
    return error_response(HTTPStatus.NOT_FOUND, "JobNotFound", f"no job {exc}")


@app.exception_handler(JobStateConflict)
def _conflict(exc: JobStateConflict) -> Response:
    return error_response(HTTPStatus.CONFLICT, "JobStateConflict", str(exc))


@app.exception_handler(BatchNotFound)
def _batch_not_found(exc: BatchNotFound) -> Response:
    return error_response(HTTPStatus.NOT_FOUND, "BatchNotFound", f"no batch {exc}")


@app.exception_handler(BatchStateConflict)
def _batch_conflict(exc: BatchStateConflict) -> Response:
    return error_response(HTTPStatus.CONFLICT, "BatchStateConflict", str(exc))


@app.exception_handler(SourceNotAllowed)
def _source_not_allowed(exc: SourceNotAllowed) -> Response:
    return error_response(HTTPStatus.FORBIDDEN, "SourceNotAllowed", str(exc))


@app.exception_handler(InvalidSource)
def _invalid_source(exc: InvalidSource) -> Response:
    return error_response(HTTPStatus.BAD_REQUEST, "InvalidSource", str(exc))


@app.exception_handler(RotationConflict)
def _rotation_conflict(exc: RotationConflict) -> Response:
    return error_response(HTTPStatus.CONFLICT, "RotationConflict", f"{exc}; retry")


@app.exception_handler(Unauthenticated)
def _unauthenticated(exc: Unauthenticated) -> Response:
    return error_response(HTTPStatus.FORBIDDEN, "Unauthenticated", "the request carries no IAM identity")


@app.not_found
def _no_route(exc: Exception) -> Response:
    return error_response(HTTPStatus.NOT_FOUND, "RouteNotFound", "no such route")


def unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """The API takes JSON only. Powertools' body parsing runs before any middleware and
    would answer other media types in its own shape (or a 500 for a non-UTF-8 body or a
    multipart body without a boundary), so bodies are checked here first."""
    body = event.get("body")
    if not body or event.get("requestContext", {}).get("http", {}).get("method") != "POST":
        return None
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type != "application/json":
        message = f"the body must be application/json, not {media_type or 'an empty media type'}"
        return _raw_error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", message)
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return _raw_error(HTTPStatus.BAD_REQUEST, "InvalidRequest", "the body is not UTF-8 encoded JSON")
    try:
        parsed = json.loads(text)
    except ValueError:
        return None  # the resolver's validation names the JSON error
    if not isinstance(parsed, dict):  # Powertools would validate a list's first element
        return _raw_error(HTTPStatus.BAD_REQUEST, "InvalidRequest", "the body must be a JSON object")
    return None


def _raw_error(status: HTTPStatus, code: str, message: str) -> dict[str, Any]:
    """An error in the API's shape, as an HTTP API (payload v2) response."""
    body = ErrorResponse(error=ErrorInfo(code=code, message=message)).model_dump_json(by_alias=True)
    return {"statusCode": int(status), "headers": {"Content-Type": "application/json"}, "body": body}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold presigned URLs and secrets
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return unreadable_body(event) or app.resolve(event, context)

"""BatchFunction: the batch flow's FinalizeBatch task (manifest, COCO export, completion)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_finalize.adapters import BatchData
from batch_finalize.logic import finalize
from batch_finalize.settings import BatchSettings

logger = Logger(service="batch")
tracer = Tracer(service="batch")
metrics = Metrics(service="batch")  # namespace: POWERTOOLS_METRICS_NAMESPACE

settings = BatchSettings.from_env()
data = BatchData(settings)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return finalize(str(event["batchId"]), data)

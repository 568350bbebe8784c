"""NotifyFunction: the state machine's Notify task (one signed webhook delivery per call)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from job_notify.logic import get_notifier, notify
from segjob_core.models import NotifyRequest

logger = Logger(service="notify")
tracer = Tracer(service="notify")
metrics = Metrics(service="notify")  # namespace: POWERTOOLS_METRICS_NAMESPACE


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_parser(model=NotifyRequest)
def lambda_handler(event: NotifyRequest, context: LambdaContext) -> dict[str, Any]:
    return notify(event, get_notifier()).to_json_dict()

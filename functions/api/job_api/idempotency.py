"""Idempotent job creation: the same ``Idempotency-Key`` from the same caller returns the
same job (and the same upload form) for as long as its upload window lasts.

Powertools' idempotency utility keeps the records (table IdempotencyTable); the key is
the caller plus the header value, and the request body is validated against the first
one, so reusing a key for a different request is refused rather than answered wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from segjob_core.models import CreateJobRequest, CreateJobResponse

CreateJob = Callable[[str, CreateJobRequest], CreateJobResponse]


class IdempotentCreate:
    def __init__(self, table_name: str, ttl_seconds: int, create: CreateJob) -> None:
        config = IdempotencyConfig(
            event_key_jmespath="[owner, key]",
            payload_validation_jmespath="request",
            expires_after_seconds=ttl_seconds,
        )

        @idempotent_function(
            data_keyword_argument="call",
            persistence_store=DynamoDBPersistenceLayer(table_name=table_name),
            config=config,
            output_serializer=PydanticSerializer(CreateJobResponse),
        )
        def create_once(call: dict[str, Any]) -> CreateJobResponse:
            return create(call["owner"], CreateJobRequest.model_validate(call["request"]))

        self._create_once = create_once
        self._config = config

    def __call__(
        self, owner: str, key: str, request: CreateJobRequest, context: LambdaContext | None = None
    ) -> CreateJobResponse:
        if context is not None:  # an in-progress record then expires with this invocation
            self._config.register_lambda_context(context)
        return self._create_once(call={"owner": owner, "key": key, "request": request.to_json_dict()})

"""Where moto 5.2.5 differs from AWS in ways the stack depends on, corrected inside local
mode's moto server process (and nowhere else). Each patch names the AWS behaviour it
restores; ``apply()`` is idempotent.

- Step Functions ``states:startExecution`` tasks: the ASL names parameters as the service
  integration does (``StateMachineArn``, ``Name``, ``Input``) and reads the result as
  ``ExecutionArn``/``StartDate``; moto's interpreter hands the parameters to boto3 unchanged
  (its port of LocalStack's parameter normaliser is a no-op), which fails with a KeyError.
  The patch maps them to and from the API's member names, as AWS does.
- S3 event notifications with versioning on carry the object's ``versionId`` (AWS) and
  moto leaves it out; the flow reads the version its upload event names.
- Distributed Map ``ProcessorConfig.ExecutionType: EXPRESS`` (the batch flow's item
  processor): moto's ASL grammar accepts only ``STANDARD`` and refuses the definition.
  moto runs every child of a map in threads of the parent's execution whatever the type, so
  the patch reads ``EXPRESS`` as ``STANDARD`` (docs/architecture.md, "Batches in local mode").
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

_applied = False


def apply() -> None:
    global _applied  # noqa: PLW0603 - once per process
    if _applied:
        return
    _patch_sfn_integration()
    _patch_s3_event_version()
    _patch_express_item_processor()
    _applied = True


@functools.cache
def _operation(service: str, action: str) -> Any:
    import botocore.session  # noqa: PLC0415
    from botocore import xform_name  # noqa: PLC0415

    model = botocore.session.get_session().get_service_model(service)
    for name in model.operation_names:
        if xform_name(name) == action:
            return model.operation_model(name)
    return None


def _patch_sfn_integration() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (  # noqa: PLC0415
        state_task_service_sfn as sfn,
    )

    cls = sfn.StateTaskServiceSfn
    moto_normalise = cls._normalise_parameters

    def normalise_parameters(
        self: Any,
        parameters: dict,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        moto_normalise(self, parameters, boto_service_name, service_action_name)  # Input -> JSON string
        operation = _operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if operation is not None and operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        operation = _operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if operation is not None and operation.output_shape is not None and isinstance(response, dict):
            self._from_boto_response(response, operation.output_shape)
            for key, value in list(response.items()):  # a datetime would not serialize in the history
                if isinstance(value, datetime.datetime):
                    response[key] = value.isoformat()

    cls._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
    cls._normalise_response = normalise_response  # type: ignore[method-assign]


def _patch_s3_event_version() -> None:
    from moto.s3 import notifications  # noqa: PLC0415

    moto_event = notifications._get_s3_event

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = moto_event(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if version and version != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version
        return event

    notifications._get_s3_event = s3_event


def _express_as_standard(node: Any) -> None:
    if isinstance(node, dict):
        config = node.get("ProcessorConfig")
        if isinstance(config, dict) and config.get("ExecutionType") == "EXPRESS":
            config["ExecutionType"] = "STANDARD"
        for value in node.values():
            _express_as_standard(value)
    elif isinstance(node, list):
        for value in node:
            _express_as_standard(value)


def _patch_express_item_processor() -> None:
    import json  # noqa: PLC0415

    from moto.stepfunctions.parser.asl.parse import asl_parser  # noqa: PLC0415

    moto_parse = asl_parser.AmazonStateLanguageParser.parse

    def parse(definition: str) -> Any:
        if '"EXPRESS"' in definition:
            try:
                document = json.loads(definition)
            except ValueError:
                return moto_parse(definition)  # moto names the syntax error
            _express_as_standard(document)
            definition = json.dumps(document)
        return moto_parse(definition)

    asl_parser.AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]

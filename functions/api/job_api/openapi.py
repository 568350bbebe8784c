"""The OpenAPI 3 document of the job API, generated from the routes and the contract
models (the one source): `python -m job_api.openapi > docs/openapi.json`."""

from __future__ import annotations

import json
import sys

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from job_api.handler import app

SIGV4 = APIKey.model_validate(
    {
        "type": "apiKey",
        "name": "Authorization",
        "in": APIKeyIn.header,
        "description": "AWS Signature Version 4 (service execute-api) with the caller's IAM credentials.",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
)


def document() -> dict:
    schema = app.get_openapi_json_schema(
        title="segjob job API",
        version="0.1.0",
        description="Asynchronous image segmentation jobs: create a job, upload with the presigned POST, "
        "poll or receive a signed webhook.",
        security_schemes={"sigv4": SIGV4},
        security=[{"sigv4": []}],
    )
    spec = json.loads(schema)
    # Powertools documents a 422 for validation errors; this API answers them with 400.
    for operations in spec["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        spec["components"]["schemas"].pop(unused, None)
    return spec


def main() -> None:
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Lambda entry point of ApiFunction (Handler: app.lambda_handler)."""

from job_api.handler import lambda_handler

__all__ = ["lambda_handler"]

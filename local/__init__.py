"""Local mode: the stack of template.yaml on this machine (moto server, local Lambda
workers, S3 -> EventBridge -> Step Functions, HTTP API), with no AWS account or Docker.

``python -m local up`` runs it until interrupted; ``LocalRuntime`` does it from Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import LocalRuntime

__all__ = ["LocalRuntime"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m local.moto_host` does not import boto3 and the runtime.
    if name == "LocalRuntime":
        from .runtime import LocalRuntime  # noqa: PLC0415

        return LocalRuntime
    raise AttributeError(name)

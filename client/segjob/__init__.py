"""Client of the segjob service: submit images, wait, fetch results, verify webhooks."""

from segjob.client import Client, SegjobError

__all__ = ["Client", "SegjobError"]

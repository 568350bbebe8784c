"""Domain errors. A job's error code is the exception's class name: Lambda reports it as
the errorType, the state machine's Catch stores it on the job, the API shows it."""

from __future__ import annotations


class JobError(Exception):
    """Base of errors that end a job as FAILED with a precise code."""

    @property
    def code(self) -> str:
        return type(self).__name__


class InputMissing(JobError):
    """The uploaded object is gone (or never existed) when the job runs."""


class InvalidImage(JobError):
    """The upload is not a decodable image (corrupt, truncated, empty)."""


class UnsupportedFormat(JobError):
    """The upload is an image format the decoder does not accept."""


class ImageTooLarge(JobError):
    """The image has more pixels than the configured limit."""


class InvalidParams(JobError):
    """The job's inference parameters are invalid for this model."""


class ModelUnavailable(JobError):
    """The model could not be fetched, verified or loaded."""


class TimeBudgetExceeded(JobError):
    """A tiled job ran out of the function's time part-way (slower tiles than estimated):
    it stopped cleanly before the timeout, wrote no results, and says how far it got."""


class JobCanceled(JobError):
    """The job was canceled while the segment function ran: it stopped at its next check and
    wrote no results. The flow's conditional write keeps the job CANCELED (the code is not stored)."""


class WebhookTargetRefused(JobError):
    """The webhook URL is not an allowed target (scheme, private address, ...)."""


class WebhookDeliveryFailed(Exception):
    """The receiver did not answer 2xx in time: retried by the state machine."""

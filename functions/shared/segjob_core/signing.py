"""Per-caller webhook signing secrets (Standard Webhooks ``whsec_...``).

Every caller (the IAM principal ARN that owns jobs) has a secret of its own, so a
receiver's operator can verify deliveries of their own jobs and forge nobody else's. The
secrets are not stored: each is derived from one master key (Secrets Manager) and the
caller's rotation state (a table row holding a generation number and dates, nothing
secret). Rotating bumps the generation; during the overlap window deliveries are signed
with the new and the previous secret (the ``webhook-signature`` header takes several,
space-separated), so receivers can switch without losing a message.

Pure functions only: ``segjob_core.signing_store`` reads the key and the state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from standardwebhooks import Webhook

from .jobs import iso
from .models import MAX_OVERLAP_SECONDS

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
# Labels the derived value's purpose, so the master key can never yield the same bytes
# for another use (NIST SP 800-108 "Label").
KDF_LABEL = b"segjob/webhook-signing-secret/v1"
MIN_MASTER_KEY_BYTES = 32


class SigningKeyInvalid(Exception):
    """The master key is missing or too short: a deployment error, never the caller's."""


def derive_secret(master_key: bytes, owner: str, generation: int) -> str:
    """The ``whsec_`` secret of ``owner``'s ``generation``.

    NIST SP 800-108 KDF in counter mode with HMAC-SHA256 (a single 256-bit block):
    HMAC(master, [1]_32 || Label || 0x00 || Context || [256]_32), the context being the
    owner and the generation. Knowing one caller's secret tells nothing about another's
    or about the master key (HMAC is a PRF).
    """
    if len(master_key) < MIN_MASTER_KEY_BYTES:
        raise SigningKeyInvalid(f"the webhook master key must have at least {MIN_MASTER_KEY_BYTES} bytes")
    if generation < 1:
        raise ValueError("generations start at 1")
    context = owner.encode() + b"\x00" + str(generation).encode()
    message = (1).to_bytes(4, "big") + KDF_LABEL + b"\x00" + context + (SECRET_BYTES * 8).to_bytes(4, "big")
    return SECRET_PREFIX + base64.b64encode(hmac.new(master_key, message, hashlib.sha256).digest()).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    if not secrets:
        raise ValueError("at least one signing secret is needed")
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


@dataclass(frozen=True)
class SecretState:
    """A caller's rotation state, as the state table stores it (nothing secret).

    A caller without a row is at generation 1: the row is written on first use (the
    first read through the API) or by the first rotation.
    """

    owner: str
    generation: int = 1
    created_at: str | None = None  # first use
    rotated_at: str | None = None  # when ``generation`` became current (None: never rotated)
    previous_expires_at: str | None = None  # generation - 1 signs too until then

    def previous_active(self, now: datetime) -> bool:
        if self.generation < 2 or not self.previous_expires_at:
            return False
        return datetime.fromisoformat(self.previous_expires_at) > now

    def active_generations(self, now: datetime) -> list[int]:
        """The generations a delivery at ``now`` is signed with, the current one first."""
        return [self.generation, self.generation - 1] if self.previous_active(now) else [self.generation]

    def rotated(self, now: datetime, overlap_seconds: int) -> SecretState:
        """The next generation; the current one keeps signing for ``overlap_seconds``
        (0: revoked at once). A rotation during an overlap ends the older overlap."""
        if not 0 <= overlap_seconds <= MAX_OVERLAP_SECONDS:
            raise ValueError(f"overlap must be 0..{MAX_OVERLAP_SECONDS} s")
        return replace(
            self,
            generation=self.generation + 1,
            created_at=self.created_at or iso(now),
            rotated_at=iso(now),
            previous_expires_at=iso(now + timedelta(seconds=overlap_seconds)),
        )

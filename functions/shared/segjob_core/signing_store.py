"""Adapter of the callers' signing secrets: the master key (Secrets Manager) and the
rotation state table (DynamoDB). Used by the API (show, rotate) and notify (sign).

Only functions import this module (it needs boto3); the pure parts are in
``segjob_core.signing``.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from pydantic import Field

from .jobs import iso, utc_now
from .models import WebhookSecret
from .settings import EnvSettings
from .signing import SecretState, SigningKeyInvalid, derive_secret

# A master key replaced in Secrets Manager reaches warm containers within this time.
MASTER_KEY_MAX_AGE_SECONDS = 300.0
ROTATION_ATTEMPTS = 3


class SigningSettings(EnvSettings):
    """The env vars template.yaml gives the functions that read callers' secrets (api, notify)."""

    webhook_master_key_arn: str = Field(
        alias="WEBHOOK_MASTER_KEY_ARN",
        min_length=1,
        description="Secrets Manager secret of the master key the callers' signing secrets derive from",
    )
    webhook_secret_state_table: str = Field(
        alias="WEBHOOK_SECRET_STATE_TABLE", min_length=1, description="the callers' secret generations"
    )


class MasterKey:
    """The SecretString of the master key secret, cached for ``max_age`` seconds.

    Never logged, never in ``repr``; X-Ray records the GetSecretValue call, not its answer.
    """

    def __init__(
        self, secret_id: str, client: Any | None = None, max_age: float = MASTER_KEY_MAX_AGE_SECONDS
    ):
        import boto3  # noqa: PLC0415 - functions only

        self._secret_id = secret_id
        self.client = client if client is not None else boto3.client("secretsmanager")
        self._max_age = max_age
        self._value: bytes | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def value(self) -> bytes:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > self._max_age:
                secret = self.client.get_secret_value(SecretId=self._secret_id).get("SecretString") or ""
                self._value = secret.strip().encode()
                self._read_at = time.monotonic()
                if not self._value:
                    raise SigningKeyInvalid("the webhook master key secret is empty")
            return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._secret_id!r})"


class RotationConflict(Exception):
    """The caller's secret kept changing under concurrent rotations."""


class SigningSecrets:
    """Each caller's current secret(s), derived from the master key and the caller's row."""

    def __init__(self, master_key: MasterKey, table_name: str, table: Any | None = None) -> None:
        import boto3  # noqa: PLC0415 - functions only

        self.master_key = master_key
        self._table = table if table is not None else boto3.resource("dynamodb").Table(table_name)

    @classmethod
    def from_settings(cls, settings: SigningSettings) -> SigningSecrets:
        return cls(MasterKey(settings.webhook_master_key_arn), settings.webhook_secret_state_table)

    # --- reading ------------------------------------------------------------------------

    def state(self, owner: str) -> SecretState:
        item = self._table.get_item(Key={"owner": owner}, ConsistentRead=True).get("Item")
        return _state(item) if item else SecretState(owner=owner)

    def active_secrets(self, owner: str, now: datetime | None = None) -> list[str]:
        """What a delivery for ``owner`` is signed with now (current first). Read-only:
        a caller who never asked for their secret has generation 1, like the API shows."""
        state = self.state(owner)
        key = self.master_key.value()
        return [derive_secret(key, owner, g) for g in state.active_generations(now or utc_now())]

    def current(self, owner: str) -> WebhookSecret:
        """The caller's secret, its row written on first use."""
        state = self.state(owner)
        if state.created_at is None:
            state = self._create(owner)
        return self._view(state)

    # --- rotating -----------------------------------------------------------------------

    def rotate(self, owner: str, overlap_seconds: int) -> WebhookSecret:
        """A new secret for ``owner``; the old one keeps signing for ``overlap_seconds``.

        Conditional on the generation read, so concurrent rotations each take effect
        (none is lost, none skips a generation)."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        for _ in range(ROTATION_ATTEMPTS):
            state = self.state(owner)
            now = utc_now()
            new = state.rotated(now, overlap_seconds)
            values: dict[str, Any] = {
                ":generation": new.generation,
                ":created": new.created_at,
                ":rotated": new.rotated_at,
                ":until": new.previous_expires_at,
            }
            if state.created_at is None:  # no row yet
                condition: dict[str, Any] = {
                    "ConditionExpression": "attribute_not_exists(#owner)",
                    "ExpressionAttributeNames": {"#owner": "owner"},
                }
            else:
                condition = {"ConditionExpression": "generation = :seen"}
                values[":seen"] = state.generation
            try:
                self._table.update_item(
                    Key={"owner": owner},
                    UpdateExpression="SET generation = :generation, createdAt = if_not_exists(createdAt, :created), "
                    "rotatedAt = :rotated, previousExpiresAt = :until",
                    ExpressionAttributeValues=values,
                    **condition,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # rotated (or created) meanwhile: rotate from what is there now
                raise
            return self._view(new)
        raise RotationConflict(f"the webhook secret changed {ROTATION_ATTEMPTS} times during this rotation")

    # --- internals ----------------------------------------------------------------------

    def _create(self, owner: str) -> SecretState:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        state = SecretState(owner=owner, created_at=iso(utc_now()))
        try:
            self._table.put_item(
                Item={"owner": owner, "generation": state.generation, "createdAt": state.created_at},
                ConditionExpression="attribute_not_exists(#owner)",
                ExpressionAttributeNames={"#owner": "owner"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self.state(owner)  # another request created (or rotated) it first
        return state

    def _view(self, state: SecretState) -> WebhookSecret:
        now = utc_now()
        return WebhookSecret(
            secret=derive_secret(self.master_key.value(), state.owner, state.generation),
            generation=state.generation,
            created_at=state.rotated_at or state.created_at or iso(now),
            previous_valid_until=state.previous_expires_at if state.previous_active(now) else None,
        )


def _state(item: dict[str, Any]) -> SecretState:
    return SecretState(
        owner=str(item["owner"]),
        generation=int(item.get("generation", 1)),
        created_at=item.get("createdAt"),
        rotated_at=item.get("rotatedAt"),
        previous_expires_at=item.get("previousExpiresAt"),
    )

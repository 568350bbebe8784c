"""Per-caller signing secrets: derivation, rotation state, multi-signature headers (pure logic)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from segjob_core.signing import SecretState, SigningKeyInvalid, derive_secret, signature_header

MASTER = b"k" * 32
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_derivation_is_frozen() -> None:
    # Receivers hold these values: a change of the derivation would break every one of
    # them on the next deploy. This known answer pins it (NIST SP 800-108, HMAC-SHA256).
    assert derive_secret(MASTER, ALICE, 1) == "whsec_8t9zLgBUpOyMYymifa0/0t+hV+5/VdGxsCun4cmYA10="
    assert derive_secret(MASTER, ALICE, 2) == "whsec_scxqpSNVM/8rVxAZeCRz8FHbHZqDpxsr7sqqN+4/0UQ="


def test_secrets_differ_per_caller_generation_and_master_key() -> None:
    secrets = {
        derive_secret(MASTER, ALICE, 1),
        derive_secret(MASTER, ALICE, 2),
        derive_secret(MASTER, BOB, 1),
        derive_secret(b"m" * 32, ALICE, 1),
        # no ambiguity between the owner and the generation in the derivation's input
        derive_secret(MASTER, ALICE + "\x001", 1),
    }
    assert len(secrets) == 5
    for secret in secrets:
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32


@pytest.mark.parametrize("master", [b"", b"short"])
def test_a_short_master_key_is_refused(master: bytes) -> None:
    with pytest.raises(SigningKeyInvalid):
        derive_secret(master, ALICE, 1)


def test_generations_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        derive_secret(MASTER, ALICE, 0)


def test_a_caller_without_a_row_signs_with_generation_one() -> None:
    assert SecretState(owner=ALICE).active_generations(NOW) == [1]


def test_rotation_overlaps_then_only_the_new_generation_signs() -> None:
    rotated = SecretState(owner=ALICE, created_at="2026-11-01T00:00:00.000Z").rotated(NOW, 3600)

    assert rotated.generation == 2
    assert rotated.created_at == "2026-11-01T00:00:00.000Z"
    assert rotated.rotated_at == "2026-11-22T12:00:00.000Z"
    assert rotated.active_generations(NOW + timedelta(minutes=59)) == [2, 1]
    assert rotated.active_generations(NOW + timedelta(hours=1)) == [2]


def test_zero_overlap_revokes_the_old_secret_at_once() -> None:
    assert SecretState(owner=ALICE).rotated(NOW, 0).active_generations(NOW) == [2]


def test_a_rotation_during_an_overlap_drops_the_oldest() -> None:
    twice = SecretState(owner=ALICE).rotated(NOW, 3600).rotated(NOW + timedelta(minutes=5), 3600)

    assert twice.active_generations(NOW + timedelta(minutes=6)) == [3, 2]


@pytest.mark.parametrize("overlap", [-1, 7 * 86400 + 1])
def test_overlap_is_bounded(overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        SecretState(owner=ALICE).rotated(NOW, overlap)


def test_a_header_with_two_signatures_verifies_with_either_secret_only() -> None:
    new, old, other = (
        derive_secret(MASTER, ALICE, 2),
        derive_secret(MASTER, ALICE, 1),
        derive_secret(MASTER, BOB, 1),
    )
    body = '{"type":"job.succeeded"}'
    sent_at = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header([new, old], "msg_1", sent_at, body),
    }

    assert headers["webhook-signature"].count("v1,") == 2
    assert Webhook(new).verify(body, headers) == Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_a_signature_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one"):
        signature_header([], "msg_1", NOW, "{}")

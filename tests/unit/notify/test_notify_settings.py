"""NotifySettings: the function's environment as template.yaml sets it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

REQUIRED = {
    "WEBHOOK_MASTER_KEY_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:segjob/webhook-AbCdEf",
    "WEBHOOK_SECRET_STATE_TABLE": "segjob-WebhookSecretStateTable-1A2B3C",
    "JOBS_BUCKET": "segjob-jobs-123456789012",
}


def test_defaults(notify_fn):
    settings = notify_fn.settings.NotifySettings.from_env(REQUIRED)

    assert settings.webhook_master_key_arn == REQUIRED["WEBHOOK_MASTER_KEY_ARN"]
    assert settings.webhook_secret_state_table == REQUIRED["WEBHOOK_SECRET_STATE_TABLE"]
    assert settings.jobs_bucket == REQUIRED["JOBS_BUCKET"]
    assert settings.webhook_timeout_seconds == 10.0
    assert settings.allow_loopback_webhooks is False
    assert settings.result_url_ttl == 3600


def test_every_variable_parsed(notify_fn):
    environ = {
        **REQUIRED,
        "WEBHOOK_TIMEOUT_SECONDS": "2.5",
        "ALLOW_LOOPBACK_WEBHOOKS": "true",
        "RESULT_URL_TTL": "900",
        "UNRELATED": "ignored",
    }

    settings = notify_fn.settings.NotifySettings.from_env(environ)

    assert settings.webhook_timeout_seconds == 2.5
    assert settings.allow_loopback_webhooks is True
    assert settings.result_url_ttl == 900


def test_reads_the_process_environment(notify_fn, monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "1")

    settings = notify_fn.settings.NotifySettings.from_env()

    assert settings.jobs_bucket == REQUIRED["JOBS_BUCKET"]
    assert settings.allow_loopback_webhooks is True


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("False", False), ("0", False), ("TRUE", True)]
)
def test_loopback_flag_spellings(notify_fn, raw, expected):
    environ = {**REQUIRED, "ALLOW_LOOPBACK_WEBHOOKS": raw}
    assert notify_fn.settings.NotifySettings.from_env(environ).allow_loopback_webhooks is expected


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_required_variables(notify_fn, missing):
    environ = {name: value for name, value in REQUIRED.items() if name != missing}

    with pytest.raises(ValidationError, match=missing):
        notify_fn.settings.NotifySettings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WEBHOOK_TIMEOUT_SECONDS", "0"),
        ("WEBHOOK_TIMEOUT_SECONDS", "soon"),
        ("ALLOW_LOOPBACK_WEBHOOKS", "maybe"),
        ("RESULT_URL_TTL", "10"),
        ("RESULT_URL_TTL", str(7 * 24 * 3600 + 1)),  # beyond SigV4's 7-day maximum
        ("JOBS_BUCKET", ""),
        ("WEBHOOK_MASTER_KEY_ARN", ""),
        ("WEBHOOK_SECRET_STATE_TABLE", ""),
    ],
)
def test_invalid_values_refused(notify_fn, name, raw):
    with pytest.raises(ValidationError, match=name):
        notify_fn.settings.NotifySettings.from_env({**REQUIRED, name: raw})


def test_settings_are_immutable(notify_fn):
    settings = notify_fn.settings.NotifySettings.from_env(REQUIRED)

    with pytest.raises(ValidationError):
        settings.jobs_bucket = "other"

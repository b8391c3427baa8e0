"""Detection settings: the spec's defaults, JSON and environment-style values, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cvpn_shared.monitoring.detection.config import DetectionSettings


def test_defaults_are_the_specs() -> None:
    settings = DetectionSettings()

    assert (settings.r1_failures, settings.r1_window_seconds) == (5, 600)
    assert (settings.r2_failures, settings.r2_window_seconds) == (5, 600)
    assert (settings.r3_distinct_ips, settings.r3_failures, settings.r3_window_seconds) == (5, 10, 1800)
    assert (settings.r4_distinct_users, settings.r4_window_seconds) == (5, 600)
    assert (settings.r5_distinct_users, settings.r5_window_seconds) == (10, 86400)
    assert settings.r6_window_seconds == 1800
    assert set(settings.r7_reasons) == {
        "authorization-policy-deny",
        "client-connect-failed",
        "signature-invalid",
        "tenant-mismatch",
    }
    assert (settings.cooldown_seconds, settings.recurrence_window_seconds) == (3600, 86400)
    assert settings.allowlist_cidrs == () and settings.allowlist_users == ()


def test_from_json_keeps_defaults_for_missing_keys() -> None:
    settings = DetectionSettings.from_json('{"r1_failures": 8, "allowlist_cidrs": ["10.0.0.0/8"]}')

    assert settings.r1_failures == 8
    assert settings.r2_failures == 5
    assert [str(network) for network in settings.allowlist_networks] == ["10.0.0.0/8"]
    assert DetectionSettings.from_json("") == DetectionSettings()


def test_from_env_reads_a_document_then_single_values() -> None:
    environ = {
        "DETECTION_SETTINGS": '{"r1_failures": 8, "cooldown_seconds": 60}',
        "DETECTION_R1_FAILURES": "7",
        "DETECTION_ALLOWLIST_CIDRS": "10.0.0.0/8, 192.0.2.0/24",
        "DETECTION_ALLOWLIST_USERS": '["svc-backup"]',
        "DETECTION_RUNBOOK_URL": "https://wiki.example.com/cvpn",
        "UNRELATED": "x",
    }

    settings = DetectionSettings.from_env(environ)

    assert settings.r1_failures == 7
    assert settings.cooldown_seconds == 60
    assert settings.allowlist_cidrs == ("10.0.0.0/8", "192.0.2.0/24")
    assert settings.allowlist_users == ("svc-backup",)
    assert settings.runbook_url == "https://wiki.example.com/cvpn"
    assert DetectionSettings.from_env({}) == DetectionSettings()


@pytest.mark.parametrize(
    "values",
    [
        {"allowlist_cidrs": ["not-a-cidr"]},
        {"enabled_rules": ["R9"]},
        {"r1_failures": 0},
        {"r1_failures": 100},  # more than the failures an entity's record keeps by default
        {"unknown_threshold": 3},
    ],
)
def test_invalid_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DetectionSettings.model_validate(values)


def test_state_lives_longer_than_any_memory_a_rule_needs() -> None:
    settings = DetectionSettings()

    assert settings.state_ttl_seconds >= settings.r5_window_seconds + settings.recurrence_window_seconds
    assert settings.episode_gap_seconds("R1") == 3600  # the cooldown
    assert settings.episode_gap_seconds("R5") == 86400  # its window, longer

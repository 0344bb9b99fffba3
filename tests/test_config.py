"""Settings read from the environment: a bad value stops start-up with the variable's name."""

from __future__ import annotations

import pytest

from heliport.config import ConfigError, Settings


def test_the_log_backlog_bound_is_read_from_the_environment() -> None:
    assert Settings.from_env({"HELIPORT_MAX_LOG_BACKLOG": "250"}).max_log_backlog == 250
    assert Settings.from_env({}).max_log_backlog == Settings.max_log_backlog


@pytest.mark.parametrize(
    ("raw", "message"),
    [("0", "HELIPORT_MAX_LOG_BACKLOG must be at least 1, got 0"), ("many", "must be an integer, got 'many'")],
)
def test_a_log_backlog_bound_below_one_or_not_a_number_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"HELIPORT_MAX_LOG_BACKLOG": raw})


def test_the_aurora_settings_and_the_database_connect_bound_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "HELIPORT_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:rds",
            "HELIPORT_DATABASE_HOST": "cluster.example",
            "HELIPORT_DATABASE_NAME": "heliport",
            "HELIPORT_DATABASE_PORT": "6432",
            "HELIPORT_DATABASE_CONNECT_TIMEOUT": "2.5",
        }
    )
    assert settings.database_secret_arn == "arn:aws:secretsmanager:us-east-1:1:secret:rds"
    assert (settings.database_host, settings.database_name, settings.database_port) == (
        "cluster.example",
        "heliport",
        6432,
    )
    assert settings.database_connect_timeout == 2.5
    defaults = Settings.from_env({})
    assert (defaults.database_port, defaults.database_connect_timeout) == (5432, 10.0)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("HELIPORT_DATABASE_CONNECT_TIMEOUT", "soon", "HELIPORT_DATABASE_CONNECT_TIMEOUT must be a number, got 'soon'"),
        ("HELIPORT_DATABASE_CONNECT_TIMEOUT", "0", "HELIPORT_DATABASE_CONNECT_TIMEOUT must be a positive number"),
        ("HELIPORT_DATABASE_CONNECT_TIMEOUT", "nan", "HELIPORT_DATABASE_CONNECT_TIMEOUT must be a positive number"),
        ("HELIPORT_DATABASE_PORT", "pg", "HELIPORT_DATABASE_PORT must be an integer, got 'pg'"),
        ("HELIPORT_DATABASE_PORT", "0", "HELIPORT_DATABASE_PORT must be at least 1, got 0"),
    ],
)
def test_a_bad_database_setting_is_refused_by_name(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: raw})


def test_the_json_depth_bound_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).max_json_depth == Settings.max_json_depth == 128
    assert Settings.from_env({"HELIPORT_MAX_JSON_DEPTH": "64"}).max_json_depth == 64


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("deep", "HELIPORT_MAX_JSON_DEPTH must be an integer, got 'deep'"),
        ("8", "HELIPORT_MAX_JSON_DEPTH must be at least 16, got 8"),
        ("1000", "HELIPORT_MAX_JSON_DEPTH must be at most 512, got 1000"),
    ],
)
def test_a_json_depth_bound_outside_what_the_decoders_can_honour_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"HELIPORT_MAX_JSON_DEPTH": raw})


def test_the_log_hand_off_and_the_query_body_cap_are_read_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert defaults.log_before_last_byte is True and defaults.max_query_body_bytes == 1024 * 1024
    changed = Settings.from_env({"HELIPORT_LOG_BEFORE_LAST_BYTE": "false", "HELIPORT_MAX_QUERY_BODY_BYTES": "4096"})
    assert changed.log_before_last_byte is False and changed.max_query_body_bytes == 4096
    with pytest.raises(ConfigError, match="HELIPORT_MAX_QUERY_BODY_BYTES must be at least 1024"):
        Settings.from_env({"HELIPORT_MAX_QUERY_BODY_BYTES": "10"})


def test_the_safety_check_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "HELIPORT_PROMPT_GUARD_MODEL": "groq:meta-llama/llama-prompt-guard-2-86m",
            "HELIPORT_PROMPT_GUARD_THRESHOLD": "0.8",
            "HELIPORT_LLAMA_GUARD_MODEL": "groq:meta-llama/llama-guard-4-12b",
            "HELIPORT_BEDROCK_GUARDRAIL": "abc123:DRAFT",
            "HELIPORT_SAFETY_FAIL_OPEN": "true",
        }
    )
    assert settings.prompt_guard_model == "groq:meta-llama/llama-prompt-guard-2-86m"
    assert settings.prompt_guard_threshold == 0.8
    assert settings.llama_guard_model == "groq:meta-llama/llama-guard-4-12b"
    assert settings.bedrock_guardrail == "abc123:DRAFT"
    assert settings.safety_fail_open is True
    assert Settings.from_env({}).safety_fail_open is False


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("HELIPORT_PROMPT_GUARD_THRESHOLD", "1.5", r"must be a probability in \(0, 1\], got 1.5"),
        ("HELIPORT_PROMPT_GUARD_THRESHOLD", "0", "must be a positive number"),
        ("HELIPORT_PROMPT_GUARD_MODEL", "llama-prompt-guard", "must be <provider>:<model>"),
        ("HELIPORT_LLAMA_GUARD_MODEL", "groq:", "must be <provider>:<model>"),
        ("HELIPORT_BEDROCK_GUARDRAIL", "abc123", "must be <guardrail id>:<version>"),
    ],
)
def test_a_bad_safety_check_setting_is_refused_by_name(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env({name: raw})
    assert str(caught.value).startswith(name)


def test_the_prompt_cache_lifetime_is_read_from_the_environment() -> None:
    assert Settings.from_env({"HELIPORT_PROMPT_CACHE_TTL": "0"}).prompt_cache_ttl == 0
    assert Settings.from_env({}).prompt_cache_ttl == Settings.prompt_cache_ttl
    with pytest.raises(ConfigError, match="HELIPORT_PROMPT_CACHE_TTL must be a number of seconds, 0 or more"):
        Settings.from_env({"HELIPORT_PROMPT_CACHE_TTL": "-1"})

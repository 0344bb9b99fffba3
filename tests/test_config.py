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

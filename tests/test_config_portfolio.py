"""The portfolio tracker's settings: defaults, environment overrides, bounds."""

from __future__ import annotations

import pytest

from coinwire.config import ConfigError, load_settings


def test_defaults_and_environment() -> None:
    settings = load_settings(env={})
    assert settings.portfolio_tracking is True and settings.portfolio_sample_interval == 1.0
    env = {"COINWIRE_PORTFOLIO_TRACKING": "false", "COINWIRE_PORTFOLIO_SAMPLE_INTERVAL": "2.5"}
    settings = load_settings(env=env)
    assert settings.portfolio_tracking is False and settings.portfolio_sample_interval == 2.5


@pytest.mark.parametrize("interval", [0.0, 0.01, 901])
def test_a_sample_interval_out_of_bounds_is_refused(interval: float) -> None:
    with pytest.raises(ConfigError, match=r"portfolio_sample_interval must be between 0\.05 and 900 seconds"):
        load_settings(env={}, overrides={"portfolio_sample_interval": interval})

"""The portfolio tracker's settings: defaults, environment overrides, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinwire.app import Platform
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


async def test_the_platform_builds_the_tracker_only_when_tracking_is_on(tmp_path: Path) -> None:
    on = Platform(load_settings(env={}, overrides={"data_dir": str(tmp_path / "on"), "portfolio_sample_interval": 3.0}))
    assert on.portfolio is not None and on.portfolio.sample_interval == 3.0 and on.portfolio.gateway is on.gateway
    off = Platform(load_settings(env={}, overrides={"data_dir": str(tmp_path / "off"), "portfolio_tracking": False}))
    assert off.portfolio is None

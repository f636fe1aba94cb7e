"""api.access: edge and sign-up limits read from the environment, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinwire.api.access import Access, edge_limits
from coinwire.config import ConfigError, load_settings
from coinwire.store import Store


def test_the_body_timeout_defaults_to_ten_seconds_and_is_read_from_the_environment() -> None:
    assert edge_limits({}).body_timeout == 10.0
    assert edge_limits({"COINWIRE_BODY_TIMEOUT": "2.5"}).body_timeout == 2.5


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "3601"])
def test_a_bad_body_timeout_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="COINWIRE_BODY_TIMEOUT"):
        edge_limits({"COINWIRE_BODY_TIMEOUT": value})


def _access(tmp_path: Path, env: dict[str, str]) -> Access:
    settings = load_settings(overrides={"data_dir": str(tmp_path)}, env={})
    return Access(settings, Store(settings.resolved_store_url), env, lambda: {"USD"})


def test_sign_ups_an_hour_per_address_default_to_ten_and_are_read_from_the_environment(tmp_path: Path) -> None:
    assert _access(tmp_path, {}).registration.per_hour == 10
    assert _access(tmp_path, {"COINWIRE_REGISTER_PER_HOUR": "3"}).registration.per_hour == 3


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5", "100001"])
def test_a_bad_sign_up_limit_is_a_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="COINWIRE_REGISTER_PER_HOUR"):
        _access(tmp_path, {"COINWIRE_REGISTER_PER_HOUR": value})

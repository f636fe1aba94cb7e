"""auth.access: edge limits read from the environment, with clear errors for bad values."""

from __future__ import annotations

import pytest

from coinwire.auth.access import edge_limits
from coinwire.config import ConfigError


def test_the_body_timeout_defaults_to_ten_seconds_and_is_read_from_the_environment() -> None:
    assert edge_limits({}).body_timeout == 10.0
    assert edge_limits({"COINWIRE_BODY_TIMEOUT": "2.5"}).body_timeout == 2.5


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "3601"])
def test_a_bad_body_timeout_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="COINWIRE_BODY_TIMEOUT"):
        edge_limits({"COINWIRE_BODY_TIMEOUT": value})

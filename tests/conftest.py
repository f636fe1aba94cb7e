"""Shared test fixtures: where the recorded market data lives, and real-service requirements."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("COINWIRE_SHARED_DATA", ROOT.parent / "shared" / "data"))
REQUIRE_SERVICES = os.environ.get("COINWIRE_REQUIRE_SERVICES") == "1"

POSTGRES_URL = os.environ.get("COINWIRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("COINWIRE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NATS_URL = os.environ.get("COINWIRE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a reason when the data is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"recorded market data not found at {path} (../shared/data is absent)")
    return path


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a real service is down, or fail when COINWIRE_REQUIRE_SERVICES=1 (CI)."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}, and COINWIRE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)

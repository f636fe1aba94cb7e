"""A server on its embedded defaults records one rate a minute for every market with a running feed, from its first start.

The system schedule `rates` (services/scheduler.py, `record_rates` on by default) calls the rate
retriever (services/rates.py) at each minute; what it stored is what `/api/v1/rates` answers, one
row per market per minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path)
    proc.start()
    yield proc
    proc.stop()


def test_the_default_schedule_stores_a_rate_a_minute_for_each_fed_market(server: ServerProcess) -> None:
    with server.client(timeout=30) as admin:
        system = [s for s in admin.get("/api/v1/schedules").json() if s["name"] == "rates"]
        assert len(system) == 1 and system[0]["every"] == "1m" and system[0]["job"]["kind"] == "retrieve_rates"
        deadline = time.monotonic() + 95  # the next minute's tick, whenever the server started in its minute
        rows: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            rows = admin.get("/api/v1/rates/demo/BTC_USDT", params={"since": "1h"}).json()["rates"]
            if rows:
                break
            time.sleep(1)
        assert rows, "no rate stored within a minute and a half of the start"
        minutes = [row["time"] for row in rows]
        assert all(m % 60_000 == 0 for m in minutes) and len(set(minutes)) == len(minutes)
        for symbol in ("ETH_USDT", "SOL_USDT"):  # every market the demo feed runs, in the same tick
            other = admin.get(f"/api/v1/rates/demo/{symbol}", params={"since": "1h"}).json()["rates"]
            assert [row["time"] for row in other] == minutes
        tick = admin.get(f"/api/v1/schedules/{system[0]['id']}").json()["last_tick"]
        assert tick is not None

"""SIGKILL a real gateway process holding perpetual positions: after the restart positions, margin and the ledger agree.

The child (tests/venues/paper_perp_child.py) trades the demo's BTC/USDT:USDT with funding every
second and keeps placing orders until it is killed mid-stream. A new gateway on the same store
(SQLite, PostgreSQL) then finds: the ledger consistent with every stored line; alice's isolated
long with its isolated margin held on her wallet under the position's hold and nothing else held;
bob's cross short at the size his last committed order left; each position's funding equal to
the sum of its stored funding payments; no balance negative. It trades on from there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coinwire.core.positions import MarginMode
from tests.conftest import POSTGRES_URL, postgres_schema
from tests.services.gateway_running import running_gateway
from tests.venues.paper_perp_child import EXCHANGE, order

ROOT = Path(__file__).resolve().parents[2]


def _child(url: str, folder: Path, schema: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.venues.paper_perp_child", url, str(folder), *([schema] if schema else [])],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_positions_margin_and_ledger_agree_after_a_sigkill(tmp_path: Path, backend: str) -> None:
    url, schema_cm = (f"sqlite:///{tmp_path / 'store.db'}", None) if backend == "sqlite" else (POSTGRES_URL, postgres_schema())
    schema = None if schema_cm is None else await schema_cm.__aenter__()
    try:
        child = _child(url, tmp_path, schema)
        try:
            deadline = time.monotonic() + 60
            while not (tmp_path / f"ready-{child.pid}").exists():
                assert child.poll() is None, "the child gateway died before it was ready"
                assert time.monotonic() < deadline, "the child gateway never got ready"
                time.sleep(0.05)
            time.sleep(2.5)  # funding twice or more, and orders in flight
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        # the restart's feed stops once its exchange is ready, and what it brought is applied: funding comes every
        # second, and one settled between two reads below would make them disagree
        async with running_gateway(tmp_path, url, schema, EXCHANGE, hold_book=True) as gateway:
            await gateway.caught_up()
            funded = await gateway.store.funding_history(limit=10_000)
            ledger = gateway.ledger
            ledger.check()
            assert ledger.totals().wallets == (await gateway.store.line_totals()).wallets
            book = ledger.positions
            [alice] = [p for p in book.all() if p.account_id == 1 and p.size]
            [bob] = [p for p in book.all() if p.account_id == 2 and p.size]
            inst = gateway.venues["perp"].markets["BTC/USDT:USDT"].instrument
            assert alice.size == inst.parse_size("0.5") and alice.margin_mode is MarginMode.ISOLATED and alice.leverage == 20
            assert ledger.hold_of(alice.hold_id) == alice.isolated_margin > 0
            assert bob.margin_mode is MarginMode.CROSS and bob.size in (-inst.parse_size("0.3"), -inst.parse_size("0.31"))
            holds = ledger.holds()
            assert set(holds) <= {alice.hold_id, bob.hold_id} | {o.id for o in gateway.orders.values()}
            assert len(funded) >= 2  # funding came while it ran
            for pos in (alice, bob):
                assert pos.funding == sum(f.amount for f in funded if f.account_id == pos.account_id and f.side is pos.side)
            assert all(w.balance >= 0 and w.hold >= 0 for w in ledger.all_wallets())
            # it trades on: bob closes at the mirror
            view = await gateway.close_position(account_id=bob.account_id, exchange="perp", symbol=bob.symbol, owner_id=2)
            assert view.status == "done" and not bob.size
            await gateway.make_order(order(gateway, 1, "sell", "0.5", "alice-out", reduce_only=True))
            assert not alice.size and ledger.hold_of(alice.hold_id) == 0
            ledger.check()
    finally:
        if schema_cm is not None:
            await schema_cm.__aexit__(None, None, None)

"""A paper perpetual exchange fed by the recorded Binance USD-M capture: a position opened on it follows the market.

The capture (../shared/data/binance-usdm-l2, `pu`-chained diffs, book tickers and trades) has
no mark-price stream, so the mark is the median of best bid, best ask and last trade. With a
long open, the replay produces `positions_updated` notifications whose unrealised PnL changes
with the market, each equal to core's arithmetic at the notified mark; the other user hears nothing.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from coinwire.app import build_feed
from coinwire.bus.memory import MemoryBus
from coinwire.config import load_settings
from coinwire.core.numbers import ATTO_DECIMALS, str_to_atto, units_to_str
from coinwire.core.orders import OrderRequest, OrderType, Side
from coinwire.core.positions import unrealised_pnl
from coinwire.messages import Message, PositionUpdate, PositionView
from coinwire.services.gateway import Gateway
from coinwire.store import Store
from tests.conftest import shared_data

EX = "usdm"
SYMBOL = "BTC/USDT:USDT"


async def test_a_long_on_the_usdm_replay_is_told_its_changing_unrealised_pnl(tmp_path: Path) -> None:
    capture = shared_data("binance-usdm-l2", "btcusdt_20240808.gz")
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [{
        "name": EX, "feed": "replay", "replay_market": "binanceusdm", "replay_paths": [str(capture)], "replay_speed": None,
        "replay_loop": False, "paper_funds": {"USDT": "5000"}}]})
    feed = build_feed(settings.exchanges[0])
    inst = feed.instruments()[0]
    assert (inst.symbol, inst.kind, inst.settle, inst.max_leverage) == (SYMBOL, "perpetual", "USDT", 125)
    store, bus = Store(f"sqlite:///{tmp_path / 'replay.db'}"), MemoryBus()
    await store.start()
    await bus.start()
    now = [0]
    gateway = Gateway(settings, store, bus, clock=lambda: now[0])
    views: list[PositionUpdate] = []

    def keep(subject: str, message: Message) -> None:
        assert isinstance(message, PositionUpdate)
        views.append(message)

    await bus.subscribe("position.>", keep, types=frozenset({PositionUpdate}), inline=True)
    try:
        await gateway.start()
        from coinwire.messages import Markets

        await gateway.apply_market(Markets(EX, [inst]))
        alice = (await gateway.account_for(1, EX)).id
        bob = (await gateway.account_for(2, EX)).id
        opened = False
        for count, (recv_ts, message) in enumerate(feed.messages()):
            now[0] = recv_ts
            await gateway.apply_market(message)
            venue = gateway.venues[EX]
            if not opened and venue.status == "ready" and venue.market(SYMBOL).last_trade is not None:  # type: ignore[union-attr]
                order = OrderRequest(exchange=EX, instrument=inst, side=Side.BUY, type=OrderType.MARKET,
                                     size=inst.parse_size("0.05"), limit=0, cancel_after=0, client_oid="long", wallet_set_id=None,
                                     run_id=None, owner_id=1)
                answer = await gateway.make_order(order)
                assert answer.status == "done" and answer.filled_size == "0.05"
                opened = True
            if opened and count > 40_000:
                break
        assert opened
        mine = [u.position for u in views if u.account_id == alice]
        assert all(u.account_id == alice and u.owner_id == 1 for u in views)  # bob's connections are told nothing
        assert gateway.positions(accounts={bob}) == []
        pnls = {v.unrealised_pnl for v in mine}
        assert len(pnls) > 10, pnls  # the market moved it, again and again
        assert len({v.mark_price for v in mine}) > 10
        assert {v.side for v in mine} == {"long"} and len({v.seq for v in mine[1:]}) == 1  # marks alone: one stored change
        for view in mine[-20:]:
            assert view.unrealised_pnl == _expected_pnl(gateway, view)
        assert gateway.venues[EX].mark_rule(SYMBOL) == "median of best bid, best ask and last trade"  # type: ignore[attr-defined]
        gateway.ledger.check()
    finally:
        await gateway.close()
        await bus.close()
        await store.close()


def _expected_pnl(gateway: Gateway, view: PositionView) -> str:
    """core's unrealised PnL of the stored position at the view's mark, as decimal text."""
    inst = gateway.venues[EX].markets[SYMBOL].instrument
    [pos] = [p for p in gateway.ledger.positions.all() if p.account_id == view.account]
    mark = inst.parse_price(view.mark_price)
    pnl = unrealised_pnl(pos, inst, mark)
    assert Decimal(view.unrealised_pnl) == Decimal(units_to_str(pnl, ATTO_DECIMALS))
    assert str_to_atto(view.unrealised_pnl) == pnl
    return units_to_str(pnl, ATTO_DECIMALS)

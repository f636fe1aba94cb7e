"""The portfolio tracker over a real gateway and store (SQLite and PostgreSQL): fills across several 15-minute boundaries
with a driven clock, every candle checked against an independent computation (holdings from the fills times the book's
mid at the boundary, exact at 8 places), volumes, rollups in three zones, two users and a viewer, and a restart
(missing and partial buckets)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import numpy as np
import pytest

from coinwire.api.wallet_views import WalletViews
from coinwire.app import build_feed
from coinwire.bus.memory import MemoryBus
from coinwire.cache.memory import MemoryCache
from coinwire.config import load_settings
from coinwire.core.errors import NotFound, NotReady
from coinwire.core.numbers import ATTO
from coinwire.core.orders import Fill, OrderRequest, OrderType, Side
from coinwire.core.portfolio import BUCKET_S, CandleBuilder
from coinwire.core.rollup import OHLCV, bucket_starts, parse_timeframe, rollup
from coinwire.messages import BookSnapshot, TradeTick
from coinwire.services.gateway import Gateway
from coinwire.services.market_data import MarketData, build_refdata
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleRow, PortfolioCandleWriter, load_portfolio_candles
from coinwire.store.tables import preferences
from tests.conftest import POSTGRES_URL, require_service
from tests.feeds.binance_server import ServerRunner
from tests.refdata.refdata_server import OXR_APP_ID, OXR_LATEST, RefDataVenue
from tests.services.gateway_running import running_gateway
from tests.services.portfolio_rig import Clock, Rig, portfolio_rig, tracking

EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 3600, "seed": 5, "symbols": ["BTC/USDT"],
            "paper_funds": {"USDT": "10000", "BTC": "1"}}  # fmt: skip
S = 10**9
Q = Decimal("0.00000001")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cw.db'}", None
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"pf_{uuid.uuid4().hex[:16]}"
    yield POSTGRES_URL, schema
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def recorded_fills(g: Gateway) -> list[Fill]:
    """The fills the gateway makes from now on, in order (a listener of its executions)."""
    fills: list[Fill] = []

    class Recorder:
        async def on_market(self, message: object) -> None: ...

        def on_execution(self, orders: object, new: list[Fill]) -> None:
            fills.extend(new)

    g.listeners.append(Recorder())
    return fills


async def set_book(r: Rig, bid: str, ask: str) -> Decimal:
    market = r.gateway.venues["demo"].markets["BTC/USDT"]
    inst = market.instrument
    big = inst.parse_size("1000", "size")
    message = BookSnapshot("demo", "BTC/USDT", r.clock.now, market.sync.last_update_id + 1,
                           [(inst.parse_price(bid, "price"), big)], [(inst.parse_price(ask, "price"), big)])  # fmt: skip
    await r.gateway.apply_market(message)
    return (Decimal(bid) + Decimal(ask)) / 2


async def trade(r: Rig, owner: int, side: Side, size: str) -> None:
    market = r.gateway.venues["demo"].markets["BTC/USDT"]
    inst = market.instrument
    await r.gateway.make_order(OrderRequest(
        exchange="demo", instrument=inst, side=side, type=OrderType.MARKET, size=inst.parse_size(size, "size"), limit=0,
        cancel_after=0, client_oid=uuid.uuid4().hex, wallet_set_id=None, run_id=None, owner_id=owner))  # fmt: skip


def holdings_at(fills: list[Fill], end_ns: int, size_decimals: int) -> tuple[Decimal, Decimal]:
    """BTC and USDT of an account funded with 1 BTC and 10,000 USDT, after its fills stamped at or before `end_ns`."""
    btc, usdt = Decimal(1), Decimal(10_000)
    for f in fills:
        if f.ts > end_ns:
            continue
        size = Decimal(f.size).scaleb(-size_decimals)
        notional = Decimal(f.notional).scaleb(-18)
        sign = 1 if f.side == Side.BUY else -1
        btc += sign * size
        usdt -= sign * notional + Decimal(f.fee).scaleb(-18)
    return btc, usdt


async def test_candles_over_several_boundaries_equal_an_independent_computation(store_url: tuple[str, str | None], tmp_path: Path) -> None:
    url, schema = store_url
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S - 3 * BUCKET_S  # a boundary, close to the feed's wall time
    clock = Clock(t0 * S + 60 * S)
    async with portfolio_rig(tmp_path, url, schema, clock, EXCHANGE) as r:
        g = r.gateway
        alice, bob = await g.account_for(1, "demo"), await g.account_for(2, "demo")
        g.accounts.set_member(alice.id, 3, "view")  # user 3 may view alice's account: it is not in their total
        fills = recorded_fills(g)
        mid = await set_book(r, "30000", "30002")
        mids_seen = [mid]  # the mid of the tracker's first samples (start, and after the first buy)
        await r.tracker.start(loop=False)
        seen: list[tuple[int, bool]] = []
        unsubscribe = r.tracker.listen("account", str(alice.id), lambda c, closed: seen.append((c.open_time, closed)))
        mids = {t0 + BUCKET_S: mid}

        clock.now = (t0 + 300) * S
        await trade(r, 1, Side.BUY, "0.1")
        await r.tracker.step()
        clock.now = (t0 + 500) * S
        mids[t0 + BUCKET_S] = await set_book(r, "31000", "31010")
        high_mid = mids[t0 + BUCKET_S]
        clock.now = (t0 + 700) * S
        await r.tracker.step()
        mids[t0 + BUCKET_S] = await set_book(r, "29500", "29504")
        clock.now = (t0 + BUCKET_S) * S  # a fill exactly at the boundary: in the bucket that ends there
        await trade(r, 1, Side.SELL, "0.05")
        await trade(r, 2, Side.BUY, "0.2")
        await r.tracker.step()
        clock.now = (t0 + BUCKET_S + 1) * S
        mids[t0 + 2 * BUCKET_S] = await set_book(r, "30500", "30506")
        await trade(r, 1, Side.BUY, "0.01")
        clock.now = (t0 + 2 * BUCKET_S + 5) * S  # the pass after the boundary: the value at the boundary closes it
        await r.tracker.step()
        for b in range(3, 6):
            mids[t0 + b * BUCKET_S] = mids[t0 + 2 * BUCKET_S]
        clock.now = (t0 + 5 * BUCKET_S) * S  # three quiet buckets: flat
        await r.tracker.step()
        unsubscribe()
        await r.writer.flush()

        inst = g.venues["demo"].markets["BTC/USDT"].instrument
        assert {f.ts for f in fills} == {(t0 + 300) * S, (t0 + BUCKET_S) * S, (t0 + BUCKET_S + 1) * S}
        for account, owner in ((alice, 1), (bob, 2)):
            own = [f for f in fills if f.account_id == account.id]
            stored = await load_portfolio_candles(r.store, "account", str(account.id), "USD")
            assert stored is not None
            times = stored.candles.time.tolist()
            assert times == [t0 + i * BUCKET_S for i in range(5)]
            assert stored.statuses == ["partial", "complete", "complete", "complete", "complete"]
            for i, t in enumerate(times):
                end = t + BUCKET_S
                btc, usdt = holdings_at(own, end * S, inst.size_decimals)
                want_close = (btc * mids[end] + usdt).quantize(Q, rounding=ROUND_HALF_EVEN)
                assert Decimal(int(stored.candles.close[i])).scaleb(-8) == want_close, (owner, i)
                inside = [f for f in own if t * S < f.ts <= end * S]
                want_volume = sum((Decimal(f.notional).scaleb(-18) for f in inside), Decimal(0)).quantize(Q)
                assert Decimal(int(stored.candles.volume[i])).scaleb(-8) == want_volume, (owner, i)
                o, h, lo, c = (int(stored.candles.open[i]), int(stored.candles.high[i]), int(stored.candles.low[i]),
                               int(stored.candles.close[i]))  # fmt: skip
                assert h >= max(o, c) and lo <= min(o, c)
                if i:
                    assert o == int(stored.candles.close[i - 1])
            # alice's first bucket, sampled at the tracker's start (t0+60), after her buy (t0+300), at the 31,005 mid
            # (t0+700) and at the boundary: opened at the first sample, its high and low the extremes of all of them
            if owner == 1:
                samples = []
                for at, price in ((60, mids_seen[0]), (300, mids_seen[0]), (700, high_mid), (BUCKET_S, mids[t0 + BUCKET_S])):
                    btc, usdt = holdings_at(own, (t0 + at) * S, inst.size_decimals)
                    samples.append((btc * price + usdt).quantize(Q))
                first = [Decimal(int(col[0])).scaleb(-8) for col in
                         (stored.candles.open, stored.candles.high, stored.candles.low, stored.candles.close)]
                assert first == [samples[0], max(samples), min(samples), samples[-1]], (first, samples)
        # the user totals: each user's own account only (user 3's grant to alice's account adds nothing to theirs)
        for owner, account in ((1, alice), (2, bob)):
            total = await load_portfolio_candles(r.store, "user", str(owner), "USD")
            acc = await load_portfolio_candles(r.store, "account", str(account.id), "USD")
            assert total is not None and acc is not None and total.candles.close.tolist() == acc.candles.close.tolist()
        assert await load_portfolio_candles(r.store, "user", "3", "USD") is None
        with pytest.raises(NotFound):
            r.tracker.value_now("user", "3")
        assert r.tracker.value_now("account", str(alice.id)) == r.tracker.value_now("user", "1")
        assert r.tracker.holdings("user", "2")["BTC"] == Decimal("1.2")
        assert (t0, True) in seen and all(t >= t0 for t, _ in seen)

        # rollups of the stored candles in three zones equal an independent rollup of the same rows
        stored = await load_portfolio_candles(r.store, "account", str(alice.id), "USD")
        assert stored is not None
        for zone in ("UTC", "Europe/London", "Asia/Kathmandu"):
            assert rolled(stored.candles, "1h", zone) == independent(stored.candles, "1h", ZoneInfo(zone))


def rolled(c: OHLCV, timeframe: str, zone: str) -> list[tuple[int, ...]]:
    """core.rollup over the stored rows, as the API rolls them up."""
    t = c.time.tolist()
    starts = bucket_starts(parse_timeframe(timeframe), ZoneInfo(zone), t[0], t[-1] + BUCKET_S)
    return list(zip(*(col.tolist() for col in rollup(c, starts)), strict=True))


def independent(c: OHLCV, timeframe: str, tz: ZoneInfo) -> list[tuple[int, ...]]:
    """Group 15-minute rows by the local hour (or local day) they start in, then first/max/min/last/sum."""
    groups: dict[int, list[int]] = {}
    for i, t in enumerate(c.time.tolist()):
        local = datetime.fromtimestamp(t, tz)
        if timeframe == "1h":
            start = int(local.replace(minute=0, second=0).timestamp())
            if local.fold == 1:  # the autumn's repeated hour: its own bucket
                start = int(local.replace(minute=0, second=0, fold=1).timestamp())
        else:
            start = int(datetime(local.year, local.month, local.day, tzinfo=tz).timestamp())
        groups.setdefault(start, []).append(i)
    out = []
    for start, idx in sorted(groups.items()):
        out.append((start, int(c.open[idx[0]]), int(np.max(c.high[idx])), int(np.min(c.low[idx])), int(c.close[idx[-1]]),
                    int(np.sum(c.volume[idx]))))  # fmt: skip
    return out


async def test_display_currency_follows_the_owners_preference(tmp_path: Path) -> None:
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S
    clock = Clock(t0 * S + 10 * S)
    async with portfolio_rig(tmp_path, f"sqlite:///{tmp_path / 'cw.db'}", None, clock, EXCHANGE) as r:
        account = await r.gateway.account_for(4, "demo")
        async with r.store.engine.begin() as conn:
            await conn.execute(preferences.insert().values(user_id=4, time_zone="UTC", currency="USDT", crypto_decimals=6,
                                                           stable_decimals=2, mask=False, updated_at=0))  # fmt: skip
        mid = await set_book(r, "20000", "20002")
        await r.tracker.start(loop=False)
        assert r.tracker.currency_of("account", str(account.id)) == "USDT"
        assert r.tracker.currency_of("user", "99") == "USD"  # a user with nothing yet: the default
        assert r.tracker.value_now("account", str(account.id)) == mid + 10_000
        with pytest.raises(Exception) as bad:
            r.tracker.forming("planet", "1")
        assert getattr(bad.value, "code", None) == "invalid_scope"


async def test_a_restart_stores_missing_buckets_and_a_partial_one(store_url: tuple[str, str | None], tmp_path: Path) -> None:
    url, schema = store_url
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S - 8 * BUCKET_S
    clock = Clock(t0 * S + 100 * S)
    async with portfolio_rig(tmp_path, url, schema, clock, EXCHANGE) as r:
        account = await r.gateway.account_for(1, "demo")
        await set_book(r, "30000", "30002")
        await r.tracker.start(loop=False)
        clock.now = (t0 + BUCKET_S + 30) * S
        await r.tracker.step()  # closes the first bucket (partial: started inside it)
        clock.now = (t0 + BUCKET_S + 200) * S
        # the process dies here (no clean stop): nothing of the forming bucket is stored
        await r.writer.flush()
        r.tracker.portfolios.clear()
    clock.now = (t0 + 4 * BUCKET_S + 450) * S  # back up in the middle of the fifth bucket
    async with portfolio_rig(tmp_path, url, schema, clock, EXCHANGE) as r:
        await set_book(r, "30000", "30002")
        await r.tracker.start(loop=False)
        clock.now = (t0 + 5 * BUCKET_S) * S
        await r.tracker.step()
        clock.now = (t0 + 5 * BUCKET_S + 300) * S
        await r.tracker.close()  # a clean stop: the forming bucket is stored as partial
        stored = await load_portfolio_candles(r.store, "account", str(account.id), "USD")
        assert stored is not None
        assert stored.candles.time.tolist() == [t0 + i * BUCKET_S for i in range(6)]
        assert stored.statuses == ["partial", "missing", "missing", "missing", "partial", "partial"]
        assert len(set(stored.candles.close.tolist())) == 1  # no trade, no price move: one value throughout
        assert stored.candles.volume.tolist() == [0] * 6


async def test_stored_candles_roll_up_across_dst_in_three_zones(store_url: tuple[str, str | None], tmp_path: Path) -> None:
    """Two days of a portfolio's candles across London's spring change (2026-03-29), from hourly prices (flat buckets in
    between) and fills, through the writer; core.rollup of the stored rows equals an independent rollup by local clock."""
    url, schema = store_url
    start = int(datetime(2026, 3, 28, 0, 7, tzinfo=ZoneInfo("UTC")).timestamp())
    builder = CandleBuilder(Decimal("1000"), start * S, partial=True)
    closed = []
    value = Decimal("1000")
    for hour in range(1, 49):
        ts = (start + hour * 3600 - 7 * 60) * S  # prices once an hour, on the hour
        value += Decimal(hour % 7 - 3) * Decimal("1.25")
        closed += builder.sample(ts, value)
        if hour % 5 == 0:
            closed += builder.trade(ts + 60 * S, Decimal("-12.5") * hour, value + 1)
    closed += builder.close_until((start + 49 * 3600) * S)
    store = Store(url, schema=schema)
    await store.start()
    writer = PortfolioCandleWriter(store)
    await writer.start()
    try:
        writer.put(PortfolioCandleRow.of("run", "r-1", "USD", c, 0) for c in closed)
        await writer.flush()
        stored = await load_portfolio_candles(store, "run", "r-1", "USD")
        assert stored is not None and len(stored.statuses) == len(closed)
        for zone in ("UTC", "Europe/London", "Asia/Kathmandu"):
            for timeframe in ("1h", "1d"):
                assert rolled(stored.candles, timeframe, zone) == independent(stored.candles, timeframe, ZoneInfo(zone))
        london = rolled(stored.candles, "1d", "Europe/London")
        assert [row[0] for row in london][:3] == [
            int(datetime(2026, 3, d, tzinfo=ZoneInfo("Europe/London")).timestamp()) for d in (28, 29, 30)
        ]
    finally:
        await writer.close()
        await store.close()


async def test_wallet_sets_and_runs_are_portfolios_of_their_own_funds(tmp_path: Path) -> None:
    """A run's wallet set: its allocation and its fills are the set's and the run's, and stay in the account's total."""
    t0 = time.time_ns() // S // BUCKET_S * BUCKET_S
    clock = Clock(t0 * S + 30 * S)
    async with portfolio_rig(tmp_path, f"sqlite:///{tmp_path / 'cw.db'}", None, clock, EXCHANGE) as r:
        g = r.gateway
        account = await g.account_for(1, "demo")
        other = await g.account_for(2, "demo")
        mid = await set_book(r, "40000", "40004")
        wallet_set = await g.create_wallet_set(run_id="run-a", description="a run", owner_id=1,
                                               allocations=[("demo", "USDT", 2_000 * 10**18)])  # fmt: skip
        await r.tracker.start(loop=False)
        set_id = str(wallet_set.id)
        assert r.tracker.value_now("wallet_set", set_id) == Decimal(2_000)
        assert r.tracker.value_now("run", "run-a") == Decimal(2_000)
        inst = g.venues["demo"].markets["BTC/USDT"].instrument
        clock.now += 10 * S
        await g.make_order(OrderRequest(
            exchange="demo", instrument=inst, side=Side.BUY, type=OrderType.MARKET, size=inst.parse_size("0.01", "size"),
            limit=0, cancel_after=0, client_oid="in-set", wallet_set_id=wallet_set.id, run_id="run-a", owner_id=1))  # fmt: skip
        clock.now = (t0 + BUCKET_S) * S + S
        await r.tracker.step()
        held = r.tracker.holdings("run", "run-a")
        assert held["BTC"] == Decimal("0.01") and held["USDT"] < 2_000
        want = (held["BTC"] * mid + held["USDT"]).quantize(Q, rounding=ROUND_HALF_EVEN)
        assert r.tracker.value_now("run", "run-a") == want == r.tracker.value_now("wallet_set", set_id)
        assert r.tracker.value_now("account", str(account.id)) == r.tracker.value_now("user", "1")
        await r.writer.flush()
        for scope, scope_id in (("wallet_set", set_id), ("run", "run-a"), ("account", str(account.id))):
            stored = await load_portfolio_candles(r.store, scope, scope_id, "USD")
            assert stored is not None and stored.candles.volume.tolist()[0] > 0, scope
        untouched = await load_portfolio_candles(r.store, "account", str(other.id), "USD")
        assert untouched is not None and untouched.candles.volume.tolist() == [0]  # user 2 traded nothing
        with pytest.raises(NotFound):
            r.tracker.forming("wallet_set", "999")


async def test_a_perpetual_position_counts_at_its_mark_with_its_unrealised_pnl(tmp_path: Path) -> None:
    """Wallets (the position's margin included) plus the open position's unrealised PnL at the venue's mark."""
    t0 = time.time_ns() // S // BUCKET_S * BUCKET_S
    clock = Clock(t0 * S + 30 * S)
    exchange = {**EXCHANGE, "symbols": ["BTC/USDT", "BTC/USDT:USDT"]}
    async with portfolio_rig(tmp_path, f"sqlite:///{tmp_path / 'cw.db'}", None, clock, exchange) as r:
        g = r.gateway
        account = await g.account_for(1, "demo")
        mid = await set_book(r, "30000", "30002")
        venue = g.venues["demo"]
        perp = venue.markets["BTC/USDT:USDT"].instrument
        fills = recorded_fills(g)
        await g.make_order(OrderRequest(
            exchange="demo", instrument=perp, side=Side.BUY, type=OrderType.MARKET, size=perp.parse_size("0.01", "size"),
            limit=0, cancel_after=0, client_oid="long", wallet_set_id=None, run_id=None, owner_id=1))  # fmt: skip
        await r.tracker.start(loop=False)
        (fill,) = fills
        mark = venue.mark_price("BTC/USDT:USDT")
        assert mark is not None
        size = Decimal(fill.size).scaleb(-perp.size_decimals) * Decimal(perp.contract_size).scaleb(-8)
        pnl = (Decimal(mark) - Decimal(fill.price)).scaleb(-perp.price_decimals) * size
        assert pnl != 0  # the fill paid the ask, the mark is elsewhere: the position is worth something else than its cost
        usdt = Decimal(10_000) - Decimal(fill.fee).scaleb(-18)
        want = (Decimal(1) * mid + usdt + pnl).quantize(Q, rounding=ROUND_HALF_EVEN)
        assert r.tracker.value_now("account", str(account.id)) == want
        assert r.tracker.holdings("account", str(account.id))["USDT"] == usdt + pnl


async def test_an_asset_nothing_prices_is_left_out_and_the_total_keeps_following_the_market(tmp_path: Path) -> None:
    """A user's total with 100 GBP no rate prices (no FX source): it follows the book like the wallet views' worth
    (which leaves GBP out too), equal to it up to bid against mid; BTC, traded here, is waited for until its book
    fills; a price that goes missing keeps its last value."""
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S
    clock = Clock(t0 * S + 10 * S)
    async with portfolio_rig(tmp_path, f"sqlite:///{tmp_path / 'cw.db'}", None, clock, EXCHANGE) as r:
        account = await r.gateway.account_for(1, "demo")  # 1 BTC and 10,000 USDT
        hopper = await r.gateway.open_external(1, "cryptohopper", "hopper", {"GBP": 100 * ATTO, "BTC": ATTO // 100})
        await r.gateway.account_for(2, "demo")  # ben: the same funds, nothing unpriced
        views = WalletViews(r.gateway)

        def worth(user: int) -> Decimal:  # what the Overview's "Total value" adds up: each wallet's balance_usd
            total = Decimal(0)
            for account_id in r.gateway.accounts.personal(user):
                for wallet in r.gateway.ledger.all_wallets():
                    if wallet.account_id == account_id and wallet.balance:
                        usd = views.convert_to_usd(wallet.currency, wallet.balance)
                        total += Decimal(usd) if usd is not None else 0
            return total

        market = r.gateway.venues["demo"].markets["BTC/USDT"]
        await r.gateway.apply_market(BookSnapshot("demo", "BTC/USDT", clock.now, market.sync.last_update_id + 1, [], []))
        await r.tracker.start(loop=False)  # BTC is traded here but has no price yet: no value is drawn without it
        for user in ("1", "2"):
            with pytest.raises(NotReady):
                r.tracker.value_now("user", user)
        assert r.tracker.unpriced == {"BTC", "GBP"}
        clock.now += 2 * S
        mid = await set_book(r, "20000", "20002")
        await r.tracker.step()
        assert r.tracker.value_now("user", "1") == Decimal("1.01") * mid + 10_000
        assert r.tracker.value_now("account", str(hopper.id)) == mid / 100
        assert r.tracker.value_now("account", str(account.id)) == r.tracker.value_now("user", "2") == mid + 10_000
        assert r.tracker.unpriced == {"GBP"}
        assert r.tracker.value_now("user", "1") - worth(1) == Decimal("1.01") * (mid - 20_000)  # mid against bid

        clock.now += 5 * S
        moved = await set_book(r, "21000", "21004")
        await r.tracker.step()
        assert r.tracker.value_now("user", "1") == Decimal("1.01") * moved + 10_000  # not frozen at the first value
        assert r.tracker.value_now("user", "1") - worth(1) == Decimal("1.01") * (moved - 21_000)
        assert r.tracker.holdings("user", "1")["GBP"] == 100  # still held, only not valued

        clock.now += 5 * S
        await r.gateway.apply_market(BookSnapshot("demo", "BTC/USDT", clock.now, market.sync.last_update_id + 1, [], []))
        await r.tracker.step()
        assert r.tracker.value_now("user", "2") == moved + 10_000  # no book: BTC keeps its last price


# --- a display currency reached through FX, and a market valued at its last trade ------------------------------------

# USD -> EUR as each FX source of the local stand-in states it: Open Exchange Rates quotes from USD (0.915632 EUR per
# USD), the ECB from EUR (1.0922 USD per EUR), so its USD -> EUR is the inverse, exact at 34 digits as core.conversion
USD_EUR = {"openexchangerates": Decimal(str(OXR_LATEST["rates"]["EUR"])),
           "ecb": Context(prec=34).divide(Decimal(1), Decimal("1.0922"))}


@asynccontextmanager
async def fx_rig(tmp_path: Path, clock: Clock, fx_source: str) -> AsyncIterator[Rig]:
    """portfolio_rig's gateway, writer and tracker, with MarketData's FX rates fetched from the local reference-data
    stand-in (its documented ECB and Open Exchange Rates answers) as the composition root builds them."""
    runner = ServerRunner(RefDataVenue())
    await runner.start()
    path = {"ecb": "/ecb/eurofxref-daily.xml", "openexchangerates": "/oxr/api/latest.json"}[fx_source]
    try:
        async with running_gateway(tmp_path, f"sqlite:///{tmp_path / 'cw.db'}", None, EXCHANGE, clock=clock,
                                   hold_book=True) as gateway:  # fmt: skip
            cfg = msgspec.structs.replace(gateway.settings.market_data, fx_source=fx_source,
                                          fx_url=f"http://127.0.0.1:{runner.port}{path}")  # fmt: skip
            refdata = build_refdata(cfg, gateway.store, env={"COINWIRE_OPENEXCHANGERATES_APP_ID": OXR_APP_ID})
            assert refdata is not None
            await refdata.start(loops=False)
            assert await refdata.refresh_fx()
            market = MarketData(cfg, gateway.bus, MemoryCache(), gateway.store, refdata=refdata, streamers=[])
            try:
                async with tracking(gateway, market, clock) as rig:
                    yield rig
            finally:
                await refdata.close()
    finally:
        await runner.stop()


@pytest.mark.parametrize("fx_source", ["openexchangerates", "ecb"])
async def test_a_display_currency_reached_through_fx_closes_at_the_usd_value_times_the_rate(tmp_path: Path, fx_source: str) -> None:
    """An owner who shows EUR: every 15-minute close is the account's USD value (holdings from the fills at the book's mid)
    times the FX source's USD -> EUR rate, and its volume the fills' notional times the same rate, exact at 8 places;
    another owner's account stays in USD. A rate the tracker took from anywhere else (a peg to the wrong fiat, USD
    unconverted) would not give these digits."""
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S - 2 * BUCKET_S
    clock = Clock(t0 * S + 60 * S)
    rate = USD_EUR[fx_source]
    async with fx_rig(tmp_path, clock, fx_source) as r:
        g = r.gateway
        eve, ben = await g.account_for(1, "demo"), await g.account_for(2, "demo")
        async with r.store.engine.begin() as conn:
            await conn.execute(preferences.insert().values(user_id=1, time_zone="UTC", currency="EUR", crypto_decimals=6,
                                                           stable_decimals=2, mask=False, updated_at=0))  # fmt: skip
        fills = recorded_fills(g)
        mids = {t0 + BUCKET_S: await set_book(r, "30000", "30002")}
        await r.tracker.start(loop=False)
        assert r.tracker.currency_of("account", str(eve.id)) == "EUR"
        assert r.tracker.currency_of("account", str(ben.id)) == "USD"
        clock.now = (t0 + 300) * S
        await trade(r, 1, Side.BUY, "0.1")
        await r.tracker.step()
        clock.now = (t0 + 600) * S
        mids[t0 + BUCKET_S] = await set_book(r, "31000.5", "31011")
        clock.now = (t0 + BUCKET_S + 5) * S  # closes the first bucket at this book
        await r.tracker.step()
        mids[t0 + 2 * BUCKET_S] = await set_book(r, "29777.25", "29781.5")
        await trade(r, 1, Side.SELL, "0.03")
        clock.now = (t0 + 2 * BUCKET_S + 5) * S
        await r.tracker.step()
        await r.writer.flush()

        inst = g.venues["demo"].markets["BTC/USDT"].instrument
        stored = await load_portfolio_candles(r.store, "account", str(eve.id), "EUR")
        assert stored is not None
        assert await load_portfolio_candles(r.store, "account", str(eve.id), "USD") is None  # one series, in her currency
        assert stored.candles.time.tolist() == [t0, t0 + BUCKET_S]
        for i, t in enumerate(stored.candles.time.tolist()):
            end = t + BUCKET_S
            btc, usdt = holdings_at(fills, end * S, inst.size_decimals)
            usd = btc * mids[end] + usdt
            assert Decimal(int(stored.candles.close[i])).scaleb(-8) == (usd * rate).quantize(Q, rounding=ROUND_HALF_EVEN), i
            assert (usd * rate).quantize(Q) != usd.quantize(Q)
            notional = sum((Decimal(f.notional).scaleb(-18) for f in fills if t * S < f.ts <= end * S), Decimal(0))
            assert notional > 0
            assert Decimal(int(stored.candles.volume[i])).scaleb(-8) == (notional * rate).quantize(Q, rounding=ROUND_HALF_EVEN), i
        assert r.tracker.value_now("user", "1") == r.tracker.value_now("account", str(eve.id))
        usd_ben = await load_portfolio_candles(r.store, "account", str(ben.id), "USD")
        assert usd_ben is not None
        assert [Decimal(int(c)).scaleb(-8) for c in usd_ben.candles.close.tolist()] == [
            (mids[t0 + BUCKET_S] + 10_000).quantize(Q), (mids[t0 + 2 * BUCKET_S] + 10_000).quantize(Q)]


async def test_a_market_whose_book_is_empty_is_valued_at_its_last_trade(tmp_path: Path) -> None:
    """The book's mid while there is a book (a public trade elsewhere moves nothing); once the book is empty, the last
    public trade's price, and the next trade's when it comes (not the last mid kept): the 15-minute closes say so."""
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S - 2 * BUCKET_S
    clock = Clock(t0 * S + 30 * S)
    async with portfolio_rig(tmp_path, f"sqlite:///{tmp_path / 'cw.db'}", None, clock, EXCHANGE) as r:
        account = await r.gateway.account_for(1, "demo")  # 1 BTC and 10,000 USDT
        market = r.gateway.venues["demo"].markets["BTC/USDT"]
        inst = market.instrument

        async def public_trade(price: str) -> None:
            await r.gateway.apply_market(TradeTick("demo", "BTC/USDT", clock.now, uuid.uuid4().hex, inst.parse_price(price),
                                                   inst.parse_size("0.5", "size"), "buy"))  # fmt: skip

        mid = await set_book(r, "30000", "30002")
        await r.tracker.start(loop=False)
        clock.now = (t0 + 100) * S
        await public_trade("30500")
        await r.tracker.step()
        assert r.tracker.value_now("account", str(account.id)) == mid + 10_000  # a book: its mid, not the trade
        clock.now = (t0 + 200) * S
        await r.gateway.apply_market(BookSnapshot("demo", "BTC/USDT", clock.now, market.sync.last_update_id + 1, [], []))
        assert market.engine.book.best_bid() is None and market.engine.book.best_ask() is None
        await r.tracker.step()
        assert r.tracker.value_now("account", str(account.id)) == Decimal(30_500) + 10_000
        clock.now = (t0 + BUCKET_S + 5) * S  # closes the first bucket: still no book
        await r.tracker.step()
        clock.now = (t0 + BUCKET_S + 60) * S
        await public_trade("28999.5")
        clock.now = (t0 + 2 * BUCKET_S + 5) * S
        await r.tracker.step()
        await r.writer.flush()
        stored = await load_portfolio_candles(r.store, "account", str(account.id), "USD")
        assert stored is not None and stored.candles.time.tolist() == [t0, t0 + BUCKET_S]
        cols = [[Decimal(int(x)).scaleb(-8) for x in col.tolist()]
                for col in (stored.candles.open, stored.candles.high, stored.candles.low, stored.candles.close)]
        assert [col[0] for col in cols] == [mid + 10_000, Decimal(40_500), mid + 10_000, Decimal(40_500)]
        assert [col[1] for col in cols] == [Decimal(40_500), Decimal(40_500), Decimal("38999.5"), Decimal("38999.5")]
        assert stored.candles.volume.tolist() == [0, 0]  # public trades are not the portfolio's volume


async def test_after_a_restart_nothing_is_valued_before_the_markets_are_listed(tmp_path: Path) -> None:
    """A restarted server loads the wallets from the store before its feed lists the markets: BTC, held on the demo
    exchange, then has no market yet. It is waited for (no value), not left out: valued as 10,000 USDT alone, the
    bucket would open and dip at a third of the account's worth, an invented drop kept in the stored candle."""
    t0 = (time.time_ns() // S // BUCKET_S) * BUCKET_S
    clock = Clock(t0 * S + 20 * S)
    url = f"sqlite:///{tmp_path / 'cw.db'}"
    async with portfolio_rig(tmp_path, url, None, clock, EXCHANGE) as first:
        account_id = (await first.gateway.account_for(1, "demo")).id  # 1 BTC and 10,000 USDT, stored
    clock.now += 5 * S
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [EXCHANGE]})
    store = Store(url)
    await store.start()
    bus = MemoryBus()
    await bus.start()
    gateway = Gateway(settings, store, bus, clock=clock)
    feed = build_feed(settings.exchanges[0])
    writer = PortfolioCandleWriter(store)
    tracker = PortfolioTracker(gateway, MarketData(settings.market_data, bus, MemoryCache(), store, streamers=[]), store, writer,
                               clock=clock)  # fmt: skip
    try:
        await gateway.start()
        await writer.start()
        venue = gateway.venues["demo"]
        assert not venue.markets  # the feed has not listed them yet
        assert {w.currency for w in gateway.ledger.all_wallets() if w.account_id == account_id and w.balance} == {"BTC", "USDT"}
        await tracker.start(loop=False)
        with pytest.raises(NotReady):
            tracker.value_now("account", str(account_id))
        gateway.snapshot_sources["demo"] = feed
        feeding = asyncio.create_task(feed.run(bus.publish))
        for _ in range(200):
            if venue.status == "ready":
                break
            await asyncio.sleep(0.05)
        await feed.close()
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        assert venue.status == "ready"
        r = Rig(gateway, tracker, writer, store, clock)
        clock.now += 5 * S
        mid = await set_book(r, "30000", "30002")
        await tracker.step()
        assert tracker.value_now("account", str(account_id)) == mid + 10_000
        clock.now = (t0 + BUCKET_S + 5) * S
        await tracker.step()
        await writer.flush()
        stored = await load_portfolio_candles(store, "account", str(account_id), "USD")
        assert stored is not None
        last = [Decimal(int(col[-1])).scaleb(-8) for col in
                (stored.candles.open, stored.candles.high, stored.candles.low, stored.candles.close)]
        assert last == [mid + 10_000] * 4  # opened at the first true value: no dip to the USDT alone
    finally:
        await tracker.close()
        await writer.close()
        await feed.close()
        await gateway.close()
        await bus.close()
        await store.close()

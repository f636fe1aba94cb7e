"""The L2 backtest: a strategy against recorded order books and trades, on the simulated venue.

The venue is the simulated venue over a capture (`venues/simulated_book.py`, `BookVenue`: the
paper exchange's book sync and matching engine, consumed liquidity and queue positions
included) on the run's ledger, with this runtime as its host (`engine/venue_host.py`), fed
the recording one message at a time on a simulated clock. After each message the strategy
sees it (`StreamRuntime.on_market`) and the orders it asked for go to the venue at once,
before the next message: exactly what a paper run does through the gateway, so the two give
the same fills over the same recording.

Messages before `start` build the book but reach no strategy; the run ends at `end` or with
the recording. Orders rest, fill and expire on market time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order
from coinwire.core.position_risk import pool_liquidation_price
from coinwire.engine.backtest import BacktestConfig, funded_wallet_set
from coinwire.engine.order_args import OrderArgs, prepare_conditional, resolve_size
from coinwire.engine.rules import RuleRunner, run_rule_sets
from coinwire.engine.strategy import OrderTicket, Strategy, StrategyParams
from coinwire.engine.stream import StreamRuntime
from coinwire.engine.venue_host import RunHost
from coinwire.history.binance_capture import BINANCE_BTCUSDT, BINANCE_USDM_BTCUSDT, BINANCE_USDM_BTCUSDT_PERP, iter_capture
from coinwire.venues.base import completed
from coinwire.venues.brackets import perpetual_fields
from coinwire.venues.simulated_book import BookVenue
from coinwire.venues.simulated_perp import funding_gaps

__all__ = ["BookBacktestRuntime", "capture_instrument"]

_NS = 1_000_000_000


def capture_instrument(symbol: str, exchange: str, name: str, fee: str | None, *, perpetual: bool = False,
                       recorded: Instrument | None = None) -> Instrument:
    """The instrument a capture trades: the one `coinwire record` kept beside it (`recorded`), Binance's real BTCUSDT
    filters where we know them, else 8 decimals.

    `perpetual` (a USD-M capture traded as `BTC/USDT:USDT`): the linear perpetual, with Binance's leverage brackets,
    clearance fee and funding interval for it (refdata).
    """
    known = recorded or {("BTC/USDT", "binance"): BINANCE_BTCUSDT, ("BTC/USDT", "binanceusdm"): BINANCE_USDM_BTCUSDT}.get(
        (symbol, exchange))
    if perpetual and known is BINANCE_USDM_BTCUSDT:
        known = BINANCE_USDM_BTCUSDT_PERP
    if known is None:
        base, quote = symbol.split("/")
        known = Instrument(exchange=name, symbol=symbol, base=base, quote=quote, price_decimals=8, size_decimals=8,
                           maker_fee=100_000, taker_fee=100_000)
    inst = msgspec.structs.replace(known, exchange=name)
    if perpetual:  # the capture's market as the linear perpetual it is, with the brackets and clearance fee coinwire ships
        fields = perpetual_fields(exchange, inst.symbol)
        if not inst.is_perpetual or not fields:
            raise InvalidInput("unknown_perpetual", f"coinwire has no perpetual {symbol}:{inst.quote} for a {exchange} capture")
        inst = msgspec.structs.replace(inst, **fields)
    if fee is not None:
        rate = Instrument.fee_rate(fee)
        if rate < 0 or rate >= 10**8:
            raise InvalidInput("invalid_fee", f"fee must be between 0 and 1, got {fee}")
        inst = msgspec.structs.replace(inst, maker_fee=rate, taker_fee=rate)
    return inst


class BookBacktestRuntime(StreamRuntime):
    """Runs one strategy over recorded book and trade messages of one market. `run()` returns at the end."""

    def __init__(self, run_id: str, paths: Sequence[Path | str], instrument: Instrument, config: BacktestConfig) -> None:
        if config.fill != "open" or config.liquidity != "volume" or config.intrabar != "pessimistic":
            raise InvalidInput("invalid_fill", "--fill, --liquidity and --intrabar apply to candle backtests; an L2 backtest fills "
                               "against the book and fires stops on the recorded trades and book")
        self.order_ids = IdSequence()
        self.host = RunHost(self, IdSequence(), self.order_ids)
        self.sim = BookVenue(config.exchange, self.host)
        self.market = self.sim.add_market(instrument)
        if instrument.is_perpetual:
            self.sim.on_perp = self.on_perp
        super().__init__(run_id, {config.exchange: self.sim.markets})
        self.config = config
        self.paths = list(paths)
        self.orders: dict[int, Order] = self.host.orders
        self._funds = config.balances
        if config.rules:
            self.rules = RuleRunner(run_rule_sets(config.rules), self)

    def run(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy | None:
        """Replay the recording; raises StrategyFailed when the strategy raises."""
        start = None if self.config.start is None else self.config.start * _NS
        end = None if self.config.end is None else self.config.end * _NS
        market, venue = self.market, self.sim
        feed = market.on_market  # the venue's one market takes each message (BookVenue.on_market without the lookup)
        strategy: Strategy | None = None
        for _, message in iter_capture(self.paths, market.instrument):
            ts = message.ts
            if end is not None and ts >= end:
                break
            if strategy is not None:
                due = venue.next_expiry()
                if due is not None and due <= ts:
                    self._now = max(self._now, due)
                    completed(venue.expire(ts))
            fills = feed(message)
            if venue.armed:
                venue.watch(message)
            if fills or venue.fired or venue.moved:
                completed(venue.settle(fills))
            if venue.liquidation_levels:
                self._now = max(self._now, ts)
                completed(venue.check_liquidations(message.symbol))
            if strategy is None:
                if not market.synced or (start is not None and ts < start):
                    continue  # the book warms up; the strategy starts on the first message after `start` with a synced book
                self._now = ts
                strategy = self._start(strategy_cls, params)
            self.deliver_market(message)
            self.drain()
            if self.rules is not None:  # every recorded message is a portfolio sample
                self.rules.sample_now(ts)
                self.drain()
        if strategy is None:
            raise InvalidInput("history_missing", "the recording has no synced book inside the requested start and end")
        self.end_ns = self._now
        inst = market.instrument
        if inst.is_perpetual:  # the recording carries no funding rates: every funding time inside it is a gap, nothing is paid
            self.perp.gaps = {inst.symbol: funding_gaps([], inst.funding_interval_s, self.start_ns, self.end_ns)}
        if self.halted is None:
            self.call("on_stop", strategy.on_stop)
            self.drain()
        self.hub.record(self._now, "in", "run.stop", {})
        return strategy

    def _start(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy:
        inst = self.market.instrument
        ledger, set_id = funded_wallet_set(self.run_id, self.exchange, {inst.base, inst.quote}, self._funds, self._now)
        self.use_funds(self.exchange, ledger, set_id, inst.quote)
        return self.start_strategy(strategy_cls, params)

    def mark_units(self, inst: Instrument) -> int:
        market = self.sim.markets.get(inst.symbol)
        return super().mark_units(inst) if market is None else self.sim.mark_now(market)

    def liquidation_units(self, inst: Instrument, pos: Any, mark: int) -> int | None:
        return pool_liquidation_price(self.ledger, pos, {inst.symbol: mark})

    # --- orders: sent to the simulated venue ------------------------------------------------------
    def drain(self) -> None:
        """Send what the strategy asked for, in order, against the book as it is now."""
        while self.commands:
            for kind, ticket, payload in self.take_commands():
                if kind == "cancel":
                    order = self.orders.get(ticket.order_id or -1)
                    if order is None or order.is_done:
                        continue  # filled before the cancel arrived
                    completed(self.sim.cancel(order))
                    continue
                symbol, args = payload
                self._place(ticket, symbol, args)

    def _place(self, ticket: OrderTicket, symbol: str, args: OrderArgs) -> None:
        try:
            market = self.sim.ready_market(symbol)
            if market.instrument.is_perpetual:
                size, budget = self.perp_size(market.instrument, market.engine, args), None
            else:
                size, budget = resolve_size(args, market.engine, self.ledger, self.exchange, self.wallet_set_id)
            if size <= 0:
                self.nothing_to_trade(ticket)
                return
            inst = market.instrument
            order = Order(id=self.order_ids.next(), client_oid=ticket.client_oid, exchange=self.exchange, symbol=inst.symbol,
                          side=args.side, type=args.type, size=size, limit=args.limit, cancel_after=args.cancel_after,
                          wallet_set_id=self.wallet_set_id, run_id=self.run_id, created_at=self._now, last_updated_at=self._now,
                          reduce_only=args.reduce_only)
            if args.cond is not None or args.exits is not None:
                prepare_conditional(order, args)
            completed(self.sim.place(order, budget, allow_immediate=args.cond is not None and args.cond.allow_immediate))
        except CoinwireError as exc:
            self.refused(ticket, exc)

"""The paper venue's perpetual markets: mark price, funding times, liquidations and position commands over core.perp_execution.

A paper perpetual market is a `PaperMarket` like a spot one (the mirrored book, the matching
engine); what makes it a perpetual lives here, one `PerpState` per market:

- the mark price: the feed's own (`MarkPrice` messages) when it sends one, otherwise the
  median of the best bid, the best ask and the last trade (`core.margin.mark_price`, Binance's
  rule when a mark is missing); `mark_rule(symbol)` says which, and the venue logs it once;
- funding: due at each funding time the feed announces with its mark (`next_funding_time`,
  the demo's compressed 8-hour schedule), settled at the rate announced for it
  (`settle_funding`: one FUNDING line per open position, stored with a `FundingPayment` each).
  A feed without a funding rate (the recorded USD-M capture has none) settles no funding: a
  rate is never invented;
- liquidation: checked at every new mark (`liquidations`), closing at the bankruptcy price
  with the clearance fee, as an order and fill of the `liquidation` type.

A mark that moves open positions is told to their followers (`GatewayHost.publish_marks`) at
most every `mark_notify_ns` of market time per market, without a store write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coinwire.core.errors import DomainError
from coinwire.core.margin import mark_price
from coinwire.core.orders import Fill, Order, PositionSide
from coinwire.core.perp_execution import (
    PerpStep,
    accept_perp_order,
    adjust_margin,
    fire_perp,
    liquidations,
    place_perp_order,
    release_perp_hold,
    set_hedge_mode,
    set_leverage,
    set_margin_mode,
    settle_funding,
    settle_perp_fills,
)
from coinwire.core.positions import FundingPayment, HedgeMode, MarginMode, Position
from coinwire.core.wallets import LineKind, WalletLine
from coinwire.messages import MarkPrice
from coinwire.venues.base import MARK_FEED, MARK_MEDIAN, Execution

if TYPE_CHECKING:
    from coinwire.venues.hosted import GatewayHost
    from coinwire.venues.paper import PaperMarket

__all__ = ["PaperPerps", "PerpState"]

_MARK_NOTIFY_NS = 250_000_000  # a quarter of a second of market time between two mark-only position notifications


class PerpState:
    """One perpetual market's mark, funding schedule and when its positions were last told of a mark."""

    __slots__ = ("feed_mark", "mark", "rate", "next_funding", "notified_at", "announced")

    def __init__(self) -> None:
        self.feed_mark: int | None = None  # the feed's latest mark (None: it sends none)
        self.mark: int | None = None  # the mark in force
        self.rate: int | None = None  # the funding rate announced for `next_funding` (None: the feed has none)
        self.next_funding = 0  # ns; 0: none announced
        self.notified_at = 0
        self.announced = ""  # the mark rule last said in the exchange's log


class PaperPerps:
    """The perpetual side of one paper venue: its markets' marks and funding, liquidations, and position commands."""

    def __init__(self, exchange: str, host: GatewayHost, mark_notify_ns: int = _MARK_NOTIFY_NS) -> None:
        self.exchange = exchange
        self.host = host
        self.mark_notify_ns = mark_notify_ns
        self.states: dict[str, PerpState] = {}

    def state(self, symbol: str) -> PerpState:
        state = self.states.get(symbol)
        if state is None:
            state = self.states[symbol] = PerpState()
        return state

    def mark_rule(self, symbol: str) -> str:
        """Where the market's mark comes from: the feed, or the median rule."""
        return MARK_FEED if self.state(symbol).feed_mark is not None else MARK_MEDIAN

    def rule_changed(self, symbol: str) -> str | None:
        """The mark rule, when it is not the one last announced (then it counts as announced); None otherwise."""
        state = self.state(symbol)
        rule = self.mark_rule(symbol)
        if rule == state.announced:
            return None
        state.announced = rule
        return rule

    def mark(self, market: PaperMarket) -> int | None:
        """The mark in force: the feed's, else the median rule over the mirror (None: nothing known yet)."""
        state = self.state(market.instrument.symbol)
        if state.feed_mark is not None:
            return state.feed_mark
        book = market.engine.book
        last = market.last_trade.price if market.last_trade is not None else None
        return mark_price(book.best_bid(), book.best_ask(), last)

    def _required_mark(self, market: PaperMarket) -> int:
        mark = self.mark(market)
        if mark is None:
            raise DomainError("no_mark_price", f"no mark price of {market.instrument.symbol} is known yet; retry shortly")
        return mark

    # --- orders ------------------------------------------------------------------------------------
    def place(self, market: PaperMarket, order: Order) -> Execution:
        """Checks, initial margin held, matched and settled into the position (`place_perp_order`); a refusal changes nothing."""
        step = place_perp_order(self.host.ledger, market.engine, order, order.created_at, mark=self._required_mark(market))
        return self._execution(step, [order], placed=order)

    def accept(self, market: PaperMarket, order: Order) -> list[WalletLine]:
        """Checks and the margin hold without matching (`accept_perp_order`): a stop or take-profit being armed."""
        return accept_perp_order(self.host.ledger, market.engine, order, order.created_at, mark=self._required_mark(market))

    def fire(self, market: PaperMarket, order: Order, ts: int, execution: Execution) -> None:
        """A triggered stop or take-profit as its child, into its position (`fire_perp`), added to `execution`."""
        step = fire_perp(self.host.ledger, market.engine, order, ts, mark=self.mark(market) or 0)
        execution.fills += step.fills
        execution.lines += step.lines
        _merge_positions(execution, step.positions)

    def settle(self, market: PaperMarket, order: Order, fills: list[Fill], ts: int, execution: Execution) -> None:
        """Fills of a resting order into its position (`settle_perp_fills`), added to `execution`."""
        mark = self.mark(market) or fills[-1].price
        step = settle_perp_fills(self.host.ledger, market.instrument, order, fills, ts, mark=mark)
        execution.lines += step.lines
        _merge_positions(execution, step.positions)

    def release(self, market: PaperMarket, order: Order, ts: int) -> list[WalletLine]:
        """A done order's margin hold goes back (`release_perp_hold`)."""
        return release_perp_hold(self.host.ledger, market.instrument, order, ts)

    # --- market data ---------------------------------------------------------------------------------
    def on_mark(self, message: MarkPrice) -> None:
        """The feed's mark (before `after_market` runs on it)."""
        self.state(message.symbol).feed_mark = message.mark

    def schedule(self, message: MarkPrice) -> None:
        """The feed's next funding time and the rate announced for it (after `after_market` settled one that was due)."""
        if message.next_funding_time > message.ts:
            state = self.state(message.symbol)
            state.next_funding = message.next_funding_time
            state.rate = message.funding_rate

    def after_market(self, market: PaperMarket, ts: int) -> tuple[list[Execution], list[Position]]:
        """What a market message makes happen on a perpetual: funding due, liquidations at the new mark.

        Returns the executions to record, in order, and the positions whose mark moved but which
        nothing else changed (to be told of their new mark, not stored).
        """
        inst = market.instrument
        state = self.state(inst.symbol)
        mark = self.mark(market)
        if mark is None:
            return [], []
        ledger = self.host.ledger
        executions: list[Execution] = []
        if state.next_funding and ts >= state.next_funding:
            due, rate = state.next_funding, state.rate
            state.next_funding = 0  # the next mark message announces the next one
            if rate is not None:
                executions.append(self._funding(market, rate, mark, due))
        moved = mark != state.mark
        state.mark = mark
        if not moved:
            return executions, []
        open_positions = ledger.positions.open_positions(self.exchange, inst.symbol)
        if not open_positions:
            return executions, []
        for pos in open_positions:
            pos.mark = mark
        step = liquidations(ledger, inst, mark, ts, self.host.order_ids, self.host.fill_ids)
        if step.positions or step.fills:
            executions.append(self._execution(step, [], created=list(step.orders)))
        if ts - state.notified_at < self.mark_notify_ns:
            return executions, []
        state.notified_at = ts
        changed = {id(p) for e in executions for p in (e.positions or ())}
        return executions, [p for p in open_positions if p.size and id(p) not in changed]

    def _funding(self, market: PaperMarket, rate: int, mark: int, ts: int) -> Execution:
        """Funding at one funding time: a line per open position, and its FundingPayment (the line's id) for the history."""
        inst = market.instrument
        before = {id(p): (p.funding, p.size) for p in self.host.ledger.positions.open_positions(self.exchange, inst.symbol)}
        step = settle_funding(self.host.ledger, inst, rate, mark, ts)
        lines = iter([line for line in step.lines if line.kind is LineKind.FUNDING])  # in the positions' order
        payments = []
        for pos in step.positions:
            paid, size = before.get(id(pos), (0, pos.size))
            amount = pos.funding - paid
            if not amount:  # nothing it could pay: no line
                continue
            line = next(lines)
            if line.movement != amount:  # pragma: no cover - core writes one line per paying position, in order
                raise RuntimeError(f"funding line {line.id} moves {line.movement}, its position {amount}")
            payments.append(FundingPayment(id=line.id, account_id=pos.account_id, exchange=pos.exchange, symbol=pos.symbol,
                                           side=pos.side, wallet_set_id=pos.wallet_set_id, ts=ts, size=size, rate=rate,
                                           mark=mark, amount=amount))
        execution = self._execution(step, [])
        execution.funding = payments
        return execution

    # --- position commands ----------------------------------------------------------------------------
    def set_leverage(self, account: int, market: PaperMarket, leverage: int) -> Execution:
        """The account's leverage on the market (`leverage_above_maximum`); open positions' margin follows at the mark."""
        mark = self.mark(market) or 0
        settings, step = set_leverage(self.host.ledger, market.instrument, account, leverage, self.host.now(), mark=mark)
        execution = self._execution(step, [])
        execution.settings = [settings]
        return execution

    def set_margin_mode(self, account: int, market: PaperMarket, mode: MarginMode, open_orders: bool) -> Execution:
        settings = set_margin_mode(self.host.ledger, market.instrument, account, mode, open_orders=open_orders)
        return Execution(settings=[settings])

    def set_hedge_mode(self, account: int, hedge: bool, open_orders: bool) -> Execution:
        set_hedge_mode(self.host.ledger, account, self.exchange, hedge, open_orders=open_orders)
        return Execution(modes=[HedgeMode(account_id=account, exchange=self.exchange, hedge_mode=hedge)])

    def adjust_margin(self, account: int, market: PaperMarket, amount: int, side: PositionSide,
                      wallet_set_id: int | None) -> Execution:
        step = adjust_margin(self.host.ledger, market.instrument, account, side, wallet_set_id, amount, self.host.now(),
                             mark=self._required_mark(market))
        return self._execution(step, [])

    @staticmethod
    def _execution(step: PerpStep, orders: list[Order], placed: Order | None = None,
                   created: list[Order] | None = None) -> Execution:
        return Execution(orders + list(step.orders), list(step.fills), list(step.lines), placed=placed,
                         created=created or None, positions=list(step.positions))


def _merge_positions(execution: Execution, positions: list[Position]) -> None:
    """Add positions to an execution's, once each (a step settling two orders of one position lists it once)."""
    if execution.positions is None:
        execution.positions = []
    for pos in positions:
        if not any(p is pos for p in execution.positions):
            execution.positions.append(pos)

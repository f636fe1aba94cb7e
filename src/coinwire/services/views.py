"""Views of core records in the seed's shapes (messages.OrderView, FillView): decimal strings for money, ISO 8601 UTC times.

Every order answer and notification goes through here, so the repeated parts are
memoised: the date-and-time text of each whole second, symbol tokens, and decimal text of
amounts (`coinwire.store.codec.units_text`, shared with the store rows of the same order).
Enum values are read as `member._value_`: `member.value` is a descriptor call in Python
3.11, and a view reads five of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from coinwire.core.conditional import decode_bracket
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO, ATTO_DECIMALS
from coinwire.core.orders import Fill, Order, OrderStatus, OrderType, PositionSide
from coinwire.core.positions import FundingPayment
from coinwire.core.symbols import symbol_token
from coinwire.messages import BracketLegView, BracketView, FillView, OrderView
from coinwire.store.codec import units_text

__all__ = ["iso", "order_view", "fill_view", "avg_price_str", "FundingView", "funding_view"]

_SECONDS: dict[int, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS"
_TOKENS: dict[str, str] = {}  # "BTC/USDT" -> "BTC_USDT"
_MEMO_LIMIT = 4096
_DONE, _BOTH = OrderStatus.DONE, PositionSide.BOTH  # module constants: see core.orders


def iso(ns: int | None) -> str | None:
    """Nanoseconds since the epoch -> ISO 8601 UTC with microseconds (None stays None).

    The same text as `datetime.isoformat()` (no fraction when the microseconds are 0).
    """
    return None if ns is None else _iso(ns)


def _iso(ns: int) -> str:
    seconds, rem = divmod(ns, 1_000_000_000)
    prefix = _SECONDS.get(seconds)
    if prefix is None:
        if len(_SECONDS) >= _MEMO_LIMIT:
            _SECONDS.clear()
        prefix = _SECONDS[seconds] = datetime.fromtimestamp(seconds, UTC).isoformat()[:-6]
    micros = rem // 1000
    return f"{prefix}.{micros:06d}+00:00" if micros else f"{prefix}+00:00"


def _token(symbol: str) -> str:
    token = _TOKENS.get(symbol)
    if token is None:
        if len(_TOKENS) >= _MEMO_LIMIT:
            _TOKENS.clear()
        token = _TOKENS[symbol] = symbol_token(symbol)
    return token


def avg_price_str(instrument: Instrument, filled_size: int, filled_notional: int) -> str:
    """Volume-weighted average fill price, exact to 18 decimals then trimmed ("0" before any fill)."""
    if not filled_size:
        return "0"
    base_atto = instrument.base_atto(filled_size)
    return units_text(filled_notional * ATTO // base_atto, ATTO_DECIMALS)


def order_view(order: Order, instrument: Instrument, seq: int | None = None) -> OrderView:
    """The order's view; `seq` the sequence number of the notification it goes out in (None: the order's latest)."""
    sd = instrument.size_decimals
    created = order.created_at
    updated = order.last_updated_at
    created_iso = _iso(created)
    done_reason = order.done_reason
    fee = units_text(order.fee, ATTO_DECIMALS)
    view = OrderView(
        order.id,
        created_iso,
        order.wallet_set_id,
        order.exchange,
        order.client_oid,
        order.run_id,
        order.type._value_,
        _token(order.symbol),
        order.symbol,
        units_text(order.size, sd),
        order.side._value_,
        units_text(order.limit, instrument.price_decimals),
        order.cancel_after,
        order.status._value_,
        done_reason._value_ if done_reason else None,
        created_iso if order.done_at == created else iso(order.done_at),
        created_iso if order.exchange_at == created else iso(order.exchange_at),
        created_iso if updated == created else _iso(updated),
        units_text(order.filled_size, sd),
        avg_price_str(instrument, order.filled_size, order.filled_notional),
        fee,
        order.fee_currency or instrument.quote,
        order.account_id,
        order.seq if seq is None else seq,
        units_text(order.funds, ATTO_DECIMALS) if order.funds else None,
        units_text(order.filled_notional, ATTO_DECIMALS),
        fee,
        order.status is _DONE,
    )
    if order.stop_price or order.trail_ppm or order.trail_delta or order.list_id or order.parent_id or order.expire_at \
            or order.reduce_only or order.bracket is not None or order.position_side is not _BOTH:
        return _conditional(view, order, instrument)
    return view  # a plain order: the conditional fields keep their defaults


def _conditional(view: OrderView, order: Order, instrument: Instrument) -> OrderView:
    """The view with its conditional fields (stops, trailing stops, OCO legs, bracket children, good-till-date)."""
    pd = instrument.price_decimals
    trailing = (f"{order.trail_ppm / 10_000:g}%" if order.trail_ppm else
                units_text(order.trail_delta, pd) if order.trail_delta else None)
    return msgspec.structs.replace(
        view,
        stop_price=units_text(order.stop_price, pd) if order.stop_price else None,
        trigger=order.trigger._value_ if order.type.conditional else None,
        trailing_delta=trailing,
        activation_price=units_text(order.activation_price, pd) if order.activation_price else None,
        time_in_force=order.time_in_force._value_,
        expire_at=iso(order.expire_at or None),
        triggered_at=iso(order.triggered_at),
        oco_id=order.list_id or None,
        parent_id=order.parent_id or None,
        emulated=order.emulated,
        reduce_only=order.reduce_only,
        position_side=order.position_side._value_ if order.position_side is not _BOTH else None,
        bracket=_bracket(order.bracket, pd) if order.bracket is not None else None)


def _bracket(text: str, pd: int) -> BracketView:
    """A parent's stored bracket (`core.conditional.Bracket` as JSON, integer units) as its view shows it."""
    b = decode_bracket(text)

    def leg(kind: OrderType | None, price: int, limit: int, ppm: int) -> BracketLegView | None:
        if kind is None:
            return None
        percent = f"{Decimal(ppm).scaleb(-4).normalize():f}" if ppm else None
        level = units_text(price, pd) if price else None
        if kind is OrderType.LIMIT:
            return BracketLegView(kind._value_, None, level, percent)
        return BracketLegView(kind._value_, level, units_text(limit, pd) if limit else None, percent)

    stop_loss = leg(b.stop_loss_type, b.stop_loss_price, b.stop_loss_limit, b.stop_loss_ppm)
    if b.stop_loss_type is OrderType.TRAILING_STOP:
        trail = (f"{Decimal(b.stop_loss_trail_ppm).scaleb(-4).normalize():f}%" if b.stop_loss_trail_ppm
                 else units_text(b.stop_loss_trail_delta, pd))
        stop_loss = BracketLegView(OrderType.TRAILING_STOP._value_, trailing_delta=trail)
    return BracketView(leg(b.take_profit_type, b.take_profit_price, b.take_profit_limit, b.take_profit_ppm), stop_loss,
                       b.trigger._value_)


def fill_view(fill: Fill, instrument: Instrument, seq: int, funds: int = 0) -> FillView:
    """The fill's view in the notification numbered `seq` of its account; `funds`: its order's (0: none)."""
    amount = units_text(fill.size, instrument.size_decimals)
    notional = units_text(fill.notional, ATTO_DECIMALS)
    fee = units_text(fill.fee, ATTO_DECIMALS)
    return FillView(
        fill.id,
        fill.order_id,
        fill.client_oid,
        fill.run_id,
        fill.wallet_set_id,
        fill.account_id,
        fill.exchange,
        fill.order_type._value_,
        fill.side._value_,
        _token(fill.symbol),
        fill.symbol,
        amount,
        units_text(fill.price, instrument.price_decimals),
        notional,
        fee,
        fill.fee_currency or instrument.quote,
        fill.maker,
        fill.ext_id,
        _iso(fill.ts),
        seq,
        units_text(funds, ATTO_DECIMALS) if funds else None,
        amount,
        notional,
        fee,
        True,
    )


class FundingView(msgspec.Struct, frozen=True, gc=False):
    """One funding payment as clients see it (`get_funding`): the position it was settled on, the rate, the mark, the amount."""

    id: int
    account: int
    exchange: str
    symbol: str
    position_side: str
    wallet_set_id: int | None
    timestamp: str
    ts: int
    size: str  # the position's signed size then
    rate: str  # "0.0001" = 0.01%
    mark_price: str
    amount: str  # received +, paid -


def funding_view(payment: FundingPayment, instrument: Instrument) -> FundingView:
    """A stored funding payment's view."""
    return FundingView(
        id=payment.id, account=payment.account_id, exchange=payment.exchange, symbol=payment.symbol,
        position_side=payment.side.value, wallet_set_id=payment.wallet_set_id, timestamp=_iso(payment.ts), ts=payment.ts,
        size=units_text(payment.size, instrument.size_decimals),
        rate=format(Decimal(payment.rate).scaleb(-8).normalize(), "f"),
        mark_price=units_text(payment.mark, instrument.price_decimals),
        amount=units_text(payment.amount, ATTO_DECIMALS),
    )

"""CCXT's unified order, trade and balance structures as exact venue reports, and our orders as CCXT arguments.

Out: sizes and prices leave as decimal strings rendered from integer units
(`Instrument.size_str`), so CCXT's `amount_to_precision` / `price_to_precision` see the exact
decimal and have nothing to round (an order off the instrument's grid is refused before it is
sent). In: CCXT's numbers are read through their shortest round-trip text, as
`venues.ccxt_markets` does, and scaled with `core.numbers.to_units`, which refuses rather than
rounds: a venue value off the grid is an error, never a drift. Notionals of fills are computed
exactly from price x size; an order's cumulative notional is the exact sum of its fills when
they cover its filled size, the venue's cumulative quote amount otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from coinwire.core.errors import Conflict, InvalidInput
from coinwire.core.instruments import FEE_SCALE, Instrument
from coinwire.core.numbers import ATTO_DECIMALS, to_units, units_to_str
from coinwire.core.orders import Order, OrderStatus, OrderType, Side
from coinwire.venues.ccxt_errors import bad_response
from coinwire.venues.errors import venue_error
from coinwire.venues.native_orders import WORKING_FLAGS, WORKING_TIMES, NativePlan
from coinwire.venues.reports import FillReport, Liquidity, OrderReport, ReportReason

__all__ = ["ORDER_ARGS", "balances_from_ccxt", "fill_report", "ms_to_ns", "order_args", "order_report",
           "quote_to_send", "same_order"]

_NS_PER_MS: Final = 1_000_000

# our order type -> (CCXT unified type, CCXT unified params); CCXT maps them to the venue's own
# (Binance: LIMIT + timeInForce GTC/IOC/FOK, LIMIT_MAKER for postOnly, MARKET)
ORDER_ARGS: Final[dict[OrderType, tuple[str, dict[str, Any]]]] = {
    OrderType.MARKET: ("market", {}),
    OrderType.LIMIT: ("limit", {"timeInForce": "GTC"}),
    OrderType.IOC: ("limit", {"timeInForce": "IOC"}),
    OrderType.FOK: ("limit", {"timeInForce": "FOK"}),
    OrderType.POST_ONLY: ("limit", {"postOnly": True}),
}

# CCXT unified order status -> (our status, why it is done)
_STATUS: Final[dict[str, tuple[OrderStatus, ReportReason | None]]] = {
    "open": (OrderStatus.OPEN, None),
    "canceling": (OrderStatus.OPEN, None),
    "closed": (OrderStatus.DONE, ReportReason.FILLED),
    "canceled": (OrderStatus.DONE, ReportReason.CANCELLED),
    "expired": (OrderStatus.DONE, ReportReason.EXPIRED),
    "rejected": (OrderStatus.DONE, ReportReason.REJECTED),
}


def ms_to_ns(ms: object, fallback: int = 0) -> int:
    return ms * _NS_PER_MS if isinstance(ms, int) and not isinstance(ms, bool) else fallback


def _text(value: object) -> object:
    return repr(value) if isinstance(value, float) else value


def _units(value: object, decimals: int, field: str) -> int:
    return 0 if value is None else to_units(_text(value), decimals, field)


def _bad(instrument: Instrument, what: str, detail: str) -> Exception:
    """A venue answer that cannot be right: NotReady (exchange_bad_response), as any bad response."""
    return venue_error(bad_response(instrument.exchange, what, detail), exchange=instrument.exchange, operation=what)


def order_args(
    order: Order, instrument: Instrument, plan: NativePlan | None = None, as_type: OrderType | None = None
) -> tuple[str, str, str, str | None, dict[str, Any]]:
    """(type, side, amount, price, params) for CCXT's create_order, after checking the grid.

    The size and limit are re-parsed from their decimal text by the instrument, so an order off
    its tick/step or outside its size limits is refused here (InvalidInput, the instrument's codes)
    and never reaches the venue to be truncated there. A conditional order goes as `plan` says
    (`native_orders`); `as_type`: send the order as this plain type instead of its own (the
    market or limit child an emulated conditional order fires).
    """
    if order.symbol != instrument.symbol:
        raise InvalidInput(
            "instrument_mismatch", f"order {order.client_oid} is for {order.symbol}, instrument is {instrument.symbol}"
        )
    if order.funds:
        return _funds_args(order, instrument)
    amount = instrument.size_str(instrument.parse_size(instrument.size_str(order.size)))
    if plan is not None:
        price = _limit_str(order, instrument) if plan.limit else None
        return plan.venue_type, order.side.value, amount, price, {**plan.params, "clientOrderId": order.client_oid}
    kind = as_type or order.type
    ccxt_type, extra = ORDER_ARGS[kind]
    price = None if kind is OrderType.MARKET else _limit_str(order, instrument)
    return ccxt_type, order.side.value, amount, price, {**extra, "clientOrderId": order.client_oid}


def _limit_str(order: Order, instrument: Instrument) -> str:
    return instrument.price_str(instrument.parse_price(instrument.price_str(order.limit), "limit"))


def quote_to_send(instrument: Instrument, funds: int) -> int:
    """The quote amount (ATTO) a market buy by `funds` asks the venue to spend: the funds less the taker fee on it.

    A venue's quote-amount market buy (Binance's `quoteOrderQty`) spends up to that amount on the
    notional and charges its fee on top (in the asset received on Binance, in the quote
    elsewhere); at most the taker rate of the notional, so notional + fee <= funds either way.
    """
    return funds * FEE_SCALE // (FEE_SCALE + instrument.taker_fee)


def _funds_args(order: Order, instrument: Instrument) -> tuple[str, str, str, str | None, dict[str, Any]]:
    """CCXT's create_order arguments of a market buy by funds: the quote amount as `cost` (Binance: `quoteOrderQty`).

    CCXT truncates the amount to the market's quote precision, so what is sent never exceeds `quote_to_send`.
    """
    if order.type is not OrderType.MARKET or order.side is not Side.BUY:
        raise InvalidInput("funds_market_buy_only", "funds applies to market buys only")
    cost = units_to_str(quote_to_send(instrument, order.funds), ATTO_DECIMALS)
    return "market", "buy", cost, None, {"cost": cost, "clientOrderId": order.client_oid}


def fill_report(
    trade: Mapping[str, Any],
    instrument: Instrument,
    *,
    client_oid: str,
    side: Side | None = None,
    venue_order_id: str | None = None,
    ts: int = 0,
) -> FillReport:
    """A CCXT unified trade of ours as a FillReport.

    The fills Binance returns with a new order carry neither time, side nor maker flag: the
    caller passes the order's side and time, and such fills are taker fills (they happened while
    the order was being placed).
    """
    trade_id = trade.get("id")
    if trade_id is None:
        raise _bad(instrument, "trade", f"a trade of order {client_oid} has no id")
    price = _units(trade.get("price"), instrument.price_decimals, "fill price")
    size = _units(trade.get("amount"), instrument.size_decimals, "fill size")
    fee = trade.get("fee") or {}
    fee_cost = fee.get("cost")
    raw_side = trade.get("side")
    fill_side = Side(raw_side) if raw_side in ("buy", "sell") else side
    if fill_side is None:
        raise _bad(instrument, "trade", f"trade {trade_id} has no side")
    return FillReport(
        trade_id=str(trade_id),
        venue_order_id=str(trade.get("order") or venue_order_id or ""),
        client_oid=client_oid,
        symbol=instrument.symbol,
        side=fill_side,
        price=price,
        size=size,
        notional=instrument.contract_notional(price, size) if instrument.is_perpetual else instrument.notional_atto(price, size),
        fee=_units(fee_cost, ATTO_DECIMALS, "fee"),
        fee_currency=str(fee.get("currency") or "") if fee_cost else "",
        liquidity=Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER,
        ts=ms_to_ns(trade.get("timestamp"), ts),
    )


def order_report(
    order: Mapping[str, Any],
    instrument: Instrument,
    *,
    client_oid: str | None = None,
    fills: Iterable[FillReport] | None = None,
) -> OrderReport:
    """A CCXT unified order as an OrderReport; `fills` replace the order's own `trades` when given.

    `client_oid` overrides the order's clientOrderId (a cancel answer carries the cancel
    request's own id there on Binance).
    """
    raw_status = order.get("status")
    if raw_status not in _STATUS:
        raise _bad(instrument, "order", f"order {order.get('id')} has status {raw_status!r}")
    status, reason = _STATUS[raw_status]
    oid = client_oid if client_oid is not None else str(order.get("clientOrderId") or "")
    venue_order_id = str(order.get("id") or "")
    ts = ms_to_ns(order.get("lastUpdateTimestamp") or order.get("lastTradeTimestamp") or order.get("timestamp"))
    side = Side(order.get("side"))
    if fills is None:
        fills = [
            fill_report(t, instrument, client_oid=oid, side=side, venue_order_id=venue_order_id, ts=ts)
            for t in order.get("trades") or ()
        ]
    fills = tuple(fills)
    filled = _units(order.get("filled"), instrument.size_decimals, "filled")
    if fills and sum(f.size for f in fills) == filled:
        notional = sum(f.notional for f in fills)
    else:
        notional = _units(order.get("cost"), ATTO_DECIMALS, "cost")
    per_price_unit = filled * instrument.notional_to_atto
    average = (2 * notional + per_price_unit) // (2 * per_price_unit) if filled else 0  # nearest, halves up
    kind = order.get("type")
    return OrderReport(
        client_oid=oid,
        venue_order_id=venue_order_id,
        symbol=instrument.symbol,
        side=side,
        status=status,
        reason=reason,
        size=_units(order.get("amount"), instrument.size_decimals, "amount"),
        limit=0 if kind == "market" else _units(order.get("price") or None, instrument.price_decimals, "price"),
        filled_size=filled,
        filled_notional=notional,
        average_price=average,
        ts=ts,
        fills=fills,
        working=_working(order),
    )


def _working(order: Mapping[str, Any]) -> bool:
    """False while the venue holds a conditional order untriggered (its raw order's working flag, `native_orders`)."""
    info = order.get("info")
    if isinstance(info, Mapping):
        for key in WORKING_FLAGS:
            flag = info.get(key)
            if isinstance(flag, bool):
                return flag
        for key in WORKING_TIMES:
            if info.get(key) == -1:
                return False
    return True


def same_order(order: Order, report: OrderReport) -> OrderReport:
    """The venue's order under `order`'s client id, if it is this order; Conflict if the id names another one."""
    if report.side is not order.side or (report.size != order.size and not order.funds) or report.limit != order.limit:
        raise Conflict(
            "duplicate_client_oid",
            f"client_oid {order.client_oid} already names a different order at the venue "
            f"({report.side.value} {report.size} at {report.limit})",
            client_oid=order.client_oid,
        )
    return report


def balances_from_ccxt(balance: Mapping[str, Any], wallet: tuple[str, str, str] | None = None) -> dict[str, tuple[int, int]]:
    """CCXT's balance structure as {currency: (free, used)} in ATTO, currencies with nothing left out.

    `wallet` (a derivatives account's row of `ccxt_quirks.WALLET_BALANCE`): read each asset's
    wallet balance from the venue's raw answer instead, as (wallet balance, 0).
    """
    free = balance.get("free") or {}
    used = balance.get("used") or {}
    if wallet is not None:
        assets, key, field = wallet
        info = balance.get("info") or {}
        free = {str(a.get(key)): a.get(field) for a in info.get(assets) or ()}
        used = {}
    out: dict[str, tuple[int, int]] = {}
    for currency in sorted(set(free) | set(used)):
        amounts = (
            _units(free.get(currency), ATTO_DECIMALS, f"{currency} free"),
            _units(used.get(currency), ATTO_DECIMALS, f"{currency} used"),
        )
        if any(amounts):
            out[currency] = amounts
    return out

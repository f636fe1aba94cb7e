"""Trade receipts: the kripto Trade fields of an order that ended with a fill, as readable HTML and plain text.

One receipt per order that reached `done` with any fill (a partly filled order that was
cancelled included). Values are in the order's quote currency, with the user's display
currency beside them when a rate is known; with the user's `mask` preference on, amounts are
replaced by `****` (the ids, market, side and times stay, so the user still knows which trade).
The JSON body (what a webhook receives) carries the kripto keys (`id`, `side`, `productId`,
`funds`, `settled`, `createdAt`, `fillFees`, `filledSize`, `executedValue`) and coinwire's own.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from coinwire.messages import FillView, OrderView

__all__ = ["MASK", "TradeSummary", "grouped", "render_receipt", "render_triggered", "summarise", "trade_json"]

MASK = "****"


class TradeSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a receipt says about one order, from its final view and its fills."""

    id: int
    client_order_id: str
    exchange: str
    symbol: str
    product_id: str  # BTC-GBP, as kripto names markets
    base: str
    quote: str
    side: str
    type: str
    created_at: str
    done_at: str | None
    done_reason: str | None
    settled: bool
    filled_size: Decimal
    executed_value: Decimal  # sum of the fills' notional, in the quote currency
    fill_fees: Decimal
    fee_currency: str
    funds: Decimal  # what the order took from the wallet: the executed value, plus the fee when it is in the quote
    avg_price: Decimal
    fills: int


def summarise(order: OrderView, fills: Sequence[FillView]) -> TradeSummary:
    """The summary of a done order from its fills (the fills' own numbers: exact, never the view's rounded average)."""
    base, _, quote = order.symbol.partition("/")
    quote = quote.split(":")[0]
    size = sum((Decimal(f.exec_amount) for f in fills), Decimal(0))
    value = sum((Decimal(f.notional) for f in fills), Decimal(0))
    fees = sum((Decimal(f.fee) for f in fills), Decimal(0))
    fee_currency = fills[0].fee_currency if fills else order.fee_currency
    spent = value + fees if fee_currency == quote and order.side == "buy" else value
    requested = getattr(order, "funds", None)  # a market buy by amount: what the user asked to spend
    return TradeSummary(
        id=order.id, client_order_id=order.client_order_id, exchange=order.exchange, symbol=order.symbol,
        product_id=f"{base}-{quote}", base=base, quote=quote, side=order.side, type=order.type,
        created_at=order.created_at, done_at=order.done_at, done_reason=order.done_reason, settled=order.status == "done",
        filled_size=size.normalize() if size else Decimal(0), executed_value=value, fill_fees=fees, fee_currency=fee_currency,
        funds=Decimal(requested) if requested not in (None, "", "0") else spent,
        avg_price=(value / size).quantize(Decimal(1).scaleb(-12)).normalize() if size else Decimal(0), fills=len(fills),
    )


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def trade_json(s: TradeSummary) -> dict[str, Any]:
    """The receipt's JSON body: kripto's Trade keys first, then coinwire's."""
    return {
        "id": str(s.id), "side": s.side, "productId": s.product_id, "funds": _text(s.funds), "settled": s.settled,
        "createdAt": s.created_at, "fillFees": _text(s.fill_fees), "filledSize": _text(s.filled_size),
        "executedValue": _text(s.executed_value),
        "client_order_id": s.client_order_id, "exchange": s.exchange, "symbol": s.symbol, "type": s.type,
        "done_at": s.done_at, "done_reason": s.done_reason, "avg_price": _text(s.avg_price), "fee_currency": s.fee_currency,
        "fills": s.fills,
    }


def render_receipt(s: TradeSummary, *, display: str, rate: Decimal | None, mask: bool) -> tuple[str, str, str]:
    """(subject, plain text, HTML). `rate`: one quote unit in the display currency (None: no rate known)."""

    def money(amount: Decimal, currency: str) -> str:
        if mask:
            return f"{MASK} {currency}"
        out = f"{_text(amount)} {currency}"
        if currency == s.quote and rate is not None and display != s.quote:
            out += f" (≈ {_text((amount * rate).quantize(Decimal('0.01')))} {display})"
        return out

    verb = "Bought" if s.side == "buy" else "Sold"
    size = MASK if mask else _text(s.filled_size)
    subject = f"Receipt: {verb.lower()} {size} {s.base} on {s.exchange} ({s.product_id}, order {s.id})"
    rows = [
        ("Trade id", str(s.id)),
        ("Client order id", s.client_order_id),
        ("Market", f"{s.product_id} on {s.exchange}"),
        ("Side", s.side),
        ("Type", s.type),
        ("Filled size", f"{size} {s.base}"),
        ("Executed value", money(s.executed_value, s.quote)),
        ("Average price", money(s.avg_price, s.quote)),
        ("Fees", money(s.fill_fees, s.fee_currency)),
        ("Funds", money(s.funds, s.quote)),
        ("Settled", "yes" if s.settled else "no"),
        ("Created", s.created_at),
        ("Done", f"{s.done_at or ''} ({s.done_reason or 'done'})"),
        ("Fills", str(s.fills)),
    ]
    if rate is None and display != s.quote and not mask:
        rows.append(("Note", f"no {s.quote}/{display} rate was known: values are in {s.quote} only"))
    width = max(len(k) for k, _ in rows)
    text = f"{verb} {size} {s.base} for {money(s.executed_value, s.quote)}.\n\n" + "\n".join(
        f"{k.ljust(width)}  {v}" for k, v in rows) + "\n"
    cells = "".join(f"<tr><th style=\"text-align:left;padding:2px 12px 2px 0\">{html.escape(k)}</th>"
                    f"<td>{html.escape(v)}</td></tr>" for k, v in rows)
    body = (f"<html><body><h2>{html.escape(verb)} {html.escape(size)} {html.escape(s.base)}</h2>"
            f"<table>{cells}</table><p style=\"color:#666\">coinwire trade receipt</p></body></html>")
    return subject, text, body


def grouped(number: str) -> str:
    """A decimal text with thousands separators and at least two decimals: "61234.5" -> "61,234.50"."""
    whole, _, fraction = number.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-') or 0):,}.{fraction.ljust(2, '0')}"


def render_triggered(order: OrderView) -> tuple[str, str]:
    """(subject, text) of `order_triggered`: which order fired, at which level, and what it became.

    The level is the order's stop price when it fired (a trailing stop's level then); what it
    became is its child: a market order, or a limit order at its limit (with its time in force unless GTC).
    """
    base = order.symbol.partition("/")[0]
    level = grouped(order.stop_price) if order.stop_price else "its level"
    if order.type in ("stop-limit", "take-profit-limit"):
        became = f"a {order.time_in_force} limit order at {grouped(order.limit)}" if order.time_in_force != "GTC" else \
            f"a limit order at {grouped(order.limit)}"
    else:
        became = "a market order"
    text = f"Your {order.type} {order.side} of {order.size} {base} triggered at {level} and became {became}"
    subject = f"Order {order.id} triggered: {order.type} {order.side} {order.size} {base} at {level} on {order.exchange}"
    return subject, text

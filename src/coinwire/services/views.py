"""JSON views of core records in the seed's shapes: decimal strings for money, ISO 8601 UTC times."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO, atto_to_str
from coinwire.core.orders import Fill, Order
from coinwire.core.symbols import symbol_token

__all__ = ["iso", "order_view", "fill_view", "avg_price_str"]


def iso(ns: int | None) -> str | None:
    """Nanoseconds since the epoch -> ISO 8601 UTC with microseconds (None stays None)."""
    if ns is None:
        return None
    seconds, rem = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=rem // 1000).isoformat()


def avg_price_str(instrument: Instrument, filled_size: int, filled_notional: int) -> str:
    """Volume-weighted average fill price, exact to 18 decimals then trimmed ("0" before any fill)."""
    if not filled_size:
        return "0"
    base_atto = instrument.base_atto(filled_size)
    return atto_to_str(filled_notional * ATTO // base_atto)


def order_view(order: Order, instrument: Instrument) -> dict[str, Any]:
    return {
        "id": order.id,
        "created_at": iso(order.created_at),
        "wallet_set_id": order.wallet_set_id,
        "exchange": order.exchange,
        "client_order_id": order.client_oid,
        "run_id": order.run_id,
        "type": order.type.value,
        "pair": symbol_token(order.symbol),
        "symbol": order.symbol,
        "size": instrument.size_str(order.size),
        "side": order.side.value,
        "limit": instrument.price_str(order.limit) if order.limit else "0",
        "cancel_after": order.cancel_after,
        "status": order.status.value,
        "done_reason": order.done_reason.value if order.done_reason else None,
        "done_at": iso(order.done_at),
        "exchange_at": iso(order.exchange_at),
        "last_updated_at": iso(order.last_updated_at),
        "filled_size": instrument.size_str(order.filled_size),
        "avg_price": avg_price_str(instrument, order.filled_size, order.filled_notional),
        "fee": atto_to_str(order.fee),
        "fee_currency": instrument.quote,
    }


def fill_view(fill: Fill, instrument: Instrument) -> dict[str, Any]:
    return {
        "id": fill.id,
        "order_id": fill.order_id,
        "client_order_id": fill.client_oid,
        "run_id": fill.run_id,
        "wallet_set_id": fill.wallet_set_id,
        "exchange": fill.exchange,
        "type": fill.order_type.value,
        "side": fill.side.value,
        "pair": symbol_token(fill.symbol),
        "symbol": fill.symbol,
        "exec_amount": instrument.size_str(fill.size),
        "exec_price": instrument.price_str(fill.price),
        "notional": atto_to_str(fill.notional),
        "fee": atto_to_str(fill.fee),
        "fee_currency": instrument.quote,
        "maker": fill.maker,
        "ext_id": fill.ext_id,
        "timestamp": iso(fill.ts),
    }



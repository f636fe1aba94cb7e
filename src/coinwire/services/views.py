"""JSON views of core records in the seed's shapes: decimal strings for money, ISO 8601 UTC times.

Every order answer and notification goes through here, so the repeated parts are
memoised: the date-and-time text of each whole second, symbol tokens, and decimal text of
amounts (`coinwire.store.codec.units_text`, shared with the store rows of the same order).
Enum values are read as `member._value_`: `member.value` is a descriptor call in Python
3.11, and a view reads five of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO, ATTO_DECIMALS
from coinwire.core.orders import Fill, Order
from coinwire.core.symbols import symbol_token
from coinwire.store.codec import units_text

__all__ = ["iso", "order_view", "fill_view", "avg_price_str"]

_SECONDS: dict[int, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS"
_TOKENS: dict[str, str] = {}  # "BTC/USDT" -> "BTC_USDT"
_MEMO_LIMIT = 4096


def iso(ns: int | None) -> str | None:
    """Nanoseconds since the epoch -> ISO 8601 UTC with microseconds (None stays None).

    The same text as `datetime.isoformat()` (no fraction when the microseconds are 0).
    """
    if ns is None:
        return None
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


def order_view(order: Order, instrument: Instrument) -> dict[str, Any]:
    sd = instrument.size_decimals
    created = order.created_at
    updated = order.last_updated_at
    created_iso = iso(created)
    return {
        "id": order.id,
        "created_at": created_iso,
        "wallet_set_id": order.wallet_set_id,
        "exchange": order.exchange,
        "client_order_id": order.client_oid,
        "run_id": order.run_id,
        "type": order.type._value_,
        "pair": _token(order.symbol),
        "symbol": order.symbol,
        "size": units_text(order.size, sd),
        "side": order.side._value_,
        "limit": units_text(order.limit, instrument.price_decimals),
        "cancel_after": order.cancel_after,
        "status": order.status._value_,
        "done_reason": order.done_reason._value_ if order.done_reason else None,
        "done_at": created_iso if order.done_at == created else iso(order.done_at),
        "exchange_at": created_iso if order.exchange_at == created else iso(order.exchange_at),
        "last_updated_at": created_iso if updated == created else iso(updated),
        "filled_size": units_text(order.filled_size, sd),
        "avg_price": avg_price_str(instrument, order.filled_size, order.filled_notional),
        "fee": units_text(order.fee, ATTO_DECIMALS),
        "fee_currency": order.fee_currency or instrument.quote,
        "account": order.account_id,
        "seq": order.seq,  # its account's sequence number of the order's latest notification
    }


def fill_view(fill: Fill, instrument: Instrument) -> dict[str, Any]:
    return {
        "id": fill.id,
        "order_id": fill.order_id,
        "client_order_id": fill.client_oid,
        "run_id": fill.run_id,
        "wallet_set_id": fill.wallet_set_id,
        "account": fill.account_id,
        "exchange": fill.exchange,
        "type": fill.order_type._value_,
        "side": fill.side._value_,
        "pair": _token(fill.symbol),
        "symbol": fill.symbol,
        "exec_amount": units_text(fill.size, instrument.size_decimals),
        "exec_price": units_text(fill.price, instrument.price_decimals),
        "notional": units_text(fill.notional, ATTO_DECIMALS),
        "fee": units_text(fill.fee, ATTO_DECIMALS),
        "fee_currency": fill.fee_currency or instrument.quote,
        "maker": fill.maker,
        "ext_id": fill.ext_id,
        "timestamp": iso(fill.ts),
    }

"""Order and fill views for tests that publish notifications by hand: every field set, the ones a test names changed."""

from __future__ import annotations

from typing import Any

import msgspec

from coinwire.messages import FillView, OrderView

__all__ = ["fill_view", "order_view"]

_ORDER = OrderView(
    id=1, created_at="2024-01-01T00:00:00+00:00", wallet_set_id=None, exchange="demo", client_order_id="o1", run_id=None,
    type="limit", pair="BTC_USDT", symbol="BTC/USDT", size="0.001", side="buy", limit="60000.5", cancel_after=0, status="open",
    done_reason=None, done_at=None, exchange_at="2024-01-01T00:00:00+00:00", last_updated_at="2024-01-01T00:00:00+00:00",
    filled_size="0", avg_price="0", fee="0", fee_currency="USDT", account=0, seq=0,
)
_FILL = FillView(
    id=1, order_id=1, client_order_id="o1", run_id=None, wallet_set_id=None, account=0, exchange="demo", type="market", side="buy",
    pair="BTC_USDT", symbol="BTC/USDT", exec_amount="0.001", exec_price="60000.5", notional="60.0005", fee="0.06", fee_currency="USDT",
    maker=False, ext_id=None, timestamp="2024-01-01T00:00:00+00:00", seq=0,
)


def order_view(**changes: Any) -> OrderView:
    return msgspec.structs.replace(_ORDER, **changes)


def fill_view(**changes: Any) -> FillView:
    return msgspec.structs.replace(_FILL, **changes)

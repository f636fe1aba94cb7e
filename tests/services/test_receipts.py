"""A receipt's numbers are the fills' own sums, in kripto's Trade keys; masked and display-currency renderings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from coinwire.messages import FillView, OrderView
from coinwire.services.notifications.receipts import render_receipt, summarise, trade_json

_BASE = OrderView(42, "2020-05-19T19:39:00+00:00", None, "coinbase", "c-1", None, "market", "BTC_GBP", "BTC/GBP", "0.00125952",
                  "buy", "0", 0, "done", "filled", "2020-05-19T19:39:01+00:00", None, "2020-05-19T19:39:01+00:00", "0.00125952",
                  "7899.99", "0.049751102976", "GBP", 1, 3)


def _order(**changes: Any) -> OrderView:
    return msgspec.structs.replace(_BASE, **changes)


def _fill(fill_id: int, size: str, price: str, notional: str, fee: str) -> FillView:
    return FillView(fill_id, 42, "c-1", None, None, 1, "coinbase", "market", "buy", "BTC_GBP", "BTC/GBP", size, price, notional, fee,
                    "GBP", False, None, "2020-05-19T19:39:01+00:00", 0)


FILLS = [_fill(1, "0.00100000", "7899.98", "7.8999800000", "0.039499900000"),
         _fill(2, "0.00025952", "7900.02", "2.0502405952", "0.010251202976")]


def test_the_kripto_fields_are_the_fills_sums() -> None:
    body = trade_json(summarise(_order(), FILLS))
    assert {k: body[k] for k in ("id", "side", "productId", "funds", "settled", "createdAt", "fillFees", "filledSize",
                                  "executedValue")} == {
        "id": "42", "side": "buy", "productId": "BTC-GBP", "funds": "9.999971698176", "settled": True,  # value + quote fee
        "createdAt": "2020-05-19T19:39:00+00:00", "fillFees": "0.049751102976", "filledSize": "0.00125952",
        "executedValue": "9.9502205952"}
    assert (body["fills"], body["fee_currency"], body["done_reason"]) == (2, "GBP", "filled")


def test_a_partly_filled_cancelled_order_and_a_sell_take_what_was_filled() -> None:
    body = trade_json(summarise(_order(done_reason="cancelled", size="0.01"), FILLS[:1]))
    assert (body["filledSize"], body["executedValue"], body["done_reason"]) == ("0.001", "7.89998", "cancelled")
    sold = trade_json(summarise(_order(side="sell"), FILLS))
    assert sold["funds"] == "9.9502205952"  # a sell spends no quote: its funds are what it fetched


def test_rendering_shows_the_display_currency_beside_the_quote_or_masks_every_amount() -> None:
    summary = summarise(_order(), FILLS)
    subject, text, html = render_receipt(summary, display="EUR", rate=Decimal("1.1"), mask=False)
    assert subject == "Receipt: bought 0.00125952 BTC on coinbase (BTC-GBP, order 42)"
    assert "Executed value   9.9502205952 GBP (≈ 10.95 EUR)\n" in text
    assert "<td>9.9502205952 GBP (≈ 10.95 EUR)</td>" in html
    _, unknown, _ = render_receipt(summary, display="JPY", rate=None, mask=False)
    assert "no GBP/JPY rate was known: values are in GBP only" in unknown
    masked_subject, masked, masked_html = render_receipt(summary, display="EUR", rate=Decimal("1.1"), mask=True)
    for shown in (masked_subject, masked, masked_html):
        assert "9.95" not in shown and "0.00125952" not in shown and "10.95" not in shown
    assert "Executed value   **** GBP\n" in masked and "Trade id         42\n" in masked
    _, escaped, _ = render_receipt(summarise(_order(client_order_id="<script>"), FILLS), display="GBP", rate=Decimal(1), mask=False)
    assert "<script>" not in render_receipt(summarise(_order(client_order_id="<script>"), FILLS), display="GBP", rate=Decimal(1),
                                            mask=False)[2]
    assert "(≈" not in escaped  # the display currency is the quote: nothing beside it

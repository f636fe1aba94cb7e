"""Positions and the position book: keys per account/side/wallet set, settings defaults, entry price, uPnL, restore."""

from __future__ import annotations

from decimal import Decimal

from coinwire.core.numbers import ATTO
from coinwire.core.orders import PositionSide
from coinwire.core.positions import (
    DEFAULT_LEVERAGE,
    MarginMode,
    Position,
    PositionBook,
    PositionSettings,
    entry_price,
    unrealised_pnl,
)
from tests.core.test_perp_execution import BTC, EX
from tests.core.test_perp_reference import XRP


def test_entry_price_and_unrealised_pnl_are_exact() -> None:
    long = Position(account_id=1, exchange=EX, symbol=BTC.symbol, size=300, leverage=10, margin_mode=MarginMode.CROSS,
                    entry_cost=BTC.contract_notional(600_001, 100) + BTC.contract_notional(610_001, 200))
    assert entry_price(long, BTC) == Decimal("60666.76666666666666666666667")
    assert unrealised_pnl(long, BTC, 620_000) == BTC.contract_notional(620_000, 300) - long.entry_cost
    short = Position(account_id=1, exchange=EX, symbol=XRP.symbol, size=-10, leverage=10, margin_mode=MarginMode.CROSS,
                     entry_cost=XRP.contract_notional(5_000, 10))  # 1 XRP at 0.5
    assert entry_price(short, XRP) == Decimal("0.5")
    assert unrealised_pnl(short, XRP, 4_000) == ATTO // 10  # 0.1 USDT gained
    assert short.direction == "short" and long.direction == "long"


def test_book_keys_positions_by_account_side_and_wallet_set() -> None:
    book = PositionBook()
    settings = book.settings(1, EX, BTC.symbol, BTC)
    assert (settings.leverage, settings.margin_mode) == (DEFAULT_LEVERAGE, MarginMode.CROSS)
    a = book.open_or_get(1, EX, BTC.symbol, PositionSide.LONG, None, settings, 5)
    b = book.open_or_get(1, EX, BTC.symbol, PositionSide.SHORT, None, settings, 5)
    c = book.open_or_get(1, EX, BTC.symbol, PositionSide.LONG, 7, settings, 5)
    d = book.open_or_get(2, EX, BTC.symbol, PositionSide.LONG, None, settings, 5)
    assert len({a.id, b.id, c.id, d.id}) == 4 and all(p.hold_id < 0 for p in (a, b, c, d))
    assert book.open_or_get(1, EX, BTC.symbol, PositionSide.LONG, None, settings, 6) is a
    a.size = 10
    assert book.open_positions(EX, BTC.symbol) == [a]
    assert book.of_account(2) == [d] and book.has_open(1, EX) and not book.has_open(2, EX)
    book.put_settings(PositionSettings(account_id=1, exchange=EX, symbol=BTC.symbol, leverage=3, margin_mode=MarginMode.ISOLATED))
    book.put_hedge_mode(1, EX, True)
    restored = PositionBook()
    restored.restore(book.all(), book.all_settings(), [(acc, ex, hedge) for (acc, ex), hedge in book.hedge_modes().items()])
    assert [p.key for p in restored.all()] == [p.key for p in book.all()]
    assert restored.settings(1, EX, BTC.symbol).leverage == 3 and restored.hedge_mode(1, EX) and not restored.hedge_mode(2, EX)
    new = restored.open_or_get(3, EX, BTC.symbol, PositionSide.BOTH, None, settings, 9)
    assert new.id > max(p.id for p in book.all())  # ids continue after the restored ones

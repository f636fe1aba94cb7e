"""A Binance account's seeded past, made from the recorded 5-minute candles: trades on three markets, deposits, withdrawals.

The trades happen at the recorded prices (each at the close of the 5-minute candle it falls in,
to the tick), every tenth one exactly at a 15-minute boundary; fees are Binance's 0.1% in the
asset received, rounded up to 8 decimals. Two transfers did not complete (a pending deposit, a
cancelled withdrawal): they must not count. `balances` is what the account holds after all of
it, what the server's `/api/v3/account` answers. Nothing here imports coinwire.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

from tests.venues.binance_trading import AccountHistory

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance-spot-5m"
START_MS = 1_609_718_400_000  # 2021-01-04 00:00 UTC
SPAN_MS = 3 * 86_400_000  # the trading lasts three days
KLINE_DAYS = 5  # candles served from a day before the start to five days after
MARKETS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT"), "SOLUSDT": ("SOL", "USDT")}
SIZES = {"BTC": (Decimal("0.001"), Decimal("0.02")), "ETH": (Decimal("0.01"), Decimal("0.3")), "SOL": (Decimal("0.5"), Decimal("20"))}
STEP = Decimal("0.00001")
TICK = Decimal("0.01")
EIGHT = Decimal("0.00000001")
FEE_RATE = Decimal("0.001")


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(EIGHT):f}"


@dataclass
class SeededHistory:
    """The account's past in Binance's shapes (`history`, BTCUSDT's trades apart) and the balances it leads to."""

    history: AccountHistory
    btc_trades: list[dict[str, Any]]
    balances: dict[str, str]
    rows: dict[str, list[list[float]]] = field(default_factory=dict)  # symbol id -> recorded 5m rows served

    def all_trades(self) -> list[dict[str, Any]]:
        return [*self.btc_trades, *(t for trades in self.history.trades.values() for t in trades)]


def recorded_rows(symbol: str) -> list[list[float]]:
    """The recorded 5m rows of a market (BTCUSDT -> BTC_USDT-5m.json) around the seeded days."""
    base, quote = MARKETS[symbol]
    rows = json.loads((DATA / f"{base}_{quote}-5m.json").read_text())
    lo, hi = START_MS - 86_400_000, START_MS + KLINE_DAYS * 86_400_000
    return [row for row in rows if lo <= row[0] < hi]


def seeded_history(trades_per_market: int = 120, seed: int = 26) -> SeededHistory:
    rng = random.Random(seed)
    rows = {symbol: recorded_rows(symbol) for symbol in MARKETS}
    closes = {symbol: {int(r[0]): Decimal(repr(r[4])) for r in rs} for symbol, rs in rows.items()}
    held: dict[str, Decimal] = {}

    def move(asset: str, amount: Decimal) -> None:
        held[asset] = held.get(asset, Decimal(0)) + amount

    deposits = [
        _deposit("dep-usdt-1", "USDT", Decimal(60000), START_MS + 7 * 60_000 + 123, 1),
        _deposit("dep-btc-1", "BTC", Decimal("0.5"), START_MS + 3_600_000, 1),  # exactly at a boundary
        _deposit("dep-eth-pending", "ETH", Decimal(3), START_MS + SPAN_MS // 2, 0),  # still pending: not credited
    ]
    for d in deposits:
        if d["status"] == 1:
            move(d["coin"], Decimal(d["amount"]))
    # every market's trades at random instants after both deposits, sorted; every tenth on a boundary
    instants = sorted(START_MS + 2 * 3_600_000 + rng.randrange(SPAN_MS) for _ in range(trades_per_market * len(MARKETS)))
    plan = [(t - t % 900_000 if i % 10 == 0 else t, list(MARKETS)[rng.randrange(len(MARKETS))]) for i, t in enumerate(instants)]
    withdrawals_at = {START_MS + SPAN_MS * 2 // 3: ("wd-eth-1", "ETH", Decimal("0.05"), Decimal("0.005"), 6),
                      START_MS + SPAN_MS * 3 // 4: ("wd-sol-cancelled", "SOL", Decimal(1), Decimal("0.01"), 1)}
    withdrawals: list[dict[str, Any]] = []
    trades: dict[str, list[dict[str, Any]]] = {symbol: [] for symbol in MARKETS}
    ids = {symbol: 7000 + 10_000 * i for i, symbol in enumerate(MARKETS)}
    pending_withdrawals = sorted(withdrawals_at.items())
    for ts, symbol in plan:
        while pending_withdrawals and pending_withdrawals[0][0] <= ts:
            at, (wid, coin, amount, fee, status) = pending_withdrawals.pop(0)
            if status == 6 and held.get(coin, Decimal(0)) < amount + fee:
                status = 1  # nothing to withdraw: it was cancelled
            withdrawals.append(_withdrawal(wid, coin, amount, fee, at, status))
            if status == 6:
                move(coin, -(amount + fee))
        base, quote = MARKETS[symbol]
        candle_open = ts - ts % 300_000 if ts % 300_000 else ts - 300_000  # the candle the instant falls in (or ends)
        price = closes[symbol][candle_open].quantize(TICK, rounding=ROUND_DOWN)
        lo, hi = SIZES[base]
        qty = (lo + (hi - lo) * Decimal(rng.random())).quantize(STEP, rounding=ROUND_DOWN)
        buy = rng.random() < 0.6
        if not buy and held.get(base, Decimal(0)) < qty:
            buy = True
        cost = price * qty
        if buy and held.get(quote, Decimal(0)) < cost:
            continue
        fee = ((qty if buy else cost) * FEE_RATE).quantize(EIGHT, rounding=ROUND_UP)
        if buy:
            move(quote, -cost)
            move(base, qty - fee)
        else:
            move(base, -qty)
            move(quote, cost - fee)
        ids[symbol] += 1
        trades[symbol].append({
            "symbol": symbol, "id": ids[symbol], "orderId": ids[symbol] * 3, "orderListId": -1, "price": _fmt(price),
            "qty": _fmt(qty), "quoteQty": _fmt(cost), "commission": _fmt(fee), "commissionAsset": base if buy else quote,
            "time": ts, "isBuyer": buy, "isMaker": rng.random() < 0.5, "isBestMatch": True,
        })
    for at, (wid, coin, amount, fee, status) in pending_withdrawals:
        withdrawals.append(_withdrawal(wid, coin, amount, fee, at, status if held.get(coin, Decimal(0)) >= amount + fee else 1))
        if withdrawals[-1]["status"] == 6:
            move(coin, -(amount + fee))
    history = AccountHistory(dict(MARKETS), {s: t for s, t in trades.items() if s != "BTCUSDT"}, deposits, withdrawals, rows)
    balances = {asset: _fmt(amount) for asset, amount in sorted(held.items())}
    return SeededHistory(history, trades["BTCUSDT"], balances, rows)


def _deposit(ident: str, coin: str, amount: Decimal, ts: int, status: int) -> dict[str, Any]:
    return {"id": ident, "amount": _fmt(amount), "coin": coin, "network": coin, "status": status,
            "address": "0x" + ident.encode().hex(), "addressTag": "", "txId": "tx-" + ident, "insertTime": ts,
            "transferType": 0, "confirmTimes": "12/12", "unlockConfirm": 0, "walletType": 0}


def _withdrawal(ident: str, coin: str, amount: Decimal, fee: Decimal, ts: int, status: int) -> dict[str, Any]:
    apply_time = datetime.fromtimestamp(ts // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return {"id": ident, "amount": _fmt(amount), "transactionFee": _fmt(fee), "coin": coin, "status": status,
            "address": "0x" + ident.encode().hex(), "txId": "tx-" + ident, "applyTime": apply_time, "network": coin,
            "transferType": 0, "completeTime": apply_time}

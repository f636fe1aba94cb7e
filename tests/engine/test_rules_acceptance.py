"""Acceptance: a portfolio trailing stop on the 24-pair hourly portfolio fires where an independent reference says, and leaves the quote.

The reference is written here, from the recorded candles and a run WITHOUT rules alone (numpy
and Decimal; neither engine/rules.py nor core/rules.py): the run's exact equity at every bar
close, the trailing stop walked over it, and the final equity of selling every holding at the
next bar's open with the venue's fee. The run WITH the rule set must agree with it exactly.
"""

from __future__ import annotations

import json
import tomllib
from bisect import bisect_right
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.runs import run_backtest
from coinwire.strategies.registry import load_strategy
from tests.conftest import shared_data
from tests.engine.test_cli_run import coinwire
from tests.rules_example import ISSUE_EXAMPLE

pytestmark = pytest.mark.slow

NS = 10**9
ATTO = 18
QUOTE = "USDT"
BALANCE = Decimal(10000)
FEE = "0.001"
ARM_PCT, TRAIL_PCT = Decimal(10), Decimal(5)

RULES_TOML = ISSUE_EXAMPLE  # the issue's example rule set, as a `--rules` file says it


def hourly() -> list[Series]:
    """All 24 recorded Binance pairs, hourly, as the engine reads candles."""
    folder = shared_data("binance-spot-1h")
    out = []
    for path in sorted(Path(folder).glob("*_USDT-1h.json")):
        rows = np.array(json.loads(path.read_bytes()), dtype=float)
        symbol = path.name.split("-")[0].replace("_", "/")
        out.append(Series(symbol, "1h", (rows[:, 0] // 1000).astype(np.int64), *(rows[:, k] for k in range(1, 6))))
    assert len(out) == 24
    return out


def backtest(data: list[Series], rules: list[dict[str, Any]]) -> tuple[Any, Any]:
    config = BacktestConfig(exchange="binance", balances={QUOTE: str(BALANCE)}, fee=FEE, rules=rules)
    outcome, rt = run_backtest(load_strategy("rebalance"), {}, data, config)
    assert outcome.status == "finished", outcome.error
    return outcome.report, rt


def price(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def apply(held: dict[str, Decimal], trade: dict[str, Any]) -> None:
    """One fill of the report on the holdings: base in or out at its price, the fee in its currency."""
    base = trade["symbol"].split("/")[0]
    sign = 1 if trade["side"] == "buy" else -1
    size = Decimal(trade["size"])
    held[base] = held.get(base, Decimal(0)) + sign * size
    held[QUOTE] -= sign * Decimal(trade["price"]) * size
    held[trade["fee_currency"]] -= Decimal(trade["fee"])


def equity_at_closes(report: dict[str, Any], data: list[Series]) -> tuple[list[int], list[Decimal], list[dict[str, Decimal]]]:
    """At each bar close: the holdings after every fill stamped before it, valued at that bar's closes.

    Fills stamped AT a close are the next open's (orders sent at that close): a sample taken at the
    close is the portfolio the close finds, before the orders its candle causes have reached the venue.
    """
    closes = {s.symbol: s.close for s in data}
    times = (data[0].close_ns // NS).tolist()
    assert all(np.array_equal(s.close_ns, data[0].close_ns) for s in data)  # one clock: the data's identical timestamps
    trades = report["trades"]
    held: dict[str, Decimal] = {QUOTE: BALANCE}
    k = 0
    values, holdings = [], []
    for i, ts in enumerate(times):
        while k < len(trades) and trades[k]["time"] < ts:
            apply(held, trades[k])
            k += 1
        values.append(held[QUOTE] + sum(amount * price(closes[f"{c}/{QUOTE}"][i]) for c, amount in held.items() if c != QUOTE))
        holdings.append(dict(held))
    return times, values, holdings


def trailing_stop_fires(values: list[Decimal]) -> tuple[int, Decimal]:
    """The first bar where the stop fires: reference = the first sample, armed once the peak is 10% above it, then at <= peak * 0.95."""
    reference = peak = values[0]
    armed = False
    for i, value in enumerate(values):
        peak = max(peak, value)
        if not armed and peak >= reference * (1 + ARM_PCT / 100):
            armed = True
        if armed and value <= peak * (1 - TRAIL_PCT / 100):
            return i, peak
    raise AssertionError("the trailing stop never fires on this data")


class Reference(NamedTuple):
    data: list[Series]
    plain: dict[str, Any]  # the report of the run without rules
    times: list[int]  # bar closes (unix seconds)
    values: list[Decimal]  # the equity a sample finds at each close
    holdings: list[dict[str, Decimal]]
    fire: int  # the bar where the trailing stop fires
    peak: Decimal


@pytest.fixture(scope="module")
def reference() -> Reference:
    data = hourly()
    plain, _ = backtest(data, [])
    times, values, holdings = equity_at_closes(plain, data)
    fire, peak = trailing_stop_fires(values)
    assert fire + 1 < len(times)  # there is a next bar to sell at
    # the rebalance strategy trades nothing at the firing instant: the close_all's sells are the only orders there
    assert not [t for t in plain["trades"] if t["time"] == times[fire]]
    return Reference(data, plain, times, values, holdings, fire, peak)


def test_the_portfolio_trailing_stop_fires_where_the_reference_does_and_leaves_only_the_quote(reference: Reference) -> None:
    data, plain, times, values, holdings, fire, peak = reference
    fire_ts = times[fire]
    rules = tomllib.loads(RULES_TOML)["rule_sets"]
    report, rt = backtest(data, rules)

    # fires once, at the close the reference found, with the values the reference computed
    firings = report["rule_firings"]
    assert [(f["time"], f["rule_set"]) for f in firings] == [(fire_ts, "portfolio stop")]
    assert Decimal(firings[0]["values"]["value"]) == values[fire]
    assert Decimal(firings[0]["values"]["peak"]) == peak
    assert [a["kind"] for a in firings[0]["actions"]] == ["close_all"] and firings[0]["actions"][0]["status"] == "done"

    # the same run as the plain one until the firing
    assert [t for t in report["trades"] if t["time"] < fire_ts] == [t for t in plain["trades"] if t["time"] < fire_ts]

    # expected: every holding at the firing close sold at the next bar's open, floored to the market's step, the
    # taker fee on each sale rounded up to the ATTO (the venue's favour); below one step stays as dust
    held = holdings[fire]
    bar = {s.symbol: s for s in data}
    quote = held[QUOTE]
    dust: dict[str, Decimal] = {}
    sells: dict[str, tuple[Decimal, Decimal]] = {}
    for currency, amount in held.items():
        if currency == QUOTE or amount == 0:
            continue
        symbol = f"{currency}/{QUOTE}"
        inst = rt.markets[symbol].instrument
        step = Decimal(inst.step).scaleb(-inst.size_decimals)
        size = (amount // step) * step
        dust[currency] = amount - size
        assert 0 <= dust[currency] < step
        if size == 0:
            continue
        open_price = price(bar[symbol].open[fire + 1])
        assert size <= Decimal(repr(float(bar[symbol].volume[fire + 1])))  # the next bar's volume takes the whole sale
        notional = open_price * size
        fee_atto = -(-int(notional.scaleb(ATTO)) * inst.taker_fee // 10**8)  # ceil: the venue rounds its fee up
        fee = Decimal(fee_atto).scaleb(-ATTO)
        sells[symbol] = (size, open_price)
        quote += notional - fee
    last = {s.symbol: price(s.close[-1]) for s in data}
    expected = quote + sum(d * last[f"{c}/{QUOTE}"] for c, d in dust.items())

    # what happened: exactly those sells at the next open, nothing traded after
    at_fire = [t for t in report["trades"] if t["time"] == fire_ts]
    assert {t["symbol"]: (Decimal(t["size"]), Decimal(t["price"])) for t in at_fire} == sells
    assert all(t["side"] == "sell" for t in at_fire) and len(at_fire) == len(sells)
    assert not [t for t in report["trades"] if t["time"] > fire_ts]
    # after the firing the run holds the quote and at most the dust under one step of each market
    last_sale = bisect_right([ts for ts, _ in rt.balance_points], fire_ts * NS) - 1  # the point after the last sale
    after = rt.balance_points[last_sale:]
    assert after[0][0] == fire_ts * NS
    for _, totals in after:
        others = {c: Decimal(v).scaleb(-ATTO) for c, v in totals.items() if c != QUOTE and v}
        assert others == {c: d for c, d in dust.items() if d}
    assert Decimal(after[-1][1][QUOTE]).scaleb(-ATTO) == quote
    # the report's final equity is the reference's
    final = Decimal(report["final_equity_exact"])
    assert abs(final - expected) <= expected * Decimal("1e-9")


def test_the_cli_runs_the_issues_rules_file_and_compares_with_the_run_without(reference: Reference, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(RULES_TOML)
    done = coinwire(tmp_path, "run", "rebalance", "--data", str(shared_data("binance-spot-1h")), "--balance",
                    f"binance:{QUOTE}={BALANCE}", "--fee", FEE, "--rules", str(rules_file), "--compare", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(f["time"], f["rule_set"]) for f in report["rule_firings"]] == [(reference.times[reference.fire], "portfolio stop")]
    without = Decimal(reference.plain["final_equity_exact"])
    assert Decimal(report["final_equity_without_rules"]) == without
    assert Decimal(report["rules_effect"]) == Decimal(report["final_equity_exact"]) - without

"""Rule sets in backtests and paper runs: a trailing stop fires at the bar a hand computation finds and its actions trade in the run."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coinwire.app import Platform
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.indicators import indicator_spec
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.rules import load_rules_file
from coinwire.engine.runs import finish_backtest, prepare_any_backtest, run_backtest
from coinwire.history import load_data_arg
from coinwire.services.paper_runs import finish_paper
from coinwire.services.runs import RunManager
from tests.conftest import shared_data
from tests.engine.strategies.two_coins import HoldBtc, TwoCoins
from tests.engine.test_cli_run import coinwire
from tests.engine.test_paper import capture, paper_session
from tests.engine.test_warmup import drive
from tests.engine.test_warmup import settings as warm_settings

START = 1606780800  # 2020-12-01 00:00 UTC, the first hourly bar of the shared data
END = START + 600 * 3600
TWO_COINS = str(Path(__file__).parent / "strategies" / "two_coins.py") + ":TwoCoins"
_NS = 1_000_000_000


def two_markets() -> list[Any]:
    folder = shared_data("binance-spot-1h")
    return load_data_arg(folder / "BTC_USDT-1h.json", exchange="binance") + load_data_arg(folder / "ETH_USDT-1h.json", exchange="binance")


def trailing(arm: str = "10", trail: str = "5", mode: str = "live", pause: bool = True, name: str = "stop") -> dict[str, Any]:
    return {"name": name, "scope": "run", "mode": mode,
            "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": arm, "trail_pct": trail}],
            "actions": [{"kind": "close_all", "pause": pause}]}


def backtest(rules: list[dict[str, Any]], end: int = END) -> tuple[Any, Any]:
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000"}, end=end, rules=rules)
    return run_backtest(TwoCoins, {}, two_markets(), config)


def hand_firing(report: dict[str, Any], arm: Decimal, trail: Decimal) -> tuple[int, Decimal, Decimal]:
    """(close instant s, peak, value) where the stop must fire, from the report's two buys and the raw candle files alone.

    The run holds 10000 USDT until its buys fill at the open of bar 1 (the close of bar 0, where the
    reference is taken); from bar 1's close on it holds what the buys left. A sample at a close
    is valued at that bar's closes; peak, arming and trigger as docs/RULES.md states them.
    """
    buys = [t for t in report["trades"] if t["side"] == "buy"][:2]
    held = {"USDT": Decimal(10000)}
    for t in buys:
        base = t["symbol"].split("/")[0]
        held[base] = held.get(base, Decimal(0)) + Decimal(t["size"])
        held["USDT"] -= Decimal(t["price"]) * Decimal(t["size"])
        held[t["fee_currency"]] -= Decimal(t["fee"])
    folder = shared_data("binance-spot-1h")
    rows = {c: json.loads((folder / f"{c}_USDT-1h.json").read_text()) for c in ("BTC", "ETH")}
    reference = Decimal(10000)
    peak, armed = reference, False
    for i in range(1, 600):
        close = (rows["BTC"][i][0] // 1000) + 3600
        value = held["USDT"] + sum(held[c] * Decimal(repr(float(rows[c][i][4]))) for c in ("BTC", "ETH"))
        peak = max(peak, value)
        armed = armed or peak >= reference * (100 + arm) / 100
        if armed and value <= peak * (100 - trail) / 100:
            return close, peak, value
    raise AssertionError("the reference computation never fires")


def test_a_trailing_stop_fires_at_the_bar_a_hand_computation_finds_and_sells_everything_at_the_next_open() -> None:
    outcome, rt = backtest([trailing()])
    report = outcome.report
    assert outcome.status == "finished"
    (firing,) = report["rule_firings"]
    when, peak, value = hand_firing(report, Decimal(10), Decimal(5))
    assert firing["time"] == when and firing["rule_set"] == "stop"
    assert Decimal(firing["values"]["peak"]) == peak and Decimal(firing["values"]["value"]) == value
    assert Decimal(firing["values"]["reference"]) == 10000
    assert Decimal(firing["values"]["trigger"]) == peak * Decimal("0.95") >= value
    (action,) = firing["actions"]
    assert action["kind"] == "close_all" and action["status"] == "done" and action["detail"]["dust"] == {}
    # the sells are market orders: they fill at the open of the bar after the firing (its instant), for exactly what was held
    sells = [t for t in report["trades"] if t["side"] == "sell"]
    bought = {t["symbol"]: t["size"] for t in report["trades"] if t["side"] == "buy"}
    assert {t["symbol"]: t["size"] for t in sells} == bought
    folder = shared_data("binance-spot-1h")
    opens = {r[0] // 1000: r[1] for r in json.loads((folder / "BTC_USDT-1h.json").read_text())}
    btc_sell = next(t for t in sells if t["symbol"] == "BTC/USDT")
    assert btc_sell["time"] == when and Decimal(btc_sell["price"]) == Decimal(repr(float(opens[when])))
    # flat in the quote afterwards, and the strategy's buy-backs were refused: the report's equity is the USDT held
    totals = rt.totals()
    assert totals.get("BTC", 0) == totals.get("ETH", 0) == 0
    assert Decimal(report["final_equity_exact"]) == Decimal(totals["USDT"]).scaleb(-18)
    assert rt._strategy.refused and all(e.startswith("entries_paused") for e in rt._strategy.refused)
    assert not [t for t in report["trades"] if t["side"] == "buy" and t["time"] > when]
    assert [m.method for m in rt.hub if m.method.startswith("controller.")] == ["controller.pause", "controller.rule_fired"]


def test_without_pause_the_strategy_buys_back_after_the_close_all() -> None:
    outcome, rt = backtest([trailing(pause=False)])
    (firing,) = outcome.report["rule_firings"]
    later = [t for t in outcome.report["trades"] if t["side"] == "buy" and t["time"] > firing["time"]]
    assert later and not rt._strategy.refused


def test_dry_run_records_the_firing_and_trades_nothing() -> None:
    live, _ = backtest([trailing()])
    dry, _ = backtest([trailing(mode="dry_run")])
    plain, _ = backtest([])
    (firing,) = dry.report["rule_firings"]
    assert firing["time"] == live.report["rule_firings"][0]["time"]
    assert firing["actions"] == [{"kind": "close_all", "status": "recorded", "detail": {"mode": "dry_run"}}]
    assert dry.report["trades"] == plain.report["trades"] and dry.report["final_equity_exact"] == plain.report["final_equity_exact"]
    assert "rule_firings" not in plain.report
    assert dry.run_id != plain.run_id  # the rules are part of what a run is


def test_scale_orders_halves_the_strategys_entries() -> None:
    scale = {"name": "half", "scope": "run", "rules": [{"kind": "portfolio_stop", "value": "1000000"}],
             "actions": [{"kind": "scale_orders", "factor": "0.5"}]}
    scaled, rt = backtest([scale], end=START + 10 * 3600)
    plain, _ = backtest([], end=START + 10 * 3600)
    assert scaled.report["rule_firings"][0]["time"] == START + 3600  # the first close: before the strategy's first buys
    assert rt.order_scale == Decimal("0.5")
    for a, b in zip([t for t in scaled.report["trades"] if t["side"] == "buy"][:2],
                    [t for t in plain.report["trades"] if t["side"] == "buy"][:2], strict=True):
        spent = Decimal(a["price"]) * Decimal(a["size"]) + Decimal(a["fee"])
        assert spent <= Decimal(2500) and spent > Decimal("2499.99")  # funds=5000 spends 2500
        assert Decimal(a["size"]) == pytest.approx(Decimal(b["size"]) / 2, rel=Decimal("1e-9"))


def test_stop_run_ends_the_strategy_but_the_rules_own_sells_still_fill() -> None:
    stop = trailing()
    stop["actions"].append({"kind": "stop_run"})
    outcome, rt = backtest([stop])
    (firing,) = outcome.report["rule_firings"]
    assert outcome.status == "stopped" and "stop" in (outcome.error or "")
    assert [a["kind"] for a in firing["actions"]] == ["close_all", "stop_run"]
    assert {t["symbol"] for t in outcome.report["trades"] if t["side"] == "sell"} == {"BTC/USDT", "ETH/USDT"}
    assert rt.totals().get("BTC", 0) == 0
    assert not rt._strategy.refused  # no callback after the stop: it never tried to buy back


def test_a_rearming_set_fires_again_after_its_cooldown_and_the_first_sample_after_it_is_the_new_reference() -> None:
    rearm = {**trailing(arm="2", trail="2", pause=False), "after": "rearm", "cooldown": "1d"}
    outcome, _ = backtest([rearm])
    firings = outcome.report["rule_firings"]
    assert len(firings) >= 2
    assert all(b["time"] - a["time"] >= 86400 for a, b in zip(firings, firings[1:], strict=False))


@pytest.mark.parametrize(("rules", "code"), [
    ([{**trailing(), "scope": "account", "scope_id": "1"}], "invalid_rule_set"),
    ([trailing(trail="100")], "out_of_range"),
    ([{**trailing(), "colour": "red"}], "invalid_rule_set"),
    ([{**trailing(), "rules": [{"kind": "moon_phase"}]}], "unknown_rule_kind"),
    ([trailing(), trailing()], "invalid_rule_set"),
])
def test_bad_rule_sets_are_refused_before_anything_runs(rules: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        BacktestConfig(exchange="binance", balances={"USDT": "10000"}, rules=rules)
    assert refused.value.code == code


def test_without_rules_the_clock_wakes_only_where_the_strategy_listens() -> None:
    _, plain = backtest([], end=START + 50 * 3600)
    _, ruled = backtest([trailing(arm="1000")], end=START + 50 * 3600)
    assert plain.rules is None and ruled.rules.samples == 50  # every close of the 50 bars (both markets close together)
    assert plain.events == ruled.events  # the strategy hears the same callbacks


# --- the CLI --------------------------------------------------------------------------------------------
RULES_TOML = """
[[rule_sets]]
name = "portfolio stop"
scope = "run"
mode = "live"
after = "once"
[[rule_sets.rules]]
kind = "portfolio_trailing_stop"
arm_pct = 10
trail_pct = 5
[[rule_sets.actions]]
kind = "close_all"
"""


def cli_args(tmp_path: Path, *extra: str) -> list[str]:
    folder = shared_data("binance-spot-1h")
    return ["run", TWO_COINS, "--data", str(folder / "BTC_USDT-1h.json"), "--data", str(folder / "ETH_USDT-1h.json"),
            "--balance", "binance:USDT=10000", "--end", str(END), "--no-save", *extra]


def test_cli_rules_file_and_compare_report_the_firing_and_the_rules_effect(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_TOML)
    done = coinwire(tmp_path, *cli_args(tmp_path, "--rules", str(rules), "--compare", "--json"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (firing,) = report["rule_firings"]
    assert firing["rule_set"] == "portfolio stop" and firing["actions"][0]["status"] == "done"
    plain = json.loads(coinwire(tmp_path, *cli_args(tmp_path, "--json")).stdout)
    assert "rule_firings" not in plain
    assert report["final_equity_without_rules"] == plain["final_equity_exact"]
    assert Decimal(report["rules_effect"]) == Decimal(report["final_equity_exact"]) - Decimal(plain["final_equity_exact"])
    text = coinwire(tmp_path, *cli_args(tmp_path, "--rules", str(rules), "--report", str(tmp_path / "report.html")))
    assert text.returncode == 0, text.stderr
    assert "rule firings: 1" in text.stdout and "portfolio stop" in text.stdout and "close_all done" in text.stdout
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Rule firings</h2>" in page and f"<td>{firing['time']}</td><td>portfolio stop</td>" in page


@pytest.mark.parametrize(("content", "code"), [
    (RULES_TOML.replace('kind = "close_all"', 'kind = "close_all"\ncolour = "red"'), "invalid_rule_set"),
    (RULES_TOML + "\n[extra]\nx = 1\n", "invalid_rule_set"),
    (RULES_TOML.replace("trail_pct = 5", "trail_pct = 0"), "out_of_range"),
    ("[[rule_sets]\nname = ", "invalid_rules_file"),
    (RULES_TOML.replace('scope = "run"', 'scope = "user"'), "invalid_rule_set"),
])
def test_cli_refuses_a_bad_rules_file_with_its_code(tmp_path: Path, content: str, code: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(content)
    done = coinwire(tmp_path, *cli_args(tmp_path, "--rules", str(rules)))
    assert done.returncode == 2 and f"({code})" in done.stderr and not done.stdout
    with pytest.raises(InvalidInput) as refused:
        load_rules_file(rules)
    assert refused.value.code == code


def test_cli_compare_needs_rules(tmp_path: Path) -> None:
    done = coinwire(tmp_path, *cli_args(tmp_path, "--compare"))
    assert done.returncode == 2 and "(invalid_params)" in done.stderr


# --- L2 backtest and paper run ----------------------------------------------------------------------------
L2_RULE = trailing(arm="0", trail="0.02", name="tight")


def test_an_l2_backtest_evaluates_at_every_event_and_its_close_all_sells_against_the_book(tmp_path: Path) -> None:
    config = BacktestConfig(exchange="binance", balances={"USDT": "5000"}, fee="0.001", rules=[L2_RULE])
    prepared = prepare_any_backtest(HoldBtc, {}, [str(shared_data("binance-spot-l2"))], config, tmp_path)
    outcome = finish_backtest(prepared)
    rt = prepared.runtime
    assert outcome.status == "finished" and outcome.report is not None
    (firing,) = outcome.report["rule_firings"]
    assert rt.rules.samples > 1000  # a sample per recorded message after the start, not per bar
    (action,) = firing["actions"]
    assert action["status"] == "done"
    (order,) = action["detail"]["orders"]
    sell = next(t for t in outcome.report["trades"] if t["side"] == "sell")
    assert sell["time"] == firing["time"] and Decimal(sell["size"]) == Decimal(order["size"])
    assert Decimal(firing["values"]["value"]) <= Decimal(firing["values"]["trigger"])
    assert rt.totals().get("BTC", 0) == Decimal(action["detail"]["dust"].get("binance:BTC", "0")).scaleb(18)
    assert rt._strategy.refused and not [t for t in outcome.report["trades"] if t["side"] == "buy" and t["time"] > firing["time"]]


async def test_a_paper_run_fires_the_same_rule_and_ends_flat_in_its_quote(tmp_path: Path) -> None:
    config = BacktestConfig(exchange="binance", balances={"USDT": "5000"}, fee="0.001", rules=[L2_RULE])
    prepared = prepare_any_backtest(HoldBtc, {}, [str(shared_data("binance-spot-l2"))], config, tmp_path)
    backtest_firing = finish_backtest(prepared).report["rule_firings"][0]  # type: ignore[index]

    run, orders, _ = await paper_session(tmp_path, HoldBtc, capture(), {"USDT": "5000"}, rules=[L2_RULE])
    report = finish_paper(run, "hold_btc", {}).report
    assert report is not None and run.failure is None
    (firing,) = report["rule_firings"]
    # sampled at most once a second of market time, so it fires at the backtest's instant or within the following second
    assert backtest_firing["time"] <= firing["time"] <= backtest_firing["time"] + 1
    (action,) = firing["actions"]
    assert action["status"] == "done"
    sold = [o for o in orders if o.side == "sell"]
    assert len(sold) == 1 and sold[0].status == "done"
    held = run.balance_points[-1][1]
    dust = Decimal(action["detail"]["dust"].get("binance:BTC", "0")).scaleb(18)
    assert held.get("BTC", 0) == dust and held["USDT"] > 0
    assert run._strategy.refused and all(e.startswith("entries_paused") for e in run._strategy.refused)
    assert np.isfinite(float(report["final_equity_exact"]))


def test_an_indicator_rule_reads_the_markets_indicator_at_each_close() -> None:
    """RSI(14) of BTC above 70: the firing bar is the first whose batch RSI (core.indicators' other path) is above it."""
    rsi = {"name": "hot", "scope": "run", "rules": [{"kind": "indicator", "series": "market:binance:BTC/USDT:1h", "indicator": "rsi",
                                                     "params": [14], "op": "above", "threshold": 70}],
           "actions": [{"kind": "pause_entries"}]}
    outcome, rt = backtest([rsi])
    (firing,) = outcome.report["rule_firings"]
    rows = np.array(json.loads((shared_data("binance-spot-1h") / "BTC_USDT-1h.json").read_text()), dtype=float)
    batch = np.asarray(indicator_spec("rsi").batch(rows[:600, 4], 14), dtype=float)
    first = int(np.flatnonzero(batch > 70)[0])
    assert firing["time"] == int(rows[first, 0]) // 1000 + 3600
    assert float(firing["values"]["indicator_value"]) == pytest.approx(batch[first], rel=1e-9)
    assert rt.entries_paused and firing["actions"] == [{"kind": "pause_entries", "status": "done", "detail": {"paused": True}}]


def test_the_portfolios_sma_crossing_below_its_sma_50_fires_where_its_reports_candles_say() -> None:
    """The issue's example on the run's own portfolio (`portfolio:1h` SMA 5 crossing below SMA 20, `other` the second
    output): the firing bar is the first cross of the two SMAs computed independently from the report's 15-minute
    portfolio candles, hourly closes from the first whole hour the rules watched."""
    rule = {"name": "cross", "scope": "run", "rules": [{"kind": "indicator", "series": "portfolio:1h", "indicator": "sma",
                                                        "params": [5], "op": "cross_below", "other": "portfolio.1h:sma(20)"}],
            "actions": [{"kind": "pause_entries"}]}
    outcome, rt = backtest([rule])
    closes = {t + 900: float(c) for t, _o, _h, _l, c, _v in outcome.report["portfolio"]["candles"]}
    ends = [e for e in sorted(closes) if e % 3600 == 0 and e >= START + 2 * 3600]  # the first sample opens 01:00
    hourly = np.array([closes[e] for e in ends])
    diff = np.asarray(indicator_spec("sma").batch(hourly, 5), dtype=float) - np.asarray(indicator_spec("sma").batch(hourly, 20),
                                                                                     dtype=float)
    first = next(i for i in range(1, len(diff)) if np.isfinite(diff[i - 1]) and diff[i - 1] >= 0 > diff[i])
    (firing, *_) = outcome.report["rule_firings"]
    assert firing["time"] == ends[first] and firing["values"]["compared_to"] == "portfolio.1h:sma(20)"
    sma5 = float(np.mean(hourly[first - 4:first + 1]))
    assert float(firing["values"]["indicator_value"]) == pytest.approx(sma5, rel=1e-9)
    assert rt.entries_paused


@pytest.mark.parametrize(("series", "extra"), [("market:kraken:BTC/USDT:1h", {}), ("portfolio:account:7:1h", {}),
                                               ("balance:1:BTC", {}),
                                               ("market:binance:BTC/USDT:1h", {"threshold": None, "other": "x"}),
                                               ("portfolio", {"threshold": None, "other": "balance.1.BTC:value()"})])
def test_an_indicator_rule_a_backtest_cannot_read_is_refused(series: str, extra: dict[str, Any]) -> None:
    rule = {"kind": "indicator", "series": series, "indicator": "sma", "params": [5], "op": "above", "threshold": 1, **extra}
    with pytest.raises(InvalidInput) as refused:
        backtest([{"name": "x", "scope": "run", "rules": [rule], "actions": [{"kind": "notify"}]}], end=START + 10 * 3600)
    assert refused.value.code in ("invalid_rule_set", "unknown_series")


def test_an_unknown_market_in_an_indicator_rule_is_refused_by_name() -> None:
    rule = {"kind": "indicator", "series": "market:binance:SOL/USDT:1h", "indicator": "sma", "params": [5], "op": "above",
            "threshold": 1}
    with pytest.raises(CoinwireError) as refused:
        backtest([{"name": "x", "scope": "run", "rules": [rule], "actions": [{"kind": "notify"}]}], end=START + 10 * 3600)
    assert refused.value.code == "history_missing" and "SOL/USDT" in refused.value.message


def test_notify_and_webhook_are_recorded_with_the_secret_masked() -> None:
    rules = {"name": "tell", "scope": "run", "rules": [{"kind": "portfolio_stop", "value": "1000000"}],
             "actions": [{"kind": "notify", "message": "down"}, {"kind": "webhook", "url": "https://example.org/h", "secret": "s3"}]}
    outcome, _ = backtest([rules], end=START + 5 * 3600)
    (firing,) = outcome.report["rule_firings"]
    notify, hook = firing["actions"]
    assert notify["status"] == hook["status"] == "recorded"
    assert notify["detail"]["spec"]["message"] == "down" and hook["detail"]["spec"]["secret"] == "***"
    assert "s3" not in json.dumps(outcome.report)


# --- a paper run controlled from outside: RunManager.control ----------------------------------------------
BUY_ON_TRADES = str(Path(__file__).parent / "strategies" / "two_coins.py") + ":BuyOnTrades"
HOLD_BTC = str(Path(__file__).parent / "strategies" / "two_coins.py") + ":HoldBtc"


def test_cli_paper_session_on_a_recording_takes_the_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_TOML.replace("arm_pct = 10", "arm_pct = 0").replace("trail_pct = 5", "trail_pct = 0.02"))
    done = coinwire(tmp_path, "run", HOLD_BTC, "-m", "paper", "--data", str(shared_data("binance-spot-l2")),
                    "--balance", "binance:USDT=5000", "--rules", str(rules), "--json", "--no-save")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (firing,) = report["rule_firings"]
    assert firing["actions"][0]["status"] == "done"
    assert [t["side"] for t in report["trades"]][-1] == "sell" and report["trades"][-1]["time"] >= firing["time"]
    compare = coinwire(tmp_path, "run", HOLD_BTC, "-m", "paper", "--data", str(shared_data("binance-spot-l2")),
                       "--balance", "binance:USDT=5000", "--rules", str(rules), "--compare")
    assert compare.returncode == 2 and "(invalid_params)" in compare.stderr


async def test_run_manager_pauses_scales_and_resumes_a_paper_runs_entries(tmp_path: Path) -> None:
    platform = Platform(warm_settings(tmp_path))
    await platform.start(feeds=False)
    manager = RunManager(tmp_path, allow_user_strategies=True, gateway=platform.gateway)
    try:
        await drive(platform, 1)
        started = await manager.start(BUY_ON_TRADES, {"mode": "paper", "balances": ["demo:USDT=1000"], "params": {"funds": "20"}})
        run_id = started["run_id"]
        runtime = manager.paper.running[run_id].runtime  # type: ignore[union-attr]
        await drive(platform, 3)
        strategy = runtime.strategy
        assert strategy.bought and not strategy.refused
        assert await manager.control(run_id, "pause") == {"run_id": run_id, "entries_paused": True, "scale": "1"}
        bought = len(strategy.bought)
        await drive(platform, 3)
        assert len(strategy.bought) == bought and strategy.refused and all(e.startswith("entries_paused") for e in strategy.refused)
        await manager.control(run_id, "scale", "0.5")
        await manager.control(run_id, "resume")
        await drive(platform, 3)
        spent = [f for f in runtime.fills[bought:] if f.side.value == "buy"]
        assert spent and all(Decimal(f.notional + f.fee).scaleb(-18) <= 10 for f in spent)  # funds 20, halved
        assert [m.method for m in runtime.hub if m.method.startswith("controller.")] == [
            "controller.pause", "controller.scale", "controller.resume"]
        for action, factor, code in (("freeze", None, "invalid_action"), ("scale", "11", "out_of_range"),
                                     ("scale", "nan", "invalid_factor"), ("scale", None, "invalid_factor")):
            with pytest.raises(CoinwireError) as refused:
                await manager.control(run_id, action, factor)
            assert refused.value.code == code
        with pytest.raises(CoinwireError) as refused:
            await manager.control("bt-nope", "pause")
        assert refused.value.code == "run_not_found"
        await manager.stop(run_id)
        with pytest.raises(CoinwireError) as refused:
            await manager.control(run_id, "pause")
        assert refused.value.code == "run_not_running"
    finally:
        await manager.close()
        await platform.stop()


def test_close_all_to_another_currency_sells_to_it_and_spends_the_quote_on_it() -> None:
    """`currency = "ETH"` on a run of BTC/USDT and ETH/USDT: no BTC/ETH market (unsold, failed), the USDT left buys ETH."""
    to_eth = {"name": "to eth", "scope": "run", "rules": [{"kind": "portfolio_stop", "value": "1000000"}],
              "actions": [{"kind": "close_all", "currency": "ETH", "pause": False}]}
    outcome, _ = backtest([to_eth], end=START + 5 * 3600)
    (firing,) = outcome.report["rule_firings"]
    (action,) = firing["actions"]
    assert firing["time"] == START + 3600  # the first close: the run holds only USDT
    assert action["status"] == "done" and action["detail"]["to"] == "ETH"
    (order,) = action["detail"]["orders"]
    assert order["symbol"] == "ETH/USDT" and order["side"] == "buy" and Decimal(order["funds"]) == 10000
    first = outcome.report["trades"][0]
    assert first["symbol"] == "ETH/USDT" and first["side"] == "buy" and first["time"] == START + 3600


def hand_position_firing(arm: Decimal, trail: Decimal) -> tuple[int, Decimal, Decimal, Decimal]:
    """(close instant s, reference, peak, price) where a trailing stop on BTC/USDT's price must fire, from the raw
    BTC candles alone: the reference is the first close sampled (bar 0's), then peak, arming and trigger per close."""
    rows = json.loads((shared_data("binance-spot-1h") / "BTC_USDT-1h.json").read_text())
    closes = [Decimal(repr(float(r[4]))) for r in rows[:600]]
    reference = peak = closes[0]
    armed = False
    for i, price in enumerate(closes):
        peak = max(peak, price)
        armed = armed or peak >= reference * (100 + arm) / 100
        if armed and price <= peak * (100 - trail) / 100:
            return rows[i][0] // 1000 + 3600, reference, peak, price
    raise AssertionError("the reference computation never fires")


@pytest.mark.parametrize("exchange", [None, "binance"])
def test_a_position_trailing_stop_fires_at_the_bar_a_hand_computation_from_the_candles_finds(exchange: str | None) -> None:
    """BTC/USDT's own price, not the portfolio's value: the firing bar and its values (reference, peak, price: BTC
    closes) follow from the BTC candles alone; its close_all then sells both coins at the next bar's open."""
    rule: dict[str, Any] = {"kind": "position_trailing_stop", "symbol": "BTC/USDT", "arm_pct": "10", "trail_pct": "5"}
    if exchange is not None:
        rule["exchange"] = exchange
    stop = {"name": "btc stop", "scope": "run", "rules": [rule], "actions": [{"kind": "close_all"}]}
    outcome, rt = backtest([stop])
    assert outcome.status == "finished"
    (firing,) = outcome.report["rule_firings"]
    when, reference, peak, price = hand_position_firing(Decimal(10), Decimal(5))
    assert firing["time"] == when and firing["rule_set"] == "btc stop"
    values = firing["values"]
    assert values["symbol"] == ("BTC/USDT" if exchange is None else "binance:BTC/USDT")
    assert Decimal(values["reference"]) == reference and Decimal(values["peak"]) == peak
    assert Decimal(values["price"]) == price <= Decimal(values["trigger"]) == peak * Decimal("0.95")
    assert Decimal(values["arm_level"]) == reference * Decimal("1.1") <= peak
    (action,) = firing["actions"]
    assert action["kind"] == "close_all" and action["status"] == "done"
    sells = [t for t in outcome.report["trades"] if t["side"] == "sell"]
    assert {t["symbol"] for t in sells} == {"BTC/USDT", "ETH/USDT"} and {t["time"] for t in sells} == {when}
    assert rt.totals().get("BTC", 0) == rt.totals().get("ETH", 0) == 0

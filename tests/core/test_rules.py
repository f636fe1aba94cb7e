"""core.rules: the rule set model (the issue's TOML example, refusals with codes and paths, round trip), each rule kind evaluated."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coinwire.core.errors import InvalidInput
from coinwire.core.rules import (
    CloseAll,
    Firing,
    IndicatorRule,
    Notify,
    PortfolioTrailingStop,
    PositionTrailingStop,
    RuleSet,
    RuleSetState,
    Sample,
    ScaleOrders,
    TimeWindow,
    Webhook,
    evaluate,
    indicator_key,
    new_state,
    parse_rule_set,
    parse_rule_sets,
    price_key,
    rule_set_dict,
    status,
)
from tests.rules_example import ISSUE_EXAMPLE

SECOND = 1_000_000_000
HOUR = 3600 * SECOND
RSI_SERIES = "market:binance:BTC/USDT:1h"


def one(rules: list[dict[str, Any]], actions: Sequence[dict[str, Any]] = ({"kind": "close_all"},), **fields: Any) -> dict[str, Any]:
    return {"name": "t", "scope": "run", **fields, "rules": rules, "actions": list(actions)}


def run(rs: RuleSet, values: Sequence[object], *, step: int = SECOND, start: int = 0, **sample: Any) -> list[Firing | None]:
    """Feed `values` one sample each `step` apart from a fresh state; the evaluation's answer per sample."""
    state = new_state(rs)
    return [evaluate(rs, state, Sample(start + i * step, Decimal(str(v)), **sample)) for i, v in enumerate(values)]


def fired_at(results: Sequence[Firing | None]) -> list[int]:
    return [i for i, f in enumerate(results) if f is not None]


def refusal(obj: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_rule_set(obj)
    return caught.value


# --- model ------------------------------------------------------------------------------------------
def test_the_issue_toml_example_parses_and_round_trips() -> None:
    [rs] = parse_rule_sets(tomllib.loads(ISSUE_EXAMPLE))
    assert rs == RuleSet(name="portfolio stop", scope="run", mode="live", after="once",
                         rules=[PortfolioTrailingStop(arm_pct=Decimal(10), trail_pct=Decimal(5))], actions=[CloseAll()])
    as_json = msgspec.json.decode(msgspec.json.encode(rule_set_dict(rs)))
    assert as_json["rules"] == [{"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}]
    assert parse_rule_set(as_json) == rs


def test_the_documented_example_is_the_issue_example() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "RULES.md").read_text(encoding="utf-8")
    block = guide.split("```toml", 1)[1].split("```", 1)[0]
    assert parse_rule_sets(tomllib.loads(block)) == parse_rule_sets(tomllib.loads(ISSUE_EXAMPLE))


def test_every_kind_round_trips_through_its_json_form() -> None:
    obj = one(
        [{"kind": "portfolio_trailing_stop", "arm_pct": "0", "trail_pct": "2.5"},
         {"kind": "portfolio_stop", "value": 900},
         {"kind": "portfolio_take_profit", "pct": 50},
         {"kind": "max_drawdown", "pct": 20, "window": "7d"},
         {"kind": "indicator", "series": RSI_SERIES, "indicator": "rsi", "params": [14], "op": "above", "threshold": 80},
         {"kind": "indicator", "series": "portfolio", "indicator": "sma", "params": [20], "op": "cross_below",
          "other": "portfolio:sma(50)"},
         {"kind": "time_window", "start": "22:00", "end": "06:00", "days": ["mon", "fri"], "tz": "Europe/London"},
         {"kind": "position_trailing_stop", "symbol": "BTC/USDT", "exchange": "binance", "arm_pct": 5, "trail_pct": 3}],
        [{"kind": "close_all", "currency": "USDT", "pause": False}, {"kind": "cancel_orders"}, {"kind": "stop_run"},
         {"kind": "pause_entries"}, {"kind": "scale_orders", "factor": "0.5"}, {"kind": "notify", "message": "sold"},
         {"kind": "webhook", "url": "https://example.test/hook", "secret": "s3"}],
        after="rearm", cooldown="1h", mode="dry_run", scope_id="7",
    )
    rs = parse_rule_set(obj)
    assert isinstance(rs.actions[4], ScaleOrders) and rs.actions[4].factor == Decimal("0.5")
    assert isinstance(rs.actions[5], Notify) and isinstance(rs.actions[6], Webhook)
    assert parse_rule_set(msgspec.json.decode(msgspec.json.encode(rule_set_dict(rs)))) == rs


def test_time_window_defaults_to_every_day_all_day() -> None:
    rs = parse_rule_set(one([{"kind": "time_window"}]))
    assert rs.rules == [TimeWindow(start="00:00", end="24:00", days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])]


@pytest.mark.parametrize(("obj", "code", "path"), [
    (one([{"kind": "portfolio_trailing_stopp", "arm_pct": 1, "trail_pct": 1}]), "unknown_rule_kind", "rules[0].kind"),
    (one([{"kind": "close_all"}]), "unknown_rule_kind", "rules[0].kind"),
    (one([{"kind": "portfolio_stop", "pct": 5}], [{"kind": "notify"}, {"kind": "sell_all"}]), "unknown_action_kind",
     "actions[1].kind"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1, "trail_pct": 5, "trail": 1}]), "invalid_rule_set", "rules[0]"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1}]), "invalid_rule_set", "rules[0]"),
    (one([{"arm_pct": 1, "trail_pct": 5}]), "invalid_rule_set", "rules[0]"),
    ({**one([{"kind": "portfolio_stop", "pct": 5}]), "colour": "red"}, "invalid_rule_set", ""),
    (one([{"kind": "portfolio_stop", "pct": 5}], scope="planet"), "invalid_rule_set", "scope"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1, "trail_pct": "1_0"}]), "invalid_rule_set", "rules[0].trail_pct"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1, "trail_pct": "NaN"}]), "invalid_rule_set", "rules[0].trail_pct"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1, "trail_pct": True}]), "invalid_rule_set", "rules[0].trail_pct"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1, "trail_pct": 0}]), "out_of_range", "rules[0].trail_pct"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": 1, "trail_pct": 100}]), "out_of_range", "rules[0].trail_pct"),
    (one([{"kind": "portfolio_trailing_stop", "arm_pct": -1, "trail_pct": 5}]), "out_of_range", "rules[0].arm_pct"),
    (one([{"kind": "position_trailing_stop", "symbol": "BTC/USDT", "arm_pct": 0, "trail_pct": -2}]), "out_of_range",
     "rules[0].trail_pct"),
    (one([{"kind": "position_trailing_stop", "symbol": " ", "arm_pct": 0, "trail_pct": 2}]), "out_of_range",
     "rules[0].symbol"),
    (one([{"kind": "position_trailing_stop", "symbol": "BTC-USDT", "arm_pct": 0, "trail_pct": 2}]), "invalid_symbol",
     "rules[0].symbol"),
    (one([{"kind": "portfolio_stop"}]), "invalid_rule_set", "rules[0]"),
    (one([{"kind": "portfolio_stop", "value": 10, "pct": 5}]), "invalid_rule_set", "rules[0]"),
    (one([{"kind": "portfolio_stop", "value": 0}]), "out_of_range", "rules[0].value"),
    (one([{"kind": "portfolio_stop", "pct": 100}]), "out_of_range", "rules[0].pct"),
    (one([{"kind": "portfolio_take_profit", "pct": 0}]), "out_of_range", "rules[0].pct"),
    (one([{"kind": "max_drawdown", "pct": 0}]), "out_of_range", "rules[0].pct"),
    (one([{"kind": "max_drawdown", "pct": 10, "window": "1M"}]), "invalid_rule_set", "rules[0].window"),
    (one([{"kind": "max_drawdown", "pct": 10, "window": "a week"}]), "invalid_rule_set", "rules[0].window"),
    (one([{"kind": "indicator", "series": RSI_SERIES, "indicator": "rsx", "op": "above", "threshold": 80}]),
     "unknown_indicator", "rules[0].indicator"),
    (one([{"kind": "indicator", "series": RSI_SERIES, "indicator": "rsi", "params": [0], "op": "above", "threshold": 80}]),
     "invalid_parameter", "rules[0].indicator"),
    (one([{"kind": "indicator", "series": RSI_SERIES, "indicator": "rsi", "params": [14, 2], "op": "above", "threshold": 8}]),
     "invalid_parameter", "rules[0].indicator"),
    (one([{"kind": "indicator", "series": RSI_SERIES, "indicator": "macd.upper", "op": "above", "threshold": 8}]),
     "unknown_indicator", "rules[0].indicator"),
    (one([{"kind": "indicator", "series": "", "indicator": "rsi", "op": "above", "threshold": 80}]), "unknown_series",
     "rules[0].series"),
    (one([{"kind": "indicator", "series": "candles:binance:BTC/USDT:1h", "indicator": "rsi", "op": "above",
           "threshold": 80}]), "unknown_series", "rules[0].series"),
    (one([{"kind": "indicator", "series": "portfolio:7m", "indicator": "sma", "op": "above", "threshold": 1}]),
     "unknown_series", "rules[0].series"),
    (one([{"kind": "indicator", "series": RSI_SERIES, "indicator": "rsi", "op": "above"}]), "invalid_rule_set", "rules[0]"),
    (one([{"kind": "indicator", "series": RSI_SERIES, "indicator": "rsi", "op": "over", "threshold": 1}]),
     "invalid_rule_set", "rules[0].op"),
    (one([{"kind": "time_window", "start": "9:00"}]), "invalid_rule_set", "rules[0].start"),
    (one([{"kind": "time_window", "start": "24:00"}]), "out_of_range", "rules[0].start"),
    (one([{"kind": "time_window", "end": "12:60"}]), "out_of_range", "rules[0].end"),
    (one([{"kind": "time_window", "start": "10:00", "end": "10:00"}]), "out_of_range", "rules[0]"),
    (one([{"kind": "time_window", "days": ["monday"]}]), "invalid_rule_set", "rules[0].days"),
    (one([{"kind": "time_window", "days": []}]), "invalid_rule_set", "rules[0].days"),
    (one([{"kind": "time_window", "tz": "Mars/Olympus"}]), "invalid_rule_set", "rules[0].tz"),
    (one([{"kind": "portfolio_stop", "pct": 5}], [{"kind": "scale_orders", "factor": 0}]), "out_of_range",
     "actions[0].factor"),
    (one([{"kind": "portfolio_stop", "pct": 5}], [{"kind": "scale_orders", "factor": "10.01"}]), "out_of_range",
     "actions[0].factor"),
    (one([{"kind": "portfolio_stop", "pct": 5}], [{"kind": "webhook", "url": "ftp://x.test/"}]), "invalid_rule_set",
     "actions[0].url"),
    (one([{"kind": "portfolio_stop", "pct": 5}], [{"kind": "webhook", "url": "https://"}]), "invalid_rule_set",
     "actions[0].url"),
    (one([{"kind": "portfolio_stop", "pct": 5}], after="rearm"), "invalid_rule_set", "cooldown"),
    (one([{"kind": "portfolio_stop", "pct": 5}], after="rearm", cooldown="soon"), "invalid_rule_set", "cooldown"),
    (one([{"kind": "portfolio_stop", "pct": 5}], cooldown="1h"), "invalid_rule_set", "cooldown"),
    (one([{"kind": "portfolio_stop", "pct": 5}], name=""), "out_of_range", "name"),
    (one([{"kind": "portfolio_stop", "pct": 5}], name="x" * 101), "out_of_range", "name"),
    (one([]), "out_of_range", "rules"),
    (one([{"kind": "portfolio_stop", "pct": 5}], []), "out_of_range", "actions"),
    (one([{"kind": "portfolio_stop", "pct": 5}] * 21), "out_of_range", "rules"),
    (one([{"kind": "portfolio_stop", "pct": 5}], [{"kind": "notify"}] * 21), "out_of_range", "actions"),
])
def test_refusals_name_their_code_and_path(obj: dict[str, Any], code: str, path: str) -> None:
    exc = refusal(obj)
    assert (exc.code, exc.data["field"]) == (code, path)
    assert exc.message.startswith(f"{path}: ") if path else exc.message


def test_a_document_names_the_rule_set_in_the_path() -> None:
    good = one([{"kind": "portfolio_stop", "pct": 5}])
    bad = one([{"kind": "portfolio_stop", "pct": 5}, {"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 0}])
    with pytest.raises(InvalidInput) as caught:
        parse_rule_sets({"rule_sets": [good, bad]})
    assert caught.value.code == "out_of_range"
    assert caught.value.data["field"] == "rule_sets[1].rules[1].trail_pct"
    assert caught.value.message.startswith("rule_sets[1].rules[1].trail_pct: must be in (0, 100)")


@pytest.mark.parametrize("doc", [{}, {"rule_sets": []}, {"rule_sets": {"name": "x"}}, {"rule_sets": ["x"]},
                                 {"rule_sets": [one([{"kind": "portfolio_stop", "pct": 5}])], "extra": 1}])
def test_a_document_of_other_shapes_is_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule_sets(doc)
    assert caught.value.code == "invalid_rule_set"


def test_a_toml_float_reads_as_its_decimal_text() -> None:
    [rs] = parse_rule_sets(tomllib.loads(ISSUE_EXAMPLE.replace("trail_pct = 5", "trail_pct = 0.1")))
    assert rs.rules == [PortfolioTrailingStop(arm_pct=Decimal(10), trail_pct=Decimal("0.1"))]


# --- trailing stop ------------------------------------------------------------------------------------
def trailing(arm: object = 10, trail: object = 5, **fields: Any) -> RuleSet:
    return parse_rule_set(one([{"kind": "portfolio_trailing_stop", "arm_pct": arm, "trail_pct": trail}], **fields))


def test_trailing_stop_arms_then_fires_at_the_trigger_with_its_values() -> None:
    results = run(trailing(), [100, 105, 109.99, 110, 111, 105.46, 105.45, 100])
    assert fired_at(results) == [6]  # armed at 110; trigger 111 * 0.95 = 105.45: 105.46 holds nothing
    assert results[6] == Firing(6 * SECOND, {"value": "105.45", "reference": "100", "peak": "111", "trigger": "105.45",
                                             "arm_level": "110"})


def test_trailing_stop_never_fires_unarmed_however_far_it_falls() -> None:
    assert fired_at(run(trailing(), [100, 109, 50, 1, 0.5])) == []


def test_trailing_stop_reference_is_the_first_positive_value() -> None:
    rs = trailing(arm=10, trail=5)
    state = new_state(rs)
    for i, v in enumerate(["0", "0", "200", "220", "208"]):
        firing = evaluate(rs, state, Sample(i * SECOND, Decimal(v)))
    assert firing is not None and firing.values["reference"] == "200" and firing.values["trigger"] == "209"


def test_trailing_stop_with_zero_arm_is_armed_at_once() -> None:
    rs = trailing(arm=0, trail="0.5")
    state = new_state(rs)
    assert evaluate(rs, state, Sample(0, Decimal(1000))) is None
    assert status(rs, state)["rules"][0]["armed"] is True
    assert fired_at(run(rs, [1000, "995.01", "995"])) == [2]


def test_once_fires_once_and_rearm_waits_the_cooldown_then_takes_a_new_reference() -> None:
    values = [100, 110, 104, 90, 80, 88, 80, 80, 88, 83]
    assert fired_at(run(trailing(), values)) == [2]
    rearmed = trailing(after="rearm", cooldown="3s")
    results = run(rearmed, values)
    # fired at 2 (t=2s): cooldown until t=5s; sample 5 (88) is the new reference; arms at 96.8, never reached
    assert fired_at(results) == [2]
    results = run(rearmed, [100, 110, 104, 90, 80, 50, 55, 52])  # new reference 50 at t=5s, arms at 55, trigger 52.25
    assert fired_at(results) == [2, 7]
    assert results[7] is not None and results[7].values["reference"] == "50"


def test_a_disabled_rule_set_never_fires() -> None:
    assert fired_at(run(trailing(enabled=False), [100, 120, 50])) == []


def test_state_round_trips_through_json_mid_run() -> None:
    rs = parse_rule_set(one([{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 5},
                             {"kind": "max_drawdown", "pct": 3, "window": "3s"}], after="rearm", cooldown="1s"))
    values = [100, 112, 111, 110, 105, 100, 90, 100, 120, 114]
    straight, resumed = new_state(rs), new_state(rs)
    for i, v in enumerate(values):
        sample = Sample(i * SECOND, Decimal(v))
        resumed = RuleSetState.from_dict(msgspec.json.decode(msgspec.json.encode(resumed.to_dict())))
        assert evaluate(rs, resumed, sample) == evaluate(rs, straight, sample)
        assert resumed == straight


def test_a_state_of_another_rule_count_is_refused() -> None:
    with pytest.raises(ValueError, match="new_state"):
        evaluate(trailing(), RuleSetState(rules=[]), Sample(0, Decimal(1)))


# --- other rules -----------------------------------------------------------------------------------------
def test_portfolio_stop_by_value_and_by_percent() -> None:
    by_value = parse_rule_set(one([{"kind": "portfolio_stop", "value": "950.5"}]))
    assert fired_at(run(by_value, [1000, 951, "950.5"])) == [2]
    by_pct = parse_rule_set(one([{"kind": "portfolio_stop", "pct": 10}]))
    results = run(by_pct, [1000, 1500, "900.01", 900])
    assert fired_at(results) == [3]
    assert results[3] is not None and results[3].values == {"value": "900", "level": "900", "reference": "1000"}


def test_take_profit_by_value_and_by_percent() -> None:
    assert fired_at(run(parse_rule_set(one([{"kind": "portfolio_take_profit", "value": 1200}])), [1000, 1199, 1200])) == [2]
    assert fired_at(run(parse_rule_set(one([{"kind": "portfolio_take_profit", "pct": 150}])), [1000, 2499, 2500])) == [2]


def test_max_drawdown_since_the_reference() -> None:
    rs = parse_rule_set(one([{"kind": "max_drawdown", "pct": 20}]))
    results = run(rs, [100, 150, 130, "120.01", 120])
    assert fired_at(results) == [4]
    assert results[4] is not None and results[4].values == {"value": "120", "peak": "150", "drawdown_pct": "20"}


def test_max_drawdown_within_a_window_forgets_older_peaks() -> None:
    rs = parse_rule_set(one([{"kind": "max_drawdown", "pct": 20, "window": "2h"}]))
    # the 150 at t=1h is out of the window (older than 2h) at t=4h: the peak is then 125 and 100 is exactly -20%
    assert fired_at(run(rs, [100, 150, 125, 125, 100], step=HOUR)) == [4]
    assert fired_at(run(rs, [100, 150, 125, 125, 101], step=HOUR)) == []
    assert fired_at(run(rs, [100, 150, 125, 120], step=HOUR)) == [3]  # 150 at 1h is still inside [1h, 3h]


def test_indicator_threshold_and_crosses() -> None:
    rule = {"kind": "indicator", "series": RSI_SERIES, "indicator": "rsi", "params": [14], "op": "above", "threshold": 80}
    rs = parse_rule_set(one([rule]))
    key = indicator_key(IndicatorRule(series=RSI_SERIES, indicator="rsi", params=[14], op="above", threshold=Decimal(80)))
    state = new_state(rs)
    outputs = [None, 79.0, 80.0, 80.5, float("nan"), 85.0]
    results = [evaluate(rs, state, Sample(i, Decimal(1), analysis={} if v is None else {key: v}))
               for i, v in enumerate(outputs)]
    assert fired_at(results[:4]) == [3]  # `once`: done after the first
    crossing = parse_rule_set(one([{**rule, "op": "cross_above"}], after="rearm", cooldown="1s"))
    state = new_state(crossing)
    results = [evaluate(crossing, state, Sample(i * SECOND, Decimal(1), analysis={} if v is None else {key: v}))
               for i, v in enumerate([85.0, 70.0, 81.0, 82.0, 60.0, float("nan"), 90.0, 70.0, 95.0])]
    # 85 first: no previous value, no cross; a NaN is a gap, so 90 after it is no cross either
    assert fired_at(results) == [2, 8]
    slow = "market.binance.BTC-USDT.1h:rsi(28)"
    below = parse_rule_set(one([{**rule, "op": "cross_below", "threshold": None, "other": slow}], after="rearm",
                               cooldown="1s"))
    state = new_state(below)
    pairs = [(5.0, 4.0), (4.0, 4.0), (3.0, 4.0), (3.0, 2.0), (1.0, 2.0)]
    results = [evaluate(below, state, Sample(i * SECOND, Decimal(1), analysis={key: a, slow: b}))
               for i, (a, b) in enumerate(pairs)]
    assert fired_at(results) == [2, 4]  # 4 -> 4 touches, 4 -> 3 crosses (prev 0, now below)


def test_an_indicator_on_the_own_portfolio_reads_its_scopes_key() -> None:
    rule = {"kind": "indicator", "series": "portfolio", "indicator": "sma", "params": [20], "op": "cross_below",
            "other": "portfolio:sma(50)"}
    live = parse_rule_set(one([rule], scope="account", scope_id="7", after="rearm", cooldown="1s"))
    backtest = parse_rule_set(one([rule]))  # a backtest's own run: no id, the keys stay the own portfolio's
    assert isinstance(live.rules[0], IndicatorRule) and isinstance(backtest.rules[0], IndicatorRule)
    assert indicator_key(live.rules[0], "account", "7") == "portfolio.account.7.15m:sma(20)"
    assert indicator_key(backtest.rules[0]) == "portfolio:sma(20)"
    fast, slow = "portfolio.account.7.15m:sma(20)", "portfolio.account.7.15m:sma(50)"
    state = new_state(live)
    results = [evaluate(live, state, Sample(i * SECOND, Decimal(1), analysis={fast: a, slow: 10.0, "portfolio:sma(20)": 0.0,
                                                                              "portfolio:sma(50)": 99.0}))
               for i, a in enumerate([11.0, 10.5, 9.5])]
    assert fired_at(results) == [2]
    assert results[2] is not None and results[2].values["indicator"] == fast and results[2].values["compared_to"] == slow


def test_time_window_in_the_owners_zone_and_its_own() -> None:
    rs = parse_rule_set(one([{"kind": "time_window", "start": "22:00", "end": "06:00", "days": ["sat"]}], after="rearm",
                            cooldown="1s"))

    def at(text: str, tz: str = "UTC") -> bool:
        t = int(datetime.fromisoformat(text).timestamp()) * SECOND
        return evaluate(rs, new_state(rs), Sample(t, Decimal(1)), tz) is not None

    assert at("2026-12-05T23:30:00+00:00")  # Saturday 23:30
    assert at("2026-12-05T05:59:00+00:00")  # Saturday 05:59 (the day is the sample's own)
    assert not at("2026-12-05T06:00:00+00:00")
    assert not at("2026-12-06T01:00:00+00:00")  # Sunday
    assert at("2026-12-05T21:30:00+00:00", "Europe/Paris")  # 22:30 in Paris
    own = parse_rule_set(one([{"kind": "time_window", "start": "09:00", "end": "17:00", "tz": "America/New_York"}]))
    t = int(datetime(2026, 12, 7, 14, 0, tzinfo=UTC).timestamp()) * SECOND  # 09:00 in New York
    assert evaluate(own, new_state(own), Sample(t, Decimal(1)), "Asia/Tokyo") is not None


def test_position_trailing_stop_reads_its_market_and_ignores_missing_prices() -> None:
    rs = parse_rule_set(one([{"kind": "position_trailing_stop", "symbol": "btc_usdt", "exchange": "Binance",
                              "arm_pct": 5, "trail_pct": 2}]))
    assert rs.rules == [PositionTrailingStop(symbol="BTC/USDT", exchange="binance", arm_pct=Decimal(5), trail_pct=Decimal(2))]
    key = price_key("BTC/USDT", "binance")
    state = new_state(rs)
    prices: list[dict[str, Decimal]] = [{}, {key: Decimal(100)}, {"BTC/USDT": Decimal(50)}, {key: Decimal(110)}, {},
                                        {key: Decimal("107.81")}, {key: Decimal("107.8")}]
    results = [evaluate(rs, state, Sample(i, Decimal(1000), prices=p)) for i, p in enumerate(prices)]
    assert fired_at(results) == [6]
    assert results[6] is not None and results[6].values["trigger"] == "107.8"
    assert results[6].values["symbol"] == "binance:BTC/USDT" and results[6].values["price"] == "107.8"


def test_a_rule_set_fires_only_when_every_rule_holds_and_records_each() -> None:
    rs = parse_rule_set(one([{"kind": "portfolio_trailing_stop", "arm_pct": 10, "trail_pct": 5},
                             {"kind": "portfolio_stop", "value": 100}]))
    results = run(rs, [100, 120, 113, 101, 100])  # the trailing stop holds from 113 on; the stop only at 100
    assert fired_at(results) == [4]
    assert results[4] is not None and results[4].values["level"] == "100" and results[4].values["trigger"] == "114"


def test_colliding_values_are_named_by_their_rule() -> None:
    rs = parse_rule_set(one([{"kind": "portfolio_stop", "value": 100}, {"kind": "portfolio_stop", "pct": 10}]))
    results = run(rs, [110, 99])
    assert results[1] is not None and results[1].values == {"value": "99", "level": "100", "rules[1].level": "99",
                                                            "reference": "110"}


def test_status_shows_armed_peak_trigger_and_distance() -> None:
    rs = trailing(arm=10, trail=5)
    state = new_state(rs)
    for i, v in enumerate([100, 120, 119]):
        evaluate(rs, state, Sample(i, Decimal(v)))
    rule = status(rs, state)["rules"][0]
    assert rule["kind"] == "portfolio_trailing_stop" and rule["armed"] is True and rule["holds"] is False
    assert (rule["peak"], rule["trigger"], rule["value"]) == ("120", "114", "119")
    assert Decimal(rule["distance_pct"]) == Decimal(5) * 100 / 119
    assert msgspec.json.decode(msgspec.json.encode(status(rs, state))) == status(rs, state)


def test_status_of_a_fresh_state_and_of_a_rearm_cooldown() -> None:
    rs = trailing(after="rearm", cooldown="1m")
    state = new_state(rs)
    fresh = status(rs, state)
    assert fresh["rules"] == [{"kind": "portfolio_trailing_stop", "holds": False, "value": None, "armed": False}]
    for i, v in enumerate([100, 110, 104]):
        evaluate(rs, state, Sample(i * SECOND, Decimal(v)))
    assert status(rs, state)["cooldown_until_ns"] == 2 * SECOND + 60 * SECOND

"""core.rules properties: the trailing stop against a model in fractions, arming, its trigger, all rules hold, once, rearm."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.rules import RuleSet, RuleState, Sample, evaluate, new_state, parse_rule_set, rule_holds, status

SECOND = 1_000_000_000

# values with two decimals, sometimes zero (an empty portfolio), in walks that rise and fall
values = st.lists(st.integers(min_value=0, max_value=200_000).map(lambda c: Decimal(c) / 100), min_size=1, max_size=60)
arm_pcts = st.integers(min_value=0, max_value=3000).map(lambda c: Decimal(c) / 100)
trail_pcts = st.integers(min_value=1, max_value=9999).map(lambda c: Decimal(c) / 100)
gaps = st.lists(st.integers(min_value=1, max_value=120), min_size=60, max_size=60)  # seconds between samples


def trailing(arm: Decimal, trail: Decimal, **fields: Any) -> RuleSet:
    return parse_rule_set({"name": "p", "scope": "run", **fields, "actions": [{"kind": "close_all"}],
                           "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": str(arm), "trail_pct": str(trail)}]})


def model_first_firing(vals: list[Decimal], arm: Decimal, trail: Decimal) -> int | None:
    """The trailing stop as the guide states it, in exact fractions: the index of the first firing."""
    reference = peak = None
    armed = False
    for i, d in enumerate(vals):
        v = Fraction(d)
        if reference is None:
            if v <= 0:
                continue
            reference = peak = v
        assert peak is not None
        peak = max(peak, v)
        armed = armed or peak >= reference * (1 + Fraction(arm) / 100)
        if armed and v <= peak * (1 - Fraction(trail) / 100):
            return i
    return None


@settings(max_examples=300, deadline=None)
@given(vals=values, arm=arm_pcts, trail=trail_pcts)
def test_once_trailing_stop_fires_where_the_model_says_and_only_there(vals: list[Decimal], arm: Decimal,
                                                                    trail: Decimal) -> None:
    rs = trailing(arm, trail)
    state = new_state(rs)
    fired = [i for i, v in enumerate(vals) if evaluate(rs, state, Sample(i * SECOND, v)) is not None]
    expected = model_first_firing(vals, arm, trail)
    assert fired == ([] if expected is None else [expected])


@settings(max_examples=300, deadline=None)
@given(vals=values, arm=arm_pcts, trail=trail_pcts, gap=gaps, cooldown=st.sampled_from(["1s", "30s", "2m", "10m"]))
def test_trailing_stop_fires_armed_once_per_arming_and_its_trigger_never_falls(
        vals: list[Decimal], arm: Decimal, trail: Decimal, gap: list[int], cooldown: str) -> None:
    rs = trailing(arm, trail, after="rearm", cooldown=cooldown)
    state = new_state(rs)
    t = 0
    current: RuleState | None = None
    was_armed, trigger, firings_this_arming = False, None, 0
    for i, v in enumerate(vals):
        t += gap[i] * SECOND
        firing = evaluate(rs, state, Sample(t, v))
        if state.rules[0] is not current:  # a new arming period (the start, or a re-arm after the cooldown)
            current, was_armed, trigger, firings_this_arming = state.rules[0], False, None, 0
        shown = status(rs, state)["rules"][0]
        assert not (was_armed and not shown["armed"]), "an armed stop never disarms"
        if firing is not None:
            assert shown["armed"], "a trailing stop never fires before it is armed"
            assert Decimal(firing.values["value"]) <= Decimal(firing.values["trigger"])
            assert Decimal(firing.values["peak"]) >= Decimal(firing.values["arm_level"])
            firings_this_arming += 1
            assert firings_this_arming == 1, "a trailing stop fires at most once per arming"
        if "trigger" in shown:
            assert trigger is None or Decimal(shown["trigger"]) >= trigger, "the trigger never decreases"
            trigger = Decimal(shown["trigger"])
        was_armed = shown["armed"]


rule_specs = st.one_of(
    st.builds(lambda a, b: {"kind": "portfolio_trailing_stop", "arm_pct": str(a), "trail_pct": str(b)}, arm_pcts, trail_pcts),
    st.builds(lambda p: {"kind": "portfolio_stop", "pct": str(p)}, st.integers(1, 99)),
    st.builds(lambda v: {"kind": "portfolio_stop", "value": str(v)}, st.integers(1, 2000)),
    st.builds(lambda p: {"kind": "portfolio_take_profit", "pct": str(p)}, st.integers(1, 300)),
    st.builds(lambda v: {"kind": "portfolio_take_profit", "value": str(v)}, st.integers(1, 2000)),
    st.builds(lambda p, w: {"kind": "max_drawdown", "pct": str(p), **({} if w is None else {"window": w})},
              st.integers(1, 99), st.sampled_from([None, "1m", "5m", "1h"])),
    st.builds(lambda s, e: {"kind": "time_window", "start": f"{s:02d}:00", "end": f"{e:02d}:00"},
              st.integers(0, 23), st.integers(1, 24)).filter(lambda r: r["start"][:2] != r["end"][:2]),
)


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(rule_specs, min_size=1, max_size=4), vals=values, gap=gaps)
def test_a_rule_set_fires_exactly_when_all_its_rules_hold(rules: list[dict[str, Any]], vals: list[Decimal],
                                                          gap: list[int]) -> None:
    rs = parse_rule_set({"name": "all", "scope": "user", "rules": rules, "actions": [{"kind": "notify"}]})
    state = new_state(rs)
    alone = [RuleState() for _ in rs.rules]  # each rule evaluated on its own state
    t = 0
    fired = 0
    for i, v in enumerate(vals):
        t += gap[i] * 600 * SECOND  # up to 20 hours apart: time windows open and close
        sample = Sample(t, v)
        each = [rule_holds(rule, own, sample) for rule, own in zip(rs.rules, alone, strict=True)]
        firing = evaluate(rs, state, sample)
        if fired:
            assert firing is None, "`once` fires at most once"
            continue
        assert (firing is not None) == all(each)
        fired += firing is not None


@settings(max_examples=200, deadline=None)
@given(vals=values, gap=gaps, cooldown=st.sampled_from(["1s", "45s", "5m", "1h"]), pct=st.integers(1, 60))
def test_rearm_never_fires_inside_the_cooldown(vals: list[Decimal], gap: list[int], cooldown: str, pct: int) -> None:
    rs = parse_rule_set({"name": "dd", "scope": "user", "after": "rearm", "cooldown": cooldown,
                         "rules": [{"kind": "max_drawdown", "pct": pct, "window": "10m"}], "actions": [{"kind": "notify"}]})
    cooldown_ns = {"1s": 1, "45s": 45, "5m": 300, "1h": 3600}[cooldown] * SECOND
    state = new_state(rs)
    t, last = 0, None
    for i, v in enumerate(vals):
        t += gap[i] * SECOND
        if evaluate(rs, state, Sample(t, v)) is not None:
            assert last is None or t - last >= cooldown_ns
            last = t


@settings(max_examples=200, deadline=None)
@given(vals=values, gap=gaps, pct=st.integers(1, 60), window=st.sampled_from([("1m", 60), ("5m", 300), ("1h", 3600)]))
def test_windowed_drawdown_matches_the_peak_of_every_sample_in_the_window(
        vals: list[Decimal], gap: list[int], pct: int, window: tuple[str, int]) -> None:
    rs = parse_rule_set({"name": "dd", "scope": "user", "rules": [{"kind": "max_drawdown", "pct": pct, "window": window[0]}],
                         "actions": [{"kind": "notify"}]})
    own = RuleState()
    seen: list[tuple[int, Fraction]] = []
    t = 0
    for i, v in enumerate(vals):
        t += gap[i] * SECOND
        seen.append((t, Fraction(v)))
        peak = max(x for when, x in seen if when >= t - window[1] * SECOND)
        expected = peak > 0 and (peak - Fraction(v)) * 100 >= pct * peak
        assert rule_holds(rs.rules[0], own, Sample(t, v)) == expected

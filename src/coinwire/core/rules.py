"""Rule sets that protect a portfolio: the pure evaluation of samples, the state it keeps, firings and live status.

Why pure and here: the same rule set runs in a backtest (at every bar close), in a paper run and
live (at every tracker sample). One `evaluate(rule_set, state, sample)` decides for all of them,
so a trader sees in a backtest exactly what the rule would have done. No clock is read: a sample
carries its own time; the state is a plain object the caller persists (`to_dict` / `from_dict`).

The model and its checks are in core/rule_model.py (re-exported here, so callers import one
module). A rule set fires when ALL its rules hold at one sample; its actions then run in order
(the caller executes them). Values are Decimals and percent levels are exact:
`reference * (100 + arm_pct) / 100`, never a float.

Semantics (docs/RULES.md states them for users):
- the reference is the value at the first sample after enabling (or re-arming) whose value is
  positive (a percentage of nothing means nothing);
- trailing stop: peak = max value since the reference; armed once peak >= reference*(100+arm_pct)/100;
  trigger = peak*(100-trail_pct)/100 (never decreases); holds when armed and value <= trigger;
  a sample updates the peak, then arms, then checks;
- `once`: after a firing the state is done; `rearm`: once `cooldown` has passed since the firing,
  every rule's state resets and the next sample is the new reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal
from typing import Any, Final, NamedTuple

from coinwire.core.rule_model import (
    DAYS,
    MAX_ACTIONS,
    MAX_PCT,
    MAX_RULES,
    Action,
    CancelOrders,
    CloseAll,
    IndicatorRule,
    MaxDrawdown,
    Notify,
    PauseEntries,
    PortfolioStop,
    PortfolioTakeProfit,
    PortfolioTrailingStop,
    PositionTrailingStop,
    Rule,
    RuleSet,
    ScaleOrders,
    StopRun,
    TimeWindow,
    Webhook,
    duration_ns,
    indicator_key,
    indicator_series,
    minutes_of_day,
    other_key,
    other_source,
    parse_rule_set,
    parse_rule_sets,
    rule_outputs,
    rule_set_dict,
)
from coinwire.core.schedules import zone

__all__ = [
    "DAYS", "MAX_ACTIONS", "MAX_PCT", "MAX_RULES", "Action", "CancelOrders", "CloseAll", "Firing", "IndicatorRule",
    "MaxDrawdown", "Notify", "PauseEntries", "PortfolioStop", "PortfolioTakeProfit", "PortfolioTrailingStop",
    "PositionTrailingStop", "Rule", "RuleSet", "RuleSetState", "RuleState", "Sample", "ScaleOrders", "StopRun",
    "TimeWindow", "Webhook", "evaluate", "indicator_key", "indicator_series", "needs_confirmation", "new_state",
    "other_key", "other_source", "parse_rule_set", "parse_rule_sets", "price_key", "rule_holds", "rule_outputs", "rule_set_dict", "status",
]

_HUNDRED: Final = Decimal(100)
_CTX: Final = Context(prec=120)  # products of two <=60-digit values and /100 stay exact
_SHOW: Final = Context(prec=28)  # percentages shown (distance, drawdown): 28 significant digits


# --- samples and state -------------------------------------------------------------------------
class Sample(NamedTuple):
    """One observation of the scope: its value, market prices (`price_key`) and analyser outputs (`indicator_key`)."""

    time_ns: int
    value: Decimal
    prices: Mapping[str, Decimal] = {}
    analysis: Mapping[str, float] = {}


class Firing(NamedTuple):
    """A rule set fired at `time_ns`; `values` are the rule values that made it fire (decimal strings)."""

    time_ns: int
    values: dict[str, str]


@dataclass
class RuleState:
    """What one rule remembers between samples; fields a kind does not use stay at their defaults."""

    reference: Decimal | None = None  # first positive value (price for a position stop) since enabling or re-arming
    peak: Decimal | None = None  # highest value since the reference (trailing stops, drawdown since reference)
    armed: bool = False
    last: Decimal | None = None  # last value the rule read (the value, a price or an indicator output)
    held: bool = False  # whether the rule held at the last sample
    window: list[tuple[int, Decimal]] = field(default_factory=list)  # max_drawdown: decreasing (time_ns, value) deque
    prev: float | None = None  # indicator crosses: last (output - threshold or other)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (decimals as strings)."""
        return {"reference": _s(self.reference), "peak": _s(self.peak), "armed": self.armed, "last": _s(self.last),
                "held": self.held, "window": [[t, str(v)] for t, v in self.window], "prev": self.prev}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuleState:
        return cls(reference=_d(d.get("reference")), peak=_d(d.get("peak")), armed=bool(d.get("armed")),
                   last=_d(d.get("last")), held=bool(d.get("held")),
                   window=[(int(t), Decimal(v)) for t, v in d.get("window", [])],
                   prev=None if d.get("prev") is None else float(d["prev"]))


@dataclass
class RuleSetState:
    """A rule set's evaluation state: one RuleState per rule, the last firing, and whether a `once` set is done."""

    rules: list[RuleState]
    fired_at_ns: int | None = None
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for the store; `from_dict` reads it back."""
        return {"rules": [r.to_dict() for r in self.rules], "fired_at_ns": self.fired_at_ns, "done": self.done}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuleSetState:
        fired = d.get("fired_at_ns")
        return cls(rules=[RuleState.from_dict(r) for r in d.get("rules", [])],
                   fired_at_ns=None if fired is None else int(fired), done=bool(d.get("done")))


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _d(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def needs_confirmation(rs: RuleSet) -> bool:
    """Whether enabling `rs` must be confirmed: enabled, live, and it sells everything (close_all) when it fires."""
    return rs.enabled and rs.mode == "live" and any(isinstance(a, CloseAll) for a in rs.actions)


def new_state(rs: RuleSet) -> RuleSetState:
    """The state of a rule set just enabled: no reference yet (the next sample gives it)."""
    return RuleSetState(rules=[RuleState() for _ in rs.rules])


def price_key(symbol: str, exchange: str | None = None) -> str:
    """The key of a market's price in `Sample.prices`: `SYMBOL`, or `exchange:SYMBOL` when the rule names the exchange."""
    return symbol if exchange is None else f"{exchange}:{symbol}"


# --- evaluation --------------------------------------------------------------------------------
def _level(base: Decimal, pct: Decimal, sign: int) -> Decimal:
    """base * (100 + sign*pct) / 100, exactly."""
    return _CTX.divide(_CTX.multiply(base, _CTX.add(_HUNDRED, pct) if sign > 0 else _CTX.subtract(_HUNDRED, pct)), _HUNDRED)


def _trail(st: RuleState, value: Decimal, arm_pct: Decimal, trail_pct: Decimal) -> bool:
    """Peak, then arm, then check; the reference is the first positive value."""
    if st.reference is None:
        if value <= 0:
            return False
        st.reference = st.peak = value
    assert st.peak is not None
    st.peak = max(st.peak, value)
    if not st.armed and st.peak >= _level(st.reference, arm_pct, 1):
        st.armed = True
    return st.armed and value <= _level(st.peak, trail_pct, -1)


def _stop_level(rule: PortfolioStop | PortfolioTakeProfit, st: RuleState) -> Decimal | None:
    if rule.value is not None:
        return rule.value
    assert rule.pct is not None
    if st.reference is None:
        return None
    return _level(st.reference, rule.pct, -1 if isinstance(rule, PortfolioStop) else 1)


def _drawdown(rule: MaxDrawdown, st: RuleState, t: int, value: Decimal) -> bool:
    if rule.window is None:
        if st.reference is None:
            if value <= 0:
                return False
            st.reference = st.peak = value
        assert st.peak is not None
        st.peak = max(st.peak, value)
    else:
        start = t - duration_ns(rule.window, "window")
        while st.window and st.window[-1][1] <= value:  # a later value at least as high outlives it: never the max again
            st.window.pop()
        st.window.append((t, value))
        expired = next(i for i, (when, _) in enumerate(st.window) if when >= start)  # the newest (t) always stays
        del st.window[:expired]
        st.peak = st.window[0][1]
    peak = st.peak
    return peak > 0 and _CTX.multiply(_CTX.subtract(peak, value), _HUNDRED) >= _CTX.multiply(rule.pct, peak)


def _indicator(rule: IndicatorRule, st: RuleState, analysis: Mapping[str, float], scope: str | None,
               scope_id: str | None) -> bool:
    value = analysis.get(indicator_key(rule, scope, scope_id))
    ref = float(rule.threshold) if rule.threshold is not None else analysis.get(other_key(rule, scope, scope_id) or "")
    if value is None or ref is None or math.isnan(value) or math.isnan(ref):
        st.prev = None  # a gap: a cross needs two consecutive observations
        return False
    st.last = Decimal(repr(value))
    diff, prev = value - ref, st.prev
    st.prev = diff
    if rule.op == "above":
        return diff > 0
    if rule.op == "below":
        return diff < 0
    if prev is None:
        return False
    return prev <= 0 < diff if rule.op == "cross_above" else prev >= 0 > diff


def _in_window(rule: TimeWindow, t: int, tz: str) -> bool:
    local = datetime.fromtimestamp(t // 1_000_000_000, zone(rule.tz or tz))
    minute = local.hour * 60 + local.minute
    start, end = minutes_of_day(rule.start, "start", end=False), minutes_of_day(rule.end, "end", end=True)
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    return inside and DAYS[local.weekday()] in rule.days


def rule_holds(rule: Rule, st: RuleState, sample: Sample, tz: str = "UTC", *, scope: str | None = None,
               scope_id: str | None = None) -> bool:
    """Feed one sample to one rule (mutating its state) and say whether it holds now. `evaluate` calls it for every rule.

    `scope` / `scope_id` are the rule set's: an indicator on the own `portfolio` reads that scope's key.
    """
    value = sample.value
    if isinstance(rule, PortfolioTrailingStop):
        held = _trail(st, value, rule.arm_pct, rule.trail_pct)
    elif isinstance(rule, PositionTrailingStop):
        price = sample.prices.get(price_key(rule.symbol, rule.exchange))
        held = price is not None and _trail(st, price, rule.arm_pct, rule.trail_pct)
        st.last = price if price is not None else st.last
    elif isinstance(rule, PortfolioStop | PortfolioTakeProfit):
        if st.reference is None and value > 0:
            st.reference = value
        level = _stop_level(rule, st)
        held = level is not None and (value <= level if isinstance(rule, PortfolioStop) else value >= level)
    elif isinstance(rule, MaxDrawdown):
        held = _drawdown(rule, st, sample.time_ns, value)
    elif isinstance(rule, IndicatorRule):
        held = _indicator(rule, st, sample.analysis, scope, scope_id)
    else:
        held = _in_window(rule, sample.time_ns, tz)
    if not isinstance(rule, IndicatorRule | PositionTrailingStop):
        st.last = value
    st.held = held
    return held


def _percent(part: Decimal, whole: Decimal) -> str:
    """100 * part / whole as plain decimal text (`20`, not `2E+1`)."""
    return format(_SHOW.divide(_CTX.multiply(part, _HUNDRED), whole).normalize(_SHOW), "f")


def _rule_values(rule: Rule, st: RuleState, rs: RuleSet) -> dict[str, str]:
    """What a firing records of one rule, decimal strings."""
    out: dict[str, str] = {}
    if isinstance(rule, PortfolioTrailingStop | PositionTrailingStop) and st.reference is not None and st.peak is not None:
        if isinstance(rule, PositionTrailingStop):
            out["symbol"] = price_key(rule.symbol, rule.exchange)
            out["price"] = str(st.last)
        out.update(reference=str(st.reference), peak=str(st.peak), trigger=str(_level(st.peak, rule.trail_pct, -1)),
                   arm_level=str(_level(st.reference, rule.arm_pct, 1)))
    elif isinstance(rule, PortfolioStop | PortfolioTakeProfit):
        level = _stop_level(rule, st)
        out["level"] = _s(level) or ""
        if st.reference is not None and rule.pct is not None:
            out["reference"] = str(st.reference)
    elif isinstance(rule, MaxDrawdown) and st.peak is not None and st.last is not None and st.peak > 0:
        out["peak"] = str(st.peak)
        out["drawdown_pct"] = _percent(_CTX.subtract(st.peak, st.last), st.peak)
    elif isinstance(rule, IndicatorRule):
        out["indicator"] = indicator_key(rule, rs.scope, rs.scope_id)
        out["indicator_value"] = _s(st.last) or ""
        out["compared_to"] = str(rule.threshold) if rule.threshold is not None else str(other_key(rule, rs.scope, rs.scope_id))
    return out


def evaluate(rs: RuleSet, state: RuleSetState, sample: Sample, tz: str = "UTC") -> Firing | None:
    """Feed one sample to every rule (mutating `state`); a Firing when ALL rules hold, else None.

    `tz` is the owner's zone, for time windows that name none. A `once` set that fired is done
    (None until the caller starts a new state); a `rearm` set ignores samples during its cooldown,
    then resets every rule (this sample is the new reference).
    """
    if len(state.rules) != len(rs.rules):
        raise ValueError("the state belongs to another version of the rule set: start from new_state")
    if state.done or not rs.enabled:
        return None
    if state.fired_at_ns is not None:
        assert rs.cooldown is not None
        if sample.time_ns < state.fired_at_ns + duration_ns(rs.cooldown, "cooldown"):
            return None
        state.rules = [RuleState() for _ in rs.rules]
        state.fired_at_ns = None
    held = [rule_holds(rule, st, sample, tz, scope=rs.scope, scope_id=rs.scope_id)
            for rule, st in zip(rs.rules, state.rules, strict=True)]
    if not all(held):
        return None
    values = {"value": str(sample.value)}
    for i, (rule, st) in enumerate(zip(rs.rules, state.rules, strict=True)):
        for key, text in _rule_values(rule, st, rs).items():
            values[key if key not in values else f"rules[{i}].{key}"] = text
    state.fired_at_ns = sample.time_ns
    state.done = rs.after == "once"
    return Firing(sample.time_ns, values)


def status(rs: RuleSet, state: RuleSetState) -> dict[str, Any]:
    """The live state for a dashboard: per rule its kind, whether it held, and its levels (decimal strings)."""
    rules: list[dict[str, Any]] = []
    for rule, st in zip(rs.rules, state.rules, strict=False):
        item: dict[str, Any] = {"kind": rule.__struct_config__.tag, "holds": st.held, "value": _s(st.last)}
        item.update(_rule_values(rule, st, rs))
        if isinstance(rule, PortfolioTrailingStop | PositionTrailingStop):
            item["armed"] = st.armed
            trigger = None if st.peak is None else _level(st.peak, rule.trail_pct, -1)
            if trigger is not None and st.last is not None and st.last > 0:
                item["distance_pct"] = _percent(_CTX.subtract(st.last, trigger), st.last)
        rules.append(item)
    cooldown_until = None
    if state.fired_at_ns is not None and rs.after == "rearm" and rs.cooldown is not None:
        cooldown_until = state.fired_at_ns + duration_ns(rs.cooldown, "cooldown")
    return {"enabled": rs.enabled, "done": state.done, "fired_at_ns": state.fired_at_ns,
            "cooldown_until_ns": cooldown_until, "rules": rules}

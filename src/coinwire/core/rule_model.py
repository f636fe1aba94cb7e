"""The rule set model a user writes: rules and actions as tagged structs, their checks, and the JSON form.

Why strict here: a rule set arrives from a TOML file, the REST API, JSON-RPC and a backtest's start
body; it is checked once, in this one place, before anything is stored or run. Unknown keys and
kinds are refused, every number is read as exact decimal text, and every refusal names its
place in the document (`rule_sets[0].rules[1].trail_pct`) with a stable code:
`unknown_rule_kind`, `unknown_action_kind`, `out_of_range`, `invalid_rule_set`, or the analyser's
own (`unknown_series`, `unknown_indicator`, `invalid_parameter`) for an indicator rule.
Evaluation is in core/rules.py, which also re-exports this module's names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec

from coinwire.core.analysis import analysis_key, parse_analysis_key, parse_indicator, parse_series
from coinwire.core.errors import InvalidInput
from coinwire.core.numbers import parse_decimal
from coinwire.core.rollup import parse_timeframe
from coinwire.core.schedules import zone
from coinwire.core.symbols import normalize_symbol

__all__ = [
    "DAYS", "MAX_ACTIONS", "MAX_PCT", "MAX_RULES", "Action", "CancelOrders", "CloseAll", "IndicatorRule", "MaxDrawdown",
    "Notify", "PauseEntries", "PortfolioStop", "PortfolioTakeProfit", "PortfolioTrailingStop", "PositionTrailingStop",
    "Rule", "RuleSet", "ScaleOrders", "StopRun", "TimeWindow", "Webhook", "duration_ns", "indicator_key",
    "indicator_series", "minutes_of_day", "other_key", "other_source", "parse_rule_set", "parse_rule_sets", "rule_outputs", "rule_set_dict",
]

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RULES: Final = 20
MAX_ACTIONS: Final = 20
MAX_PCT: Final = Decimal(100_000)  # a rise of 1000x: beyond it a take profit or arming level is a typo
_HUNDRED: Final = Decimal(100)
_HHMM: Final = re.compile(r"([0-9]{2}):([0-9]{2})")
_URL: Final = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)


# --- rules -------------------------------------------------------------------------------------
class _Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    """Base of every rule: tagged by `kind`, unknown keys refused."""


class PortfolioTrailingStop(_Rule, tag="portfolio_trailing_stop", frozen=True, kw_only=True):
    """Armed once the value rose `arm_pct`% above the reference; holds when it then falls `trail_pct`% from its peak."""

    arm_pct: Decimal
    trail_pct: Decimal


class PortfolioStop(_Rule, tag="portfolio_stop", frozen=True, kw_only=True):
    """Holds when the value is at or below `value`, or `pct`% below the reference (exactly one of the two)."""

    value: Decimal | None = None
    pct: Decimal | None = None


class PortfolioTakeProfit(_Rule, tag="portfolio_take_profit", frozen=True, kw_only=True):
    """Holds when the value is at or above `value`, or `pct`% above the reference (exactly one of the two)."""

    value: Decimal | None = None
    pct: Decimal | None = None


class MaxDrawdown(_Rule, tag="max_drawdown", frozen=True, kw_only=True):
    """Holds when the value is `pct`% or more below its peak within `window` (None: since the reference)."""

    pct: Decimal
    window: str | None = None


class IndicatorRule(_Rule, tag="indicator", frozen=True, kw_only=True):
    """An analyser output above/below a threshold or another output, or crossing it (the sample where the sign changes)."""

    series: str
    indicator: str
    params: list[int | float] = []
    op: Literal["above", "below", "cross_above", "cross_below"]
    threshold: Decimal | None = None
    other: str | None = None


class TimeWindow(_Rule, tag="time_window", frozen=True, kw_only=True):
    """Holds when the sample's local time is in [start, end) on one of `days` (start > end wraps past midnight)."""

    start: str = "00:00"
    end: str = "24:00"
    days: list[str] = msgspec.field(default_factory=lambda: list(DAYS))
    tz: str | None = None


class PositionTrailingStop(_Rule, tag="position_trailing_stop", frozen=True, kw_only=True):
    """A trailing stop on one market's price (a long's favour: up): armed `arm_pct`% above the first price, trails `trail_pct`%."""

    symbol: str
    exchange: str | None = None
    arm_pct: Decimal
    trail_pct: Decimal


Rule = (PortfolioTrailingStop | PortfolioStop | PortfolioTakeProfit | MaxDrawdown | IndicatorRule | TimeWindow
        | PositionTrailingStop)
_RULE_TYPES: Final = (PortfolioTrailingStop, PortfolioStop, PortfolioTakeProfit, MaxDrawdown, IndicatorRule, TimeWindow,
                      PositionTrailingStop)


# --- actions -----------------------------------------------------------------------------------
class _Action(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    """Base of every action: tagged by `kind`, unknown keys refused."""


class CloseAll(_Action, tag="close_all", frozen=True, kw_only=True):
    """Sell every spot holding of the scope to its quote (or `currency`), close perpetual positions reduce-only."""

    currency: str | None = None
    pause: bool = True  # on a run scope: also pause its entries, so the strategy does not buy back


class CancelOrders(_Action, tag="cancel_orders", frozen=True, kw_only=True):
    """Cancel every open order of the scope."""


class StopRun(_Action, tag="stop_run", frozen=True, kw_only=True):
    """Stop the run (a run scope)."""


class PauseEntries(_Action, tag="pause_entries", frozen=True, kw_only=True):
    """Refuse the run's buys until it is resumed."""


class ScaleOrders(_Action, tag="scale_orders", frozen=True, kw_only=True):
    """Multiply the run's order sizes by `factor` (0 < factor <= 10)."""

    factor: Decimal


class Notify(_Action, tag="notify", frozen=True, kw_only=True):
    """Send the owner a notification (with `message`, or a sentence naming the rule set)."""

    message: str | None = None


class Webhook(_Action, tag="webhook", frozen=True, kw_only=True):
    """POST the firing to `url`; with `secret`, signed: header X-Coinwire-Signature: sha256=<hex HMAC of the body>."""

    url: str
    secret: str | None = None


Action = CloseAll | CancelOrders | StopRun | PauseEntries | ScaleOrders | Notify | Webhook
_ACTION_TYPES: Final = (CloseAll, CancelOrders, StopRun, PauseEntries, ScaleOrders, Notify, Webhook)


class RuleSet(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rules that must all hold at one sample, and the actions then run in order, attached to a scope."""

    name: str
    scope: Literal["account", "wallet_set", "run", "user"]
    scope_id: str | None = None
    mode: Literal["live", "dry_run"] = "live"
    after: Literal["once", "rearm"] = "once"
    cooldown: str | None = None
    enabled: bool = True
    rules: list[Rule]
    actions: list[Action]


_RULE_KINDS: Final = {str(t.__struct_config__.tag): t for t in _RULE_TYPES}
_ACTION_KINDS: Final = {str(t.__struct_config__.tag): t for t in _ACTION_TYPES}
_DECIMAL_FIELDS: Final = ("arm_pct", "trail_pct", "value", "pct", "threshold", "factor")


# --- parsing -----------------------------------------------------------------------------------
def _refuse(code: str, path: str, message: str) -> InvalidInput:
    return InvalidInput(code, f"{path}: {message}" if path else message, field=path)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and not name.startswith("[") else f"{prefix}{name}"


def _check_kinds(obj: Mapping[str, Any], prefix: str) -> None:
    """Name an unknown rule or action kind with its own code before the shape check (msgspec says only 'invalid value')."""
    for key, kinds, code, what in (("rules", _RULE_KINDS, "unknown_rule_kind", "rule"),
                                   ("actions", _ACTION_KINDS, "unknown_action_kind", "action")):
        items = obj.get(key)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            kind = item.get("kind") if isinstance(item, Mapping) else None
            if isinstance(kind, str) and kind not in kinds:
                raise _refuse(code, _join(prefix, f"{key}[{i}].kind"),
                              f"unknown {what} kind {kind!r}; known: {', '.join(sorted(kinds))}")
            for name in _DECIMAL_FIELDS:
                number = item.get(name) if isinstance(item, Mapping) else None
                if number is not None and not isinstance(number, bool):  # msgspec also reads "1_0" and " 1"
                    _number(number, _join(prefix, f"{key}[{i}].{name}"))


def _shape_error(exc: msgspec.ValidationError, prefix: str) -> InvalidInput:
    """msgspec's message with its `$` path rewritten to the document's (`rule_sets[0].rules[1].trail_pct`)."""
    text = str(exc)
    match = re.search(r" - at `\$(.*)`$", text)
    inner = match.group(1).lstrip(".") if match else ""
    path = _join(prefix, inner) if inner else prefix
    body = text[: match.start()] if match else text
    return _refuse("invalid_rule_set", path, body)


def _number(value: object, path: str) -> Decimal:
    """A number as every other coinwire input reads it (ASCII decimal text, finite, exponent within +-60)."""
    try:
        return parse_decimal(value, path.rsplit(".", 1)[-1])
    except InvalidInput as exc:
        raise _refuse("invalid_rule_set", path, exc.message) from None


def _pct(value: Decimal, path: str, *, low_open: bool = True, high: Decimal = _HUNDRED, high_open: bool = True) -> None:
    """A percentage in (0, high) (or [0, ...] / (..., high] as asked); `out_of_range` with the path otherwise."""
    number = _number(value, path)
    low_ok = number > 0 if low_open else number >= 0
    high_ok = number < high if high_open else number <= high
    if not (low_ok and high_ok):
        lo, hi = ("(0" if low_open else "[0"), (f"{high})" if high_open else f"{high}]")
        raise _refuse("out_of_range", path, f"must be in {lo}, {hi}, got {value}")


def _text(value: str | None, path: str, limit: int, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if value is None or not value.strip() or len(value) > limit:
        raise _refuse("out_of_range", path, f"must be a non-blank text of at most {limit} characters")


def duration_ns(text: str, path: str) -> int:
    """Nanoseconds of a cooldown or window in the timeframe grammar (`30m`, `1h`, `7d`, `1w`): months have no fixed length, refused."""
    try:
        frame = parse_timeframe(text)
    except InvalidInput as exc:
        raise _refuse("invalid_rule_set", path, exc.message) from None
    seconds = frame.utc_seconds
    if seconds is None:
        raise _refuse("invalid_rule_set", path, f"must be in seconds, minutes, hours, days or weeks (s, m, h, d, w), got {text!r}")
    return seconds * 1_000_000_000


def minutes_of_day(text: str, path: str, *, end: bool) -> int:
    """`HH:MM` as minutes of the day; `24:00` only as an end."""
    match = _HHMM.fullmatch(text)
    if match is None:
        raise _refuse("invalid_rule_set", path, f"must be a time HH:MM, got {text!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    total = hours * 60 + minutes
    if minutes > 59 or total > 24 * 60 or (total == 24 * 60 and not end):
        raise _refuse("out_of_range", path, f"must be a time from 00:00 to {'24:00' if end else '23:59'}, got {text!r}")
    return total


def indicator_series(rule: IndicatorRule, scope: str | None = None, scope_id: str | None = None) -> str:
    """The canonical series `rule` reads; `portfolio` alone (the rule set's own) resolved when the scope id is known.

    A backtest's own run has no id: its series stays `portfolio` and the engine feeds that key.
    """
    ref = parse_series(rule.series)
    if not ref.resolved and scope is not None and scope_id is not None:
        ref = ref.in_scope(scope, scope_id)
    return ref.text


def indicator_key(rule: IndicatorRule, scope: str | None = None, scope_id: str | None = None) -> str:
    """The key of `rule`'s analyser output in `Sample.analysis` (core.analysis.analysis_key of its resolved series)."""
    return analysis_key(indicator_series(rule, scope, scope_id), rule.indicator, rule.params)


def other_key(rule: IndicatorRule, scope: str | None = None, scope_id: str | None = None) -> str | None:
    """The analysis key `other` names, its own-portfolio head (`portfolio:sma(50)`, `portfolio.1h:...`) resolved as the series is."""
    if rule.other is None:
        return None
    head, _, tail = rule.other.partition(":")
    own = head == "portfolio" or (head.startswith("portfolio.") and head.count(".") == 1)
    if not own or scope is None or scope_id is None:
        return rule.other
    series = "portfolio" if head == "portfolio" else f"portfolio:{head.split('.', 1)[1]}"
    resolved = parse_series(series).in_scope(scope, scope_id).text
    return f"{analysis_key(resolved, 'value').partition(':')[0]}:{tail}"  # the key's spelling of the series


def other_source(rule: IndicatorRule, scope: str | None = None, scope_id: str | None = None
                 ) -> tuple[str, str, tuple[int | float, ...]] | None:
    """The (series, indicator, params) that compute `other`, so whatever runs the rule can compute it too."""
    key = other_key(rule, scope, scope_id)
    return None if key is None else parse_analysis_key(key)


def rule_outputs(rule: IndicatorRule, scope: str | None = None, scope_id: str | None = None
                 ) -> list[tuple[str, str, str, tuple[int | float, ...]]]:
    """The analyser outputs an indicator rule reads, its own and its `other`'s: (key, series, indicator, params), each
    resolved in the rule set's scope, so whatever runs the rule (the controller, a run) computes both."""
    out = [(indicator_key(rule, scope, scope_id), indicator_series(rule, scope, scope_id), rule.indicator, tuple(rule.params))]
    other = other_source(rule, scope, scope_id)
    if other is not None:
        out.append((str(other_key(rule, scope, scope_id)), *other))
    return out


def _check_indicator(rule: IndicatorRule, path: str, scope: str, scope_id: str | None) -> None:
    try:
        parse_series(rule.series)
    except InvalidInput as exc:
        raise _refuse(exc.code, _join(path, "series"), exc.message) from None
    try:
        parse_indicator(rule.indicator, rule.params)
    except InvalidInput as exc:
        raise _refuse(exc.code, _join(path, "indicator"), exc.message) from None
    if (rule.threshold is None) == (rule.other is None):
        raise _refuse("invalid_rule_set", path, "give exactly one of `threshold` (a number) or `other` (an analysis key)")
    if rule.threshold is not None:
        _number(rule.threshold, _join(path, "threshold"))
    if rule.other is not None:
        _text(rule.other, _join(path, "other"), 300)
    try:  # the own portfolio resolved in this rule set's scope
        indicator_key(rule, scope, scope_id)
    except InvalidInput as exc:
        raise _refuse(exc.code, _join(path, "series"), exc.message) from None
    try:
        other_source(rule, scope, scope_id)
    except InvalidInput as exc:
        raise _refuse(exc.code, _join(path, "other"), f"{exc.message} (its series and indicator spelled as the analyser "
                      "names its outputs, parameters included)") from None


def _check_level(rule: PortfolioStop | PortfolioTakeProfit, path: str) -> None:
    if (rule.value is None) == (rule.pct is None):
        raise _refuse("invalid_rule_set", path, "give exactly one of `value` (an absolute portfolio value) or `pct`")
    if rule.value is not None and _number(rule.value, _join(path, "value")) <= 0:
        raise _refuse("out_of_range", _join(path, "value"), f"must be above 0, got {rule.value}")
    if rule.pct is not None:
        if isinstance(rule, PortfolioStop):
            _pct(rule.pct, _join(path, "pct"))
        else:
            _pct(rule.pct, _join(path, "pct"), high=MAX_PCT, high_open=False)


def _check_rule(rule: Rule, path: str, scope: str = "user", scope_id: str | None = None) -> None:
    """Every parameter of one rule in its range; the path names it in any refusal."""
    if isinstance(rule, PortfolioTrailingStop | PositionTrailingStop):
        _pct(rule.arm_pct, _join(path, "arm_pct"), low_open=False, high=MAX_PCT, high_open=False)
        _pct(rule.trail_pct, _join(path, "trail_pct"))
        if isinstance(rule, PositionTrailingStop):
            _text(rule.symbol, _join(path, "symbol"), 50)
            try:
                normalize_symbol(rule.symbol)
            except InvalidInput as exc:
                raise _refuse(exc.code, _join(path, "symbol"), exc.message) from None
            _text(rule.exchange, _join(path, "exchange"), 50, required=False)
    elif isinstance(rule, PortfolioStop | PortfolioTakeProfit):
        _check_level(rule, path)
    elif isinstance(rule, MaxDrawdown):
        _pct(rule.pct, _join(path, "pct"))
        if rule.window is not None:
            duration_ns(rule.window, _join(path, "window"))
    elif isinstance(rule, IndicatorRule):
        _check_indicator(rule, path, scope, scope_id)
    else:
        start = minutes_of_day(rule.start, _join(path, "start"), end=False)
        end = minutes_of_day(rule.end, _join(path, "end"), end=True)
        if start == end:
            raise _refuse("out_of_range", path, "start and end are the same time: the window would be empty")
        if not rule.days or len(set(rule.days)) != len(rule.days) or any(d not in DAYS for d in rule.days):
            raise _refuse("invalid_rule_set", _join(path, "days"), f"must be distinct day names from {', '.join(DAYS)}")
        if rule.tz is not None:
            try:
                zone(rule.tz)
            except InvalidInput as exc:
                raise _refuse("invalid_rule_set", _join(path, "tz"), exc.message) from None


def _check_action(action: Action, path: str) -> None:
    if isinstance(action, ScaleOrders):
        number = _number(action.factor, _join(path, "factor"))
        if not 0 < number <= 10:
            raise _refuse("out_of_range", _join(path, "factor"), f"must be in (0, 10], got {action.factor}")
    elif isinstance(action, CloseAll):
        _text(action.currency, _join(path, "currency"), 20, required=False)
    elif isinstance(action, Notify):
        _text(action.message, _join(path, "message"), 1000, required=False)
    elif isinstance(action, Webhook):
        if len(action.url) > 2000 or _URL.fullmatch(action.url) is None:
            raise _refuse("invalid_rule_set", _join(path, "url"), f"must be an http(s) URL, got {action.url[:100]!r}")
        _text(action.secret, _join(path, "secret"), 200, required=False)


def _check(rs: RuleSet, prefix: str) -> None:
    _text(rs.name, _join(prefix, "name"), 100)
    _text(rs.scope_id, _join(prefix, "scope_id"), 100, required=False)
    for key, items, limit in (("rules", rs.rules, MAX_RULES), ("actions", rs.actions, MAX_ACTIONS)):
        if not 1 <= len(items) <= limit:
            raise _refuse("out_of_range", _join(prefix, key), f"needs 1 to {limit} entries, got {len(items)}")
    if rs.after == "rearm":
        if rs.cooldown is None:
            raise _refuse("invalid_rule_set", _join(prefix, "cooldown"), "after = 'rearm' needs a cooldown, e.g. '1h'")
        duration_ns(rs.cooldown, _join(prefix, "cooldown"))
    elif rs.cooldown is not None:
        raise _refuse("invalid_rule_set", _join(prefix, "cooldown"), "a cooldown applies to after = 'rearm' only")
    for i, rule in enumerate(rs.rules):
        _check_rule(rule, _join(prefix, f"rules[{i}]"), rs.scope, rs.scope_id)
    for i, action in enumerate(rs.actions):
        _check_action(action, _join(prefix, f"actions[{i}]"))


def _parse(obj: object, prefix: str) -> RuleSet:
    if not isinstance(obj, Mapping):
        raise _refuse("invalid_rule_set", prefix, f"a rule set must be an object, got {type(obj).__name__}")
    _check_kinds(obj, prefix)
    try:
        rs = msgspec.convert(dict(obj), RuleSet)
    except msgspec.ValidationError as exc:
        raise _shape_error(exc, prefix) from None
    _check(rs, prefix)
    return msgspec.structs.replace(rs, rules=[_canonical(rule) for rule in rs.rules])


def _canonical(rule: Rule) -> Rule:
    """A market named as everywhere else: `BTC/USDT` (normalize_symbol), the exchange in lower case."""
    if not isinstance(rule, PositionTrailingStop):
        return rule
    exchange = None if rule.exchange is None else rule.exchange.strip().lower()
    return msgspec.structs.replace(rule, symbol=normalize_symbol(rule.symbol), exchange=exchange)


def parse_rule_set(obj: Mapping[str, Any]) -> RuleSet:
    """A checked rule set from its JSON form; InvalidInput (unknown_rule_kind, unknown_action_kind, invalid_rule_set,
    out_of_range, or an indicator's own code) whose message and `field` name the path (`rules[1].trail_pct`)."""
    return _parse(obj, "")


def parse_rule_sets(doc: Mapping[str, Any]) -> list[RuleSet]:
    """The rule sets of a `{"rule_sets": [...]}` document (a TOML file read by tomllib, or JSON); nothing else allowed."""
    if not isinstance(doc, Mapping):
        raise _refuse("invalid_rule_set", "", "a rules document must be an object with a `rule_sets` list")
    unknown = sorted(str(k) for k in doc if k != "rule_sets")
    if unknown:
        raise _refuse("invalid_rule_set", unknown[0], "unknown key: a rules document holds `rule_sets` only")
    items = doc.get("rule_sets")
    if not isinstance(items, list) or not items:
        raise _refuse("invalid_rule_set", "rule_sets", "must be a non-empty list of rule sets")
    return [_parse(item, f"rule_sets[{i}]") for i, item in enumerate(items)]


def rule_set_dict(rs: RuleSet) -> dict[str, Any]:
    """The JSON form (decimals as strings, every field written): `parse_rule_set` reads it back equal."""
    out: dict[str, Any] = msgspec.to_builtins(rs)
    return out

"""Rule sets attached to a run: core.rules evaluated at each portfolio sample, their actions done in the run itself.

Why in the engine: the issue's promise is that a rule behaves the same in a backtest as live,
so a trader can see what it would have done. The evaluation is `core.rules.evaluate` (the
controller's too); what differs is only where the samples come from and what an action
touches: here the run's own wallet set, through the same runtime calls a strategy makes, so a
`close_all`'s market sells fill like any market order of the mode (a candle backtest: at the
next bar's open under `--fill open`).

A candle backtest samples at every bar close (`sample_close`: the holdings at that instant
valued at each market's close, `engine.valuation.value_at`); an L2 backtest after every
recorded message and a paper run after each market message, at most once per `interval_ns`
of market time (`sample_now`: valued at the markets' last prices). Each firing is kept for the
report as `{"time", "rule_set", "values", "actions": [{"kind", "status", "detail"}]}`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from coinwire.core.analysis import PortfolioBars, SeriesRef, Stream, parse_indicator, parse_series
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.portfolio import CandleBuilder
from coinwire.core.rules import (
    CancelOrders,
    CloseAll,
    IndicatorRule,
    PauseEntries,
    PositionTrailingStop,
    RuleSet,
    Sample,
    ScaleOrders,
    StopRun,
    evaluate,
    new_state,
    parse_rule_set,
    parse_rule_sets,
    price_key,
    rule_outputs,
    rule_set_dict,
)
from coinwire.engine.runtime import Runtime
from coinwire.engine.valuation import price_at, value_at

__all__ = ["CandleAnalysis", "PortfolioAnalysis", "RuleRunner", "load_rules_file", "run_rule_sets"]

_NS = 1_000_000_000


def run_rule_sets(raw: Sequence[Mapping[str, Any]]) -> list[RuleSet]:
    """A run's rule sets from their JSON form (the runs API's `rules`, a `--rules` file's `rule_sets`), all scoped to the run.

    A run's rules act on that run only: a rule set scoped elsewhere (an account, the user) is
    the controller's business and is refused here with `invalid_rule_set`, nothing started.
    """
    out = []
    for i, obj in enumerate(raw):
        if not isinstance(obj, Mapping):
            raise InvalidInput("invalid_rule_set", f"rules[{i}] must be a rule set object")
        rs = parse_rule_set(obj)
        if rs.scope != "run":
            raise InvalidInput("invalid_rule_set", f"rules[{i}].scope: a run's rule sets have scope 'run', not {rs.scope!r} "
                               "(rule sets on accounts, wallet sets or the whole portfolio are created with `coinwire rules add`)")
        out.append(rs)
    names = [rs.name for rs in out]
    if len(set(names)) != len(names):
        raise InvalidInput("invalid_rule_set", "a run's rule sets need distinct names (firings are reported by name)")
    return out


def load_rules_file(path: Path) -> list[dict[str, Any]]:
    """A `--rules` TOML file (`[[rule_sets]]` tables) as the JSON form a run carries; unknown keys are refused as core refuses them."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput("file_not_found", f"rules file {path}: no such file", path=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("invalid_rules_file", f"rules file {path} is not valid TOML: {exc}", path=str(path)) from None
    raw = [rule_set_dict(rs) for rs in parse_rule_sets(doc)]
    run_rule_sets(raw)
    return raw


def _kind(struct: Any) -> str:
    return str(type(struct).__struct_config__.tag)


def _indicator_inputs(rule_sets: Sequence[RuleSet]) -> list[tuple[str, SeriesRef, str, tuple[int | float, ...], str]]:
    """Every analyser output a run's indicator rules read, their own and their `other`'s, once each:
    (key, series, indicator, params, where the first rule naming it is)."""
    out: list[tuple[str, SeriesRef, str, tuple[int | float, ...], str]] = []
    seen: set[str] = set()
    for rs in rule_sets:
        for i, rule in enumerate(rs.rules):
            if not isinstance(rule, IndicatorRule):
                continue
            for key, series, indicator, params in rule_outputs(rule):
                if key not in seen:
                    seen.add(key)
                    out.append((key, parse_series(series), indicator, params, f"rule set {rs.name!r}, rules[{i}]"))
    return out


class CandleAnalysis:
    """The market outputs a candle backtest's indicator rules read: each over one of the run's markets, computed once.

    Why precomputed: the candles are all known, and `core.analysis.Stream` fed bar by bar
    gives the values the live analyser would publish at each close; a sample at `ts` reads
    the value of the newest bar closed at or before it (a bar still forming is never read).
    Only market series of the backtest's own exchange exist here; the run's own portfolio is
    `PortfolioAnalysis`'s, and anything else is refused by `RuleRunner`.
    """

    def __init__(self, rule_sets: Sequence[RuleSet], exchange: str, series_of: Callable[[str, str], Any]) -> None:
        """`series_of(symbol, timeframe)`: the run's candles (rolled up as the strategy's are; unknown symbols refused there)."""
        self.columns: list[tuple[str, Any, np.ndarray]] = []
        for key, ref, indicator, params, where in _indicator_inputs(rule_sets):
            if ref.kind != "market":
                continue
            if ref.exchange != exchange:
                raise InvalidInput("invalid_rule_set", f"{where}: a backtest reads indicators of its own markets "
                                   f"('market:{exchange}:<symbol>:<timeframe>'), not {ref.text!r}")
            candles = series_of(ref.symbol, ref.timeframe)
            stream = Stream(parse_indicator(indicator, params))
            values = np.array([stream.update(h, low, c) for h, low, c in
                               zip(candles.high.tolist(), candles.low.tolist(), candles.close.tolist(), strict=True)])
            self.columns.append((key, candles, values))

    def at(self, ts: int) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, candles, values in self.columns:
            i = int(candles.close_ns.searchsorted(ts, "right")) - 1
            if i >= 0:
                out[key] = float(values[i])
        return out


class PortfolioAnalysis:
    """Indicators over the run's own portfolio value, in every mode: the value's 15-minute candles built from the rule
    samples (`core.portfolio.CandleBuilder`, as the tracker builds a live portfolio's) and folded into each series'
    timeframe (`core.analysis.PortfolioBars`, as the live analyser folds them), so `portfolio:1h` SMA 20 crossing below
    SMA 50 reads the same bars in a backtest as live. A sample at a boundary closes the bucket ending there, and the
    rules evaluated at that sample read it (a candle backtest's bar closes are its samples)."""

    def __init__(self, inputs: Sequence[tuple[str, SeriesRef, str, tuple[int | float, ...]]]) -> None:
        self.outputs = [(key, PortfolioBars(ref.timeframe), Stream(parse_indicator(indicator, params)))
                        for key, ref, indicator, params in inputs]
        self.builder: CandleBuilder | None = None
        self.values: dict[str, float] = {}

    def sample(self, ts: int, value: Decimal) -> None:
        if self.builder is None:
            self.builder = CandleBuilder(value, ts)
            closed = []
        else:
            closed = self.builder.sample(ts, value)
        closed += self.builder.close_until(ts)
        for candle in closed:
            row = (candle.open_time, float(candle.open), float(candle.high), float(candle.low), float(candle.close), 0.0)
            for key, bars, stream in self.outputs:
                bar = bars.add(row)
                if bar is not None:
                    out = stream.update(bar[0], bar[1], bar[2])
                    if math.isfinite(out):  # warming up: nothing to read yet, as the live analyser publishes nothing
                        self.values[key] = out


class RuleRunner:
    """Evaluates a run's rule sets at its samples and does what the firing ones say, in the run; `firings` for the report."""

    def __init__(self, rule_sets: Sequence[RuleSet], runtime: Runtime, tz: str = "UTC", interval_ns: int = 0,
                 analysis: CandleAnalysis | None = None) -> None:
        """`tz`: the zone `time_window` rules read local time in; `interval_ns`: the least market time between two
        `sample_now` samples (0: every one); `analysis`: what indicator rules read (a run without refuses them)."""
        own: list[tuple[str, SeriesRef, str, tuple[int | float, ...]]] = []
        for key, ref, indicator, params, where in _indicator_inputs(rule_sets):
            if ref.kind == "portfolio" and not ref.resolved:
                own.append((key, ref, indicator, params))
            elif ref.kind != "market":
                raise InvalidInput("invalid_rule_set", f"{where}: a run's rules read indicators of its own portfolio "
                                   f"('portfolio[:<timeframe>]') or its markets, not {ref.text!r}")
            elif analysis is None:
                raise InvalidInput("invalid_rule_set", f"{where}: a market's indicators ({ref.text!r}) are read in candle "
                                   "backtests only (a paper run or L2 backtest has no closed candles to compute them on; "
                                   "a live rule set reads the analyser)")
        self.analysis = analysis
        self.portfolio = PortfolioAnalysis(own) if own else None
        self.rule_sets = list(rule_sets)
        self.states = [new_state(rs) for rs in self.rule_sets]
        self.rt = runtime
        self.tz = tz
        self.interval_ns = interval_ns
        self.firings: list[dict[str, Any]] = []
        self.samples = 0
        self._last_ns: int | None = None
        self._wants_prices = any(isinstance(rule, PositionTrailingStop) for rs in self.rule_sets for rule in rs.rules)

    # --- samples ----------------------------------------------------------------------------------
    def sample_close(self, ts: int) -> None:
        """A bar close of a candle backtest: the holdings now, each market at its close (`value_at`)."""
        rt = self.rt
        prices: dict[str, Decimal] = {}
        if self._wants_prices:
            for symbol in rt.report_markets():
                prices[price_key(symbol)] = prices[price_key(symbol, rt.exchange)] = price_at(rt, symbol, ts)
        self.sample(ts, value_at(rt, ts), prices)

    def sample_now(self, ts: int) -> None:
        """A market event of a stream run (L2 backtest, paper): the holdings now at the markets' last prices (`equity`).

        No sample while a held currency has no price yet (no book, no trade): a value without it would be a false drop.
        """
        if self.rt.halted is not None or (self._last_ns is not None and ts - self._last_ns < self.interval_ns):
            return
        rt = self.rt
        try:
            value = rt.equity(None)
        except CoinwireError:
            return
        prices: dict[str, Decimal] = {}
        if self._wants_prices:
            for symbol in rt.report_markets():
                try:
                    prices[price_key(symbol)] = prices[price_key(symbol, rt.exchange)] = Decimal(repr(rt.last_price(symbol)))
                except CoinwireError:
                    continue
        self._last_ns = ts
        self.sample(ts, value, prices)

    def sample(self, ts: int, value: Decimal, prices: Mapping[str, Decimal]) -> None:
        """One portfolio sample: every enabled rule set is evaluated; each that fires acts now, in order of the sets."""
        self.samples += 1
        analysis = self.analysis.at(ts) if self.analysis is not None else {}
        if self.portfolio is not None:
            self.portfolio.sample(ts, value)
            analysis.update(self.portfolio.values)
        sample = Sample(ts, value, prices, analysis)
        halt: str | None = None
        for rs, state in zip(self.rule_sets, self.states, strict=True):
            if not rs.enabled:
                continue
            firing = evaluate(rs, state, sample, self.tz)
            if firing is None:
                continue
            actions = []
            for action in rs.actions:
                if rs.mode == "dry_run":
                    actions.append({"kind": _kind(action), "status": "recorded", "detail": {"mode": "dry_run"}})
                    continue
                if isinstance(action, StopRun):
                    halt = halt or f"stopped by rule set {rs.name!r}"
                    actions.append({"kind": "stop_run", "status": "done", "detail": {"at": ts // _NS}})
                    continue
                actions.append(self._act(action))
            record = {"time": ts // _NS, "rule_set": rs.name, "mode": rs.mode, "values": dict(firing.values), "actions": actions}
            self.firings.append(record)
            self.rt.hub.record(ts, "in", "controller.rule_fired", record)
        if halt is not None:
            self.rt.halt(halt)

    # --- actions ----------------------------------------------------------------------------------
    def _act(self, action: Any) -> dict[str, Any]:
        kind = _kind(action)
        try:
            if isinstance(action, CloseAll):
                status, detail = self._close_all(action)
            elif isinstance(action, CancelOrders):
                status, detail = "done", {"cancelled": self._cancel_all()}
            elif isinstance(action, PauseEntries):
                self.rt.pause_entries(True)
                status, detail = "done", {"paused": True}
            elif isinstance(action, ScaleOrders):
                self.rt.scale_orders(action.factor)
                status, detail = "done", {"factor": str(action.factor)}
            else:  # notify, webhook: a run has no one to tell; what would have been sent is in the firing
                status, detail = "recorded", {"spec": _spec(action)}
        except CoinwireError as exc:
            status, detail = "failed", {"error": exc.code, "message": exc.message}
        return {"kind": kind, "status": status, "detail": detail}

    def _cancel_all(self) -> list[str]:
        cancelled = []
        for ticket in self.rt.open_orders():
            try:
                self.rt.cancel_order(ticket)
            except CoinwireError:
                continue  # done meanwhile
            cancelled.append(ticket.client_oid)
        return cancelled

    def _close_all(self, action: CloseAll) -> tuple[str, dict[str, Any]]:
        """Cancel the run's open orders, sell each spot holding to `currency` (the run's quote), close each perpetual position.

        A holding of the target's own quote (USDT when closing to BTC) is spent on the target
        with a market buy of all of it.

        A sell is sized to exactly what the run holds, floored to the market's step: what is
        below one step stays and is reported as `dust`; a currency with no market to the
        target is reported in `unsold` and makes the action `failed` (the rest is still done).
        """
        rt = self.rt
        target = (action.currency or rt.quote).upper()
        cancelled = self._cancel_all()
        orders: list[dict[str, Any]] = []
        dust: dict[str, str] = {}
        unsold: dict[str, str] = {}
        refused: list[dict[str, Any]] = []
        held: dict[tuple[str, str], int] = {}
        for wallet in rt.ledger.wallets(rt.wallet_set_id):
            if wallet.currency != target and wallet.balance > 0:
                key = (wallet.exchange, wallet.currency)
                held[key] = held.get(key, 0) + wallet.balance
        for (exchange, currency), atto in sorted(held.items()):
            symbol = f"{currency}/{target}"
            inst = rt.instrument(symbol, exchange) if exchange in rt.exchanges else None
            amount = str(Decimal(atto).scaleb(-ATTO_DECIMALS))
            if inst is None or inst.is_perpetual:
                inverse = rt.instrument(f"{target}/{currency}", exchange) if exchange in rt.exchanges else None
                if inverse is None or inverse.is_perpetual:
                    unsold[f"{exchange}:{currency}"] = amount
                    continue
                try:  # the target is this market's base: spend all of the currency on it (fees included)
                    ticket = rt.submit_order("buy", inverse.symbol, exchange=exchange, size=None, funds=Decimal(amount), limit=None,
                                             type=None, cancel_after=0)
                except CoinwireError as exc:
                    refused.append({"symbol": inverse.symbol, "exchange": exchange, "error": exc.code, "message": exc.message})
                    continue
                orders.append({"client_oid": ticket.client_oid, "exchange": exchange, "symbol": inverse.symbol, "side": "buy",
                               "funds": amount})
                continue
            unit = 10 ** (ATTO_DECIMALS - inst.size_decimals)
            units = atto // unit
            units -= units % inst.step
            rest = atto - units * unit
            if rest:
                dust[f"{exchange}:{currency}"] = str(Decimal(rest).scaleb(-ATTO_DECIMALS))
            if units <= 0 or units < inst.min_size:
                if units > 0:
                    dust[f"{exchange}:{currency}"] = amount  # below the market's minimum order: all of it stays
                continue
            size = Decimal(units).scaleb(-inst.size_decimals)
            try:
                ticket = rt.submit_order("sell", symbol, exchange=exchange, size=size, funds=None, limit=None, type=None, cancel_after=0)
            except CoinwireError as exc:
                refused.append({"symbol": symbol, "exchange": exchange, "error": exc.code, "message": exc.message})
                continue
            orders.append({"client_oid": ticket.client_oid, "exchange": exchange, "symbol": symbol, "side": "sell", "size": str(size)})
        for pos in rt.ledger.positions.all():
            if not pos.size or pos.wallet_set_id != rt.wallet_set_id:
                continue
            try:
                closing = rt.close_position(pos.symbol, pos.exchange)
            except CoinwireError as exc:
                refused.append({"symbol": pos.symbol, "exchange": pos.exchange, "error": exc.code, "message": exc.message})
                continue
            if closing is not None:
                orders.append({"client_oid": closing.client_oid, "exchange": pos.exchange, "symbol": pos.symbol, "side": closing.side,
                               "reduce_only": True})
        if action.pause:
            rt.pause_entries(True)
        detail: dict[str, Any] = {"to": target, "orders": orders, "cancelled": cancelled, "dust": dust, "paused": action.pause}
        if unsold:
            detail["unsold"] = unsold
        if refused:
            detail["refused"] = refused
        return ("failed" if unsold or refused else "done"), detail


def _spec(action: Any) -> dict[str, Any]:
    out = msgspec.to_builtins(action)
    if isinstance(out, dict) and out.get("secret"):
        out["secret"] = "***"  # a webhook's secret never goes into a report
    return out if isinstance(out, dict) else {}

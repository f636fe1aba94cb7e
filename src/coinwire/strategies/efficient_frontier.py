"""`efficient_frontier`: compute the exact Markowitz frontier of the run's assets, let the user pick a mix, trade into it gently.

Once `history_bars` closed candles of every asset are visible, the strategy computes the
frontier (`coinwire.core.frontier`) and publishes UI components: `frontier` (points with
return, volatility, Sharpe and weights; max-Sharpe, min-variance, single-asset portfolios,
covariance and correlation in the spec), `cloud` (random portfolios), `target` (the form the
user posts to) and `path` (the weights over time: the path to the frontier). The frontier's
first `curve_rows` rows are the curve; the rows after them are the weight path, the weights
the run held at each step as a point of the same risk/return plane (`[return, volatility,
sharpe, *weights, time]`, the quote counted as cash with no return), valued again with the
estimates whenever the frontier is recomputed.

Picking: post `{"action": "pick", "point": N}` (a frontier row), `{"action": "pick", "target":
"max_sharpe" | "min_variance"}` or `{"action": "pick", "weights": {"BTC/USDT": 0.6, ...}}` to
`target`, then `{"action": "confirm"}` (or `{"action": "cancel"}`). `{"action": "choose", ...}`
with the same keys picks and confirms at once: what the dashboard sends to `frontier` when a
point of the curve is clicked (its own modal was the confirmation). The parameter `target`
(`max_sharpe`, `min_variance`, `return:0.8`, `volatility:0.9`, `point:12`) preselects one,
confirmed, so a backtest runs unattended.

Pausing: `{"action": "pause"}` to `target` stops the rebalancing (no order is placed, a drift
does not resume it, the path is not extended) until `{"action": "resume"}`; the state is the
target form's `paused` and a log line, and a target chosen while paused waits for the resume.

Warm-up: the strategy declares `history_bars` candles of every asset (`warm_up`), so a paper or
live run loads them before it starts, and takes its first step one minute after its start
instead of waiting for the window to fill.

Trading: at every closed candle of the first asset (one step), with no order of the previous
step still open, the current weights come from the wallet set at last prices; every asset
further from its target than `tolerance` gets one market order: sells first, then buys within
the available quote. A slice is at most `depth_share` of the visible depth on the side it
takes: the summed size of the book's top levels in paper and live runs, the last closed
candle's volume in candle backtests (the most a candle lets fill). Slices and weights are
recorded each step. Once every weight is within `tolerance` the target is reached; with
`recompute_every` (seconds) the frontier is recomputed and a named target refreshed, and with
`drift` > 0 trading resumes whenever a weight drifts further than that from its target.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from coinwire.core import frontier as fr
from coinwire.core.errors import InvalidInput
from coinwire.engine.strategy import Strategy
from coinwire.history.candles import timeframe_seconds

__all__ = ["EfficientFrontier"]

_MARGIN = 1.01  # buys keep 1% of their budget for the fee and the move to the fill price


class EfficientFrontier(Strategy):
    name = "efficient_frontier"
    symbols = "BTC/USDT,ETH/USDT"  # comma-separated, one quote currency
    timeframe = "5m"
    history_bars = 2016  # closed candles per asset before the frontier is computed (7 days of 5m)
    risk_free = fr.DEFAULT_RISK_FREE
    covariance = "sample"
    points = 50
    cloud = 2000
    seed = 1
    max_weight = 1.0
    target = ""  # "": wait for the user; max_sharpe, min_variance, return:R, volatility:V, point:N
    depth_share = 0.1
    tolerance = 0.02
    min_notional = 10.0
    recompute_every = 0  # seconds; 0: compute once
    drift = 0.0  # resume trading when a weight drifts further than this from its target; 0: off
    paused = False  # start with the rebalancing paused (resume from the target form)

    # --- start ----------------------------------------------------------------------------------
    def on_start(self) -> None:
        self.assets = [s.strip() for s in self.symbols.split(",") if s.strip()]
        quotes = {s.split("/")[-1] for s in self.assets}
        if len(self.assets) < 2 or len(quotes) != 1 or any("/" not in s for s in self.assets):
            raise InvalidInput("invalid_parameter", f"symbols must be two or more pairs of one quote, got {self.symbols!r}")
        if not 0 < self.depth_share <= 1 or not 0 < self.tolerance < 1:
            raise InvalidInput("invalid_parameter", "depth_share must be in (0, 1] and tolerance in (0, 1)")
        self.quote = quotes.pop()
        self.periods = fr.periods_per_year(timeframe_seconds(self.timeframe))
        self.books: dict[str, dict[str, Any]] | None = {}
        for symbol in self.assets:
            try:
                self.subscribe_book(symbol, self._book)
            except InvalidInput as exc:
                if exc.code != "not_in_history":
                    raise
                self.books = None  # a candle backtest: depth is the last candle's volume
                break
        self.phase = "warming"  # -> choosing -> confirming -> trading <-> holding
        self.frontier: fr.Frontier | None = None
        self.named = ""  # the target's name when it follows recomputation (max_sharpe, ...)
        self.goal: np.ndarray | None = None
        self.pending: tuple[str, np.ndarray] | None = None
        self.computed_at = 0
        self.path: list[list[Any]] = []
        self.held: list[tuple[int, np.ndarray]] = []  # (time, weights) at each step: the weight path on the frontier plot
        self.path_rows: list[list[Any]] = []  # `held` on the current frontier's plane
        self.curve: list[list[Any]] = []
        self.paused = bool(self.paused)
        self.slices: list[list[Any]] = []
        self.reached: list[list[Any]] = []
        self.subscribe_candles(self.assets[0], self.timeframe, self._step)
        for symbol in self.assets:  # a paper or live run loads the window before it starts (engine/warmup.py)
            self.warm_up(symbol, self.timeframe, bars=self.history_bars)
        if self.books is not None:  # paper and live: a first step after one minute on the warm window, not a candle later
            self.at(self.time + 60, lambda: self._step({}))

    def _book(self, book: dict[str, Any]) -> None:
        assert self.books is not None
        self.books[book["symbol"]] = book

    # --- the frontier -----------------------------------------------------------------------------
    def _compute(self) -> bool:
        series = [self.candles(s, self.timeframe, self.history_bars) for s in self.assets]
        if any(len(c["close"]) < self.history_bars for c in series):
            return False
        times, prices = fr.align_closes(self.assets, [c["time"] for c in series], [c["close"] for c in series])
        est = fr.estimate(self.assets, prices, self.periods, self.covariance)
        self.frontier = fr.efficient_frontier(est, upper=self.max_weight)
        self.computed_at = self.time
        summary = fr.summary(self.frontier, self.points, self.risk_free)
        rc = fr.random_portfolios(est, np.random.default_rng(self.seed), self.cloud, self.risk_free)
        singles = [{"asset": a, **p.to_dict(self.assets)}
                   for a, p in zip(self.assets, self.frontier.single_assets(self.risk_free), strict=True)]
        self.curve = [[p["return"], p["volatility"], p["sharpe"], *p["weights"].values()] for p in summary["frontier"]]  # type: ignore[attr-defined]
        self.component("frontier", {
            "type": "frontier", "title": f"Efficient frontier of {', '.join(self.assets)}",
            "columns": ["return", "volatility", "sharpe", *self.assets, "time"], "assets": self.assets, "curve_rows": len(self.curve),
            "max_sharpe": summary["max_sharpe"], "min_variance": summary["min_variance"], "single_assets": singles,
            "covariance": est.cov.tolist(), "correlation": est.corr.tolist(), "observations": est.observations,
            "from": int(times[0]), "to": int(times[-1]), "risk_free": self.risk_free,
        }, self.curve + self._revalue_path())
        self.component("cloud", {"type": "scatter", "title": "Random portfolios", "columns": ["volatility", "return", "sharpe"]},
                       np.column_stack([rc.vol, rc.ret, rc.sharpe]).tolist())
        self.log(f"frontier computed from {est.observations} returns: {len(self.frontier.rets)} turning points")
        return True

    def _resolve(self, name: str) -> np.ndarray:
        """A named target as weights on the current frontier (InvalidInput when it does not exist)."""
        assert self.frontier is not None
        kind, _, arg = name.partition(":")
        if kind == "max_sharpe":
            return self.frontier.max_sharpe(self.risk_free).weights
        if kind == "min_variance":
            return self.frontier.min_variance(self.risk_free).weights
        try:
            value = float(arg)
        except ValueError:
            raise InvalidInput("invalid_target",
                               f"target must be max_sharpe, min_variance, return:R, volatility:V or point:N, got {name!r}") from None
        if kind == "return":
            return self.frontier.at_return(value, self.risk_free).weights
        if kind == "volatility":
            return self.frontier.at_volatility(value, self.risk_free).weights
        if kind == "point" and value.is_integer() and 0 <= value < self.points:
            return self.frontier.points(self.points, self.risk_free)[int(value)].weights
        raise InvalidInput(
            "invalid_target",
            f"target must be max_sharpe, min_variance, return:R, volatility:V or point:N (0..{self.points - 1}), got {name!r}",
        )

    def _revalue_path(self) -> list[list[Any]]:
        self.path_rows = [self._path_point(t, w) for t, w in self.held]
        return self.path_rows

    def _path_point(self, time: int, weights: np.ndarray) -> list[Any]:
        """Held weights as a point of the frontier's plane: the quote is cash (no return, no risk), so it may lie inside."""
        assert self.frontier is not None
        est = self.frontier.est
        ret = float(weights @ est.mu)
        vol = math.sqrt(max(float(weights @ est.cov @ weights), 0.0))
        return [ret, vol, (ret - self.risk_free) / vol if vol > 0 else None, *weights.tolist(), time]

    def _publish_target(self, status: str) -> None:
        shown = self.goal if self.pending is None else self.pending[1]
        switch = {"name": "resume", "label": "Resume rebalancing"} if self.paused else {"name": "pause", "label": "Pause rebalancing"}
        spec = {
            "type": "form", "title": "Target portfolio", "status": status, "assets": self.assets, "paused": self.paused,
            "weights": None if shown is None else dict(zip(self.assets, shown.tolist(), strict=True)),
            "fields": [{"name": "weights", "type": "weights", "assets": self.assets,
                        "value": None if shown is None else dict(zip(self.assets, shown.tolist(), strict=True))}],
            "actions": [{"name": "pick", "label": "Choose these weights"},
                        {"name": "confirm", "label": "Trade to it", "confirm": True, "fields": False},
                        {"name": "cancel", "label": "Cancel", "fields": False}, {**switch, "confirm": True, "fields": False}],
        }
        self.component("target", spec)

    def _set_goal(self, name: str, weights: np.ndarray) -> None:
        self.goal, self.named, self.pending = weights, name, None
        self.phase = "trading"
        self.log(f"target {name or 'custom'}: " + ", ".join(f"{a} {w:.2%}" for a, w in zip(self.assets, weights, strict=True) if w > 5e-5))
        self._publish_target("trading")

    # --- user input ----------------------------------------------------------------------------------
    def on_input(self, component_id: str, value: Any) -> None:
        if component_id not in ("target", "frontier") or not isinstance(value, dict) or self.frontier is None:
            self.log(f"ignored input to {component_id}: {value!r}", level="warning")
            return
        action = value.get("action")
        try:
            if action == "pick":
                self._pick(value)
            elif action == "choose":
                self._set_goal(*self._pick(value))
            elif action == "confirm" and self.pending is not None:
                self._set_goal(*self.pending)
            elif action in ("pause", "resume"):
                self._pause(action == "pause")
            elif action == "cancel":
                self.pending = None
                self._publish_target(self.phase)
            else:
                raise InvalidInput("invalid_input", f"unknown or untimely action {action!r}")
        except InvalidInput as exc:
            self.log(f"{exc.code}: {exc.message}", level="warning")

    def _pause(self, paused: bool) -> None:
        """Stop or restart the rebalancing; orders already sent go on (a market order fills at once)."""
        if paused == self.paused:
            raise InvalidInput("invalid_input", f"the rebalancing is already {'paused' if paused else 'running'}")
        self.paused = paused
        self.log("rebalancing paused: no order until it is resumed" if paused else "rebalancing resumed")
        self._publish_target(self.phase)

    def _pick(self, value: dict[str, Any]) -> tuple[str, np.ndarray]:
        assert self.frontier is not None
        if "weights" in value:
            given = value["weights"]
            if (not isinstance(given, dict) or set(given) - set(self.assets)
                    or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in given.values())):
                raise InvalidInput("invalid_weights", f"weights map assets of this run ({', '.join(self.assets)}) to numbers")
            weights = fr.portfolio([float(given.get(a, 0.0)) for a in self.assets], self.frontier.est, self.risk_free).weights
            pending: tuple[str, np.ndarray] = ("", weights)
        else:
            name = f"point:{value['point']}" if "point" in value else str(value.get("target", ""))
            pending = (name, self._resolve(name))
        self.pending = pending
        self.phase = "confirming" if self.phase in ("choosing", "confirming") else self.phase
        self._publish_target("confirming")
        return pending

    # --- one step -------------------------------------------------------------------------------------
    def _step(self, candle: dict[str, Any]) -> None:
        if self.phase == "warming":
            if not self._compute():
                return
            self.phase = "choosing"
            self._publish_target("choosing")
            self.component("path", {"type": "table", "title": "Path to the frontier",
                                    "columns": ["time", *self.assets, self.quote, "distance"]})
            self.component("slices", {"type": "table", "title": "Order slices",
                                      "columns": ["time", "symbol", "side", "size", "depth", "limit"]})
            if self.target:
                self._set_goal(self.target, self._resolve(self.target))
        elif self.recompute_every and self.time - self.computed_at >= self.recompute_every and self._compute() and self.named:
            self.goal = self._resolve(self.named)
        if self.goal is None or self.open_orders or self.paused:
            return
        weights, equity, prices = self._weights()
        distance = float(np.abs(weights - self.goal).max())
        if self.phase == "holding":
            if self.drift and distance > self.drift:
                self.phase = "trading"
                self.log(f"drift {distance:.2%} above {self.drift:.2%}: rebalancing")
            else:
                return
        self.path.append([self.time, *weights.tolist(), max(0.0, 1.0 - float(weights.sum())), distance])
        self.update_component("path", data=self.path)
        self.held.append((self.time, weights))
        self.path_rows.append(self._path_point(self.time, weights))
        self.update_component("frontier", data=self.curve + self.path_rows)
        if distance <= self.tolerance:
            self.phase = "holding"
            self.reached.append([self.time, *weights.tolist()])
            self.log(f"target reached within {self.tolerance:.2%} (largest gap {distance:.3%})")
            self._publish_target("reached")
            return
        self._trade(weights, equity, prices)

    def _weights(self) -> tuple[np.ndarray, float, np.ndarray]:
        prices = np.array([self.price(s) for s in self.assets])
        held = np.array([float(self.balance(s.split("/")[0])) for s in self.assets]) * prices
        equity = float(self.balance(self.quote)) + float(held.sum())
        return held / equity, equity, prices

    def _depth(self, symbol: str, side: str) -> float | None:
        """Visible size on the side a market order takes: book levels (asks for buys), or the last candle's volume."""
        if self.books is None:
            volume = self.candles(symbol, self.timeframe, 1)["volume"]
            return float(volume[-1]) if len(volume) else None
        book = self.books.get(symbol)
        if book is None:
            return None
        return float(sum(size for _, size in book["asks" if side == "buy" else "bids"]))

    def _slice(self, symbol: str, side: str, wanted: float, price: float) -> None:
        """One market order of at most `depth_share` of the visible depth; skipped below `min_notional`."""
        depth = self._depth(symbol, side)
        if not depth:
            return
        limit = self.depth_share * depth
        size = float(min(wanted, limit))
        if size * price < self.min_notional:
            return
        self.slices.append([self.time, symbol, side, size, depth, limit])
        self.order(side, symbol, size=size)

    def _trade(self, weights: np.ndarray, equity: float, prices: np.ndarray) -> None:
        gaps = self.goal - weights
        for i in np.argsort(gaps):  # sells first: they free quote for the next steps
            if gaps[i] >= 0:
                break
            base = self.assets[i].split("/")[0]
            self._slice(self.assets[i], "sell", min(-gaps[i] * equity / prices[i], float(self.available(base))), prices[i])
        budget = float(self.available(self.quote))
        for i in np.argsort(-gaps):  # then buys, the largest shortfall first, within the available quote
            if gaps[i] <= 0 or budget <= 0:
                break
            size = min(gaps[i] * equity, budget / _MARGIN) / prices[i]
            before = len(self.slices)
            self._slice(self.assets[i], "buy", size, prices[i])
            if len(self.slices) > before:
                budget -= self.slices[-1][3] * prices[i] * _MARGIN
        if self.slices:
            self.update_component("slices", data=self.slices)

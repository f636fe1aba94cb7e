"""Markowitz portfolio optimisation: return estimates, the exact long-only efficient frontier, random portfolios.

Why an exact frontier: sampling random mixes (what the seed did) never reaches the frontier
and is slow to get close. The long-only frontier with a budget and per-asset bounds is a
parametric quadratic programme, solved here by the critical line algorithm (Markowitz 1956;
Niedermayer & Niedermayer 2010): starting from the highest-return portfolio, lambda (the
return appetite) falls to zero and the set of assets strictly inside their bounds changes
only at finitely many turning points. Between two turning points the optimal weights are
linear in the target return, so every point of the frontier (a target return, a target
volatility, the maximum Sharpe ratio) is an exact interpolation of two turning points; the
whole 100-point frontier costs one pass of small linear solves.

Definitions (also in docs/FRONTIER.md): simple returns of closes by default (`log` on
request); expected return = mean periodic return x periods per year (arithmetic
annualisation, PyPortfolioOpt's `mean_historical_return(compounding=False)`); covariance =
sample covariance (ddof 1) x periods per year, or Ledoit-Wolf shrinkage towards a scaled
identity (sklearn's `ledoit_wolf`, the same estimator PyPortfolioOpt uses); periods per year
= 365 days / timeframe. Sharpe = (return - risk_free) / volatility.

Pure: no I/O, no clock, randomness only from a generator the caller passes. Every refusal is
an InvalidInput with a stable code: `too_few_assets`, `duplicate_assets`, `no_overlapping_history`,
`too_few_observations`, `invalid_prices`, `singular_covariance`, `infeasible_bounds`,
`invalid_bounds`, `target_out_of_range`, `no_return_above_risk_free`, `invalid_weights`,
`invalid_parameter`. A result never holds a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from coinwire.core.errors import InvalidInput

__all__ = [
    "Estimates",
    "Frontier",
    "Portfolio",
    "RandomCloud",
    "align_closes",
    "efficient_frontier",
    "estimate",
    "periods_per_year",
    "portfolio",
    "random_portfolios",
    "returns_of",
    "summary",
    "window_slice",
]

FloatArray = npt.NDArray[np.float64]
YEAR_SECONDS: Final = 365 * 86_400
DEFAULT_RISK_FREE: Final = 0.03
_EPS: Final = 1e-12
_COND_LIMIT: Final = 1e12  # a covariance worse conditioned than this is treated as singular


# --- input: aligned closes, returns, estimates --------------------------------------------------------------
def align_closes(
    assets: Sequence[str], times: Sequence[npt.ArrayLike], closes: Sequence[npt.ArrayLike]
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Closes of every asset on the timestamps they all share: (times, matrix rows=time, cols=asset).

    Why the intersection: a return is only comparable across assets over the same interval,
    and filling gaps would invent prices.
    """
    _check_assets(assets)
    if not (len(assets) == len(times) == len(closes)):
        raise InvalidInput("invalid_parameter", "assets, times and closes must have one entry per asset")
    ts = [np.asarray(t, dtype=np.int64) for t in times]
    common = ts[0]
    for t in ts[1:]:
        common = np.intersect1d(common, t, assume_unique=False)
    if len(common) < 3:
        spans = ", ".join(f"{a} {int(t[0])}..{int(t[-1])}" if len(t) else f"{a} empty" for a, t in zip(assets, ts, strict=True))
        raise InvalidInput(
            "no_overlapping_history",
            f"the assets share {len(common)} timestamps; at least 3 are needed ({spans})",
            assets=list(assets),
        )
    matrix = np.empty((len(common), len(assets)))
    for j, (t, c) in enumerate(zip(ts, closes, strict=True)):
        values = np.asarray(c, dtype=np.float64)
        matrix[:, j] = values[np.searchsorted(t, common)] if np.all(t[1:] > t[:-1]) else _lookup(t, values, common)
    bad = ~np.isfinite(matrix) | (matrix <= 0)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise InvalidInput("invalid_prices", f"{assets[j]} has a close that is not a positive number", asset=assets[j])
    return common, matrix


def _lookup(t: npt.NDArray[np.int64], values: FloatArray, wanted: npt.NDArray[np.int64]) -> FloatArray:
    order = np.argsort(t, kind="stable")
    return values[order][np.searchsorted(t[order], wanted)]


def window_slice(times: npt.NDArray[np.int64], window_seconds: int | None) -> slice:
    """The rows of the last `window_seconds` (None: all): closes at or after last - window."""
    if window_seconds is None:
        return slice(0, len(times))
    if window_seconds <= 0:
        raise InvalidInput("invalid_window", f"a window must be a positive duration, got {window_seconds} s")
    return slice(int(np.searchsorted(times, times[-1] - window_seconds, side="left")), len(times))


def periods_per_year(timeframe_seconds: int) -> float:
    """Bars in a 365-day year: 8,760 for 1h, 105,120 for 5m."""
    if timeframe_seconds <= 0:
        raise InvalidInput("invalid_timeframe", f"timeframe must be positive, got {timeframe_seconds} s")
    return YEAR_SECONDS / timeframe_seconds


def returns_of(prices: FloatArray, kind: str = "simple") -> FloatArray:
    """Periodic returns of a close matrix (rows=time): `simple` p1/p0 - 1, or `log` ln(p1/p0)."""
    if kind == "simple":
        return prices[1:] / prices[:-1] - 1.0
    if kind == "log":
        return np.log(prices[1:] / prices[:-1])
    raise InvalidInput("invalid_parameter", f"returns must be 'simple' or 'log', got {kind!r}", parameter="returns")


class Estimates:
    """Annualised expected returns, covariance and correlation of aligned assets."""

    __slots__ = ("assets", "mu", "cov", "corr", "observations", "periods")

    def __init__(self, assets: Sequence[str], mu: FloatArray, cov: FloatArray, observations: int, periods: float) -> None:
        self.assets = list(assets)
        self.mu = mu
        self.cov = cov
        sd = np.sqrt(np.diag(cov))
        self.corr = cov / np.outer(sd, sd)
        self.observations = observations
        self.periods = periods


def estimate(
    assets: Sequence[str],
    prices: FloatArray,
    periods: float,
    covariance: str = "sample",
    returns: str = "simple",
) -> Estimates:
    """Annualised estimates from a close matrix (rows=time, cols=asset) with `periods` bars a year.

    Refuses what would make the frontier meaningless: fewer than two assets, fewer returns
    than assets + 1 for a sample covariance, an asset whose price never moves, and a
    singular covariance (duplicate or perfectly collinear assets), naming the culprits.
    """
    _check_assets(assets)
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 2 or prices.shape[1] != len(assets):
        raise InvalidInput("invalid_parameter", "prices must be a matrix with one column per asset")
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise InvalidInput("invalid_prices", "every close must be a positive number")
    r = returns_of(prices, returns)
    t, n = r.shape
    if t < 2 or (covariance == "sample" and t <= n):
        raise InvalidInput(
            "too_few_observations",
            f"{t} returns for {n} assets: a {covariance} covariance needs more returns than assets "
            "(use a longer window or a finer timeframe)",
            observations=t,
        )
    mu = r.mean(axis=0) * periods
    if covariance == "sample":
        cov = np.cov(r, rowvar=False, ddof=1) * periods
    elif covariance == "ledoit_wolf":
        cov = _ledoit_wolf(r) * periods
    else:
        raise InvalidInput(
            "invalid_parameter", f"covariance must be 'sample' or 'ledoit_wolf', got {covariance!r}", parameter="covariance"
        )
    cov = (cov + cov.T) / 2
    flat = np.flatnonzero(np.diag(cov) <= 0)
    if len(flat):
        raise InvalidInput("singular_covariance", f"{assets[flat[0]]} never moves over the window", asset=assets[flat[0]])
    _check_conditioning(assets, cov)
    return Estimates(assets, mu, cov, t, periods)


def _ledoit_wolf(r: FloatArray) -> FloatArray:
    """Ledoit-Wolf (2004) shrinkage of the (ddof 0) covariance towards mean-variance x identity,
    the formula of sklearn.covariance.ledoit_wolf (what PyPortfolioOpt calls)."""
    x = r - r.mean(axis=0)
    t, n = x.shape
    emp = x.T @ x / t
    target = np.trace(emp) / n
    x2 = x**2
    beta_ = float(np.sum(x2.T @ x2)) / t - float(np.sum(emp**2))
    delta_ = float(np.sum(emp**2)) - 2 * target * np.trace(emp) + n * target**2
    beta_ /= t
    shrinkage = 0.0 if delta_ == 0 else min(beta_, delta_) / delta_
    shrunk: FloatArray = (1 - shrinkage) * emp
    shrunk[np.diag_indices(n)] += shrinkage * target
    return shrunk


def _check_conditioning(assets: Sequence[str], cov: FloatArray) -> None:
    eig = np.linalg.eigvalsh(cov)
    if eig[0] > eig[-1] / _COND_LIMIT:
        return
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 0)
    i, j = (int(k) for k in np.unravel_index(int(np.argmax(np.abs(corr))), corr.shape))
    raise InvalidInput(
        "singular_covariance",
        f"the covariance is singular: {assets[i]} and {assets[j]} move together (correlation "
        f"{corr[i, j]:.6f}); drop one of them or use covariance='ledoit_wolf'",
        assets=[assets[i], assets[j]],
    )


def _check_assets(assets: Sequence[str]) -> None:
    if len(assets) < 2:
        raise InvalidInput("too_few_assets", f"a portfolio needs at least 2 assets, got {len(assets)}")
    seen: set[str] = set()
    for a in assets:
        if a in seen:
            raise InvalidInput("duplicate_assets", f"{a} is listed twice", asset=a)
        seen.add(a)


# --- portfolios -----------------------------------------------------------------------------------------------
class Portfolio:
    """One portfolio: weights (summing to 1), annualised return, volatility and Sharpe ratio."""

    __slots__ = ("weights", "ret", "vol", "sharpe")

    def __init__(self, weights: FloatArray, ret: float, vol: float, sharpe: float) -> None:
        self.weights = weights
        self.ret = ret
        self.vol = vol
        self.sharpe = sharpe

    def to_dict(self, assets: Sequence[str]) -> dict[str, object]:
        return {
            "weights": {a: float(w) for a, w in zip(assets, self.weights, strict=True)},
            "return": self.ret,
            "volatility": self.vol,
            "sharpe": self.sharpe,
        }


def portfolio(weights: npt.ArrayLike, est: Estimates, risk_free: float = DEFAULT_RISK_FREE) -> Portfolio:
    """Metrics of user-given long-only weights (they must sum to 1 within 1e-6)."""
    w = np.asarray(weights, dtype=np.float64)
    n = len(est.assets)
    if w.shape != (n,) or not np.isfinite(w).all():
        raise InvalidInput("invalid_weights", f"weights must be {n} finite numbers, one per asset ({', '.join(est.assets)})")
    if (w < -1e-12).any():
        raise InvalidInput("invalid_weights", "weights must not be negative (long-only)")
    if abs(w.sum() - 1) > 1e-6:
        raise InvalidInput("invalid_weights", f"weights must sum to 1, they sum to {w.sum():.9g}")
    return _metrics(np.clip(w, 0, None), est.mu, est.cov, _risk_free(risk_free))


def _metrics(w: FloatArray, mu: FloatArray, cov: FloatArray, rf: float) -> Portfolio:
    ret = float(w @ mu)
    vol = math.sqrt(max(float(w @ cov @ w), 0.0))
    return Portfolio(w, ret, vol, (ret - rf) / vol if vol > 0 else 0.0)


def _risk_free(rf: float) -> float:
    if not isinstance(rf, (int, float)) or not math.isfinite(rf):
        raise InvalidInput("invalid_parameter", f"risk_free must be a finite number, got {rf!r}", parameter="risk_free")
    return float(rf)


class RandomCloud:
    """Random long-only portfolios (uniform on the simplex): their returns, volatilities and Sharpe ratios."""

    __slots__ = ("ret", "vol", "sharpe", "weights")

    def __init__(self, ret: FloatArray, vol: FloatArray, sharpe: FloatArray, weights: FloatArray | None) -> None:
        self.ret = ret
        self.vol = vol
        self.sharpe = sharpe
        self.weights = weights


def random_portfolios(
    est: Estimates,
    rng: np.random.Generator,
    count: int = 10_000,
    risk_free: float = DEFAULT_RISK_FREE,
    keep_weights: bool = False,
    chunk: int = 131_072,
) -> RandomCloud:
    """`count` random fully invested long-only portfolios, vectorised in chunks (bounded memory).

    Weights are normalised exponentials, i.e. uniform on the simplex (Dirichlet(1)), which
    covers the corners better than normalised uniforms do.
    """
    if not isinstance(count, int) or count < 1:
        raise InvalidInput("invalid_parameter", f"count must be a positive integer, got {count!r}", parameter="count")
    rf = _risk_free(risk_free)
    n = len(est.assets)
    ret = np.empty(count)
    var = np.empty(count)
    kept = np.empty((count, n)) if keep_weights else None
    for start in range(0, count, chunk):
        stop = min(count, start + chunk)
        w = rng.standard_exponential((stop - start, n))
        w /= w.sum(axis=1, keepdims=True)
        ret[start:stop] = w @ est.mu
        var[start:stop] = np.einsum("ij,ij->i", w @ est.cov, w)
        if kept is not None:
            kept[start:stop] = w
    vol = np.sqrt(np.maximum(var, 0.0))
    return RandomCloud(ret, vol, (ret - rf) / vol, kept)


# --- the exact frontier -----------------------------------------------------------------------------------------
class Frontier:
    """The efficient frontier as its turning points (highest return first, minimum variance last).

    Between neighbouring turning points the optimal weights are linear in the target return,
    so `at_return`, `at_volatility` and `max_sharpe` are exact interpolations.
    """

    __slots__ = ("est", "lower", "upper", "weights", "rets", "vars_", "lambdas")

    def __init__(self, est: Estimates, lower: FloatArray, upper: FloatArray, weights: FloatArray, lambdas: FloatArray) -> None:
        self.est = est
        self.lower = lower
        self.upper = upper
        self.weights = weights  # turning points, rows, return decreasing
        self.lambdas = lambdas
        self.rets = weights @ est.mu
        self.vars_ = np.einsum("ij,ij->i", weights @ est.cov, weights)

    @property
    def min_return(self) -> float:
        return float(self.rets[-1])

    @property
    def max_return(self) -> float:
        return float(self.rets[0])

    def min_variance(self, risk_free: float = DEFAULT_RISK_FREE) -> Portfolio:
        return _metrics(self._clean(self.weights[-1].copy()), self.est.mu, self.est.cov, _risk_free(risk_free))

    def at_return(self, target: float, risk_free: float = DEFAULT_RISK_FREE) -> Portfolio:
        """The least-variance portfolio with expected return `target` (min-variance return .. max return)."""
        lo, hi = self.min_return, self.max_return
        _check_target("return", target, lo, hi)
        return self._at_returns(np.array([min(max(target, lo), hi)]), _risk_free(risk_free))[0]

    def _at_returns(self, targets: FloatArray, rf: float) -> list[Portfolio]:
        rets = self.rets[::-1]  # increasing
        w = self.weights[::-1]
        k = np.clip(np.searchsorted(rets, targets, side="left"), 1, max(1, len(rets) - 1))
        out = []
        for target, i in zip(targets, k, strict=True):
            if len(rets) == 1:
                weights = w[0].copy()
            else:
                span = rets[i] - rets[i - 1]
                t = 0.0 if span <= 0 else min(1.0, max(0.0, (target - rets[i - 1]) / span))
                weights = w[i - 1] + t * (w[i] - w[i - 1])
            out.append(_metrics(self._clean(weights), self.est.mu, self.est.cov, rf))
        return out

    def volatility_at(self, targets: npt.ArrayLike) -> FloatArray:
        """The frontier's (least) volatility at each target return, vectorised; returns outside
        min-variance .. max return are clipped to the ends (for plots and checks of clouds)."""
        rets = self.rets[::-1]
        w = self.weights[::-1]
        x = np.clip(np.asarray(targets, dtype=np.float64), rets[0], rets[-1])
        if len(rets) == 1:
            return np.full(x.shape, math.sqrt(self.vars_[0]))
        i = np.clip(np.searchsorted(rets, x, side="left"), 1, len(rets) - 1)
        span = rets[i] - rets[i - 1]
        t = np.where(span > 0, (x - rets[i - 1]) / np.where(span > 0, span, 1.0), 0.0)
        weights = w[i - 1] + np.clip(t, 0.0, 1.0)[:, None] * (w[i] - w[i - 1])
        vols: FloatArray = np.sqrt(np.maximum(np.einsum("ij,ij->i", weights @ self.est.cov, weights), 0.0))
        return vols

    def points(self, count: int = 100, risk_free: float = DEFAULT_RISK_FREE) -> list[Portfolio]:
        """`count` portfolios at evenly spaced returns from the minimum-variance return to the maximum."""
        if not isinstance(count, int) or count < 2 or count > 100_000:
            raise InvalidInput("invalid_parameter", f"points must be an integer from 2 to 100000, got {count!r}", parameter="points")
        return self._at_returns(np.linspace(self.min_return, self.max_return, count), _risk_free(risk_free))

    def at_volatility(self, target: float, risk_free: float = DEFAULT_RISK_FREE) -> Portfolio:
        """The highest-return portfolio with volatility `target` (min volatility .. the max-return portfolio's)."""
        vols = np.sqrt(self.vars_[::-1])
        lo, hi = float(vols[0]), float(vols[-1])
        _check_target("volatility", target, lo, hi)
        rf = _risk_free(risk_free)
        w = self.weights[::-1]
        i = int(np.clip(np.searchsorted(vols, target, side="left"), 1, max(1, len(vols) - 1)))
        if len(vols) == 1:
            return _metrics(w[0].copy(), self.est.mu, self.est.cov, rf)
        a, d = w[i - 1], w[i] - w[i - 1]
        cov = self.est.cov
        # variance along the segment: va + 2 b t + c t^2 = target^2, increasing on [0, 1]
        va, b, c = float(a @ cov @ a), float(a @ cov @ d), float(d @ cov @ d)
        goal = min(max(target, lo), hi) ** 2
        if c <= _EPS:
            t = 0.0 if abs(b) <= _EPS else (goal - va) / (2 * b)
        else:
            disc = max(b * b - c * (va - goal), 0.0)
            t = (-b + math.sqrt(disc)) / c
        return _metrics(self._clean(a + min(1.0, max(0.0, t)) * d), self.est.mu, cov, rf)

    def max_sharpe(self, risk_free: float = DEFAULT_RISK_FREE) -> Portfolio:
        """The tangency portfolio: the frontier point with the highest (return - risk_free) / volatility.

        On a segment w = a + t d the Sharpe ratio (p + q t) / sqrt(va + 2 b t + c t^2) has one
        stationary point, t* = (p b - q va) / (q b - p c); the best of these and the turning points wins.
        """
        rf = _risk_free(risk_free)
        if self.max_return <= rf:
            raise InvalidInput(
                "no_return_above_risk_free",
                f"no portfolio returns more than the risk-free rate {rf:g} (the best returns {self.max_return:.6g})",
                risk_free=rf,
            )
        cov, mu = self.est.cov, self.est.mu
        best_w = self.weights[0]
        best = (self.rets[0] - rf) / math.sqrt(self.vars_[0])
        for k in range(len(self.rets)):
            s = (self.rets[k] - rf) / math.sqrt(self.vars_[k])
            if s > best:
                best, best_w = s, self.weights[k]
        for k in range(len(self.rets) - 1):
            a, d = self.weights[k], self.weights[k + 1] - self.weights[k]
            p, q = float(a @ mu) - rf, float(d @ mu)
            va, b, c = float(a @ cov @ a), float(a @ cov @ d), float(d @ cov @ d)
            den = q * b - p * c
            if abs(den) <= _EPS * max(1.0, abs(q * b), abs(p * c)):
                continue
            t = (p * b - q * va) / den
            if 0.0 < t < 1.0:
                v = va + 2 * b * t + c * t * t
                if v > 0:
                    s = (p + q * t) / math.sqrt(v)
                    if s > best:
                        best, best_w = s, a + t * d
        return _metrics(self._clean(np.array(best_w, dtype=np.float64)), mu, cov, rf)

    def _clean(self, w: FloatArray) -> FloatArray:
        """Interpolation rounding: clip into the bounds and renormalise the budget on the free assets."""
        w = np.clip(w, self.lower, self.upper)
        w[w - self.lower < 1e-13] = self.lower[w - self.lower < 1e-13]
        excess = w.sum() - 1.0
        if excess != 0.0:
            free = (w > self.lower + _EPS) & (w < self.upper - _EPS)
            if free.any():
                w[free] -= excess / free.sum()
                w = np.clip(w, self.lower, self.upper)
        return w

    def single_assets(self, risk_free: float = DEFAULT_RISK_FREE) -> list[Portfolio]:
        """Each asset alone (for plots next to the frontier; ignores the bounds)."""
        rf = _risk_free(risk_free)
        return [_metrics(np.eye(len(self.est.assets))[i], self.est.mu, self.est.cov, rf) for i in range(len(self.est.assets))]


def _check_target(kind: str, target: float, lo: float, hi: float) -> None:
    """A target return or volatility must be a number within the frontier's range (to rounding)."""
    tol = 1e-12 * max(1.0, abs(lo), abs(hi))
    if not (isinstance(target, (int, float)) and math.isfinite(target)) or not lo - tol <= target <= hi + tol:
        raise InvalidInput(
            "target_out_of_range",
            f"target {kind} {target!r} is outside the efficient frontier's {lo:.6g} .. {hi:.6g}",
            minimum=lo,
            maximum=hi,
        )


def efficient_frontier(
    est: Estimates,
    lower: npt.ArrayLike | float | None = None,
    upper: npt.ArrayLike | float | None = None,
) -> Frontier:
    """The exact long-only efficient frontier (weights sum to 1, lower <= w <= upper) by the critical line algorithm."""
    n = len(est.assets)
    lb = _bounds(lower, 0.0, n, "lower")
    ub = _bounds(upper, 1.0, n, "upper")
    if (lb < 0).any() or (ub > 1).any() or (lb > ub).any():
        raise InvalidInput("invalid_bounds", "bounds must satisfy 0 <= lower <= upper <= 1 for every asset")
    if lb.sum() > 1 + 1e-12 or ub.sum() < 1 - 1e-12:
        raise InvalidInput(
            "infeasible_bounds",
            f"no fully invested portfolio fits the bounds: lower bounds sum to {lb.sum():.6g}, upper to {ub.sum():.6g}",
        )
    weights, lambdas = _critical_line(est.mu, est.cov, lb, ub)
    return Frontier(est, lb, ub, weights, lambdas)


def _bounds(value: npt.ArrayLike | float | None, default: float, n: int, name: str) -> FloatArray:
    if value is None:
        return np.full(n, default)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise InvalidInput("invalid_bounds", f"{name} bounds must be one number or {n} finite numbers")
    return arr


def _before(cand: float, lam: float, just_changed: bool) -> bool:
    """Whether an event at `cand` comes next when lam is at `lam`: at or below it (a degenerate
    vertex can have several events at one lam), strictly below for the asset that just moved,
    which must not undo its own event."""
    if just_changed:
        return cand < lam * (1 - 1e-12) - 1e-15
    return cand <= lam * (1 + 1e-12) + 1e-15


def _critical_line(mu: FloatArray, cov: FloatArray, lb: FloatArray, ub: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Turning points of min 1/2 w'Cw - lam mu'w s.t. 1'w = 1, lb <= w <= ub, as lam falls from +inf to 0.

    With F the free assets (strictly inside their bounds) and B the rest, the KKT system
    [C_FF 1; 1' 0] [w_F; g] = [lam mu_F - C_FB w_B; 1 - 1'w_B] gives w_F and g linear in lam:
    (alpha + lam beta). The next turning point is the largest lam below the current one at which
    a free weight reaches a bound, or a bound asset's gradient (C w - lam mu + g)_j changes sign
    (it wants to move inside). Each step is one solve of an (|F|+1)-square system.
    """
    n = len(mu)
    w = lb.copy()
    order = np.argsort(-mu, kind="stable")
    free = np.zeros(n, dtype=bool)
    last = int(order[0])
    for i in order:  # the maximum-return portfolio: fill the best assets up to their upper bounds
        room = 1.0 - w.sum()
        if room <= 1e-14:
            break
        w[i] = min(ub[i], lb[i] + room)
        last = int(i)
    free[last] = True  # the asset filled last carries the budget
    turning = [w.copy()]
    lambdas = [math.inf]
    lam = math.inf
    changed = -1  # the asset of the last event: it may not undo that event at the same lam
    for _ in range(10 * n + 10):
        f = np.flatnonzero(free)
        b = np.flatnonzero(~free)
        k = len(f)
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = cov[np.ix_(f, f)]
        kkt[:k, k] = 1.0
        kkt[k, :k] = 1.0
        rhs_const = np.empty(k + 1)
        rhs_const[:k] = -cov[np.ix_(f, b)] @ w[b]
        rhs_const[k] = 1.0 - w[b].sum()
        rhs_lam = np.zeros(k + 1)
        rhs_lam[:k] = mu[f]
        sol = np.linalg.solve(kkt, np.column_stack([rhs_const, rhs_lam]))
        alpha, beta = sol[:, 0], sol[:, 1]
        # event (a): a free weight reaches a bound as lam falls
        best_lam, event, target = 0.0, -1, 0.0
        for idx in range(k):
            i = f[idx]
            if beta[idx] > _EPS:
                cand, bound = (lb[i] - alpha[idx]) / beta[idx], lb[i]
            elif beta[idx] < -_EPS:
                cand, bound = (ub[i] - alpha[idx]) / beta[idx], ub[i]
            else:
                continue
            if _before(cand, lam, i == changed) and cand > best_lam:
                best_lam, event, target = min(cand, lam), int(i), bound
        # event (b): a bound asset's gradient turns so that it wants to move inside
        if len(b):
            cwf_a = cov[np.ix_(b, f)] @ alpha[:k] + cov[np.ix_(b, b)] @ w[b] + alpha[k]
            cwf_b = cov[np.ix_(b, f)] @ beta[:k] - mu[b] + beta[k]
            for idx, j in enumerate(b):
                if abs(cwf_b[idx]) <= _EPS:
                    continue
                cand = -cwf_a[idx] / cwf_b[idx]
                # at lb the gradient is >= 0 and must fall through 0; at ub <= 0 and rise through 0
                at_lower = w[j] <= lb[j] + _EPS and lb[j] < ub[j]
                at_upper = w[j] >= ub[j] - _EPS and lb[j] < ub[j]
                slope_ok = (at_lower and cwf_b[idx] > 0) or (at_upper and cwf_b[idx] < 0)
                if slope_ok and _before(cand, lam, j == changed) and cand > best_lam:
                    best_lam, event, target = min(cand, lam), int(j), math.nan
        new_lam = best_lam if event >= 0 else 0.0
        w_new = w.copy()
        w_new[f] = alpha[:k] + new_lam * beta[:k]
        if event >= 0 and not math.isnan(target):
            w_new[event] = target
        w = w_new
        turning.append(w.copy())
        lambdas.append(new_lam)
        lam = new_lam
        if event < 0:
            break
        changed = event
        if math.isnan(target):
            free[event] = True
        elif k > 1:
            free[event] = False
    weights = np.array(turning)
    lam_arr = np.array(lambdas)
    # drop repeated points (an event at the start, or two events at one lam)
    keep = np.r_[True, np.abs(np.diff(weights, axis=0)).max(axis=1) > 1e-14]
    return weights[keep], lam_arr[keep]


def summary(frontier: Frontier, points: int = 100, risk_free: float = DEFAULT_RISK_FREE) -> dict[str, object]:
    """The frontier as one JSON-ready object (the CLI's --json, the API's answer, the strategy's component):
    `{assets, risk_free, max_sharpe, min_variance, frontier: [{return, volatility, sharpe, weights}]}`.

    `max_sharpe` is null when no portfolio returns more than the risk-free rate.
    """
    assets = frontier.est.assets
    try:
        best: dict[str, object] | None = frontier.max_sharpe(risk_free).to_dict(assets)
    except InvalidInput as exc:
        if exc.code != "no_return_above_risk_free":
            raise
        best = None
    return {
        "assets": list(assets),
        "risk_free": float(risk_free),
        "observations": frontier.est.observations,
        "periods_per_year": frontier.est.periods,
        "max_sharpe": best,
        "min_variance": frontier.min_variance(risk_free).to_dict(assets),
        "frontier": [p.to_dict(assets) for p in frontier.points(points, risk_free)],
    }

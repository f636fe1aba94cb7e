"""core.frontier: estimates, the exact frontier (checked by its optimality conditions), random clouds, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core import frontier as fr
from coinwire.core.errors import InvalidInput


def synthetic(seed: int, n: int, t: int = 400, periods: float = 8760.0) -> fr.Estimates:
    """Estimates from a random price walk with drifts and a common factor (a realistic covariance)."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(0, 0.01, (t, 1))
    r = factor * rng.uniform(0.2, 1.5, n) + rng.normal(rng.uniform(-2e-4, 6e-4, n), rng.uniform(0.004, 0.02, n), (t, n))
    prices = 100 * np.cumprod(1 + np.vstack([np.zeros(n), r]), axis=0)
    return fr.estimate([f"A{i}/USDT" for i in range(n)], prices, periods)


def kkt_residual(w: np.ndarray, est: fr.Estimates, lb: np.ndarray, ub: np.ndarray, tol: float = 1e-7) -> float:
    """How far `w` is from optimal for min w'Cw s.t. 1'w = 1, mu'w = mu'w, lb <= w <= ub.

    Optimal iff some g1, g2 make the gradient C w - g1 1 - g2 mu zero on free assets, >= 0 at
    lower bounds and <= 0 at upper bounds; returns the worst violation (0 when optimal). A
    point with fewer than two free assets is a vertex of the feasible set at its own return
    (the top of the frontier): the caller checks it is the highest return instead.
    """
    grad = est.cov @ w
    free = (w > lb + tol) & (w < ub - tol)
    if free.sum() < 2:
        return 0.0
    basis = np.column_stack([np.ones(len(w)), est.mu])
    coef, *_ = np.linalg.lstsq(basis[free], grad[free], rcond=None)
    g = grad - basis @ coef
    scale = float(np.abs(grad).max())
    viol = np.abs(g[free]).max(initial=0.0)
    at_lb = ~free & (w <= lb + tol)
    at_ub = ~free & (w >= ub - tol)
    viol = max(viol, float(np.maximum(-g[at_lb], 0).max(initial=0.0)), float(np.maximum(g[at_ub], 0).max(initial=0.0)))
    return viol / scale


# --- estimates ------------------------------------------------------------------------------------------------
def test_periods_per_year_matches_the_timeframe() -> None:
    assert fr.periods_per_year(3600) == 8760
    assert fr.periods_per_year(300) == 105_120
    with pytest.raises(InvalidInput) as e:
        fr.periods_per_year(0)
    assert e.value.code == "invalid_timeframe"


def test_estimates_are_annualised_simple_returns_and_sample_covariance() -> None:
    prices = np.array([[100, 10], [110, 11], [99, 10.5], [108.9, 10.0], [110, 10.2]], dtype=float)
    est = fr.estimate(["A/USDT", "B/USDT"], prices, 8760)
    r = prices[1:] / prices[:-1] - 1
    assert np.allclose(est.mu, r.mean(axis=0) * 8760)
    assert np.allclose(est.cov, np.cov(r.T, ddof=1) * 8760)
    assert np.allclose(np.diag(est.corr), 1)
    log = fr.estimate(["A/USDT", "B/USDT"], prices, 8760, returns="log")
    assert np.allclose(log.mu, np.log(prices[1:] / prices[:-1]).mean(axis=0) * 8760)


def test_ledoit_wolf_shrinks_towards_a_scaled_identity() -> None:
    est = synthetic(3, 6, t=50)
    prices = 100 * np.cumprod(1 + np.random.default_rng(3).normal(0, 0.01, (51, 6)), axis=0)
    sample = fr.estimate([f"A{i}/USDT" for i in range(6)], prices, 365, covariance="sample")
    lw = fr.estimate([f"A{i}/USDT" for i in range(6)], prices, 365, covariance="ledoit_wolf")
    assert np.isclose(np.trace(lw.cov), np.trace(sample.cov) * 49 / 50)  # ddof 0, trace kept
    off_lw = np.abs(lw.cov - np.diag(np.diag(lw.cov))).sum()
    off_s = np.abs(sample.cov - np.diag(np.diag(sample.cov))).sum()
    assert off_lw < off_s
    assert np.linalg.eigvalsh(lw.cov)[0] > 0
    assert est.cov.shape == (6, 6)


def test_align_keeps_shared_timestamps_only_and_the_window_keeps_the_tail() -> None:
    times, prices = fr.align_closes(
        ["A/USDT", "B/USDT"], [[0, 60, 120, 180, 240], [60, 120, 240, 300]], [[1, 2, 3, 4, 5], [20, 30, 50, 60]]
    )
    assert times.tolist() == [60, 120, 240]
    assert prices.tolist() == [[2, 20], [3, 30], [5, 50]]
    assert fr.window_slice(times, 120) == slice(1, 3)
    assert fr.window_slice(times, None) == slice(0, 3)


# --- bad input: a stable code naming the cause ---------------------------------------------------------------
def code_of(call: object) -> str:
    with pytest.raises(InvalidInput) as e:
        call()  # type: ignore[operator]
    return e.value.code


def test_bad_input_is_refused_with_a_code() -> None:
    est = synthetic(1, 4)
    prices = 100 * np.cumprod(1 + np.random.default_rng(2).normal(0, 0.01, (200, 3)), axis=0)
    assert code_of(lambda: fr.estimate(["A/USDT"], prices[:, :1], 365)) == "too_few_assets"
    assert code_of(lambda: fr.estimate(["A/USDT", "A/USDT", "B/USDT"], prices, 365)) == "duplicate_assets"
    assert code_of(lambda: fr.align_closes(["A", "B"], [[0, 60, 120], [180, 240, 300]], [[1, 2, 3], [1, 2, 3]])) == (
        "no_overlapping_history"
    )
    twin = np.column_stack([prices, prices[:, 0] * 3])  # a duplicate asset under another name
    with pytest.raises(InvalidInput) as e:
        fr.estimate(["A/USDT", "B/USDT", "C/USDT", "D/USDT"], twin, 365)
    assert e.value.code == "singular_covariance" and set(e.value.data["assets"]) == {"A/USDT", "D/USDT"}
    flat = prices.copy()
    flat[:, 1] = 5.0
    assert code_of(lambda: fr.estimate(["A/USDT", "B/USDT", "C/USDT"], flat, 365)) == "singular_covariance"
    assert code_of(lambda: fr.estimate(["A/USDT", "B/USDT", "C/USDT"], prices[:3], 365)) == "too_few_observations"
    bad = prices.copy()
    bad[5, 2] = np.nan
    assert code_of(lambda: fr.estimate(["A/USDT", "B/USDT", "C/USDT"], bad, 365)) == "invalid_prices"
    assert code_of(lambda: fr.estimate(["A/USDT", "B/USDT", "C/USDT"], prices, 365, covariance="x")) == "invalid_parameter"
    assert code_of(lambda: fr.efficient_frontier(est, upper=0.2)) == "infeasible_bounds"
    assert code_of(lambda: fr.efficient_frontier(est, lower=0.3)) == "infeasible_bounds"
    assert code_of(lambda: fr.efficient_frontier(est, lower=[0.5, 0, 0, 0], upper=[0.4, 1, 1, 1])) == "invalid_bounds"
    assert code_of(lambda: fr.efficient_frontier(est, lower=[0, 0])) == "invalid_bounds"
    frontier = fr.efficient_frontier(est)
    assert code_of(lambda: frontier.at_return(frontier.max_return + 1)) == "target_out_of_range"
    assert code_of(lambda: frontier.at_volatility(0.0)) == "target_out_of_range"
    assert code_of(lambda: frontier.at_return(math.nan)) == "target_out_of_range"
    assert code_of(lambda: frontier.max_sharpe(risk_free=frontier.max_return + 0.1)) == "no_return_above_risk_free"
    assert code_of(lambda: frontier.points(1)) == "invalid_parameter"
    assert code_of(lambda: fr.portfolio([0.5, 0.5, 0.5, -0.5], est)) == "invalid_weights"
    assert code_of(lambda: fr.portfolio([0.5, 0.6, 0.0, 0.0], est)) == "invalid_weights"
    assert code_of(lambda: fr.portfolio([1.0, 0.0], est)) == "invalid_weights"
    assert code_of(lambda: fr.random_portfolios(est, np.random.default_rng(0), 0)) == "invalid_parameter"


# --- the frontier ---------------------------------------------------------------------------------------------
def test_frontier_points_are_optimal_by_their_kkt_conditions() -> None:
    est = synthetic(11, 12)
    lb, ub = np.zeros(12), np.ones(12)
    frontier = fr.efficient_frontier(est)
    for p in frontier.points(60):
        assert kkt_residual(p.weights, est, lb, ub) < 1e-8
    for w in frontier.weights:
        assert kkt_residual(w, est, lb, ub) < 1e-8


def test_min_variance_max_sharpe_and_targets_agree_with_each_other() -> None:
    est = synthetic(5, 8)
    frontier = fr.efficient_frontier(est)
    mv = frontier.min_variance()
    # min variance: no frontier point and no random portfolio has a lower volatility
    cloud = fr.random_portfolios(est, np.random.default_rng(1), 20_000)
    assert cloud.vol.min() >= mv.vol - 1e-12
    assert min(p.vol for p in frontier.points(200)) >= mv.vol - 1e-12
    ms = frontier.max_sharpe(0.03)
    assert cloud.sharpe.max() <= ms.sharpe + 1e-12
    assert max(p.sharpe for p in frontier.points(500, 0.03)) <= ms.sharpe + 1e-12
    # a target return / volatility gives back the point it came from
    mid = frontier.at_return((frontier.min_return + frontier.max_return) / 2)
    back = frontier.at_volatility(mid.vol)
    assert np.allclose(back.weights, mid.weights, atol=1e-9) and math.isclose(back.ret, mid.ret, rel_tol=1e-9)
    assert math.isclose(fr.portfolio(ms.weights, est).sharpe, ms.sharpe, rel_tol=1e-12)


def test_bounds_are_honoured_and_the_frontier_is_still_optimal() -> None:
    est = synthetic(7, 6)
    lb = np.array([0.05, 0.0, 0.1, 0.0, 0.0, 0.0])
    ub = np.array([0.4, 0.3, 0.5, 0.25, 0.6, 0.35])
    frontier = fr.efficient_frontier(est, lb, ub)
    for p in frontier.points(50) + [frontier.max_sharpe(risk_free=-2.0), frontier.min_variance()]:
        assert np.all(p.weights >= lb - 1e-12) and np.all(p.weights <= ub + 1e-12)
        assert abs(p.weights.sum() - 1) < 1e-12
        assert kkt_residual(p.weights, est, lb, ub) < 1e-8


def test_summary_is_one_json_object_without_nan() -> None:
    frontier = fr.efficient_frontier(synthetic(2, 5))
    out = fr.summary(frontier, points=10)
    assert out["assets"] == [f"A{i}/USDT" for i in range(5)]
    assert len(out["frontier"]) == 10  # type: ignore[arg-type]
    assert set(out["min_variance"]) == {"weights", "return", "volatility", "sharpe"}  # type: ignore[arg-type]
    values = [p["return"] for p in out["frontier"]] + [p["volatility"] for p in out["frontier"]]  # type: ignore[union-attr,index]
    assert all(math.isfinite(v) for v in values)
    out = fr.summary(frontier, points=3, risk_free=100.0)
    assert out["max_sharpe"] is None


def test_random_cloud_is_seeded_and_chunked_identically() -> None:
    est = synthetic(4, 5)
    a = fr.random_portfolios(est, np.random.default_rng(9), 1000, keep_weights=True)
    b = fr.random_portfolios(est, np.random.default_rng(9), 1000, keep_weights=True, chunk=1000)
    assert np.array_equal(a.ret, b.ret) and a.weights is not None
    assert np.allclose(a.weights.sum(axis=1), 1) and (a.weights >= 0).all()
    assert np.allclose(a.vol, np.sqrt(np.einsum("ij,jk,ik->i", a.weights, est.cov, a.weights)))


# --- properties -----------------------------------------------------------------------------------------------
@st.composite
def problems(draw: st.DrawFn) -> tuple[fr.Estimates, np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 9))
    est = synthetic(draw(st.integers(0, 10_000)), n, t=draw(st.integers(n + 5, 300)))
    if draw(st.booleans()):
        return est, np.zeros(n), np.ones(n)
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    lb = rng.uniform(0, 0.8 / n, n) * rng.integers(0, 2, n)
    ub = np.maximum(lb, rng.uniform(1.2 / n, 1.0, n))
    return est, lb, ub


@settings(max_examples=60, deadline=None)
@given(problems())
def test_property_frontier_weights_bounds_and_monotone_volatility(problem: tuple[fr.Estimates, np.ndarray, np.ndarray]) -> None:
    est, lb, ub = problem
    frontier = fr.efficient_frontier(est, lb, ub)
    points = frontier.points(40)
    for p in points:
        assert abs(p.weights.sum() - 1) < 1e-12
        assert np.all(p.weights >= lb - 1e-12) and np.all(p.weights <= ub + 1e-12)
        assert all(math.isfinite(x) for x in (p.ret, p.vol, p.sharpe))
        assert kkt_residual(p.weights, est, lb, ub) < 1e-7
    vols = np.array([p.vol for p in points])
    assert np.all(np.diff(vols) >= -1e-12 * vols.max())
    assert np.all(np.diff([p.ret for p in points]) >= 0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 10), st.integers(0, 10_000))
def test_property_no_random_portfolio_lies_above_the_frontier(n: int, seed: int) -> None:
    est = synthetic(seed, n)
    frontier = fr.efficient_frontier(est)
    cloud = fr.random_portfolios(est, np.random.default_rng(seed), 3000)
    assert cloud.ret.max() <= frontier.max_return + 1e-12
    assert (cloud.vol >= frontier.volatility_at(cloud.ret) - 1e-12).all()

"""`POST /api/v1/frontier`: the exact efficient frontier of stored history (or server files), for the dashboard.

Body (every field but `assets` optional):

    {"assets": ["BTC/USDT", "ETH/USDT"], "exchange": "binance", "timeframe": "5m", "window": "180d",
     "data": ["/abs/path/folder"], "risk_free": 0.03, "points": 100, "covariance": "sample",
     "returns": "simple", "lower": 0, "upper": {"BTC/USDT": 0.6}, "cloud": 0, "seed": 1,
     "target_return": null, "target_volatility": null}

History comes from where runs find it: the history store under the data directory
(`coinwire data import` / `download`), or `data` paths on the server as `PUT
/runnables/{name}/start` takes them. Answers the CLI's `--json` object `{assets, max_sharpe,
min_variance, frontier, ...}`, plus `target` for a target return or volatility, `cloud` (random
portfolios' `[volatility, return]`) when asked, and `single_assets`. Bad input answers
`{"error": {code, message}}`: 422 for a request that cannot be computed (`too_few_assets`,
`duplicate_assets`, `no_overlapping_history`, `singular_covariance`, `infeasible_bounds`,
`target_out_of_range`, `history_missing`, ...), 400 for a body that is not JSON.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.guard import principal_of
from coinwire.api.json_input import decode_shape
from coinwire.api.rest import error_response, json_response
from coinwire.auth.abilities import SERVER_FILES, can
from coinwire.config import Settings
from coinwire.core import frontier as fr
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.history.frontier_input import estimates_from_candles, load_from_files, load_from_store
from coinwire.history.store import HistoryStore, default_history_root, path_inside

__all__ = ["FrontierRequest", "add_frontier_routes", "compute_frontier"]

log = structlog.get_logger("coinwire.frontier")
PATH = "/api/v1/frontier"
_MAX_CLOUD = 100_000
Bound = float | dict[str, float] | None


class FrontierRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the route (and the strategy) takes; see the module docstring."""

    assets: Annotated[list[P.Symbol], msgspec.Meta(max_length=P.MAX_LIST)]
    exchange: P.Name = "binance"
    timeframe: P.Word = "5m"
    window: P.Word = "180d"
    data: Annotated[list[P.Text], msgspec.Meta(max_length=P.MAX_LIST)] | None = None
    risk_free: float = fr.DEFAULT_RISK_FREE
    points: int = 100
    covariance: P.Word = "sample"
    returns: P.Word = "simple"
    lower: Bound = None
    upper: Bound = None
    cloud: int = 0
    seed: int = 1
    target_return: float | None = None
    target_volatility: float | None = None


def _bound(value: Bound, assets: list[str], default: float, name: str) -> Any:
    if not isinstance(value, dict):
        return value
    unknown = sorted(set(value) - set(assets))
    if unknown:
        raise InvalidInput("invalid_bounds", f"{name} names assets not in the request: {', '.join(unknown)}")
    return [float(value.get(a, default)) for a in assets]


def compute_frontier(req: FrontierRequest, history_root: Path, confined: bool = False) -> dict[str, Any]:
    """Load, estimate and solve: the answer of the route (synchronous: run it off the event loop).

    `confined`: the caller may not read the server's other files, so `data` paths must lie in the history directory.
    """
    if not 0 <= req.cloud <= _MAX_CLOUD:
        raise InvalidInput("invalid_parameter", f"cloud must be from 0 to {_MAX_CLOUD}, got {req.cloud}", parameter="cloud")
    if req.target_return is not None and req.target_volatility is not None:
        raise InvalidInput("invalid_parameter", "give target_return or target_volatility, not both")
    if req.data:
        paths = [str(path_inside(p, history_root)) for p in req.data] if confined else req.data
        candles = load_from_files(paths, req.assets, req.timeframe)
    else:
        candles = load_from_store(HistoryStore(history_root), req.exchange, req.assets, req.timeframe)
    est = estimates_from_candles(candles, req.window, req.covariance, req.returns)
    assets = est.assets
    frontier = fr.efficient_frontier(est, _bound(req.lower, assets, 0.0, "lower"), _bound(req.upper, assets, 1.0, "upper"))
    out = fr.summary(frontier, req.points, req.risk_free)
    out["single_assets"] = [{"asset": a, **p.to_dict(assets)} for a, p in zip(assets, frontier.single_assets(req.risk_free), strict=True)]
    if req.target_return is not None:
        out["target"] = frontier.at_return(req.target_return, req.risk_free).to_dict(assets)
    elif req.target_volatility is not None:
        out["target"] = frontier.at_volatility(req.target_volatility, req.risk_free).to_dict(assets)
    if req.cloud:
        rc = fr.random_portfolios(est, np.random.default_rng(req.seed), req.cloud, req.risk_free)
        out["cloud"] = np.column_stack([rc.vol, rc.ret]).tolist()
    return out


def parse_request(body: bytes) -> FrontierRequest:
    """The body as a FrontierRequest: not JSON is `parse_error`, a wrong field `invalid_params`."""
    req = decode_shape(body, FrontierRequest, "invalid frontier request")
    numbers = [req.risk_free] + [x for x in (req.target_return, req.target_volatility) if x is not None]
    if not all(math.isfinite(x) for x in numbers):
        raise InvalidInput("invalid_params", "risk_free and targets must be finite numbers")
    return req


def add_frontier_routes(app: FastAPI, settings: Settings) -> None:
    """Mount `POST /api/v1/frontier`, reading the history store under the settings' data directory."""
    root = default_history_root(settings.data_path)

    async def frontier(request: Request) -> Response:
        """The exact efficient frontier, max-Sharpe and min-variance portfolios of `assets` (see the module docs)."""
        try:
            req = parse_request(await request.body())
            principal = principal_of(request)
            confined = principal is not None and not can(principal, SERVER_FILES.action, SERVER_FILES.subject)
            return json_response(await asyncio.to_thread(compute_frontier, req, root, confined))
        except CoinwireError as exc:
            if exc.code not in ("parse_error", "too_deep") and exc.http_status in (400, 404):
                exc.http_status = 422  # well-formed, but cannot be computed (history_missing too)
            return error_response(exc)
        except Exception:  # a bug: log it, and still answer in the documented error shape
            log.exception("frontier route failed")
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    app.add_api_route(PATH, frontier, methods=["POST"], tags=["portfolio"], summary="frontier")

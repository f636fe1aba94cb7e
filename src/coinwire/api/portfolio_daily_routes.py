"""Daily stats over HTTP: `GET /api/v1/portfolio/{scope}/{id}/daily`, one object per recorded local day.

    GET /api/v1/portfolio/account/7/daily?start=2026-03-01&end=2026-03-31
    -> [{"day": "2026-03-01", "start": 1772323200, "end": 1772409600, "currency": "USD", "status": "recorded",
         "closing": "1012.5", "pnl": "12.5", ...}, ...]

Days are the owner's local days (services.daily_stats records them at the owner's midnight),
`start` and `end` are dates in that zone, inclusive; figures are decimal strings (null: not known,
a "missing" day has none). At most `MAX_DAYS` days per answer; a longer range is paged as the
OHLCV route pages: `X-Next-Start: <the next day>` and a `Link: <...>; rel="next"` header. The scope
and id pass `api.portfolio_access.portfolio_scope` first, so an unknown one and another user's
answer the same 404 `not_found`. Errors: 400 invalid_date, invalid_range, invalid_params.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.guard import principal_of
from coinwire.api.methods import Api
from coinwire.api.portfolio_access import portfolio_scope
from coinwire.api.rest import json_endpoint, paged_response, query_of
from coinwire.core.daily_stats import DailyStats
from coinwire.core.errors import InvalidInput
from coinwire.store.portfolio_daily import FIGURES, load_days

__all__ = ["MAX_DAYS", "add_portfolio_daily_routes", "day_view"]


MAX_DAYS: Final = 400  # days per answer: more than a year, so a year's table is one page
_QUERY_PARAMS: Final = ("start", "end")


def day_view(stats: DailyStats) -> dict[str, Any]:
    """A day as JSON: figures as decimal strings (null when unknown), counts as integers."""
    view: dict[str, Any] = {"day": stats.day, "start": stats.start, "end": stats.end, "currency": stats.currency,
                            "status": stats.status}
    for name in FIGURES:
        figure = getattr(stats, name)
        view[name] = None if figure is None else str(figure.normalize() if figure else 0)
    view.update(trades=stats.trades, closing_trades=stats.closing_trades, winning_trades=stats.winning_trades)
    return view


def _date(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat() if len(value) == 10 else _bad_date(value, field)
    except ValueError:
        return _bad_date(value, field)


def _bad_date(value: str, field: str) -> str:
    raise InvalidInput("invalid_date", f"`{field}` must be a date like 2026-03-29, got {value[:40]!r}", field=field)


def add_portfolio_daily_routes(app: FastAPI, api: Api) -> None:
    """Mount GET /api/v1/portfolio/{scope}/{id}/daily."""

    async def daily(request: Request, scope: str, id: str) -> Response:
        """A portfolio's daily stats in its owner's local days, paged."""
        q = query_of(request, _QUERY_PARAMS)
        start, end = _date(q.get("start"), "start"), _date(q.get("end"), "end")
        if start is not None and end is not None and start > end:
            raise InvalidInput("invalid_range", f"start {start} is after end {end}")
        target = await portfolio_scope(api, principal_of(request), scope, id)
        days = await load_days(api.gateway.store, target.scope, target.scope_id, start=start, end=end, limit=MAX_DAYS + 1)
        following = days[MAX_DAYS].day if len(days) > MAX_DAYS else None
        return paged_response([day_view(d) for d in days[:MAX_DAYS]], request, "X-Next-Start", following,
                              {"start": following} if end is None else {"start": following, "end": end})

    app.add_api_route("/api/v1/portfolio/{scope}/{id}/daily", json_endpoint(daily, "daily stats"), methods=["GET"],
                      tags=["portfolio"], summary="portfolio daily stats")

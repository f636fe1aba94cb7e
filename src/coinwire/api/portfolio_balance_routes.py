"""Balanced by market cap over REST: a user's coins weighed against the top-N coins by market cap.

    GET /api/v1/portfolio/user/{id}/balance?top=10

`{id}` is checked where every portfolio scope is (`portfolio_access.portfolio_scope`): another
user's total is `not_found` (admins: any). The holdings are the tracker's for the user's total
(every account they own, external ones included); the caps and the coins' prices are the
reference data's latest top-coins list (refdata, USD), a coin outside it priced through
`convert`; the answer is `core.cap_balance` with values in the user's display currency:

    {"user": 7, "top": 10, "currency": "EUR", "index": ["BTC", ...], "total": "...", "cash": "...",
     "assets": [{"asset", "amount", "value", "weight", "cap_weight", "difference", "stance"}, ...],
     "unpriced": ["XYZ"], "as_of": <ns of the caps>}

`top`: 1 to MAX_TOP (`invalid_top` otherwise); no top-coins list yet: 503 `no_market_caps`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog
from fastapi import FastAPI, Request

from coinwire.api.guard import principal_of
from coinwire.api.methods import Api
from coinwire.api.portfolio_access import portfolio_scope
from coinwire.api.rest import json_endpoint, query_of
from coinwire.core.cap_balance import CapBalance, cap_balance
from coinwire.core.errors import CoinwireError, InvalidInput, NotFound, NotReady
from coinwire.core.numbers import read_int
from coinwire.services.market_data import MarketData

__all__ = ["DEFAULT_TOP", "MAX_TOP", "add_portfolio_balance_routes", "balance_view"]

log = structlog.get_logger("coinwire.api")

DEFAULT_TOP = 10
MAX_TOP = 100


def _top(request: Request) -> int:
    text = query_of(request, ("top",)).get("top")
    if text is None:
        return DEFAULT_TOP
    top = read_int(text, 1, MAX_TOP)
    if top is None:
        raise InvalidInput("invalid_top", f"top is a whole number from 1 to {MAX_TOP}, got {text[:20]!r}", field="top")
    return top


def balance_view(balance: CapBalance, rate: Decimal) -> dict[str, Any]:
    """The comparison as JSON, values (computed in USD) at `rate` into the display currency; exact decimal strings."""
    return {"top": balance.top, "index": balance.index, "total": str(balance.total * rate), "cash": str(balance.cash * rate),
            "assets": [{"asset": r.asset, "amount": str(r.amount), "value": str(r.value * rate), "weight": str(r.weight),
                        "cap_weight": str(r.cap_weight), "difference": str(r.difference), "stance": r.stance}
                       for r in balance.assets],
            "unpriced": balance.unpriced}


def add_portfolio_balance_routes(app: FastAPI, api: Api, market: MarketData) -> None:
    async def usd_price(asset: str) -> Decimal | None:
        """1 `asset` in USD through `convert` (tickers, pegs, FX), or None when no route prices it."""
        try:
            return (await market.convert("1", asset, "USD")).rate
        except CoinwireError:
            return None

    async def balance(request: Request, user_id: str) -> Any:
        top = _top(request)
        scope = await portfolio_scope(api, principal_of(request), "user", user_id)
        refdata = market.refdata
        coins = refdata.coins if refdata is not None else []
        if not coins:
            raise NotReady("no_market_caps", "no top-coins list yet (market_data.coin_source): retry once it was fetched")
        holdings: dict[str, Decimal] = {}
        if api.portfolio is not None:
            try:
                holdings = api.portfolio.holdings("user", scope.scope_id)
            except NotFound:  # not tracked (yet): a user without funds
                holdings = {}
        ranked = sorted(coins, key=lambda c: c.rank)
        prices = {c.symbol: c.price for c in ranked}
        for asset in holdings:
            if asset not in prices:
                price = await usd_price(asset)
                if price is not None:
                    prices[asset] = price
        cash = market.display_currencies() | set(market.cfg.pegs)
        result = cap_balance(holdings, prices, [(c.symbol, c.market_cap or Decimal(0)) for c in ranked], cash, top)
        currency, rate = scope.currency, Decimal(1)
        if currency != "USD":
            try:
                rate = (await market.convert("1", "USD", currency)).rate
            except CoinwireError:
                currency = "USD"  # no route to the display currency: values stay in USD, and the answer says so
        return {"user": int(scope.scope_id), "currency": currency, **balance_view(result, rate),
                "as_of": min(c.ts for c in ranked)}

    async def portfolio_balance(request: Request, id: str) -> Any:
        """A user's coins weighed against the top-N coins by market cap (over- and under-weight per coin)."""
        return await balance(request, str(id))

    endpoint = json_endpoint(portfolio_balance, "portfolio balance")
    app.add_api_route("/api/v1/portfolio/user/{id}/balance", endpoint, methods=["GET"], tags=["portfolio"],
                      summary="portfolio_balance")

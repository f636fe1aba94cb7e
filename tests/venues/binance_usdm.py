"""A local Binance USD-M futures venue: signed `fapi` REST in Binance's own shapes, one account, one BTCUSDT perpetual.

What a real `ccxt.binanceusdm` calls, answered as Binance documents it (USDS-margined futures
REST API), from payload shapes recorded from the venue:

- public `GET /fapi/v1/exchangeInfo` (BTCUSDT PERPETUAL: PRICE_FILTER 0.10, LOT_SIZE 0.001,
  MIN_NOTIONAL 100), `GET /fapi/v1/premiumIndex` (mark price, last funding rate);
- signed `POST/GET/DELETE /fapi/v1/order` (MARKET and LIMIT GTC/IOC/FOK/GTX, `reduceOnly`,
  `positionSide`, `newClientOrderId`), `GET /fapi/v1/openOrders`, `GET /fapi/v1/userTrades`,
  `GET /fapi/v2/positionRisk` and `/fapi/v3/positionRisk`, `POST /fapi/v1/leverage`,
  `POST /fapi/v1/marginType`, `GET/POST /fapi/v1/positionSide/dual`, `POST /fapi/v1/positionMargin`,
  `GET /fapi/v2/account` and `/fapi/v3/account`, `GET /fapi/v2/balance`, `GET /fapi/v1/leverageBracket`;
  each checks the API key (-2014/-2015), the HMAC-SHA256 signature (-1022) and the timestamp
  against `recvWindow` (-1021) exactly as the spot server does (`binance_trading`).

The account: a USDT wallet; per symbol a leverage (default 20) and a margin type (CROSSED by
default); one-way mode (`BOTH`) or hedge mode (`LONG`/`SHORT` legs). A marketable order walks
the book set with `set_book` (taker 0.04%); a resting limit fills at its price when `trade()`
prints at or through it (maker 0.02%). Fills move the position like Binance: an average entry
on the way up, realised PnL into the wallet on the way down, an isolated wallet of
notional / leverage per open. Refusals are Binance's: -4028 leverage not valid, -4046 no need
to change margin type, -4047/-4048 margin type with open orders / a position, -4059/-4067/-4068
position side, -4061 position side not matching the mode, -1106 reduceOnly in hedge mode, -5022 post-only that would take,
-2022 reduce-only rejected, -2019 margin insufficient, -2011/-2013 unknown order, -1121 symbol.
The liquidation price shown is computed here from Binance's published formula
(maintenance brackets below), not by coinwire. Nothing here imports coinwire.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import API_KEY, SECRET, BinanceError, _walk
from tests.venues.binance_trading import TradingBinance as _Spot

__all__ = ["UsdmBinance", "usdm_urls"]

SYMBOL = "BTCUSDT"
ASSET = "USDT"
TICK = Decimal("0.10")
STEP = Decimal("0.001")
MIN_NOTIONAL = Decimal(100)
TAKER, MAKER = Decimal("0.0004"), Decimal("0.0002")
_ZERO = Decimal(0)
_SIDES = {"BOTH": 0, "LONG": 1, "SHORT": -1}
# Binance's published BTCUSDT brackets: (bracket, floor, cap, max leverage, maintenance margin rate, cum)
BRACKETS: tuple[tuple[int, int, int, int, str, str], ...] = (
    (1, 0, 50_000, 125, "0.004", "0"),
    (2, 50_000, 250_000, 100, "0.005", "50"),
    (3, 250_000, 3_000_000, 50, "0.01", "1300"),
    (4, 3_000_000, 15_000_000, 20, "0.025", "46300"),
    (5, 15_000_000, 30_000_000, 10, "0.05", "421300"),
    (6, 30_000_000, 80_000_000, 5, "0.1", "1921300"),
    (7, 80_000_000, 100_000_000, 4, "0.125", "3921300"),
    (8, 100_000_000, 200_000_000, 3, "0.15", "6421300"),
    (9, 200_000_000, 300_000_000, 2, "0.25", "26421300"),
    (10, 300_000_000, 9_223_372_036_854_775_807, 1, "0.5", "101421300"),
)

EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 0,
    "futuresType": "U_MARGINED",
    "rateLimits": [],
    "exchangeFilters": [],
    "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
    "symbols": [
        {
            "symbol": SYMBOL, "pair": SYMBOL, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT",
            "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": ["PoW"], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "261.10", "maxPrice": "809484", "tickSize": "0.10"},
                {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                {"filterType": "MIN_NOTIONAL", "notional": "100"},
                {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                 "multiplierDecimal": "4"},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                           "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }
    ],
}


def _fmt(value: Decimal, places: int = 8) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):f}"


class UsdmBinance:
    """One Binance USD-M account trading the BTCUSDT perpetual against a book the test sets."""

    def __init__(self, wallet: str = "0", *, api_key: str = API_KEY, secret: str = SECRET) -> None:
        self.api_key = api_key
        self.secret = secret
        self.wallet = Decimal(wallet)  # walletBalance: deposits + realised PnL - fees (isolated wallets inside)
        self.dual = False
        self.leverage = 20
        self.margin_type = "cross"
        self.positions: dict[str, dict[str, Decimal]] = {}  # positionSide -> amt (signed), entry, isolated
        self.bids: list[tuple[Decimal, Decimal]] = []
        self.asks: list[tuple[Decimal, Decimal]] = []
        self.mark: Decimal | None = None
        self.funding_rate = Decimal("0.0001")
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.refusals: list[tuple[str, int]] = []
        self._ids = itertools.count(8_000_000)
        self._trade_ids = itertools.count(900_000)
        self._clock = 0

    # --- the venue moving on ---------------------------------------------------------------------
    def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        """The book marketable orders walk from now on (best first)."""
        self.bids = [(Decimal(p), Decimal(q)) for p, q in bids]
        self.asks = [(Decimal(p), Decimal(q)) for p, q in asks]

    def set_mark(self, price: str) -> None:
        self.mark = Decimal(price)

    def mark_price(self) -> Decimal:
        if self.mark is not None:
            return self.mark
        if self.bids and self.asks:
            return (self.bids[0][0] + self.asks[0][0]) / 2
        return _ZERO

    def trade(self, price: str, qty: str) -> None:
        """A trade printed at `price`: resting limits at or through it fill at their price (oldest first)."""
        at, left = Decimal(price), Decimal(qty)
        for order in sorted(self._open(), key=lambda o: o["orderId"]):
            limit = Decimal(order["price"])
            if left <= 0 or (order["side"] == "BUY" and at > limit) or (order["side"] == "SELL" and at < limit):
                continue
            size = min(left, self._remaining(order))
            if order["reduceOnly"]:
                size = min(size, self._reducible(order))
            left -= size
            if size:
                self._fill(order, limit, size, maker=True)
            if order["reduceOnly"] and self._reducible(order) == 0 and order["status"] != "FILLED":
                order["status"] = "EXPIRED"  # Binance expires a reduce-only order with nothing left to reduce

    # --- HTTP ----------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/fapi/v1/exchangeInfo", self._public(lambda _: {**EXCHANGE_INFO, "serverTime": self._now()}))
        app.router.add_get("/fapi/v1/premiumIndex", self._public(self._premium_index))
        signed: list[tuple[str, str, Callable[[dict[str, str]], Any]]] = [
            ("POST", "/fapi/v1/order", self._new_order),
            ("GET", "/fapi/v1/order", self._query),
            ("DELETE", "/fapi/v1/order", self._cancel),
            ("GET", "/fapi/v1/openOrders", lambda p: [dict(o) for o in self._open()]),
            ("GET", "/fapi/v1/userTrades", self._user_trades),
            ("GET", "/fapi/v2/positionRisk", self._position_risk),
            ("GET", "/fapi/v3/positionRisk", self._position_risk),
            ("POST", "/fapi/v1/leverage", self._set_leverage),
            ("POST", "/fapi/v1/marginType", self._set_margin_type),
            ("POST", "/fapi/v1/positionSide/dual", self._set_dual),
            ("GET", "/fapi/v1/positionSide/dual", lambda p: {"dualSidePosition": self.dual}),
            ("POST", "/fapi/v1/positionMargin", self._modify_margin),
            ("GET", "/fapi/v2/account", self._account),
            ("GET", "/fapi/v3/account", self._account),
            ("GET", "/fapi/v2/balance", lambda p: self._account(p)["assets"]),
            ("GET", "/fapi/v1/leverageBracket", self._brackets),
        ]
        for method, path, handler in signed:
            app.router.add_route(method, path, self._signed(path, handler))
        return app

    def _public(self, handler: Callable[[dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        async def route(request: web.Request) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            try:
                return web.json_response(handler(dict(request.query)))
            except BinanceError as exc:
                return exc.response()

        return route

    def _signed(self, path: str, handler: Callable[[dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        async def route(request: web.Request) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            body = await request.text() if request.can_read_body else ""
            try:
                params = self._authenticate(request, body)
                return web.json_response(handler(params))
            except BinanceError as exc:
                self.refusals.append((path, exc.code))
                return exc.response()

        return route

    def _authenticate(self, request: web.Request, body: str) -> dict[str, str]:
        """As the spot server: API key, then signature over query + body, then timestamp in recvWindow."""
        return _Spot._authenticate(self, request, body)  # type: ignore[arg-type]  # the same checks, the same order

    _check_time = staticmethod(_Spot._check_time)

    # --- account ---------------------------------------------------------------------------------
    def _position(self, side: str) -> dict[str, Decimal]:
        return self.positions.setdefault(side, {"amt": _ZERO, "entry": _ZERO, "isolated": _ZERO})

    def _legs(self) -> list[str]:
        return ["LONG", "SHORT"] if self.dual else ["BOTH"]

    def _upnl(self, pos: dict[str, Decimal]) -> Decimal:
        return (self.mark_price() - pos["entry"]) * pos["amt"] if pos["amt"] else _ZERO

    def _open_margin(self) -> Decimal:
        """Initial margin of open orders: their remaining notional at their price (or the mark) / leverage."""
        total = _ZERO
        for order in self._open():
            if not order["reduceOnly"]:
                total += self._remaining(order) * Decimal(order["price"]) / self.leverage
        return total

    def _position_margin(self, pos: dict[str, Decimal]) -> Decimal:
        return abs(pos["amt"]) * self.mark_price() / self.leverage

    def available(self) -> Decimal:
        """What new orders can use: cross wallet + cross uPnL - cross initial margin - open orders' margin."""
        cross = self.wallet - sum((p["isolated"] for p in self.positions.values()), _ZERO)
        for pos in self.positions.values():
            if pos["amt"] and self.margin_type == "cross":
                cross += self._upnl(pos) - self._position_margin(pos)
        return cross - self._open_margin()

    def _account(self, params: dict[str, str]) -> dict[str, Any]:
        upnl = sum((self._upnl(p) for p in self.positions.values()), _ZERO)
        initial = sum((self._position_margin(p) for p in self.positions.values()), _ZERO)
        now = self._now()
        asset = {
            "asset": ASSET, "walletBalance": _fmt(self.wallet), "unrealizedProfit": _fmt(upnl),
            "marginBalance": _fmt(self.wallet + upnl), "maintMargin": _fmt(sum(
                (self._maint(p)[0] for p in self.positions.values()), _ZERO)),
            "initialMargin": _fmt(initial + self._open_margin()), "positionInitialMargin": _fmt(initial),
            "openOrderInitialMargin": _fmt(self._open_margin()), "crossWalletBalance": _fmt(
                self.wallet - sum((p["isolated"] for p in self.positions.values()), _ZERO)),
            "crossUnPnl": _fmt(upnl if self.margin_type == "cross" else _ZERO),
            "availableBalance": _fmt(self.available()), "maxWithdrawAmount": _fmt(self.available()),
            "marginAvailable": True, "updateTime": now,
        }
        return {
            "totalInitialMargin": asset["initialMargin"], "totalMaintMargin": asset["maintMargin"],
            "totalWalletBalance": asset["walletBalance"], "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"], "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"], "assets": [asset],
            "positions": [
                {"symbol": SYMBOL, "positionSide": side, "positionAmt": _fmt(pos["amt"], 3),
                 "unrealizedProfit": _fmt(self._upnl(pos)), "isolatedMargin": _fmt(pos["isolated"]),
                 "notional": _fmt(pos["amt"] * self.mark_price()), "isolatedWallet": _fmt(pos["isolated"]),
                 "initialMargin": _fmt(self._position_margin(pos)), "maintMargin": _fmt(self._maint(pos)[0]),
                 "updateTime": now}
                for side, pos in self.positions.items() if pos["amt"]
            ],
        }

    def _maint(self, pos: dict[str, Decimal]) -> tuple[Decimal, Decimal, Decimal]:
        """(maintenance margin, rate, cum) of a position at the mark, by Binance's brackets."""
        notional = abs(pos["amt"]) * self.mark_price()
        for _, floor, cap, _, rate, cum in BRACKETS:
            if floor <= notional < cap:
                return notional * Decimal(rate) - Decimal(cum), Decimal(rate), Decimal(cum)
        raise AssertionError("no bracket")

    def liquidation_price(self, side: str) -> Decimal:
        """Binance's documented formula (one position in the account; its wallet: isolated, or the cross wallet)."""
        pos = self._position(side)
        if not pos["amt"]:
            return _ZERO
        _, mmr, cum = self._maint(pos)
        sign = Decimal(1) if pos["amt"] > 0 else Decimal(-1)
        wallet = pos["isolated"] if self.margin_type == "isolated" else self.wallet
        price = (wallet + cum - sign * pos["amt"] * pos["entry"]) / (abs(pos["amt"]) * mmr - sign * pos["amt"])
        return max(price, _ZERO)

    def _position_risk(self, params: dict[str, str]) -> list[dict[str, Any]]:
        out = []
        for side in self._legs():
            pos = self._position(side)
            out.append({
                "symbol": SYMBOL, "positionAmt": _fmt(pos["amt"], 3), "entryPrice": _fmt(pos["entry"]),
                "breakEvenPrice": _fmt(pos["entry"]), "markPrice": _fmt(self.mark_price()),
                "unRealizedProfit": _fmt(self._upnl(pos)), "liquidationPrice": _fmt(self.liquidation_price(side)),
                "leverage": str(self.leverage), "maxNotionalValue": str(self._bracket_of(self.leverage)[2]),
                "marginType": self.margin_type, "isolatedMargin": _fmt(pos["isolated"] + (
                    self._upnl(pos) if self.margin_type == "isolated" else _ZERO)),
                "isAutoAddMargin": "false", "positionSide": side,
                "notional": _fmt(pos["amt"] * self.mark_price()), "isolatedWallet": _fmt(pos["isolated"]),
                "updateTime": self._now(),
            })
        return out

    def _brackets(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return [{"symbol": SYMBOL, "notionalCoef": 1.0, "brackets": [
            {"bracket": n, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
             "maintMarginRatio": float(rate), "cum": float(cum)} for n, floor, cap, lev, rate, cum in BRACKETS]}]

    @staticmethod
    def _bracket_of(leverage: int) -> tuple[int, int, int, int, str, str]:
        """The largest bracket whose maximum leverage still allows `leverage` (Binance's maxNotionalValue)."""
        return [b for b in BRACKETS if b[3] >= leverage][-1]

    def _premium_index(self, params: dict[str, str]) -> dict[str, Any]:
        self._symbol(params)
        mark = self.mark_price()
        return {"symbol": SYMBOL, "markPrice": _fmt(mark), "indexPrice": _fmt(mark), "estimatedSettlePrice": _fmt(mark),
                "lastFundingRate": _fmt(self.funding_rate), "interestRate": "0.00010000",
                "nextFundingTime": (self._now() // 28_800_000 + 1) * 28_800_000, "time": self._now()}

    # --- settings --------------------------------------------------------------------------------
    def _any_position(self) -> bool:
        return any(p["amt"] for p in self.positions.values())

    def _set_leverage(self, params: dict[str, str]) -> dict[str, Any]:
        self._symbol(params)
        text = params.get("leverage", "")
        if not text.isdigit() or not 1 <= int(text) <= BRACKETS[0][3]:
            raise BinanceError(400, -4028, f"Leverage {text} is not valid")
        leverage = int(text)
        cap = self._bracket_of(leverage)[2]
        if any(abs(p["amt"]) * self.mark_price() > cap for p in self.positions.values()):
            raise BinanceError(400, -2027, "Exceeded the maximum allowable position at current leverage.")
        self.leverage = leverage
        return {"leverage": leverage, "maxNotionalValue": str(cap), "symbol": SYMBOL}

    def _set_margin_type(self, params: dict[str, str]) -> dict[str, Any]:
        self._symbol(params)
        wanted = {"ISOLATED": "isolated", "CROSSED": "cross"}.get(params.get("marginType", ""))
        if wanted is None:
            raise BinanceError(400, -1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        if wanted == self.margin_type:
            raise BinanceError(400, -4046, "No need to change margin type.")
        if self._open():
            raise BinanceError(400, -4047, "Margin type cannot be changed if there exists open orders.")
        if self._any_position():
            raise BinanceError(400, -4048, "Margin type cannot be changed if there exists position.")
        self.margin_type = wanted
        return {"code": 200, "msg": "success"}

    def _set_dual(self, params: dict[str, str]) -> dict[str, Any]:
        wanted = params.get("dualSidePosition") == "true"
        if wanted == self.dual:
            raise BinanceError(400, -4059, "No need to change position side.")
        if self._open():
            raise BinanceError(400, -4067, "Position side cannot be changed if there exists open orders.")
        if self._any_position():
            raise BinanceError(400, -4068, "Position side cannot be changed if there exists position.")
        self.dual = wanted
        self.positions.clear()
        return {"code": 200, "msg": "success"}

    def _modify_margin(self, params: dict[str, str]) -> dict[str, Any]:
        self._symbol(params)
        side = params.get("positionSide", "BOTH")
        self._check_side(side)
        pos = self._position(side)
        amount = Decimal(params.get("amount", "0"))
        kind = params.get("type")
        if self.margin_type != "isolated" or not pos["amt"]:
            raise BinanceError(400, -4051, "Isolated balance insufficient.")
        if kind == "1":
            if amount > self.available():
                raise BinanceError(400, -2019, "Margin is insufficient.")
            pos["isolated"] += amount
        elif kind == "2":
            if amount > pos["isolated"] - self._position_margin(pos) + min(self._upnl(pos), _ZERO):
                raise BinanceError(400, -4051, "Isolated balance insufficient.")
            pos["isolated"] -= amount
        else:
            raise BinanceError(400, -1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.", "type": int(kind)}

    # --- orders ----------------------------------------------------------------------------------
    def _check_side(self, side: str) -> None:
        if side not in _SIDES or (side == "BOTH") == self.dual:
            raise BinanceError(400, -4061, "Order's position side does not match user's setting.")

    def _new_order(self, params: dict[str, str]) -> dict[str, Any]:
        self._symbol(params)
        side, kind = params.get("side"), params.get("type")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'.")
        if kind not in ("MARKET", "LIMIT"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        leg = params.get("positionSide", "BOTH")
        self._check_side(leg)
        reduce_only = params.get("reduceOnly") == "true"
        if reduce_only and self.dual:
            raise BinanceError(400, -1106, "Parameter 'reduceonly' sent when not required.")
        tif = params.get("timeInForce") if kind == "LIMIT" else None
        if kind == "LIMIT" and tif not in ("GTC", "IOC", "FOK", "GTX"):
            raise BinanceError(400, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
        qty = Decimal(params.get("quantity") or "0")
        price = Decimal(params["price"]) if kind == "LIMIT" else None
        if qty <= 0 or qty % STEP or (price is not None and price % TICK):
            raise BinanceError(400, -1111, "Precision is over the maximum defined for this asset.")
        client_id = params.get("newClientOrderId") or f"web_{next(self._ids)}"
        if any(o["clientOrderId"] == client_id for o in self._open()):
            raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
        levels = self.asks if side == "BUY" else self.bids
        reference = price if price is not None else (levels[0][0] if levels else self.mark_price())
        if not reduce_only and qty * reference < MIN_NOTIONAL:
            raise BinanceError(400, -4164, f"Order's notional must be no smaller than {MIN_NOTIONAL} (unless you choose "
                               "reduce only).")
        now = self._now()
        order = {
            "orderId": next(self._ids), "symbol": SYMBOL, "status": "NEW", "clientOrderId": client_id,
            "price": _fmt(price or _ZERO, 2), "avgPrice": "0.00", "origQty": _fmt(qty, 3), "executedQty": "0.000",
            "cumQty": "0.000", "cumQuote": "0.00000", "timeInForce": tif or "GTC", "type": kind,
            "reduceOnly": reduce_only, "closePosition": False, "side": side, "positionSide": leg, "stopPrice": "0.00",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": kind, "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": now, "updateTime": now,
        }
        if reduce_only:
            reducible = self._reducible(order)
            if reducible == 0:
                raise BinanceError(400, -2022, "ReduceOnly Order is rejected.")
            qty = min(qty, reducible)  # cut to the position
        fills = _walk(levels, qty, side, price)
        if tif == "GTX" and fills:
            raise BinanceError(400, -5022, "Due to the order could not be executed as maker, the Post Only order will be "
                               "rejected.")
        if tif == "FOK" and sum((q for _, q in fills), _ZERO) < qty:
            fills = []  # all or nothing
        opening = self._opening(side, leg, qty)
        if opening and opening * reference / self.leverage + opening * reference * TAKER > self.available():
            raise BinanceError(400, -2019, "Margin is insufficient.")
        self.orders[order["orderId"]] = order
        for fill_price, fill_qty in fills:
            self._take(levels, fill_price, fill_qty)
            self._fill(order, fill_price, fill_qty, maker=False)
        if order["status"] != "FILLED" and (kind == "MARKET" or tif in ("IOC", "FOK") or (reduce_only and qty < Decimal(
                order["origQty"]) and not self._reducible(order))):
            order["status"] = "EXPIRED"
        return dict(order)

    def _opening(self, side: str, leg: str, qty: Decimal) -> Decimal:
        """How much of `qty` would open (or add to) exposure rather than reduce it."""
        sign = 1 if side == "BUY" else -1
        if leg != "BOTH":
            return qty if _SIDES[leg] == sign else _ZERO
        amt = self._position("BOTH")["amt"]
        return qty if amt * sign >= 0 else max(_ZERO, qty - abs(amt))

    def _reducible(self, order: dict[str, Any]) -> Decimal:
        amt = self._position(order["positionSide"])["amt"]
        sign = 1 if order["side"] == "BUY" else -1
        return abs(amt) if amt * sign < 0 else _ZERO

    def _take(self, levels: list[tuple[Decimal, Decimal]], price: Decimal, qty: Decimal) -> None:
        for i, (level, size) in enumerate(levels):
            if level == price:
                levels[i] = (level, size - qty)
        levels[:] = [(p, q) for p, q in levels if q > 0]

    def _fill(self, order: dict[str, Any], price: Decimal, qty: Decimal, *, maker: bool) -> None:
        """One execution: the position moves (Binance's averaging and realised PnL), fee and PnL hit the wallet."""
        pos = self._position(order["positionSide"])
        signed = qty if order["side"] == "BUY" else -qty
        realised = _ZERO
        if pos["amt"] * signed >= 0:  # opening or adding: average entry
            total = abs(pos["amt"]) + qty
            pos["entry"] = (pos["entry"] * abs(pos["amt"]) + price * qty) / total
            pos["isolated"] += price * qty / self.leverage if self.margin_type == "isolated" else _ZERO
            pos["amt"] += signed
        else:
            closed = min(qty, abs(pos["amt"]))
            realised = (price - pos["entry"]) * closed * (1 if pos["amt"] > 0 else -1)
            if self.margin_type == "isolated":
                pos["isolated"] = pos["isolated"] * (abs(pos["amt"]) - closed) / abs(pos["amt"]) + (
                    realised if abs(pos["amt"]) > closed else _ZERO)
            pos["amt"] += signed if closed == qty else (closed if signed > 0 else -closed)
            rest = qty - closed
            if pos["amt"] == 0:
                pos["entry"] = _ZERO
                pos["isolated"] = _ZERO
            if rest:  # one-way mode through zero: the rest opens the other way
                pos["amt"] = rest if signed > 0 else -rest
                pos["entry"] = price
                pos["isolated"] = price * rest / self.leverage if self.margin_type == "isolated" else _ZERO
        fee = price * qty * (MAKER if maker else TAKER)
        self.wallet += realised - fee
        executed = Decimal(order["executedQty"]) + qty
        quote = Decimal(order["cumQuote"]) + price * qty
        now = self._now()
        order.update(executedQty=_fmt(executed, 3), cumQty=_fmt(executed, 3), cumQuote=_fmt(quote, 5),
                     avgPrice=_fmt(quote / executed, 5), updateTime=now,
                     status="FILLED" if executed == Decimal(order["origQty"]) else "PARTIALLY_FILLED")
        self.trades.append({
            "buyer": order["side"] == "BUY", "commission": _fmt(fee), "commissionAsset": ASSET,
            "id": next(self._trade_ids), "maker": maker, "orderId": order["orderId"], "price": _fmt(price, 2),
            "qty": _fmt(qty, 3), "quoteQty": _fmt(price * qty, 5), "realizedPnl": _fmt(realised),
            "side": order["side"], "positionSide": order["positionSide"], "symbol": SYMBOL, "time": now,
        })

    def _open(self) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]

    @staticmethod
    def _remaining(order: dict[str, Any]) -> Decimal:
        return Decimal(order["origQty"]) - Decimal(order["executedQty"])

    def _find(self, params: dict[str, str], code: int) -> dict[str, Any]:
        self._symbol(params)
        if "orderId" in params:
            order = self.orders.get(int(params["orderId"]))
        else:
            client_id = params.get("origClientOrderId")
            order = next((o for o in self.orders.values() if o["clientOrderId"] == client_id), None)
        if order is None:
            raise BinanceError(400, code, "Order does not exist." if code == -2013 else "Unknown order sent.")
        return order

    def _query(self, params: dict[str, str]) -> dict[str, Any]:
        return dict(self._find(params, -2013))

    def _cancel(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params, -2011)
        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(400, -2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        order["updateTime"] = self._now()
        return dict(order)

    def _user_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """`userTrades` filters as the spot `myTrades` does (symbol, orderId, fromId, startTime, endTime, limit)."""
        return _Spot._my_trades(self, params)  # type: ignore[arg-type]  # the same filters on the same trade fields

    @staticmethod
    def _symbol(params: dict[str, str]) -> None:
        if params.get("symbol", SYMBOL) != SYMBOL:
            raise BinanceError(400, -1121, "Invalid symbol.")

    def _now(self) -> int:
        """Milliseconds, strictly increasing (reports and trades order by it)."""
        import time

        self._clock = max(self._clock + 1, time.time_ns() // 1_000_000)
        return self._clock


def usdm_urls(runner: ServerRunner) -> dict[str, str]:
    """The `urls` overrides that point ccxt.binanceusdm's fapi REST here."""
    base = f"http://127.0.0.1:{runner.port}"
    return {
        "api.fapiPublic": f"{base}/fapi/v1", "api.fapiPublicV2": f"{base}/fapi/v2",
        "api.fapiPublicV3": f"{base}/fapi/v3", "api.fapiPrivate": f"{base}/fapi/v1",
        "api.fapiPrivateV2": f"{base}/fapi/v2", "api.fapiPrivateV3": f"{base}/fapi/v3",
        "api.fapiData": f"{base}/futures/data",
    }

"""A local Binance spot trading venue: signed REST and the WebSocket API user data stream, on the recorded book.

It composes with `tests/feeds/binance_server.RecordedBinance` (the public market data: the
book at the cursor, the recorded trades) and adds one account, in Binance's own shapes, as a
real `ccxt.binance` calls them:

- signed `GET /api/v3/account`, `POST /api/v3/order` (MARKET by `quantity` or, for a BUY, by
  `quoteOrderQty`: the quote to spend, the quantity the book gives for it on LOT_SIZE; LIMIT with timeInForce
  GTC/IOC/FOK, LIMIT_MAKER; STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT with `stopPrice`
  and/or `trailingDelta`; `newClientOrderId`; `newOrderRespType` ACK/RESULT/FULL),
  `POST /api/v3/orderList/oco` (a LIMIT_MAKER leg and a STOP_LOSS(_LIMIT) leg, above and below),
  `DELETE /api/v3/order`, `GET /api/v3/order`, `GET /api/v3/openOrders`, `GET /api/v3/myTrades`;
  every one checks the `X-MBX-APIKEY` header (-2014/-2015, HTTP 401), the HMAC-SHA256
  `signature` of the query string plus body (-1022), and `timestamp` against `recvWindow`
  when the request is processed (-1021), as Binance documents;
- the WebSocket API (`/ws-api/v3`): `userDataStream.subscribe.signature` (signed like the
  REST calls, parameters sorted), then `executionReport` events wrapped in
  `{"subscriptionId", "event"}` for every order change, which is what ccxt's `watch_orders`
  and `watch_my_trades` read.

Matching: a marketable order walks the recorded book at the cursor, best level first; size it
took from a level is gone for later orders until the recording changes that level. A resting
limit order fills at its limit when `advance()` lets recorded trades at or through its price
happen (each trade's quantity shared among resting orders by time; no queue position), as a
maker. Fees are 0.1% (maker and taker), charged in the asset received, as on Binance without
BNB. Errors are Binance's: -2010 insufficient balance, duplicate client id, post-only that
would take; -2011 cancel of an unknown order; -2013 unknown order; -1013 filter failures;
-1121 invalid symbol.

Conditional orders wait with status NEW and `isWorking` false (`workingTime` -1) and fire on
the trades that happen here (`advance`, `trade`), as Binance documents them: a STOP_LOSS sell
at or below its stopPrice, a buy at or above; TAKE_PROFIT the mirror image; a trailingDelta
(BIPS, 10..2000) follows the best trade price from placement, or from the trade reaching its
stopPrice, and fires on a move of that many BIPS against it. A fired order is working
(`isWorking` true, an executionReport says so) and takes the book like a MARKET order
(STOP_LOSS, TAKE_PROFIT) or a LIMIT with its timeInForce. A stop that would fire at the last
trade price at once is refused (-2010). An OCO holds its funds once; one leg filling or
firing expires the other; cancelling a leg cancels the list. Funds held: a sell holds its
base, a limit buy its quantity at its price; a market-type buy stop holds nothing and expires
unfilled if the quote is missing when it fires.

Faults (`fail(endpoint, ...)`): an HTTP status (answered with Binance's body for it),
`LOST_RESPONSE` (the order is processed, the answer comes after `fault_delay`: the client times
out although the order reached the venue) or `LATE` (the request waits `fault_delay` before it
is processed, so its timestamp is then outside its recvWindow and it is refused: the client
timed out and the order never existed). Nothing here imports coinwire.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.feeds.binance_server import ERROR_BODIES, EXCHANGE_INFO, RecordedBinance, ServerRunner, accept_ws

__all__ = ["API_KEY", "LATE", "LOST_RESPONSE", "SECRET", "AccountHistory", "TradingBinance", "trading_urls"]

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
LOST_RESPONSE = "lost_response"
LATE = "late"

SYMBOL = "BTCUSDT"
BASE, QUOTE = "BTC", "USDT"
TICK = Decimal("0.01")
STEP = Decimal("0.00001")
MIN_PRICE, MAX_PRICE = Decimal("0.01"), Decimal(1000000)
MIN_QTY, MAX_QTY = Decimal("0.00001"), Decimal(9000)
MARKET_MAX_QTY = Decimal("123.456789")
MIN_NOTIONAL = Decimal(5)
FEE_RATE = Decimal("0.001")
_EIGHT = Decimal("0.00000001")
_ZERO = Decimal(0)
_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_DEFAULT_RECV_WINDOW = 5000
_STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_MARKET_TYPES = ("MARKET", "STOP_LOSS", "TAKE_PROFIT")  # take the book at once, rest nothing
_BIPS = Decimal(10000)
_TRAILING_BIPS = (10, 2000)  # the TRAILING_DELTA filter of BTCUSDT
_MAX_RECV_WINDOW = 60000


def _fmt(value: Decimal) -> str:
    """Binance's 8-decimal strings; a value that does not fit them is a bug in this server."""
    quantized = value.quantize(_EIGHT)
    if quantized != value:
        raise AssertionError(f"{value} does not fit 8 decimals")
    return f"{quantized:f}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BinanceError(Exception):
    """A refusal in Binance's shape: HTTP status, error code, message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "msg": self.msg}, status=self.status)


def _filter_failure(name: str) -> BinanceError:
    return BinanceError(400, -1013, f"Filter failure: {name}")


def _mandatory(name: str) -> BinanceError:
    return BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _decimal(params: dict[str, str], name: str) -> Decimal:
    text = params.get(name)
    if not text:
        raise _mandatory(name)
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.") from None
    if not value.is_finite():
        raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return value


class TradingBinance:
    """One Binance spot account trading BTCUSDT against a RecordedBinance's book and trades."""

    def __init__(
        self,
        market: RecordedBinance,
        balances: dict[str, str],
        *,
        api_key: str = API_KEY,
        secret: str = SECRET,
        history: AccountHistory | None = None,
    ) -> None:
        self.market = market
        self.history = history  # the account's past on more markets, deposits, withdrawals, klines (the block at the end)
        if history is not None:
            market.exchange_info = history.exchange_info(market.exchange_info)
        self.api_key = api_key
        self.secret = secret
        self.free: dict[str, Decimal] = {asset: Decimal(amount) for asset, amount in balances.items()}
        self.locked: dict[str, Decimal] = dict.fromkeys(balances, _ZERO)
        self.orders: dict[int, dict[str, Any]] = {}  # orderId -> the order in Binance's fields
        self.trades: list[dict[str, Any]] = []  # the account's trades (myTrades shape)
        self.taken: dict[tuple[str, Decimal], Decimal] = {}  # (bids|asks, price) -> size our orders took there
        self.held: dict[int, tuple[str, Decimal]] = {}  # orderId -> (asset, amount) it holds locked
        self.lists: dict[int, list[int]] = {}  # orderListId -> its legs' orderIds
        self.trailing: dict[int, Decimal | None] = {}  # orderId -> best trade price since it started following
        self.last: Decimal | None = None  # the last trade price (stops that would fire at it are refused)
        self.faults: dict[str, deque[int | str]] = {}
        self.fault_delay = 1.0
        self.requests: list[str] = []  # `METHOD path` of every trading request, in arrival order
        self.refusals: list[tuple[str, int]] = []  # (endpoint, Binance error code) of every refusal
        self.ws_refuse = 0  # HTTP status refusing WebSocket API upgrades (0: accept)
        self.ws_connections = 0
        self._ids = itertools.count(1000)
        self._trade_ids = itertools.count(50_000)
        self._subscriptions: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._subscription_ids = itertools.count(0)

    # --- the venue moving on ---------------------------------------------------------------
    def advance(self, count: int) -> None:
        """Let `count` recorded messages happen: the book changes, recorded trades fill resting orders."""
        start = self.market.cursor
        self.market.advance(count)
        for message in self.market.messages[start : self.market.cursor]:
            stream = message["stream"]
            if stream.endswith("@depth@100ms"):
                for price, _ in message["b"]:
                    self.taken.pop(("bids", Decimal(price)), None)
                for price, _ in message["a"]:
                    self.taken.pop(("asks", Decimal(price)), None)
            elif stream.endswith("@trade"):
                self._trade_through(Decimal(message["p"]), Decimal(message["q"]))

    def trade(self, price: Decimal, qty: Decimal) -> None:
        """A trade at `price` printed now (not from the recording): resting orders at or through it fill."""
        self._trade_through(price, qty)

    def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        """Replace the book at the cursor (what orders walk from now on); what our orders took is forgotten."""
        self.market.bids = dict(bids)
        self.market.asks = dict(asks)
        self.market.last_update_id += 1
        self.taken.clear()

    def _trade_through(self, price: Decimal, qty: Decimal) -> None:
        """A trade at `price`: resting orders at or through it fill at their limit, oldest first; then stops fire."""
        self.last = price
        resting = sorted(
            (o for o in self.open_orders() if o["isWorking"] and o["type"] not in _MARKET_TYPES),
            key=lambda o: o["orderId"],
        )
        now = _now_ms()
        for order in resting:
            if qty <= 0:
                break
            if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                continue  # an OCO leg expired by its sibling's fill in this trade
            limit = Decimal(order["price"])
            if (order["side"] == "BUY" and price > limit) or (order["side"] == "SELL" and price < limit):
                continue
            fill = min(qty, Decimal(order["origQty"]) - Decimal(order["executedQty"]))
            qty -= fill
            self._fill(order, limit, fill, maker=True, now=now)
        for order in sorted((o for o in self.open_orders() if not o["isWorking"]), key=lambda o: o["orderId"]):
            if order["status"] == "NEW" and self._fires(order, price):
                self._fire(order, now)

    def _fires(self, order: dict[str, Any], price: Decimal) -> bool:
        """Whether the trade at `price` fires this waiting order (trailing ones follow it first)."""
        sell = order["side"] == "SELL"
        take_profit = order["type"].startswith("TAKE_PROFIT")
        stop = Decimal(order["stopPrice"])
        reached = (price >= stop) if (sell == take_profit) else (price <= stop)
        if order["orderId"] not in self.trailing:
            return reached
        best = self.trailing[order["orderId"]]
        if best is None:  # waiting for its stopPrice before it follows
            if stop and not reached:
                return False
            self.trailing[order["orderId"]] = price
            return False
        delta = Decimal(order["trailingDelta"]) / _BIPS
        if sell:
            if price > best:
                self.trailing[order["orderId"]] = price
                return False
            return price <= best * (1 - delta)
        if price < best:
            self.trailing[order["orderId"]] = price
            return False
        return price >= best * (1 + delta)

    def _fire(self, order: dict[str, Any], now: int) -> None:
        """A waiting order is triggered: its OCO sibling goes, then it takes the book as its type says."""
        order["isWorking"] = True
        order["workingTime"] = now
        order["updateTime"] = now
        self.trailing.pop(order["orderId"], None)
        self._end_siblings(order, now)
        side, qty = order["side"], Decimal(order["origQty"])
        limit = None if order["type"] in _MARKET_TYPES else Decimal(order["price"])
        if side == "BUY" and limit is not None and order["orderId"] not in self.held:
            if self.free.get(QUOTE, _ZERO) < qty * limit:
                self._finish(order, "EXPIRED", now)
                return
            self._lock(order, QUOTE, qty * limit)
        self._report(order, "NEW", now)  # working now
        fills = _walk(self.book_side(side), qty, side, limit)
        if order["timeInForce"] == "FOK" and sum((q for _, q in fills), _ZERO) < qty:
            fills = []
        if limit is None and side == "BUY" and self.free.get(QUOTE, _ZERO) < sum((p * q for p, q in fills), _ZERO):
            fills = []  # a market-type buy stop holds nothing: without the quote now, it fills nothing
        self._take(order, fills, now)
        if (limit is None or order["timeInForce"] in ("IOC", "FOK")) and order["status"] != "FILLED":
            self._finish(order, "EXPIRED", now)

    def _take(self, order: dict[str, Any], fills: list[tuple[Decimal, Decimal]], now: int) -> list[dict[str, Any]]:
        """Fill `order` as a taker at these book levels (size taken there is gone for later orders)."""
        book_key = "asks" if order["side"] == "BUY" else "bids"
        trades = []
        for fill_price, fill_qty in fills:
            level = (book_key, fill_price)
            self.taken[level] = self.taken.get(level, _ZERO) + fill_qty
            trades.append(self._fill(order, fill_price, fill_qty, maker=False, now=now))
        return trades

    def _end_siblings(self, order: dict[str, Any], now: int) -> None:
        """An OCO leg filled or fired: the other leg expires; a sell list's one hold moves to this leg."""
        legs = self.lists.get(order["orderListId"], [])
        for other_id in legs:
            other = self.orders[other_id]
            if other_id == order["orderId"] or other["status"] not in ("NEW", "PARTIALLY_FILLED"):
                continue
            held = self.held.get(other_id)
            if held is not None and held[0] == BASE and order["orderId"] not in self.held:
                self.held[order["orderId"]] = self.held.pop(other_id)  # the same base, held once
            self._finish(other, "EXPIRED", now)
            self.trailing.pop(other_id, None)

    @property
    def subscribed(self) -> int:
        """User data streams subscribed right now."""
        return len(self._subscriptions)

    def open_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]

    def book_side(self, side: str) -> list[tuple[Decimal, Decimal]]:
        """What an order of `side` can take now: (price, available size), best first."""
        book = self.market.book(5000)
        key = "asks" if side == "BUY" else "bids"
        out = []
        for price, size in book[key]:
            level = Decimal(price)
            available = Decimal(size) - self.taken.get((key, level), _ZERO)
            if available > 0:
                out.append((level, available))
        return out

    # --- HTTP ----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = self.market.app()
        app.router.add_get("/api/v3/account", self._route("account", self._account))
        app.router.add_post("/api/v3/order", self._route("order", self._new_order))
        app.router.add_post("/api/v3/orderList/oco", self._route("oco", self._new_oco))
        app.router.add_delete("/api/v3/order", self._route("cancel", self._cancel))
        app.router.add_get("/api/v3/order", self._route("query", self._query))
        app.router.add_get("/api/v3/openOrders", self._route("openOrders", self._open_orders))
        app.router.add_get("/api/v3/myTrades", self._route("myTrades", self._my_trades))
        app.router.add_get("/ws-api/v3", self._ws_api)
        if self.history is not None:
            self.history.add_routes(app, self._route)
        return app

    def fail(self, endpoint: str, *answers: int | str) -> None:
        """Answer the next requests to `endpoint` (account, order, cancel, query, openOrders, myTrades) so."""
        self.faults.setdefault(endpoint, deque()).extend(answers)

    def _route(
        self, endpoint: str, handler: Callable[[dict[str, str]], Any]
    ) -> Callable[[web.Request], Any]:
        async def route(request: web.Request) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            queue = self.faults.get(endpoint)
            fault = queue.popleft() if queue else None
            if isinstance(fault, int):
                refusal = ERROR_BODIES.get(fault, {"code": -1000, "msg": "An unknown error occurred."})
                return web.json_response(refusal, status=fault)
            body = await request.text() if request.can_read_body else ""  # the request has arrived whole
            if fault == LATE:
                await asyncio.sleep(self.fault_delay)  # ... and waits in the venue's queue
            try:
                params = self._authenticate(request, body)
                answer = handler(params)
            except BinanceError as exc:
                self.refusals.append((endpoint, exc.code))
                return exc.response()
            if fault == LOST_RESPONSE:
                await asyncio.sleep(self.fault_delay)
            return web.json_response(answer)

        return route

    def _authenticate(self, request: web.Request, body: str) -> dict[str, str]:
        """The request's parameters once its API key, signature and timestamp check out (Binance's order)."""
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        if key != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        query = request.raw_path.partition("?")[2]
        query, query_signature = _split_signature(query)
        body, body_signature = _split_signature(body)
        signature = query_signature or body_signature
        if not signature:
            raise _mandatory("signature")
        expected = hmac.new(self.secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        self._check_time(params)
        return params

    @staticmethod
    def _check_time(params: dict[str, Any]) -> None:
        timestamp = params.get("timestamp")
        if not timestamp or not str(timestamp).isdigit():
            raise _mandatory("timestamp")
        window = int(params.get("recvWindow", _DEFAULT_RECV_WINDOW))
        if window > _MAX_RECV_WINDOW:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        now = _now_ms()
        if not (int(timestamp) < now + 1000 and now - int(timestamp) <= window):
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    # --- account ---------------------------------------------------------------------------------
    def _account(self, params: dict[str, str]) -> dict[str, Any]:
        balances = [
            {"asset": asset, "free": _fmt(self.free[asset]), "locked": _fmt(self.locked[asset])}
            for asset in sorted(self.free)
        ]
        if params.get("omitZeroBalances") == "true":
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": _now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _lock(self, order: dict[str, Any], asset: str, amount: Decimal) -> None:
        self._move(asset, free=-amount, locked=amount)
        held = self.held.get(order["orderId"], (asset, _ZERO))[1]
        self.held[order["orderId"]] = (asset, held + amount)

    def _unlock(self, order: dict[str, Any], amount: Decimal | None = None) -> Decimal:
        """Take `amount` (all, when None) of what `order` holds out of the locked balance; what was taken."""
        held = self.held.get(order["orderId"])
        if held is None:
            return _ZERO
        asset, left = held
        take = left if amount is None else min(amount, left)
        self._move(asset, locked=-take)
        if left - take:
            self.held[order["orderId"]] = (asset, left - take)
        else:
            del self.held[order["orderId"]]
        return take

    def _move(self, asset: str, free: Decimal = _ZERO, locked: Decimal = _ZERO) -> None:
        self.free[asset] = self.free.get(asset, _ZERO) + free
        self.locked[asset] = self.locked.get(asset, _ZERO) + locked
        if self.free[asset] < 0 or self.locked[asset] < 0:
            raise AssertionError(f"{asset} balance went negative: a bug in this server")

    # --- orders ----------------------------------------------------------------------------------
    def _new_order(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("symbol") != SYMBOL:
            raise BinanceError(400, -1121, "Invalid symbol.")
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'.")
        kind = params.get("type")
        if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER", *_STOP_TYPES):
            raise BinanceError(400, -1116, "Invalid orderType.")
        limit_kind = kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
        tif = params.get("timeInForce") if limit_kind else None
        if limit_kind and tif not in ("GTC", "IOC", "FOK"):
            raise _mandatory("timeInForce")
        client_id = self._client_id(params.get("newClientOrderId"))
        quote_qty = _decimal(params, "quoteOrderQty") if kind == "MARKET" and "quoteOrderQty" in params else None
        if quote_qty is not None:  # a quote amount: the quantity is what the book gives for it on the step grid
            if "quantity" in params:
                raise BinanceError(400, -1106, "Parameter 'quantity' sent when not required.")
            if side != "BUY":
                raise BinanceError(400, -1013, "quoteOrderQty of a SELL is not served by this test venue.")
            if quote_qty < MIN_NOTIONAL:
                raise _filter_failure("NOTIONAL")
            fills = _walk_quote(self.book_side(side), quote_qty)
            qty = sum((q for _, q in fills), _ZERO)
            if not qty:
                raise _filter_failure("LOT_SIZE")
        else:
            qty = _decimal(params, "quantity")
        price = _decimal(params, "price") if kind not in _MARKET_TYPES else None
        self._check_filters(kind, qty, price)
        if any(o["clientOrderId"] == client_id for o in self.open_orders()):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        if kind in _STOP_TYPES:
            stop, trailing = self._stop_params(params, kind, side, qty)
            return self._waiting(params, client_id, kind, side, qty, price, tif, stop, trailing, -1)

        available = self.book_side(side)
        if kind == "LIMIT_MAKER" and available and self._crosses(side, price, available[0][0]):  # type: ignore[arg-type]
            raise BinanceError(400, -2010, "Order would immediately match and take.")
        if quote_qty is None:
            fills = [] if kind == "LIMIT_MAKER" else _walk(available, qty, side, price)
        filled = sum((q for _, q in fills), _ZERO)
        if kind == "MARKET":
            cost = sum((p * q for p, q in fills), _ZERO)
            best = available[0][0] if available else None
            if best is None or best * qty < MIN_NOTIONAL:
                raise _filter_failure("NOTIONAL")
            need = (QUOTE, quote_qty if quote_qty is not None else cost) if side == "BUY" else (BASE, qty)
        else:
            need = (QUOTE, qty * price) if side == "BUY" else (BASE, qty)  # type: ignore[operator]
        if self.free.get(need[0], _ZERO) < need[1]:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        if tif == "FOK" and filled < qty:
            fills = []

        now = _now_ms()
        order = self._order(client_id, kind, side, qty, price, tif, now, quote_qty=quote_qty)
        if kind != "MARKET":  # a limit order locks what its whole size can cost; fills release it
            self._lock(order, *need)
        self._report(order, "NEW", now)
        new_fills = self._take(order, fills, now)
        if (kind == "MARKET" or tif in ("IOC", "FOK")) and order["status"] != "FILLED":
            self._finish(order, "EXPIRED", now)  # the unfilled remainder of a taker-only order
        return self._answer(order, params.get("newOrderRespType", "FULL"), new_fills)

    def _client_id(self, given: str | None) -> str:
        client_id = given or f"web_{next(self._ids)}"
        if not _CLIENT_ID.match(client_id):
            raise BinanceError(
                400, -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        return client_id

    def _order(
        self, client_id: str, kind: str, side: str, qty: Decimal, price: Decimal | None, tif: str | None, now: int,
        *, quote_qty: Decimal | None = None, stop: Decimal = _ZERO, trailing: int = 0, list_id: int = -1,
    ) -> dict[str, Any]:
        """A new order in Binance's fields, kept; a stop waits (`isWorking` false) until it fires."""
        waiting = kind in _STOP_TYPES
        order: dict[str, Any] = {
            "symbol": SYMBOL,
            "orderId": next(self._ids),
            "orderListId": list_id,
            "clientOrderId": client_id,
            "price": _fmt(price or _ZERO),
            "origQty": _fmt(qty),
            "executedQty": _fmt(_ZERO),
            "cummulativeQuoteQty": _fmt(_ZERO),
            "status": "NEW",
            "timeInForce": tif or "GTC",
            "type": kind,
            "side": side,
            "stopPrice": _fmt(stop),
            "icebergQty": _fmt(_ZERO),
            "time": now,
            "updateTime": now,
            "isWorking": not waiting,
            "workingTime": -1 if waiting else now,
            "origQuoteOrderQty": _fmt(quote_qty or _ZERO),
            "selfTradePreventionMode": "NONE",
        }
        if trailing:
            order["trailingDelta"] = trailing
            self.trailing[order["orderId"]] = None  # follows from the next trade, or from the one reaching stopPrice
        self.orders[order["orderId"]] = order
        return order

    def _stop_params(self, params: dict[str, str], kind: str, side: str, qty: Decimal) -> tuple[Decimal, int]:
        """(stopPrice or 0, trailingDelta in BIPS or 0) of a new stop, checked as Binance does."""
        trailing = 0
        if params.get("trailingDelta"):
            text = params["trailingDelta"]
            if not text.isdigit():
                raise BinanceError(400, -1100, "Illegal characters found in parameter 'trailingDelta'.")
            trailing = int(text)
            if not _TRAILING_BIPS[0] <= trailing <= _TRAILING_BIPS[1]:
                raise _filter_failure("TRAILING_DELTA")
        stop = _decimal(params, "stopPrice") if params.get("stopPrice") or not trailing else _ZERO
        if stop and (stop < MIN_PRICE or stop > MAX_PRICE or stop % TICK):
            raise _filter_failure("PRICE_FILTER")
        if stop and not trailing and self.last is not None:
            take_profit = kind.startswith("TAKE_PROFIT")
            sell = side == "SELL"
            if (self.last >= stop) if (sell == take_profit) else (self.last <= stop):
                raise BinanceError(400, -2010, "Stop price would trigger immediately.")
        reference = stop or self.last or _ZERO
        if kind in ("STOP_LOSS", "TAKE_PROFIT") and reference * qty and reference * qty < MIN_NOTIONAL:
            raise _filter_failure("NOTIONAL")
        return stop, trailing

    def _waiting(
        self, params: dict[str, str], client_id: str, kind: str, side: str, qty: Decimal, price: Decimal | None,
        tif: str | None, stop: Decimal, trailing: int, list_id: int, *, hold: bool = True,
    ) -> dict[str, Any]:
        """A stop accepted: it holds its funds (a sell its base, a limit buy its cost) and waits."""
        need: tuple[str, Decimal] | None = (BASE, qty) if side == "SELL" else ((QUOTE, qty * price) if price else None)
        if need is not None and hold and self.free.get(need[0], _ZERO) < need[1]:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        now = _now_ms()
        order = self._order(client_id, kind, side, qty, price, tif, now, stop=stop, trailing=trailing, list_id=list_id)
        if need is not None and hold:
            self._lock(order, *need)
        self._report(order, "NEW", now)
        return self._answer(order, params.get("newOrderRespType", "FULL"), [])

    def _new_oco(self, params: dict[str, str]) -> dict[str, Any]:
        """POST /api/v3/orderList/oco: a LIMIT_MAKER leg and a STOP_LOSS(_LIMIT) leg; a sell's limit above, stop below."""
        if params.get("symbol") != SYMBOL:
            raise BinanceError(400, -1121, "Invalid symbol.")
        side = params.get("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'.")
        limit_pos, stop_pos = ("above", "below") if side == "SELL" else ("below", "above")
        if params.get(f"{limit_pos}Type") != "LIMIT_MAKER" or params.get(f"{stop_pos}Type") not in ("STOP_LOSS",
                                                                                                     "STOP_LOSS_LIMIT"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        qty = _decimal(params, "quantity")
        limit = _decimal(params, f"{limit_pos}Price")
        stop = _decimal(params, f"{stop_pos}StopPrice")
        stop_kind = params[f"{stop_pos}Type"]
        stop_limit = _decimal(params, f"{stop_pos}Price") if stop_kind == "STOP_LOSS_LIMIT" else None
        stop_tif = params.get(f"{stop_pos}TimeInForce") if stop_limit is not None else None
        if stop_limit is not None and stop_tif not in ("GTC", "IOC", "FOK"):
            raise _mandatory(f"{stop_pos}TimeInForce")
        self._check_filters("LIMIT_MAKER", qty, limit)
        self._check_filters(stop_kind, qty, stop_limit)
        last = self.last
        if last is not None and not ((limit > last > stop) if side == "SELL" else (limit < last < stop)):
            raise BinanceError(400, -2010, "The relationship of the prices for the orders is not correct.")
        ids = [self._client_id(params.get(f"{pos}ClientOrderId")) for pos in (limit_pos, stop_pos)]
        if any(o["clientOrderId"] in ids for o in self.open_orders()):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        need = (BASE, qty) if side == "SELL" else (QUOTE, qty * limit)
        if self.free.get(need[0], _ZERO) < need[1]:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        list_id = next(self._ids)
        now = _now_ms()
        limit_leg = self._order(ids[0], "LIMIT_MAKER", side, qty, limit, None, now, list_id=list_id)
        self._lock(limit_leg, *need)  # the list holds once: the limit leg's hold, which moves to a fired stop
        self._report(limit_leg, "NEW", now)
        stop_leg = self._order(ids[1], stop_kind, side, qty, stop_limit, stop_tif, now, stop=stop, list_id=list_id)
        self._report(stop_leg, "NEW", now)
        self.lists[list_id] = [stop_leg["orderId"], limit_leg["orderId"]]
        legs = [stop_leg, limit_leg] if side == "SELL" else [limit_leg, stop_leg]  # below first
        return {
            "orderListId": list_id,
            "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED",
            "listOrderStatus": "EXECUTING",
            "listClientOrderId": params.get("listClientOrderId") or f"list_{list_id}",
            "transactionTime": now,
            "symbol": SYMBOL,
            "orders": [{k: o[k] for k in ("symbol", "orderId", "clientOrderId")} for o in legs],
            "orderReports": [self._answer(o, "RESULT", []) for o in legs],
        }

    @staticmethod
    def _crosses(side: str, price: Decimal, best: Decimal) -> bool:
        return price >= best if side == "BUY" else price <= best

    @staticmethod
    def _check_filters(kind: str, qty: Decimal, price: Decimal | None) -> None:
        if price is not None and (price < MIN_PRICE or price > MAX_PRICE or price % TICK):
            raise _filter_failure("PRICE_FILTER")
        if qty < MIN_QTY or qty > MAX_QTY or qty % STEP:
            raise _filter_failure("LOT_SIZE")
        if kind in _MARKET_TYPES and qty > MARKET_MAX_QTY:
            raise _filter_failure("MARKET_LOT_SIZE")
        if price is not None and price * qty < MIN_NOTIONAL:
            raise _filter_failure("NOTIONAL")

    def _fill(self, order: dict[str, Any], price: Decimal, qty: Decimal, *, maker: bool, now: int) -> dict[str, Any]:
        """One execution: balances move, the order and the account's trades record it, the stream hears it."""
        buy = order["side"] == "BUY"
        notional = price * qty
        fee = ((qty if buy else notional) * FEE_RATE).quantize(_EIGHT, rounding=ROUND_UP)
        if buy:  # release the lock at the limit price (if it holds one), pay at the fill price
            limit = Decimal(order["price"])
            self._move(QUOTE, free=self._unlock(order, limit * qty) - notional)
            self._move(BASE, free=qty - fee)
        else:
            self._move(BASE, free=self._unlock(order, qty) - qty)
            self._move(QUOTE, free=notional - fee)
        executed = Decimal(order["executedQty"]) + qty
        order["executedQty"] = _fmt(executed)
        order["cummulativeQuoteQty"] = _fmt(Decimal(order["cummulativeQuoteQty"]) + notional)
        order["status"] = "FILLED" if executed == Decimal(order["origQty"]) else "PARTIALLY_FILLED"
        order["updateTime"] = now
        trade = {
            "symbol": SYMBOL,
            "id": next(self._trade_ids),
            "orderId": order["orderId"],
            "orderListId": order["orderListId"],
            "price": _fmt(price),
            "qty": _fmt(qty),
            "quoteQty": _fmt(notional),
            "commission": _fmt(fee),
            "commissionAsset": BASE if buy else QUOTE,
            "time": now,
            "isBuyer": buy,
            "isMaker": maker,
            "isBestMatch": True,
        }
        self.trades.append(trade)
        self._report(order, "TRADE", now, trade)
        self._end_siblings(order, now)
        return trade

    def _finish(self, order: dict[str, Any], status: str, now: int, cancel_id: str = "") -> None:
        """CANCELED or EXPIRED: what the order still held is free again."""
        self._move(*self._held_back(order))
        order["status"] = status
        order["updateTime"] = now
        self.trailing.pop(order["orderId"], None)
        self._report(order, status, now, cancel_id=cancel_id)

    def _held_back(self, order: dict[str, Any]) -> tuple[str, Decimal]:
        held = self.held.get(order["orderId"])
        if held is None:
            return QUOTE, _ZERO
        return held[0], self._unlock(order)

    @staticmethod
    def _answer(order: dict[str, Any], kind: str, fills: list[dict[str, Any]]) -> dict[str, Any]:
        """The POST /api/v3/order answer in the asked newOrderRespType."""
        ack = {k: order[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId")}
        ack["transactTime"] = order["time"]
        if kind == "ACK":
            return ack
        result = {
            **ack,
            **{k: order[k] for k in ("price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty",
                                     "status", "timeInForce", "type", "side", "stopPrice", "workingTime",
                                     "selfTradePreventionMode")},
        }
        if "trailingDelta" in order:
            result["trailingDelta"] = order["trailingDelta"]
        if kind == "FULL":
            result["fills"] = [
                {"price": t["price"], "qty": t["qty"], "commission": t["commission"],
                 "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
                for t in fills
            ]
        return result

    def _find(self, params: dict[str, str], missing: BinanceError) -> dict[str, Any]:
        """The order named by orderId or origClientOrderId (the newest with that client id)."""
        if params.get("symbol") != SYMBOL:
            raise BinanceError(400, -1121, "Invalid symbol.")
        order_id = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if not order_id and not client_id:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id:
            order = self.orders.get(int(order_id)) if order_id.isdigit() else None
        else:
            matches = [o for o in self.orders.values() if o["clientOrderId"] == client_id]
            order = matches[-1] if matches else None
        if order is None:
            raise missing
        return order

    def _query(self, params: dict[str, str]) -> dict[str, Any]:
        return dict(self._find(params, BinanceError(400, -2013, "Order does not exist.")))

    def _cancel(self, params: dict[str, str]) -> dict[str, Any]:
        unknown = BinanceError(400, -2011, "Unknown order sent.")
        order = self._find(params, unknown)
        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            raise unknown
        cancel_id = params.get("newClientOrderId") or f"cancel_{next(self._ids)}"
        now = _now_ms()
        for leg_id in self.lists.get(order["orderListId"], [order["orderId"]]):  # a leg of a list cancels the list
            leg = self.orders[leg_id]
            if leg["status"] in ("NEW", "PARTIALLY_FILLED"):
                self._finish(leg, "CANCELED", now, cancel_id=cancel_id if leg is order else "")
        answer = {k: order[k] for k in ("symbol", "orderId", "orderListId", "price", "origQty", "executedQty",
                                        "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
                                        "selfTradePreventionMode")}
        return {**answer, "origClientOrderId": order["clientOrderId"], "clientOrderId": cancel_id, "transactTime": now}

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = params.get("symbol")
        if symbol is not None and symbol != SYMBOL:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return [dict(o) for o in self.open_orders()]

    def _my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        if not params.get("symbol"):
            raise _mandatory("symbol")
        trades: Iterable[dict[str, Any]] = self.trades
        if params["symbol"] != SYMBOL:
            if self.history is None or params["symbol"] not in self.history.trades:
                raise BinanceError(400, -1121, "Invalid symbol.")
            trades = self.history.trades[params["symbol"]]
        limit = min(int(params.get("limit", "500")), 1000)
        if "orderId" in params:
            trades = [t for t in trades if t["orderId"] == int(params["orderId"])]
        if "fromId" in params:
            trades = [t for t in trades if t["id"] >= int(params["fromId"])]
        if "startTime" in params:
            trades = [t for t in trades if t["time"] >= int(params["startTime"])]
        if "endTime" in params:
            trades = [t for t in trades if t["time"] <= int(params["endTime"])]
        return sorted(trades, key=lambda t: t["id"])[:limit]

    # --- WebSocket API: the user data stream ------------------------------------------------------
    def _report(
        self, order: dict[str, Any], execution: str, now: int, trade: dict[str, Any] | None = None, cancel_id: str = ""
    ) -> None:
        """Queue the executionReport of one order change for every subscribed user data stream."""
        if not self._subscriptions:
            return
        event = {
            "e": "executionReport",
            "E": now,
            "s": SYMBOL,
            "c": cancel_id or order["clientOrderId"],
            "S": order["side"],
            "o": order["type"],
            "f": order["timeInForce"],
            "q": order["origQty"],
            "p": order["price"],
            "P": order["stopPrice"],
            "F": "0.00000000",
            "g": order["orderListId"],
            "C": order["clientOrderId"] if cancel_id else "",
            "x": execution,
            "X": order["status"],
            "r": "NONE",
            "i": order["orderId"],
            "l": trade["qty"] if trade else "0.00000000",
            "z": order["executedQty"],
            "L": trade["price"] if trade else "0.00000000",
            "n": trade["commission"] if trade else "0",
            "N": trade["commissionAsset"] if trade else None,
            "T": now,
            "t": trade["id"] if trade else -1,
            "I": next(self._ids),
            "w": order["isWorking"] and order["status"] in ("NEW", "PARTIALLY_FILLED"),
            "m": trade["isMaker"] if trade else False,
            "M": False,
            "O": order["time"],
            "Z": order["cummulativeQuoteQty"],
            "Y": trade["quoteQty"] if trade else "0.00000000",
            "Q": "0.00000000",
            "W": order["workingTime"],
            "V": "NONE",
        }
        if "trailingDelta" in order:
            event["d"] = order["trailingDelta"]
        for subscription, queue in self._subscriptions.items():
            queue.put_nowait({"subscriptionId": subscription, "event": event})

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = await accept_ws(self, request, "WS /ws-api/v3")
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        mine: list[int] = []
        senders: list[asyncio.Task[None]] = []
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                command = json.loads(msg.data)
                answer, subscription = self._ws_command(command)
                await ws.send_json(answer)
                if subscription is not None:
                    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
                    self._subscriptions[subscription] = queue
                    mine.append(subscription)
                    senders.append(asyncio.create_task(_drain(ws, queue)))
        finally:
            for subscription in mine:
                self._subscriptions.pop(subscription, None)
            for task in senders:
                task.cancel()
        return ws

    def _ws_command(self, command: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        """The answer to one WebSocket API request, and the new subscription id when it subscribed."""
        request_id = command.get("id")
        method = command.get("method")
        if method != "userDataStream.subscribe.signature":
            return {"id": request_id, "status": 400, "error": {"code": -1020, "msg": "Unsupported operation."}}, None
        params = dict(command.get("params") or {})
        try:
            if params.get("apiKey") != self.api_key:
                raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
            signature = str(params.pop("signature", ""))
            payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
            expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                raise BinanceError(400, -1022, "Signature for this request is not valid.")
            self._check_time({k: str(v) for k, v in params.items()})
        except BinanceError as exc:
            self.refusals.append(("ws-api", exc.code))
            return {"id": request_id, "status": exc.status, "error": {"code": exc.code, "msg": exc.msg}}, None
        subscription = next(self._subscription_ids)
        return {"id": request_id, "status": 200, "result": {"subscriptionId": subscription}}, subscription


async def _drain(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await ws.send_json(await queue.get())


def _split_signature(raw: str) -> tuple[str, str]:
    """(the signed text, the signature) of a query string or body: Binance signs all but `signature=`."""
    if not raw:
        return "", ""
    parts = raw.split("&")
    kept = [p for p in parts if not p.startswith("signature=")]
    signature = next((p.partition("=")[2] for p in parts if p.startswith("signature=")), "")
    return "&".join(kept), signature


def _walk(levels: list[tuple[Decimal, Decimal]], qty: Decimal, side: str, limit: Decimal | None) -> list[tuple[Decimal, Decimal]]:
    """The fills of `qty` taken from `levels` best first, never beyond `limit`."""
    fills = []
    for price, available in levels:
        if qty <= 0:
            break
        if limit is not None and (price > limit if side == "BUY" else price < limit):
            break
        take = min(qty, available)
        fills.append((price, take))
        qty -= take
    return fills


def _walk_quote(levels: list[tuple[Decimal, Decimal]], quote: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The fills a MARKET BUY with `quoteOrderQty` takes: best first, notional never above `quote`, quantities on LOT_SIZE.

    As Binance documents it: the quantity is determined by the market's liquidity and the quote
    amount, without breaking LOT_SIZE; the commission is then charged in the asset received.
    """
    fills = []
    left = quote
    for price, available in levels:
        take = min(available, (left / price / STEP).to_integral_value(rounding=ROUND_DOWN) * STEP)
        if take <= 0:
            break
        fills.append((price, take))
        left -= price * take
        if take < available:
            break
    return fills


def trading_urls(runner: ServerRunner) -> dict[str, str]:
    """The `urls` overrides that point ccxt.binance's spot REST (public, private, sapi) and WebSocket API here."""
    base = f"http://127.0.0.1:{runner.port}"
    return {
        "api.public": f"{base}/api/v3",
        "api.private": f"{base}/api/v3",
        "api.sapi": f"{base}/sapi/v1",
        "api.ws.spot": f"ws://127.0.0.1:{runner.port}/stream/ws",
        "api.ws.ws-api.spot": f"ws://127.0.0.1:{runner.port}/ws-api/v3",
    }


# --- An account's past: more markets' trades, deposits, withdrawals, klines ----------------------------------------
# A separate block: TradingBinance given an AccountHistory also answers these, and nothing above changes without one.

_DAY_MS = 86_400_000
_WINDOW_MS = 90 * _DAY_MS  # deposit and withdrawal history: at most 90 days between startTime and endTime
_KLINE_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}


def _market_info(symbol: str, base: str, quote: str) -> dict[str, Any]:
    """An exchangeInfo entry for another spot market: BTCUSDT's shape and filters with its own assets."""
    info: dict[str, Any] = json.loads(json.dumps(EXCHANGE_INFO["symbols"][0]))
    info.update(symbol=symbol, baseAsset=base, quoteAsset=quote)
    return info


def _apply_ms(text: str) -> int:
    """A withdrawal's `applyTime` ("2021-04-15 12:09:16", UTC) in unix ms."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()) * 1000


class AccountHistory:
    """What an account did before anyone watched it, in Binance's shapes, for the signed history endpoints.

    - `GET /api/v3/myTrades` of the markets in `trades` (symbol id -> trades in myTrades' shape), besides
      BTCUSDT's own (TradingBinance.trades);
    - signed `GET /sapi/v1/capital/deposit/hisrec` (records with `id, amount, coin, network, status, address,
      addressTag, txId, insertTime, transferType, confirmTimes, unlockConfirm, walletType`) and
      `GET /sapi/v1/capital/withdraw/history` (`id, amount, transactionFee, coin, status, address, txId,
      applyTime` "YYYY-MM-DD HH:MM:SS" UTC, `network, transferType, completeTime`), each with `coin`,
      `startTime`/`endTime` (at most 90 days apart, -1127 beyond; none sent: the last 90 days), `offset` and
      `limit` (default 1000, at most 1000), oldest first;
    - public `GET /api/v3/klines` of the markets in `klines` (symbol id -> `[open_ms, o, h, l, c, v]` rows of
      `interval`), with `startTime`, `endTime`, `limit` (default 500, at most 1000), 12 cells a kline;
    - exchangeInfo lists every market of `markets` (symbol id -> (base, quote)) after BTCUSDT.
    """

    def __init__(
        self,
        markets: dict[str, tuple[str, str]],
        trades: dict[str, list[dict[str, Any]]],
        deposits: list[dict[str, Any]],
        withdrawals: list[dict[str, Any]],
        klines: dict[str, list[list[float]]],
        interval: str = "5m",
    ) -> None:
        self.markets = markets
        self.trades = trades
        self.deposits = deposits
        self.withdrawals = withdrawals
        self.klines = klines
        self.interval = interval
        self.kline_requests: list[tuple[str, int | None, int]] = []  # (symbol, startTime, limit)

    def exchange_info(self, base_info: dict[str, Any]) -> dict[str, Any]:
        extra = [_market_info(symbol, base, quote) for symbol, (base, quote) in self.markets.items() if symbol != SYMBOL]
        return {**base_info, "symbols": [*base_info["symbols"], *extra]}

    def add_routes(self, app: web.Application, signed: Callable[[str, Callable[[dict[str, str]], Any]], Any]) -> None:
        app.router.add_get("/sapi/v1/capital/deposit/hisrec", signed("deposits", self._deposits))
        app.router.add_get("/sapi/v1/capital/withdraw/history", signed("withdrawals", self._withdrawals))
        app.router.add_get("/api/v3/klines", self._klines)

    @staticmethod
    def _window(params: dict[str, str], records: list[dict[str, Any]], stamp: Callable[[dict[str, Any]], int]) -> list[dict[str, Any]]:
        end = int(params["endTime"]) if "endTime" in params else None
        start = int(params["startTime"]) if "startTime" in params else None
        if start is None and end is None:
            end = _now_ms()
        if start is None:
            start = end - _WINDOW_MS  # type: ignore[operator]
        if end is None:
            end = start + _WINDOW_MS
        if end - start > _WINDOW_MS:
            raise BinanceError(400, -1127, "More than 90 days between startTime and endTime.")
        coin = params.get("coin")
        chosen = sorted((r for r in records if start <= stamp(r) <= end and (coin is None or r["coin"] == coin)), key=stamp)
        offset = int(params.get("offset", "0"))
        limit = min(int(params.get("limit", "1000")), 1000)
        return chosen[offset : offset + limit]

    def _deposits(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self._window(params, self.deposits, lambda r: int(r["insertTime"]))

    def _withdrawals(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self._window(params, self.withdrawals, lambda r: _apply_ms(r["applyTime"]))

    async def _klines(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        symbol = query.get("symbol", "")
        if symbol not in self.klines:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        if query.get("interval") != self.interval:
            return web.json_response({"code": -1120, "msg": "Invalid interval."}, status=400)
        step = _KLINE_MS[self.interval]
        start = int(query["startTime"]) if "startTime" in query else None
        end = int(query["endTime"]) if "endTime" in query else None
        limit = min(int(query.get("limit", "500")), 1000)
        self.kline_requests.append((symbol, start, limit))
        out: list[list[Any]] = []
        for row in self.klines[symbol]:
            t = int(row[0])
            if (start is None or t >= start) and (end is None or t <= end):
                out.append([t, *(f"{v:.8f}" for v in row[1:6]), t + step - 1, "0", 0, "0", "0", "0"])
                if len(out) == limit:
                    break
        return web.json_response(out)

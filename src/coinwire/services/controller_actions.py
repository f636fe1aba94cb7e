"""The controller's actions on a live scope: close everything, cancel orders, steer a run, notify, call a webhook.

Why each action is written the way it is:
- Exactly once. An action is one journaled command (`rule_commands`); every order it places has
  a client_oid derived from the command's id and a step number (`cw-r<firing>-<index>-<step>`),
  and before placing step n the gateway is asked whether that client_oid already names an order.
  A process killed after the gateway committed an order but before the command's detail was
  updated finds that order on resume and counts it, instead of selling again. What is left to
  sell is always read from the live balances, so a resumed `close_all` sells only what remains.
- Sliced to the visible depth. A market sell never asks for more than the bids the book shows
  (the best `depth_levels` levels), so a thin book is eaten level by level, not swept blind; a
  market whose book has no bid is "no liquidity": what could be sold is sold, the rest is
  retried later, and the detail says what was sold where.
- Retried while a venue is unreachable (NotReady): the command stays pending with its attempts
  counted and a backoff; a refusal the venue will repeat (InvalidInput, DomainError) fails it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx
import msgspec
import structlog

from coinwire.core.accounts import EXTERNAL
from coinwire.core.breaker import DependencyUnavailable
from coinwire.core.errors import Conflict, DomainError, InvalidInput, NotFound, NotReady
from coinwire.core.instruments import FEE_SCALE, SPOT, Instrument
from coinwire.core.numbers import ATTO_DECIMALS, POW10
from coinwire.core.orders import OrderRequest, OrderType, PositionSide, Side
from coinwire.core.wallets import Wallet
from coinwire.services.breakers import Breakers
from coinwire.services.gateway import Gateway
from coinwire.services.notifications.webhook import check_url, sign
from coinwire.venues.paper import PaperMarket

__all__ = ["ActionContext", "ActionRunner", "Outcome", "RunControl", "scope_accounts", "scope_wallets"]

log = structlog.get_logger("coinwire.controller")

_MAX_SLICES: Final = 200  # market orders one pass of one market places at most (a book refilled between them)
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


class RunControl(Protocol):
    """What the controller asks of the run manager (services.runs.RunManager)."""

    async def stop(self, run_id: str) -> dict[str, Any]: ...

    async def control(self, run_id: str, action: str, factor: Decimal | None = None) -> dict[str, Any]: ...


Progress = Callable[[dict[str, Any]], Awaitable[None]]
Notify = Callable[[int, str, str, str, str, dict[str, Any]], Awaitable[int]]  # NotificationService.notify's shape


@dataclass
class ActionContext:
    """The firing a command belongs to: whose rule set, on which scope, what made it fire."""

    command_id: str  # f"{firing_id}:{index}"
    firing_id: int
    index: int
    rule_set_id: int
    rule_set_name: str
    owner_id: int
    scope: str
    scope_id: str
    mode: str  # live | dry_run
    time_ns: int
    values: dict[str, str]


@dataclass
class Outcome:
    """What one attempt of a command did: its status (`done`, `failed`, `recorded`, or `pending` to retry) and detail."""

    status: str
    detail: dict[str, Any] = field(default_factory=dict)


def scope_accounts(gateway: Gateway, owner_id: int, scope: str, scope_id: str) -> list[int]:
    """The tradable accounts a scope covers that its rule set's owner may still trade (checked again at each action).

    The scope itself was checked when the rule set was stored (services.rule_sets); a grant taken
    back since leaves that account out, so a firing never touches an account its owner lost.
    """
    book = gateway.accounts
    accounts = book.accounts
    if scope == "account":
        ids = [int(scope_id)] if scope_id.isdigit() else []
    elif scope == "user":
        ids = sorted(a.id for a in accounts.values() if a.owner_id == owner_id)
    else:
        ids = sorted({w.account_id for w in scope_wallets(gateway, owner_id, scope, scope_id, check=False)})
    return [i for i in ids if i in accounts and accounts[i].active and accounts[i].kind != EXTERNAL
            and book.may(i, owner_id, False, "trade")]


def scope_wallets(gateway: Gateway, owner_id: int, scope: str, scope_id: str, *, check: bool = True) -> list[Wallet]:
    """The wallets (partitions) whose funds the scope holds: an account's all, a wallet set's, a run's sets', a user's."""
    ledger = gateway.ledger
    sets = {s.id: s for s in ledger.wallet_sets(active_only=True)}
    if scope == "wallet_set":
        wanted = {int(scope_id)} if scope_id.isdigit() and int(scope_id) in sets else set()
        found = [w for w in ledger.all_wallets() if w.wallet_set_id in wanted]
    elif scope == "run":
        wanted = {s.id for s in sets.values() if s.run_id == scope_id}
        found = [w for w in ledger.all_wallets() if w.wallet_set_id in wanted]
    else:
        allowed = set(scope_accounts(gateway, owner_id, scope, scope_id))
        return sorted((w for w in ledger.all_wallets() if w.account_id in allowed
                       and (w.wallet_set_id is None or w.wallet_set_id in sets)), key=_wallet_order)
    if check:
        allowed = {w.account_id for w in found if gateway.accounts.may(w.account_id, owner_id, False, "trade")
                   and w.account_id in gateway.accounts.accounts and gateway.accounts.accounts[w.account_id].kind != EXTERNAL}
        found = [w for w in found if w.account_id in allowed]
    return sorted(found, key=_wallet_order)


def _wallet_order(w: Wallet) -> tuple[int, int, str, str]:
    return (w.account_id, w.wallet_set_id or 0, w.exchange, w.currency)


def _atto_to_units(atto: int, inst: Instrument) -> int:
    return atto // POW10[ATTO_DECIMALS - inst.size_decimals]


class ActionRunner:
    """Runs one command of a firing against the gateway, the run manager, the notifications and the web."""

    def __init__(self, gateway: Gateway, runs: RunControl | None, notify: Notify, *, depth_levels: int = 20,
                 webhook_timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None,
                 breakers: Breakers | None = None) -> None:
        self.gateway = gateway
        self.breakers = breakers  # a webhook's host behind its `webhook:<host>` breaker
        self.runs = runs
        self.notify = notify
        self.depth_levels = depth_levels
        self._http = httpx.AsyncClient(timeout=webhook_timeout, transport=transport, follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def run(self, ctx: ActionContext, action: Mapping[str, Any], detail: dict[str, Any],
                  progress: Progress | None = None) -> Outcome:
        """One attempt of `action` (its JSON form); `detail` is what earlier attempts stored (resumed from it);
        `progress(detail)` is awaited after each order, so the journal says what was done at every step."""
        kind = str(action.get("kind"))
        if ctx.mode == "dry_run" and kind not in ("notify",):
            return Outcome("recorded", {"would": _would(kind, action, ctx)})
        try:
            if kind == "close_all":
                return await self._close_all(ctx, action, detail, progress)
            if kind == "cancel_orders":
                return await self._cancel_orders(ctx)
            if kind in ("stop_run", "pause_entries", "scale_orders"):
                return await self._run_command(ctx, kind, action)
            if kind == "notify":
                return await self._notify(ctx, action)
            if kind == "webhook":
                return await self._webhook(ctx, action, detail)
        except NotReady as exc:
            return Outcome("pending", {**detail, "error": exc.code, "message": str(exc)})
        return Outcome("failed", {"error": "unknown_action_kind", "message": f"no action {kind!r}"})

    # --- close_all ----------------------------------------------------------------------------------
    async def _close_all(self, ctx: ActionContext, action: Mapping[str, Any], detail: dict[str, Any],
                         progress: Progress | None) -> Outcome:
        """Sell every spot holding of the scope, slice by slice, then close its perpetual positions reduce-only."""
        out: dict[str, Any] = {"sold": dict(detail.get("sold", {})), "closed": list(detail.get("closed", [])),
                               **({"bought": dict(detail["bought"])} if "bought" in detail else {}),
                               "left": {}, "step": int(detail.get("step", 0)), "orders": list(detail.get("orders", []))}
        if action.get("pause", True) and ctx.scope == "run" and self.runs is not None and not detail.get("paused"):
            await self.runs.control(ctx.scope_id, "pause")  # so the run does not buy back what is sold
            out["paused"] = True
        elif detail.get("paused"):
            out["paused"] = True
        target = action.get("currency")
        pending = False
        try:
            for wallet in scope_wallets(self.gateway, ctx.owner_id, ctx.scope, ctx.scope_id):
                if wallet.currency == target or wallet.available <= 0:
                    continue
                venue = self.gateway.venues.get(wallet.exchange)
                if venue is None:
                    continue
                inst = _sell_market(venue.markets, wallet.currency, target)
                if inst is None:
                    buy = _buy_market(venue.markets, target, wallet.currency) if target is not None else None
                    if buy is None:
                        continue  # cash (a quote only), or no market turns it into the wanted currency: left as it is
                    left = await self._spend(ctx, wallet, buy, out, progress)  # the target's quote buys the target
                    if left:
                        pending = True
                        out["left"][_market_key(wallet, buy)] = str(Decimal(left).scaleb(-ATTO_DECIMALS))
                    continue
                left = await self._sell(ctx, wallet, inst, out, progress)
                if left:
                    pending = True
                    out["left"][_market_key(wallet, inst)] = inst.size_str(left)
            pending = await self._close_positions(ctx, out) or pending
        except NotReady as exc:  # the venue went away mid-way: what was done so far is kept, the rest retried
            return Outcome("pending", {**out, "error": exc.code, "message": str(exc)})
        return Outcome("pending" if pending else "done", out)

    async def _sell(self, ctx: ActionContext, wallet: Wallet, inst: Instrument, out: dict[str, Any],
                    progress: Progress | None) -> int:
        """Market-sell the wallet's available base in slices of the visible bids; the size left unsold (no liquidity)."""
        gateway = self.gateway
        key = _market_key(wallet, inst)
        for _ in range(_MAX_SLICES):
            oid = await self._next_slice(ctx, out)
            available = gateway.ledger.available_of(wallet.exchange, wallet.currency, wallet.wallet_set_id, wallet.account_id)
            units = _atto_to_units(available, inst)
            units -= units % inst.step
            if units <= 0 or units < inst.min_size:
                return 0  # sold (what is left is below the market's smallest order: dust)
            market = gateway.venues[wallet.exchange].market(inst.symbol)
            if market is None:
                return units
            # the bids a sell may still take (displayed minus what our own orders took there), best `depth_levels` levels
            levels = list(islice(market.engine.available_levels(Side.SELL, None), self.depth_levels))
            if levels and _notional(inst, levels[0][0], units) < inst.min_notional:
                out.setdefault("dust", {})[key] = inst.size_str(units)  # worth less than the market's smallest order
                return 0
            size = min(units, sum(available for _, available in levels))
            size -= size % inst.step
            if size <= 0 or size < inst.min_size or _notional(inst, levels[-1][0], size) < inst.min_notional:
                return units  # no liquidity now: retried later
            if not await self._place(ctx, wallet, inst, out, progress, oid, "sold", size=size):
                return units  # refused (noted under `errors`), or the book had nothing for it after all
        return 0

    async def _spend(self, ctx: ActionContext, wallet: Wallet, inst: Instrument, out: dict[str, Any],
                     progress: Progress | None) -> int:
        """Market-buy `inst`'s base with the wallet's available quote, each buy's funds no more than the visible asks
        take (fees included); the funds (ATTO) left unspent for want of liquidity, 0 once what is left buys nothing."""
        gateway = self.gateway
        key = _market_key(wallet, inst)
        for _ in range(_MAX_SLICES):
            oid = await self._next_slice(ctx, out)
            funds = gateway.ledger.available_of(wallet.exchange, wallet.currency, wallet.wallet_set_id, wallet.account_id)
            if funds <= 0 or funds * FEE_SCALE // (FEE_SCALE + inst.taker_fee) < inst.min_notional:
                if funds > 0:
                    out.setdefault("dust", {})[key] = str(Decimal(funds).scaleb(-ATTO_DECIMALS))
                return 0
            market = gateway.venues[wallet.exchange].market(inst.symbol)
            if market is None:
                return funds
            levels = list(islice(market.engine.available_levels(Side.BUY, None), self.depth_levels))
            visible = 0
            for price, size in levels:
                notional = inst.notional_atto(price, size - size % inst.step)
                visible += notional + inst.fee_atto(notional, maker=False)
            spend = min(funds, visible)
            if not levels or spend * FEE_SCALE // (FEE_SCALE + inst.taker_fee) < inst.min_notional:
                return funds  # no liquidity now: retried later
            try:
                placed = await self._place(ctx, wallet, inst, out, progress, oid, "bought", funds=spend)
            except (InvalidInput, DomainError) as exc:
                if exc.code != "funds_below_min_size":
                    raise
                out.setdefault("dust", {})[key] = str(Decimal(funds).scaleb(-ATTO_DECIMALS))  # buys less than one step
                return 0
            if not placed:
                return funds
        return 0

    async def _next_slice(self, ctx: ActionContext, out: dict[str, Any]) -> str:
        """The client id of the next slice, once the slices placed before a crash and not yet counted are counted, each
        under its own market and side (it may be another holding's: the resumed command starts again from the first
        wallet). A slice's id names it in the gateway: one placed is never placed again."""
        while True:
            oid = f"cw-r{ctx.firing_id}-{ctx.index}-{out['step']}"
            existing = await self._existing(oid, ctx.owner_id)
            if existing is None:
                return oid
            self._count(out, existing["key"], existing["filled_size"], oid, existing["total"])
            out["step"] += 1

    async def _place(self, ctx: ActionContext, wallet: Wallet, inst: Instrument, out: dict[str, Any], progress: Progress | None,
                     oid: str, total: str, size: int = 0, funds: int | None = None) -> bool:
        """Place one market slice (a sell of `size`, or a buy for `funds`) and count it; False when nothing filled or the
        order was refused (the refusal noted under `errors`; `funds_below_min_size` raised for the caller's dust)."""
        gateway = self.gateway
        key = _market_key(wallet, inst)
        gateway.ready_exchange(wallet.exchange)  # NotReady: the whole command waits
        request = OrderRequest(exchange=wallet.exchange, instrument=inst, side=Side.SELL if funds is None else Side.BUY,
                               type=OrderType.MARKET, size=size, limit=0, cancel_after=0, client_oid=oid,
                               wallet_set_id=wallet.wallet_set_id, run_id=None, owner_id=ctx.owner_id,
                               account_id=wallet.account_id, funds=funds or 0)
        try:
            view = await gateway.make_order(request)
        except (InvalidInput, DomainError) as exc:
            if isinstance(exc, NotReady) or exc.code == "funds_below_min_size":
                raise
            out.setdefault("errors", {})[key] = f"{exc.code}: {exc}"
            return False
        out["step"] += 1
        self._count(out, key, view.filled_size, oid, total)
        if progress is not None:
            await progress(out)
        return Decimal(view.filled_size) != 0

    async def _existing(self, client_oid: str, owner_id: int) -> dict[str, Any] | None:
        gateway = self.gateway
        order = gateway.existing_order(client_oid, owner_id)
        if order is None and gateway.client_oid_filter.may_contain(owner_id, client_oid):
            order = await gateway.store.get_order_by_client_oid(client_oid, owner_id)
        if order is None:
            return None
        inst = gateway.instrument_of(order)
        return {"filled_size": inst.size_str(order.filled_size), "total": "bought" if order.side == Side.BUY else "sold",
                "key": _key(order.account_id, order.wallet_set_id, order.exchange, order.symbol)}

    @staticmethod
    def _count(out: dict[str, Any], key: str, filled: str, oid: str, total: str = "sold") -> None:
        """One order's filled size, added to `sold` (a sell) or `bought` (a buy of the target with its quote)."""
        counted = out.setdefault(total, {})
        counted[key] = str(Decimal(counted.get(key, "0")) + Decimal(filled))
        order = {"client_oid": oid, "market": key, "filled": filled}
        if total == "bought":
            order["side"] = "buy"
        out["orders"].append(order)

    async def _close_positions(self, ctx: ActionContext, out: dict[str, Any]) -> bool:
        """Close every open perpetual position of the scope with a reduce-only market order; True while one is left."""
        accounts = scope_accounts(self.gateway, ctx.owner_id, ctx.scope, ctx.scope_id)
        sets = ({w.wallet_set_id for w in scope_wallets(self.gateway, ctx.owner_id, ctx.scope, ctx.scope_id)}
                if ctx.scope in ("wallet_set", "run") else None)
        left = False
        for pos in self.gateway.positions(accounts=accounts):
            if sets is not None and pos.wallet_set_id not in sets:
                continue
            oid = f"cw-r{ctx.firing_id}-{ctx.index}-{out['step']}"
            out["step"] += 1
            try:
                view = await self.gateway.close_position(
                    account_id=pos.account, exchange=pos.exchange, symbol=pos.symbol,
                    position_side=PositionSide(pos.position_side), wallet_set_id=pos.wallet_set_id,
                    owner_id=ctx.owner_id, client_oid=oid)
            except NotReady:
                raise
            except (InvalidInput, DomainError) as exc:
                if getattr(exc, "code", "") == "no_position":
                    continue
                left = True
                out.setdefault("errors", {})[f"{pos.exchange}:{pos.symbol}"] = f"{exc.code}: {exc}"
                continue
            out["closed"].append({"account": pos.account, "exchange": pos.exchange, "symbol": pos.symbol,
                                  "position_side": pos.position_side, "size": view.filled_size, "client_oid": oid})
            if Decimal(view.filled_size) < Decimal(pos.size):
                left = True
        return left

    # --- the others -----------------------------------------------------------------------------------
    async def _cancel_orders(self, ctx: ActionContext) -> Outcome:
        accounts = scope_accounts(self.gateway, ctx.owner_id, ctx.scope, ctx.scope_id)
        sets = ({w.wallet_set_id for w in scope_wallets(self.gateway, ctx.owner_id, ctx.scope, ctx.scope_id)}
                if ctx.scope in ("wallet_set", "run") else None)
        cancelled: list[int] = []
        for view in self.gateway.open_orders(accounts=accounts):
            if sets is not None and view.wallet_set_id not in sets:
                continue
            try:
                await self.gateway.cancel_order(order_id=int(view.id), client_oid=None, exchange=None)
            except (NotFound, Conflict):
                continue  # done or gone meanwhile: nothing left to cancel
            cancelled.append(int(view.id))
        return Outcome("done", {"cancelled": cancelled})

    async def _run_command(self, ctx: ActionContext, kind: str, action: Mapping[str, Any]) -> Outcome:
        if ctx.scope != "run":
            return Outcome("failed", {"error": "not_a_run", "message": f"{kind} acts on a run; this rule set's scope is {ctx.scope}"})
        if self.runs is None:
            return Outcome("failed", {"error": "runs_unavailable", "message": "this process runs no strategies"})
        try:
            if kind == "stop_run":
                answer = await self.runs.stop(ctx.scope_id)
            elif kind == "pause_entries":
                answer = await self.runs.control(ctx.scope_id, "pause")
            else:
                answer = await self.runs.control(ctx.scope_id, "scale", factor=Decimal(str(action["factor"])))
        except (NotFound, Conflict, InvalidInput) as exc:  # not running (any more), or a run not controlled from here
            return Outcome("failed", {"error": exc.code, "message": str(exc)})
        if kind == "stop_run":
            return Outcome("done", {"run": ctx.scope_id, "status": answer.get("status")})
        return Outcome("done", {"run": ctx.scope_id, "entries_paused": answer.get("entries_paused"), "scale": answer.get("scale")})

    async def _notify(self, ctx: ActionContext, action: Mapping[str, Any]) -> Outcome:
        text = action.get("message") or firing_text(ctx)
        added = await self.notify(ctx.owner_id, "rule_fired", ctx.command_id, f"Rule set {ctx.rule_set_name!r} fired",
                                  str(text), firing_data(ctx))
        return Outcome("done", {"notifications": added})

    async def _webhook(self, ctx: ActionContext, action: Mapping[str, Any], detail: dict[str, Any]) -> Outcome:
        """A signed POST of the firing; 2xx done, 408/425/429/5xx or no connection retried, another 4xx failed."""
        try:
            url = check_url(action.get("url"))
        except InvalidInput as exc:
            return Outcome("failed", {"error": exc.code, "message": str(exc)})
        body = msgspec.json.encode(firing_data(ctx))
        headers = {"Content-Type": "application/json", "User-Agent": "coinwire-rules",
                   "X-Coinwire-Event": "rule_fired", "X-Coinwire-Delivery": ctx.command_id}
        secret = action.get("secret")
        if secret:
            headers["X-Coinwire-Signature"] = sign(str(secret), body)
        host = urlsplit(url).hostname
        try:
            if self.breakers is None:
                answer = await self._http.post(url, content=body, headers=headers)
            else:
                async with self.breakers.get(f"webhook:{host}").call(_webhook_failed):
                    answer = await self._http.post(url, content=body, headers=headers)
                    if _retry_status(answer.status_code):
                        raise _HostFailing(answer.status_code)  # counted against the host's breaker
        except DependencyUnavailable as exc:  # not tried: the host failed repeatedly, its breaker is open
            return Outcome("pending", {"error": exc.code, "dependency": exc.dependency, "retry_after": exc.retry_after})
        except _HostFailing as exc:
            return Outcome("pending", {"error": "webhook_status", "http_status": exc.status})
        except (httpx.HTTPError, OSError) as exc:
            return Outcome("pending", {"error": "webhook_unreachable", "message": f"{host}: {exc!r}"})
        if 200 <= answer.status_code < 300:
            return Outcome("done", {"http_status": answer.status_code})
        if _retry_status(answer.status_code):
            return Outcome("pending", {"error": "webhook_status", "http_status": answer.status_code})
        return Outcome("failed", {"error": "webhook_refused", "http_status": answer.status_code})


class _HostFailing(Exception):
    """A webhook host's answer that says it is failing (5xx, 408, 425, 429): its breaker counts it."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _retry_status(status: int) -> bool:
    return status in _RETRY_STATUSES or status >= 500


def _webhook_failed(exc: BaseException) -> bool:
    return isinstance(exc, (_HostFailing, httpx.HTTPError, OSError))


def _buy_market(markets: Mapping[str, PaperMarket], target: object, currency: str) -> Instrument | None:
    """The spot market buying `target` with `currency` (its quote): how a holding of the target's quote is spent on it."""
    found = [m.instrument for m in markets.values()
             if m.instrument.kind == SPOT and m.instrument.base == target and m.instrument.quote == currency]
    return min(found, key=lambda i: i.symbol) if found else None


def _sell_market(markets: Mapping[str, PaperMarket], currency: str, target: object) -> Instrument | None:
    """The spot market selling `currency`: into `target` when given, else into the quote most of the venue's markets use."""
    candidates = [m.instrument for m in markets.values() if m.instrument.kind == SPOT and m.instrument.base == currency]
    if target is not None:
        candidates = [i for i in candidates if i.quote == target]
    if not candidates:
        return None
    quotes: dict[str, int] = {}
    for m in markets.values():
        quotes[m.instrument.quote] = quotes.get(m.instrument.quote, 0) + 1
    return min(candidates, key=lambda i: (-quotes.get(i.quote, 0), i.symbol))


def _notional(inst: Instrument, price: int, size: int) -> int:
    """ATTO of the quote that `size` at `price` is worth (a spot market's notional)."""
    return price * size * POW10[ATTO_DECIMALS - inst.price_decimals - inst.size_decimals]


def _market_key(wallet: Wallet, inst: Instrument) -> str:
    return _key(wallet.account_id, wallet.wallet_set_id, wallet.exchange, inst.symbol)


def _key(account_id: int, wallet_set_id: int | None, exchange: str, symbol: str) -> str:
    """`account[/set<id>]:exchange:symbol`: where a close_all's sales (or buys) are counted."""
    part = f"/set{wallet_set_id}" if wallet_set_id is not None else ""
    return f"{account_id}{part}:{exchange}:{symbol}"


def _would(kind: str, action: Mapping[str, Any], ctx: ActionContext) -> str:
    return f"{kind} on {ctx.scope} {ctx.scope_id} (dry run: nothing done)"


def firing_text(ctx: ActionContext) -> str:
    values = ", ".join(f"{k} {v}" for k, v in sorted(ctx.values.items()))
    mode = " (dry run: nothing traded)" if ctx.mode == "dry_run" else ""
    return f"Rule set {ctx.rule_set_name!r} on {ctx.scope} {ctx.scope_id} fired{mode}: {values}"


def firing_data(ctx: ActionContext) -> dict[str, Any]:
    return {"rule_set_id": ctx.rule_set_id, "rule_set": ctx.rule_set_name, "firing_id": ctx.firing_id, "scope": ctx.scope,
            "scope_id": ctx.scope_id, "mode": ctx.mode, "time": ctx.time_ns / 1e9, "values": ctx.values}

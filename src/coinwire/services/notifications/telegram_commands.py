"""The chat owner's Telegram commands (/status, /balance, /positions, /runs, /stop RUN, /daily, /help), answered as short text.

`TelegramCommands.answer(user_id, text)` is called by the bot poller only for a message from
the chat the user configured, so `user_id` is who is asking; everything shown is scoped to
that user: the accounts they own or were granted (an admin sees their own, not every
account: a chat is a personal surface), and the runs they started (the owners table). Another
user's run answers "no such run", exactly as a run that does not exist.

`/stop RUN` changes state, so it is asked twice: the first answer names the run and asks for
`/stop RUN yes` within `confirm_seconds`; only then is the run stopped. A confirmation is kept
in memory: after a restart, a late "yes" finds nothing to confirm and asks again.

Its collaborators arrive as small protocols (the gateway's ledger and accounts, the run
manager, health, the store's fills, preferences, conversion) so this module imports no API or
app code; the composition root passes the real ones.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import structlog
from sqlalchemy import select

from coinwire.core.accounts import Account
from coinwire.core.conversion import Conversion
from coinwire.core.errors import CoinwireError
from coinwire.core.ledger import Balance
from coinwire.core.numbers import atto_to_str
from coinwire.store import Store
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.tables import fills

__all__ = ["TelegramCommands", "StoreFills", "FillRow", "COMMANDS", "CONFIRM_SECONDS"]

log = structlog.get_logger("coinwire.telegram")

CONFIRM_SECONDS = 60.0
MASKED = "•••••"
_LISTED_RUNS = 10
COMMANDS = {
    "status": "the exchanges' status and the server's health",
    "balance": "your accounts' balances",
    "positions": "your holdings per account, valued in your display currency",
    "runs": "your strategy runs",
    "stop RUN": "stop one of your runs (asks for confirmation)",
    "daily": "today's fills, volume and cash flow per account",
    "help": "this list",
}


class FillRow(NamedTuple):
    account_id: int
    symbol: str
    side: str
    notional: Decimal  # in the quote currency
    fee: Decimal
    fee_currency: str  # the quote when the fill's fee was paid in it


# --- what the commands read (the composition root passes the real objects) -----------------------
class AccountsView(Protocol):
    @property
    def accounts(self) -> Mapping[int, Account]: ...
    def personal(self, user_id: int | None) -> Collection[int]: ...


class LedgerView(Protocol):
    def account_balances(self, exchange: str, account: int) -> dict[str, Balance]: ...


class GatewayView(Protocol):
    @property
    def ledger(self) -> LedgerView: ...
    @property
    def accounts(self) -> AccountsView: ...


class HealthView(Protocol):
    async def report(self) -> dict[str, Any]: ...


class RunsView(Protocol):
    def list(self) -> list[dict[str, Any]]: ...
    async def stop(self, run_id: str) -> dict[str, Any]: ...


class FillsView(Protocol):
    async def fills_since(self, accounts: Collection[int], since_ns: int) -> list[FillRow]: ...


class PreferencesView(Protocol):
    async def get(self, user_id: int) -> dict[str, Any]: ...


class Converter(Protocol):
    async def convert(self, amount: object, source: object, target: object) -> Conversion: ...


class StoreFills:
    """The fills of some accounts since an instant, read from the store's `fills` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def fills_since(self, accounts: Collection[int], since_ns: int) -> list[FillRow]:
        if not accounts:
            return []
        query = (select(fills.c.account_id, fills.c.symbol, fills.c.side, fills.c.notional, fills.c.fee, fills.c.fee_currency)
                 .where(fills.c.account_id.in_(sorted(accounts)), fills.c.ts >= since_ns).order_by(fills.c.id))
        try:
            async with self.store.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise
        return [FillRow(int(a), s, side, Decimal(n), Decimal(f), fc or s.split("/")[1]) for a, s, side, n, f, fc in rows]


def _amount(value: Decimal | int) -> str:
    """An exact amount without trailing zeros (ATTO integers are converted first)."""
    text = atto_to_str(value) if isinstance(value, int) else format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _masked(value: Decimal | int) -> str:
    return MASKED


def _shown(prefs: Mapping[str, Any]) -> Callable[[Decimal | int], str]:
    """How amounts are written for this user: exact, or `•••••` when they mask balances (as the dashboard does)."""
    return _masked if prefs.get("mask") else _amount


def _cents(prefs: Mapping[str, Any]) -> Callable[[Decimal | int], str]:
    """How values in the display currency (already rounded to cents) are written for this user."""
    return _masked if prefs.get("mask") else str


class TelegramCommands:
    """Answers one user's commands; `answer` returns the reply text (None: nothing to say)."""

    def __init__(self, gateway: GatewayView, runs: RunsView, run_owner: Callable[[str], int | None], health: HealthView,
                 fills: FillsView, preferences: PreferencesView, converter: Converter | None = None, *,
                 confirm_seconds: float = CONFIRM_SECONDS, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], int] = time.time_ns) -> None:
        self.gateway = gateway
        self.runs = runs
        self.run_owner = run_owner
        self.health = health
        self.fills = fills
        self.preferences = preferences
        self.converter = converter
        self.confirm_seconds = confirm_seconds
        self.clock = clock
        self.wall_clock = wall_clock
        self._pending: dict[int, tuple[str, float]] = {}  # user id -> (run id awaiting "yes", until when)

    async def answer(self, user_id: int, text: str) -> str | None:
        """The reply to `text` from `user_id`'s own chat; a refusal or a fault is answered in words, never raised."""
        words = text.strip().split()
        if not words or not words[0].startswith("/"):
            return "Send /help for the commands."
        command, args = words[0][1:].split("@", 1)[0].lower(), words[1:]
        try:
            if command in ("help", "start"):
                return self.help()
            if command == "status":
                return await self.status()
            if command == "balance":
                return await self.balance(user_id)
            if command == "positions":
                return await self.positions(user_id)
            if command == "runs":
                return self.list_runs(user_id)
            if command == "stop":
                return await self.stop(user_id, args)
            if command == "daily":
                return await self.daily(user_id)
        except CoinwireError as exc:
            return f"Could not answer /{command}: {exc.message}"
        except Exception:  # a bug: the chat gets a short answer, the log the details
            log.exception("telegram command failed", command=command, user=user_id)
            return f"/{command} failed on the server (see its log)."
        return f"Unknown command /{command}. Send /help for the commands."

    @staticmethod
    def help() -> str:
        return "Commands:\n" + "\n".join(f"/{name} - {what}" for name, what in COMMANDS.items())

    async def status(self) -> str:
        report = await self.health.report()
        lines = [f"Server: {report['status']}"]
        lines += [f"- {reason['message']}" for reason in report["reasons"][:5]]
        if len(report["reasons"]) > 5:
            lines.append(f"- and {len(report['reasons']) - 5} more")
        lines += [f"Exchange {name}: {state}" for name, state in sorted(report["exchanges"].items())]
        return "\n".join(lines)

    def _accounts(self, user_id: int) -> list[Account]:
        book = self.gateway.accounts
        return [book.accounts[i] for i in sorted(book.personal(user_id)) if i in book.accounts]

    async def balance(self, user_id: int) -> str:
        accounts = self._accounts(user_id)
        if not accounts:
            return "You have no accounts yet."
        shown = _shown(await self.preferences.get(user_id))
        lines = []
        for account in accounts:
            lines.append(f"Account {account.id} {account.name} ({account.exchange}, {account.kind}):")
            held = {c: b for c, b in sorted(self.gateway.ledger.account_balances(account.exchange, account.id).items()) if b.balance}
            lines += [f"  {c} {shown(b.balance)} (available {shown(b.available)})" for c, b in held.items()] or ["  no funds"]
        return "\n".join(lines)

    async def positions(self, user_id: int) -> str:
        accounts = self._accounts(user_id)
        if not accounts:
            return "You have no accounts yet."
        prefs = await self.preferences.get(user_id)
        display, shown, cents = prefs["currency"], _shown(prefs), _cents(prefs)
        lines = ["Spot holdings (perpetual futures positions are not supported yet):"]
        for account in accounts:
            held = {c: b for c, b in sorted(self.gateway.ledger.account_balances(account.exchange, account.id).items()) if b.balance}
            lines.append(f"Account {account.id} {account.name} ({account.exchange}):")
            if not held:
                lines.append("  nothing held")
            for currency, balance in held.items():
                value = await self._value(Decimal(_amount(balance.balance)), currency, display)
                lines.append(f"  {currency} {shown(balance.balance)}"
                             + (f" = {cents(value)} {display}" if value is not None else ""))
        return "\n".join(lines)

    async def _value(self, amount: Decimal, currency: str, display: str) -> Decimal | None:
        """`amount` of `currency` in `display`, rounded to cents; None when there is no route (or no converter)."""
        if currency == display:
            return None
        if self.converter is None:
            return None
        try:  # conversion takes amounts, not signed flows: the sign is put back after
            result = (await self.converter.convert(str(abs(amount)), currency, display)).result
        except CoinwireError:
            return None
        return (-result if amount < 0 else result).quantize(Decimal("0.01"))

    def _own_runs(self, user_id: int) -> list[dict[str, Any]]:
        return [r for r in self.runs.list() if self.run_owner(str(r.get("run_id"))) == user_id]

    def list_runs(self, user_id: int) -> str:
        runs = self._own_runs(user_id)
        if not runs:
            return "You have no runs."
        runs.sort(key=lambda r: r.get("status") != "running")  # stable: running first, each group newest first
        lines = [f"{r['run_id']}  {r.get('strategy')}  {r.get('mode')}  {r.get('status')}" for r in runs[:_LISTED_RUNS]]
        if len(runs) > _LISTED_RUNS:
            lines.append(f"and {len(runs) - _LISTED_RUNS} older")
        return "Your runs:\n" + "\n".join(lines)

    async def stop(self, user_id: int, args: list[str]) -> str:
        if not args or len(args) > 2 or (len(args) == 2 and args[1].lower() != "yes"):
            return "Usage: /stop RUN, then /stop RUN yes to confirm."
        run_id = args[0]
        run = next((r for r in self._own_runs(user_id) if r.get("run_id") == run_id), None)
        if run is None:
            return f"No such run {run_id}."
        if run.get("status") != "running":
            self._pending.pop(user_id, None)
            return f"Run {run_id} is already {run.get('status')}."
        now = self.clock()
        if len(args) == 1:
            self._pending[user_id] = (run_id, now + self.confirm_seconds)
            return (f"Stop run {run_id} ({run.get('strategy')}, {run.get('mode')})? "
                    f"Reply /stop {run_id} yes within {self.confirm_seconds:g} s.")
        pending = self._pending.get(user_id)
        if pending is not None and now > pending[1]:  # too late: asked again from the start
            del self._pending[user_id]
            pending = None
        if pending is None or pending[0] != run_id:
            return f"No stop of {run_id} is waiting for confirmation: send /stop {run_id} first."
        del self._pending[user_id]
        stopped = await self.runs.stop(run_id)
        log.info("run stopped from telegram", run=run_id, user=user_id)
        return f"Run {run_id} is {stopped.get('status')}."

    async def daily(self, user_id: int) -> str:
        accounts = self._accounts(user_id)
        if not accounts:
            return "You have no accounts yet."
        prefs = await self.preferences.get(user_id)
        zone, display, shown, cents = zoneinfo.ZoneInfo(prefs["time_zone"]), prefs["currency"], _shown(prefs), _cents(prefs)
        now = datetime.fromtimestamp(self.wall_clock() / 1e9, zone)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        since = int(midnight.timestamp()) * 1_000_000_000
        rows = await self.fills.fills_since([a.id for a in accounts], since)
        lines = [f"Today since 00:00 {prefs['time_zone']}; cash flow = sells - buys - fees, in each quote currency "
                 "(what was bought is not valued: this is not a profit figure)."]
        for account in accounts:
            mine = [r for r in rows if r.account_id == account.id]
            lines.append(f"Account {account.id} {account.name} ({account.exchange}): {len(mine)} fill{'' if len(mine) == 1 else 's'}")
            per_quote: dict[str, list[Decimal]] = {}
            other_fees: dict[str, Decimal] = {}
            for row in mine:
                quote = row.symbol.split("/")[1]
                volume_flow = per_quote.setdefault(quote, [Decimal(0), Decimal(0)])
                volume_flow[0] += row.notional
                volume_flow[1] += row.notional if row.side == "sell" else -row.notional
                if row.fee_currency == quote:
                    volume_flow[1] -= row.fee
                else:
                    other_fees[row.fee_currency] = other_fees.get(row.fee_currency, Decimal(0)) + row.fee
            for quote, (volume, flow) in sorted(per_quote.items()):
                shown_volume, shown_flow = await self._value(volume, quote, display), await self._value(flow, quote, display)
                lines.append(f"  volume {shown(volume)} {quote}"
                             + (f" ({cents(shown_volume)} {display})" if shown_volume is not None else "")
                             + f", cash flow {shown(flow)} {quote}"
                             + (f" ({cents(shown_flow)} {display})" if shown_flow is not None else ""))
            lines += [f"  fees paid in {c}: {shown(fee)}" for c, fee in sorted(other_fees.items())]
        return "\n".join(lines)

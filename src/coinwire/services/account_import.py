"""Import of a live account's history through CCXT, in resumable steps, with progress; then its past value rebuilt.

Why steps with stored cursors: an account's history is hundreds of requests (every market's
trades page by page, deposits and withdrawals in 90-day windows, candles of every asset it
held), any of which may fail or be cut short by a restart. Each step stores its cursor after
every page, in the same place the import's state lives (store.account_imports), so a failed
import retried, or a running one found at start-up, goes on where it stopped; and what a page
brought is stored by the venue's ids, so asking again adds nothing twice.

The steps, in order:

1. `balances`: the account's balances now (`fetch_balance`), the end the rebuild walks back from,
   and the instant they were taken (events after it are not part of the history);
2. `deposits`, `withdrawals`: `fetch_deposits` / `fetch_withdrawals` in windows of WINDOW_MS
   (Binance answers at most 90 days at a time) from `import_history_start` to the balances'
   instant, `limit` a page; a full page continues from its last record's time;
3. `trades`: `fetch_my_trades(symbol, since, limit)` for every spot market of the exchange whose
   base and quote the account held or moved (balances, transfers), and the exchange's configured
   symbols; a full page continues from its last trade's time;
4. `candles`: each held asset's candles against the value currency through the history download
   (history/download.py, `import_timeframe`), stored in the history store;
5. `rebuild`: core.history_value rebuilds the 15-minute value candles from the stored trades and
   completed transfers in the owner's display currency, written as the account's portfolio
   candles (and its owner's total where that is known exactly) where none is stored yet (a
   bucket the tracker watched live keeps what it saw; a second import writes nothing new).

The value currency is the quote most of the account's trades were made in (USDT when there are
none): the candles it downloads are priced in it. The portfolio candles are read in the owner's
display currency (what the tracker values in), so the rebuilt values are converted at each past
instant by a rate true then, through core.conversion as every conversion here: the configured
pegs first (USDT = USD holds at every instant: one unit at face value, a route of pegs only);
else the rates the platform stored per minute (store.rates, services/rate_history.py) for a
market of the account's exchange between the value currency (or a coin pegged with it) and the
display currency (or one pegged to it), the last one known at each close of the import's
timeframe holding until the next close, as the candles' prices do. Current tickers and FX rates
are never used for the past; a bucket before the first stored rate is not written, and with no
rate at all nothing is (`unconverted` says why).

Progress is `{"account_id", "import_id", "step", "done", "total", "eta_s", "state"}`,
handed to `listeners` after every page and on every change of state. When an import ends, its
starter is told through the notifications (`import_finished`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgspec
import structlog
from sqlalchemy import select

from coinwire.config import ExchangeConfig
from coinwire.config.market_data import DEFAULT_PEGS
from coinwire.core.accounts import Account
from coinwire.core.conversion import Rate, best_route, convert
from coinwire.core.errors import CoinwireError, Conflict, InvalidInput, NotFound
from coinwire.core.history_value import (
    OtherAccount,
    PastTrade,
    PastTransfer,
    PriceSeries,
    rebuild_history,
    user_totals,
)
from coinwire.core.portfolio import PortfolioCandle, value_from_int
from coinwire.core.rollup import parse_timeframe
from coinwire.history.candles import Candles
from coinwire.history.download import download, make_exchange
from coinwire.history.store import HistoryStore
from coinwire.services.live_credentials import live_credentials
from coinwire.store import Store
from coinwire.store.account_imports import (
    ImportRow,
    StoredTrade,
    StoredTransfer,
    create_import,
    insert_trades,
    insert_transfers,
    latest_import,
    load_trades,
    load_transfers,
    save_import,
    unfinished_imports,
)
from coinwire.store.portfolio_candles import (
    PortfolioCandleRow,
    display_currencies,
    load_portfolio_candles,
    write_portfolio_candles,
)
from coinwire.store.rates import MINUTE_MS, load_rates
from coinwire.store.tables import accounts as accounts_table
from coinwire.venues.ccxt_client import close_client, make_client
from coinwire.venues.ccxt_errors import Backoff, translate

__all__ = ["STEPS", "WINDOW_MS", "AccountImports", "ImportSettings", "history_start_ms", "live_clients", "progress_view"]

log = structlog.get_logger("coinwire.services.account_import")

STEPS: Final = ("balances", "deposits", "withdrawals", "trades", "candles", "rebuild")
WINDOW_MS: Final = 90 * 86_400_000  # deposit and withdrawal history is asked for 90 days at a time (Binance's limit)
MAX_RETRIES: Final = 5
_DEFAULT_CURRENCY: Final = "USD"  # auth.preferences.DEFAULTS["currency"]: an owner who never chose one, or none (the admins')
_RATES_BEFORE_MS: Final = 86_400_000  # stored rates are read from a day before the first event (the last one then holds)

ClientFactory = Callable[[ExchangeConfig], Awaitable[Any]]
Notify = Callable[[int, str, str, str, str, dict[str, Any]], Awaitable[int]]
Listener = Callable[[dict[str, Any]], None]


class ImportSettings(msgspec.Struct, frozen=True):
    """How imports page and what they download (config: import_page_limit, import_history_start, import_timeframe)."""

    page_limit: int = 500
    history_start_ms: int = 1_498_867_200_000  # 2017-07-01, before Binance opened
    timeframe: str = "15m"


def progress_view(row: ImportRow, eta_s: float | None = None) -> dict[str, Any]:
    """The `import_progress` message (and the status answer's core) of one import."""
    return {"account_id": row.account_id, "import_id": row.id, "step": row.step, "done": row.done, "total": row.total,
            "eta_s": None if eta_s is None else round(eta_s, 1), "state": row.state}


def _exact(value: object) -> Decimal:
    """A CCXT number as an exact Decimal: its shortest decimal text (CCXT parses the venue's strings into floats)."""
    if value is None:
        return Decimal(0)
    return Decimal(value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value))


class AccountImports:
    """Starts, resumes and reports the imports of live accounts; one task per running import."""

    def __init__(
        self,
        store: Store,
        exchanges: Sequence[ExchangeConfig],
        connect: ClientFactory,
        history: HistoryStore,
        notify: Notify | None = None,
        settings: ImportSettings | None = None,
        *,
        pegs: Mapping[str, str] = DEFAULT_PEGS,
        clock: Callable[[], int] = time.time_ns,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        """`pegs`: coin -> the fiat it is worth one of (market_data.pegs): rates true at every past instant."""
        self.store = store
        self.exchanges = {cfg.name: cfg for cfg in exchanges}
        self.connect = connect
        self.history = history
        self.notify = notify
        self.settings = settings or ImportSettings()
        self.pegs = [Rate(coin, fiat, Decimal(1), "peg", 0) for coin, fiat in sorted(pegs.items())]
        self.clock = clock
        self.backoff = backoff
        self.listeners: list[Listener] = []
        self.accounts: dict[int, Account] = {}  # the accounts of running imports
        self.tasks: dict[int, asyncio.Task[None]] = {}  # account id -> its running import
        tf = parse_timeframe(self.settings.timeframe)
        if tf.seconds <= 0 or 900 % tf.seconds:
            raise InvalidInput("invalid_timeframe", f"import_timeframe must divide 15 minutes, got {self.settings.timeframe!r}")

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self, accounts: Mapping[int, Account]) -> None:
        """Resume every import a previous process left running (its account still known)."""
        for row in await unfinished_imports(self.store):
            account = accounts.get(row.account_id)
            if account is not None and row.account_id not in self.tasks:
                log.info("import resumed", account_id=row.account_id, import_id=row.id, step=row.step)
                self._launch(account, row)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()

    async def idle(self) -> None:
        """Wait until no import runs (tests, and a clean stop)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks.values()), return_exceptions=True)

    # --- the API's way in ------------------------------------------------------------------------------
    async def begin(self, account: Account, user_id: int | None) -> ImportRow:
        """Start an import of the account, or resume its failed one where it stopped; `import_running` if one runs."""
        if account.kind != "live" or account.exchange not in self.exchanges:
            raise InvalidInput("import_unavailable", f"account {account.id} is not a live account: there is no history to import",
                               account=account.id)
        if account.id in self.tasks:
            raise Conflict("import_running", f"account {account.id} is importing already", account=account.id)
        row = await latest_import(self.store, account.id)
        now = self.clock()
        if row is not None and row.state in ("failed", "running"):
            row.state, row.error, row.updated_at = "running", None, now
            if user_id is not None:
                row.user_id = user_id
            await save_import(self.store, row)
        else:
            row = await create_import(self.store, ImportRow(
                id=0, account_id=account.id, user_id=user_id, state="running", step=STEPS[0], cursor={}, done=0, total=1,
                error=None, started_at=now, updated_at=now, finished_at=None))
        self._launch(account, row)
        return row

    async def status(self, account_id: int) -> ImportRow | None:
        return await latest_import(self.store, account_id)

    def _launch(self, account: Account, row: ImportRow) -> None:
        self.accounts[account.id] = account
        task = asyncio.create_task(self._run(account, row), name=f"import-{account.id}")
        self.tasks[account.id] = task
        task.add_done_callback(lambda _: (self.tasks.pop(account.id, None), self.accounts.pop(account.id, None)))
        self._progress(row)

    # --- the job ---------------------------------------------------------------------------------------
    async def _run(self, account: Account, row: ImportRow) -> None:
        cfg = self.exchanges[account.exchange]
        client = None
        try:
            client = await self.connect(cfg)
            job = _Job(self, account, cfg, client, row)
            for step in STEPS[STEPS.index(row.step):]:
                await job.enter(step)
                await getattr(job, f"step_{step}")()
            row.state, row.finished_at = "done", self.clock()
            row.updated_at = row.finished_at
            await save_import(self.store, row)
            self._progress(row)
            await self._tell(row, "finished", job.summary())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = exc.message if isinstance(exc, CoinwireError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, CoinwireError):
                log.exception("import failed", account_id=account.id, import_id=row.id)
            row.state, row.error, row.updated_at = "failed", reason, self.clock()
            try:
                await save_import(self.store, row)
            except Exception:
                log.exception("import state not stored", account_id=account.id, import_id=row.id)
            self._progress(row)
            await self._tell(row, "failed", reason)
        finally:
            if client is not None:
                await close_client(client, account.exchange)

    async def _tell(self, row: ImportRow, how: str, detail: str) -> None:
        if self.notify is None or row.user_id is None:
            return
        text = f"The import of account {row.account_id}'s history {how}: {detail}"
        data = {"event": "import_finished", "account_id": row.account_id, "import_id": row.id, "state": row.state,
                "error": row.error}
        try:
            await self.notify(row.user_id, "import_finished", f"{row.id}:{row.state}:{row.updated_at}", text, text, data)
        except Exception:
            log.exception("import notification not recorded", import_id=row.id)

    def _progress(self, row: ImportRow, eta_s: float | None = None) -> None:
        view = progress_view(row, eta_s)
        for listener in list(self.listeners):
            try:
                listener(view)
            except Exception:
                log.exception("import progress listener failed")


class _Job:
    """One running import: its client, its row, and the steps."""

    def __init__(self, owner: AccountImports, account: Account, cfg: ExchangeConfig, client: Any, row: ImportRow) -> None:
        self.owner = owner
        self.account = account
        self.cfg = cfg
        self.client = client
        self.row = row
        self.cursor = row.cursor
        self.store = owner.store
        self.limit = owner.settings.page_limit
        self.step_started = time.monotonic()
        self.step_done_at_start = 0
        self.new_trades = 0
        self.new_transfers = 0

    # --- plumbing ----------------------------------------------------------------------------------
    async def enter(self, step: str) -> None:
        if self.row.step != step:
            self.row.step, self.row.done, self.row.total = step, 0, 1
            await self.save()
        self.step_started = time.monotonic()
        self.step_done_at_start = self.row.done

    async def save(self, done: int | None = None, total: int | None = None) -> None:
        row = self.row
        if done is not None:
            row.done = done
        if total is not None:
            row.total = total
        row.updated_at = self.owner.clock()
        await save_import(self.store, row)
        progressed = row.done - self.step_done_at_start
        eta = None
        if progressed > 0 and row.total >= row.done:
            eta = (time.monotonic() - self.step_started) / progressed * (row.total - row.done)
        self.owner._progress(row, eta)

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """A CCXT call: retryable failures retried with backoff (at most MAX_RETRIES in a row), the rest raised translated."""
        backoff = self.owner.backoff()
        while True:
            try:
                return await getattr(self.client, operation)(*args, **kwargs)
            except Exception as exc:
                try:
                    error = translate(exc, exchange=self.account.exchange, operation=operation)
                except TypeError:
                    raise exc from None
                if not error.retryable or backoff.attempts >= MAX_RETRIES:
                    raise error from exc
                await asyncio.sleep(backoff.next_delay(error))

    def summary(self) -> str:
        return f"{self.new_trades} new trades, {self.new_transfers} new deposits and withdrawals"

    # --- 1. balances ----------------------------------------------------------------------------------
    async def step_balances(self) -> None:
        if "balances" in self.cursor:
            return
        balance = await self.call("fetch_balance")
        totals = balance.get("total") or {}
        self.cursor["balances"] = {asset: str(_exact(amount)) for asset, amount in sorted(totals.items()) if _exact(amount)}
        self.cursor["as_of_ms"] = int(self.client.milliseconds())
        await self.save(1, 1)

    # --- 2. deposits, withdrawals ------------------------------------------------------------------------
    async def step_deposits(self) -> None:
        await self._transfers("deposit", "fetch_deposits")

    async def step_withdrawals(self) -> None:
        await self._transfers("withdrawal", "fetch_withdrawals")

    async def _transfers(self, kind: str, operation: str) -> None:
        start, end = self.owner.settings.history_start_ms, int(self.cursor["as_of_ms"])
        key = f"{kind}s_since"
        total = max(1, -(-(end - start) // WINDOW_MS))
        since = int(self.cursor.get(key, start))
        while since <= end:
            page = await self.call(operation, None, since, self.limit)
            rows = [self._transfer(kind, record) for record in page]
            self.new_transfers += await insert_transfers(self.store, self.account.id, [r for r in rows if r is not None])
            if len(page) >= self.limit:
                last = max(r.ts_ms for r in rows if r is not None) if any(rows) else since
                since = last if last > since else since + 1
            else:
                since = min(since + WINDOW_MS, end + 1)
            self.cursor[key] = since
            await self.save(min(total, (since - start) // WINDOW_MS), total)
        await self.save(total, total)

    def _transfer(self, kind: str, record: Mapping[str, Any]) -> StoredTransfer | None:
        ident = record.get("id") or record.get("txid")
        if ident is None or record.get("currency") is None or record.get("timestamp") is None:
            return None
        fee = record.get("fee") or {}
        return StoredTransfer(kind=kind, transfer_id=str(ident), asset=str(record["currency"]), amount=_exact(record.get("amount")),
                              fee=_exact(fee.get("cost")), status=str(record.get("status") or ""), ts_ms=int(record["timestamp"]))

    # --- 3. trades ---------------------------------------------------------------------------------------
    async def step_trades(self) -> None:
        if "markets" not in self.cursor:
            self.cursor["markets"] = await self._markets()
        markets: list[str] = self.cursor["markets"]
        since_of: dict[str, int] = self.cursor.setdefault("trades_since", {})
        finished: list[str] = self.cursor.setdefault("trades_done", [])
        end = int(self.cursor["as_of_ms"])
        await self.save(len(finished), len(markets))
        for symbol in markets:
            if symbol in finished:
                continue
            since = since_of.get(symbol, self.owner.settings.history_start_ms)
            while True:
                page = await self.call("fetch_my_trades", symbol, since, self.limit)
                trades = [self._trade(symbol, t) for t in page if int(t["timestamp"]) <= end]
                self.new_trades += await insert_trades(self.store, self.account.id, trades)
                if len(page) < self.limit:
                    break
                last = max(int(t["timestamp"]) for t in page)
                since = last if last > since else since + 1
                since_of[symbol] = since
                await self.save()
            finished.append(symbol)
            await self.save(len(finished), len(markets))

    async def _markets(self) -> list[str]:
        await self.call("load_markets")
        held = set(self.cursor["balances"])
        held |= {t.asset for t in await load_transfers(self.store, self.account.id)}
        markets: Mapping[str, Any] = self.client.markets or {}
        chosen = {symbol for symbol, m in markets.items()
                  if m.get("spot") and m.get("base") in held and m.get("quote") in held}
        chosen |= {s for s in self.cfg.symbols if s in markets and (markets[s] or {}).get("spot")}
        return sorted(chosen)

    @staticmethod
    def _trade(symbol: str, trade: Mapping[str, Any]) -> StoredTrade:
        fee = trade.get("fee") or {}
        return StoredTrade(symbol=symbol, trade_id=str(trade["id"]), order_id=None if trade.get("order") is None else str(trade["order"]),
                           side=str(trade["side"]), price=_exact(trade.get("price")), amount=_exact(trade.get("amount")),
                           cost=_exact(trade.get("cost")), fee=_exact(fee.get("cost")), fee_currency=str(fee.get("currency") or ""),
                           ts_ms=int(trade["timestamp"]))

    # --- 4. candles ----------------------------------------------------------------------------------------
    async def step_candles(self) -> None:
        trades = await load_trades(self.store, self.account.id)
        transfers = await load_transfers(self.store, self.account.id)
        currency = _value_currency(trades)
        self.cursor["currency"] = currency
        assets = set(self.cursor["balances"]) | {t.asset for t in transfers} | {
            a for t in trades for a in t.symbol.split("/")}
        assets.discard(currency)
        markets: Mapping[str, Any] = self.client.markets or {}
        wanted = sorted(f"{a}/{currency}" for a in assets if f"{a}/{currency}" in markets)
        self.cursor["unpriced"] = sorted(a for a in assets if f"{a}/{currency}" not in markets)
        done: list[str] = self.cursor.setdefault("candles_done", [])
        first = min([t.ts_ms for t in trades] + [t.ts_ms for t in transfers], default=None)
        await self.save(len(done), len(wanted))
        if first is None:
            return
        since = (first // 1000) - (first // 1000) % 900 - 900  # from the bucket before the first event
        for symbol in wanted:
            if symbol in done:
                continue
            candles = await asyncio.to_thread(self._download, symbol, since)
            if len(candles):
                self.owner.history.write(candles)
            done.append(symbol)
            await self.save(len(done), len(wanted))

    def _download(self, symbol: str, since: int) -> Candles:
        """The history download (synchronous CCXT, in a worker thread) on this client's URLs, keyed by the coinwire exchange."""
        exchange = make_exchange(self.cfg.ccxt_id or self.cfg.name, timeout_ms=int(self.cfg.ccxt_timeout * 1000))
        exchange.urls = self.client.urls
        exchange.options.update(self.cfg.ccxt_options)
        got = download(exchange, symbol, self.owner.settings.timeframe, since, limit=1000)
        return Candles(self.cfg.name, got.symbol, got.timeframe, got.time, got.open, got.high, got.low, got.close, got.volume)

    # --- 5. rebuild -----------------------------------------------------------------------------------------
    async def step_rebuild(self) -> None:
        await self.save(0, 1)
        trades = await load_trades(self.store, self.account.id)
        transfers = await load_transfers(self.store, self.account.id)
        currency = self.cursor.get("currency") or _value_currency(trades)
        now = {a: Decimal(q) for a, q in self.cursor["balances"].items()}
        events: list[PastTrade | PastTransfer] = [_past_trade(t) for t in trades]
        events += [_past_transfer(t) for t in transfers if t.status == "ok"]
        prices, end_s = self._prices(currency, self.cursor.get("candles_done", []))
        owner = self.account.owner_id
        display = (await display_currencies(self.store)).get(owner, _DEFAULT_CURRENCY) if owner is not None else _DEFAULT_CURRENCY
        self.cursor["display_currency"] = display
        first_ms = min((e.ts_ms for e in events), default=None)
        rate = None if currency == display or first_ms is None else await self._rate(currency, display, first_ms, end_s * 1000)
        self.cursor.pop("unconverted", None)
        candles: list[PortfolioCandle] = []
        if currency == display or rate is not None:
            # pure and CPU-bound (a year of 15-minute buckets): off the event loop the gateway's orders run on
            candles = await asyncio.to_thread(rebuild_history, now, events, prices, currency, end_s, rate)
        else:  # no rate of the past: nothing written rather than a value at today's rate (or in a currency no chart reads)
            self.cursor["unconverted"] = f"no rate from {currency} to {display} known for the past (a peg or stored rates)"
            log.warning("import: past value not converted", account_id=self.account.id, currency=currency, display=display)
        now_ns = self.owner.clock()
        rows = await self._new_rows("account", str(self.account.id), display, candles, now_ns)
        if owner is not None and candles:
            rows += await self._new_rows("user", str(owner), display, user_totals(candles, await self._others(owner, display)),
                                         now_ns)
        if rows:
            await write_portfolio_candles(self.store, rows)
        self.cursor["candles_written"] = sum(1 for r in rows if r.scope == "account")
        self.cursor["user_candles_written"] = sum(1 for r in rows if r.scope == "user")
        await self.save(1, 1)

    async def _new_rows(self, scope: str, scope_id: str, currency: str, candles: Sequence[PortfolioCandle],
                        now_ns: int) -> list[PortfolioCandleRow]:
        """Rows of the buckets not stored yet: what the tracker watched live (or an earlier import wrote) stays as it is."""
        stored = await load_portfolio_candles(self.store, scope, scope_id, currency)
        known = set(stored.candles.time.tolist()) if stored is not None else set()
        return [PortfolioCandleRow.of(scope, scope_id, currency, c, now_ns) for c in candles if c.open_time not in known]

    async def _others(self, owner: int, currency: str) -> list[OtherAccount]:
        """The owner's other accounts as core.history_value.user_totals counts them: stored candles and when each opened."""
        c = accounts_table.c
        query = select(c.id, c.kind, c.created_at).where(c.owner_id == owner, c.id != self.account.id)
        async with self.store.engine.connect() as conn:
            found = list((await conn.execute(query)).all())
        out: list[OtherAccount] = []
        for account_id, kind, created_at in found:
            stored = await load_portfolio_candles(self.store, "account", str(account_id), currency)
            candles: dict[int, PortfolioCandle] = {}
            if stored is not None:
                columns = [col.tolist() for col in stored.candles]
                for t, o, h, lo, cl, v, status in zip(*columns, stored.statuses, strict=True):
                    candles[int(t)] = PortfolioCandle(int(t), value_from_int(o), value_from_int(h), value_from_int(lo),
                                                      value_from_int(cl), value_from_int(v), status)
            out.append(OtherAccount(candles, None if kind == "live" else int(created_at) // 1_000_000_000))
        return out

    async def _rate(self, currency: str, display: str, start_ms: int, end_ms: int) -> PriceSeries | None:
        """One `currency` in `display` over the past (module docstring): the pegs' constant, else stored market rates."""
        try:
            pegged = PriceSeries([(0, convert(Decimal(1), best_route(self.owner.pegs, currency, display)).rate)])
        except NotFound:
            pass
        else:
            self.cursor["rate_source"] = "peg"
            return pegged
        side = {currency} | _pegged_with(self.owner.pegs, currency)
        other = {display} | {r.base for r in self.owner.pegs if r.quote == display}
        lo = start_ms - start_ms % MINUTE_MS - _RATES_BEFORE_MS
        limit = (end_ms - lo) // MINUTE_MS + 1
        for base, quote in sorted([(a, b) for a in side for b in other] + [(b, a) for a in side for b in other]):
            stored = await load_rates(self.store, self.cfg.name, f"{base}/{quote}", lo, end_ms + 1, limit)
            if not stored:
                continue
            # value currency -> the market's currency on its side (pegs), the stored rate, -> the display currency (pegs)
            inverse = base not in side
            before = best_route(self.owner.pegs, currency, quote if inverse else base)
            after = best_route(self.owner.pegs, base if inverse else quote, display)
            # the rebuild reads the rate at its price instants (the import timeframe's closes): the last rate known by
            # each such close is all it needs, not every minute of a year
            bucket_ms = parse_timeframe(self.owner.settings.timeframe).seconds * 1000
            last_by_close = {-(-(r.minute_ms + MINUTE_MS) // bucket_ms): r for r in sorted(stored, key=lambda r: r.minute_ms)
                             if r.price > 0}
            points: list[tuple[int, Decimal]] = []
            for r in last_by_close.values():
                if r.price > 0:
                    step = Rate(base, quote, r.price, f"rates:{self.cfg.name}", r.minute_ms * 1_000_000)
                    route = [*before, step.inverse() if inverse else step, *after]
                    known_s = (r.minute_ms + MINUTE_MS) // 1000  # a minute's rate is known by the minute's end
                    points.append((known_s, convert(Decimal(1), route).rate))
            log.info("import: past value converted at stored rates", account_id=self.account.id, market=f"{base}/{quote}",
                     rates=len(points))
            self.cursor["rate_source"] = f"rates:{self.cfg.name}:{base}/{quote}"
            return PriceSeries(points)
        return None

    def _prices(self, currency: str, symbols: Sequence[str]) -> tuple[dict[str, PriceSeries], int]:
        """Each downloaded asset's closes by close time, and how far all of them reach (the rebuild's end)."""
        tf = self.owner.settings.timeframe
        step = parse_timeframe(tf).seconds
        prices: dict[str, PriceSeries] = {}
        ends: list[int] = []
        for symbol in symbols:
            if not self.owner.history.has(self.cfg.name, symbol, tf):
                continue
            series = self.owner.history.load(self.cfg.name, symbol, tf)
            closes = [(int(t) + step, _exact(float(c))) for t, c in zip(series.time, series.close, strict=True)]
            if closes:
                prices[symbol.split("/")[0]] = PriceSeries(closes)
                ends.append(closes[-1][0])
        as_of_s = int(self.cursor["as_of_ms"]) // 1000
        return prices, min([*ends, as_of_s])


def _pegged_with(pegs: Sequence[Rate], currency: str) -> set[str]:
    """The currencies one peg step or two from `currency` (USDT: USD, USDC, DAI, ...): worth one of it at every instant."""
    fiats = {r.quote for r in pegs if r.base == currency} | ({currency} if any(r.quote == currency for r in pegs) else set())
    return ({r.base for r in pegs if r.quote in fiats} | fiats) - {currency}


def _value_currency(trades: Sequence[StoredTrade]) -> str:
    quotes = Counter(t.symbol.split("/")[1] for t in trades if "/" in t.symbol)
    if not quotes:
        return "USDT"
    return sorted(quotes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _past_trade(trade: StoredTrade) -> PastTrade:
    base, quote = trade.symbol.split(":")[0].split("/")
    return PastTrade(ts_ms=trade.ts_ms, base=base, quote=quote, buy=trade.side == "buy", amount=trade.amount, cost=trade.cost,
                     fee=trade.fee, fee_asset=trade.fee_currency)


def _past_transfer(transfer: StoredTransfer) -> PastTransfer:
    """A deposit adds its amount; a withdrawal takes its amount and its fee."""
    if transfer.kind == "deposit":
        return PastTransfer(ts_ms=transfer.ts_ms, asset=transfer.asset, amount=transfer.amount)
    return PastTransfer(ts_ms=transfer.ts_ms, asset=transfer.asset, amount=-(transfer.amount + transfer.fee))


def history_start_ms(text: str) -> int:
    """`import_history_start` ("2017-07-01") in unix ms, UTC."""
    try:
        return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 1000
    except ValueError:
        raise InvalidInput("invalid_import_history_start", f"import_history_start must be YYYY-MM-DD, got {text!r}") from None


def live_clients(store: Store, data_path: Path, env: Mapping[str, str] | None = None) -> ClientFactory:
    """How imports reach a live exchange: a CCXT client made as the live venue makes its own, signing with the same keys."""

    async def connect(cfg: ExchangeConfig) -> Any:
        credentials = await live_credentials(cfg, store, data_path, env)
        client = make_client(cfg.ccxt_id or cfg.name, urls=cfg.ccxt_urls, options=cfg.ccxt_options, timeout=cfg.ccxt_timeout)
        client.apiKey = credentials.api_key
        client.secret = credentials.secret
        if credentials.password is not None:
            client.password = credentials.password
        return client

    return connect

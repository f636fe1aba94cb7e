"""Composition root: builds the ports from settings, wires the services, and starts the chosen roles.

`Platform` is every long-lived service of one process (a paper session runs one without HTTP);
`create_app` is the server: the platform, the access layer, the API over both and the run
manager, each given its dependencies in its constructor, and the HTTP app over them. Nothing
else in coinwire builds a service another package uses, and nothing is assigned after construction.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import msgspec
import structlog
from fastapi import FastAPI

from coinwire import metrics, roles
from coinwire.api.access import Access
from coinwire.api.analysis_routes import AnalysisStreams
from coinwire.api.app import create_http_app
from coinwire.api.forwarding import LOCAL_METHODS, CallResponder, Forwarder, RemoteAccounts
from coinwire.api.methods import Api
from coinwire.api.notifier import Notifier, PushLimits
from coinwire.api.ohlcv_routes import OhlcvStreams
from coinwire.api.ops_app import create_ops_app
from coinwire.api.portfolio_routes import PortfolioStreams
from coinwire.api.remote_streams import RemoteConnections, StreamClient
from coinwire.api.route_forwarding import RouteRunner
from coinwire.api.rulesets_routes import RuleFiredPush
from coinwire.api.schedules_routes import OwnersForSchedules
from coinwire.api.streams import AccountStreams
from coinwire.api.wallet_set_push import WalletSetPush
from coinwire.auth.preferences import PreferencesRepository
from coinwire.auth.vault import MasterKeys, Vault
from coinwire.bus import bus_from_url
from coinwire.bus.requests import NatsRequests, requests_for
from coinwire.cache import cache_from_url
from coinwire.config import ConfigError, ExchangeConfig, Settings
from coinwire.core.errors import InvalidInput
from coinwire.engine.warmup import HistorySource
from coinwire.feeds.base import HealthHook
from coinwire.feeds.demo import DemoFeed
from coinwire.history.store import HistoryStore, default_history_root
from coinwire.logs import forward_warnings
from coinwire.private_files import private_dir
from coinwire.services.account_import import AccountImports, ImportSettings, history_start_ms, live_clients
from coinwire.services.analyser import Analyser
from coinwire.services.breakers import Breakers
from coinwire.services.candle_recorder import CandleRecorder
from coinwire.services.controller import Controller
from coinwire.services.controller_actions import ActionRunner
from coinwire.services.daily_stats import DailyStatsRecorder
from coinwire.services.external_accounts import ExternalAccounts
from coinwire.services.gateway import Gateway
from coinwire.services.gateway_leases import GatewayLeases
from coinwire.services.health import Health, breaker_reasons
from coinwire.services.import_progress import ImportProgressPublisher
from coinwire.services.log_feed import LogFeed
from coinwire.services.market_data import MarketData, build_streamer, ticker_configs
from coinwire.services.market_relay import MarketAnswers, RemoteMarketData
from coinwire.services.notifications.email import EmailChannel, vault_password
from coinwire.services.notifications.outbox import NotificationStore
from coinwire.services.notifications.service import GatewayOrders, NotificationService
from coinwire.services.notifications.telegram import TelegramChannel
from coinwire.services.notifications.telegram_bot import StoredBots, TelegramBots
from coinwire.services.notifications.telegram_commands import StoreFills, TelegramCommands
from coinwire.services.notifications.webhook import WebhookChannel
from coinwire.services.ohlcv import OhlcvQuery
from coinwire.services.outside_signals import OutsideSignals
from coinwire.services.portfolio_ohlcv import PortfolioOhlcv
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.services.public_trades import PublicTrades
from coinwire.services.rate_history import RateHistory
from coinwire.services.rates import CcxtPrices, Rates
from coinwire.services.rule_sets import RuleSets
from coinwire.services.runs import RunManager
from coinwire.services.schedule_wakes import ScheduleWakes
from coinwire.services.scheduler import Housekeeping, JobKind, RetrieveRates, RunStrategy, Scheduler, StrategyStep
from coinwire.services.signals import Signals
from coinwire.services.warm_history import warm_sources
from coinwire.store import Store
from coinwire.store.candle_writer import CandleWriter
from coinwire.store.portfolio_candles import PortfolioCandleWriter
from coinwire.venues.ccxt_client import make_client

__all__ = ["Platform", "build_feed", "create_app"]

log = structlog.get_logger("coinwire.app")


def build_feed(cfg: ExchangeConfig, breakers: Breakers | None = None) -> Any:
    """The market-data feed an exchange's configuration asks for (a CCXT one behind its `feed:<exchange>` breaker)."""
    if cfg.feed == "demo":
        kwargs: dict[str, Any] = {"exchange": cfg.name, "seed": cfg.seed, "interval": cfg.tick_interval,
                                  "premium_bp": cfg.demo_premium_bp, "funding_speedup": cfg.funding_speedup,
                                  "epoch": cfg.demo_epoch}
        if cfg.symbols:
            kwargs["symbols"] = tuple(cfg.symbols)
        return DemoFeed(**kwargs)
    if cfg.feed == "replay":
        from coinwire.feeds.replay import ReplayFeed
        from coinwire.history.binance_capture import BINANCE_BTCUSDT, BINANCE_USDM_BTCUSDT_PERP
        from coinwire.venues.brackets import perpetual_fields

        if cfg.replay_market == "binanceusdm":  # the USD-M perpetual, with Binance's published brackets and clearance fee
            instrument = msgspec.structs.replace(BINANCE_USDM_BTCUSDT_PERP, exchange=cfg.name,
                                                 **perpetual_fields("binanceusdm", BINANCE_USDM_BTCUSDT_PERP.symbol))
        else:
            instrument = msgspec.structs.replace(BINANCE_BTCUSDT, exchange=cfg.name)
        return ReplayFeed(cfg.replay_paths, instrument, speed=cfg.replay_speed, loop=cfg.replay_loop)
    if cfg.feed == "ccxt":
        from coinwire.feeds.ccxt_feed import CcxtFeed

        return CcxtFeed(
            cfg.name,
            cfg.ccxt_id or cfg.name,
            cfg.symbols,
            poll_interval=cfg.poll_interval,
            depth=cfg.ccxt_depth,
            websocket=cfg.ccxt_websocket,
            urls=cfg.ccxt_urls,
            options=cfg.ccxt_options,
            timeout=cfg.ccxt_timeout,
            breaker=breakers.get(f"feed:{cfg.name}") if breakers is not None else None,
        )
    raise ValueError(f"feed {cfg.feed!r} is not available")


class Platform:
    """Every long-lived object of one coinwire process, in start order.

    Each is built whatever the process's roles (building starts nothing); `start` starts, and
    `stop` closes, only the services one of the roles runs (coinwire.roles.SERVICES). Every role,
    the default, is the server as it always was.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.roles = roles.parse_roles(settings.roles)
        self.services = roles.services_of(self.roles)
        private_dir(settings.data_path)  # the store, the signing secret and the master keys: owner only
        self.store = Store(settings.resolved_store_url, journal=settings.store_journal)
        self.bus = bus_from_url(settings.bus_url, settings.namespace, settings.bus_max_log, max_age=settings.bus_max_age,
                                max_bytes=settings.bus_max_bytes)
        self.cache = cache_from_url(settings.cache_url, settings.namespace)
        # circuit breakers on every outbound dependency (services/breakers.py, docs/BREAKERS.md)
        self.breakers = Breakers.from_settings(settings)
        self.breakers.watch()  # coinwire_breaker_state on /metrics
        self.gateway = Gateway(settings, self.store, self.bus, breakers=self.breakers)
        # PostgreSQL: one gateway writes a shard at a time, renewing while its bus is connected (docs/SCALING.md)
        self.leases = GatewayLeases(self.store, settings, bus=self.bus, reload=self.gateway.reload_from_store)
        self.log_feed = LogFeed(self.gateway, settings.log_feed_per_second)  # warnings and errors as `logmessages`
        self.notifier = Notifier(self.bus, PushLimits(settings.ws_max_patterns, settings.ws_max_streams, settings.ws_max_unread_bytes),
                                 self.gateway.accounts)
        # latest prices (every ticker.* message), ticker streamers, reference data, convert
        streamers = [build_streamer(t, self.breakers) for t in ticker_configs(settings.market_data, settings.exchanges)]
        self.market = MarketData(settings.market_data, self.bus, self.cache, self.store, streamers=streamers,
                                 breakers=self.breakers)
        self.market.tickers.listeners.append(self.notifier.on_ticker)
        # each market's recent public trades (a ring per market) and the `public_trades` push channel
        self.public_trades = PublicTrades(self.bus)
        self.public_trades.listeners.append(self.notifier.on_public_trade)
        self.health = Health(self.store, self.bus, self.cache, self.gateway)  # what /readyz and get_status answer
        self.health.reason_sources.append(breaker_reasons(self.breakers))  # open breakers degrade, never un-ready
        # `subscribe` with `since` and /ws/orders?since=: an account's missed notifications, from the bus's durable subjects
        self.streams = AccountStreams(self.bus, self.notifier, lambda account_id: self.gateway.seqs.get(account_id, 0))
        self.feeds = [build_feed(cfg, self.breakers) for cfg in settings.exchanges]
        # candles: 1m/1h from public trades, written in batches; charts read them with the history store
        self.candle_writer = CandleWriter(self.store)
        self.candles = CandleRecorder(self.bus, self.candle_writer)
        history = HistoryStore(default_history_root(settings.data_path))
        self.ohlcv = OhlcvQuery(self.store, history, self.candles, max_points=settings.ohlcv_max_points)
        self.ohlcv_streams = OhlcvStreams(self.notifier, self.ohlcv, self.candles)  # live candles for subscribe_ohlcv
        # rates: one a minute per market, stored once (`rates.retrieve`, the scheduler's job), read back and pushed (`rate`)
        self.rate_prices = CcxtPrices(self._ccxt_client, breakers=self.breakers)  # markets no feed runs for
        self.rates = Rates(self.store, self.bus, self.market.reader, self.rate_prices, self._feed_markets,
                           max_age=settings.rates_max_age)
        self.rate_history = RateHistory(self.store, lambda: {n: v.markets for n, v in self.gateway.venues.items()},
                                        max_points=settings.rates_max_points)
        self.history = history
        # notifications (services/notifications): e-mail and webhook channels, the outbox in the store, receipts
        notify = settings.notifications
        keys = MasterKeys.load(settings.data_path, os.environ)  # the vault's keys seal channel secrets
        self.webhook = WebhookChannel()
        email = EmailChannel(notify.smtp, vault_password(self.store, keys, notify.smtp.password_vault)
                             if notify.smtp.password_vault else None)
        self.notifications = NotificationService(
            NotificationStore(self.store, keys), self.bus, self.gateway.accounts,
            {"email": email, "webhook": self.webhook, "telegram": TelegramChannel(settings.telegram_api_base)},
            notify, GatewayOrders(self.gateway), PreferencesRepository(self.store),
            lambda amount, source, target: self._converted(amount, source, target), breakers=self.breakers)
        # portfolio candles (services/portfolio_tracker.py): every account, wallet set, run and user total valued in its
        # owner's currency, captured at 15-minute boundaries, written in batches; None when `portfolio_tracking` is off
        self.portfolio_writer = PortfolioCandleWriter(self.store)
        self.portfolio = (PortfolioTracker(self.gateway, self.market, self.store, self.portfolio_writer,
                                           sample_interval=settings.portfolio_sample_interval)
                          if settings.portfolio_tracking else None)
        # portfolio charts: stored 15-minute buckets and the forming one, rolled up (GET /api/v1/portfolio/{scope}/{id}/ohlcv),
        # and the forming bucket live (subscribe_portfolio_ohlcv; none when tracking is off)
        self.portfolio_ohlcv = PortfolioOhlcv(self.store, self.portfolio, max_points=settings.ohlcv_max_points)
        self.portfolio_streams = (PortfolioStreams(self.notifier, self.portfolio_ohlcv, self.portfolio)
                                  if self.portfolio is not None else None)
        # account imports (services/account_import.py): a live account's history with progress, resumed at start-up
        self.imports = AccountImports(
            self.store, settings.exchanges, live_clients(self.store, settings.data_path), history, self.notifications.notify,
            ImportSettings(settings.import_page_limit, history_start_ms(settings.import_history_start), settings.import_timeframe),
            pegs=settings.market_data.pegs)  # the past value in the owner's display currency: pegs hold at every instant
        self.import_progress = ImportProgressPublisher(self.bus)  # the `import_progress` channel, via the bus
        self.imports.listeners.append(self.import_progress)
        # daily stats (services/daily_stats.py): each portfolio's days, recorded once its owner's local midnight has passed
        self.daily_stats = DailyStatsRecorder(self.store, self.market, pegs=settings.market_data.pegs,
                                              pass_seconds=settings.daily_stats_pass_seconds)
        # external accounts: webhook secrets sealed in the vault, signed trades applied once (services/external_accounts)
        self.external = ExternalAccounts(self.gateway, self.store, Vault(self.store, keys))
        if self.portfolio is not None:  # a webhook trade is the account's traded volume, like a fill
            self.external.listeners.append(self.portfolio.on_external_trade)
        # the analyser (services/analyser.py): indicators on market, portfolio, balance and position series, for rules and
        # subscribe_analysis; strategy signals of paper and live runs stored and published (services/signals.py)
        self.analyser = Analyser(self.store, self.bus, self.portfolio, self.gateway, self.ohlcv)
        self.signals = Signals(self.store, self.bus)
        self.analysis_streams = AnalysisStreams(self.notifier, self.analyser)  # subscribe_analysis
        # feeds apart from the gateway (docs/SCALING.md): the marketdata role answers over the bus, a gateway without it asks
        self.market_answers = MarketAnswers(self.bus, {c.name: f for c, f in zip(settings.exchanges, self.feeds, strict=True)})
        self.remote_market = (RemoteMarketData(self.bus, lambda: self.gateway.venues, [c.name for c in settings.exchanges],
                                               {c.name: self._health_hook(c.name) for c in settings.exchanges})
                              if "gateway" in self.roles and "marketdata" not in self.roles else None)
        self._started: set[str] = set()  # the services started, closed by `stop`
        self._tasks: list[asyncio.Task[Any]] = []

    def runs(self, service: str) -> bool:
        """Whether one of this process's roles runs `service` (a name of coinwire.roles.SERVICES)."""
        return service in self.services

    async def _converted(self, amount: Decimal, source: str, target: str) -> Decimal:
        return (await self.market.convert(amount, source, target)).result

    async def start(self, feeds: bool = True) -> None:
        """Start the roles' services; with `feeds=False` the market data waits for `start_feeds()` (a run attaches first)."""
        await self.store.start()
        if self.store.journal is not None:
            metrics.watch_journal(self.store.journal)
        await self.bus.start()
        metrics.set_process_roles(self.roles)
        if self.runs("gateway"):
            await self.leases.acquire()  # waits while another holds the shard; the gateway reads the store only then
            await self._start("gateway", self.gateway.start)
            await self._start("external", self.external.start)  # the accounts are loaded: open their webhook secrets
        if self.runs("log_feed"):
            forward_warnings(self.log_feed.forward)
            self._started.add("log_feed")
        if self.runs("push"):
            await self._start("notifier", self.notifier.start)
        await self._start("market", lambda: self.market.start(sources=self.runs("ticker_streamers")))
        if self.runs("public_trades"):
            await self._start("public_trades", self.public_trades.start)
        if self.runs("candle_recording"):
            await self._start("candle_writer", self.candle_writer.start)
            await self._start("candles", self.candles.start)
        if self.runs("push"):
            await self._start("ohlcv_streams", self.ohlcv_streams.start)
        if self.runs("notifications"):
            await self._start("notifications", self.notifications.start)
        if self.runs("portfolio_tracker"):
            await self._start("portfolio_writer", self.portfolio_writer.start)
            if self.portfolio is not None:
                await self._start("portfolio", self.portfolio.start)
            if self.portfolio_streams is not None:
                await self._start("portfolio_streams", self.portfolio_streams.start)
        if self.runs("daily_stats"):
            await self._start("daily_stats", self.daily_stats.start)
        if self.runs("analyser"):
            await self._start("analyser", self.analyser.start)
        self._tasks.append(asyncio.create_task(metrics.watch_loop_lag(), name="loop-lag"))
        if self.remote_market is not None:
            for cfg in self.settings.exchanges:
                self.gateway.snapshot_sources[cfg.name] = self.remote_market
            await self._start("remote_market", self.remote_market.start)
        if self.runs("market_answers") and not roles.is_all(self.roles):  # other processes' gateways mirror these feeds
            await self._start("market_answers", self.market_answers.start)
        if feeds and self.runs("feeds"):
            self.start_feeds()
        log.info("coinwire started", exchanges=[c.name for c in self.settings.exchanges], store=self.store.dialect,
                 roles=sorted(self.roles))

    async def _start(self, name: str, step: Callable[[], Awaitable[Any]]) -> None:
        await step()
        self._started.add(name)

    def warm_sources(self) -> list[HistorySource]:
        """Where paper and live runs find their warm-up candles, in the order tried (services/warm_history.py)."""
        return warm_sources(self.history, self.ohlcv, self.settings.exchanges, self.feeds)

    def start_feeds(self) -> list[asyncio.Task[Any]]:
        """One task per exchange's feed; a recorded feed's task ends with its recording.

        The marketdata role apart from the others also answers other processes' requests for
        markets and books, and says its feeds run (`start`, services/market_relay.py).
        """
        tasks = []
        for cfg, feed in zip(self.settings.exchanges, self.feeds, strict=True):
            self.gateway.snapshot_sources[cfg.name] = feed
            if hasattr(feed, "on_health"):  # live feeds say when a symbol's data stops flowing
                feed.on_health = self._health_hook(cfg.name)
            tasks.append(asyncio.create_task(self._run_feed(cfg.name, feed), name=f"feed-{cfg.name}"))
        self._tasks += tasks
        return tasks

    def _feed_markets(self) -> list[tuple[str, str]]:
        """The markets of every exchange whose feed runs: what the rate retriever records when not told which."""
        stopped = self.health.feeds_stopped
        return [(name, symbol) for name, venue in self.gateway.venues.items() if name not in stopped for symbol in sorted(venue.markets)]

    def _ccxt_client(self, exchange: str) -> Any:
        """A CCXT client for a market's rates: a configured ccxt exchange's settings, else the name as CCXT's id."""
        cfg = next((c for c in self.settings.exchanges if c.name == exchange), None)
        if cfg is None:
            return make_client(exchange)
        if cfg.feed != "ccxt":
            raise InvalidInput("rates_unavailable", f"exchange {exchange} has a {cfg.feed} feed, no CCXT source", exchange=exchange)
        return make_client(cfg.ccxt_id or cfg.name, urls=cfg.ccxt_urls, options=cfg.ccxt_options, timeout=cfg.ccxt_timeout)

    def _health_hook(self, name: str) -> HealthHook:
        """Marks a symbol stale (exchange `degraded`, orders refused) while its feed is failing."""

        async def on_health(symbol: str, healthy: bool) -> None:
            exchange = self.gateway.venues.get(name)
            if exchange is None:
                return
            if healthy:
                exchange.stale.discard(symbol)
            else:
                exchange.stale.add(symbol)
            await self.gateway.refresh_status(exchange)

        return on_health

    async def _run_feed(self, name: str, feed: Any) -> None:
        try:
            await feed.run(self.bus.publish)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("feed stopped with an error", exchange=name)
            self.health.feed_stopped(name)
            exchange = self.gateway.venues.get(name)
            if exchange is not None:
                await self.gateway.set_status(exchange, "degraded")

    async def stop(self) -> None:
        """Close every service, the gateway and the store last; a close that raises is logged and the others still run.

        Why each step on its own: the gateway's writer and the store's journal hold what was
        acknowledged but not yet in the database, so one service failing to close before them must
        not leave that tail unwritten (the process would exit with it still in the journal). The
        first failure is raised once everything is closed.
        """
        forward_warnings(None)
        failures: list[BaseException] = []
        every = roles.is_all(self.roles)  # every role: everything closes, as it always did (started or not)
        optional = {"imports", "log_feed", "analyser", "portfolio_streams", "portfolio", "market", "public_trades", "notifier",
                    "notifications", "daily_stats", "ohlcv_streams", "candles", "candle_writer", "portfolio_writer", "gateway",
                    "external"}

        async def close(name: str, step: Callable[[], Awaitable[Any]]) -> None:
            if not every and name in optional and name not in self._started:
                return  # a service of another role: never started here (a gateway's close would write its checkpoint)
            try:
                await step()
            except Exception as exc:  # logged here; the next step runs all the same
                log.exception("a service failed to close", service=name)
                failures.append(exc)

        if self.remote_market is not None:
            await close("remote_market", self.remote_market.close)
        await close("market_answers", self.market_answers.close)
        await close("imports", self.imports.close)  # a running import stays `running` in the store: the next start resumes it
        await close("import_progress", self.import_progress.close)
        await close("log_feed", self.log_feed.close)
        for feed in self.feeds:
            await close("feed", feed.close)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.analysis_streams.close()
        await close("analyser", self.analyser.close)
        await close("signals", self.signals.settled)
        if self.portfolio_streams is not None:
            await close("portfolio_streams", self.portfolio_streams.close)
        if self.portfolio is not None:
            await close("portfolio", self.portfolio.close)  # its forming buckets, stored as partial, through the writer
        services: list[tuple[str, Any]] = [
            ("market", self.market), ("public_trades", self.public_trades), ("notifier", self.notifier),
            ("notifications", self.notifications), ("daily_stats", self.daily_stats), ("webhook", self.webhook),
            ("ohlcv_streams", self.ohlcv_streams), ("rate_prices", self.rate_prices), ("health", self.health),
            ("candles", self.candles), ("candle_writer", self.candle_writer), ("portfolio_writer", self.portfolio_writer),
            ("gateway", self.gateway), ("leases", self.leases), ("bus", self.bus), ("cache", self.cache), ("store", self.store),
        ]
        for name, service in services:
            await close(name, service.close)
        if failures:
            raise failures[0]

    async def readiness(self) -> dict[str, Any]:
        """The process's health (services/health.py): `ready` when the store, bus and cache answer; `status` and `reasons`.

        `roles` says, per role of the process, what it waits for (empty lists: nothing); a role
        waiting makes the process not ready (a gateway apart from the feeds, with no market data).
        """
        report = await self.health.report()
        waits: dict[str, list[dict[str, Any]]] = {role: [] for role in sorted(self.roles)}
        if self.remote_market is not None:
            waits["gateway"] += self.remote_market.waits()
        report["roles"] = waits
        if any(waits.values()):
            report["ready"] = False
        return report


def _zone_of(preferences: PreferencesRepository) -> Callable[[int], Awaitable[str]]:
    """A user's time zone (their preference; UTC by default): the zone a rule set's time windows are read in."""

    async def zone_of(user_id: int) -> str:
        return str((await preferences.get(user_id))["time_zone"])

    return zone_of


def create_app(settings: Settings, env: Mapping[str, str] | None = None) -> FastAPI:
    """The server of `coinwire serve`: every service built here, started and stopped by the app's lifespan.

    `env` holds the access layer's settings (COINWIRE_JWT_SECRET, rate limits, ...: api/access.py); the
    process environment when None. The process's roles (coinwire.roles) choose what starts; roles
    that cannot run on these settings (a role apart on an embedded store, bus or cache; a role that
    reaches the gateway in-process without it) are a ConfigError, before anything is built.
    """
    chosen = roles.parse_roles(settings.roles)
    problems = roles.refusals(chosen, store_url=settings.resolved_store_url, bus_url=settings.bus_url, cache_url=settings.cache_url)
    if problems:
        raise ConfigError("cannot start roles " + ",".join(sorted(chosen)) + ": " + "; ".join(problems))
    if chosen <= {"marketdata"}:  # marketdata alone: its feeds, ticker streamers, candles; the probes
        return _market_data_app(Platform(settings), os.environ if env is None else env)
    platform = Platform(settings)
    # an api replica apart from the gateway forwards Api calls to the gateway's process; a gateway process apart from the
    # api answers them (api/forwarding.py, docs/SCALING.md "Commands across processes")
    replica = "gateway" not in chosen
    requests = requests_for(platform.bus)  # over NATS; on the in-process bus nobody else could call or answer
    forward = Forwarder(requests, [c.name for c in settings.exchanges], settings.gateway_wait_seconds) if replica else None
    remote_accounts = RemoteAccounts(forward, requests, platform.gateway.accounts) if forward is not None else None
    streams = AccountStreams(platform.bus, platform.notifier, forward.latest_seq) if forward is not None else platform.streams
    access = Access(settings, platform.store, os.environ if env is None else env, platform.market.display_currencies)
    runs = RunManager(settings.data_path, settings.user_strategies_allowed, gateway=platform.gateway,
                      history=platform.warm_sources(), listeners=[platform.notifications.on_run], signals=platform.signals,
                      store=platform.store, exchanges=[c.name for c in settings.exchanges])
    # the scheduler and its job kinds (services/scheduler.py); `retrieve_rates` stores a rate a minute (services/rates.py)
    run_owners = OwnersForSchedules(access.owners)
    schedule_kinds: list[JobKind] = [RunStrategy(runs, run_owners), StrategyStep(runs, run_owners),
                      Housekeeping(platform.store, int(settings.schedule_ticks_kept_days * 86_400_000)),
                      RetrieveRates(platform.rates)]
    # apart from the gateway, each claimed tick's job runs in the gateway's process, where the runs and market data are
    scheduler = Scheduler(platform.store, {k.name: k for k in schedule_kinds}, record_rates=settings.record_rates,
                          preferences=PreferencesRepository(platform.store), users=access.repo,
                          dispatch=forward.run_job if forward is not None else None)
    schedules_changed = ScheduleWakes(requests)  # a schedule added here wakes the scheduler loops of other processes
    scheduler.changed.append(schedules_changed)
    # each user's Telegram bot answers their chat's commands (/status, /balance, /runs, /stop, ...), following the stored settings
    commands = TelegramCommands(platform.gateway, runs, lambda run_id: access.owners.owner_of("run", run_id), platform.health,
                                StoreFills(platform.store), PreferencesRepository(platform.store), platform.market)
    telegram = StoredBots(TelegramBots(settings.telegram_api_base, commands), platform.notifications.outbox)
    platform.notifications.settings_listeners.append(telegram.user_changed)
    # users' rule sets (services/rule_sets.py): scopes checked against the account book and the owners table
    rule_sets = RuleSets(platform.store, platform.gateway, access.owners)
    api = Api(platform.gateway, platform.notifier, platform.health, streams, ohlcv_streams=platform.ohlcv_streams,
              auth=access.service, owners=access.owners, audit=access.audit, connections=access.connections,
              rpc_limit=access.rpc_limit, rates=platform.rate_history, scheduler=scheduler,
              notifications=platform.notifications, portfolio=platform.portfolio,
              portfolio_streams=platform.portfolio_streams if not replica else None, rule_sets=rule_sets,
              analysis_streams=platform.analysis_streams if not replica else None,  # a replica runs neither: said, not silent
              forward=forward, local_methods=LOCAL_METHODS)
    # outside signals (services/outside_signals.py): the configured providers, users' HMAC secrets in the vault, to their runs
    outside = OutsideSignals(settings.signal_providers, access.service, platform.external.vault, platform.store, runs)
    # streams a replica's connections open here (portfolio candles, analysis values: api/remote_streams.py), and there
    remote_connections = RemoteConnections(requests, platform.notifier) if not replica else None
    if forward is not None:
        forward.streams = StreamClient(forward, requests, platform.notifier)
    responder = (CallResponder(api, requests, settings.gateway_exchanges, lambda: platform.leases.lost, platform.gateway.accounts,
                               lambda account_id: platform.gateway.seqs.get(account_id, 0),
                               # the replicas' requests to the routes that need this process (api/route_forwarding.py)
                               routes=RouteRunner(create_http_app(platform, api, access, runs, _no_lifespan, outside, guarded=False)),
                               jobs=scheduler.run_job,  # a scheduler apart's ticks
                               remote=remote_connections)
                 if not replica and isinstance(requests, NatsRequests) else None)
    # the controller (services/controller.py): enabled live and dry-run rule sets evaluated on the tracker's samples, their
    # firings journaled and acted on, `rule_fired` pushed; none when portfolio tracking is off (no samples to evaluate)
    controller = (Controller(rule_sets, rule_sets.repo, platform.portfolio, platform.gateway, runs, platform.notifications.notify,
                             platform.analyser, zone_of=_zone_of(PreferencesRepository(platform.store)),
                             runner=ActionRunner(platform.gateway, runs, platform.notifications.notify,
                                                 breakers=platform.breakers))
                  if platform.portfolio is not None else None)
    rule_fired_push = RuleFiredPush(api, platform.bus)  # the `rule_fired` channel: over the bus to every api process
    if controller is not None:
        controller.listeners.append(rule_fired_push)
    wallet_set_push = WalletSetPush(api, platform.bus)  # the `wallet_set` channel: each committed change's wallet sets
    platform.gateway.commit_listeners.append(wallet_set_push)

    run = platform.runs
    if not run("controller"):
        controller = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.start()
        if run("account_imports"):
            await platform.imports.start(platform.gateway.accounts.accounts)  # the server resumes imports; a paper session does not
        await access.start()
        if run("http_api") or responder is not None:  # the routes a replica sends here check outside signals too
            await outside.start()
        # What start-up built (modules, tables, settings) lives as long as the process: take it
        # out of the collector's generations, so full collections walk only what serving made.
        gc.collect()
        gc.freeze()
        if run("runs"):
            await runs.open()
        if controller is not None:
            await controller.start()  # after the tracker (platform) and the runs: it resumes commands that act on both
        if run("scheduler"):
            await schedules_changed.listen(scheduler.wake)
            await scheduler.start()
        if run("telegram_bots"):
            await telegram.start()
        if responder is not None:
            if remote_connections is not None:
                await remote_connections.start()
            await responder.start()  # the gateway is live under its leases: forwarded calls are answered from here on
        if forward is not None:
            await forward.start()
            if forward.streams is not None and run("http_api"):
                await forward.streams.start()
        if remote_accounts is not None and run("http_api"):  # the book of an api replica's connections
            await remote_accounts.start()
        try:
            yield
        finally:
            if remote_accounts is not None:
                await remote_accounts.close()
            if forward is not None:
                if forward.streams is not None:
                    await forward.streams.close()
                await forward.close()
            if responder is not None:
                await responder.close()
            if remote_connections is not None:
                await remote_connections.close()
            if run("telegram_bots"):
                await telegram.close()
            if run("scheduler"):
                await scheduler.close()
            await schedules_changed.close()
            if controller is not None:
                await controller.close()
            await runs.close()  # its runs stop with the server (those the api started here, whatever the roles)
            await wallet_set_push.close()
            await rule_fired_push.close()
            await access.close()
            await platform.stop()

    if not run("http_api"):  # a gateway process without the api role: the probes and the scrape only
        return create_ops_app(platform.readiness, lifespan, os.environ if env is None else env, sorted(chosen))
    return create_http_app(platform, api, access, runs, lifespan, outside, forward=forward)


@asynccontextmanager
async def _no_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The forwarded routes' copy of the app is never served: the process's own app starts and stops everything."""
    yield


def _market_data_app(platform: Platform, env: Mapping[str, str]) -> FastAPI:
    """The marketdata role's process: the platform's feeds and market services (no gateway), and the probes over HTTP."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.start()
        try:
            yield
        finally:
            await platform.stop()

    return create_ops_app(platform.readiness, lifespan, env, sorted(platform.roles))

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
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import msgspec
import structlog
from fastapi import FastAPI

from coinwire import metrics
from coinwire.api.access import Access
from coinwire.api.app import create_http_app
from coinwire.api.import_routes import ImportProgressPush
from coinwire.api.methods import Api
from coinwire.api.notifier import Notifier, PushLimits
from coinwire.api.ohlcv_routes import OhlcvStreams
from coinwire.api.portfolio_routes import PortfolioStreams
from coinwire.api.schedules_routes import OwnersForSchedules
from coinwire.api.streams import AccountStreams
from coinwire.auth.preferences import PreferencesRepository
from coinwire.auth.vault import MasterKeys, Vault
from coinwire.bus import bus_from_url
from coinwire.cache import cache_from_url
from coinwire.config import ExchangeConfig, Settings
from coinwire.core.errors import InvalidInput
from coinwire.engine.warmup import HistorySource
from coinwire.feeds.base import HealthHook
from coinwire.feeds.demo import DemoFeed
from coinwire.history.store import HistoryStore, default_history_root
from coinwire.logs import forward_warnings
from coinwire.private_files import private_dir
from coinwire.services.account_import import AccountImports, ImportSettings, history_start_ms, live_clients
from coinwire.services.candle_recorder import CandleRecorder
from coinwire.services.daily_stats import DailyStatsRecorder
from coinwire.services.external_accounts import ExternalAccounts
from coinwire.services.gateway import Gateway
from coinwire.services.health import Health
from coinwire.services.log_feed import LogFeed
from coinwire.services.market_data import MarketData, build_streamer, ticker_configs
from coinwire.services.notifications.email import EmailChannel, vault_password
from coinwire.services.notifications.outbox import NotificationStore
from coinwire.services.notifications.service import GatewayOrders, NotificationService
from coinwire.services.notifications.telegram import TelegramChannel
from coinwire.services.notifications.telegram_bot import StoredBots, TelegramBots
from coinwire.services.notifications.telegram_commands import StoreFills, TelegramCommands
from coinwire.services.notifications.webhook import WebhookChannel
from coinwire.services.ohlcv import OhlcvQuery
from coinwire.services.portfolio_ohlcv import PortfolioOhlcv
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.services.public_trades import PublicTrades
from coinwire.services.rate_history import RateHistory
from coinwire.services.rates import CcxtPrices, Rates
from coinwire.services.runs import RunManager
from coinwire.services.scheduler import Housekeeping, JobKind, RetrieveRates, RunStrategy, Scheduler, StrategyStep
from coinwire.services.warm_history import warm_sources
from coinwire.store import Store
from coinwire.store.candle_writer import CandleWriter
from coinwire.store.portfolio_candles import PortfolioCandleWriter
from coinwire.venues.ccxt_client import make_client

__all__ = ["Platform", "build_feed", "create_app"]

log = structlog.get_logger("coinwire.app")


def build_feed(cfg: ExchangeConfig) -> Any:
    """The market-data feed an exchange's configuration asks for."""
    if cfg.feed == "demo":
        kwargs: dict[str, Any] = {"exchange": cfg.name, "seed": cfg.seed, "interval": cfg.tick_interval,
                                  "premium_bp": cfg.demo_premium_bp, "funding_speedup": cfg.funding_speedup}
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
        )
    raise ValueError(f"feed {cfg.feed!r} is not available")


class Platform:
    """Every long-lived object of one coinwire process, in start order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        private_dir(settings.data_path)  # the store, the signing secret and the master keys: owner only
        self.store = Store(settings.resolved_store_url, journal=settings.store_journal)
        self.bus = bus_from_url(settings.bus_url, settings.bus_namespace, settings.bus_max_log)
        self.cache = cache_from_url(settings.cache_url)
        self.gateway = Gateway(settings, self.store, self.bus)
        self.log_feed = LogFeed(self.gateway, settings.log_feed_per_second)  # warnings and errors as `logmessages`
        self.notifier = Notifier(self.bus, PushLimits(settings.ws_max_patterns, settings.ws_max_streams, settings.ws_max_unread_bytes),
                                 self.gateway.accounts)
        # latest prices (every ticker.* message), ticker streamers, reference data, convert
        streamers = [build_streamer(t) for t in ticker_configs(settings.market_data, settings.exchanges)]
        self.market = MarketData(settings.market_data, self.bus, self.cache, self.store, streamers=streamers)
        self.market.tickers.listeners.append(self.notifier.on_ticker)
        # each market's recent public trades (a ring per market) and the `public_trades` push channel
        self.public_trades = PublicTrades(self.bus)
        self.public_trades.listeners.append(self.notifier.on_public_trade)
        self.health = Health(self.store, self.bus, self.cache, self.gateway)  # what /readyz and get_status answer
        # `subscribe` with `since` and /ws/orders?since=: an account's missed notifications, from the bus's durable subjects
        self.streams = AccountStreams(self.bus, self.notifier, lambda account_id: self.gateway.seqs.get(account_id, 0))
        self.feeds = [build_feed(cfg) for cfg in settings.exchanges]
        # candles: 1m/1h from public trades, written in batches; charts read them with the history store
        self.candle_writer = CandleWriter(self.store)
        self.candles = CandleRecorder(self.bus, self.candle_writer)
        history = HistoryStore(default_history_root(settings.data_path))
        self.ohlcv = OhlcvQuery(self.store, history, self.candles, max_points=settings.ohlcv_max_points)
        self.ohlcv_streams = OhlcvStreams(self.notifier, self.ohlcv, self.candles)  # live candles for subscribe_ohlcv
        # rates: one a minute per market, stored once (`rates.retrieve`, the scheduler's job), read back and pushed (`rate`)
        self.rate_prices = CcxtPrices(self._ccxt_client)  # markets no feed runs for
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
            lambda amount, source, target: self._converted(amount, source, target))
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
            ImportSettings(settings.import_page_limit, history_start_ms(settings.import_history_start), settings.import_timeframe))
        self.imports.listeners.append(ImportProgressPush(self.notifier))  # the `import_progress` channel
        # daily stats (services/daily_stats.py): each portfolio's days, recorded once its owner's local midnight has passed
        self.daily_stats = DailyStatsRecorder(self.store, self.market, pegs=settings.market_data.pegs,
                                              pass_seconds=settings.daily_stats_pass_seconds)
        # external accounts: webhook secrets sealed in the vault, signed trades applied once (services/external_accounts)
        self.external = ExternalAccounts(self.gateway, self.store, Vault(self.store, keys))
        if self.portfolio is not None:  # a webhook trade is the account's traded volume, like a fill
            self.external.listeners.append(self.portfolio.on_external_trade)
        self._tasks: list[asyncio.Task[Any]] = []

    async def _converted(self, amount: Decimal, source: str, target: str) -> Decimal:
        return (await self.market.convert(amount, source, target)).result

    async def start(self, feeds: bool = True) -> None:
        """Start every service; with `feeds=False` the market data waits for `start_feeds()` (a run attaches first)."""
        await self.store.start()
        if self.store.journal is not None:
            metrics.watch_journal(self.store.journal)
        await self.bus.start()
        await self.gateway.start()
        await self.external.start()  # the accounts are loaded: open their webhook secrets
        forward_warnings(self.log_feed.forward)
        await self.notifier.start()
        await self.market.start()
        await self.public_trades.start()
        await self.candle_writer.start()
        await self.candles.start()
        await self.ohlcv_streams.start()
        await self.notifications.start()
        await self.portfolio_writer.start()
        if self.portfolio is not None:
            await self.portfolio.start()
        if self.portfolio_streams is not None:
            await self.portfolio_streams.start()
        await self.daily_stats.start()
        self._tasks.append(asyncio.create_task(metrics.watch_loop_lag(), name="loop-lag"))
        if feeds:
            self.start_feeds()
        log.info("coinwire started", exchanges=[c.name for c in self.settings.exchanges], store=self.store.dialect)

    def warm_sources(self) -> list[HistorySource]:
        """Where paper and live runs find their warm-up candles, in the order tried (services/warm_history.py)."""
        return warm_sources(self.history, self.ohlcv, self.settings.exchanges, self.feeds)

    def start_feeds(self) -> list[asyncio.Task[Any]]:
        """One task per exchange's feed; a recorded feed's task ends with its recording."""
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
        forward_warnings(None)
        await self.imports.close()  # a running import stays `running` in the store: the next start resumes it
        await self.log_feed.close()
        for feed in self.feeds:
            await feed.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.portfolio_streams is not None:
            await self.portfolio_streams.close()
        if self.portfolio is not None:
            await self.portfolio.close()  # its forming buckets, stored as partial, through the writer
        await self.market.close()
        await self.public_trades.close()
        await self.notifier.close()
        await self.notifications.close()
        await self.daily_stats.close()
        await self.webhook.close()
        await self.ohlcv_streams.close()
        await self.rate_prices.close()
        await self.health.close()
        await self.candles.close()
        await self.candle_writer.close()
        await self.portfolio_writer.close()
        await self.gateway.close()
        await self.bus.close()
        await self.cache.close()
        await self.store.close()

    async def readiness(self) -> dict[str, Any]:
        """The process's health (services/health.py): `ready` when the store, bus and cache answer; `status` and `reasons`."""
        return await self.health.report()


def create_app(settings: Settings, env: Mapping[str, str] | None = None) -> FastAPI:
    """The server of `coinwire serve`: every service built here, started and stopped by the app's lifespan.

    `env` holds the access layer's settings (COINWIRE_JWT_SECRET, rate limits, ...: api/access.py); the
    process environment when None.
    """
    platform = Platform(settings)
    access = Access(settings, platform.store, os.environ if env is None else env, platform.market.display_currencies)
    runs = RunManager(settings.data_path, settings.user_strategies_allowed, gateway=platform.gateway,
                      history=platform.warm_sources(), listeners=[platform.notifications.on_run])
    # the scheduler and its job kinds (services/scheduler.py); `retrieve_rates` stores a rate a minute (services/rates.py)
    run_owners = OwnersForSchedules(access.owners)
    schedule_kinds: list[JobKind] = [RunStrategy(runs, run_owners), StrategyStep(runs, run_owners),
                      Housekeeping(platform.store, int(settings.schedule_ticks_kept_days * 86_400_000)),
                      RetrieveRates(platform.rates)]
    scheduler = Scheduler(platform.store, {k.name: k for k in schedule_kinds}, record_rates=settings.record_rates,
                          preferences=PreferencesRepository(platform.store), users=access.repo)
    # each user's Telegram bot answers their chat's commands (/status, /balance, /runs, /stop, ...), following the stored settings
    commands = TelegramCommands(platform.gateway, runs, lambda run_id: access.owners.owner_of("run", run_id), platform.health,
                                StoreFills(platform.store), PreferencesRepository(platform.store), platform.market)
    telegram = StoredBots(TelegramBots(settings.telegram_api_base, commands), platform.notifications.outbox)
    platform.notifications.settings_listeners.append(telegram.user_changed)
    api = Api(platform.gateway, platform.notifier, platform.health, platform.streams, ohlcv_streams=platform.ohlcv_streams,
              auth=access.service, owners=access.owners, audit=access.audit, connections=access.connections,
              rpc_limit=access.rpc_limit, rates=platform.rate_history, scheduler=scheduler,
              notifications=platform.notifications, portfolio=platform.portfolio,
              portfolio_streams=platform.portfolio_streams)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.start()
        await platform.imports.start(platform.gateway.accounts.accounts)  # the server resumes imports; a paper session does not
        await access.start()
        # What start-up built (modules, tables, settings) lives as long as the process: take it
        # out of the collector's generations, so full collections walk only what serving made.
        gc.collect()
        gc.freeze()
        await runs.open()
        await scheduler.start()
        await telegram.start()
        try:
            yield
        finally:
            await telegram.close()
            await scheduler.close()
            await runs.close()  # its runs stop with the server
            await access.close()
            await platform.stop()

    return create_http_app(platform, api, access, runs, lifespan)

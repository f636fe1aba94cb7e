"""Settings: embedded defaults, then a TOML file (`--config`), then `COINWIRE_*` environment overrides.

Everything is a frozen, strict msgspec Struct: an unknown key in the file is an error that
names the key, never a silently ignored typo.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

from coinwire.config.market_data import MarketDataConfig, check_market_data
from coinwire.config.notifications import NotificationsConfig, check_notifications, notifications_env, public_notifications
from coinwire.core.errors import InvalidInput
from coinwire.core.outside_signals import check_provider
from coinwire.roles import RoleError, parse_roles

__all__ = ["ExchangeConfig", "Settings", "load_settings", "ConfigError", "ENV_PREFIX", "MAX_PREMIUM_BP", "MAX_CATCH_UP",
           "REGISTRATION_ROLES", "demo_ticks_due", "validate_namespace"]

# The limits below are checked here, where settings are read, and again by the packages that use them (the demo
# feed, the bus, self-registration): they live in config so that config imports none of those packages.
MAX_PREMIUM_BP = 5_000  # a demo exchange's premium moves its start price by at most half of it, either way
# Steps of one market a demo feed with a `demo_epoch` may take to catch up before it publishes: ~75 us each measured on
# a busy 2-core machine, so ~15 s; at 4 ticks a second that is ~14 hours of one market's ticks, ~4.6 hours of three.
MAX_CATCH_UP = 200_000
REGISTRATION_ROLES = ("viewer", "trader")  # the roles a self-registered user may be given: never admin (auth.site_settings)
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]+")


def validate_namespace(namespace: str) -> str:
    """A bus namespace is one subject token that is also a valid JetStream stream name: letters, digits, `_`, `-`."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise InvalidInput(
            "invalid_namespace", f"namespace must be letters, digits, '_' or '-', got {namespace!r}", namespace=namespace
        )
    return namespace

ENV_PREFIX = "COINWIRE_"


def demo_ticks_due(exchange: str, epoch: int, interval: float, markets: int, stepped: int, now: int) -> int:
    """Ticks of a demo market on `epoch` due at `now` (unix ns), one every `interval` seconds.

    ConfigError when catching up from tick `stepped` would take more than MAX_CATCH_UP steps of
    one market: a stale epoch is refused where settings are read and where the feed is built,
    rather than stalling a start for minutes.
    """
    ticks = max(0, (now - epoch * 1_000_000_000) // round(interval * 1_000_000_000))
    steps = (ticks - stepped) * markets
    if steps > MAX_CATCH_UP:
        hours = MAX_CATCH_UP // markets * interval / 3600
        raise ConfigError(f"exchange {exchange}: demo_epoch {epoch} is {ticks:,} ticks ago; catching up would step its {markets} "
                          f"market(s) {steps:,} times, more than {MAX_CATCH_UP:,}: choose an epoch less than {hours:.1f} hours "
                          "ago at this tick_interval and these symbols")
    return ticks


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class ExchangeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One exchange the gateway serves. Paper exchanges mirror a feed's markets and books."""

    name: str = "demo"
    mode: str = "paper"  # paper | live (a real account through CCXT; needs feed = "ccxt")
    feed: str = "demo"  # demo | replay | ccxt
    symbols: list[str] = msgspec.field(default_factory=list)  # empty = every market of the feed
    seed: int = 7  # demo feed
    tick_interval: float = 0.25  # demo feed, seconds between market updates
    # demo feed: start prices this many basis points above the usual ones (negative: below), so two
    # demo exchanges quote one market at different prices (see the cross_exchange strategy)
    demo_premium_bp: float = 0.0
    # demo feed: unix seconds where tick 0 of the market is; tick n is due at demo_epoch + n * tick_interval and stamped
    # with that time, so every process with the same demo settings watches one market (unset: ticks at wall time from start)
    demo_epoch: int | None = None
    replay_paths: list[str] = msgspec.field(default_factory=list)
    # replay feed: what the capture records: "binance" (spot BTC/USDT) or "binanceusdm" (the USD-M perpetual BTC/USDT:USDT)
    replay_market: str = "binance"
    # demo feed: perpetuals' funding comes this many times more often than their 8-hour interval (60: every 8 minutes)
    funding_speedup: int = 60
    replay_speed: float | None = 1.0  # None = as fast as possible
    replay_loop: bool = True
    paper_funds: dict[str, str] = msgspec.field(default_factory=dict)  # credited once on an empty store
    # ccxt feed: a paper exchange mirroring a real exchange's live books and trades (public data only)
    ccxt_id: str = ""  # CCXT exchange id; default: `name`
    poll_interval: float = 1.0  # seconds between REST polls when WebSocket is unavailable or failing
    ccxt_depth: int = 100  # book levels per side to mirror
    ccxt_websocket: bool = True  # use ccxt.pro watch_* when the exchange has them
    ccxt_timeout: float = 10.0  # seconds per REST request
    ccxt_urls: dict[str, str] = msgspec.field(default_factory=dict)  # dotted urls paths -> URL, e.g. "api.public"
    ccxt_options: dict[str, Any] = msgspec.field(default_factory=dict)  # passed to the CCXT exchange as `options`
    # live exchanges: the account's credentials come from the vault or environment variables, never from this file
    credentials_user: str = ""  # take them from this user's vault entry for the exchange (`coinwire keys set`)
    api_key_env: str = ""  # default COINWIRE_<NAME>_API_KEY
    secret_env: str = ""  # default COINWIRE_<NAME>_SECRET
    password_env: str = ""  # default COINWIRE_<NAME>_PASSWORD (exchanges that want one, e.g. OKX)
    live_reconcile_interval: float = 30.0  # seconds between checks of open and unacknowledged orders at the venue
    live_market_margin: float = 0.02  # share added to a market buy's previewed cost for its hold (the book moves)

    def credential_env(self, which: str) -> str:
        """The environment variable holding `which` (api_key, secret, password) of a live account."""
        configured = {"api_key": self.api_key_env, "secret": self.secret_env, "password": self.password_env}[which]
        return configured or f"{ENV_PREFIX}{self.name.upper().replace('-', '_')}_{which.upper()}"


def _default_exchanges() -> list[ExchangeConfig]:
    return [ExchangeConfig(paper_funds={"USDT": "100000", "BTC": "2", "ETH": "20", "SOL": "200"})]


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = ""  # default: the user's data directory (platformdirs)
    store_url: str = ""  # default: sqlite under data_dir
    # SQLite: acknowledge change sets once in the store's journal; a helper process applies them (store.journal)
    store_journal: bool = True
    bus_url: str = "memory://"
    # durable order and fill messages the in-process bus keeps for replay (`subscribe` with `since`,
    # /ws/orders?since=); a NATS bus keeps what its JetStream stream's limits keep
    bus_max_log: int = 50_000  # a bounded window: ~0.6 KB each, ~30 MB at most; older history is read from the store
    cache_url: str = "memory://"
    log_level: str = "info"
    # `logmessages` (services.log_feed): warnings and errors sent a second at most (the rest are
    # counted in coinwire_log_messages_dropped_total), and recent messages kept for GET /api/v1/logs
    log_feed_per_second: int = 20
    log_feed_recent: int = 1_000
    # the gateway's memory is bounded by what is open, not by history (docs/ARCHITECTURE.md, "Memory and restart"):
    # done orders answered from memory to a repeated client_oid (the newest `idempotency_window`, none older than
    # `idempotency_window_seconds`); an older repeat is looked up in the store, found by the client_oid filter
    # (`client_oid_filter_bytes`, fixed: ~1% of new keys cost a store read at a million keys a MiB)
    idempotency_window: int = 10_000
    idempotency_window_seconds: float = 600.0
    client_oid_filter_bytes: int = 4 * 1024 * 1024
    # the store folds the wallet lines written since its last checkpoint into kept totals after this many lines or
    # seconds (what a start reads beyond the totals, and the gateway's work to write them)
    checkpoint_lines: int = 100_000
    checkpoint_seconds: float = 60.0
    # --- roles and shared services (docs/SCALING.md) ---
    # the roles this process runs (coinwire.roles: api, gateway, marketdata, engine, tracker, scheduler, notifier); `all`: every one
    roles: list[str] = msgspec.field(default_factory=lambda: ["all"])
    # what NATS subjects and the JetStream stream (`<namespace>.order...`, stream `<namespace>_durable`) and Redis cache keys
    # (`<namespace>:...`) start with: one per deployment or test run sharing a NATS and a Redis (env alias COINWIRE_BUS_NAMESPACE)
    namespace: str = "coinwire"
    # the JetStream stream's retention of durable order, fill and position messages: seconds and bytes (0: no limit)
    bus_max_age: float = 0.0
    bus_max_bytes: int = 0
    book_depth: int = 100  # levels per side served by get_book by default
    ohlcv_max_points: int = 5_000  # candles per answer of GET /api/v1/ohlcv; longer ranges are paged (`next`)
    # rates (services/rates.py): per answer of GET /api/v1/rates (paged beyond), and how old a ticker may be
    # (seconds before the minute asked) to be that minute's rate
    rates_max_points: int = 20_160
    rates_max_age: float = 120.0
    # portfolio tracker (services/portfolio_tracker.py, docs/PORTFOLIO.md): whether every account, wallet set, run and
    # user total is valued into 15-minute candles, and the least time (seconds) between two valuations of one portfolio
    portfolio_tracking: bool = True
    portfolio_sample_interval: float = 1.0
    # per /rpc connection (docs/SECURITY.md, "Push streams"): patterns in each `subscribe` list
    # (tickers, public_trades), subscribe_ohlcv streams, and pushed bytes left unread before a drop
    ws_max_patterns: int = 100
    ws_max_streams: int = 20
    ws_max_unread_bytes: int = 8 << 20
    # PUT /runnables/path/to/file.py:Class/start runs that file's code with the server's rights;
    # None: allowed only when the server listens on loopback (see README, "Strategies and runs")
    allow_user_strategies: bool | None = None
    # self-registration (POST /api/v1/auth/register): the defaults until an admin sets them at
    # runtime (PUT /api/v1/admin/settings, kept in the store, which wins from then on)
    self_registration: bool = False
    registration_role: str = "viewer"  # viewer | trader: what a self-registered user may do
    # the Bot API server users' Telegram bots talk to (notifications and chat commands); a local Bot API server or a test's
    telegram_api_base: str = "https://api.telegram.org"
    # scheduler (services.scheduler): keep the system schedule `rates` (every minute, the rate of every market with a
    # running feed); claimed ticks older than `schedule_ticks_kept_days` are pruned by the daily housekeeping job
    record_rates: bool = True
    schedule_ticks_kept_days: float = 30.0
    # account imports (services/account_import.py): records a page, how far back the history is asked for (UTC date),
    # and the candles that value the past (a timeframe dividing 15 minutes: 1m, 3m, 5m or 15m)
    import_page_limit: int = 500
    import_history_start: str = "2017-07-01"
    import_timeframe: str = "15m"
    # daily stats (services.daily_stats): seconds between passes that record each portfolio's days once its owner's
    # local midnight has passed (passes fall on multiples of it from the hour: 900 = each :00, :15, :30, :45); at most
    # 1800, so that a day lands within half an hour of its midnight
    daily_stats_pass_seconds: float = 900.0
    # outside signals (POST /api/v1/signals/{provider}, docs/SIGNALS.md): the providers this server takes; `tradingview`
    # reads TradingView's alert JSON, every other name (`generic`, `news`, ...) the generic `{method, params, ts?}`
    signal_providers: list[str] = msgspec.field(default_factory=lambda: ["tradingview", "generic"])
    # circuit breakers (services/breakers.py, docs/BREAKERS.md): a dependency's breaker opens after `breaker_failures`
    # consecutive failures and refuses calls for `breaker_reset_seconds`, then lets one probe through
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    # gateway leases (services.gateway_leases, docs/SCALING.md "Gateway leases"; PostgreSQL stores only): how long a lease
    # lasts without renewal (seconds; renewed every third of it), and the exchanges this gateway owns ("" = every one
    # configured; else a comma list), each under the lease `gateway:<exchange>`
    gateway_lease_seconds: float = 10.0
    gateway_shard: str = ""
    # an api replica apart from the gateway (api/forwarding.py, docs/SCALING.md "Commands across processes"): how long a
    # forwarded call waits for a gateway to answer before it answers `gateway_unavailable` (seconds)
    gateway_wait_seconds: float = 5.0
    exchanges: list[ExchangeConfig] = msgspec.field(default_factory=_default_exchanges)
    market_data: MarketDataConfig = msgspec.field(default_factory=MarketDataConfig)  # tickers, FX, coins (config/market_data.py)
    notifications: NotificationsConfig = msgspec.field(default_factory=NotificationsConfig)  # SMTP relay, retries (config/notifications.py)

    @property
    def bus_namespace(self) -> str:
        """The former name of `namespace` (still read from COINWIRE_BUS_NAMESPACE and a file's `bus_namespace`)."""
        return self.namespace

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir or platformdirs.user_data_dir("coinwire")).expanduser()

    @property
    def user_strategies_allowed(self) -> bool:
        if self.allow_user_strategies is not None:
            return self.allow_user_strategies
        return self.host in ("localhost", "::1") or self.host.startswith("127.")

    @property
    def gateway_exchanges(self) -> list[str]:
        """The exchanges this process's gateway owns (`gateway_shard`; every configured one when empty), in configured order."""
        shard = {name.strip() for name in self.gateway_shard.split(",") if name.strip()}
        return [e.name for e in self.exchanges if not shard or e.name in shard]

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_path / 'coinwire.db'}"

    def to_public(self) -> dict[str, Any]:
        """The settings as `coinwire config show` prints them (resolved defaults included)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["data_dir"] = str(self.data_path)
        data["store_url"] = _redact(self.resolved_store_url)
        data["bus_url"] = _redact(self.bus_url)
        data["cache_url"] = _redact(self.cache_url)
        data["notifications"] = public_notifications(self.notifications)
        return data


_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def _redact(url: str) -> str:
    """Hide a password in a URL (`postgresql://u:secret@h/db` -> `postgresql://u:***@h/db`, `?password=***`)."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


_ENV_FIELDS = {
    "HOST": "host",
    "PORT": "port",
    "DATA_DIR": "data_dir",
    "STORE_URL": "store_url",
    "STORE_JOURNAL": "store_journal",
    "BUS_URL": "bus_url",
    "NAMESPACE": "namespace",
    "BUS_MAX_AGE": "bus_max_age",
    "BUS_MAX_BYTES": "bus_max_bytes",
    "BUS_MAX_LOG": "bus_max_log",
    "CACHE_URL": "cache_url",
    "LOG_LEVEL": "log_level",
    "LOG_FEED_PER_SECOND": "log_feed_per_second",
    "LOG_FEED_RECENT": "log_feed_recent",
    "IDEMPOTENCY_WINDOW": "idempotency_window",
    "IDEMPOTENCY_WINDOW_SECONDS": "idempotency_window_seconds",
    "CLIENT_OID_FILTER_BYTES": "client_oid_filter_bytes",
    "CHECKPOINT_LINES": "checkpoint_lines",
    "CHECKPOINT_SECONDS": "checkpoint_seconds",
    "ROLES": "roles",
    "BREAKER_FAILURES": "breaker_failures",
    "BREAKER_RESET_SECONDS": "breaker_reset_seconds",
    "BOOK_DEPTH": "book_depth",
    "OHLCV_MAX_POINTS": "ohlcv_max_points",
    "RATES_MAX_POINTS": "rates_max_points",
    "RATES_MAX_AGE": "rates_max_age",
    "PORTFOLIO_TRACKING": "portfolio_tracking",
    "PORTFOLIO_SAMPLE_INTERVAL": "portfolio_sample_interval",
    "WS_MAX_PATTERNS": "ws_max_patterns",
    "WS_MAX_STREAMS": "ws_max_streams",
    "WS_MAX_UNREAD_BYTES": "ws_max_unread_bytes",
    "ALLOW_USER_STRATEGIES": "allow_user_strategies",
    "SELF_REGISTRATION": "self_registration",
    "REGISTRATION_ROLE": "registration_role",
    "TELEGRAM_API_BASE": "telegram_api_base",
    "EXCHANGES": "exchanges",
    "RECORD_RATES": "record_rates",
    "IMPORT_PAGE_LIMIT": "import_page_limit",
    "IMPORT_HISTORY_START": "import_history_start",
    "IMPORT_TIMEFRAME": "import_timeframe",
    "SCHEDULE_TICKS_KEPT_DAYS": "schedule_ticks_kept_days",
    "DAILY_STATS_PASS_SECONDS": "daily_stats_pass_seconds",
    "SIGNAL_PROVIDERS": "signal_providers",
    # gateway leases
    "GATEWAY_LEASE_SECONDS": "gateway_lease_seconds",
    "GATEWAY_SHARD": "gateway_shard",
    "GATEWAY_WAIT_SECONDS": "gateway_wait_seconds",
}


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if env.get(ENV_PREFIX + "BUS_NAMESPACE") and not env.get(ENV_PREFIX + "NAMESPACE"):  # the former name, still read
        out["namespace"] = env[ENV_PREFIX + "BUS_NAMESPACE"]
    for suffix, field in _ENV_FIELDS.items():
        raw = env.get(ENV_PREFIX + suffix)
        if raw is None or raw == "":
            continue
        if field in ("roles", "signal_providers"):
            out[field] = [r.strip() for r in raw.split(",") if r.strip()]
        elif field == "exchanges":
            try:
                out[field] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{ENV_PREFIX}EXCHANGES must be a JSON list of exchange objects: {exc}") from None
        else:
            out[field] = raw
    return out


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults < TOML file < environment < explicit overrides (CLI flags), then validate."""
    merged: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            merged.update(tomllib.loads(path.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        if "bus_namespace" in merged:  # the former name of `namespace`
            former = merged.pop("bus_namespace")
            merged.setdefault("namespace", former)
    merged.update(_env_overrides(os.environ if env is None else env))
    notify_env = notifications_env(os.environ if env is None else env)  # nested: merged key by key into the file's table
    if notify_env:
        table = dict(merged.get("notifications") or {})
        table.update({k: v for k, v in notify_env.items() if k != "smtp"})
        if "smtp" in notify_env:
            table["smtp"] = dict(table.get("smtp") or {}) | notify_env["smtp"]
        merged["notifications"] = table
    merged.update({("namespace" if k == "bus_namespace" else k): v for k, v in (overrides or {}).items() if v is not None})
    try:
        settings = msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    _check(settings, os.environ if env is None else env)
    return settings


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_EXCHANGE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")  # goes into URLs and bus subjects as is


def _check(settings: Settings, env: Mapping[str, str]) -> None:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"port must be between 1 and 65535, got {settings.port}")
    if not 1 <= settings.ohlcv_max_points <= 100_000:
        raise ConfigError(f"ohlcv_max_points must be between 1 and 100000, got {settings.ohlcv_max_points}")
    if not 1 <= settings.rates_max_points <= 100_000:
        raise ConfigError(f"rates_max_points must be between 1 and 100000, got {settings.rates_max_points}")
    if not 1 <= settings.import_page_limit <= 1000:
        raise ConfigError(f"import_page_limit must be between 1 and 1000, got {settings.import_page_limit}")
    if settings.import_timeframe not in ("1m", "3m", "5m", "15m"):
        raise ConfigError(f"import_timeframe must be 1m, 3m, 5m or 15m, got {settings.import_timeframe!r}")
    if not re.fullmatch(r"(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]", settings.import_history_start):
        raise ConfigError(f"import_history_start must be a date YYYY-MM-DD, got {settings.import_history_start!r}")
    if not 1 <= settings.rates_max_age <= 3600:
        raise ConfigError(f"rates_max_age must be between 1 and 3600 seconds, got {settings.rates_max_age}")
    if not 0.05 <= settings.portfolio_sample_interval <= 900:
        raise ConfigError(f"portfolio_sample_interval must be between 0.05 and 900 seconds, got {settings.portfolio_sample_interval}")
    if not 1 <= settings.ws_max_patterns <= 10_000 or not 1 <= settings.ws_max_streams <= 10_000:
        raise ConfigError(f"ws_max_patterns and ws_max_streams must be between 1 and 10000, got {settings.ws_max_patterns}, "
                          f"{settings.ws_max_streams}")
    if not 1 <= settings.bus_max_log <= 100_000_000:
        raise ConfigError(f"bus_max_log must be between 1 and 100000000, got {settings.bus_max_log}")
    try:
        validate_namespace(settings.namespace)
    except InvalidInput as exc:
        raise ConfigError(f"namespace: {exc.message}") from None
    if not 0 <= settings.bus_max_age <= 10 * 365 * 86_400 or not 0 <= settings.bus_max_bytes <= 1 << 50:
        raise ConfigError(f"bus_max_age must be between 0 and 10 years in seconds and bus_max_bytes between 0 and 2**50 "
                          f"(0: no limit), got {settings.bus_max_age}, {settings.bus_max_bytes}")
    try:
        parse_roles(settings.roles)
    except RoleError as exc:
        raise ConfigError(f"roles: {exc}") from None
    if not 64 << 10 <= settings.ws_max_unread_bytes <= 1 << 30:
        raise ConfigError(f"ws_max_unread_bytes must be between 65536 and 1073741824, got {settings.ws_max_unread_bytes}")
    problems = check_market_data(settings.market_data, env) + check_notifications(settings.notifications)
    if problems:
        raise ConfigError(problems[0])
    if not 1 <= settings.log_feed_per_second <= 10_000:
        raise ConfigError(f"log_feed_per_second must be between 1 and 10000, got {settings.log_feed_per_second}")
    if not 1 <= settings.log_feed_recent <= 100_000:
        raise ConfigError(f"log_feed_recent must be between 1 and 100000, got {settings.log_feed_recent}")
    if not 0 <= settings.idempotency_window <= 10_000_000 or not 0 <= settings.idempotency_window_seconds <= 86_400 * 30:
        raise ConfigError("idempotency_window must be between 0 and 10000000 orders, idempotency_window_seconds between 0 and 30 days")
    if not 1024 <= settings.client_oid_filter_bytes <= 1 << 30:
        raise ConfigError(f"client_oid_filter_bytes must be between 1024 and {1 << 30}, got {settings.client_oid_filter_bytes}")
    if settings.checkpoint_lines < 1 or settings.checkpoint_seconds <= 0:
        raise ConfigError("checkpoint_lines must be at least 1 and checkpoint_seconds above 0")
    for provider in settings.signal_providers:
        try:
            check_provider(provider)
        except InvalidInput as exc:
            raise ConfigError(f"signal_providers: {exc.message}") from None
    if len(set(settings.signal_providers)) != len(settings.signal_providers):
        raise ConfigError(f"signal_providers names each provider once, got {settings.signal_providers}")
    if not 1 <= settings.breaker_failures <= 1000 or not 0.1 <= settings.breaker_reset_seconds <= 86_400:
        raise ConfigError(f"breaker_failures must be between 1 and 1000 and breaker_reset_seconds between 0.1 and 86400, "
                          f"got {settings.breaker_failures}, {settings.breaker_reset_seconds}")
    if not 1 <= settings.daily_stats_pass_seconds <= 1800:
        raise ConfigError(f"daily_stats_pass_seconds must be between 1 and 1800, got {settings.daily_stats_pass_seconds}")
    if not 1 / 24 <= settings.schedule_ticks_kept_days <= 3650:
        raise ConfigError(f"schedule_ticks_kept_days must be between 1/24 (an hour) and 3650, got {settings.schedule_ticks_kept_days}")
    if settings.registration_role not in REGISTRATION_ROLES:
        raise ConfigError(f"registration_role must be one of {', '.join(REGISTRATION_ROLES)}, got {settings.registration_role!r}")
    if not settings.telegram_api_base.startswith(("http://", "https://")) or settings.telegram_api_base.endswith("/"):
        raise ConfigError(f"telegram_api_base must be an http(s) URL without a trailing slash, like https://api.telegram.org, "
                          f"got {settings.telegram_api_base!r}")
    if settings.log_level.lower() not in _LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, got {settings.log_level!r}")
    names = [e.name for e in settings.exchanges]
    if len(set(names)) != len(names):
        raise ConfigError(f"exchange names must be unique, got {names}")
    # gateway leases
    unknown = sorted({n.strip() for n in settings.gateway_shard.split(",") if n.strip()} - set(names))
    if unknown:
        raise ConfigError(f"gateway_shard names exchanges that are not configured: {', '.join(unknown)} (configured: {', '.join(names)})")
    if not 0.5 <= settings.gateway_lease_seconds <= 3600:
        raise ConfigError(f"gateway_lease_seconds must be between 0.5 and 3600, got {settings.gateway_lease_seconds}")
    if not 0.1 <= settings.gateway_wait_seconds <= 300:
        raise ConfigError(f"gateway_wait_seconds must be between 0.1 and 300, got {settings.gateway_wait_seconds}")
    for ex in settings.exchanges:
        if not _EXCHANGE_NAME.fullmatch(ex.name):
            raise ConfigError(f"exchange name {ex.name!r} must be lowercase letters, digits, '_' or '-' (like a CCXT id)")
        if ex.tick_interval <= 0:
            raise ConfigError(f"exchange {ex.name}: tick_interval must be > 0 seconds, got {ex.tick_interval}")
        if not -MAX_PREMIUM_BP <= ex.demo_premium_bp <= MAX_PREMIUM_BP:
            raise ConfigError(f"exchange {ex.name}: demo_premium_bp must be between -{MAX_PREMIUM_BP} and {MAX_PREMIUM_BP} "
                              f"basis points, got {ex.demo_premium_bp}")
        if ex.demo_epoch is not None and (ex.feed != "demo" or ex.demo_epoch < 0):
            raise ConfigError(f"exchange {ex.name}: demo_epoch is unix seconds >= 0 for a demo feed, got {ex.demo_epoch} "
                              f"on a {ex.feed} feed")
        if ex.replay_speed is not None and ex.replay_speed <= 0:
            raise ConfigError(f"exchange {ex.name}: replay_speed must be > 0 (null: as fast as possible)")
        if ex.mode not in ("paper", "live"):
            raise ConfigError(f"exchange {ex.name}: mode must be 'paper' or 'live', got {ex.mode!r}")
        if ex.replay_market not in ("binance", "binanceusdm"):
            raise ConfigError(f"exchange {ex.name}: replay_market must be 'binance' or 'binanceusdm', got {ex.replay_market!r}")
        if ex.funding_speedup < 1:
            raise ConfigError(f"exchange {ex.name}: funding_speedup must be a whole number >= 1, got {ex.funding_speedup}")
        if ex.feed not in ("demo", "replay", "ccxt"):
            raise ConfigError(f"exchange {ex.name}: feed must be 'demo', 'replay' or 'ccxt', got {ex.feed!r}")
        if ex.feed == "replay" and not ex.replay_paths:
            raise ConfigError(f"exchange {ex.name}: a replay feed needs replay_paths")
        if ex.mode == "live":
            _check_live(ex, env)
        if ex.feed == "ccxt":
            _check_ccxt(ex)


_URL_SCHEMES = ("http://", "https://", "ws://", "wss://")


def _check_live(ex: ExchangeConfig, env: Mapping[str, str]) -> None:
    """A live exchange trades a real account: CCXT market data, credentials present, no paper money."""
    if ex.feed != "ccxt":
        raise ConfigError(f"exchange {ex.name}: a live exchange needs feed = 'ccxt' (its own market data), got {ex.feed!r}")
    if ex.paper_funds:
        raise ConfigError(f"exchange {ex.name}: paper_funds are for paper exchanges; a live one holds what its account holds")
    if ex.live_reconcile_interval <= 0 or not 0 <= ex.live_market_margin < 1:
        raise ConfigError(f"exchange {ex.name}: live_reconcile_interval must be > 0 and live_market_margin in [0, 1)")
    missing = [ex.credential_env(w) for w in ("api_key", "secret") if not env.get(ex.credential_env(w))]
    if missing and not ex.credentials_user:
        raise ConfigError(f"exchange {ex.name}: live trading needs the account's credentials in {' and '.join(missing)}, "
                          "or credentials_user naming whose vault entry holds them")


def _check_ccxt(ex: ExchangeConfig) -> None:
    """A ccxt feed needs symbols, sane intervals and an exchange id CCXT knows (checked here, not on first use)."""
    if not ex.symbols:
        raise ConfigError(f"exchange {ex.name}: a ccxt feed needs symbols (e.g. symbols = [\"BTC/USDT\"])")
    if ex.poll_interval <= 0 or ex.ccxt_timeout <= 0:
        raise ConfigError(f"exchange {ex.name}: poll_interval and ccxt_timeout must be > 0 seconds")
    if not 1 <= ex.ccxt_depth <= 5000:
        raise ConfigError(f"exchange {ex.name}: ccxt_depth must be between 1 and 5000, got {ex.ccxt_depth}")
    for path, url in ex.ccxt_urls.items():
        if not url.startswith(_URL_SCHEMES):
            raise ConfigError(f"exchange {ex.name}: ccxt_urls[{path!r}] must be an http(s):// or ws(s):// URL, got {url!r}")
    import ccxt  # only when a ccxt feed is configured: importing CCXT takes most of a second

    ccxt_id = ex.ccxt_id or ex.name
    if ccxt_id not in ccxt.exchanges:
        raise ConfigError(f"exchange {ex.name}: CCXT has no exchange {ccxt_id!r} (set ccxt_id to a CCXT id like 'binance')")

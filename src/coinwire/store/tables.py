"""The store's schema as SQLAlchemy Core tables: one definition for SQLite and PostgreSQL.

Money is never a float here. Prices and sizes are exact decimal TEXT at the instrument's
precision ("61737.63"), and every order and fill row carries its `price_decimals` and
`size_decimals`, so a row reads the same to a person, to SQL and to the codec. Ledger
amounts (notional, fee, movement, hold) are decimal TEXT in currency units with up to 18
decimals: they routinely exceed 64 bits as ATTO integers. Timestamps are integer
nanoseconds since the epoch. Ids are given by the core's id sequences, never by the
database.

The migrations in `migrations/versions` must create exactly this schema
(tests/store/test_migrations.py compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

__all__ = ["metadata", "accounts", "account_members", "orders", "fills", "wallet_sets", "wallets", "wallet_lines",
           "wallet_totals", "hold_totals", "checkpoints", "candles",
           "fx_rates", "coin_stats", "meta", "IdType",
           "users", "sessions", "api_keys", "owners", "credentials", "audit", "preferences",
           "site_settings", "rates", "TABLES", "CHANGE_SET_TABLES", "schedules", "schedule_ticks", "notify_channels",
           "notify_subscriptions", "notify_outbox",
           "positions", "position_settings", "position_modes", "funding_payments", "PERP_TABLES",
           "portfolio_candles",
           "account_imports", "account_trades", "account_transfers",
           "external_trades", "rule_sets", "rule_firings", "rule_commands", "analysis_values", "signals", "outside_signals",
           "leases", "cluster_members"]

# Stable constraint names on both dialects, so migrations can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit ids; on SQLite an INTEGER PRIMARY KEY is the rowid itself (no second index).
IdType = BigInteger().with_variant(Integer(), "sqlite")

# One user's funds on one exchange (coinwire.core.accounts): created with its first funds, in the
# change set that funds it; owner_id NULL: made before users existed (admins').
accounts = Table(
    "accounts",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("exchange", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("owner_id", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Index(None, "owner_id"),
)

# Who else may view or trade an account (an admin's grant); written by services.accounts, not ChangeSets.
account_members = Table(
    "account_members",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role", String(16), nullable=False),
    Column("granted_by", BigInteger, nullable=True),
    Column("granted_at", BigInteger, nullable=False),
)

wallet_sets = Table(
    "wallet_sets",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("run_id", String(64), nullable=True),
    Column("description", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("deactivated_at", BigInteger, nullable=True),
    Column("type", String(32), nullable=False),
    Index(None, "run_id"),
)

wallets = Table(
    "wallets",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("exchange", String(64), nullable=False),
    Column("currency", String(32), nullable=False),
    Column("wallet_set_id", BigInteger, ForeignKey("wallet_sets.id"), nullable=True),
    Column("account_id", BigInteger, nullable=False),
    Index(None, "wallet_set_id"),
    Index(None, "exchange", "currency"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("client_oid", String(64), nullable=False),  # the idempotency key, unique per owner (below)
    Column("exchange", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("type", String(32), nullable=False),
    Column("price_decimals", Integer, nullable=False),
    Column("size_decimals", Integer, nullable=False),
    Column("size", Text, nullable=False),
    Column("limit_price", Text, nullable=False),  # Order.limit ("limit" is an SQL keyword)
    Column("cancel_after", BigInteger, nullable=False),
    Column("wallet_set_id", BigInteger, ForeignKey("wallet_sets.id"), nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("done_reason", String(16), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("exchange_at", BigInteger, nullable=True),
    Column("done_at", BigInteger, nullable=True),
    Column("last_updated_at", BigInteger, nullable=False),
    Column("filled_size", Text, nullable=False),
    Column("filled_notional", Text, nullable=False),
    Column("fee", Text, nullable=False),
    Column("fee_currency", String(16), nullable=True),  # NULL: the quote currency
    Column("owner_id", BigInteger, nullable=True),  # the user who placed it, in the order's own transaction; NULL: admins'
    Column("account_id", BigInteger, nullable=False),  # the account whose funds it spends
    Column("seq", BigInteger, nullable=False),  # its account's stream sequence of its latest notification
    Column("funds", Text, nullable=False, server_default="0"),  # a market buy by amount: ATTO of the quote, fee included
    # conditional orders (0017_conditional_orders; core.orders.Order says what each is): prices at the price decimals
    Column("stop_price", Text, nullable=False, server_default="0"),
    Column("trigger", String(8), nullable=False, server_default="last"),
    Column("trail_ppm", BigInteger, nullable=False, server_default="0"),
    Column("trail_delta", Text, nullable=False, server_default="0"),
    Column("activation_price", Text, nullable=False, server_default="0"),
    Column("trail_best", Text, nullable=False, server_default="0"),
    Column("time_in_force", String(4), nullable=False, server_default="GTC"),
    Column("expire_at", BigInteger, nullable=False, server_default="0"),
    Column("triggered_at", BigInteger, nullable=True),
    Column("list_id", BigInteger, nullable=False, server_default="0"),
    Column("parent_id", BigInteger, nullable=False, server_default="0"),
    Column("bracket", Text, nullable=True),
    Column("emulated", Boolean, nullable=False, server_default=false()),
    Column("reduce_only", Boolean, nullable=False, server_default=false()),
    Column("position_side", String(8), nullable=False, server_default="both"),  # 0018_perpetuals: both | long | short
    # Only what queries use: every index is written by every order. Open orders (the start-up
    # read) through a partial index holding just them; recent lists walk the primary key.
    Index("ix_orders_open", "status", sqlite_where=text("status != 'done'"), postgresql_where=text("status != 'done'")),
    Index(None, "wallet_set_id"),
    Index(None, "exchange", "symbol"),
    Index(None, "account_id", "seq"),  # each account's latest sequence at start, without reading every order
)
# a client_oid is unique per owner; SQL's NULLs are all distinct, so the orders without an owner
# (placed before users existed, or by the platform's paper runs) have their own partial index
Index("uq_orders_owner_client_oid", orders.c.owner_id, orders.c.client_oid, unique=True)
Index("uq_orders_unowned_client_oid", orders.c.client_oid, unique=True,
      sqlite_where=orders.c.owner_id.is_(None), postgresql_where=orders.c.owner_id.is_(None))

fills = Table(
    "fills",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("order_id", BigInteger, ForeignKey("orders.id"), nullable=False),
    Column("client_oid", String(64), nullable=False),
    Column("exchange", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(32), nullable=False),
    Column("price_decimals", Integer, nullable=False),
    Column("size_decimals", Integer, nullable=False),
    Column("price", Text, nullable=False),
    Column("size", Text, nullable=False),
    Column("notional", Text, nullable=False),
    Column("fee", Text, nullable=False),
    Column("maker", Boolean, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("wallet_set_id", BigInteger, nullable=True),
    Column("ext_id", String(128), nullable=True),
    Column("fee_currency", String(16), nullable=True),  # NULL: the quote currency
    Column("account_id", BigInteger, nullable=False),
    Column("position_side", String(8), nullable=False, server_default="both"),  # 0018_perpetuals
    Column("seq", BigInteger, nullable=False, server_default="0"),  # its notification's account seq (0027; 0: before, or none)
    Index(None, "order_id"),
)

wallet_lines = Table(
    "wallet_lines",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("wallet_id", BigInteger, ForeignKey("wallets.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("movement", Text, nullable=False),
    Column("hold", Text, nullable=False),
    Column("order_id", BigInteger, nullable=True),
    Column("fill_id", BigInteger, nullable=True),
    Index(None, "wallet_id", "ts"),
)

# Perpetual positions (0018_perpetuals; coinwire.core.positions.Position): one row per account, exchange, symbol,
# position side (both: one-way mode; long, short: hedge legs) and wallet set, upserted by its id (the position book's,
# which also names its margin hold) with every change a step makes. Sizes and the mark at the instrument's decimals
# (the row carries them), money in ATTO of the settle currency.
positions = Table(
    "positions",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("exchange", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("wallet_set_id", BigInteger, nullable=True),
    Column("price_decimals", Integer, nullable=False),
    Column("size_decimals", Integer, nullable=False),
    Column("size", Text, nullable=False),  # signed: > 0 long, < 0 short
    Column("entry_cost", Text, nullable=False),
    Column("leverage", Integer, nullable=False),
    Column("margin_mode", String(16), nullable=False),
    Column("isolated_margin", Text, nullable=False),
    Column("realised_pnl", Text, nullable=False),
    Column("funding", Text, nullable=False),
    Column("fees", Text, nullable=False),
    Column("mark", Text, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),  # its account's stream sequence of its latest notification
    Index(None, "account_id", "exchange"),
)

# Leverage and margin mode per account, exchange and symbol (`id` = "account:exchange:symbol"), once set.
position_settings = Table(
    "position_settings",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("exchange", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("leverage", Integer, nullable=False),
    Column("margin_mode", String(16), nullable=False),
)

# Hedge mode per account and exchange (`id` = "account:exchange"), once set; no row: one-way mode.
position_modes = Table(
    "position_modes",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("exchange", String(64), nullable=False),
    Column("hedge_mode", Boolean, nullable=False),
)

# Every funding payment settled on a position (the history `funding_history` answers): one per FUNDING wallet
# line (`id` is the line's id), with what made it: the symbol, side, the rate (1e-8 units) and the mark.
funding_payments = Table(
    "funding_payments",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("exchange", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("wallet_set_id", BigInteger, nullable=True),
    Column("price_decimals", Integer, nullable=False),
    Column("size_decimals", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("size", Text, nullable=False),  # the position's signed size at that time
    Column("rate", BigInteger, nullable=False),
    Column("mark", Text, nullable=False),
    Column("amount", Text, nullable=False),  # ATTO: received +, paid -
    Index(None, "account_id", "ts"),
)

# The sums of the wallet lines up to the `ledger` checkpoint (`checkpoints.last_id`, a line id): a start
# reads these and only the lines after them (coinwire.core.line_totals), never every line. Rewritten by
# Store.checkpoint_ledger from the stored lines themselves, so they never say other than the lines do.
wallet_totals = Table(
    "wallet_totals",
    metadata,
    Column("wallet_id", BigInteger, ForeignKey("wallets.id"), primary_key=True, autoincrement=False),
    Column("balance", Text, nullable=False),
    Column("hold", Text, nullable=False),
    Column("allocated", Text, nullable=False),  # the sum of its ALLOCATE movements
)

# each order's hold at the `ledger` checkpoint, while it holds anything (orders not done)
hold_totals = Table(
    "hold_totals",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("wallet_id", BigInteger, nullable=False),
    Column("amount", Text, nullable=False),
)

# what a start picks up from instead of reading everything: `ledger` (last_id: the last line folded
# into wallet_totals; data: the lower ids no line had when it was folded, msgpack, looked up again:
# core.line_totals.LineTotals.gaps), `client_oids` (last_id: the last order whose key is in `data`, the gateway's
# client_oid filter, coinwire.core.key_filter)
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)

# 1-minute (and coarser) candles of market data, built from public trades or fetched. Prices
# and volume are integers at the instrument's precision (like market-data messages), so they
# are exact and roll up with integer arithmetic; times are unix SECONDS (bucket boundaries),
# `updated_at` nanoseconds. Not in TABLES: candles are written by store.candles, not ChangeSets.
candles = Table(
    "candles",
    metadata,
    Column("exchange", String(64), primary_key=True),
    Column("symbol", String(64), primary_key=True),
    Column("interval_s", Integer, primary_key=True),
    Column("open_time", BigInteger, primary_key=True, autoincrement=False),
    Column("close_time", BigInteger, nullable=False),
    Column("price_decimals", Integer, nullable=False),
    Column("size_decimals", Integer, nullable=False),
    Column("open", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("close", BigInteger, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("trades", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Reference data (coinwire.refdata): fiat rates and top-coin market data, one row per source,
# currency (coin) and the source's own timestamp (ns); `fetched_at` is when we asked. Rates,
# prices and caps are exact decimal TEXT. Not in TABLES: written by refdata.store, not ChangeSets.
fx_rates = Table(
    "fx_rates",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("base", String(16), primary_key=True),
    Column("quote", String(16), primary_key=True),
    Column("ts", BigInteger, primary_key=True, autoincrement=False),
    Column("rate", Text, nullable=False),
    Column("fetched_at", BigInteger, nullable=False),
)

coin_stats = Table(
    "coin_stats",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("coin_id", String(128), primary_key=True),
    Column("ts", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("price", Text, nullable=False),  # USD
    Column("market_cap", Text, nullable=True),  # USD
    Column("ath", Text, nullable=True),  # USD
    Column("ath_ts", BigInteger, nullable=True),
    Column("fetched_at", BigInteger, nullable=False),
    Index(None, "source", "fetched_at"),
)

# Users and access (coinwire.auth): written by auth.repository, not ChangeSets. Secrets are
# never stored in the clear: argon2id password hashes, SHA-256 of refresh tokens and API keys
# (random 256-bit values), exchange credentials AES-GCM encrypted under a named master key.
users = Table(
    "users",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("plan", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("refresh_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("revoked_reason", String(32), nullable=True),
    Column("client", Text, nullable=False),
    Index(None, "user_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("scopes", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "user_id"),
)

# who owns a wallet set, order or run (kind, id): answers 404 to everyone else but admins
owners = Table(
    "owners",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Index(None, "user_id", "kind"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("exchange", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("nonce", String(32), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# one user's display preferences (coinwire.auth.preferences): one row per user, absent until first set
preferences = Table(
    "preferences",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("time_zone", String(64), nullable=False),
    Column("currency", String(16), nullable=False),
    Column("crypto_decimals", Integer, nullable=False),
    Column("stable_decimals", Integer, nullable=False),
    Column("mask", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# settings an admin changes at runtime (coinwire.auth.site_settings): one row per setting an admin
# has set, its value as JSON; a setting without a row has the configuration's default
site_settings = Table(
    "site_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", BigInteger, nullable=True),
)

# every state-changing action: who, what, when, from where, outcome (coinwire.auth.audit)
audit = Table(
    "audit",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=True),
    Column("username", String(64), nullable=True),
    Column("action", String(160), nullable=False),
    Column("target", String(160), nullable=True),
    Column("outcome", String(64), nullable=False),
    Column("client_ip", String(64), nullable=True),
    # no secondary index: queries page newest first by id (the insertion order), and each
    # index would be written by every audited call, order placement included
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- schedules (coinwire.services.scheduler) ---------------------------------------------------------
# A user's scheduled jobs: a cron expression or an interval in a time zone, a job kind and its
# parameters (JSON), a misfire policy; `next_at` (ms) is the first tick not yet handled. owner_id 0
# is the server's own (the `rates` recorder): admins see it, no user owns it.
schedules = Table(
    "schedules",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("cron", String(200), nullable=True),
    Column("every", String(16), nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("job_kind", String(32), nullable=False),
    Column("job_params", Text, nullable=False),
    Column("misfire_policy", String(16), nullable=False),
    Column("misfire_limit", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_at", BigInteger, nullable=False),
    UniqueConstraint("owner_id", "name"),
    Index(None, "next_at"),
)

# One row per tick a scheduler claimed: inserting it IS the claim, so the primary key makes a tick
# run at most once, across restarts and processes. finished_at NULL: claimed, not (yet) finished.
schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    Column("schedule_id", BigInteger, ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("tick_at", BigInteger, primary_key=True, autoincrement=False),
    Column("claimed_at", BigInteger, nullable=False),
    Column("claimed_by", String(64), nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "tick_at"),
)

# Notifications (coinwire.services.notifications): each user's channels, which events go to which
# channel, and the outbox every notification passes through. A channel's secret (a Telegram bot
# token, a webhook's signing secret) is sealed with the credential vault's master keys (AES-GCM,
# the user and channel as associated data), never stored in the clear.
notify_channels = Table(
    "notify_channels",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True),  # email | telegram | webhook
    Column("settings", Text, nullable=False),  # JSON of the channel's public settings (address, chat id, url)
    Column("key_id", String(32), nullable=True),  # the sealed secret's master key, nonce and ciphertext
    Column("nonce", String(32), nullable=True),
    Column("ciphertext", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)
notify_subscriptions = Table(
    "notify_subscriptions",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("event", String(32), primary_key=True),
    Column("channel", String(16), primary_key=True),
)
# One row per (user, channel, event occurrence): `key` is UNIQUE, so an event derived twice (a bus
# replay, a restart's recovery scan) never makes a second row. state: pending | sending | sent | dead.
notify_outbox = Table(
    "notify_outbox",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("user_id", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("event", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the Delivery as JSON (no secret: targets are read at send time)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", BigInteger, nullable=False),  # ns: when a pending row is due
    Column("last_error", Text, nullable=True),  # DeliveryFailed.reason: never a secret
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_notify_outbox_state_next_at", "state", "next_at"),
    Index("ix_notify_outbox_user_id_state", "user_id", "state"),
)

# Parents before children: the order in which one transaction writes them.
TABLES: tuple[Table, ...] = (accounts, wallet_sets, wallets, orders, fills, wallet_lines)
# The perpetuals' records a change set writes after those: positions and settings (upserted by their key), funding
# payments (inserted). Not in TABLES: their ids are keys or line ids, not sequences of their own.
PERP_TABLES: tuple[Table, ...] = (positions, position_settings, position_modes, funding_payments)
# What one change set may write: TABLES, the perpetuals' records, then the owners of what it created (a wallet
# set's owner is committed with the set).
CHANGE_SET_TABLES: tuple[Table, ...] = TABLES + PERP_TABLES + (owners,)

# --- External accounts (0022_external_accounts; coinwire.core.external_trades, services/external_accounts.py) ---
# One row per trade (or deposit, withdrawal) an external account's webhook delivered, written in the change set of
# the wallet lines it applied: its key (account, the sender's trade id) is what makes a second delivery a duplicate,
# never a second application, across restarts too. Amounts are decimal TEXT of ATTO like the ledger's; instants ns.
external_trades = Table(
    "external_trades",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("trade_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # trade | deposit | withdrawal
    Column("side", String(8), nullable=False),
    Column("base", String(16), nullable=False),
    Column("quote", String(16), nullable=False),  # "" for a transfer
    Column("size", Text, nullable=False),
    Column("notional", Text, nullable=False),
    Column("fee", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("shape", String(16), nullable=False),  # kripto | coinwire
)
CHANGE_SET_TABLES += (external_trades,)

# Rates (coinwire.store.rates, services/rates.py): one price per market per minute, the minute's
# start in unix ms; a repeat of the same minute writes nothing. `price` is exact decimal TEXT,
# `source` where it came from ("ticker": the ticker cache, "ccxt": fetched), `received_ms` when.
rates = Table(
    "rates",
    metadata,
    Column("exchange", String(64), primary_key=True),
    Column("symbol", String(64), primary_key=True),
    Column("minute_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("price", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
)

# --- Portfolio candles (coinwire.store.portfolio_candles, services/portfolio_tracker.py) ---
# 15-minute candles of a portfolio's value in its owner's display currency: scope is one of
# core.portfolio.SCOPES ("account", "wallet_set", "run", "user"), scope_id that thing's id as text.
# Values and volume are integers at core.portfolio.VALUE_DECIMALS; times unix SECONDS (the bucket's
# open and close), `updated_at` ns; status "complete", "partial" or "missing". Not in TABLES:
# written by the batched writer, not ChangeSets.
portfolio_candles = Table(
    "portfolio_candles",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("scope_id", String(64), primary_key=True),
    Column("currency", String(16), primary_key=True),
    Column("open_time", BigInteger, primary_key=True, autoincrement=False),
    Column("close_time", BigInteger, nullable=False),
    Column("open", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("close", BigInteger, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# --- Account imports (coinwire.store.account_imports, services/account_import.py) -------------------------------
# One row per import of a live account's history: its state, the step it is at, each step's cursor
# (JSON: where a resumed import picks up), progress and, when it failed, why. The account's past
# trades and transfers are kept by their venue ids, so a second import (or a resumed one) adds nothing
# twice. Amounts are exact decimal TEXT, times unix ms as the venue stamps them.
account_imports = Table(
    "account_imports",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=True),  # who started it (told when it finishes)
    Column("state", String(16), nullable=False),  # running | done | failed
    Column("step", String(16), nullable=False),
    Column("cursor", Text, nullable=False),  # JSON: the steps' cursors and what earlier steps found
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", BigInteger, nullable=False),  # ns
    Column("updated_at", BigInteger, nullable=False),  # ns
    Column("finished_at", BigInteger, nullable=True),  # ns
    Index("ix_account_imports_account_id", "account_id"),
)
account_trades = Table(
    "account_trades",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("symbol", String(64), primary_key=True),
    Column("trade_id", String(64), primary_key=True),  # the venue's id (Binance numbers trades per market)
    Column("order_id", String(64), nullable=True),
    Column("side", String(4), nullable=False),
    Column("price", Text, nullable=False),
    Column("amount", Text, nullable=False),
    Column("cost", Text, nullable=False),
    Column("fee", Text, nullable=False),
    Column("fee_currency", String(32), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
)
account_transfers = Table(
    "account_transfers",
    metadata,
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(10), primary_key=True),  # deposit | withdrawal
    Column("transfer_id", String(128), primary_key=True),
    Column("asset", String(32), nullable=False),
    Column("amount", Text, nullable=False),
    Column("fee", Text, nullable=False),
    Column("status", String(16), nullable=False),  # ccxt's: ok | pending | failed | canceled
    Column("ts_ms", BigInteger, nullable=False),
)

# Daily stats (coinwire.store.portfolio_daily, services/daily_stats.py): one row per portfolio and local
# day of its owner (`day` YYYY-MM-DD), upserted by that key. Values, amounts and ratios are integers at
# core.portfolio.VALUE_DECIMALS in the row's `currency`; NULL: not known (a "missing" day has no figures).
portfolio_daily = Table(
    "portfolio_daily",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("scope_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("currency", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),  # unix s: the local midnight opening the day
    Column("end_time", BigInteger, nullable=False),  # unix s: the local midnight closing it
    Column("status", String(16), nullable=False),  # recorded | missing
    *(Column(name, BigInteger, nullable=True) for name in (
        "closing", "opening", "pnl", "realised", "unrealised", "fees", "funding", "deposits", "withdrawals",
        "win_rate", "exposure", "peak", "drawdown")),
    Column("trades", Integer, nullable=False),
    Column("closing_trades", Integer, nullable=False),
    Column("winning_trades", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),  # ns
)

# --- Rule sets (0023_rule_sets; coinwire.core.rules, store/rules.py, services/rule_sets.py: docs/RULES.md) ---------
# A user's rule set on a scope (account | wallet_set | run | user, `scope_id` its canonical id as text): `spec` is its
# JSON form (core.rules.rule_set_dict), `state` the evaluation state the controller saves (JSON; NULL: not evaluated
# since it was last enabled, so the next sample is its reference). Names are unique per owner. Instants ns.
rule_sets = Table(
    "rule_sets",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, nullable=False),
    Column("name", String(100), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("scope_id", String(128), nullable=False),
    Column("spec", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("state", Text, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("owner_id", "name"),
    Index(None, "scope", "scope_id"),
)
# One row per firing: the rule values that made it fire (JSON of decimal strings) and the mode it fired in.
rule_firings = Table(
    "rule_firings",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("rule_set_id", BigInteger, ForeignKey("rule_sets.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("rule_values", Text, nullable=False),  # what made it fire: {"value", "peak", "trigger", ...}
    Column("mode", String(8), nullable=False),  # live | dry_run
    Index(None, "rule_set_id", "time_ns"),
    Index(None, "owner_id", "time_ns"),
)
# The journal of a firing's actions: one command per action, `id` = "<firing id>:<seq>", written with its firing
# (one transaction) before any runs; `detail` (JSON) is what was done so far (the orders placed per market), so a
# resumed command continues where it stopped. status: pending | running | done | failed | recorded (dry run).
rule_commands = Table(
    "rule_commands",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("firing_id", BigInteger, ForeignKey("rule_firings.id", ondelete="CASCADE"), nullable=False),
    Column("rule_set_id", BigInteger, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("spec", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Index(None, "firing_id", "seq"),
    Index(None, "status"),
)

# --- Analyser (0024_analysis; coinwire.store.analysis, services/analyser.py) ------------------------------------
# One row per value of an analysis key (core.analysis.analysis_key) at an instant (ns): the value a
# closed bar or a changed point gave. owner_id: whose series it is (NULL: a market's, public to readers);
# params the indicator's parameters as JSON. Signals: a strategy's named signal, stored only when it
# differs from the last one of its (run, name) series; value is JSON.
analysis_values = Table(
    "analysis_values",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("time_ns", BigInteger, primary_key=True, autoincrement=False),
    Column("owner_id", BigInteger, nullable=True),
    Column("series", String(160), nullable=False),
    Column("indicator", String(32), nullable=False),
    Column("params", String(64), nullable=False),
    Column("value", Float, nullable=False),
)

signals = Table(
    "signals",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("owner_id", BigInteger, nullable=True),
    Column("run_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("value", Text, nullable=False),
    Index(None, "run_id", "name", "time_ns"),
)

# outside signals the server received (services.outside_signals), per user and provider, for replay (migration 0025)
outside_signals = Table(
    "outside_signals",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("method", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("params", Text, nullable=False),
    Column("received_ns", BigInteger, nullable=False),
    Index(None, "user_id", "provider", "ts"),
)

# gateway leases: one writer per shard, fencing tokens (core.leases, store.leases; migration 0026); times in unix ms, the database's clock
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# the processes of a deployment and when each was last seen (store.leases heartbeat; `coinwire cluster status`)
cluster_members = Table(
    "cluster_members",
    metadata,
    Column("holder", String(200), primary_key=True),
    Column("roles", String(200), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
)

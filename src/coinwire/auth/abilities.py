"""The one table of access rules and `can()`: what a role, plan and key scope allow, on whose resources.

Every HTTP route (method + path template), every JSON-RPC method and every push channel
has exactly one `Rule` (an action on a subject) in the tables below; `coinwire.api.guard`
looks the rule up and asks `can()` before anything runs. Anything without a rule is
denied, so a route added later is closed until someone writes its line here (a test walks
every registered route and method and fails on a missing one).

Pure: no I/O, no clock. The same rules are served to the dashboard (`abilities()`), so the
UI hides exactly what the back end refuses.
"""

from __future__ import annotations

import re

import msgspec

from coinwire.config import REGISTRATION_ROLES

__all__ = [
    "ROLES", "PLANS", "SCOPES", "REGISTRATION_ROLES", "Principal", "Rule", "HTTP_RULES", "RPC_RULES", "PUSH_RULES",
    "can", "denial", "abilities", "http_rule", "PUBLIC", "SERVER_FILES", "GRANT_ACCOUNTS", "SIGNAL_SCOPE_PREFIX", "signal_scope",
    "scope_known",
]

ROLES = ("admin", "trader", "viewer")
PLANS = ("free", "pro")
SCOPES = ("read", "trade", "admin")
# an API key that may post outside signals of one provider and do nothing else (POST /api/v1/signals/{provider}): the
# key a TradingView alert carries in its body, so a leaked one cannot read or trade
SIGNAL_SCOPE_PREFIX = "signals:"

# actions: read (look), trade (orders), manage (create/change own resources), admin (everyone's)
# subjects: market, order, wallet_set, run, account, frontier, self (own sessions, keys, abilities), user, ops
_ROLE_ABILITIES: dict[str, frozenset[tuple[str, str]]] = {
    "viewer": frozenset({("read", "*"), ("manage", "self")}),
    "trader": frozenset({("read", "*"), ("manage", "self"), ("trade", "order"), ("manage", "wallet_set"), ("manage", "run"),
                         ("manage", "account"), ("manage", "schedule"), ("manage", "rule_set")}),
    "admin": frozenset({("*", "*")}),
}
# which API-key scope an action needs (a key never does more than its user could)
_SCOPE_FOR_ACTION = {"read": "read", "trade": "trade", "manage": "trade", "admin": "admin"}
_SCOPE_IMPLIES = {"read": {"read"}, "trade": {"read", "trade"}, "admin": {"read", "trade", "admin"}}
_PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,23}")  # core.outside_signals.check_provider's names
# features of the `pro` plan: (action, subject)
_PRO_ONLY = frozenset({("read", "frontier")})


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: a user through a session token, or a program through an API key (with scopes)."""

    user_id: int
    username: str
    role: str
    plan: str
    session_id: str | None = None
    scopes: tuple[str, ...] | None = None  # None: a session, the role decides; a key: its scopes too
    key_id: str | None = None  # the API key it came through (None: a session)
    expires_at: int | None = None  # unix seconds its access token ends (None: an API key, which does not expire)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and (self.scopes is None or "admin" in self.scopes)


class Rule(msgspec.Struct, frozen=True):
    """An action on a subject; `public` rules need no caller at all (login, health checks)."""

    action: str
    subject: str
    public: bool = False


PUBLIC = Rule("read", "public", public=True)


def _r(action: str, subject: str) -> Rule:
    return Rule(action, subject)


READ_MARKET, READ_ORDERS, TRADE = _r("read", "market"), _r("read", "order"), _r("trade", "order")
READ_WALLETS, MANAGE_WALLETS = _r("read", "wallet_set"), _r("manage", "wallet_set")
READ_RUNS, MANAGE_RUNS = _r("read", "run"), _r("manage", "run")
READ_OPS, ADMIN_OPS = _r("read", "ops"), _r("admin", "ops")
SELF, READ_SELF, ADMIN_USERS = _r("manage", "self"), _r("read", "self"), _r("admin", "user")
# The server's own files, named by a request: starting a runnable from `file.py:Class` (imports and
# runs that file on the server) and `data` paths outside the history directory (a run's, the
# frontier's). Checked by those routes on top of their own rule, from the request's content.
SERVER_FILES = _r("admin", "server_files")
# Accounts: reading them (which ones, the route or method decides: api.methods.Api.account); managing
# one's own (opening paper accounts, adding or withdrawing virtual funds on one's own paper accounts:
# the method checks ownership, admins any); granting others `view` or `trade` on one (GRANT_ACCOUNTS:
# checked by the grant routes once the account is found readable, so a non-admin who may not read
# it is answered 404 first, like any other account id, and one who may is refused 403).
READ_ACCOUNTS, MANAGE_ACCOUNTS = _r("read", "account"), _r("manage", "account")
GRANT_ACCOUNTS = _r("admin", "account")
# Schedules (services.scheduler): viewers list their own, traders add, remove, pause and resume their own; admins everyone's
READ_SCHEDULES, MANAGE_SCHEDULES = _r("read", "schedule"), _r("manage", "schedule")
# Rule sets (services.rule_sets): viewers list their own (none: they make none), traders create, change, enable and delete
# their own on scopes they may trade (the service checks the scope); admins everyone's
READ_RULE_SETS, MANAGE_RULE_SETS = _r("read", "rule_set"), _r("manage", "rule_set")

# (HTTP method, path template as the router registers it) -> rule
HTTP_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("GET", "/api/v1/auth/registration"): PUBLIC,  # open or not: the sign-in page offers sign-up only then
    ("POST", "/api/v1/auth/register"): PUBLIC,  # refused `registration_closed` unless an admin opened it
    ("GET", "/"): PUBLIC,  # the dashboard's pages and bundle hold no data: the API behind them is guarded
    ("GET", "/app/{path:path}"): PUBLIC,
    ("GET", "/assets/{path:path}"): PUBLIC,
    ("GET", "/metrics"): ADMIN_OPS,  # or the scrape token (COINWIRE_METRICS_TOKEN), checked by the guard
    ("GET", "/uri_map"): READ_OPS,
    # auth and users
    ("POST", "/api/v1/auth/logout"): SELF,
    ("POST", "/api/v1/auth/logout_all"): SELF,
    ("GET", "/api/v1/auth/sessions"): READ_SELF,
    ("GET", "/api/v1/me"): READ_SELF,
    ("GET", "/api/v1/logs"): READ_SELF,  # recent logmessages: admins all, others their own (services.log_feed.visible)
    ("GET", "/api/v1/me/abilities"): READ_SELF,
    ("GET", "/api/v1/me/preferences"): READ_SELF,
    ("PUT", "/api/v1/me/preferences"): SELF,
    # the caller's own notification channels, subscriptions and dead letters (viewers too: they are theirs)
    ("GET", "/api/v1/me/notifications"): READ_SELF,
    ("PUT", "/api/v1/me/notifications"): SELF,
    ("POST", "/api/v1/me/notifications/test"): SELF,
    ("GET", "/api/v1/me/notifications/dead_letters"): READ_SELF,
    ("POST", "/api/v1/me/notifications/dead_letters/{letter_id}/retry"): SELF,
    ("GET", "/api/v1/api_keys"): READ_SELF,
    ("POST", "/api/v1/api_keys"): SELF,
    ("DELETE", "/api/v1/api_keys/{key_id}"): SELF,
    ("GET", "/api/v1/users"): ADMIN_USERS,
    ("POST", "/api/v1/users"): ADMIN_USERS,
    ("GET", "/api/v1/audit"): _r("admin", "audit"),
    ("GET", "/api/v1/admin/settings"): _r("admin", "settings"),
    ("PUT", "/api/v1/admin/settings"): _r("admin", "settings"),
    # accounts
    ("GET", "/api/v1/accounts"): READ_ACCOUNTS,
    ("POST", "/api/v1/accounts"): MANAGE_ACCOUNTS,
    ("GET", "/api/v1/accounts/{account_id:int}"): READ_ACCOUNTS,
    ("GET", "/api/v1/accounts/{account_id:int}/balances"): READ_ACCOUNTS,
    ("GET", "/api/v1/accounts/{account_id:int}/members"): READ_ACCOUNTS,  # its owner and admins (the route checks)
    ("PUT", "/api/v1/accounts/{account_id:int}/members/{user_id:int}"): READ_ACCOUNTS,  # then GRANT_ACCOUNTS (the route)
    ("DELETE", "/api/v1/accounts/{account_id:int}/members/{user_id:int}"): READ_ACCOUNTS,  # then GRANT_ACCOUNTS (the route)
    # a live account's history import (api.import_routes): reading it needs view on the account, starting it trade
    ("GET", "/api/v1/accounts/{account_id:int}/import"): READ_ACCOUNTS,
    ("POST", "/api/v1/accounts/{account_id:int}/import"): MANAGE_ACCOUNTS,
    # external accounts' webhooks: the delivery is signed (the signature is its credential: services.external_accounts)
    ("POST", "/api/v1/webhooks/{account_id:int}"): PUBLIC,
    ("POST", "/api/v1/accounts/{account_id:int}/webhook-secret"): TRADE,  # trade right on the account (the route checks)
    ("GET", "/api/v1/accounts/{account_id:int}/webhook-trades"): READ_ACCOUNTS,
    # xWrap
    ("GET", "/xwrap/v1/status"): READ_MARKET,
    ("GET", "/xwrap/v1/exchanges"): READ_MARKET,
    ("GET", "/xwrap/v1/orders/open"): READ_ORDERS,
    ("GET", "/xwrap/v1/orders/recent"): READ_ORDERS,
    ("POST", "/xwrap/v1/orders/new"): TRADE,
    ("POST", "/xwrap/v1/orders/oco"): TRADE,
    ("POST", "/xwrap/v1/orders/cancel"): TRADE,
    ("GET", "/xwrap/v1/wallets/sets"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/allocated"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/unallocated"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/unallocated_exchange"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/total"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/history/{set_id:int}"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/{set_id:int}"): READ_WALLETS,
    ("GET", "/xwrap/v1/wallets/{exchange}/{currency}"): READ_WALLETS,
    ("POST", "/xwrap/v1/wallets/new"): MANAGE_WALLETS,
    ("POST", "/xwrap/v1/wallets/deactivate"): MANAGE_WALLETS,
    ("POST", "/xwrap/v1/wallets/virtual/transaction"): MANAGE_ACCOUNTS,  # paper funds: the owner's own paper accounts, admins any
    ("GET", "/xwrap/v1/ohlcv/{exchange}/{pair}"): READ_MARKET,
    ("GET", "/xwrap/v1/{exchange}/pricing"): READ_MARKET,
    ("GET", "/xwrap/v1/{exchange}/book/{pair}"): READ_MARKET,
    # runs
    ("GET", "/runnables"): READ_RUNS,
    ("PUT", "/runnables/{name:path}/start"): MANAGE_RUNS,
    ("GET", "/runs"): READ_RUNS,
    ("GET", "/runs/{run_id}"): READ_RUNS,
    ("GET", "/runs/{run_id}/components"): READ_RUNS,
    ("GET", "/runs/{run_id}/messages"): READ_RUNS,
    ("GET", "/runs/{run_id}/log"): READ_RUNS,
    ("PUT", "/runs/{run_id}/stop"): MANAGE_RUNS,
    ("PUT", "/runs/{run_id}/components/{component_id}"): MANAGE_RUNS,
    # the seed's strategy API (api.cryptick_routes): the same runs, the same owner checks, the seed's shapes
    ("GET", "/cryptick/v1/runnables"): READ_RUNS,
    ("PUT", "/cryptick/v1/runnables/{name:path}/start"): MANAGE_RUNS,
    ("GET", "/cryptick/v1/runs"): READ_RUNS,
    ("GET", "/cryptick/v1/runs/{run_id}"): READ_RUNS,
    ("GET", "/cryptick/v1/runs/{run_id}/components"): READ_RUNS,
    ("GET", "/cryptick/v1/runs/{run_id}/messages"): READ_RUNS,
    ("PUT", "/cryptick/v1/run/{run_id}/stop"): MANAGE_RUNS,
    ("PUT", "/cryptick/v1/runs/{run_id}/components/{component_id}"): MANAGE_RUNS,
    # market data and portfolio
    ("POST", "/api/v1/frontier"): _r("read", "frontier"),
    ("GET", "/api/v1/ohlcv/{exchange}/{symbol}"): READ_MARKET,
    ("GET", "/api/v1/tickers"): READ_MARKET,
    ("GET", "/api/v1/trades/{exchange}/{symbol}"): READ_MARKET,
    ("GET", "/api/v1/convert"): READ_MARKET,
    ("GET", "/api/v1/refdata"): READ_MARKET,
    ("GET", "/api/v1/rates/{exchange}/{symbol}"): READ_MARKET,  # stored rates: market data, not a user's
    # daily stats (api.portfolio_daily_routes): readers of the portfolio only (portfolio_scope checks the scope and id)
    ("GET", "/api/v1/portfolio/{scope}/{id}/daily"): READ_ORDERS,
    # perpetual positions (api.position_routes): reads of readable accounts, changes of tradable ones (the methods check)
    ("GET", "/api/v1/positions"): READ_ORDERS,
    ("PUT", "/api/v1/positions/{exchange}/{pair}/leverage"): TRADE,
    ("PUT", "/api/v1/positions/{exchange}/{pair}/margin-mode"): TRADE,
    ("PUT", "/api/v1/positions/{exchange}/mode"): TRADE,
    ("POST", "/api/v1/positions/{exchange}/{pair}/margin"): TRADE,
    ("POST", "/api/v1/positions/{exchange}/{pair}/close"): TRADE,
    ("GET", "/api/v1/funding"): READ_ORDERS,
    # portfolio candles (api.portfolio_routes): the scope and id are checked by api.portfolio_access
    ("GET", "/api/v1/portfolio/{scope}/{id}/ohlcv"): READ_ORDERS,
    ("GET", "/api/v1/portfolio/user/{id}/balance"): READ_ORDERS,  # market-cap balance; the id checked by portfolio_access
    # analyser outputs (api.analysis_routes): a market's series any reader; a portfolio, balance or position the caller may
    # read (analysis_series checks it); signals: the caller's own runs'
    ("GET", "/api/v1/analysis"): READ_MARKET,
    ("GET", "/api/v1/signals"): READ_RUNS,
    # outside signals (api.outside_signal_routes): the post's credential is a `signals:<provider>` key or the body's
    # HMAC (services.outside_signals checks it: public here like the webhooks); the secret and the received signals
    # are the caller's own
    ("POST", "/api/v1/signals/{provider}"): PUBLIC,
    ("POST", "/api/v1/signals/{provider}/secret"): MANAGE_RUNS,
    ("GET", "/api/v1/signals/{provider}/received"): READ_RUNS,
    # schedules
    ("GET", "/api/v1/schedules"): READ_SCHEDULES,
    ("POST", "/api/v1/schedules"): MANAGE_SCHEDULES,
    ("GET", "/api/v1/schedules/{schedule_id:int}"): READ_SCHEDULES,
    ("DELETE", "/api/v1/schedules/{schedule_id:int}"): MANAGE_SCHEDULES,
    ("POST", "/api/v1/schedules/{schedule_id:int}/pause"): MANAGE_SCHEDULES,
    ("POST", "/api/v1/schedules/{schedule_id:int}/resume"): MANAGE_SCHEDULES,
    # rule sets (api.rulesets_routes, services.rule_sets)
    ("GET", "/api/v1/rulesets"): READ_RULE_SETS,
    ("POST", "/api/v1/rulesets"): MANAGE_RULE_SETS,
    ("GET", "/api/v1/rulesets/{rule_set_id:int}"): READ_RULE_SETS,
    ("PUT", "/api/v1/rulesets/{rule_set_id:int}"): MANAGE_RULE_SETS,
    ("DELETE", "/api/v1/rulesets/{rule_set_id:int}"): MANAGE_RULE_SETS,
    ("POST", "/api/v1/rulesets/{rule_set_id:int}/enable"): MANAGE_RULE_SETS,
    ("POST", "/api/v1/rulesets/{rule_set_id:int}/disable"): MANAGE_RULE_SETS,
    ("GET", "/api/v1/rulesets/{rule_set_id:int}/firings"): READ_RULE_SETS,
}

RPC_RULES: dict[str, Rule] = {
    "echo": READ_SELF,
    "authenticate": READ_SELF,  # a fresh access token of the connection's own user
    "echo_notify": READ_SELF,  # to the caller's own connections only
    "broadcast_notify": _r("admin", "notify"),  # to every user's connections
    "subscribe": READ_SELF,  # each channel is checked against PUSH_RULES
    "unsubscribe": READ_SELF,
    "get_status": READ_MARKET,
    "get_notifications": READ_SELF,  # the caller's own (viewers too)
    "set_notifications": SELF,
    "get_exchanges": READ_MARKET,
    "get_pricing": READ_MARKET,
    "get_book": READ_MARKET,
    "get_ohlcv": READ_MARKET,
    "convert_to_usd": READ_MARKET,
    "subscribe_ohlcv": READ_MARKET,
    "unsubscribe_ohlcv": READ_MARKET,
    "get_rates": READ_MARKET,
    "make_order": TRADE,
    "make_oco": TRADE,
    "cancel_order": TRADE,
    "list_open_orders": READ_ORDERS,
    "list_recent_orders": READ_ORDERS,
    "create_wallet_set": MANAGE_WALLETS,
    "deactivate_wallet_set": MANAGE_WALLETS,
    "allocate_to_wallet_set": MANAGE_WALLETS,
    "get_wallet": READ_WALLETS,
    "get_wallet_set": READ_WALLETS,
    "get_all_wallet_sets": READ_WALLETS,
    "get_allocated_wallet_set": READ_WALLETS,
    "get_unallocated_wallet_set": READ_WALLETS,
    "get_total_wallet_set": READ_WALLETS,
    "get_unallocated_per_exchange": READ_WALLETS,
    "get_wallet_set_history": READ_WALLETS,
    "add_virtual_wallet_tx": MANAGE_ACCOUNTS,  # paper funds: the owner's own paper accounts, admins any (the method checks)
    "list_schedules": READ_SCHEDULES,
    "get_schedule": READ_SCHEDULES,
    "add_schedule": MANAGE_SCHEDULES,
    "remove_schedule": MANAGE_SCHEDULES,
    "pause_schedule": MANAGE_SCHEDULES,
    "resume_schedule": MANAGE_SCHEDULES,
    "list_rule_sets": READ_RULE_SETS,
    "get_rule_set": READ_RULE_SETS,
    "create_rule_set": MANAGE_RULE_SETS,
    "update_rule_set": MANAGE_RULE_SETS,
    "delete_rule_set": MANAGE_RULE_SETS,
    "enable_rule_set": MANAGE_RULE_SETS,
    "disable_rule_set": MANAGE_RULE_SETS,
    "get_rule_firings": READ_RULE_SETS,
    "get_positions": READ_ORDERS,
    "get_funding": READ_ORDERS,
    "set_leverage": TRADE,
    "set_margin_mode": TRADE,
    "set_position_mode": TRADE,
    "adjust_margin": TRADE,
    "close_position": TRADE,
    # portfolio candles live (api.portfolio_routes): the scope and id are checked by api.portfolio_access
    "subscribe_portfolio_ohlcv": READ_ORDERS,
    "unsubscribe_portfolio_ohlcv": READ_ORDERS,
    # analyser outputs (api.analysis_routes): the series is checked by analysis_series
    "get_analysis": READ_MARKET,
    "subscribe_analysis": READ_MARKET,
    "unsubscribe_analysis": READ_MARKET,
    "get_signals": READ_RUNS,
}

# push channels (JSON-RPC `subscribe`); a connection receives its user's accounts' order and trade
# notifications without subscribing (api.notifier)
PUSH_RULES: dict[str, Rule] = {
    "exchstatus": READ_MARKET,
    "ticker": READ_MARKET,
    "public_trades": READ_MARKET,  # the market's public trades (the `trade` channel is the users' fills)
    "rate": READ_MARKET,  # each rate the retriever stores (services/rates.py)
    "echo_ret": READ_SELF,
    "logmessages": READ_SELF,  # admins every message; others only their own orders' (api.notifier, services.log_feed)
    "order": READ_ORDERS,  # the accounts the caller may read (api.notifier); admins without an account: every account's
    "trade": READ_ORDERS,
    # perpetuals (docs/DERIVATIVES.md): the same accounts as order and trade
    "orders_executed": READ_ORDERS,  # an order the venue accepted (its acknowledgement's notification)
    "orders_updated": READ_ORDERS,  # every status change of an order (the `order` notification under the seed's name)
    "positions_updated": READ_ORDERS,  # every change of a position (api.position_views)
    "import_progress": READ_ACCOUNTS,  # an account import's progress, to those who may view the account (api.import_routes)
    "rule_fired": READ_RULE_SETS,  # a rule set's firing: to its owner and those who may read its scope (api.rulesets_routes)
    "wallet_set": READ_WALLETS,  # a wallet set as get_wallet_set answers it, to its owner and readers (api.wallet_set_push)
}


def signal_scope(provider: str) -> str:
    """The API-key scope that posts `provider`'s signals: `signals:tradingview`."""
    return SIGNAL_SCOPE_PREFIX + provider


def scope_known(scope: object) -> bool:
    """One of SCOPES, or `signals:<provider>` with a provider name as core.outside_signals spells them."""
    if not isinstance(scope, str):
        return False
    if scope.startswith(SIGNAL_SCOPE_PREFIX):
        return _PROVIDER.fullmatch(scope[len(SIGNAL_SCOPE_PREFIX):]) is not None
    return scope in SCOPES


def http_rule(method: str, path: str) -> Rule | None:
    """The rule of a route; HEAD is answered like GET."""
    rule = HTTP_RULES.get((method, path))
    if rule is None and method == "HEAD":
        rule = HTTP_RULES.get(("GET", path))
    return rule


def denial(principal: Principal | None, action: str, subject: str) -> str | None:
    """Why `principal` may not do `action` on `subject` (a stable code), or None when it may."""
    if principal is None:
        return "unauthenticated"
    granted = _ROLE_ABILITIES.get(principal.role, frozenset())
    if not any(a in (action, "*") and s in (subject, "*") for a, s in granted):
        return "forbidden"
    if principal.scopes is not None:
        allowed = set().union(*(_SCOPE_IMPLIES.get(s, set()) for s in principal.scopes))
        if _SCOPE_FOR_ACTION.get(action, "admin") not in allowed:
            return "scope_missing"
    if (action, subject) in _PRO_ONLY and principal.plan != "pro" and principal.role != "admin":
        return "plan_required"
    return None


def can(principal: Principal | None, action: str, subject: str, owner_id: int | None = None) -> bool:
    """May `principal` do `action` on `subject`, a resource owned by `owner_id` (None: not owned)?

    Ownership: a user acts on their own resources; an admin on everyone's.
    """
    if denial(principal, action, subject) is not None:
        return False
    assert principal is not None  # denial() refused anonymous callers
    return owner_id is None or owner_id == principal.user_id or principal.is_admin


def abilities(principal: Principal) -> dict[str, object]:
    """The rules as the dashboard needs them: each (action, subject) allowed, and on whose resources."""
    every = (*HTTP_RULES.values(), *RPC_RULES.values(), *PUSH_RULES.values(), SERVER_FILES, GRANT_ACCOUNTS)
    subjects = sorted({r.subject for r in every} - {"public"})
    actions = ("read", "trade", "manage", "admin")
    rules = [
        {"action": a, "subject": s, "own_only": not principal.is_admin}
        for s in subjects for a in actions if denial(principal, a, s) is None
    ]
    return {
        "user": {"id": principal.user_id, "username": principal.username, "role": principal.role, "plan": principal.plan},
        "scopes": list(principal.scopes) if principal.scopes is not None else None,
        "rules": rules,
        "channels": sorted(c for c, r in PUSH_RULES.items() if denial(principal, r.action, r.subject) is None),
    }

"""Users' rule sets: checked (core.rules), scoped to what their owner may trade, stored, and their changes announced.

The one place a rule set's scope is checked (`trade_scope`): the caller must be able to TRADE what
the rule set would act on, because its actions (close_all, cancel_orders, ...) trade it. An
account: the `trade` right in the account book (owners, `trade` members, admins); a wallet set or
a run: the caller owns it (the API's owners table); the user scope: the caller's own portfolio. A
scope the caller may not trade answers the same not-found code as one that does not exist, and an
indicator's series naming an account or portfolio the caller may not read is refused alike, so
another user's ids cannot be probed. Nothing is stored on any refusal.

Reads (list, get, firings) show a rule set to its owner and to admins. Creating and changing is
for those whose role may `manage` a `rule_set` (traders, admins: the rules table, enforced by the
API's guard before a call reaches this service). Enabling a `live` rule set
with a `close_all` action needs `confirm` (the dashboard asks first): `confirmation_required`.

The controller follows changes through `listen(callback)`: it is told `created`, `updated`,
`deleted`, `enabled` and `disabled` with the stored row, after the change is committed.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import msgspec
import structlog

from coinwire.auth.abilities import Principal
from coinwire.core.accounts import EXTERNAL
from coinwire.core.analysis import parse_series
from coinwire.core.errors import Conflict, InvalidInput, NotFound
from coinwire.core.rules import (
    IndicatorRule,
    RuleSet,
    RuleSetState,
    needs_confirmation,
    new_state,
    parse_rule_set,
    rule_outputs,
    rule_set_dict,
    status,
)
from coinwire.services.gateway import Gateway
from coinwire.store import Store
from coinwire.store.rules import FiringRow, RuleSetRow, RuleStore

__all__ = ["MAX_RULE_SETS_PER_USER", "OPERATOR", "RuleSetListener", "RuleSets", "ScopeOwners", "firing_view",
           "rule_set_of", "rule_set_view"]

log = structlog.get_logger("coinwire.rule_sets")

MAX_RULE_SETS_PER_USER = 100
MAX_FIRINGS_PAGE = 1000
# the caller of a server without users (its operator): everything is theirs, as an admin's
OPERATOR = Principal(user_id=0, username="operator", role="admin", plan="pro")
# the stored spec leaves out what the row's own columns hold (one truth each)
_COLUMNS = ("name", "scope", "scope_id", "enabled")

RuleSetListener = Callable[[str, RuleSetRow], Awaitable[None] | None]


class ScopeOwners(Protocol):
    """Who owns wallet sets and runs (the API's owners table, api.ownership.Owners)."""

    def owner_of(self, kind: str, resource_id: object) -> int | None: ...

    def visible(self, kind: str, resource_id: object, principal: Principal) -> bool: ...


def rule_set_of(row: RuleSetRow) -> RuleSet:
    """The rule set a stored row holds (its name, scope and enabled flag from the row's columns)."""
    return parse_rule_set({**row.spec, "name": row.name, "scope": row.scope, "scope_id": row.scope_id, "enabled": row.enabled})


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 3)


def _redacted(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**a, "secret": "set"} if a.get("kind") == "webhook" and a.get("secret") else a for a in actions]


def rule_set_view(row: RuleSetRow, reader: Principal | None = None) -> dict[str, Any]:
    """A rule set as the API shows it, with its live `status` (core.rules.status); a webhook's secret only to its owner."""
    rs = rule_set_of(row)
    state = RuleSetState.from_dict(row.state) if row.state is not None else new_state(rs)
    spec = rule_set_dict(rs)
    actions = spec["actions"] if reader is None or reader.user_id == row.owner_id else _redacted(spec["actions"])
    return {"id": row.id, "owner_id": row.owner_id, "name": row.name, "scope": row.scope, "scope_id": row.scope_id,
            "mode": spec["mode"], "after": spec["after"], "cooldown": spec["cooldown"], "enabled": row.enabled,
            "rules": spec["rules"], "actions": actions, "status": status(rs, state),
            "created": _seconds(row.created_ns), "updated": _seconds(row.updated_ns)}


def firing_view(firing: FiringRow) -> dict[str, Any]:
    """A firing as the API and the `rule_fired` channel show it: its time in seconds (and ns), values, actions' progress."""
    return {"id": firing.id, "rule_set_id": firing.rule_set_id, "time": _seconds(firing.time_ns), "time_ns": firing.time_ns,
            "values": firing.values, "mode": firing.mode,
            "actions": [{"index": c.seq, "kind": c.kind, "status": c.status, "detail": c.detail} for c in firing.commands]}


def _not_found(rule_set_id: object) -> NotFound:
    return NotFound("rule_set_not_found", f"no rule set {str(rule_set_id)[:40]}")


def _int_id(text: str, code: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise NotFound(code, f"no {what} {text[:40]}")
    return int(text)


class RuleSets:
    """Create, change, list and delete rule sets for a caller, each scope checked in `trade_scope`; changes announced."""

    def __init__(self, store: Store, gateway: Gateway, owners: ScopeOwners | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        """`owners`: who owns wallet sets and runs (None: a server without users, where nothing is anyone's). `clock`: ns."""
        self.repo = RuleStore(store)
        self.gateway = gateway
        self.owners = owners
        self.clock = clock
        self._listeners: list[RuleSetListener] = []

    def listen(self, callback: RuleSetListener) -> Callable[[], None]:
        """Call `callback(event, row)` after each committed change (event: created | updated | deleted | enabled | disabled)."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def _announce(self, event: str, row: RuleSetRow) -> None:
        for callback in list(self._listeners):
            try:
                result = callback(event, row)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the change is committed: a listener's failure is its own, logged
                log.exception("rule set listener failed", rule_set=row.id, event_kind=event)

    # --- the one scope check ------------------------------------------------------------------
    def trade_scope(self, user: Principal, scope: str, scope_id: str | None, owner_id: int | None = None) -> str:
        """The canonical id of the scope when `user` may trade it; the scope's not-found code otherwise.

        `owner_id`: the rule set's owner (default: `user`): a `user` scope is always its owner's own portfolio,
        also when an admin changes another user's rule set.
        """
        if scope == "user":
            owner = user.user_id if owner_id is None else owner_id
            if scope_id is not None and _int_id(scope_id, "user_not_found", "user") != owner:  # one's own only, admins too
                raise NotFound("user_not_found", f"no user {scope_id[:40]}")
            return str(owner)
        if scope_id is None:
            raise InvalidInput("invalid_rule_set", f"scope_id: a rule set on a {scope} names it", field="scope_id")
        if scope == "account":
            account = self.gateway.accounts.require(_int_id(scope_id, "account_not_found", "account"), user.user_id,
                                                    user.is_admin, "trade")
            if account.kind == EXTERNAL:
                raise InvalidInput("account_not_tradable", f"account {account.id} is external: coinwire places no order on it",
                                   field="scope_id")
            return str(account.id)
        if scope == "wallet_set":
            set_id = _int_id(scope_id, "unknown_wallet_set", "wallet set")
            try:
                self.gateway.ledger.wallet_set(set_id)
            except NotFound:
                raise NotFound("unknown_wallet_set", f"no wallet set {set_id}") from None
            if self.owners is not None and not self.owners.visible("wallet_set", set_id, user):
                raise NotFound("unknown_wallet_set", f"no wallet set {set_id}")
            return str(set_id)
        if scope == "run":
            if self.owners is not None and (self.owners.owner_of("run", scope_id) is None
                                            or not self.owners.visible("run", scope_id, user)):
                raise NotFound("unknown_run", f"no run {scope_id[:128]}")
            return scope_id
        raise InvalidInput("invalid_rule_set", f"scope: one of account, wallet_set, run, user, got {scope!r}", field="scope")

    def _readable_series(self, user: Principal, rs: RuleSet) -> None:
        """Each series an indicator rule reads (its own, its `other`'s) must exist and be one the caller may read (else
        that scope's not-found code), so a rule cannot watch another user's balance, nor a market that is not there."""
        for i, rule in enumerate(rs.rules):
            if not isinstance(rule, IndicatorRule):
                continue
            for ref in (parse_series(series) for _, series, _, _ in rule_outputs(rule, rs.scope, str(rs.scope_id))):
                if ref.kind == "market":
                    if not self.gateway.has_market(ref.exchange, ref.symbol):
                        raise InvalidInput("unknown_series", f"rules[{i}]: no market {ref.symbol} on {ref.exchange}",
                                           field=f"rules[{i}].series")
                    continue
                scope, scope_id = (ref.scope, ref.scope_id) if ref.kind == "portfolio" else ("account", str(ref.account_id))
                try:
                    self._readable_scope(user, scope, scope_id)
                except NotFound as exc:
                    raise NotFound(exc.code, f"rules[{i}]: {exc.message}", field=f"rules[{i}].series") from None

    def _readable_scope(self, user: Principal, scope: str, scope_id: str) -> None:
        if scope == "account":
            self.gateway.accounts.require(_int_id(scope_id, "account_not_found", "account"), user.user_id, user.is_admin, "view")
        elif scope == "user":
            if not user.is_admin and _int_id(scope_id, "user_not_found", "user") != user.user_id:
                raise NotFound("user_not_found", f"no user {scope_id[:40]}")
        else:
            self.trade_scope(user, scope, scope_id)  # a wallet set or run: readable is owned, the same check

    # --- management ---------------------------------------------------------------------------
    def _checked(self, body: Mapping[str, Any], user: Principal, confirm: bool, owner_id: int) -> tuple[RuleSet, dict[str, Any]]:
        """The whole rule set checked for `user` (shape, ranges, scope, series, confirmation): (rule set, spec to store)."""
        if not isinstance(body, Mapping):
            raise InvalidInput("invalid_rule_set", "a rule set is a JSON object (name, scope, rules, actions, ...)")
        rs = parse_rule_set(body)
        rs = msgspec.structs.replace(rs, scope_id=self.trade_scope(user, rs.scope, rs.scope_id, owner_id))
        self._readable_series(user, rs)
        if needs_confirmation(rs) and not confirm:
            raise InvalidInput("confirmation_required", "a live rule set with close_all sells everything in its scope when it "
                               "fires: send \"confirm\": true to enable it", field="confirm")
        spec = {k: v for k, v in rule_set_dict(rs).items() if k not in _COLUMNS}
        return rs, spec

    async def owned(self, rule_set_id: object, user: Principal) -> RuleSetRow:
        """The rule set, when `user` may see it (its owner; admins: every one); `rule_set_not_found` otherwise, the one place."""
        row = None
        if isinstance(rule_set_id, int) and not isinstance(rule_set_id, bool) and 0 < rule_set_id < 2**63:
            row = await self.repo.get(rule_set_id)
        if row is None or not (row.owner_id == user.user_id or user.is_admin):
            raise _not_found(rule_set_id)
        return row

    async def listed(self, user: Principal) -> list[dict[str, Any]]:
        """The caller's rule sets (admins: everyone's), oldest first, each with its live status."""
        return [rule_set_view(r, user) for r in await self.repo.list_for(None if user.is_admin else user.user_id)]

    async def get(self, rule_set_id: object, user: Principal) -> dict[str, Any]:
        return rule_set_view(await self.owned(rule_set_id, user), user)

    async def create(self, body: Mapping[str, Any], user: Principal, confirm: bool = False) -> dict[str, Any]:
        """Check a whole new rule set, then store it as the caller's; nothing is stored on a refusal."""
        rs, spec = self._checked(body, user, confirm, user.user_id)
        if await self.repo.count_for(user.user_id) >= MAX_RULE_SETS_PER_USER:
            raise Conflict("too_many_rule_sets", f"one user may keep at most {MAX_RULE_SETS_PER_USER} rule sets")
        now = self.clock()
        row = await self.repo.add(RuleSetRow(owner_id=user.user_id, name=rs.name, scope=rs.scope, scope_id=str(rs.scope_id),
                                             spec=spec, enabled=rs.enabled, created_ns=now, updated_ns=now))
        await self._announce("created", row)
        return rule_set_view(row, user)

    async def update(self, rule_set_id: object, body: Mapping[str, Any], user: Principal, confirm: bool = False) -> dict[str, Any]:
        """Replace a rule set wholly (checked as a new one; its owner stays); its state starts afresh."""
        old = await self.owned(rule_set_id, user)
        rs, spec = self._checked(body, user, confirm, old.owner_id)
        row = RuleSetRow(id=old.id, owner_id=old.owner_id, name=rs.name, scope=rs.scope, scope_id=str(rs.scope_id), spec=spec,
                         enabled=rs.enabled, state=None, created_ns=old.created_ns, updated_ns=self.clock())
        if not await self.repo.update(row):
            raise _not_found(rule_set_id)
        await self._announce("updated", row)
        return rule_set_view(row, user)

    async def delete(self, rule_set_id: object, user: Principal) -> dict[str, Any]:
        """Delete a rule set with its firing history (its unfinished commands are abandoned: disable it first to let them end)."""
        row = await self.owned(rule_set_id, user)
        await self.repo.delete(row.id)
        await self._announce("deleted", row)
        return {"id": row.id, "deleted": True}

    async def set_enabled(self, rule_set_id: object, enabled: bool, user: Principal, confirm: bool = False) -> dict[str, Any]:
        """Enable (checked again: the caller must still trade its scope; a live close_all needs `confirm`) or disable.

        Either clears its state: once enabled, its next sample is its new reference.
        """
        row = await self.owned(rule_set_id, user)
        if enabled:
            rs = msgspec.structs.replace(rule_set_of(row), enabled=True)
            self.trade_scope(user, rs.scope, rs.scope_id, row.owner_id)
            if needs_confirmation(rs) and not confirm:
                raise InvalidInput("confirmation_required", "this live rule set has close_all: send \"confirm\": true to enable it",
                                   field="confirm")
        now = self.clock()
        if not await self.repo.set_enabled(row.id, enabled, now):
            raise _not_found(rule_set_id)
        row = msgspec.structs.replace(row, enabled=enabled, state=None, updated_ns=now)
        await self._announce("enabled" if enabled else "disabled", row)
        return rule_set_view(row, user)

    async def firings(self, rule_set_id: object, user: Principal, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """A rule set's firings, newest first; `before` (ns) pages back through older ones."""
        if not 1 <= limit <= MAX_FIRINGS_PAGE:
            raise InvalidInput("invalid_params", f"limit must be from 1 to {MAX_FIRINGS_PAGE}", field="limit")
        row = await self.owned(rule_set_id, user)
        return [firing_view(f) for f in await self.repo.firings(row.id, limit, before)]

"""The rule set methods of the API (list, get, create, update, delete, enable, disable, get_rule_firings): one
implementation behind JSON-RPC and REST (api.rulesets_routes), run by services.rule_sets.

A rule set's body is handed whole to the service, which checks it with core.rules (codes naming
the path: `rules[1].trail_pct`), checks its scope for the caller (the one place) and stores it;
another user's rule set id answers `rule_set_not_found` like one that does not exist.
"""

from __future__ import annotations

from typing import Any

import msgspec

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.methods import Api, method
from coinwire.auth.abilities import Principal
from coinwire.core.errors import NotFound
from coinwire.services.rule_sets import OPERATOR, RuleSets

__all__ = ["CreateRuleSetParams", "EnableRuleSetParams", "FiringsParams", "RuleSetIdParams", "UpdateRuleSetParams"]


class RuleSetIdParams(P.Params, kw_only=True):
    id: int


class CreateRuleSetParams(P.Params, kw_only=True):
    """A rule set's JSON form (docs/RULES.md), checked by core.rules; `confirm` enables a live close_all."""

    name: Any = msgspec.UNSET
    scope: Any = msgspec.UNSET
    scope_id: Any = msgspec.UNSET
    mode: Any = msgspec.UNSET
    after: Any = msgspec.UNSET
    cooldown: Any = msgspec.UNSET
    enabled: Any = msgspec.UNSET
    rules: Any = msgspec.UNSET
    actions: Any = msgspec.UNSET
    confirm: bool = False


class UpdateRuleSetParams(CreateRuleSetParams, kw_only=True):
    id: int


class EnableRuleSetParams(RuleSetIdParams, kw_only=True):
    confirm: bool = False


class FiringsParams(RuleSetIdParams, kw_only=True):
    limit: int = 100
    before: int | None = None  # a firing's time_ns: only older ones (paging back)


_BODY_FIELDS = ("name", "scope", "scope_id", "mode", "after", "cooldown", "enabled", "rules", "actions")


def _body(p: CreateRuleSetParams) -> dict[str, Any]:
    return {f: getattr(p, f) for f in _BODY_FIELDS if getattr(p, f) is not msgspec.UNSET}


def _rule_sets(api: Api, ctx: CallContext) -> tuple[RuleSets, Principal]:
    if api.rule_sets is None:
        raise NotFound("not_available", "this server keeps no rule sets")
    return api.rule_sets, ctx.principal or OPERATOR  # no principal: a server without users, whose caller is its operator


@method("list_rule_sets", P.NoParams)
async def list_rule_sets(api: Api, p: P.NoParams, ctx: CallContext) -> Any:
    """The caller's rule sets (admins: every one), each with its live status (armed, peak, distance to trigger, ...)."""
    service, user = _rule_sets(api, ctx)
    return await service.listed(user)


@method("get_rule_set", RuleSetIdParams)
async def get_rule_set(api: Api, p: RuleSetIdParams, ctx: CallContext) -> Any:
    """One of the caller's rule sets with its live status."""
    service, user = _rule_sets(api, ctx)
    return await service.get(p.id, user)


@method("create_rule_set", CreateRuleSetParams)
async def create_rule_set(api: Api, p: CreateRuleSetParams, ctx: CallContext) -> Any:
    """Creates a rule set {name, scope, scope_id, mode, after, cooldown, enabled, rules, actions} on a scope the caller
    may trade; an enabled live close_all needs `confirm: true`. Nothing is stored on a refusal."""
    service, user = _rule_sets(api, ctx)
    return await service.create(_body(p), user, p.confirm)


@method("update_rule_set", UpdateRuleSetParams)
async def update_rule_set(api: Api, p: UpdateRuleSetParams, ctx: CallContext) -> Any:
    """Replaces one of the caller's rule sets wholly (checked as a new one); its evaluation starts afresh."""
    service, user = _rule_sets(api, ctx)
    return await service.update(p.id, _body(p), user, p.confirm)


@method("delete_rule_set", RuleSetIdParams)
async def delete_rule_set(api: Api, p: RuleSetIdParams, ctx: CallContext) -> Any:
    """Deletes one of the caller's rule sets with its firing history."""
    service, user = _rule_sets(api, ctx)
    return await service.delete(p.id, user)


@method("enable_rule_set", EnableRuleSetParams)
async def enable_rule_set(api: Api, p: EnableRuleSetParams, ctx: CallContext) -> Any:
    """Enables one of the caller's rule sets (its scope checked again; a live close_all needs `confirm: true`);
    its next sample is its reference."""
    service, user = _rule_sets(api, ctx)
    return await service.set_enabled(p.id, True, user, p.confirm)


@method("disable_rule_set", RuleSetIdParams)
async def disable_rule_set(api: Api, p: RuleSetIdParams, ctx: CallContext) -> Any:
    """Disables one of the caller's rule sets: it is not evaluated until enabled again."""
    service, user = _rule_sets(api, ctx)
    return await service.set_enabled(p.id, False, user)


@method("get_rule_firings", FiringsParams)
async def get_rule_firings(api: Api, p: FiringsParams, ctx: CallContext) -> Any:
    """A rule set's firings, newest first (`limit` 1..1000, `before` a time_ns to page back): the values that made it
    fire and each action's status and detail."""
    service, user = _rule_sets(api, ctx)
    return await service.firings(p.id, user, p.limit, p.before)

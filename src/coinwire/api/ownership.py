"""Who owns which wallet set, order and run; another user's resource is answered as not found.

Owners live in memory, loaded at start. An order's owner is stored in the order's own row, in
the transaction that stores the order (`orders.owner_id`, set by make_order); a wallet set's
`owners` row is committed in the change set that creates the set (Gateway.create_wallet_set).
A run's record lives in its folder, outside the database: its `owners` row is written and
committed before the start is answered (`save`). So nothing acknowledged can come back after a
crash without its owner. The tables below say,
per API method, which parameter names an owned resource, what a result creates, and which
results are lists to narrow to the caller's own; `Api.call` applies them, so a method is
covered by adding a line here, not by code in the method. Admins see everything.

Nothing here is kept per order (memory follows what is open, not history): an order id is
checked by its account (the gateway's cancel asks whether the caller may trade it), and a
client_oid is its owner's key, looked up by the gateway in the caller's own key space only, so
another user's client_oid is simply not found (and free for the caller to use). A run_id is a run's (its owner: who started it) or a
free-form label: a label never seen before becomes the caller's on first use, and another
user's answers like an unknown run. An owner, once recorded, never changes.
A label claimed on first use is kept by what it labels: the orders and wallet sets that carry it
(loaded back at start, `AuthRepository.all_owners`).
"""

from __future__ import annotations

from typing import Any

from coinwire.auth.abilities import Principal
from coinwire.auth.repository import AuthRepository
from coinwire.core.errors import NotFound

__all__ = ["Owners", "OWNED_PARAMS"]

# method -> [(kind, parameter)]: the parameter, when given, must name a resource of the caller
OWNED_PARAMS: dict[str, list[tuple[str, str]]] = {
    "deactivate_wallet_set": [("wallet_set", "set_id"), ("wallet_set", "wallet_set_id")],
    "allocate_to_wallet_set": [("wallet_set", "set_id"), ("wallet_set", "wallet_set_id")],
    "make_order": [("wallet_set", "wallet_set_id"), ("run", "run_id")],
    "make_oco": [("wallet_set", "wallet_set_id"), ("run", "run_id")],
    "list_open_orders": [("wallet_set", "wallet_set_id")],
    # reading a wallet set (get_wallet_set, get_wallet_set_history, get_wallet, the `wallet_set` push) is also for the
    # users who may view the accounts it holds: `Api.readable_set`, the one place those reads are checked
    # cancel_order: an order id's account decides, a client_oid is looked up among the caller's own (both in the gateway)
    "create_wallet_set": [("run", "run_id")],
}
# kinds a caller may name before anyone owns them: the first user to name one owns it from then on
_CLAIMED_ON_FIRST_USE = frozenset({"run"})
# kinds whose owner the resource's own transaction stores (written with it): memory only here
_STORED_WITH_RESOURCE = frozenset({"wallet_set"})
_NOT_FOUND = {
    "wallet_set": ("unknown_wallet_set", "no wallet set {id}"),
    "run": ("unknown_run", "no run {id}"),
}


class Owners:
    """The owner of each (kind, id), kept in memory; stored with the resource, or by `save` before the answer."""

    def __init__(self, repo: AuthRepository) -> None:
        self.repo = repo
        self._owner: dict[tuple[str, str], int] = {}
        self._statement = repo.owner_upsert()

    async def load(self) -> None:
        self._owner = {}
        for r in await self.repo.all_owners():  # the owners table's rows first: what it says stands
            if r["kind"] not in ("order", "order_oid"):  # rows of old versions: orders are their accounts' now
                self._owner.setdefault((r["kind"], r["resource_id"]), int(r["user_id"]))

    async def close(self) -> None:
        """Nothing is buffered: every owner row is committed before its resource is acknowledged."""

    def record(self, kind: str, resource_id: object, principal: Principal) -> None:
        """Remember the owner of a resource whose own transaction stored it (wallet sets), or of a label claimed.

        An owner, once recorded, never changes.
        """
        if kind not in _STORED_WITH_RESOURCE and kind not in _CLAIMED_ON_FIRST_USE:
            raise ValueError(f"the owner of a {kind} is not stored with it: use Owners.save")
        self._owner.setdefault((kind, str(resource_id)), principal.user_id)

    async def save(self, kind: str, resource_id: object, principal: Principal) -> None:
        """Store the owner of a resource kept outside the database (a run), committed before this returns.

        Awaited before the resource is acknowledged: one write per run start, never on an order path.
        """
        key = (kind, str(resource_id))
        await self.repo.store.write_many(self._statement, [{"kind": kind, "resource_id": key[1], "user_id": principal.user_id}])
        self._owner[key] = principal.user_id

    def owner_of(self, kind: str, resource_id: object) -> int | None:
        """The user who owns a resource (None: no one recorded); for services that act for one user, like the Telegram commands."""
        return self._owner.get((kind, str(resource_id)))

    def visible(self, kind: str, resource_id: object, principal: Principal) -> bool:
        """Admins see all; others see what they own (resources made before users existed belong to admins)."""
        if principal.is_admin:
            return True
        return self._owner.get((kind, str(resource_id))) == principal.user_id

    def require(self, kind: str, resource_id: object, principal: Principal) -> None:
        if not self.visible(kind, resource_id, principal):
            code, message = _NOT_FOUND[kind]
            raise NotFound(code, message.format(id=resource_id))

    def check_params(self, method: str, raw: dict[str, Any], principal: Principal) -> list[tuple[str, str]] | None:
        """Raise unless every resource the call names is the caller's; returns the new labels it claimed (or None).

        A label never seen before is claimed here, before the call runs, so two users cannot
        both take it; the caller gives the claims back (`release`) if the call is refused, as a
        refused call changes nothing for anyone.
        """
        claimed: list[tuple[str, str]] | None = None
        for kind, param in OWNED_PARAMS.get(method, ()):
            value = raw.get(param)
            if value is not None:
                key = (kind, str(value))
                if kind in _CLAIMED_ON_FIRST_USE and key not in self._owner:
                    self._owner[key] = principal.user_id  # a new label: the caller's (claimed now, so no race)
                    claimed = [*(claimed or ()), key]
                try:
                    self.require(kind, value, principal)
                except NotFound:
                    self.release(claimed)
                    raise
        return claimed

    def release(self, claimed: list[tuple[str, str]] | None) -> None:
        """Give back labels a refused call claimed (`check_params`): free again for anyone."""
        for key in claimed or ():
            self._owner.pop(key, None)

    def after(self, method: str, raw: dict[str, Any], result: Any, principal: Principal) -> Any:
        """Record what a call created; narrow list results to the caller's own."""
        if method == "create_wallet_set":
            self.record("wallet_set", result["id"], principal)
        return result

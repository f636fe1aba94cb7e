"""The `wallet_set` push channel: a wallet set, as `get_wallet_set` answers it, to its owner and readers after it changes.

The gateway calls `WalletSetPush` with every change set it commits (`Gateway.commit_listeners`);
the sets named by its wallet lines and wallet set rows are the sets that changed: a fill, a hold
placed or released, an allocation in or out, a set created or deactivated.

A storm of fills on one set must not cost a full wallet set per fill: a changed set is only
marked, and the marked sets are built once each and published at most `WALLET_SET_PUSH_BOUND`
seconds (0.25) after the first change since the last push. So a set is pushed at most four times
a second, and its latest state is never later than that bound.

It goes on the bus (`walletset.<id>`, `WalletSetChanged`) with who may read it as the gateway
knows it (the set's owner, the accounts whose funds it holds): every api process's notifier,
an api replica apart from the gateway included, pushes it to its own connections listening on
`wallet_set`, narrowed to the sets they named (`subscribe(wallet_sets=[...])`, each checked there
by `Api.named_sets`), whose user may read the set (`Notifier`: its owner, admins, users who may
view every account whose funds it holds). Receivers are offered it under the subject
`wallet_set.<id>`: a connection that is behind holds only each set's latest. A grant taken back
ends the pushes at the next one.
"""

from __future__ import annotations

import asyncio

import structlog

from coinwire.api.methods import Api
from coinwire.bus.base import Bus
from coinwire.core.errors import NotFound
from coinwire.messages import WalletSetChanged, wallet_set_subject
from coinwire.store import ChangeSet

__all__ = ["CHANNEL", "WALLET_SET_PUSH_BOUND", "WalletSetPush"]

log = structlog.get_logger("coinwire.api")

CHANNEL = "wallet_set"
WALLET_SET_PUSH_BOUND = 0.25  # seconds: the longest a changed set waits, and the shortest time between two of its pushes


class WalletSetPush:
    """The gateway's commit listener that publishes each changed wallet set, coalesced per set within `bound` seconds."""

    def __init__(self, api: Api, bus: Bus, bound: float = WALLET_SET_PUSH_BOUND) -> None:
        self.api = api
        self.bus = bus
        self.bound = bound
        self._changed: set[int] = set()  # sets changed since the last push
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def __call__(self, changes: ChangeSet) -> None:
        """Mark the sets one committed change set touched; the first mark after a push schedules the next."""
        set_of = self.api.gateway.ledger.set_of_wallet
        changed = self._changed
        for line in changes.wallet_lines:
            set_id = set_of(line.wallet_id)
            if set_id is not None:
                changed.add(set_id)
        for wallet_set in changes.wallet_sets:
            changed.add(wallet_set.id)
        if changed and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.bound, self.flush)

    def flush(self) -> None:
        """Build every marked set now, each once, and publish them (in one task)."""
        self._timer = None
        changed, self._changed = self._changed, set()
        built = []
        for set_id in sorted(changed):
            try:
                message = self.build(set_id)
            except Exception:  # one set's failure must not keep the others from their readers
                log.exception("wallet set push failed", wallet_set=set_id)
                continue
            if message is not None:
                built.append(message)
        if built:
            task = asyncio.get_running_loop().create_task(self._publish(built))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def build(self, set_id: int) -> WalletSetChanged | None:
        """One set's message: its view and who may read it (None: the set is gone)."""
        try:
            view = self.api.wallets.wallet_set(set_id)  # what get_wallet_set answers; it carries the set's `id`
        except NotFound:
            return None
        owners = self.api.owners
        owner_id = owners.owner_of("wallet_set", set_id) if owners is not None else None
        return WalletSetChanged(set_id, owner_id, sorted(self.api.gateway.ledger.set_accounts(set_id)), view)

    async def _publish(self, messages: list[WalletSetChanged]) -> None:
        try:
            await self.bus.publish_many([(wallet_set_subject(m.set_id), m) for m in messages])
        except Exception:  # the next change of the set publishes its whole state again
            log.warning("wallet set push not published", wallet_sets=[m.set_id for m in messages], exc_info=True)

    async def close(self) -> None:
        """Stop a push that is waiting, and those being sent (the server is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

"""The `wallet_set` push channel: a wallet set, as `get_wallet_set` answers it, to its owner and readers after it changes.

The gateway calls `WalletSetPush` with every change set it commits (`Gateway.commit_listeners`);
the sets named by its wallet lines and wallet set rows are the sets that changed: a fill, a hold
placed or released, an allocation in or out, a set created or deactivated. Nothing is built
while no connection listens on the channel.

A storm of fills on one set must not cost a full wallet set per fill and per receiver: a changed
set is only marked, and the marked sets are built once each and pushed at most
`WALLET_SET_PUSH_BOUND` seconds (0.25) after the first change since the last push. So a set is
pushed at most four times a second, and its latest state is never later than that bound.
Receivers are offered it under the subject `wallet_set.<id>` (`Notifier.push_to`): a connection
that is behind holds only each set's latest.

Who receives it is asked at each push, from memory: the connections listening on `wallet_set`,
narrowed to the sets they named (`subscribe(wallet_sets=[...])`, each checked there by
`Api.readable_set`), whose user may read the set (`Api.may_read_set`: its owner, admins, users
who may view every account whose funds it holds). A grant taken back ends the pushes at the next one.
"""

from __future__ import annotations

import asyncio

import structlog

from coinwire.api.context import CallContext
from coinwire.api.methods import Api
from coinwire.core.errors import NotFound
from coinwire.store import ChangeSet

__all__ = ["CHANNEL", "WALLET_SET_PUSH_BOUND", "WalletSetPush"]

log = structlog.get_logger("coinwire.api")

CHANNEL = "wallet_set"
WALLET_SET_PUSH_BOUND = 0.25  # seconds: the longest a changed set waits, and the shortest time between two of its pushes


class WalletSetPush:
    """The gateway's commit listener that pushes each changed wallet set, coalesced per set within `bound` seconds."""

    def __init__(self, api: Api, bound: float = WALLET_SET_PUSH_BOUND) -> None:
        self.api = api
        self.bound = bound
        self._changed: set[int] = set()  # sets changed since the last push
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, changes: ChangeSet) -> None:
        """Mark the sets one committed change set touched; the first mark after a push schedules the next."""
        if not self.api.notifier.listening(CHANNEL):
            return
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

    def flush(self) -> int:
        """Push every marked set now, each once; returns how many notifications were given."""
        self._timer = None
        changed, self._changed = self._changed, set()
        given = 0
        for set_id in sorted(changed):
            try:
                given += self.push(set_id)
            except Exception:  # one set's failure must not keep the others from their readers
                log.exception("wallet set push failed", wallet_set=set_id)
        return given

    def push(self, set_id: int) -> int:
        """One set's notification to the connections that follow it and may read it; how many were given it."""
        try:
            view = self.api.wallets.wallet_set(set_id)  # what get_wallet_set answers; it carries the set's `id`
        except NotFound:
            return 0
        may_read = self.api.may_read_set

        def receives(ctx: CallContext) -> bool:
            chosen = ctx.wallet_sets
            return (chosen is None or set_id in chosen) and may_read(ctx.principal, set_id)

        return self.api.notifier.push_to(CHANNEL, view, receives, subject=f"{CHANNEL}.{set_id}")

    def close(self) -> None:
        """Stop a push that is waiting (the server is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

"""A ledger that also keeps the lines it hands out, as the store would: for tests that look at lines and history.

The real ledger keeps balances, not lines (the store keeps those); tests of what lines a command
wrote, of "a refused command wrote nothing" and of history read them here instead of a store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from coinwire.core.instruments import Instrument
from coinwire.core.ledger import HistoryPoint, Ledger, history
from coinwire.core.orders import Fill
from coinwire.core.wallets import WalletLine, WalletSet

__all__ = ["StoredLedger"]


class StoredLedger(Ledger):
    """`Ledger` plus `lines()` (every line handed out and not reverted, in id order) and `history(set_id)`."""

    def __init__(self, exchanges: Mapping[str, Collection[str]] | None = None) -> None:
        super().__init__(exchanges)
        self.kept: list[WalletLine] = []

    def _keep(self, lines: list[WalletLine]) -> list[WalletLine]:
        self.kept += lines
        return lines

    def lines(self) -> list[WalletLine]:
        return sorted(self.kept, key=lambda line: line.id)

    def history(self, wallet_set_id: int | None) -> list[HistoryPoint]:
        ids = {w.id for w in self.wallets(wallet_set_id)}  # raises wallet_set_not_found as the ledger does
        return history(line for line in self.kept if line.wallet_id in ids)

    def add_virtual_tx(self, *args: Any, **kwargs: Any) -> list[WalletLine]:
        return self._keep(super().add_virtual_tx(*args, **kwargs))

    def sync_venue(self, *args: Any, **kwargs: Any) -> list[WalletLine]:
        return self._keep(super().sync_venue(*args, **kwargs))

    def create_wallet_set(self, *args: Any, **kwargs: Any) -> tuple[WalletSet, list[WalletLine]]:
        wallet_set, lines = super().create_wallet_set(*args, **kwargs)
        return wallet_set, self._keep(lines)

    def allocate_to_wallet_set(self, *args: Any, **kwargs: Any) -> list[WalletLine]:
        return self._keep(super().allocate_to_wallet_set(*args, **kwargs))

    def deactivate_wallet_set(self, *args: Any, **kwargs: Any) -> list[WalletLine]:
        return self._keep(super().deactivate_wallet_set(*args, **kwargs))

    def set_hold(self, *args: Any, **kwargs: Any) -> list[WalletLine]:
        return self._keep(super().set_hold(*args, **kwargs))

    def apply_fill(self, fill: Fill, instrument: Instrument, wallet_set_id: int | None, ts: int, **kwargs: Any) -> list[WalletLine]:
        return self._keep(super().apply_fill(fill, instrument, wallet_set_id, ts, **kwargs))

    def revert(self, lines: Sequence[WalletLine], wallet_set_id: int | None = None) -> None:
        kept = {id(line) for line in self.kept}
        if any(id(line) not in kept for line in lines):
            raise AssertionError("reverting lines this ledger did not hand out (or already reverted)")
        super().revert(lines, wallet_set_id)
        gone = {id(line) for line in lines}
        self.kept = [line for line in self.kept if id(line) not in gone]

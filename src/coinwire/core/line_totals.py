"""Sums of wallet lines: per wallet (balance, hold, allocations) and per order's open hold.

Pure. A ledger keeps balances, not lines; the lines stay in the store as the source of
truth. What a restart needs is their sums, and this is the one fold that makes them: the
store adds the lines written since its last checkpoint to the totals kept at that checkpoint
(`Store.checkpoint_ledger`), and `Ledger.replay` folds a whole list of lines the same way.
Adding a line here checks what the ledger checks when it writes one (a hold line holds for
its order on one wallet only), so a corrupted store fails loudly instead of drifting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coinwire.core.wallets import LineKind, WalletLine

__all__ = ["LineTotals", "TotalsError"]

_HOLD, _ALLOCATE = LineKind.HOLD.value, LineKind.ALLOCATE.value


class TotalsError(RuntimeError):
    """The lines do not add up to a ledger (a hold moving between wallets, a line folded twice): a corrupted store."""


class LineTotals:
    """The sums of every line up to `last_line_id`, but for the ids in `gaps`.

    `gaps`: ids at or below `last_line_id` that no folded line had (a change set still in
    flight when the fold read the lines, or one never stored). A line of such an id folds in
    later, once: a writer may commit a higher id before a lower one, and a fold that only
    moved forward from its highest id would skip the lower line for good.

    `wallets`: wallet id -> [balance, hold, allocated] (allocated: the sum of its ALLOCATE
    movements, what lets a ledger check allocations cancel out per account without its lines);
    `holds`: order id -> (wallet id, amount) for each order whose hold lines do not sum to 0.
    """

    __slots__ = ("wallets", "holds", "last_line_id", "gaps")

    def __init__(
        self,
        wallets: Mapping[int, Iterable[int]] | None = None,
        holds: Mapping[int, tuple[int, int]] | None = None,
        last_line_id: int = 0,
        gaps: Iterable[int] = (),
    ) -> None:
        self.wallets: dict[int, list[int]] = {w: list(v) for w, v in (wallets or {}).items()}
        self.holds: dict[int, tuple[int, int]] = dict(holds or {})
        self.last_line_id = last_line_id
        self.gaps: set[int] = set(gaps)

    def add(self, line_id: int, wallet_id: int, kind: str, movement: int, hold: int, order_id: int | None) -> None:
        """Fold one line in (its fields as stored: `kind` is the LineKind's value): an id above the last, or one of the gaps.

        Ids skipped on the way up become gaps; each line folds once.
        """
        last = self.last_line_id
        if line_id > last:
            if line_id != last + 1:
                self.gaps.update(range(last + 1, line_id))
            self.last_line_id = line_id
        elif line_id in self.gaps:  # a late line: the last id stays
            self.gaps.discard(line_id)
        else:
            raise TotalsError(f"line {line_id} comes after line {last}: lines are folded once each")
        total = self.wallets.get(wallet_id)
        if total is None:
            total = self.wallets[wallet_id] = [0, 0, 0]
        total[0] += movement
        if hold:
            if kind != _HOLD or order_id is None:
                raise TotalsError(f"line {line_id}: a {kind} line holds {hold}")
            total[1] += hold
            holder, current = self.holds.get(order_id, (wallet_id, 0))
            if holder != wallet_id:
                raise TotalsError(f"line {line_id}: order {order_id} already holds on wallet {holder}")
            if current + hold:
                self.holds[order_id] = (wallet_id, current + hold)
            else:
                del self.holds[order_id]
        if kind == _ALLOCATE:
            total[2] += movement

    def add_lines(self, lines: Iterable[WalletLine]) -> LineTotals:
        """Fold whole lines in, in id order (those of the gaps first); returns self."""
        for line in sorted(lines, key=_line_id):
            self.add(line.id, line.wallet_id, line.kind.value, line.movement, line.hold, line.order_id)
        return self

    def balance(self, wallet_id: int) -> tuple[int, int, int]:
        """(balance, hold, allocated) of one wallet; zeros for a wallet without lines."""
        total = self.wallets.get(wallet_id)
        return (total[0], total[1], total[2]) if total is not None else (0, 0, 0)


def _line_id(line: WalletLine) -> int:
    return line.id

"""Wallet, wallet-set and wallet-line records: the ledger's data, shared with the store.

Every account's exchange wallet (account, exchange, currency) is partitioned: one `unallocated` wallet
(`wallet_set_id is None`) plus one logical wallet per wallet set. Each line belongs to
exactly one of those wallets, so

    exchange balance = sum of the lines of all its partitions
    total            = allocated (active sets) + unallocated            (by construction, per account)
    wallet balance   = sum(line.movement),  wallet hold = sum(line.hold)
    available        = balance - hold       (never negative)

Allocating moves funds with two lines (unallocated -x, set +x), at a set's creation or later
(more in, or some of its available funds back out); deactivating moves them all back. A zero
allocation is one line of 0 on the set's side: the set's wallet exists, empty.
Amounts are integers of ATTO (10**-18) of the wallet's currency.
"""

from __future__ import annotations

import enum

import msgspec

__all__ = ["LineKind", "Wallet", "WalletLine", "WalletSet"]


class LineKind(str, enum.Enum):
    VIRTUAL_TX = "virtual_tx"  # paper deposit (+) or withdrawal (-)
    VENUE_SYNC = "venue_sync"  # a live account's balance as its venue reports it, or the difference since
    ALLOCATE = "allocate"  # funds moved between unallocated and a wallet set
    HOLD = "hold"  # hold placed, changed or released for an order (movement 0)
    TRADE = "trade"  # a fill's base or quote movement
    FEE = "fee"  # a fill's fee (negative movement)
    PNL = "pnl"  # a perpetual position's realised profit (+) or loss (-), in the settle currency
    FUNDING = "funding"  # a perpetual's funding payment: received (+) or paid (-)
    LIQUIDATION = "liquidation"  # the clearance fee of a liquidated position (what its margin had left)


class Wallet(msgspec.Struct, kw_only=True):
    """One partition of one exchange wallet. `balance` and `hold` are sums of its lines."""

    id: int
    exchange: str
    currency: str
    wallet_set_id: int | None = None
    account_id: int = 0  # the account whose funds these are (0: a single-account ledger, as a backtest's)
    balance: int = 0
    hold: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.hold


class WalletLine(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One movement of funds or of a hold; immutable, replayed on start to rebuild balances.

    `gc=False`: its fields are scalars (an enum member at most), so it can never be part of a
    reference cycle, and the ledger keeps every line in memory: in an order storm, traversing
    hundreds of thousands of them was about half the collector's time, in full passes of up to
    65 ms.
    """

    id: int
    wallet_id: int
    ts: int
    kind: LineKind
    movement: int = 0
    hold: int = 0
    order_id: int | None = None
    fill_id: int | None = None


class WalletSet(msgspec.Struct, kw_only=True):
    id: int
    run_id: str | None
    description: str
    created_at: int
    active: bool = True
    deactivated_at: int | None = None
    type: str = "logical"

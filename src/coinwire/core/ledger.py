"""The ledger of logical wallets: deposits, wallet sets, per-order holds and fill settlement.

Pure and deterministic. Every state change validates everything first, then RETURNS the new
`WalletLine`s (and the `WalletSet` it creates) so the caller persists them in one
transaction; a refused command changes nothing. Balances are only ever sums of lines, and
the ledger keeps the sums, not the lines: the store's lines are the source of truth, and
`Ledger.restore` rebuilds the exact state from the persisted wallets and sets and the sums of
their lines (`core.line_totals`, kept by the store at its checkpoints); `history` turns a
wallet set's stored lines into its balance history.

Wallet records are created on their first line; a caller persisting lines also upserts
`wallet_by_id(line.wallet_id)` for wallet ids it has not stored yet, and re-stores
`wallet_set(set_id)` after `deactivate_wallet_set`.

Settling a fill, in this order (each step keeps `available >= 0`):

    set_hold(order_id, ..., required_hold(order after the fill))   # frees the fill's cost
    apply_fill(fill, instrument, wallet_set_id, ts)                # spends it

or both at once with `apply_fill(..., hold_after=...)`. `apply_fill` refuses, changing
nothing, any fill that would leave a wallet's available negative: that is what calling it
before lowering the hold does when the partition has no spare funds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence

import msgspec

from coinwire.core.errors import Conflict, DomainError, InsufficientFunds, InvalidInput, NotFound
from coinwire.core.funds import fill_movements, hold_currency
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.line_totals import LineTotals, TotalsError
from coinwire.core.numbers import atto_to_str
from coinwire.core.orders import Fill
from coinwire.core.positions import MarginMode, Position, PositionBook, PositionSettings
from coinwire.core.wallets import LineKind, Wallet, WalletLine, WalletSet

__all__ = ["Ledger", "Balance", "HistoryPoint", "LedgerInvariantError", "history"]

Pair = tuple[str, str]  # (exchange, currency)
_Key = tuple[str, str, int | None, int]  # (exchange, currency, wallet_set_id, account_id)


class LedgerInvariantError(RuntimeError):
    """The ledger's books do not balance, or a caller asked for something that would unbalance them (a bug)."""


class Balance(msgspec.Struct, frozen=True):
    """An aggregate of wallets of one currency on one exchange (ATTO)."""

    balance: int = 0
    hold: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.hold

    def __add__(self, other: Balance) -> Balance:
        return Balance(self.balance + other.balance, self.hold + other.hold)


class HistoryPoint(msgspec.Struct, frozen=True):
    """A wallet's state right after one of its lines."""

    ts: int
    wallet_id: int
    balance: int
    available: int
    hold: int


class Ledger:
    """All partitions of all accounts' exchange wallets, their lines and the holds of open orders.

    Each account (an int; 0 in a single-account ledger, as a backtest's) has its own unallocated
    wallet per currency and its own wallets in the wallet sets it funds: allocation and
    settlement move funds only within one account, so `total = allocated + unallocated` holds
    per account. A wallet set may hold wallets of several accounts, one account per exchange.

    Memory is per wallet and per open hold, never per line: each wallet keeps its balance,
    hold and the sum of its allocation lines (what `check` needs); lines are handed to the
    caller to store, and history is read back from the store (`history`).
    """

    def __init__(self, exchanges: Mapping[str, Iterable[str]] | None = None) -> None:
        self._known: dict[str, set[str]] = {}
        self._wallets: dict[int, Wallet] = {}
        self._by_key: dict[_Key, int] = {}
        self._sets: dict[int, WalletSet] = {}
        self._partitions: dict[int | None, list[int]] = {None: []}  # wallet ids per set (None: unallocated)
        self._allocated: dict[int, int] = {}  # wallet id -> the sum of its ALLOCATE movements
        self._holds: dict[int, tuple[int, int]] = {}  # order_id (< 0: a position's margin) -> (wallet_id, amount > 0)
        self.positions = PositionBook()  # perpetual positions and settings (core.perp_execution keeps them with the holds)
        self.wallet_ids = IdSequence()
        self.set_ids = IdSequence()
        self.line_ids = IdSequence()
        for exchange, currencies in (exchanges or {}).items():
            self.add_exchange(exchange, currencies)

    def add_exchange(self, exchange: str, currencies: Iterable[str]) -> None:
        """Know `exchange` and its currencies (merged with any known before); writes nothing."""
        self._known.setdefault(exchange, set()).update(currencies)

    # --- commands -------------------------------------------------------------------------
    def add_virtual_tx(self, exchange: str, currency: str, movement: int, ts: int, account: int = 0) -> list[WalletLine]:
        """A paper deposit (+) or withdrawal (-) on the account's unallocated wallet."""
        return self._external(LineKind.VIRTUAL_TX, exchange, currency, movement, ts, account)

    def sync_venue(self, exchange: str, currency: str, movement: int, ts: int, account: int = 0) -> list[WalletLine]:
        """Bring a live account's unallocated wallet to what the venue holds (deposits, withdrawals, first start)."""
        return self._external(LineKind.VENUE_SYNC, exchange, currency, movement, ts, account)

    def _external(self, kind: LineKind, exchange: str, currency: str, movement: int, ts: int, account: int) -> list[WalletLine]:
        """Money entering (+) or leaving (-) the account from outside the ledger, on its unallocated wallet."""
        self._require_pair(exchange, currency)
        if _amount(movement, "movement") == 0:
            raise InvalidInput("invalid_amount", "movement must not be zero", field="movement")
        if movement < 0:
            self._require_available(exchange, currency, None, -movement, account)
        return [self._post((exchange, currency, None, account), kind, ts, movement=movement)]

    def create_wallet_set(
        self, run_id: str | None, description: str, allocations: Sequence[tuple[str, str, int]], ts: int,
        accounts: Mapping[str, int] | None = None,
    ) -> tuple[WalletSet, list[WalletLine]]:
        """Give a run its own partition, moving each allocation out of its account's unallocated (all or nothing).

        `accounts`: the account funding each exchange's allocations (0 when not given). A zero
        allocation lists the currency with an empty wallet, ready to receive what the run buys
        (one ALLOCATE line of 0 creates it, so it is stored and restored like any other).
        """
        if not allocations:
            raise DomainError("bad_wallet_config", "a wallet set needs at least one allocation")
        self._check_allocations(allocations, negative_allowed=False)
        of = accounts or {}
        for exchange, currency, amount in allocations:
            self._require_available(exchange, currency, None, amount, of.get(exchange, 0))
        wallet_set = WalletSet(id=self.set_ids.next(), run_id=run_id, description=description, created_at=ts)
        self._sets[wallet_set.id] = wallet_set
        self._partitions[wallet_set.id] = []
        lines: list[WalletLine] = []
        for exchange, currency, amount in allocations:
            lines += self._allocate(exchange, currency, None, wallet_set.id, amount, ts, of.get(exchange, 0))
        return msgspec.structs.replace(wallet_set), lines

    def allocate_to_wallet_set(
        self, set_id: int, allocations: Sequence[tuple[str, str, int]], ts: int, accounts: Mapping[str, int] | None = None
    ) -> list[WalletLine]:
        """Move more unallocated funds into an active set (+), or some of its available funds back out (-).

        All or nothing: every allocation is checked before any line is written. A withdrawal
        takes at most what the set's wallet has available (funds held by open orders stay). A
        zero allocation adds the currency as an empty wallet when the set has none, else writes
        nothing. Each movement is a pair of ALLOCATE lines, so the set's history shows it.
        `accounts`: the account of each exchange (0 when not given); a set keeps one account per
        exchange, so naming another for an exchange it already holds is `account_conflict`.
        """
        self._active_set(set_id)
        if not allocations:
            raise DomainError("bad_wallet_config", "an allocation needs at least one wallet", wallet_set_id=set_id)
        self._check_allocations(allocations, negative_allowed=True)
        of = accounts or {}
        for exchange, _, _ in allocations:
            held = self.set_account(set_id, exchange)
            if held is not None and held != of.get(exchange, 0):
                raise DomainError("account_conflict", f"wallet set {set_id} holds {exchange} funds of another account",
                                  wallet_set_id=set_id, exchange=exchange)
        for exchange, currency, amount in allocations:
            if amount > 0:
                self._require_available(exchange, currency, None, amount, of.get(exchange, 0))
            elif amount < 0:
                self._require_available(exchange, currency, set_id, -amount, of.get(exchange, 0))
        lines: list[WalletLine] = []
        for exchange, currency, amount in allocations:
            account = of.get(exchange, 0)
            if amount > 0:
                lines += self._allocate(exchange, currency, None, set_id, amount, ts, account)
            elif amount < 0:
                lines += self._allocate(exchange, currency, set_id, None, -amount, ts, account)
            elif (exchange, currency, set_id, account) not in self._by_key:
                lines += self._allocate(exchange, currency, None, set_id, 0, ts, account)
        return lines

    def set_account(self, set_id: int, exchange: str) -> int | None:
        """The account whose funds the set holds on `exchange` (None: the set has no wallet there)."""
        for wallet_id in self._partitions.get(set_id, ()):
            wallet = self._wallets[wallet_id]
            if wallet.exchange == exchange:
                return wallet.account_id
        return None

    def deactivate_wallet_set(self, set_id: int, ts: int) -> list[WalletLine]:
        """Return every balance of an idle set to unallocated and close the set."""
        wallet_set = self._active_set(set_id)
        if any(self._wallets[w].hold for w in self._partitions[set_id]):
            message = f"wallet set {set_id} has open orders holding funds"
            raise Conflict("wallet_set_busy", message, wallet_set_id=set_id)
        lines: list[WalletLine] = []
        for wallet_id in self._partitions[set_id]:
            wallet = self._wallets[wallet_id]
            if wallet.balance:
                lines += self._allocate(wallet.exchange, wallet.currency, set_id, None, wallet.balance, ts, wallet.account_id)
        wallet_set.active = False
        wallet_set.deactivated_at = ts
        return lines

    def set_hold(
        self, order_id: int, exchange: str, currency: str, wallet_set_id: int | None, amount: int, ts: int, account: int = 0
    ) -> list[WalletLine]:
        """Make the order's hold exactly `amount` (0 releases it) on `account`'s wallet; no line when it is unchanged."""
        self._require_pair(exchange, currency)
        if wallet_set_id is not None:
            self._set(wallet_set_id)
        if _amount(amount, "hold") < 0:
            raise InvalidInput("invalid_amount", f"hold must not be negative, got {amount}", field="hold")
        key = (exchange, currency, wallet_set_id, account)
        delta = self._hold_delta(order_id, key, amount)
        if delta == 0:
            return []
        if delta > 0:
            self._usable_set(wallet_set_id)
            self._require_available(exchange, currency, wallet_set_id, delta, account)
        return [self._post(key, _HOLD, ts, hold=delta, order_id=order_id)]

    def apply_fill(
        self,
        fill: Fill,
        instrument: Instrument,
        wallet_set_id: int | None,
        ts: int,
        *,
        hold_after: int | None = None,
    ) -> list[WalletLine]:
        """Settle one fill on the order's partition (of the fill's account): TRADE lines for base and quote, a FEE line.

        With `hold_after`, first sets the order's hold to it (a HOLD line), in the same call.
        """
        if fill.wallet_set_id is not None and fill.wallet_set_id != wallet_set_id:
            raise ValueError(f"fill {fill.id} belongs to wallet set {fill.wallet_set_id}, not {wallet_set_id}")
        movements = fill_movements(instrument, fill)
        for movement in movements:
            self._require_pair(instrument.exchange, movement.currency)
        self._usable_set(wallet_set_id)
        account = fill.account_id
        hold_key: _Key = (instrument.exchange, hold_currency(instrument, fill.side), wallet_set_id, account)
        hold_delta = 0 if hold_after is None else self._hold_delta(fill.order_id, hold_key, _amount(hold_after, "hold"))
        change: dict[_Key, int] = defaultdict(int, {hold_key: -hold_delta})
        for movement in movements:
            change[(instrument.exchange, movement.currency, wallet_set_id, account)] += movement.amount
        for key, delta in change.items():
            available = self._available(key)
            if available + delta < 0:
                raise LedgerInvariantError(
                    f"fill {fill.id} of order {fill.order_id} would leave {key[1]} on {key[0]} (set {key[2]}) at "
                    f"available {atto_to_str(available + delta)}: lower the order's hold first"
                )
        lines = []
        if hold_delta:
            lines.append(self._post(hold_key, _HOLD, ts, hold=hold_delta, order_id=fill.order_id))
        for movement in movements:
            key = (instrument.exchange, movement.currency, wallet_set_id, account)
            line = self._post(key, movement.kind, ts, movement=movement.amount, order_id=fill.order_id, fill_id=fill.id)
            lines.append(line)
        return lines

    def settle_margin(
        self,
        exchange: str,
        currency: str,
        wallet_set_id: int | None,
        account: int,
        ts: int,
        *,
        holds: Sequence[tuple[int, int]] = (),
        movements: Sequence[tuple[LineKind, int, int | None, int | None]] = (),
    ) -> list[WalletLine]:
        """A perpetual's settlement on one wallet in one step: holds set to new amounts, then signed movements.

        `holds`: (hold id, new amount): an order's id or a position's `hold_id`; `movements`:
        (kind, ATTO, order_id, fill_id), e.g. realised PnL, a fee, funding. All or nothing:
        refuses, changing nothing, a result that would leave the wallet's available negative
        (the caller sizes what it asks so that never happens). Lowered holds are written first.
        """
        self._require_pair(exchange, currency)
        key: _Key = (exchange, currency, wallet_set_id, account)
        deltas = [(hold_id, self._hold_delta(hold_id, key, _amount(amount, "hold"))) for hold_id, amount in holds]
        if any(amount < 0 for _, amount in holds):
            raise InvalidInput("invalid_amount", "a hold must not be negative", field="hold")
        change = sum(_amount(amount, "movement") for _, amount, _, _ in movements) - sum(delta for _, delta in deltas)
        available = self._available(key)
        if available + change < 0:
            raise LedgerInvariantError(f"settlement on {currency} of {exchange} (set {wallet_set_id}, account {account}) would "
                                       f"leave available at {atto_to_str(available + change)}")
        lines = [self._post(key, _HOLD, ts, hold=delta, order_id=hold_id) for hold_id, delta in deltas if delta < 0]
        lines += [self._post(key, kind, ts, movement=amount, order_id=order_id, fill_id=fill_id)
                  for kind, amount, order_id, fill_id in movements if amount]
        lines += [self._post(key, _HOLD, ts, hold=delta, order_id=hold_id) for hold_id, delta in deltas if delta > 0]
        return lines

    def available_of(self, exchange: str, currency: str, wallet_set_id: int | None, account: int = 0) -> int:
        """What the wallet at that partition has available (0 if it has no wallet yet)."""
        return self._available((exchange, currency, wallet_set_id, account))

    def revert(self, lines: Sequence[WalletLine], wallet_set_id: int | None = None) -> None:
        """Take back lines this ledger wrote that were never stored (their commit was refused), newest first.

        `wallet_set_id`: a set created with these lines, removed with its wallets. Lines written
        since stay: they never depend on a refused one (a hold or an allocation taken back only
        frees funds), which is what lets one refused command leave everyone else's alone.
        """
        for line in reversed(lines):
            wallet = self._wallets.get(line.wallet_id)
            if wallet is None:
                raise LedgerInvariantError(f"line {line.id} belongs to unknown wallet {line.wallet_id}")
            if line.kind is LineKind.ALLOCATE:
                self._allocated[wallet.id] -= line.movement
            if line.order_id is not None and line.hold:
                _, current = self._holds.get(line.order_id, (wallet.id, 0))  # a released hold is taken back too
                if current - line.hold:
                    self._holds[line.order_id] = (wallet.id, current - line.hold)
                else:
                    self._holds.pop(line.order_id, None)
            wallet.balance -= line.movement
            wallet.hold -= line.hold
        if wallet_set_id is not None:
            for wallet_id in self._partitions.pop(wallet_set_id, []):
                wallet = self._wallets.pop(wallet_id)
                del self._by_key[(wallet.exchange, wallet.currency, wallet_set_id, wallet.account_id)]
                del self._allocated[wallet_id]
            self._sets.pop(wallet_set_id, None)

    # --- queries ---------------------------------------------------------------------------
    def hold_of(self, order_id: int) -> int:
        return self._holds.get(order_id, (0, 0))[1]

    def holds(self) -> dict[int, int]:
        """Every open hold: order id -> ATTO held."""
        return {order_id: amount for order_id, (_, amount) in self._holds.items()}

    def wallet(self, exchange: str, currency: str, wallet_set_id: int | None = None, account: int | None = None) -> Wallet:
        """One partition's wallet of `account`; a partition that never held anything reads as zero with id 0.

        `account` None: a set's wallet on `exchange` is of the one account the set holds there; an unallocated one is account 0's.
        """
        self._require_pair(exchange, currency)
        if wallet_set_id is not None:
            self._set(wallet_set_id)
            if account is None:
                account = self.set_account(wallet_set_id, exchange)
        return self._peek((exchange, currency, wallet_set_id, account or 0))

    def find_wallet(self, wallet_id: object) -> Wallet | None:
        """A copy of the wallet with this id, or None."""
        wallet = self._wallets.get(wallet_id) if type(wallet_id) is int else None
        return msgspec.structs.replace(wallet) if wallet is not None else None

    def has_set(self, set_id: int) -> bool:
        """Whether a wallet set with this id exists (active or not)."""
        return set_id in self._sets

    def set_accounts(self, set_id: int) -> frozenset[int]:
        """The accounts whose funds a wallet set holds (empty: none yet, or no such set)."""
        return frozenset(self._wallets[w].account_id for w in self._partitions.get(set_id, ()))

    def set_of_wallet(self, wallet_id: int) -> int | None:
        """The wallet set a wallet belongs to (None: unallocated, or no such wallet), without copying the wallet."""
        wallet = self._wallets.get(wallet_id)
        return wallet.wallet_set_id if wallet is not None else None

    def wallet_by_id(self, wallet_id: int) -> Wallet:
        wallet = self._wallets.get(wallet_id)
        if wallet is None:
            raise NotFound("wallet_not_found", f"no wallet with id {wallet_id}", wallet_id=wallet_id)
        return msgspec.structs.replace(wallet)

    def wallets(self, wallet_set_id: int | None = None, accounts: Collection[int] | None = None) -> list[Wallet]:
        """The wallets of one set, or the unallocated wallets when `wallet_set_id` is None (of `accounts` only, when given)."""
        if wallet_set_id is not None:
            self._set(wallet_set_id)
        return [msgspec.structs.replace(self._wallets[w]) for w in self._partitions[wallet_set_id]
                if accounts is None or self._wallets[w].account_id in accounts]

    def all_wallets(self) -> list[Wallet]:
        return [msgspec.structs.replace(w) for w in self._wallets.values()]

    def wallet_set(self, set_id: int) -> WalletSet:
        return msgspec.structs.replace(self._set(set_id))

    def wallet_sets(self, active_only: bool = True) -> list[WalletSet]:
        return [msgspec.structs.replace(s) for s in self._sets.values() if s.active or not active_only]

    def exchange_totals(self, accounts: Collection[int] | None = None) -> dict[Pair, Balance]:
        """Each exchange wallet as a whole: the sum of all its partitions (= allocated + unallocated), of `accounts` when given."""
        return self._aggregate(self._wallets.values(), accounts)

    def account_balances(self, exchange: str, account: int) -> dict[str, Balance]:
        """What one account holds on one exchange, per currency (every venue's `balances`)."""
        return {currency: balance for (ex, currency), balance in self.exchange_totals((account,)).items() if ex == exchange}

    def allocated(self, set_ids: Collection[int] | None = None, accounts: Collection[int] | None = None) -> dict[Pair, Balance]:
        """The sum of the active sets' wallets per exchange wallet (only of `set_ids`, and of `accounts`, when given)."""
        active = (s.id for s in self._sets.values() if s.active and (set_ids is None or s.id in set_ids))
        return self._aggregate((self._wallets[w] for set_id in active for w in self._partitions[set_id]), accounts)

    def unallocated(self, accounts: Collection[int] | None = None) -> dict[Pair, Balance]:
        return self._aggregate((self._wallets[w] for w in self._partitions[None]), accounts)

    def unallocated_per_exchange(self, accounts: Collection[int] | None = None) -> dict[str, dict[str, Balance]]:
        result: dict[str, dict[str, Balance]] = {}
        for (exchange, currency), balance in self.unallocated(accounts).items():
            result.setdefault(exchange, {})[currency] = balance
        return result

    def totals(self) -> LineTotals:
        """What this ledger's lines sum to (per wallet, per open hold): equal to the store's sums of the same lines."""
        wallets = {w.id: (w.balance, w.hold, self._allocated[w.id]) for w in self._wallets.values()}
        return LineTotals(wallets, self._holds, self.line_ids.last)

    # --- invariants and restore -------------------------------------------------------------
    def check(self, accounts: Collection[int] | None = None) -> None:
        """Raise LedgerInvariantError unless the books of `accounts` (None: all) balance exactly; O(wallets + holds).

        Per wallet: hold = the sum of its orders' holds, 0 <= hold <= balance, empty when its set
        is inactive. Per account: total = allocated + unallocated, and its allocation lines cancel
        out per currency (funds only move between partitions of one account). Per perpetual position:
        a flat one holds no margin, an isolated one holds exactly its isolated margin. That balances are
        the sums of the stored lines is the store's to show (`Store.line_totals` against `totals`).
        """
        held: dict[int, int] = defaultdict(int)
        for order_id, (wallet_id, amount) in self._holds.items():
            if amount <= 0 or wallet_id not in self._wallets:
                raise LedgerInvariantError(f"order {order_id} holds {amount} on wallet {wallet_id}")
            held[wallet_id] += amount
        checked = [w for w in self._wallets.values() if accounts is None or w.account_id in accounts]
        for wallet in checked:
            if wallet.hold < 0 or wallet.available < 0:
                raise LedgerInvariantError(f"wallet {wallet.id}: hold {wallet.hold}, available {wallet.available}")
            if wallet.hold != held[wallet.id]:
                raise LedgerInvariantError(f"wallet {wallet.id}: hold {wallet.hold} but orders hold {held[wallet.id]}")
            owner = self._sets.get(wallet.wallet_set_id) if wallet.wallet_set_id is not None else None
            if owner is not None and not owner.active and (wallet.balance or wallet.hold):
                raise LedgerInvariantError(f"wallet {wallet.id} of inactive set {owner.id} is not empty")
        for account in {w.account_id for w in checked}:
            only = (account,)
            totals, allocated, unallocated = self.exchange_totals(only), self.allocated(accounts=only), self.unallocated(only)
            for pair, total in totals.items():
                if total != allocated.get(pair, Balance()) + unallocated.get(pair, Balance()):
                    raise LedgerInvariantError(f"account {account} {pair}: total {total} != allocated + unallocated")
        set_accounts: dict[tuple[int, str], int] = {}  # one account per exchange in each set
        for wallet in self._wallets.values():
            if wallet.wallet_set_id is not None:
                first = set_accounts.setdefault((wallet.wallet_set_id, wallet.exchange), wallet.account_id)
                if first != wallet.account_id:
                    raise LedgerInvariantError(f"wallet set {wallet.wallet_set_id} holds {wallet.exchange} funds of two accounts")
        for pos in self.positions.all():  # a position's margin hold is its isolated margin, and a flat one holds nothing
            if accounts is not None and pos.account_id not in accounts:
                continue
            held_margin = self._holds.get(pos.hold_id, (0, 0))[1]
            if (pos.size == 0 and held_margin) or (pos.margin_mode is MarginMode.ISOLATED and held_margin != pos.isolated_margin):
                raise LedgerInvariantError(f"position {pos.id} ({pos.symbol}, size {pos.size}) holds {held_margin} of margin, "
                                           f"isolated margin {pos.isolated_margin}")
        allocations: dict[tuple[int, str, str], int] = defaultdict(int)
        for wallet in checked:
            allocations[(wallet.account_id, wallet.exchange, wallet.currency)] += self._allocated[wallet.id]
        if any(allocations.values()):
            raise LedgerInvariantError(f"allocation lines do not cancel out within each account: {dict(allocations)}")

    @classmethod
    def restore(
        cls,
        wallets: Iterable[Wallet],
        wallet_sets: Iterable[WalletSet],
        totals: LineTotals,
        exchanges: Mapping[str, Iterable[str]] | None = None,
        *,
        positions: Iterable[Position] = (),
        position_settings: Iterable[PositionSettings] = (),
        hedge_modes: Iterable[tuple[int, str, bool]] = (),
    ) -> Ledger:
        """Rebuild a ledger from persisted records and the sums of their lines (`totals`, up to its `last_line_id`).

        Balances, holds and per-order holds come from `totals`; the stored wallets' own
        `balance`/`hold` are ignored; the currencies of stored wallets become known; new line
        ids follow `totals.last_line_id`. Perpetual positions, their settings and the accounts'
        hedge modes come back into `positions` (their margin holds are among `totals.holds`,
        under each position's `hold_id`). The result is checked before it is returned.
        """
        ledger = cls(exchanges)
        ledger.positions.restore(positions, position_settings, hedge_modes)
        for wallet_set in sorted(wallet_sets, key=lambda s: s.id):
            ledger._sets[wallet_set.id] = msgspec.structs.replace(wallet_set)
            ledger._partitions[wallet_set.id] = []
            ledger.set_ids.advance_to(wallet_set.id)
        for stored in sorted(wallets, key=lambda w: w.id):
            ledger.add_exchange(stored.exchange, [stored.currency])
            wallet = ledger._add_wallet(stored.id, (stored.exchange, stored.currency, stored.wallet_set_id, stored.account_id))
            wallet.balance, wallet.hold, ledger._allocated[wallet.id] = totals.balance(wallet.id)
        unknown = set(totals.wallets) - set(ledger._wallets)
        if unknown:
            raise LedgerInvariantError(f"lines belong to unknown wallets {sorted(unknown)[:10]}")
        ledger._holds = dict(totals.holds)
        ledger.line_ids.advance_to(totals.last_line_id)
        ledger.check()
        return ledger

    @classmethod
    def replay(
        cls,
        wallets: Iterable[Wallet],
        wallet_sets: Iterable[WalletSet],
        lines: Iterable[WalletLine],
        exchanges: Mapping[str, Iterable[str]] | None = None,
        *,
        positions: Iterable[Position] = (),
        position_settings: Iterable[PositionSettings] = (),
        hedge_modes: Iterable[tuple[int, str, bool]] = (),
    ) -> Ledger:
        """`restore` from every line (a test's or an import's whole list; a server reads the store's sums instead)."""
        try:
            totals = LineTotals().add_lines(lines)
        except TotalsError as exc:
            raise LedgerInvariantError(str(exc)) from exc
        return cls.restore(wallets, wallet_sets, totals, exchanges, positions=positions, position_settings=position_settings,
                           hedge_modes=hedge_modes)

    # --- internals --------------------------------------------------------------------------
    def _require_pair(self, exchange: str, currency: str) -> None:
        if exchange not in self._known:
            raise NotFound("exchange_not_found", f"unknown exchange {exchange!r}", exchange=exchange)
        if currency not in self._known[exchange]:
            raise NotFound(
                "currency_not_found", f"{exchange} has no currency {currency!r}", exchange=exchange, currency=currency
            )

    def _set(self, set_id: int) -> WalletSet:
        wallet_set = self._sets.get(set_id)
        if wallet_set is None:
            raise NotFound("wallet_set_not_found", f"no wallet set with id {set_id}", wallet_set_id=set_id)
        return wallet_set

    def _active_set(self, set_id: int) -> WalletSet:
        wallet_set = self._set(set_id)
        if not wallet_set.active:
            raise Conflict("wallet_set_inactive", f"wallet set {set_id} is inactive", wallet_set_id=set_id)
        return wallet_set

    def _usable_set(self, set_id: int | None) -> None:
        if set_id is not None:
            self._active_set(set_id)

    def _peek(self, key: _Key) -> Wallet:
        """A copy of the wallet at `key`, or a zero wallet with id 0 if it does not exist yet."""
        wallet_id = self._by_key.get(key)
        if wallet_id is None:
            return Wallet(id=0, exchange=key[0], currency=key[1], wallet_set_id=key[2], account_id=key[3])
        return msgspec.structs.replace(self._wallets[wallet_id])

    def _available(self, key: _Key) -> int:
        """What the wallet at `key` has available (0 if it does not exist yet), without copying it."""
        wallet_id = self._by_key.get(key)
        if wallet_id is None:
            return 0
        wallet = self._wallets[wallet_id]
        return wallet.balance - wallet.hold  # Wallet.available, without a property call on the order path

    def _require_available(self, exchange: str, currency: str, set_id: int | None, needed: int, account: int = 0) -> None:
        available = self._available((exchange, currency, set_id, account))
        if needed > available:
            where = "unallocated" if set_id is None else f"wallet set {set_id}"
            raise InsufficientFunds(
                f"{atto_to_str(needed)} {currency} needed on {exchange} ({where}), {atto_to_str(available)} available",
                exchange=exchange,
                currency=currency,
                wallet_set_id=set_id,
                needed=atto_to_str(needed),
                available=atto_to_str(available),
            )

    def _hold_delta(self, order_id: int, key: _Key, amount: int) -> int:
        """How much the order's hold on `key`'s wallet must change to become `amount`."""
        wallet_id, current = self._holds.get(order_id, (0, 0))
        if current and self._by_key.get(key) != wallet_id:
            raise LedgerInvariantError(f"order {order_id} already holds on wallet {wallet_id}, not on {key}")
        return amount - current

    def _check_allocations(self, allocations: Sequence[tuple[str, str, int]], *, negative_allowed: bool) -> None:
        """Each (exchange, currency) known and named once, each amount an int (>= 0 unless `negative_allowed`)."""
        seen: set[Pair] = set()
        for exchange, currency, amount in allocations:
            problem = None
            if currency not in self._known.get(exchange, ()):
                problem = f"unknown exchange/currency {exchange}/{currency}"
            elif _amount(amount, "allocation") < 0 and not negative_allowed:
                problem = f"the allocation of {currency} on {exchange} must not be negative"
            elif (exchange, currency) in seen:
                problem = f"{currency} on {exchange} is allocated twice"
            if problem:
                raise DomainError("bad_wallet_config", problem, exchange=exchange, currency=currency)
            seen.add((exchange, currency))

    def _allocate(
        self, exchange: str, currency: str, source: int | None, target: int | None, amount: int, ts: int, account: int
    ) -> list[WalletLine]:
        """Move `amount` between two partitions of one account's exchange wallet: a pair of ALLOCATE lines.

        Zero moves nothing: one line of 0 on the target creates its wallet, empty (the source
        keeps no line, so an unallocated wallet never funded is not created by it).
        """
        if amount == 0:
            return [self._post((exchange, currency, target, account), LineKind.ALLOCATE, ts)]
        return [
            self._post((exchange, currency, source, account), LineKind.ALLOCATE, ts, movement=-amount),
            self._post((exchange, currency, target, account), LineKind.ALLOCATE, ts, movement=amount),
        ]

    def _add_wallet(self, wallet_id: int, key: _Key) -> Wallet:
        if key in self._by_key or wallet_id in self._wallets:
            raise LedgerInvariantError(f"wallet {wallet_id} {key} is stored twice")
        if key[2] not in self._partitions:
            raise LedgerInvariantError(f"wallet {wallet_id} belongs to unknown wallet set {key[2]}")
        wallet = Wallet(id=wallet_id, exchange=key[0], currency=key[1], wallet_set_id=key[2], account_id=key[3])
        self._wallets[wallet_id] = wallet
        self._by_key[key] = wallet_id
        self._partitions[key[2]].append(wallet_id)
        self._allocated[wallet_id] = 0
        self.wallet_ids.advance_to(wallet_id)
        return wallet

    def _post(
        self,
        key: _Key,
        kind: LineKind,
        ts: int,
        *,
        movement: int = 0,
        hold: int = 0,
        order_id: int | None = None,
        fill_id: int | None = None,
    ) -> WalletLine:
        """Write one line to the wallet at `key` (creating the wallet on its first line)."""
        wallet_id = self._by_key.get(key)
        if wallet_id is None:
            wallet_id = self._add_wallet(self.wallet_ids.next(), key).id
        line = WalletLine(
            id=self.line_ids.next(),
            wallet_id=wallet_id,
            ts=ts,
            kind=kind,
            movement=movement,
            hold=hold,
            order_id=order_id,
            fill_id=fill_id,
        )
        self._apply(line)
        return line

    def _apply(self, line: WalletLine) -> None:
        """Add one line to its wallet and, for a HOLD line, to its order's hold."""
        is_hold = line.kind is _HOLD
        if is_hold != (line.hold != 0) or (is_hold and (line.movement or line.order_id is None)):
            raise LedgerInvariantError(
                f"line {line.id}: a {line.kind.value} line with movement {line.movement}, hold {line.hold}"
            )
        wallet = self._wallets[line.wallet_id]
        if line.order_id is not None and line.hold:
            holder, current = self._holds.get(line.order_id, (wallet.id, 0))
            if holder != wallet.id:
                raise LedgerInvariantError(f"line {line.id}: order {line.order_id} already holds on wallet {holder}")
            if current + line.hold:
                self._holds[line.order_id] = (wallet.id, current + line.hold)
            else:
                del self._holds[line.order_id]
        wallet.balance += line.movement
        wallet.hold += line.hold
        if line.kind is _ALLOCATE:
            self._allocated[wallet.id] += line.movement

    @staticmethod
    def _aggregate(wallets: Iterable[Wallet], accounts: Collection[int] | None = None) -> dict[Pair, Balance]:
        result: dict[Pair, Balance] = defaultdict(Balance)
        for wallet in wallets:
            if accounts is not None and wallet.account_id not in accounts:
                continue
            pair = (wallet.exchange, wallet.currency)
            result[pair] = result[pair] + Balance(wallet.balance, wallet.hold)
        return dict(sorted(result.items()))


_HOLD, _ALLOCATE = LineKind.HOLD, LineKind.ALLOCATE  # module constants: enum member lookups through the class are slow on 3.11


def history(lines: Iterable[WalletLine]) -> list[HistoryPoint]:
    """Wallets after each of their lines, in line order: every line of each wallet from its first, as the store keeps them."""
    running: dict[int, Balance] = defaultdict(Balance)
    points = []
    for line in sorted(lines, key=_line_id):
        state = running[line.wallet_id] = running[line.wallet_id] + Balance(line.movement, line.hold)
        points.append(HistoryPoint(line.ts, line.wallet_id, state.balance, state.available, state.hold))
    return points


def _line_id(line: WalletLine) -> int:
    return line.id


def _amount(value: int, field: str) -> int:
    """ATTO amounts are ints; a float or bool here is a bug upstream, never rounded silently."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{field} must be an int of ATTO, got {type(value).__name__}")
    return value

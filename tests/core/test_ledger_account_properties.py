"""Hypothesis properties of a ledger shared by several accounts: funds never cross from one account to another.

Random deposits, withdrawals, wallet sets (each holding one account's funds per exchange, a
set may hold two accounts on two exchanges), allocations in and out, orders holding funds,
fills and cancels, each command naming an account, and now and then a command that would
reach another account's funds: an allocation naming another account than the set holds on
that exchange, an order in a set with another account than the set's, a withdrawal or
allocation beyond the account's own funds while other accounts have plenty. Those are
refused and change nothing.

After every step: the books balance (`check()`); per account, `total = allocated +
unallocated`; each account's total per currency is exactly its own deposits, withdrawals and
fills (an independent model, kept per account), so no command moved funds between accounts;
each account's holds are exactly what its own open orders hold, on its own wallets; and a
restore from the records a caller would persist reproduces the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from coinwire.core.errors import CoinwireError
from coinwire.core.funds import fill_movements, max_buy_cost, required_hold
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance, Ledger
from coinwire.core.orders import Fill, Order, OrderType, Side
from coinwire.core.wallets import Wallet, WalletLine, WalletSet
from tests.core.stored_ledger import StoredLedger

ACCOUNTS = (1, 2, 3)
EXCHANGES = {"paper": ["BTC", "USDT", "ETH"], "other": ["BTC", "USDT"]}
PAIRS = [(exchange, currency) for exchange, currencies in EXCHANGES.items() for currency in currencies]
INSTRUMENTS = [
    Instrument(exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
               maker_fee=100_000, taker_fee=200_000),
    Instrument(exchange="paper", symbol="ETH/BTC", base="ETH", quote="BTC", price_decimals=8, size_decimals=10,
               maker_fee=75_000, taker_fee=75_000),
    Instrument(exchange="other", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=5,
               maker_fee=0, taker_fee=40_000),
]
DEPOSITS = st.integers(10**18, 10**26)
SHARES = st.integers(1, 120)  # percent of what the account has available: above 100 must be refused
Key = tuple[int, str, str]  # (account, exchange, currency)


class OpenOrder(msgspec.Struct):
    order: Order
    instrument: Instrument
    held: int
    budget: int = 0  # market buys: the quote budget left


class AccountsMachine(RuleBasedStateMachine):
    sets = Bundle("sets")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = StoredLedger(EXCHANGES)
        self.ts = 0
        self.ids = 0
        self.expected: dict[Key, int] = defaultdict(int)  # each account's own deposits, withdrawals and fills
        self.orders: dict[int, OpenOrder] = {}
        self.set_accounts: dict[int, dict[str, int]] = {}  # set id -> exchange -> the account it holds there
        self.stored_lines: list[WalletLine] = []
        self.stored_wallets: dict[int, Wallet] = {}
        self.stored_sets: dict[int, WalletSet] = {}

    # --- helpers ----------------------------------------------------------------------------
    def tick(self) -> int:
        self.ts += 1_000_000_000
        return self.ts

    def next_id(self) -> int:
        self.ids += 1
        return self.ids

    def persist(self, lines: list[WalletLine]) -> None:
        self.stored_lines += lines
        for line in lines:
            self.stored_wallets[line.wallet_id] = self.ledger.wallet_by_id(line.wallet_id)

    def refuses(self, code: str, command: Callable[..., object], *args: object, **kwargs: object) -> None:
        """`command` must fail with `code` and change nothing."""
        before = self.ledger.lines()
        try:
            command(*args, **kwargs)
        except CoinwireError as exc:
            assert exc.code == code, (exc.code, code)
        else:
            raise AssertionError(f"expected {code}")
        assert self.ledger.lines() == before

    def available(self, account: int, exchange: str, currency: str, set_id: int | None = None) -> int:
        return self.ledger.wallet(exchange, currency, set_id, account).available

    def others_have(self, account: int, exchange: str, currency: str, amount: int) -> bool:
        """Another account has `amount` unallocated: a refusal then shows the pool is not shared."""
        return any(self.available(a, exchange, currency) >= amount for a in ACCOUNTS if a != account)

    def share_of(self, account: int, pair: tuple[str, str], share: int, set_id: int | None = None) -> int:
        return max(1, self.available(account, *pair, set_id) * share // 100)

    # --- deposits and withdrawals -----------------------------------------------------------
    @initialize(amounts=st.lists(DEPOSITS, min_size=len(PAIRS) * len(ACCOUNTS), max_size=len(PAIRS) * len(ACCOUNTS)))
    def fund(self, amounts: list[int]) -> None:
        for index, amount in enumerate(amounts):
            self.deposit(ACCOUNTS[index % len(ACCOUNTS)], PAIRS[index // len(ACCOUNTS)], amount)

    @rule(account=st.sampled_from(ACCOUNTS), pair=st.sampled_from(PAIRS), amount=DEPOSITS)
    def deposit(self, account: int, pair: tuple[str, str], amount: int) -> None:
        self.persist(self.ledger.add_virtual_tx(*pair, amount, self.tick(), account))
        self.expected[(account, *pair)] += amount

    @rule(account=st.sampled_from(ACCOUNTS), pair=st.sampled_from(PAIRS), share=SHARES)
    def withdraw(self, account: int, pair: tuple[str, str], share: int) -> None:
        amount = self.share_of(account, pair, share)
        if amount > self.available(account, *pair):
            self.refuses("insufficient_funds", self.ledger.add_virtual_tx, *pair, -amount, 0, account)
            return
        self.persist(self.ledger.add_virtual_tx(*pair, -amount, self.tick(), account))
        self.expected[(account, *pair)] -= amount

    @rule(account=st.sampled_from(ACCOUNTS), pair=st.sampled_from(PAIRS), data=st.data())
    def withdraw_what_only_another_account_has(self, account: int, pair: tuple[str, str], data: st.DataObject) -> None:
        """More than the account's own unallocated funds, however much the others hold: refused."""
        amount = self.available(account, *pair) + data.draw(st.integers(1, 10**24), label="beyond")
        self.refuses("insufficient_funds", self.ledger.add_virtual_tx, *pair, -amount, 0, account)

    # --- wallet sets ------------------------------------------------------------------------
    @rule(
        target=sets,
        accounts=st.fixed_dictionaries({exchange: st.sampled_from(ACCOUNTS) for exchange in EXCHANGES}),
        shares=st.lists(st.tuples(st.sampled_from(PAIRS), st.just(0) | SHARES), min_size=1, max_size=3, unique_by=lambda s: s[0]),
    )
    def create_set(self, accounts: dict[str, int], shares: list[tuple[tuple[str, str], int]]) -> int | None:
        """A set funded by one account per exchange (two accounts when it spans both exchanges)."""
        allocations = [(pair, self.share_of(accounts[pair[0]], pair, share) if share else 0) for pair, share in shares]
        flat = [(exchange, currency, amount) for (exchange, currency), amount in allocations]
        if any(amount > self.available(accounts[pair[0]], *pair) for pair, amount in allocations):
            self.refuses("insufficient_funds", self.ledger.create_wallet_set, "r", "d", flat, 0, accounts=accounts)
            return None
        wallet_set, lines = self.ledger.create_wallet_set("run", "a run", flat, self.tick(), accounts=accounts)
        self.persist(lines)
        self.stored_sets[wallet_set.id] = wallet_set
        self.set_accounts[wallet_set.id] = {pair[0]: accounts[pair[0]] for pair, _ in allocations}
        for exchange, account in self.set_accounts[wallet_set.id].items():
            assert self.ledger.set_account(wallet_set.id, exchange) == account
        return wallet_set.id

    @rule(
        set_id=sets,
        moves=st.lists(st.tuples(st.sampled_from(PAIRS), SHARES, st.sampled_from([1, 0, -1])), min_size=1, max_size=3,
                       unique_by=lambda m: m[0]),
        named=st.fixed_dictionaries({exchange: st.sampled_from(ACCOUNTS) for exchange in EXCHANGES}),
    )
    def allocate_to_set(self, set_id: int | None, moves: list[tuple[tuple[str, str], int, int]], named: dict[str, int]) -> None:
        """In (+), back out (-) or an empty wallet (0), naming an account per exchange: another than the set holds is refused."""
        if set_id is None:
            return
        holds = self.set_accounts[set_id]
        accounts = {exchange: holds.get(exchange, account) for exchange, account in named.items()}
        crossing = [pair for pair, _, _ in moves if named[pair[0]] != accounts[pair[0]]]
        allocations = []
        for pair, share, sign in moves:
            account = accounts[pair[0]]
            if sign > 0:
                allocations.append((pair, self.share_of(account, pair, share)))
            elif sign < 0:
                allocations.append((pair, -self.share_of(account, pair, share, set_id)))
            else:
                allocations.append((pair, 0))
        flat = [(exchange, currency, amount) for (exchange, currency), amount in allocations]
        if not self.ledger.wallet_set(set_id).active:
            self.refuses("wallet_set_inactive", self.ledger.allocate_to_wallet_set, set_id, flat, 0, accounts=named)
            return
        if crossing:  # the set holds another account's funds on that exchange
            self.refuses("account_conflict", self.ledger.allocate_to_wallet_set, set_id, flat, 0, accounts=named)
        if any(amount > self.available(accounts[pair[0]], *pair) or -amount > self.available(accounts[pair[0]], *pair, set_id)
               for pair, amount in allocations):
            self.refuses("insufficient_funds", self.ledger.allocate_to_wallet_set, set_id, flat, 0, accounts=accounts)
            return
        self.persist(self.ledger.allocate_to_wallet_set(set_id, flat, self.tick(), accounts=accounts))
        for pair, _ in allocations:
            self.set_accounts[set_id].setdefault(pair[0], accounts[pair[0]])
            assert self.ledger.set_account(set_id, pair[0]) == accounts[pair[0]]

    @rule(set_id=sets)
    def deactivate_set(self, set_id: int | None) -> None:
        if set_id is None:
            return
        if not self.ledger.wallet_set(set_id).active:
            self.refuses("wallet_set_inactive", self.ledger.deactivate_wallet_set, set_id, 0)
        elif any(open_.order.wallet_set_id == set_id for open_ in self.orders.values()):
            self.refuses("wallet_set_busy", self.ledger.deactivate_wallet_set, set_id, 0)
        else:
            self.persist(self.ledger.deactivate_wallet_set(set_id, self.tick()))
            self.stored_sets[set_id] = self.ledger.wallet_set(set_id)

    # --- orders, fills, releases ------------------------------------------------------------
    @rule(
        account=st.sampled_from(ACCOUNTS),
        instrument=st.sampled_from(INSTRUMENTS),
        side=st.sampled_from(Side),
        market=st.booleans(),
        set_id=st.none() | sets,
        price=st.integers(1, 10**6),
        share=SHARES,
    )
    def place(self, account: int, instrument: Instrument, side: Side, market: bool, set_id: int | None, price: int, share: int) -> None:
        """An order of `account`: in a set, with the account the set holds on the exchange; else from its unallocated funds."""
        exchange = instrument.exchange
        spends = instrument.quote if side is Side.BUY else instrument.base
        if set_id is not None:
            held = self.set_accounts[set_id].get(exchange)
            if held is None or not self.ledger.wallet_set(set_id).active or not self.available(held, exchange, spends, set_id):
                set_id = None
            else:
                account = held
        unit = max_buy_cost(instrument, price, 1) if side is Side.BUY else instrument.base_atto(1)
        size = max(1, self.available(account, exchange, spends, set_id) * share // 100 // unit)
        order = Order(
            id=self.next_id(), client_oid="c", exchange=exchange, symbol=instrument.symbol, side=side,
            type=OrderType.MARKET if market else OrderType.LIMIT, size=size, limit=0 if market else price,
            wallet_set_id=set_id, account_id=account,
        )
        budget = max_buy_cost(instrument, price, size) if market and side is Side.BUY else 0
        currency, amount = required_hold(instrument, order, market_cost=budget)
        if set_id is not None:  # the same hold with another account in the set reaches nothing of that account's
            for other in ACCOUNTS:
                if other != account:
                    self.refuses("insufficient_funds", self.ledger.set_hold, order.id, exchange, currency, set_id, amount, 0, other)
        if amount > self.available(account, exchange, currency, set_id):
            self.refuses("insufficient_funds", self.ledger.set_hold, order.id, exchange, currency, set_id, amount, 0, account)
            return
        self.persist(self.ledger.set_hold(order.id, exchange, currency, set_id, amount, self.tick(), account))
        order.limit = order.limit or price  # the worst price a market order may reach (its preview)
        self.orders[order.id] = OpenOrder(order, instrument, amount, budget)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), maker=st.booleans(), in_one_call=st.booleans())
    def fill(self, data: st.DataObject, maker: bool, in_one_call: bool) -> None:
        open_ = self.orders[data.draw(st.sampled_from(sorted(self.orders)), label="order")]
        order, instrument = open_.order, open_.instrument
        size = data.draw(st.integers(1, order.remaining), label="size")
        price = data.draw(st.integers(1, order.limit if order.side is Side.BUY else 10**7), label="price")
        notional = instrument.notional_atto(price, size)
        fill = Fill(
            id=self.next_id(), order_id=order.id, client_oid="c", exchange=instrument.exchange, symbol=instrument.symbol,
            side=order.side, order_type=order.type, price=price, size=size, notional=notional,
            fee=instrument.fee_atto(notional, maker), maker=maker, ts=self.ts, account_id=order.account_id,
        )
        order.record_fill(price, size, notional, fill.fee, self.tick())
        if order.type is OrderType.MARKET and order.side is Side.BUY:
            open_.budget -= notional + fill.fee
        currency, hold_after = required_hold(instrument, order, market_cost=open_.budget)
        if not order.remaining:
            del self.orders[order.id]
        if in_one_call:
            lines = self.ledger.apply_fill(fill, instrument, order.wallet_set_id, self.ts, hold_after=hold_after)
        else:
            lines = self.ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, hold_after, self.ts, order.account_id)
            lines += self.ledger.apply_fill(fill, instrument, order.wallet_set_id, self.ts)
        self.persist(lines)
        open_.held = hold_after
        for line in lines:  # every line of the fill is on a wallet of the order's own account
            assert self.ledger.wallet_by_id(line.wallet_id).account_id == order.account_id
        for movement in fill_movements(instrument, fill):
            self.expected[(order.account_id, instrument.exchange, movement.currency)] += movement.amount

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        open_ = self.orders.pop(data.draw(st.sampled_from(sorted(self.orders)), label="order"))
        order = open_.order
        currency, _ = required_hold(open_.instrument, order, market_cost=0)
        self.persist(self.ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, 0, self.tick(), order.account_id))

    # --- invariants -------------------------------------------------------------------------
    @invariant()
    def funds_stay_in_their_account(self) -> None:
        self.ledger.check()
        everyone: dict[tuple[str, str], Balance] = defaultdict(Balance)
        for account in ACCOUNTS:
            only = (account,)
            ledger = self.ledger
            totals, allocated, unallocated = ledger.exchange_totals(only), ledger.allocated(accounts=only), ledger.unallocated(only)
            for pair in PAIRS:
                total = totals.get(pair, Balance())
                assert total.balance == self.expected[(account, *pair)], (account, pair)
                assert total == allocated.get(pair, Balance()) + unallocated.get(pair, Balance()), (account, pair)
                everyone[pair] += total
        nonzero = {p: b for p, b in self.ledger.exchange_totals().items() if b != Balance()}
        assert {p: b for p, b in everyone.items() if b != Balance()} == nonzero

    @invariant()
    def holds_are_their_own_orders(self) -> None:
        """Each account's wallets hold exactly what its own open orders hold."""
        expected: dict[Key, int] = defaultdict(int)
        for open_ in self.orders.values():
            currency, _ = required_hold(open_.instrument, open_.order, market_cost=0)
            expected[(open_.order.account_id, open_.order.exchange, currency)] += open_.held
        held: dict[Key, int] = defaultdict(int)
        for wallet in self.ledger.all_wallets():
            held[(wallet.account_id, wallet.exchange, wallet.currency)] += wallet.hold
        assert {k: v for k, v in held.items() if v} == {k: v for k, v in expected.items() if v}

    @invariant()
    def restore_reproduces_the_ledger(self) -> None:
        restored = Ledger.replay(self.stored_wallets.values(), self.stored_sets.values(), self.stored_lines)
        assert restored.all_wallets() == self.ledger.all_wallets()
        assert restored.holds() == self.ledger.holds()


AccountsMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestLedgerAccountProperties = AccountsMachine.TestCase

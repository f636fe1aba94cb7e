"""Hypothesis properties of the ledger over random sequences of deposits, sets, orders, fills and releases.

Wallet sets are created (zero allocations too), topped up, drawn down and deactivated.
After every step: the books balance (`check()`), no available is negative, total equals
allocated + unallocated, exchange totals equal what an independent model of deposits and
trades expects, and a restore from the records the caller would have persisted (the
returned lines, the wallets they name, the sets) reproduces the same ledger exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from coinwire.core.errors import CoinwireError
from coinwire.core.funds import fill_movements, max_buy_cost, required_hold
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance, Ledger
from coinwire.core.orders import Fill, Order, OrderType, Side
from coinwire.core.wallets import Wallet, WalletLine, WalletSet
from tests.core.stored_ledger import StoredLedger

EXCHANGES = {"paper": ["BTC", "USDT", "ETH"], "other": ["BTC", "USDT"]}
PAIRS = [(exchange, currency) for exchange, currencies in EXCHANGES.items() for currency in currencies]
INSTRUMENTS = [
    Instrument(exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
               maker_fee=100_000, taker_fee=200_000),
    # 18 decimals of price x size and 0.075%: most fees are fractions of an ATTO, rounded up.
    Instrument(exchange="paper", symbol="ETH/BTC", base="ETH", quote="BTC", price_decimals=8, size_decimals=10,
               maker_fee=75_000, taker_fee=75_000),
    Instrument(exchange="other", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=5,
               maker_fee=0, taker_fee=40_000),
]
DEPOSITS = st.integers(10**18, 10**26)
SHARES = st.integers(1, 120)  # percent of what is available: above 100 must be refused


class OpenOrder(msgspec.Struct):
    order: Order
    instrument: Instrument
    held: int
    budget: int = 0  # market buys: the quote budget left


class LedgerMachine(RuleBasedStateMachine):
    sets = Bundle("sets")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = StoredLedger(EXCHANGES)
        self.ts = 0
        self.ids = 0
        self.expected: dict[tuple[str, str], int] = dict.fromkeys(PAIRS, 0)
        self.orders: dict[int, OpenOrder] = {}
        # what a caller persists: every returned line, the wallets they name, the sets
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

    def refuses(self, code: str, command: Callable[..., object], *args: object) -> None:
        """`command(*args)` must fail with `code` and change nothing."""
        before = self.ledger.lines()
        try:
            command(*args)
        except CoinwireError as exc:
            assert exc.code == code
        else:
            raise AssertionError(f"expected {code}")
        assert self.ledger.lines() == before

    def available(self, exchange: str, currency: str, set_id: int | None) -> int:
        return self.ledger.wallet(exchange, currency, set_id).available

    def usable(self, set_id: int | None) -> bool:
        return set_id is None or self.ledger.wallet_set(set_id).active

    # --- deposits and withdrawals -----------------------------------------------------------
    def share_of(self, pair: tuple[str, str], share: int) -> int:
        return max(1, self.available(*pair, None) * share // 100)

    @initialize(amounts=st.lists(DEPOSITS, min_size=len(PAIRS), max_size=len(PAIRS)))
    def fund(self, amounts: list[int]) -> None:
        for pair, amount in zip(PAIRS, amounts, strict=True):
            self.deposit(pair, amount)

    @rule(pair=st.sampled_from(PAIRS), amount=DEPOSITS)
    def deposit(self, pair: tuple[str, str], amount: int) -> None:
        self.persist(self.ledger.add_virtual_tx(*pair, amount, self.tick()))
        self.expected[pair] += amount

    @rule(pair=st.sampled_from(PAIRS), share=SHARES)
    def withdraw(self, pair: tuple[str, str], share: int) -> None:
        amount = self.share_of(pair, share)
        if amount > self.available(*pair, None):
            self.refuses("insufficient_funds", self.ledger.add_virtual_tx, *pair, -amount, 0)
            return
        self.persist(self.ledger.add_virtual_tx(*pair, -amount, self.tick()))
        self.expected[pair] -= amount

    # --- wallet sets ------------------------------------------------------------------------
    @rule(target=sets, shares=st.lists(st.tuples(st.sampled_from(PAIRS), st.just(0) | SHARES), min_size=1, max_size=3))
    def create_set(self, shares: list[tuple[tuple[str, str], int]]) -> int | None:
        allocations = [(pair, self.share_of(pair, share) if share else 0) for pair, share in shares]  # 0: an empty wallet
        flat = [(exchange, currency, amount) for (exchange, currency), amount in allocations]
        if len({pair for pair, _ in allocations}) < len(allocations):
            self.refuses("bad_wallet_config", self.ledger.create_wallet_set, "r", "d", flat, 0)
            return None
        if any(amount > self.available(*pair, None) for pair, amount in allocations):
            self.refuses("insufficient_funds", self.ledger.create_wallet_set, "r", "d", flat, 0)
            return None
        wallet_set, lines = self.ledger.create_wallet_set("run", "a run", flat, self.tick())
        self.persist(lines)
        self.stored_sets[wallet_set.id] = wallet_set
        for (exchange, currency), amount in allocations:
            assert self.ledger.wallet(exchange, currency, wallet_set.id).balance == amount
        return wallet_set.id

    @rule(
        set_id=sets,
        moves=st.lists(st.tuples(st.sampled_from(PAIRS), SHARES, st.sampled_from([1, 0, -1])), min_size=1, max_size=3),
        own=st.booleans(),
    )
    def allocate_to_set(self, set_id: int | None, moves: list[tuple[tuple[str, str], int, int]], own: bool) -> None:
        """More funds in (+), some back out (-, of what the set has available), or an empty wallet added (0).

        `own`: draw back out of the set's own funded wallets (other pairs have nothing to give back).
        """
        if set_id is None:
            return
        funded = sorted((w.exchange, w.currency) for w in self.ledger.wallets(set_id) if w.available > 0)
        allocations: list[tuple[tuple[str, str], int]] = []
        for index, (pair, share, sign) in enumerate(moves):
            if own and sign < 0 and funded:
                pair = funded[index % len(funded)]
            if sign > 0:
                allocations.append((pair, self.share_of(pair, share)))
            elif sign < 0:
                allocations.append((pair, -max(1, self.available(*pair, set_id) * share // 100)))
            else:
                allocations.append((pair, 0))
        flat = [(exchange, currency, amount) for (exchange, currency), amount in allocations]
        if not self.ledger.wallet_set(set_id).active:
            self.refuses("wallet_set_inactive", self.ledger.allocate_to_wallet_set, set_id, flat, 0)
            return
        if len({pair for pair, _ in allocations}) < len(allocations):
            self.refuses("bad_wallet_config", self.ledger.allocate_to_wallet_set, set_id, flat, 0)
            return
        if any(amount > self.available(*pair, None) or -amount > self.available(*pair, set_id) for pair, amount in allocations):
            self.refuses("insufficient_funds", self.ledger.allocate_to_wallet_set, set_id, flat, 0)
            return
        before = {pair: (self.ledger.wallet(*pair, set_id).balance, self.ledger.wallet(*pair).balance) for pair, _ in allocations}
        self.persist(self.ledger.allocate_to_wallet_set(set_id, flat, self.tick()))
        for pair, amount in allocations:
            in_set, unallocated = before[pair]
            assert self.ledger.wallet(*pair, set_id).balance == in_set + amount
            assert self.ledger.wallet(*pair).balance == unallocated - amount
            assert self.ledger.wallet(*pair, set_id).id > 0  # listed in the set, even when empty

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
            assert all(w.balance == 0 for w in self.ledger.wallets(set_id))

    # --- orders, fills, releases ------------------------------------------------------------
    @rule(
        instrument=st.sampled_from(INSTRUMENTS),
        side=st.sampled_from(Side),
        market=st.booleans(),
        set_id=st.none() | sets,
        price=st.integers(1, 10**6),
        share=SHARES,
    )
    def place(
        self, instrument: Instrument, side: Side, market: bool, set_id: int | None, price: int, share: int
    ) -> None:
        spends = instrument.quote if side is Side.BUY else instrument.base
        if not self.usable(set_id) or not self.available(instrument.exchange, spends, set_id):
            set_id = None  # a set without that currency could only refuse: trade unallocated funds instead
        # size the order to hold about `share` percent of what the partition has available
        unit = max_buy_cost(instrument, price, 1) if side is Side.BUY else instrument.base_atto(1)
        size = max(1, self.available(instrument.exchange, spends, set_id) * share // 100 // unit)
        order = Order(
            id=self.next_id(), client_oid="c", exchange=instrument.exchange, symbol=instrument.symbol, side=side,
            type=OrderType.MARKET if market else OrderType.LIMIT, size=size, limit=0 if market else price,
            wallet_set_id=set_id,
        )
        budget = max_buy_cost(instrument, price, size) if market and side is Side.BUY else 0
        currency, amount = required_hold(instrument, order, market_cost=budget)
        if amount > self.available(instrument.exchange, currency, set_id):
            args = (order.id, instrument.exchange, currency, set_id, amount, 0)
            self.refuses("insufficient_funds", self.ledger.set_hold, *args)
            return
        self.persist(self.ledger.set_hold(order.id, instrument.exchange, currency, set_id, amount, self.tick()))
        order.limit = order.limit or price  # the worst price a market order may reach (its preview)
        self.orders[order.id] = OpenOrder(order, instrument, amount, budget)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), maker=st.booleans(), in_one_call=st.booleans())
    def fill(self, data: st.DataObject, maker: bool, in_one_call: bool) -> None:
        open_ = self.orders[data.draw(st.sampled_from(sorted(self.orders)), label="order")]
        order, instrument = open_.order, open_.instrument
        size = data.draw(st.integers(1, order.remaining), label="size")
        # buys fill at or under their limit (or preview); sells at any price
        price = data.draw(st.integers(1, order.limit if order.side is Side.BUY else 10**7), label="price")
        notional = instrument.notional_atto(price, size)
        fill = Fill(
            id=self.next_id(), order_id=order.id, client_oid="c", exchange=instrument.exchange,
            symbol=instrument.symbol, side=order.side, order_type=order.type, price=price, size=size,
            notional=notional, fee=instrument.fee_atto(notional, maker), maker=maker, ts=self.ts,
        )
        order.record_fill(price, size, notional, fill.fee, self.tick())
        if order.type is OrderType.MARKET and order.side is Side.BUY:
            open_.budget -= notional + fill.fee
            assert open_.budget >= 0
        currency, hold_after = required_hold(instrument, order, market_cost=open_.budget)
        if not order.remaining:
            del self.orders[order.id]
        if in_one_call:
            lines = self.ledger.apply_fill(fill, instrument, order.wallet_set_id, self.ts, hold_after=hold_after)
        else:
            lines = self.ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, hold_after, self.ts)
            lines += self.ledger.apply_fill(fill, instrument, order.wallet_set_id, self.ts)
        self.persist(lines)
        open_.held = hold_after
        assert self.ledger.hold_of(order.id) == hold_after
        for movement in fill_movements(instrument, fill):
            self.expected[(instrument.exchange, movement.currency)] += movement.amount

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        open_ = self.orders.pop(data.draw(st.sampled_from(sorted(self.orders)), label="order"))
        order = open_.order
        currency, _ = required_hold(open_.instrument, order, market_cost=0)
        self.persist(self.ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, 0, self.tick()))
        assert self.ledger.hold_of(order.id) == 0

    # --- invariants -------------------------------------------------------------------------
    @invariant()
    def books_balance(self) -> None:
        self.ledger.check()
        assert all(wallet.available >= 0 and wallet.hold >= 0 for wallet in self.ledger.all_wallets())
        totals, allocated, unallocated = self.ledger.exchange_totals(), self.ledger.allocated(), self.ledger.unallocated()
        for pair, expected in self.expected.items():
            total = totals.get(pair, Balance())
            assert total.balance == expected  # an independent model of deposits, withdrawals and trades
            assert total == allocated.get(pair, Balance()) + unallocated.get(pair, Balance())
        assert self.ledger.holds() == {order_id: o.held for order_id, o in self.orders.items() if o.held}

    @invariant()
    def restore_reproduces_the_ledger(self) -> None:
        restored = Ledger.replay(self.stored_wallets.values(), self.stored_sets.values(), self.stored_lines)
        assert restored.all_wallets() == self.ledger.all_wallets()
        assert restored.wallet_sets(active_only=False) == self.ledger.wallet_sets(active_only=False)
        assert restored.holds() == self.ledger.holds()
        assert restored.totals().wallets == self.ledger.totals().wallets  # allocation sums too


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestLedgerProperties = LedgerMachine.TestCase

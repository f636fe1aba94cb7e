"""The ledger with several accounts: funds, holds, fills and allocations never cross accounts."""

from __future__ import annotations

import pytest

from coinwire.core.accounts import Account, may
from coinwire.core.errors import DomainError, InsufficientFunds
from coinwire.core.execution import place_order, release_hold
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance, Ledger, LedgerInvariantError
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import str_to_atto as atto
from coinwire.core.orders import Order, OrderType, Side
from tests.core.stored_ledger import StoredLedger

EX, OTHER = "paper", "other"
BTC_USDT = Instrument(exchange=EX, symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6)
ALICE, BOB, ALICE_OTHER = 1, 2, 3  # account ids: Alice's and Bob's on `paper`, Alice's on `other`


@pytest.fixture
def ledger() -> Ledger:
    """Alice's and Bob's accounts on one exchange, 1,000 USDT each; Alice's second account elsewhere, 500 USDT."""
    ledger = StoredLedger({EX: ["BTC", "USDT"], OTHER: ["USDT"]})
    ledger.add_virtual_tx(EX, "USDT", atto("1000"), 1, ALICE)
    ledger.add_virtual_tx(EX, "USDT", atto("1000"), 1, BOB)
    ledger.add_virtual_tx(OTHER, "USDT", atto("500"), 1, ALICE_OTHER)
    return ledger


def test_each_account_has_its_own_unallocated_funds(ledger: Ledger) -> None:
    assert ledger.unallocated((ALICE,)) == {(EX, "USDT"): Balance(atto("1000"))}
    assert ledger.unallocated((BOB,)) == {(EX, "USDT"): Balance(atto("1000"))}
    assert ledger.exchange_totals() == {(EX, "USDT"): Balance(atto("2000")), (OTHER, "USDT"): Balance(atto("500"))}
    with pytest.raises(InsufficientFunds):  # Bob's withdrawal may take only what Bob has
        ledger.add_virtual_tx(EX, "USDT", -atto("1001"), 2, BOB)
    ledger.check()


def test_an_order_holds_and_settles_on_its_own_account_only(ledger: Ledger) -> None:
    book_engine = MatchingEngine(BTC_USDT, IdSequence())
    book_engine.on_snapshot([(9_900_00, 1_000_000)], [(10_000_00, 1_000_000)], 1)
    order = Order(id=1, client_oid="a", exchange=EX, symbol="BTC/USDT", side=Side.BUY, type=OrderType.MARKET,
                  size=50_000, account_id=ALICE)  # 0.05 BTC at 10,000: 500 USDT
    fills, _ = place_order(ledger, book_engine, order, 2)
    assert fills and all(f.account_id == ALICE for f in fills)
    assert ledger.wallet(EX, "BTC", None, ALICE).balance == atto("0.05")
    assert ledger.wallet(EX, "BTC", None, BOB).balance == 0 and ledger.wallet(EX, "USDT", None, BOB).balance == atto("1000")
    too_big = Order(id=2, client_oid="b", exchange=EX, symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                    size=60_000, limit=10_000_00, account_id=ALICE)  # 600 USDT: Alice has 500 left, Bob's 1,000 do not count
    with pytest.raises(InsufficientFunds):
        place_order(ledger, book_engine, too_big, 3)
    assert release_hold(ledger, BTC_USDT, order, 4) == []
    ledger.check()


def test_a_wallet_set_spans_two_accounts_of_two_exchanges_one_account_each(ledger: Ledger) -> None:
    wallet_set, _ = ledger.create_wallet_set("arb", "two exchanges", [(EX, "USDT", atto("300")), (OTHER, "USDT", atto("200"))], 2,
                                             {EX: ALICE, OTHER: ALICE_OTHER})
    assert ledger.set_account(wallet_set.id, EX) == ALICE and ledger.set_account(wallet_set.id, OTHER) == ALICE_OTHER
    assert ledger.unallocated((ALICE,))[(EX, "USDT")].balance == atto("700")
    assert ledger.unallocated((ALICE_OTHER,))[(OTHER, "USDT")].balance == atto("300")
    with pytest.raises(DomainError) as conflict:  # Bob's funds cannot join Alice's on the same exchange of that set
        ledger.allocate_to_wallet_set(wallet_set.id, [(EX, "USDT", atto("10"))], 3, {EX: BOB})
    assert conflict.value.code == "account_conflict"
    assert ledger.wallet(EX, "USDT", None, BOB).balance == atto("1000")
    ledger.allocate_to_wallet_set(wallet_set.id, [(EX, "USDT", -atto("100"))], 4, {EX: ALICE})  # back to Alice's unallocated
    assert ledger.unallocated((ALICE,))[(EX, "USDT")].balance == atto("800")
    lines = ledger.deactivate_wallet_set(wallet_set.id, 5)
    assert {ledger.wallet_by_id(line.wallet_id).account_id for line in lines} == {ALICE, ALICE_OTHER}
    assert ledger.unallocated((ALICE,))[(EX, "USDT")].balance == atto("1000")
    ledger.check()


def test_restore_keeps_each_wallets_account_and_check_catches_a_cross_account_allocation(ledger: Ledger) -> None:
    wallet_set, _ = ledger.create_wallet_set(None, "a", [(EX, "USDT", atto("100"))], 2, {EX: BOB})
    restored = Ledger.replay(ledger.all_wallets(), ledger.wallet_sets(active_only=False), ledger.lines())
    assert restored.unallocated((BOB,)) == ledger.unallocated((BOB,)) and restored.set_account(wallet_set.id, EX) == BOB
    # an allocation line pair whose halves sit in two accounts would move money between users: refused on restore
    from coinwire.core.wallets import LineKind, Wallet, WalletLine

    wallets = ledger.all_wallets() + [Wallet(id=99, exchange=EX, currency="USDT", wallet_set_id=None, account_id=ALICE)]
    lines = ledger.lines() + [WalletLine(id=1000, wallet_id=99, ts=3, kind=LineKind.ALLOCATE, movement=atto("1"))]
    with pytest.raises(LedgerInvariantError):
        Ledger.replay(wallets, ledger.wallet_sets(active_only=False), lines)


def test_who_may_use_an_account() -> None:
    desk = Account(id=7, exchange=EX, kind="paper", name="desk", owner_id=1, created_at=0)
    members = {2: "view", 3: "trade"}
    assert may(desk, members, 1, False, "trade") and may(desk, members, 9, True, "trade")  # owner; admin
    assert may(desk, members, 2, False, "view") and not may(desk, members, 2, False, "trade")
    assert may(desk, members, 3, False, "trade") and not may(desk, members, 4, False, "view")
    assert not may(desk, members, None, False, "view")

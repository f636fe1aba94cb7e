"""Unit tests of the ledger: every command, query and error code of coinwire.core.ledger."""

from __future__ import annotations

import msgspec
import pytest

from coinwire.core.errors import Conflict, DomainError, InsufficientFunds, InvalidInput, NotFound
from coinwire.core.funds import required_hold
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance, HistoryPoint, Ledger, LedgerInvariantError
from coinwire.core.numbers import str_to_atto as atto
from coinwire.core.orders import Fill, Order, OrderType, Side
from coinwire.core.wallets import LineKind, WalletLine
from tests.core.stored_ledger import StoredLedger

EX = "paper"
BTC_USDT = Instrument(
    exchange=EX, symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
    maker_fee=100_000, taker_fee=100_000,
)
ETH_USDT = Instrument(exchange=EX, symbol="ETH/USDT", base="ETH", quote="USDT", price_decimals=2, size_decimals=6)


def new_ledger() -> Ledger:
    return StoredLedger({EX: ["BTC", "USDT", "ETH"], "other": ["USDT"]})


@pytest.fixture
def ledger() -> Ledger:
    """10 BTC and 100000 USDT unallocated on the paper exchange."""
    ledger = new_ledger()
    ledger.add_virtual_tx(EX, "BTC", atto("10"), ts=1)
    ledger.add_virtual_tx(EX, "USDT", atto("100000"), ts=1)
    return ledger


def make_set(ledger: Ledger, usdt: str = "50000", btc: str = "1") -> int:
    allocations = [(EX, "USDT", atto(usdt)), (EX, "BTC", atto(btc))]
    wallet_set, _ = ledger.create_wallet_set("run-1", "Logical Wallet for Run: run-1", allocations, ts=2)
    return wallet_set.id


def buy_fill(price: str, size: str, *, fill_id: int = 1, order_id: int = 1, side: Side = Side.BUY) -> Fill:
    p, s = BTC_USDT.parse_price(price), BTC_USDT.parse_size(size)
    notional = BTC_USDT.notional_atto(p, s)
    return Fill(
        id=fill_id, order_id=order_id, client_oid=f"c{order_id}", exchange=EX, symbol="BTC/USDT", side=side,
        order_type=OrderType.LIMIT, price=p, size=s, notional=notional, fee=BTC_USDT.fee_atto(notional, True),
        maker=True, ts=5,
    )


def unchanged(ledger: Ledger) -> list[WalletLine]:
    return ledger.lines()


# --- construction ---------------------------------------------------------------------------
def test_add_exchange_merges_currencies() -> None:
    ledger = StoredLedger()
    with pytest.raises(NotFound) as err:
        ledger.add_virtual_tx(EX, "BTC", 1, ts=1)
    assert err.value.code == "exchange_not_found"
    ledger.add_exchange(EX, ["BTC"])
    ledger.add_exchange(EX, ["USDT"])
    ledger.add_virtual_tx(EX, "BTC", 1, ts=1)
    ledger.add_virtual_tx(EX, "USDT", 1, ts=1)
    with pytest.raises(NotFound) as err:
        ledger.add_virtual_tx(EX, "ETH", 1, ts=1)
    assert err.value.code == "currency_not_found"


# --- virtual transactions --------------------------------------------------------------------
def test_a_deposit_and_a_withdrawal_move_the_unallocated_wallet() -> None:
    ledger = new_ledger()
    [deposit] = ledger.add_virtual_tx(EX, "BTC", atto("2.5"), ts=10)
    [withdrawal] = ledger.add_virtual_tx(EX, "BTC", -atto("1"), ts=11)
    assert (deposit.kind, deposit.movement, deposit.ts, deposit.id) == (LineKind.VIRTUAL_TX, atto("2.5"), 10, 1)
    assert withdrawal.wallet_id == deposit.wallet_id and withdrawal.movement == -atto("1")
    wallet = ledger.wallet(EX, "BTC")
    assert (wallet.id, wallet.wallet_set_id) == (deposit.wallet_id, None)
    assert (wallet.balance, wallet.available) == (atto("1.5"), atto("1.5"))
    ledger.check()


def test_a_withdrawal_beyond_available_is_refused(ledger: Ledger) -> None:
    make_set(ledger, usdt="99000")
    before = unchanged(ledger)
    with pytest.raises(InsufficientFunds) as err:
        ledger.add_virtual_tx(EX, "USDT", -atto("1000.5"), ts=3)
    assert err.value.code == "insufficient_funds"
    assert err.value.data == {
        "exchange": EX, "currency": "USDT", "wallet_set_id": None, "needed": "1000.5", "available": "1000",
    }
    assert ledger.lines() == before


def test_a_zero_or_non_integer_movement_is_refused() -> None:
    ledger = new_ledger()
    with pytest.raises(InvalidInput) as err:
        ledger.add_virtual_tx(EX, "BTC", 0, ts=1)
    assert err.value.code == "invalid_amount"
    with pytest.raises(TypeError, match="int of ATTO"):
        ledger.add_virtual_tx(EX, "BTC", 1.5, ts=1)  # type: ignore[arg-type]
    assert ledger.lines() == []


# --- wallet sets -----------------------------------------------------------------------------
def test_creating_a_set_moves_each_allocation_out_of_unallocated(ledger: Ledger) -> None:
    allocations = [(EX, "USDT", atto("500")), (EX, "BTC", atto("0.5"))]
    wallet_set, lines = ledger.create_wallet_set("run-1", "for run-1", allocations, ts=7)
    assert (wallet_set.id, wallet_set.run_id, wallet_set.description) == (1, "run-1", "for run-1")
    assert wallet_set.created_at == 7
    assert wallet_set.active and wallet_set.deactivated_at is None
    assert [(line.kind, line.movement) for line in lines] == [
        (LineKind.ALLOCATE, -atto("500")), (LineKind.ALLOCATE, atto("500")),
        (LineKind.ALLOCATE, -atto("0.5")), (LineKind.ALLOCATE, atto("0.5")),
    ]
    assert ledger.wallet(EX, "USDT", 1).balance == atto("500")
    assert ledger.wallet(EX, "USDT").balance == atto("99500")
    assert ledger.wallet(EX, "BTC", 1).balance == atto("0.5")
    assert ledger.wallet_set(1) == wallet_set
    ledger.check()


@pytest.mark.parametrize(
    ("allocations", "message"),
    [
        ([], "at least one allocation"),
        ([("nowhere", "USDT", 1)], "unknown exchange/currency nowhere/USDT"),
        ([(EX, "DOGE", 1)], "unknown exchange/currency paper/DOGE"),
        ([(EX, "USDT", -5)], "must not be negative"),
        ([(EX, "USDT", 1), (EX, "BTC", 1), (EX, "USDT", 2)], "allocated twice"),
        ([(EX, "USDT", 1), ("other", "USDT", -1)], "must not be negative"),
        ([(EX, "USDT", 0), (EX, "USDT", 0)], "allocated twice"),
    ],
)
def test_a_bad_wallet_config_is_refused_whole(
    ledger: Ledger, allocations: list[tuple[str, str, int]], message: str
) -> None:
    before = unchanged(ledger)
    with pytest.raises(DomainError, match=message) as err:
        ledger.create_wallet_set("run", "d", allocations, ts=2)
    assert err.value.code == "bad_wallet_config"
    assert ledger.lines() == before and ledger.wallet_sets(active_only=False) == []


def test_an_allocation_beyond_unallocated_fails_whole_and_names_the_shortfall(ledger: Ledger) -> None:
    before = unchanged(ledger)
    with pytest.raises(InsufficientFunds, match=r"10\.5 BTC needed on paper \(unallocated\), 10 available") as err:
        ledger.create_wallet_set("run", "d", [(EX, "USDT", atto("1")), (EX, "BTC", atto("10.5"))], ts=2)
    assert err.value.data["needed"] == "10.5" and err.value.data["available"] == "10"
    assert err.value.data["currency"] == "BTC" and err.value.data["exchange"] == EX
    assert ledger.lines() == before and ledger.wallet_sets(active_only=False) == []
    assert make_set(ledger) == 1  # the refused set consumed no id


def test_a_zero_allocation_lists_the_currency_with_an_empty_wallet(ledger: Ledger) -> None:
    """The run gets a wallet, empty, ready to receive what it buys: stored, restored and in the set's history."""
    allocations = [(EX, "USDT", atto("500")), (EX, "ETH", 0), ("other", "USDT", 0)]
    wallet_set, lines = ledger.create_wallet_set("run-1", "d", allocations, ts=7)
    assert [(ledger.wallet_by_id(line.wallet_id).wallet_set_id, line.kind, line.movement) for line in lines] == [
        (None, LineKind.ALLOCATE, -atto("500")), (wallet_set.id, LineKind.ALLOCATE, atto("500")),
        (wallet_set.id, LineKind.ALLOCATE, 0), (wallet_set.id, LineKind.ALLOCATE, 0),
    ]
    eth = ledger.wallet(EX, "ETH", wallet_set.id)
    assert eth.id > 0 and (eth.balance, eth.hold) == (0, 0)
    assert {(w.exchange, w.currency) for w in ledger.wallets(wallet_set.id)} == {(EX, "USDT"), (EX, "ETH"), ("other", "USDT")}
    assert ledger.wallet(EX, "ETH").id == 0  # no unallocated ETH wallet was made for it
    assert ledger.wallet("other", "USDT").id == 0
    assert HistoryPoint(7, eth.id, 0, 0, 0) in ledger.history(wallet_set.id)
    ledger.check()
    assert restore_of(ledger).all_wallets() == ledger.all_wallets()
    only_zero, _ = ledger.create_wallet_set("run-2", "d", [(EX, "BTC", 0)], ts=8)  # a set that holds nothing yet
    assert ledger.wallet(EX, "BTC").balance == atto("10")
    assert [w.balance for w in ledger.wallets(only_zero.id)] == [0]
    # the run's buy lands in the empty wallet
    ledger.set_hold(1, EX, "USDT", wallet_set.id, atto("20.02"), ts=9)
    eth_fill = Fill(
        id=1, order_id=1, client_oid="c1", exchange=EX, symbol="ETH/USDT", side=Side.BUY, order_type=OrderType.LIMIT,
        price=ETH_USDT.parse_price("2000"), size=ETH_USDT.parse_size("0.01"), notional=atto("20"), fee=0, maker=True, ts=9,
    )
    ledger.apply_fill(eth_fill, ETH_USDT, wallet_set.id, ts=9, hold_after=0)
    assert ledger.wallet(EX, "ETH", wallet_set.id).id == eth.id
    assert ledger.wallet(EX, "ETH", wallet_set.id).balance == atto("0.01")
    ledger.check()


def test_allocating_to_a_set_moves_funds_in_and_back_out(ledger: Ledger) -> None:
    set_id = make_set(ledger)  # 50000 USDT, 1 BTC
    lines = ledger.allocate_to_wallet_set(set_id, [(EX, "USDT", atto("1000")), (EX, "BTC", -atto("0.25"))], ts=5)
    assert [(ledger.wallet_by_id(line.wallet_id).wallet_set_id, line.kind, line.movement, line.ts) for line in lines] == [
        (None, LineKind.ALLOCATE, -atto("1000"), 5), (set_id, LineKind.ALLOCATE, atto("1000"), 5),
        (set_id, LineKind.ALLOCATE, -atto("0.25"), 5), (None, LineKind.ALLOCATE, atto("0.25"), 5),
    ]
    assert ledger.wallet(EX, "USDT", set_id).balance == atto("51000")
    assert ledger.wallet(EX, "USDT").balance == atto("49000")
    assert ledger.wallet(EX, "BTC", set_id).balance == atto("0.75")
    assert ledger.wallet(EX, "BTC").balance == atto("9.25")
    # a currency the set never held: a new wallet; zero on a wallet it has: nothing
    zero = ledger.allocate_to_wallet_set(set_id, [("other", "USDT", 0), (EX, "BTC", 0), (EX, "ETH", 0)], ts=6)
    assert [(ledger.wallet_by_id(line.wallet_id).currency, line.movement) for line in zero] == [("USDT", 0), ("ETH", 0)]
    assert ledger.wallet("other", "USDT", set_id).id > 0 and ledger.wallet(EX, "ETH", set_id).id > 0
    assert len(ledger.lines()) == 2 + 4 + 4 + 2
    assert ledger.allocate_to_wallet_set(set_id, [(EX, "ETH", 0)], ts=7) == []
    # history shows the movements
    history = ledger.history(set_id)
    assert [(p.ts, p.balance) for p in history if p.wallet_id == ledger.wallet(EX, "USDT", set_id).id] == [
        (2, atto("50000")), (5, atto("51000")),
    ]
    # everything back out: the set keeps its (empty) wallets, and stays active
    ledger.allocate_to_wallet_set(set_id, [(EX, "USDT", -atto("51000")), (EX, "BTC", -atto("0.75"))], ts=8)
    assert all(w.balance == 0 for w in ledger.wallets(set_id)) and ledger.wallet_set(set_id).active
    assert ledger.wallet(EX, "USDT").balance == atto("100000") and ledger.wallet(EX, "BTC").balance == atto("10")
    ledger.check()
    restored = restore_of(ledger)
    assert restored.all_wallets() == ledger.all_wallets() and restored.totals().wallets == ledger.totals().wallets


def test_a_withdrawal_from_a_set_leaves_what_open_orders_hold(ledger: Ledger) -> None:
    set_id = make_set(ledger)  # 50000 USDT, 1 BTC
    ledger.set_hold(1, EX, "BTC", set_id, atto("0.4"), ts=3)
    before = unchanged(ledger)
    with pytest.raises(InsufficientFunds, match=rf"0\.7 BTC needed on paper \(wallet set {set_id}\), 0\.6 available") as err:
        ledger.allocate_to_wallet_set(set_id, [(EX, "USDT", -atto("1")), (EX, "BTC", -atto("0.7"))], ts=4)
    assert err.value.data["wallet_set_id"] == set_id
    assert ledger.lines() == before  # all or nothing: the USDT withdrawal did not happen either
    ledger.allocate_to_wallet_set(set_id, [(EX, "BTC", -atto("0.6"))], ts=5)
    assert ledger.wallet(EX, "BTC", set_id).available == 0 and ledger.wallet(EX, "BTC", set_id).hold == atto("0.4")
    ledger.check()


@pytest.mark.parametrize(
    ("allocations", "code", "message"),
    [
        ([], "bad_wallet_config", "at least one wallet"),
        ([("nowhere", "USDT", 1)], "bad_wallet_config", "unknown exchange/currency nowhere/USDT"),
        ([(EX, "DOGE", 1)], "bad_wallet_config", "unknown exchange/currency paper/DOGE"),
        ([(EX, "USDT", 1), (EX, "BTC", -1), (EX, "USDT", -1)], "bad_wallet_config", "allocated twice"),
        ([(EX, "BTC", 1), (EX, "USDT", atto("50001"))], "insufficient_funds", "USDT needed on paper \\(unallocated\\)"),
        ([(EX, "BTC", 1), (EX, "USDT", -atto("50001"))], "insufficient_funds", "USDT needed on paper \\(wallet set 1\\)"),
        ([(EX, "BTC", 1), (EX, "ETH", -1)], "insufficient_funds", "ETH needed on paper \\(wallet set 1\\), 0 available"),
    ],
)
def test_a_bad_allocation_to_a_set_is_refused_whole(
    ledger: Ledger, allocations: list[tuple[str, str, int]], code: str, message: str
) -> None:
    ledger.add_virtual_tx(EX, "USDT", -atto("50000"), ts=1)  # 50000 USDT left unallocated
    set_id = make_set(ledger)  # takes it all, and 1 BTC
    before, wallets = unchanged(ledger), ledger.all_wallets()
    with pytest.raises(DomainError, match=message) as err:
        ledger.allocate_to_wallet_set(set_id, allocations, ts=3)
    assert err.value.code == code
    assert ledger.lines() == before and ledger.all_wallets() == wallets


def test_allocating_to_an_unknown_or_inactive_set_is_refused(ledger: Ledger) -> None:
    with pytest.raises(NotFound) as not_found:
        ledger.allocate_to_wallet_set(99, [(EX, "USDT", 1)], ts=3)
    assert not_found.value.code == "wallet_set_not_found"
    set_id = make_set(ledger)
    ledger.deactivate_wallet_set(set_id, ts=4)
    before = unchanged(ledger)
    with pytest.raises(Conflict) as inactive:
        ledger.allocate_to_wallet_set(set_id, [(EX, "USDT", 1)], ts=5)
    assert inactive.value.code == "wallet_set_inactive" and ledger.lines() == before
    with pytest.raises(TypeError, match="int of ATTO"):
        ledger.allocate_to_wallet_set(make_set(ledger), [(EX, "USDT", 1.5)], ts=6)  # type: ignore[list-item]


def test_deactivating_returns_every_balance_and_closes_the_set(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    ledger.set_hold(1, EX, "USDT", set_id, atto("30030"), ts=3)
    ledger.apply_fill(buy_fill("30000", "1"), BTC_USDT, set_id, ts=4, hold_after=0)  # now 2 BTC, 19970 USDT
    lines = ledger.deactivate_wallet_set(set_id, ts=9)
    assert [(ledger.wallet_by_id(line.wallet_id).wallet_set_id, line.movement) for line in lines] == [
        (set_id, -atto("19970")), (None, atto("19970")), (set_id, -atto("2")), (None, atto("2")),
    ]
    assert all(line.kind is LineKind.ALLOCATE and line.ts == 9 for line in lines)
    closed = ledger.wallet_set(set_id)
    assert (closed.active, closed.deactivated_at) == (False, 9)
    assert ledger.wallet_sets() == [] and ledger.wallet_sets(active_only=False) == [closed]
    assert ledger.wallet(EX, "BTC").balance == atto("11")
    assert ledger.wallet(EX, "USDT").balance == atto("69970")
    ledger.check()


def test_deactivation_errors(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    with pytest.raises(NotFound) as not_found:
        ledger.deactivate_wallet_set(99, ts=3)
    assert not_found.value.code == "wallet_set_not_found"
    ledger.set_hold(1, EX, "BTC", set_id, atto("0.1"), ts=3)
    with pytest.raises(Conflict) as busy:
        ledger.deactivate_wallet_set(set_id, ts=4)
    assert busy.value.code == "wallet_set_busy"
    ledger.set_hold(1, EX, "BTC", set_id, 0, ts=5)
    ledger.deactivate_wallet_set(set_id, ts=6)
    with pytest.raises(Conflict) as inactive:
        ledger.deactivate_wallet_set(set_id, ts=7)
    assert inactive.value.code == "wallet_set_inactive"


# --- holds -----------------------------------------------------------------------------------
def test_set_hold_writes_the_delta_and_releases_at_zero(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    [placed] = ledger.set_hold(5, EX, "USDT", set_id, atto("100"), ts=3)
    assert (placed.kind, placed.hold, placed.movement, placed.order_id) == (LineKind.HOLD, atto("100"), 0, 5)
    assert ledger.set_hold(5, EX, "USDT", set_id, atto("100"), ts=4) == []
    [lowered] = ledger.set_hold(5, EX, "USDT", set_id, atto("40"), ts=4)
    assert lowered.hold == -atto("60") and ledger.hold_of(5) == atto("40")
    wallet = ledger.wallet(EX, "USDT", set_id)
    assert (wallet.balance, wallet.hold, wallet.available) == (atto("50000"), atto("40"), atto("49960"))
    assert ledger.holds() == {5: atto("40")}
    [released] = ledger.set_hold(5, EX, "USDT", set_id, 0, ts=5)
    assert released.hold == -atto("40")
    assert ledger.hold_of(5) == 0 and ledger.holds() == {}
    ledger.check()


def test_a_hold_beyond_the_partition_is_refused(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    ledger.set_hold(1, EX, "USDT", set_id, atto("49000"), ts=3)
    before = unchanged(ledger)
    with pytest.raises(InsufficientFunds) as err:
        ledger.set_hold(2, EX, "USDT", set_id, atto("1000.01"), ts=4)
    assert err.value.data["available"] == "1000" and err.value.data["wallet_set_id"] == set_id
    with pytest.raises(InsufficientFunds):  # raising an existing hold checks only the increase
        ledger.set_hold(1, EX, "USDT", set_id, atto("50000.01"), ts=4)
    assert ledger.lines() == before
    ledger.set_hold(1, EX, "USDT", set_id, atto("50000"), ts=4)  # the set's own funds, not unallocated
    assert ledger.wallet(EX, "USDT").hold == 0


def test_set_hold_errors(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    with pytest.raises(InvalidInput) as negative:
        ledger.set_hold(1, EX, "USDT", set_id, -1, ts=3)
    assert negative.value.code == "invalid_amount"
    with pytest.raises(NotFound) as unknown:
        ledger.set_hold(1, EX, "USDT", 42, 0, ts=3)
    assert unknown.value.code == "wallet_set_not_found"
    ledger.set_hold(1, EX, "USDT", set_id, 1, ts=3)
    with pytest.raises(LedgerInvariantError, match="already holds"):
        ledger.set_hold(1, EX, "BTC", set_id, 1, ts=3)
    ledger.set_hold(1, EX, "USDT", set_id, 0, ts=3)
    ledger.set_hold(1, EX, "BTC", None, 1, ts=3)  # released, so the order may hold elsewhere
    ledger.set_hold(1, EX, "BTC", None, 0, ts=3)
    ledger.deactivate_wallet_set(set_id, ts=4)
    with pytest.raises(Conflict) as inactive:
        ledger.set_hold(2, EX, "USDT", set_id, 1, ts=5)
    assert inactive.value.code == "wallet_set_inactive"


# --- fills -----------------------------------------------------------------------------------
def test_a_buy_fill_trades_base_for_quote_and_pays_the_fee(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    order = Order(id=1, client_oid="c1", exchange=EX, symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                  size=BTC_USDT.parse_size("1"), limit=BTC_USDT.parse_price("30000"), wallet_set_id=set_id)
    currency, amount = required_hold(BTC_USDT, order)
    ledger.set_hold(order.id, EX, currency, set_id, amount, ts=3)
    fill = buy_fill("29000", "0.4")
    order.record_fill(fill.price, fill.size, fill.notional, fill.fee, ts=4)
    ledger.set_hold(order.id, EX, currency, set_id, required_hold(BTC_USDT, order)[1], ts=4)
    lines = ledger.apply_fill(fill, BTC_USDT, set_id, ts=4)
    assert [(line.kind, ledger.wallet_by_id(line.wallet_id).currency, line.movement) for line in lines] == [
        (LineKind.TRADE, "BTC", atto("0.4")),
        (LineKind.TRADE, "USDT", -atto("11600")),
        (LineKind.FEE, "USDT", -atto("11.6")),
    ]
    assert all((line.order_id, line.fill_id) == (1, 1) for line in lines)
    usdt = ledger.wallet(EX, "USDT", set_id)
    assert (usdt.balance, usdt.hold) == (atto("38388.4"), atto("18018"))  # 0.6 x 30000 x 1.001
    assert ledger.wallet(EX, "BTC", set_id).balance == atto("1.4")
    ledger.check()


def test_a_sell_fill_on_unallocated_with_hold_after(ledger: Ledger) -> None:
    ledger.set_hold(3, EX, "BTC", None, atto("2"), ts=3)
    fill = buy_fill("30000", "0.5", order_id=3, side=Side.SELL)
    lines = ledger.apply_fill(fill, BTC_USDT, None, ts=4, hold_after=atto("1.5"))
    assert [(line.kind, line.hold, line.movement) for line in lines] == [
        (LineKind.HOLD, -atto("0.5"), 0), (LineKind.TRADE, 0, -atto("0.5")),
        (LineKind.TRADE, 0, atto("15000")), (LineKind.FEE, 0, -atto("15")),
    ]
    assert ledger.hold_of(3) == atto("1.5")
    assert ledger.wallet(EX, "BTC").balance == atto("9.5")
    assert ledger.wallet(EX, "USDT").balance == atto("114985")
    ledger.check()


def test_a_fill_creates_the_wallet_of_a_currency_the_set_never_held(ledger: Ledger) -> None:
    wallet_set, _ = ledger.create_wallet_set("r", "d", [(EX, "USDT", atto("40000"))], ts=2)
    set_id = wallet_set.id
    assert ledger.wallet(EX, "BTC", set_id).id == 0  # never held anything yet
    ledger.set_hold(1, EX, "USDT", set_id, atto("30030"), ts=3)
    [_, trade, *_] = ledger.apply_fill(buy_fill("30000", "1"), BTC_USDT, set_id, ts=4, hold_after=0)
    btc = ledger.wallet(EX, "BTC", set_id)
    assert btc.id == trade.wallet_id > 0 and btc.balance == atto("1")
    assert [w.currency for w in ledger.wallets(set_id)] == ["USDT", "BTC"]


def test_settling_before_lowering_the_hold_is_refused_when_funds_are_tight(ledger: Ledger) -> None:
    set_id = make_set(ledger, usdt="30030")
    ledger.set_hold(1, EX, "USDT", set_id, atto("30030"), ts=3)
    before = unchanged(ledger)
    with pytest.raises(LedgerInvariantError, match="lower the order's hold first"):
        ledger.apply_fill(buy_fill("30000", "1"), BTC_USDT, set_id, ts=4)
    assert ledger.lines() == before
    ledger.set_hold(1, EX, "USDT", set_id, 0, ts=4)
    ledger.apply_fill(buy_fill("30000", "1"), BTC_USDT, set_id, ts=4)
    assert ledger.wallet(EX, "USDT", set_id).balance == 0
    ledger.check()


def test_fill_errors(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    with pytest.raises(NotFound) as unknown:
        ledger.apply_fill(buy_fill("1", "1"), BTC_USDT, 77, ts=4)
    assert unknown.value.code == "wallet_set_not_found"
    with pytest.raises(ValueError, match="not ETH/USDT"):
        ledger.apply_fill(buy_fill("1", "1"), ETH_USDT, set_id, ts=4)
    foreign = msgspec.structs.replace(BTC_USDT, exchange="other")
    with pytest.raises(NotFound) as currency:
        ledger.apply_fill(msgspec.structs.replace(buy_fill("1", "1"), exchange="other"), foreign, None, ts=4)
    assert currency.value.code == "currency_not_found"
    ledger.deactivate_wallet_set(set_id, ts=5)
    with pytest.raises(Conflict) as inactive:
        ledger.apply_fill(buy_fill("1", "1"), BTC_USDT, set_id, ts=6)
    assert inactive.value.code == "wallet_set_inactive"


# --- queries ---------------------------------------------------------------------------------
def test_aggregates_split_totals_into_allocated_and_unallocated(ledger: Ledger) -> None:
    ledger.add_virtual_tx("other", "USDT", atto("7"), ts=1)
    set_id = make_set(ledger)
    ledger.set_hold(1, EX, "USDT", set_id, atto("10"), ts=3)
    ledger.set_hold(2, EX, "BTC", None, atto("1"), ts=3)
    assert ledger.allocated() == {(EX, "BTC"): Balance(atto("1")), (EX, "USDT"): Balance(atto("50000"), atto("10"))}
    assert ledger.unallocated() == {
        (EX, "BTC"): Balance(atto("9"), atto("1")),
        (EX, "USDT"): Balance(atto("50000")),
        ("other", "USDT"): Balance(atto("7")),
    }
    assert ledger.exchange_totals() == {
        (EX, "BTC"): Balance(atto("10"), atto("1")), (EX, "USDT"): Balance(atto("100000"), atto("10")),
        ("other", "USDT"): Balance(atto("7")),
    }
    assert ledger.unallocated_per_exchange() == {
        EX: {"BTC": Balance(atto("9"), atto("1")), "USDT": Balance(atto("50000"))},
        "other": {"USDT": Balance(atto("7"))},
    }
    assert Balance(5, 2).available == 3


def test_wallet_queries_and_their_errors(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    with pytest.raises(NotFound) as no_set:
        ledger.wallet(EX, "USDT", 9)
    assert no_set.value.code == "wallet_set_not_found"
    with pytest.raises(NotFound) as no_wallet:
        ledger.wallet_by_id(999)
    assert no_wallet.value.code == "wallet_not_found"
    with pytest.raises(NotFound):
        ledger.wallets(9)
    with pytest.raises(NotFound):
        ledger.wallet_set(9)
    assert [w.currency for w in ledger.wallets()] == ["BTC", "USDT"]
    assert [(w.currency, w.balance) for w in ledger.wallets(set_id)] == [("USDT", atto("50000")), ("BTC", atto("1"))]
    eth = ledger.wallet(EX, "ETH", set_id)
    assert (eth.id, eth.balance, eth.wallet_set_id) == (0, 0, set_id)


def test_queries_return_copies(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    ledger.wallet(EX, "BTC").balance = 0
    ledger.wallets()[0].hold = 5
    ledger.all_wallets()[0].balance = 0
    ledger.wallet_set(set_id).active = False
    ledger.wallet_sets()[0].active = False
    assert ledger.wallet(EX, "BTC").balance == atto("9") and ledger.wallet_set(set_id).active
    ledger.check()


def test_history_gives_each_wallet_after_each_line(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    usdt, btc = (ledger.wallet(EX, c, set_id).id for c in ("USDT", "BTC"))
    ledger.set_hold(1, EX, "USDT", set_id, atto("30"), ts=3)
    ledger.apply_fill(buy_fill("10", "1"), BTC_USDT, set_id, ts=4, hold_after=0)
    assert ledger.history(set_id) == [
        HistoryPoint(2, usdt, atto("50000"), atto("50000"), 0),
        HistoryPoint(2, btc, atto("1"), atto("1"), 0),
        HistoryPoint(3, usdt, atto("50000"), atto("49970"), atto("30")),
        HistoryPoint(4, usdt, atto("50000"), atto("50000"), 0),
        HistoryPoint(4, btc, atto("2"), atto("2"), 0),
        HistoryPoint(4, usdt, atto("49990"), atto("49990"), 0),
        HistoryPoint(4, usdt, atto("49989.99"), atto("49989.99"), 0),
    ]
    assert [point.balance for point in ledger.history(None)][:2] == [atto("10"), atto("100000")]
    with pytest.raises(NotFound):
        ledger.history(5)


# --- check and restore -----------------------------------------------------------------------
def test_check_catches_books_that_do_not_balance(ledger: Ledger) -> None:
    ledger.check()
    totals = ledger.totals()
    totals.wallets[1][0] -= atto("11")  # a store whose lines say less than the wallet has held
    with pytest.raises(LedgerInvariantError, match="available"):
        Ledger.restore(ledger.all_wallets(), [], totals)
    totals = ledger.totals()
    totals.wallets[1][2] += 1  # an allocation line without its pair
    with pytest.raises(LedgerInvariantError, match="allocation lines do not cancel"):
        Ledger.restore(ledger.all_wallets(), [], totals)
    totals = ledger.totals()
    totals.wallets[1][1] += 1  # a hold no order holds
    with pytest.raises(LedgerInvariantError, match="but orders hold"):
        Ledger.restore(ledger.all_wallets(), [], totals)


def restore_of(ledger: Ledger) -> Ledger:
    return Ledger.replay(ledger.all_wallets(), ledger.wallet_sets(active_only=False), ledger.lines(), {EX: ["ETH"]})


def test_restore_rebuilds_balances_holds_and_sets(ledger: Ledger) -> None:
    set_id = make_set(ledger)
    ledger.set_hold(1, EX, "USDT", set_id, atto("30"), ts=3)
    ledger.set_hold(2, EX, "BTC", None, atto("0.5"), ts=3)
    ledger.apply_fill(buy_fill("10", "1", order_id=1), BTC_USDT, set_id, ts=4, hold_after=atto("10"))
    second, _ = ledger.create_wallet_set("r2", "d", [(EX, "BTC", atto("1"))], ts=5)
    ledger.deactivate_wallet_set(second.id, ts=6)
    restored = restore_of(ledger)
    assert restored.all_wallets() == ledger.all_wallets()
    assert restored.wallet_sets(active_only=False) == ledger.wallet_sets(active_only=False)
    assert restored.holds() == ledger.holds() == {1: atto("10"), 2: atto("0.5")}
    assert restored.totals().wallets == ledger.totals().wallets
    # ids continue after the restored ones
    [line] = restored.add_virtual_tx(EX, "ETH", 1, ts=7)
    assert line.id == len(ledger.lines()) + 1 and line.wallet_id == len(ledger.all_wallets()) + 1
    assert restored.create_wallet_set("r3", "d", [(EX, "ETH", 1)], ts=8)[0].id == 3


def test_restore_ignores_stored_balances_and_learns_currencies(ledger: Ledger) -> None:
    stale = [msgspec.structs.replace(w, balance=0, hold=123) for w in ledger.all_wallets()]
    restored = Ledger.replay(stale, [], ledger.lines())
    assert restored.all_wallets() == ledger.all_wallets()
    restored.add_virtual_tx(EX, "USDT", 1, ts=2)  # known from its stored wallet


def test_restore_refuses_records_that_do_not_balance(ledger: Ledger) -> None:
    wallets, lines = ledger.all_wallets(), ledger.lines()
    orphan = WalletLine(id=99, wallet_id=42, ts=1, kind=LineKind.VIRTUAL_TX, movement=1)
    with pytest.raises(LedgerInvariantError, match=r"unknown wallets \[42\]"):
        Ledger.replay(wallets, [], [*lines, orphan])
    overdrawn = WalletLine(id=99, wallet_id=1, ts=1, kind=LineKind.VIRTUAL_TX, movement=-atto("11"))
    with pytest.raises(LedgerInvariantError, match="available"):
        Ledger.replay(wallets, [], [*lines, overdrawn])
    anonymous_hold = WalletLine(id=99, wallet_id=1, ts=1, kind=LineKind.HOLD, hold=1)
    with pytest.raises(LedgerInvariantError, match="a hold line"):
        Ledger.replay(wallets, [], [*lines, anonymous_hold])
    with pytest.raises(LedgerInvariantError, match="unknown wallet set 3"):
        Ledger.replay([msgspec.structs.replace(wallets[0], wallet_set_id=3)], [], [])
    with pytest.raises(LedgerInvariantError, match="stored twice"):
        Ledger.replay([wallets[0], wallets[0]], [], [])


def test_revert_takes_back_a_refused_commands_lines_and_leaves_later_ones(ledger: Ledger) -> None:
    """A command whose commit was refused is taken back alone: holds, fills, a new set and its wallets go; others stay."""
    before = {w.id: (w.balance, w.hold) for w in ledger.all_wallets()}
    allocations = [(EX, "USDT", atto("5000")), (EX, "BTC", atto("1"))]
    refused_set, set_lines = ledger.create_wallet_set("run-x", "refused", allocations, ts=2)
    order = Order(id=1, client_oid="c1", exchange=EX, symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                  size=BTC_USDT.parse_size("1"), limit=BTC_USDT.parse_price("30000"))
    refused = ledger.set_hold(order.id, EX, "USDT", None, required_hold(BTC_USDT, order)[1], ts=3)
    fill = buy_fill("29000", "0.4")
    order.record_fill(fill.price, fill.size, fill.notional, fill.fee, ts=4)
    refused += ledger.apply_fill(fill, BTC_USDT, None, ts=4, hold_after=0)  # filled, then its hold released
    later = ledger.set_hold(2, EX, "BTC", None, atto("2"), ts=5)  # someone else's command, committed
    ledger.revert(refused)
    ledger.revert(set_lines, refused_set.id)
    ledger.check()
    assert ledger.holds() == {2: atto("2")}
    assert [s.id for s in ledger.wallet_sets(active_only=False)] == []
    after = {w.id: (w.balance, w.hold) for w in ledger.all_wallets()}
    btc = ledger.wallet(EX, "BTC").id
    assert after == {**before, btc: (before[btc][0], atto("2"))}
    assert ledger.lines()[-1] is later[0]

"""The client_oid filter never forgets a key, keeps per-owner key spaces apart, survives a round trip through bytes, and
answers "maybe" for few keys it never saw; the line totals fold lines as the ledger applies them."""

from __future__ import annotations

import pytest

from coinwire.core.key_filter import KeyFilter
from coinwire.core.line_totals import LineTotals, TotalsError
from coinwire.core.wallets import LineKind, WalletLine


def test_every_added_key_is_found_and_few_others_are() -> None:
    keys = KeyFilter(64 * 1024)  # 524,288 bits for 20,000 keys: ~0.1% false "maybe"s at 7 hashes
    for i in range(20_000):
        keys.add(i % 7 or None, f"oid-{i}")
    assert all(keys.may_contain(i % 7 or None, f"oid-{i}") for i in range(20_000))
    false_maybes = sum(keys.may_contain(i % 7 or None, f"new-{i}") for i in range(20_000))
    assert false_maybes < 100
    restored = KeyFilter(64 * 1024, keys.to_bytes())
    assert all(restored.may_contain(i % 7 or None, f"oid-{i}") for i in range(0, 20_000, 97))
    with pytest.raises(ValueError, match="not 1024"):
        KeyFilter(1024, keys.to_bytes())


def test_owners_have_their_own_key_spaces() -> None:
    keys = KeyFilter(4096)
    keys.add(7, "shared")
    assert keys.may_contain(7, "shared")
    assert not keys.may_contain(8, "shared") and not keys.may_contain(None, "shared")


def test_line_totals_fold_in_id_order_and_refuse_what_a_ledger_would() -> None:
    totals = LineTotals().add_lines([
        WalletLine(id=2, wallet_id=1, ts=0, kind=LineKind.HOLD, hold=5, order_id=9),
        WalletLine(id=1, wallet_id=1, ts=0, kind=LineKind.VIRTUAL_TX, movement=10),
        WalletLine(id=3, wallet_id=2, ts=0, kind=LineKind.ALLOCATE, movement=4),
    ])
    assert totals.wallets == {1: [10, 5, 0], 2: [4, 0, 4]} and totals.holds == {9: (1, 5)} and totals.last_line_id == 3
    totals.add(4, 1, LineKind.HOLD.value, 0, -5, 9)
    assert totals.holds == {} and totals.balance(1) == (10, 0, 0) and totals.balance(3) == (0, 0, 0)
    with pytest.raises(TotalsError, match="folded once each"):
        totals.add(4, 1, LineKind.VIRTUAL_TX.value, 1, 0, None)
    totals.add(5, 1, LineKind.HOLD.value, 0, 1, 10)
    with pytest.raises(TotalsError, match="already holds"):
        totals.add(6, 2, LineKind.HOLD.value, 0, 1, 10)
    with pytest.raises(TotalsError, match="a trade line holds"):
        totals.add(7, 2, LineKind.TRADE.value, 0, 1, 10)


def test_line_totals_keep_the_ids_they_skipped_and_fold_each_once_when_it_comes() -> None:
    """A line stored after a higher one (change sets committed out of id order) folds late, once; the last id stays."""
    totals = LineTotals().add_lines([
        WalletLine(id=1, wallet_id=1, ts=0, kind=LineKind.VIRTUAL_TX, movement=10),
        WalletLine(id=4, wallet_id=1, ts=0, kind=LineKind.HOLD, hold=-5, order_id=9),  # releases what 2 holds
    ])
    assert totals.gaps == {2, 3} and totals.last_line_id == 4 and totals.holds == {9: (1, -5)}
    totals.add(2, 1, LineKind.HOLD.value, 0, 5, 9)
    assert totals.gaps == {3} and totals.last_line_id == 4 and totals.holds == {} and totals.balance(1) == (10, 0, 0)
    with pytest.raises(TotalsError, match="folded once each"):
        totals.add(2, 1, LineKind.HOLD.value, 0, 5, 9)
    totals.add(6, 1, LineKind.VIRTUAL_TX.value, 1, 0, None)
    assert totals.gaps == {3, 5} and totals.last_line_id == 6 and totals.balance(1) == (11, 0, 0)

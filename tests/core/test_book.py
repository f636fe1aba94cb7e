"""L2Book: level updates, snapshot loads, queries, and a property test of its invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.book import L2Book
from coinwire.core.orders import Side


def make_book() -> L2Book:
    book = L2Book()
    book.load([(100, 5), (98, 7), (99, 0)], [(101, 3), (105, 9)])
    return book


def test_load_ignores_zero_sizes_and_sorts_best_first() -> None:
    book = make_book()
    assert book.levels(Side.BUY) == [(100, 5), (98, 7)]
    assert book.levels(Side.SELL) == [(101, 3), (105, 9)]
    assert (book.best_bid(), book.best_ask()) == (100, 101)
    assert book.depth(Side.BUY) == 2 and book.depth(Side.SELL) == 2


def test_apply_sets_changes_and_removes_levels() -> None:
    book = make_book()
    book.apply([(99, 4), (100, 0), (97, 0)], [(101, 8), (103, 1)])
    assert book.levels(Side.BUY) == [(99, 4), (98, 7)]
    assert book.levels(Side.SELL) == [(101, 8), (103, 1), (105, 9)]
    assert book.size_at(Side.BUY, 100) == 0
    assert book.size_at(Side.SELL, 103) == 1


def test_set_level_dispatches_by_side() -> None:
    book = make_book()
    book.set_level(Side.BUY, 100, 6)
    book.set_level(Side.SELL, 101, 0)
    assert book.best_bid() == 100 and book.bids[100] == 6
    assert book.best_ask() == 105


def test_depth_limited_levels_prices_and_iter_prices() -> None:
    book = make_book()
    assert book.levels(Side.BUY, 1) == [(100, 5)]
    assert book.levels(Side.SELL, 5) == [(101, 3), (105, 9)]
    prices = book.prices(Side.BUY)
    prices.append(1)  # a fresh list: the book is unaffected
    assert book.prices(Side.BUY) == [100, 98]
    assert list(book.iter_prices(Side.SELL)) == [101, 105]


def test_empty_book_and_clear() -> None:
    book = make_book()
    book.clear()
    assert book.best_bid() is None and book.best_ask() is None
    assert not book.is_crossed()
    assert book.levels(Side.BUY) == [] and book.depth(Side.SELL) == 0


def test_is_crossed_detects_touching_and_crossing_books() -> None:
    book = make_book()
    assert not book.is_crossed()
    book.set_bid(101, 1)  # bid equals the best ask
    assert book.is_crossed()
    book.set_bid(101, 0)
    book.set_ask(99, 2)  # ask below the best bid
    assert book.is_crossed()


def test_load_replaces_the_previous_book() -> None:
    book = make_book()
    book.load([(50, 1)], [(60, 2)])
    assert book.levels(Side.BUY) == [(50, 1)] and book.levels(Side.SELL) == [(60, 2)]


# An update is (is_bid, price, size), size 0 removing the level. Bid and ask prices share one
# narrow range, so levels keep changing sides over a sequence; an update that would cross
# the book (by the model's account) is skipped, which is what "each keeps bids < asks" means.
_update = st.tuples(st.booleans(), st.integers(1, 40), st.integers(0, 3))


def _keeps_uncrossed(model: dict[bool, dict[int, int]], is_bid: bool, price: int, size: int) -> bool:
    if size == 0:
        return True
    if is_bid:
        return not model[False] or price < min(model[False])
    return not model[True] or price > max(model[True])


@settings(max_examples=200, deadline=None)
@given(st.lists(_update, max_size=300), st.integers(1, 4))
def test_book_stays_consistent_under_any_uncrossed_updates(updates: list[tuple[bool, int, int]], batch: int) -> None:
    book = L2Book()
    model: dict[bool, dict[int, int]] = {True: {}, False: {}}
    pending: list[tuple[bool, int, int]] = []
    for is_bid, price, size in updates:
        if not _keeps_uncrossed(model, is_bid, price, size):
            continue
        pending.append((is_bid, price, size))
        if size:
            model[is_bid][price] = size
        else:
            model[is_bid].pop(price, None)
        if len(pending) < batch:
            continue
        book.apply([(p, s) for b, p, s in pending if b], [(p, s) for b, p, s in pending if not b])
        pending.clear()
        bids, asks = book.levels(Side.BUY), book.levels(Side.SELL)
        assert bids == sorted(model[True].items(), reverse=True)
        assert asks == sorted(model[False].items())
        assert book.bids == model[True] and book.asks == model[False]
        assert book.prices(Side.BUY) == [p for p, _ in bids]
        assert book.prices(Side.SELL) == [p for p, _ in asks]
        assert book.best_bid() == (max(model[True]) if model[True] else None)
        assert book.best_ask() == (min(model[False]) if model[False] else None)
        assert not book.is_crossed()
        assert book.depth(Side.BUY) == len(model[True]) and book.depth(Side.SELL) == len(model[False])

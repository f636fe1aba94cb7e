"""What every portfolio (account, wallet set, run, user total) holds right now, and the prices that value it in a currency.

Why one pass over the ledger for all portfolios: a single account's balances are an
aggregate over every wallet (`Ledger.exchange_totals`), so asking per portfolio would cost
N wallets N times; one walk over the wallets and the open positions groups them all at once.

What counts, per portfolio: every wallet's balance (held funds included: an order's hold or
a position's margin is still the owner's money) per currency, plus each open perpetual
position's unrealised PnL at its mark in the settle currency (core.positions.unrealised_pnl):
together, what the portfolio would hold if every position closed at the mark. Amounts stay
integers of ATTO here; valuation in a display currency is `PriceTable.value`.

Prices: the mid of each spot market the gateway mirrors (last trade where the book is empty),
then every rate `MarketData.convert` trusts (tickers, FX, coin reference data, pegs), routed by
core.conversion (fewest steps, freshest). An asset whose route went missing (a book emptied, a
ticker too old) keeps the last price found for it in that currency. One without a price yet that
a mirrored market trades (a book not filled at start), or that is held on a mirrored exchange
whose markets are not listed yet (a restart's first minute), is `pending`: the portfolio waits for it
(`Unpriced`), so a value is never drawn without it. One that nothing here trades and no rate
prices (GBP with no FX source) would never be priced: it is left out of the value and named in
`unpriced`, as the wallet views leave it out of a balance's worth, so a user's whole total does
not stop following the market because of it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Final

from coinwire.core.conversion import Rate, best_route, convert
from coinwire.core.errors import NotFound
from coinwire.core.instruments import SPOT
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.portfolio import price_units, value_from_int, value_units
from coinwire.core.positions import unrealised_pnl
from coinwire.services.gateway import Gateway

__all__ = ["Holdings", "PortfolioKey", "PriceTable", "book_rates", "holdings_now", "traded_currencies"]

PortfolioKey = tuple[str, str]  # (scope, scope_id)
_TWO: Final = Decimal(2)


class Holdings:
    """Per portfolio: ATTO per currency, and the portfolio's owner (None: made before users existed)."""

    __slots__ = ("amounts", "owners")

    def __init__(self) -> None:
        self.amounts: dict[PortfolioKey, dict[str, int]] = {}
        self.owners: dict[PortfolioKey, int | None] = {}

    def add(self, key: PortfolioKey, owner: int | None, currency: str, atto: int) -> None:
        held = self.amounts.get(key)
        if held is None:
            held = self.amounts[key] = {}
            self.owners[key] = owner
        held[currency] = held.get(currency, 0) + atto

    def assets(self) -> set[str]:
        return {currency for held in self.amounts.values() for currency, atto in held.items() if atto}


def holdings_now(gateway: Gateway) -> Holdings:
    """Every active account, active wallet set, run (its active wallet sets) and user (the accounts they own).

    An account's amounts count in its own portfolio and its owner's total (an account a user was
    granted is its owner's, not theirs); a wallet set's also in the set's and its run's.
    """
    out = Holdings()
    amounts, owners = out.amounts, out.owners
    # per account: the portfolios its amounts count in; per set: the same for its partitions
    targets: dict[int, list[dict[str, int]]] = {}
    for account in gateway.accounts.accounts.values():
        if not account.active:
            continue
        owner = account.owner_id
        key = ("account", str(account.id))
        held: list[dict[str, int]] = [amounts.setdefault(key, {})]  # an account holding nothing yet is worth 0
        owners[key] = owner
        if owner is not None:
            user = ("user", str(owner))
            held.append(amounts.setdefault(user, {}))
            owners[user] = owner
        targets[account.id] = held
    set_targets: dict[tuple[int, int], list[dict[str, int]]] = {}
    sets = {s.id: s for s in gateway.ledger.wallet_sets(active_only=True)}

    def of_set(account_id: int, set_id: int) -> list[dict[str, int]]:
        found = set_targets.get((account_id, set_id))
        if found is None:
            base = targets.get(account_id)
            found = list(base) if base is not None else []
            wallet_set = sets.get(set_id)
            if base is not None and wallet_set is not None:
                owner = owners[("account", str(account_id))]
                for key in (("wallet_set", str(set_id)), ("run", wallet_set.run_id) if wallet_set.run_id else None):
                    if key is not None:
                        found.append(amounts.setdefault(key, {}))
                        owners.setdefault(key, owner)
            set_targets[(account_id, set_id)] = found
        return found

    def count(account_id: int, set_id: int | None, currency: str, atto: int) -> None:
        for held in targets.get(account_id, ()) if set_id is None else of_set(account_id, set_id):
            held[currency] = held.get(currency, 0) + atto

    no_targets: list[dict[str, int]] = []
    for wallet in gateway.ledger.all_wallets():
        atto = wallet.balance
        if atto:  # `count` inlined: a call a wallet (200,000 at a boundary) was 0.3 s under cProfile
            set_id = wallet.wallet_set_id
            currency = wallet.currency
            for into in targets.get(wallet.account_id, no_targets) if set_id is None else of_set(wallet.account_id, set_id):
                into[currency] = into.get(currency, 0) + atto
    for pos in gateway.ledger.positions.all():
        if not pos.size:
            continue
        venue = gateway.venues.get(pos.exchange)
        market = venue.market(pos.symbol) if venue is not None else None
        if venue is None or market is None:
            continue
        inst = market.instrument
        mark = venue.mark_price(pos.symbol)
        count(
            pos.account_id, pos.wallet_set_id, inst.settle or inst.quote, unrealised_pnl(pos, inst, mark if mark is not None else pos.mark)
        )
    return out


def book_rates(gateway: Gateway, now_ns: int) -> list[Rate]:
    """The mid (or last trade) of every spot market the gateway mirrors, as conversion rates true now."""
    out: list[Rate] = []
    for name, venue in gateway.venues.items():
        for market in venue.markets.values():
            inst = market.instrument
            if inst.kind != SPOT:
                continue
            book = market.engine.book
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None:
                price = (Decimal(bid) + Decimal(ask)) / _TWO
            elif market.last_trade is not None:
                price = Decimal(market.last_trade.price)
            else:
                continue
            out.append(Rate(inst.base, inst.quote, price.scaleb(-inst.price_decimals), f"book:{name}", now_ns))
    return out


LISTING_GRACE_NS = 60 * 1_000_000_000  # how long after the gateway's start coins on an unlisted exchange are waited for


def traded_currencies(gateway: Gateway) -> set[str]:
    """Every currency a market the gateway mirrors trades or settles in (its price comes once the book fills), and every
    currency held on a mirrored exchange whose markets are not listed yet (for LISTING_GRACE_NS after the start).

    Why the second: after a restart the wallets are loaded from the store before the feed lists
    the markets. Taken then for assets nothing trades, they would be left out of the value, and
    the first valuation would be the cash alone: a drop that never happened, kept in the stored
    candle. Waited for instead, they are priced as soon as the markets and books arrive.
    """
    out: set[str] = set()
    unlisted: set[str] = set()
    for name, venue in gateway.venues.items():
        if not venue.markets:
            unlisted.add(name)
        for market in venue.markets.values():
            inst = market.instrument
            out.update(c for c in (inst.base, inst.quote, inst.settle) if c)
    # only until the feeds list their markets (a restart's first seconds), and at most LISTING_GRACE_NS after the start:
    # a feed that never lists its markets (a venue away) must not hold every portfolio with coins there unvalued
    if unlisted and gateway.clock() - gateway.started_at < LISTING_GRACE_NS:
        out.update(w.currency for w in gateway.ledger.all_wallets() if w.exchange in unlisted and w.balance)
    return out


class PriceTable:
    """The price of each asset in one currency, found once per valuation pass (absent: never priced here)."""

    __slots__ = ("currency", "prices", "units", "unpriced", "pending")

    def __init__(self, rates: list[Rate], assets: Iterable[str], currency: str,
                 last: dict[str, Decimal] | None = None, traded: Collection[str] = ()) -> None:
        """`last` (the caller's, per currency, updated here): each asset's last price found, used while its route is
        missing; `traded`: the currencies of the markets mirrored here (one of them without a price yet is pending)."""
        self.currency = currency
        self.prices: dict[str, Decimal] = {}
        self.unpriced: set[str] = set()  # assets nothing here prices: left out of the value
        self.pending: set[str] = set()  # assets a market here trades, not priced yet: no value without them
        for asset in assets:
            if asset == currency or asset in self.prices:
                continue
            try:
                self.prices[asset] = convert(Decimal(1), best_route(rates, asset, currency)).rate
            except NotFound:
                before = last.get(asset) if last is not None else None
                if before is not None:
                    self.prices[asset] = before
                elif asset in traded:
                    self.pending.add(asset)
                else:
                    self.unpriced.add(asset)
        if last is not None:
            last.update(self.prices)
        self.units = {asset: price_units(price) for asset, price in self.prices.items()}

    def value(self, held: Mapping[str, int]) -> Decimal:
        """The value of ATTO amounts per currency, exact at VALUE_DECIMALS; assets in `unpriced` count nothing,
        a `pending` one raises `Unpriced` naming it."""
        unpriced = self.unpriced
        if unpriced and not unpriced.isdisjoint(held):
            held = {asset: atto for asset, atto in held.items() if asset not in unpriced}
        return value_from_int(value_units(held, self.units, self.currency))

    def left_out(self, held: Mapping[str, int]) -> set[str]:
        """The assets of `held` its value leaves out (no price found for them yet)."""
        return {asset for asset, atto in held.items() if atto and asset in self.unpriced}

    def amount(self, atto: int, currency: str) -> Decimal | None:
        """`atto` of `currency` in the table's currency (None: no price)."""
        price = Decimal(1) if currency == self.currency else self.prices.get(currency)
        return None if price is None else (atto * price).scaleb(-ATTO_DECIMALS)

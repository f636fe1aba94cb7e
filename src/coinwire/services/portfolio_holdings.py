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
core.conversion (fewest steps, freshest).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

from coinwire.core.accounts import Account
from coinwire.core.conversion import Rate, best_route, convert
from coinwire.core.errors import NotFound
from coinwire.core.instruments import SPOT
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.portfolio import value_of
from coinwire.core.positions import unrealised_pnl
from coinwire.core.wallets import WalletSet
from coinwire.services.gateway import Gateway

__all__ = ["Holdings", "PortfolioKey", "PriceTable", "book_rates", "holdings_now"]

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
    """Every active account, active wallet set, run (its active wallet sets) and user (the accounts they own)."""
    out = Holdings()
    accounts = gateway.accounts.accounts
    ledger = gateway.ledger
    sets = {s.id: s for s in ledger.wallet_sets(active_only=True)}
    for account in accounts.values():
        if account.active:  # an account that holds nothing yet is still a portfolio (value 0)
            out.amounts.setdefault(("account", str(account.id)), {})
            out.owners[("account", str(account.id))] = account.owner_id
    for wallet in ledger.all_wallets():
        _place(out, accounts, sets, wallet.account_id, wallet.wallet_set_id, wallet.currency, wallet.balance)
    for pos in ledger.positions.all():
        if not pos.size:
            continue
        venue = gateway.venues.get(pos.exchange)
        market = venue.market(pos.symbol) if venue is not None else None
        mark = venue.mark_price(pos.symbol) if venue is not None else None
        if market is None:
            continue
        inst = market.instrument
        pnl = unrealised_pnl(pos, inst, mark if mark is not None else pos.mark)
        _place(out, accounts, sets, pos.account_id, pos.wallet_set_id, inst.settle or inst.quote, pnl)
    return out


def _place(
    out: Holdings,
    accounts: Mapping[int, Account],
    sets: Mapping[int, WalletSet],
    account_id: int,
    set_id: int | None,
    currency: str,
    atto: int,
) -> None:
    """Count an amount of one account (and set) in every portfolio it belongs to: its account, set, run and owner."""
    account = accounts.get(account_id)
    if account is None or not account.active:
        return
    owner = account.owner_id
    out.add(("account", str(account_id)), owner, currency, atto)
    if owner is not None:  # a user's total: the accounts they own (one they were granted is its owner's)
        out.add(("user", str(owner)), owner, currency, atto)
    wallet_set = sets.get(set_id) if set_id is not None else None
    if wallet_set is not None:
        out.add(("wallet_set", str(set_id)), owner, currency, atto)
        run_id = wallet_set.run_id
        if run_id:
            out.add(("run", run_id), owner, currency, atto)


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


class PriceTable:
    """The price of each asset in one currency, found once per valuation pass (None: no route to it)."""

    __slots__ = ("currency", "prices")

    def __init__(self, rates: list[Rate], assets: Iterable[str], currency: str) -> None:
        self.currency = currency
        self.prices: dict[str, Decimal] = {}  # assets with no route are absent
        for asset in assets:
            if asset == currency or asset in self.prices:
                continue
            try:
                self.prices[asset] = convert(Decimal(1), best_route(rates, asset, currency)).rate
            except NotFound:
                continue

    def value(self, held: Mapping[str, int]) -> Decimal:
        """The value of ATTO amounts per currency (core.portfolio.value_of); `Unpriced` names what has no price."""
        return value_of({c: Decimal(atto).scaleb(-ATTO_DECIMALS) for c, atto in held.items()}, self.prices, self.currency)

    def amount(self, atto: int, currency: str) -> Decimal | None:
        """`atto` of `currency` in the table's currency (None: no price)."""
        price = Decimal(1) if currency == self.currency else self.prices.get(currency)
        return None if price is None else (atto * price).scaleb(-ATTO_DECIMALS)

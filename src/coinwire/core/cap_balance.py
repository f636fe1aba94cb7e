"""Balanced by market cap: each held coin's weight beside its weight among the top-N coins by market cap.

A user asks whether their coins are spread like the market: this compares the weight of each
coin in their holdings (its value over the value of all their priced coins) with its weight
in an index of the top-N coins by market cap (its cap over the N caps' sum). A coin held but
outside the index is over-weight by its whole weight; an index coin not held is under-weight
by its whole index weight.

Cash is left out on both sides: fiat currencies and stablecoins (the pegged coins) are what a
portfolio is NOT invested in, and a stablecoin's market cap says nothing of a spread of coins;
the index is the top N coins once they are removed, and the holdings' cash is reported beside
(`cash`, valued like the coins). Held coins without a price are listed as `unpriced` and weigh
nothing.

Weights are rounded to WEIGHT_DECIMALS by largest remainder, so each side sums to exactly 1
and the over- and under-weights net to exactly 0. Pure: values and caps come in, nothing is read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction

import msgspec

__all__ = ["AssetBalance", "CapBalance", "WEIGHT_DECIMALS", "cap_balance", "shares"]

WEIGHT_DECIMALS = 10
_UNITS = 10**WEIGHT_DECIMALS


class AssetBalance(msgspec.Struct, frozen=True, kw_only=True):
    """One coin: what is held and its value, its weight in the holdings and in the index, and the difference."""

    asset: str
    amount: Decimal  # held (0: an index coin not held)
    value: Decimal  # amount at its price (the prices' currency)
    weight: Decimal  # of the holdings' priced coins
    cap_weight: Decimal  # of the top-N index (0: outside it)
    difference: Decimal  # weight - cap_weight: > 0 over-weight, < 0 under-weight
    stance: str  # "over" | "under" | "even"


class CapBalance(msgspec.Struct, frozen=True, kw_only=True):
    top: int  # the N asked for
    index: list[str]  # the index's coins, best ranked first (fewer than N when the list is short)
    total: Decimal  # value of the priced coins held
    cash: Decimal  # value of the fiat and stablecoins held (those that have a price)
    assets: list[AssetBalance]  # most over-weight first
    unpriced: list[str]  # held coins without a price: not weighed


def shares(amounts: Sequence[Fraction]) -> list[Decimal]:
    """Each amount's share of their sum at WEIGHT_DECIMALS, by largest remainder: the shares sum to exactly 1.

    Amounts are >= 0; all zero (or none): every share 0.
    """
    total = sum(amounts, Fraction(0))
    if total <= 0:
        return [Decimal(0)] * len(amounts)
    exact = [a * _UNITS / total for a in amounts]
    units = [int(e) for e in exact]  # floor: the amounts are >= 0
    left = _UNITS - sum(units)
    by_remainder = sorted(range(len(exact)), key=lambda i: (exact[i] - units[i], -i), reverse=True)
    for i in by_remainder[:left]:
        units[i] += 1
    return [Decimal(u).scaleb(-WEIGHT_DECIMALS) for u in units]


def cap_balance(holdings: Mapping[str, Decimal], prices: Mapping[str, Decimal], ranked_caps: Sequence[tuple[str, Decimal]],
                cash: Collection[str], top: int) -> CapBalance:
    """The comparison for `holdings` (asset -> amount) at `prices` (asset -> price, one currency for all).

    `ranked_caps`: (coin, market cap) best ranked first, as the reference data lists them; the
    index is its first `top` coins that are not `cash` and have a cap above zero.
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    index: list[tuple[str, Decimal]] = []
    for coin, cap in ranked_caps:
        if len(index) == top:
            break
        if coin not in cash and cap > 0 and all(coin != seen for seen, _ in index):
            index.append((coin, cap))
    held = {a: q for a, q in holdings.items() if q > 0}
    cash_value = sum((q * prices[a] for a, q in held.items() if a in cash and a in prices), Decimal(0))
    coins = {a: q for a, q in held.items() if a not in cash}
    unpriced = sorted(a for a in coins if a not in prices)
    values = {a: q * prices[a] for a, q in coins.items() if a in prices}
    names = sorted(set(values) | {coin for coin, _ in index})
    weights = dict(zip(names, shares([Fraction(values.get(n, Decimal(0))) for n in names]), strict=True))
    caps = dict(index)
    cap_weights = dict(zip(names, shares([Fraction(caps.get(n, Decimal(0))) for n in names]), strict=True))
    rows = []
    for name in names:
        difference = weights[name] - cap_weights[name]
        rows.append(AssetBalance(asset=name, amount=coins.get(name, Decimal(0)), value=values.get(name, Decimal(0)),
                                 weight=weights[name], cap_weight=cap_weights[name], difference=difference,
                                 stance="over" if difference > 0 else "under" if difference < 0 else "even"))
    rows.sort(key=lambda r: (-r.difference, r.asset))
    return CapBalance(top=top, index=[coin for coin, _ in index], total=sum(values.values(), Decimal(0)), cash=cash_value,
                      assets=rows, unpriced=unpriced)

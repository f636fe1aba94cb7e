"""Currency conversion through the best route of known rates (tickers, FX rates, pegs, coin prices).

Every known rate is an edge `from -> to` (1 `from` = `rate` `to`) with where it came from and
when it was true; each edge also stands for its inverse. The best route from one currency to
another has the fewest conversions, and among those the freshest: the one whose oldest rate
is newest. Breadth-first search by layers finds it exactly, because "the oldest rate on the
route" can only get older as a route grows.

Pure: rates and times come in, nothing is read from a clock; Decimals throughout, divided
in a 34-digit context (an inverse rate is the only inexact step).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Context, Decimal
from typing import NamedTuple

from coinwire.core.errors import InvalidInput, NotFound

__all__ = ["Rate", "Conversion", "best_route", "convert"]

_CONTEXT = Context(prec=34)


class Rate(NamedTuple):
    """1 `base` = `rate` `quote`, from `source` (`ticker:binance`, `fx:ecb`, `peg`, `coins:coingecko`), true at `ts` (ns)."""

    base: str
    quote: str
    rate: Decimal
    source: str
    ts: int

    def inverse(self) -> Rate:
        return Rate(self.quote, self.base, _CONTEXT.divide(Decimal(1), self.rate), self.source, self.ts)


class Conversion(NamedTuple):
    amount: Decimal
    result: Decimal
    rate: Decimal  # 1 `from` in `to`, the product of the route's rates
    route: list[Rate]

    @property
    def ts(self) -> int:
        """When the oldest rate of the route was true (ns)."""
        return min((step.ts for step in self.route), default=0)


def best_route(rates: Iterable[Rate], source: str, target: str, max_steps: int = 4) -> list[Rate]:
    """The route of fewest steps, freshest among those, from `source` to `target` (both upper case).

    Raises NotFound `unknown_currency` when no rate mentions one of them, `no_route` when they
    are not connected within `max_steps`.
    """
    edges: dict[str, list[Rate]] = {}
    for rate in rates:
        if rate.rate <= 0 or rate.base == rate.quote:
            continue
        edges.setdefault(rate.base, []).append(rate)
        edges.setdefault(rate.quote, []).append(rate.inverse())
    if source == target:
        return []
    for currency in (source, target):
        if currency not in edges:
            raise NotFound("unknown_currency", f"no rate mentions {currency}", currency=currency)
    best: dict[str, list[Rate]] = {source: []}
    layer = [source]
    for _ in range(max_steps):
        reached: dict[str, list[Rate]] = {}
        for currency in layer:
            route = best[currency]
            oldest = min((step.ts for step in route), default=None)
            for edge in edges[currency]:
                if edge.quote in best:
                    continue
                candidate_oldest = edge.ts if oldest is None else min(oldest, edge.ts)
                current = reached.get(edge.quote)
                if current is None or candidate_oldest > min(step.ts for step in current):
                    reached[edge.quote] = route + [edge]
        if target in reached:
            return reached[target]
        if not reached:
            break
        best.update(reached)
        layer = list(reached)
    raise NotFound("no_route", f"no route from {source} to {target} through the known rates", source=source, target=target)


def convert(amount: Decimal, route: list[Rate]) -> Conversion:
    """`amount` along `route` (exact products; the route's inverse rates are 34-digit)."""
    if not amount.is_finite():
        raise InvalidInput("invalid_amount", f"amount must be a finite number, got {amount}")
    rate = Decimal(1)
    for step in route:
        rate = _CONTEXT.multiply(rate, step.rate)
    return Conversion(amount, _CONTEXT.multiply(amount, rate), rate, route)

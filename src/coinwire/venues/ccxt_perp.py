"""The perpetual-futures side of a CCXT account: leverage, margin mode, position mode, isolated margin, and positions.

`PerpAccount` wraps a `CcxtVenue` (the same client, the same error translation) and speaks
CCXT's unified derivatives API (`set_leverage`, `set_margin_mode`, `set_position_mode`,
`add_margin` / `reduce_margin`, `fetch_positions`, `fetch_funding_rate`), which `binanceusdm`,
`bybit` and `bitget` all implement; where the exchanges differ the difference is a row in
`ccxt_quirks` (how an order names its leg) or `_ISOLATED_WALLET` below, not a branch.

A setting asked for that the account already has is success, not an error (Binance answers
-4046 "No need to change margin type"): setting twice is safe. Positions come back as exact
`PositionReport`s: sizes on the instrument's step, prices rounded to its tick (a venue's mark
and liquidation prices carry more decimals than the tick), money in ATTO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Final

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.venues.ccxt_convert import ms_to_ns
from coinwire.venues.ccxt_quirks import PERP_LEGS
from coinwire.venues.errors import already_set, venue_error
from coinwire.venues.reports import PositionReport

if TYPE_CHECKING:
    from coinwire.venues.ccxt_venue import CcxtVenue

__all__ = ["MARGIN_MODES", "PerpAccount", "position_report"]

MARGIN_MODES: Final = ("isolated", "cross")
# the raw position field holding a leg's isolated wallet (margin given to it, without its uPnL), per exchange
_ISOLATED_WALLET: Final[dict[str, str]] = {"binanceusdm": "isolatedWallet", "bybit": "positionBalance", "bitget": "marginSize"}


def _exact(value: object, decimals: int, field: str, *, rounded: bool = False) -> int:
    """A CCXT number as integer units of 10**-decimals: exact (InvalidInput too_precise otherwise), or rounded."""
    if value is None or value == "":
        return 0
    number = Decimal(repr(value) if isinstance(value, float) else str(value)).scaleb(decimals)
    whole = number.to_integral_value(rounding=ROUND_HALF_EVEN)
    if whole != number and not rounded:
        raise InvalidInput("too_precise", f"{field} {value!r} has more than {decimals} decimals", field=field)
    return int(whole)


def position_report(ccxt_id: str, raw: Mapping[str, Any], inst: Instrument) -> PositionReport:
    """A CCXT unified position (one leg) as an exact PositionReport of `inst`."""
    contracts = Decimal(repr(raw.get("contracts") or 0.0))
    size = _exact(contracts * Decimal(repr(raw.get("contractSize") or 1.0)), inst.size_decimals, "position size")
    if raw.get("side") == "short":
        size = -size
    info = raw.get("info") or {}
    mode = raw.get("marginMode") or "cross"
    leg = str(raw.get("side") or "both") if raw.get("hedged") else "both"
    wallet_field = _ISOLATED_WALLET.get(ccxt_id)
    isolated = info.get(wallet_field) if wallet_field and mode == "isolated" else None
    return PositionReport(
        symbol=inst.symbol,
        leg=leg,
        size=size,
        entry_price=_exact(raw.get("entryPrice"), inst.price_decimals, "entry price", rounded=True) if size else 0,
        mark=_exact(raw.get("markPrice"), inst.price_decimals, "mark price", rounded=True),
        leverage=int(Decimal(repr(raw.get("leverage") or 1))),
        margin_mode=mode if mode in MARGIN_MODES else "cross",
        isolated_margin=_exact(isolated, ATTO_DECIMALS, "isolated margin", rounded=True),
        unrealised_pnl=_exact(raw.get("unrealizedPnl"), ATTO_DECIMALS, "unrealised pnl", rounded=True),
        liquidation_price=_exact(raw.get("liquidationPrice"), inst.price_decimals, "liquidation price", rounded=True),
        ts=ms_to_ns(raw.get("timestamp")),
    )


class PerpAccount:
    """Leverage, margin mode, hedge mode, margin and positions of one CCXT derivatives account."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        self.client = venue.client

    async def _setting(self, method: str, *args: Any) -> Any:
        """A settings call whose 'already so' answer is success; any other failure translated in the one place."""
        try:
            return await self.venue.guarded(method, *args)
        except Exception as exc:
            if already_set(exc):
                return None
            raise venue_error(exc, exchange=self.venue.exchange, operation=method) from exc

    async def set_leverage(self, inst: Instrument, leverage: int) -> None:
        """Set the symbol's leverage at the venue (the venue refuses above its bracket: leverage_above_maximum)."""
        if leverage < 1:
            raise InvalidInput("invalid_leverage", f"leverage must be at least 1, got {leverage}", leverage=leverage)
        await self._setting("set_leverage", leverage, inst.symbol)

    async def set_margin_mode(self, inst: Instrument, mode: str) -> None:
        """Set the symbol's margin mode (`isolated` | `cross`); refused with a position or orders open."""
        if mode not in MARGIN_MODES:
            raise InvalidInput("invalid_margin_mode", f"margin mode must be one of {MARGIN_MODES}, got {mode!r}", mode=mode)
        await self._setting("set_margin_mode", mode, inst.symbol)

    async def set_hedge_mode(self, hedged: bool) -> None:
        """Switch the account between one-way and hedge mode; refused with positions or orders open."""
        await self._setting("set_position_mode", hedged)

    async def hedge_mode(self) -> bool:
        """Whether the account is in hedge mode (long and short legs) at the venue."""
        answer = await self.venue.call("fetch_position_mode")
        return bool(answer.get("hedged"))

    async def adjust_margin(self, inst: Instrument, amount: int, leg: str) -> None:
        """Add (`amount` > 0) or remove ATTO of margin on an isolated position leg."""
        if not amount:
            raise InvalidInput("invalid_amount", "the margin to add or remove must not be zero")
        text = f"{Decimal(abs(amount)).scaleb(-ATTO_DECIMALS).normalize():f}"
        legs = PERP_LEGS.get(self.venue.ccxt_id)
        params = {legs.param[0]: legs.param[1][leg]} if legs is not None and legs.param is not None else {}
        method = "add_margin" if amount > 0 else "reduce_margin"
        await self.venue.call(method, inst.symbol, float(text), params)

    async def positions(self, instruments: Iterable[Instrument]) -> list[PositionReport]:
        """The open legs the venue reports for these perpetuals (CCXT lists no flat leg: one not listed is flat)."""
        by_symbol = {inst.symbol: inst for inst in instruments}
        if not by_symbol:
            return []
        raws = await self.venue.call("fetch_positions", sorted(by_symbol))
        out = []
        for raw in raws:
            inst = by_symbol.get(str(raw.get("symbol")))
            if inst is not None:
                out.append(position_report(self.venue.ccxt_id, raw, inst))
        return out

    async def funding(self, inst: Instrument) -> tuple[int, int, int]:
        """(mark price in price units, the current funding rate in 1e-8, next funding time in ns) at the venue."""
        raw = await self.venue.call("fetch_funding_rate", inst.symbol)
        mark = _exact(raw.get("markPrice"), inst.price_decimals, "mark price", rounded=True)
        rate = _exact(raw.get("fundingRate"), 8, "funding rate", rounded=True)
        return mark, rate, ms_to_ns(raw.get("fundingTimestamp") or raw.get("nextFundingTimestamp"))

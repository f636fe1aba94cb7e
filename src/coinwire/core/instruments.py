"""Instruments: a market's precision, limits and fees, and the exact arithmetic they imply."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from coinwire.core.errors import InvalidInput
from coinwire.core.numbers import ATTO_DECIMALS, POW10, ceil_div, to_units, units_to_str

__all__ = ["Instrument", "FEE_SCALE", "LeverageBracket", "SPOT", "PERPETUAL"]

FEE_SCALE = 10**8  # fee rates are integers of 1e-8 (0.1% == 100_000)
SPOT, PERPETUAL = "spot", "perpetual"


class LeverageBracket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One notional tier of a perpetual: Binance's `GET /fapi/v1/leverageBracket` entry, in exact units.

    A position whose notional (ATTO of the settle currency) lies in [floor, cap) may use at most
    `max_leverage` and needs maintenance margin `notional * mmr / 1e8 - maint_amount` (Binance's
    "cum", which makes the tiers join without a jump). `cap` 0: no cap; a notional beyond the
    last tier's cap is beyond what the venue allows, and is refused an opening order.
    """

    floor: int
    cap: int
    max_leverage: int
    mmr: int
    maint_amount: int


class Instrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One market on one exchange.

    Prices are integers of 10**-price_decimals and sizes integers of 10**-size_decimals;
    `tick` and `step` are the smallest increments in those units. Fees are integers of
    1e-8 (so Binance's 0.1% taker fee is 100_000). `min_notional` is in ATTO of the quote.
    """

    exchange: str
    symbol: str
    base: str
    quote: str
    price_decimals: int
    size_decimals: int
    tick: int = 1
    step: int = 1
    min_size: int = 0
    max_size: int = 0
    min_notional: int = 0
    maker_fee: int = 100_000
    taker_fee: int = 100_000
    # --- perpetual futures (the defaults keep a spot market as it was) ---
    kind: str = SPOT  # "spot" | "perpetual" (linear: margined and settled in `settle`)
    settle: str = ""  # a perpetual's margin and settlement currency (e.g. "USDT"); "" for spot
    contract_size: int = FEE_SCALE  # base per contract, in 1e-8 (FEE_SCALE: one contract is one base unit)
    brackets: tuple[LeverageBracket, ...] = ()  # notional tiers, lowest first
    funding_interval_s: int = 0  # seconds between funding times (28_800 on Binance)
    liquidation_fee: int = 0  # the clearance fee on a liquidated notional, in 1e-8

    def __post_init__(self) -> None:
        if self.price_decimals < 0 or self.size_decimals < 0 or self.price_decimals + self.size_decimals > ATTO_DECIMALS:
            raise ValueError(f"{self.symbol}: price and size decimals must be >= 0 and add up to at most 18")
        if self.tick <= 0 or self.step <= 0:
            raise ValueError(f"{self.symbol}: tick and step must be positive")
        if self.kind not in (SPOT, PERPETUAL):
            raise ValueError(f"{self.symbol}: kind must be spot or perpetual, not {self.kind!r}")
        if self.kind == PERPETUAL:
            if not self.settle:
                raise ValueError(f"{self.symbol}: a perpetual needs its settle currency")
            scale = POW10[ATTO_DECIMALS - self.price_decimals - self.size_decimals] * self.contract_size
            if self.contract_size <= 0 or scale % FEE_SCALE:
                raise ValueError(f"{self.symbol}: the contract size must make every notional a whole number of ATTO")
            floor = 0
            for bracket in self.brackets:
                if bracket.floor != floor or (bracket.cap and bracket.cap <= bracket.floor) or bracket.max_leverage < 1:
                    raise ValueError(f"{self.symbol}: leverage brackets must be contiguous from 0, each with a leverage >= 1")
                floor = bracket.cap

    @property
    def is_perpetual(self) -> bool:
        return self.kind == PERPETUAL

    @property
    def max_leverage(self) -> int:
        """The highest leverage any position of this market may use (its first bracket's); 1 without brackets."""
        return self.brackets[0].max_leverage if self.brackets else 1

    def contract_notional(self, price: int, size: int) -> int:
        """A perpetual's notional of `size` contracts at `price`, in ATTO of the settle currency (exact: checked at creation)."""
        return price * size * POW10[ATTO_DECIMALS - self.price_decimals - self.size_decimals] * self.contract_size // FEE_SCALE

    # --- parsing user input -------------------------------------------------------------
    def parse_price(self, value: object, field: str = "price") -> int:
        """A positive price on the tick grid, as integer units."""
        units = to_units(value, self.price_decimals, field)
        if units <= 0:
            raise InvalidInput("invalid_price", f"{field} must be positive, got {value}", field=field)
        if units % self.tick:
            raise InvalidInput(
                "price_off_tick",
                f"{field} {value} is not a multiple of the tick {self.price_str(self.tick)} for {self.symbol}",
                field=field,
                tick=self.price_str(self.tick),
            )
        return units

    def parse_size(self, value: object, field: str = "size") -> int:
        """A positive size on the step grid within [min_size, max_size], as integer units."""
        units = to_units(value, self.size_decimals, field)
        if units <= 0:
            raise InvalidInput("invalid_size", f"{field} must be positive, got {value}", field=field)
        if units % self.step:
            raise InvalidInput(
                "size_off_step",
                f"{field} {value} is not a multiple of the step {self.size_str(self.step)} for {self.symbol}",
                field=field,
                step=self.size_str(self.step),
            )
        if units < self.min_size:
            raise InvalidInput(
                "size_below_minimum",
                f"{field} {value} is below the minimum {self.size_str(self.min_size)} for {self.symbol}",
                field=field,
                minimum=self.size_str(self.min_size),
            )
        if self.max_size and units > self.max_size:
            raise InvalidInput(
                "size_above_maximum",
                f"{field} {value} is above the maximum {self.size_str(self.max_size)} for {self.symbol}",
                field=field,
                maximum=self.size_str(self.max_size),
            )
        return units

    # --- rendering ----------------------------------------------------------------------
    def price_str(self, units: int) -> str:
        return units_to_str(units, self.price_decimals)

    def size_str(self, units: int) -> str:
        return units_to_str(units, self.size_decimals)

    # --- exact money ----------------------------------------------------------------------
    @property
    def size_to_atto(self) -> int:
        """Multiplier from size units to ATTO of the base currency."""
        return POW10[ATTO_DECIMALS - self.size_decimals]

    @property
    def notional_to_atto(self) -> int:
        """Multiplier from price units x size units to ATTO of the quote currency."""
        return POW10[ATTO_DECIMALS - self.price_decimals - self.size_decimals]

    # the two below run several times an order: the multipliers are read from a table, not
    # through the properties above (an unspecialised property call on Python 3.11 costs more
    # than the arithmetic)
    def base_atto(self, size: int) -> int:
        return size * POW10[ATTO_DECIMALS - self.size_decimals]

    def notional_atto(self, price: int, size: int) -> int:
        return price * size * POW10[ATTO_DECIMALS - self.price_decimals - self.size_decimals]

    def fee_atto(self, notional_atto: int, maker: bool) -> int:
        """The fee on a fill in ATTO of the quote currency, rounded up (the venue's favour)."""
        return ceil_div(notional_atto * (self.maker_fee if maker else self.taker_fee), FEE_SCALE)

    @staticmethod
    def fee_rate(rate: str | Decimal) -> int:
        """`"0.001"` -> 100_000 (the integer fee representation)."""
        return to_units(rate, 8, "fee")

    def to_public(self) -> dict[str, object]:
        """The JSON view: decimal strings for every amount."""
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "base": self.base,
            "quote": self.quote,
            "tick": self.price_str(self.tick),
            "step": self.size_str(self.step),
            "min_size": self.size_str(self.min_size),
            "max_size": self.size_str(self.max_size) if self.max_size else None,
            "min_notional": units_to_str(self.min_notional, ATTO_DECIMALS),
            "maker_fee": units_to_str(self.maker_fee, 8),
            "taker_fee": units_to_str(self.taker_fee, 8),
        } | (self._perpetual_public() if self.kind == PERPETUAL else {})

    def _perpetual_public(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "settle": self.settle,
            "contract_size": units_to_str(self.contract_size, 8),
            "max_leverage": self.max_leverage,
            "funding_interval_s": self.funding_interval_s,
            "liquidation_fee": units_to_str(self.liquidation_fee, 8),
            "brackets": [
                {"floor": units_to_str(b.floor, ATTO_DECIMALS), "cap": units_to_str(b.cap, ATTO_DECIMALS) if b.cap else None,
                 "max_leverage": b.max_leverage, "mmr": units_to_str(b.mmr, 8),
                 "maint_amount": units_to_str(b.maint_amount, ATTO_DECIMALS)}
                for b in self.brackets
            ],
        }



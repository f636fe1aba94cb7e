"""Turns CCXT's unified market, order book and trade structures into coinwire's exact types.

CCXT hands out floats (`0.01`, `1e-05`, `61837.63`). Each float is read through its
shortest round-trip text (`repr`), which is exactly the decimal the venue sent whenever that
decimal has at most 15 significant digits (every price, size and filter on a real venue),
and then scaled to integers with `core.numbers.to_units`, which refuses rather than rounds:
a value off the instrument's grid is an error with code `too_precise`, never a silent drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import FEE_SCALE, PERPETUAL, Instrument, LeverageBracket
from coinwire.core.numbers import ATTO_DECIMALS, to_units
from coinwire.core.symbols import normalize_symbol
from coinwire.messages import TradeTick

__all__ = [
    "DECIMAL_PLACES",
    "SIGNIFICANT_DIGITS",
    "TICK_SIZE",
    "instrument_from_market",
    "brackets_from_tiers",
    "grid",
    "LevelConverter",
    "trade_from_ccxt",
]

# CCXT's precision modes (ccxt.DECIMAL_PLACES, ...), repeated so this module stays import-light.
DECIMAL_PLACES: Final = 2
SIGNIFICANT_DIGITS: Final = 3
TICK_SIZE: Final = 4
_NS_PER_MS: Final = 1_000_000


def _decimal(value: object, field: str) -> Decimal:
    """The exact decimal a CCXT number stands for (floats via their shortest repr)."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput("invalid_number", f"{field} is missing", field=field)
    text = repr(value) if isinstance(value, float) else str(value)
    number = Decimal(text)
    if not number.is_finite() or number <= 0:
        raise InvalidInput("invalid_number", f"{field} must be a positive number, got {value!r}", field=field)
    return number.normalize()


def grid(precision: object, mode: int, field: str) -> tuple[int, int]:
    """(decimals, increment in units of 10**-decimals) for one CCXT precision value.

    TICK_SIZE: `0.01` -> (2, 1), `0.05` -> (2, 5), `10` -> (0, 10); DECIMAL_PLACES: `2` -> (2, 1).
    SIGNIFICANT_DIGITS has no fixed grid, so it cannot become integer units: refused.
    """
    if mode == DECIMAL_PLACES:
        places = _decimal(precision, field)
        if places != places.to_integral_value():
            raise InvalidInput("invalid_market", f"{field} decimal places must be whole, got {precision!r}", field=field)
        return int(places), 1
    if mode == TICK_SIZE:
        tick = _decimal(precision, field)
        decimals = max(0, -int(tick.as_tuple().exponent))
        return decimals, int(tick.scaleb(decimals))
    raise InvalidInput(
        "unsupported_precision_mode",
        f"{field}: CCXT precision mode {mode} (significant digits) has no fixed grid",
        field=field,
    )


def _optional_units(value: object, decimals: int, field: str) -> int:
    return 0 if value is None else to_units(repr(value) if isinstance(value, float) else value, decimals, field)


def _fee(value: object, field: str) -> int:
    """A fee rate as integer 1e-8; rebates (negative maker fees) count as zero on paper."""
    if value is None:
        return 0
    return max(0, Instrument.fee_rate(repr(value) if isinstance(value, float) else str(value)))


# the raw market field holding a perpetual's liquidation (clearance) fee rate, and its funding interval, per exchange
_LIQUIDATION_FEE: Final[dict[str, str]] = {"binanceusdm": "liquidationFee"}
_FUNDING_INTERVAL_S: Final[dict[str, int]] = {"binanceusdm": 28_800, "bybit": 28_800, "bitget": 28_800}


def _rate(value: object, field: str) -> int:
    """A rate (0.004, "0.0125") as integer 1e-8, exactly."""
    return to_units(repr(value) if isinstance(value, float) else str(value), 8, field)


def brackets_from_tiers(tiers: Sequence[Mapping[str, Any]], field: str) -> tuple[LeverageBracket, ...]:
    """CCXT's unified leverage tiers of one market as LeverageBrackets, lowest first.

    The maintenance amount is derived as Binance defines its "cum" (the amount that makes the
    maintenance margin continuous where the rate steps up: cum_i = cum_{i-1} + floor_i x
    (rate_i - rate_{i-1})), so every exchange's tiers get it whether or not the venue sends it.
    The last tier has no cap.
    """
    out: list[LeverageBracket] = []
    amount = 0
    previous_rate = 0
    for index, tier in enumerate(sorted(tiers, key=lambda t: float(t.get("minNotional") or 0))):
        floor = _optional_units(tier.get("minNotional") or 0, ATTO_DECIMALS, f"{field} tier floor")
        rate = _rate(tier.get("maintenanceMarginRate"), f"{field} maintenance margin rate")
        amount += floor * (rate - previous_rate) // FEE_SCALE
        previous_rate = rate
        last = index == len(tiers) - 1
        cap = 0 if last else _optional_units(tier.get("maxNotional"), ATTO_DECIMALS, f"{field} tier cap")
        out.append(LeverageBracket(floor=floor, cap=cap, max_leverage=int(float(tier.get("maxLeverage") or 1)), mmr=rate,
                                   maint_amount=amount))
    return tuple(out)


def _perpetual_fields(
    exchange: str, ccxt_id: str, market: Mapping[str, Any], brackets: tuple[LeverageBracket, ...]
) -> dict[str, Any]:
    """The Instrument fields of a linear perpetual: settle currency, contract size, brackets, funding, clearance fee."""
    if not market.get("linear") or market.get("type") != "swap":
        raise InvalidInput("unsupported_market", f"{exchange} market {market.get('symbol')!r} is not a linear perpetual "
                           "(inverse contracts and dated futures are not supported)", symbol=market.get("symbol"))
    fee_field = _LIQUIDATION_FEE.get(ccxt_id)
    info = market.get("info") or {}
    return {
        "kind": PERPETUAL,
        "settle": str(market.get("settle") or ""),
        "contract_size": _rate(market.get("contractSize") or 1, "contract size"),
        "brackets": brackets,
        "funding_interval_s": _FUNDING_INTERVAL_S.get(ccxt_id, 28_800),
        "liquidation_fee": _rate(info[fee_field], "liquidation fee") if fee_field and info.get(fee_field) else 0,
    }


def instrument_from_market(
    exchange: str,
    market: Mapping[str, Any],
    precision_mode: int,
    *,
    ccxt_id: str = "",
    brackets: tuple[LeverageBracket, ...] = (),
) -> Instrument:
    """The Instrument for one CCXT unified market (`exchange.markets[symbol]`), exactly.

    Sizes are kept at the finer of the lot step and the base asset's precision (Binance books
    show 8-decimal sizes of orders placed before a lot-size change, while orders step in
    0.00001), as long as price and size decimals fit in 18 (ATTO); the step still governs
    orders. A linear perpetual (`BTC/USDT:USDT`, CCXT's `swap`) keeps CCXT's symbol and gains its
    settle currency, contract size, `brackets` (the venue's leverage tiers, `brackets_from_tiers`),
    funding interval and clearance fee (per `ccxt_id`'s row). Fails with `invalid_market` / `unsupported_precision_mode` when the venue's
    numbers cannot be represented exactly.
    """
    symbol = str(market.get("symbol", ""))
    perpetual = bool(market.get("swap") or market.get("contract"))  # sizes in contracts, on the lot step only
    try:
        if not perpetual and ":" in symbol:  # a settle currency, on a market CCXT does not call a swap (a future, an option)
            raise InvalidInput("unsupported_market", symbol)
        normalized = symbol if perpetual else normalize_symbol(symbol)
    except InvalidInput:
        raise InvalidInput(
            "unsupported_market", f"{exchange} market {symbol!r} is neither a spot BASE/QUOTE pair nor a perpetual swap", symbol=symbol
        ) from None
    extra = _perpetual_fields(exchange, ccxt_id, market, brackets) if perpetual else {}
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    price_decimals, tick = grid(precision.get("price"), precision_mode, f"{symbol} price precision")
    step_decimals, step = grid(precision.get("amount"), precision_mode, f"{symbol} amount precision")
    size_decimals = step_decimals
    base_precision = precision.get("base")
    if base_precision is not None and precision_mode in (DECIMAL_PLACES, TICK_SIZE) and not perpetual:
        base_decimals = grid(base_precision, precision_mode, f"{symbol} base precision")[0]
        if base_decimals > step_decimals and price_decimals + base_decimals <= ATTO_DECIMALS:
            step *= 10 ** (base_decimals - step_decimals)
            size_decimals = base_decimals
    if price_decimals + size_decimals > ATTO_DECIMALS:
        raise InvalidInput(
            "invalid_market", f"{exchange} {symbol}: price and size decimals add up to more than 18", symbol=symbol
        )
    amount = limits.get("amount") or {}
    cost = limits.get("cost") or {}
    return Instrument(
        exchange=exchange,
        symbol=normalized,
        base=str(market.get("base")) if perpetual else normalized.partition("/")[0],
        quote=str(market.get("quote")) if perpetual else normalized.partition("/")[2],
        price_decimals=price_decimals,
        size_decimals=size_decimals,
        tick=tick,
        step=step,
        min_size=_optional_units(amount.get("min"), size_decimals, f"{symbol} min amount"),
        max_size=_optional_units(amount.get("max"), size_decimals, f"{symbol} max amount"),
        min_notional=_optional_units(cost.get("min"), ATTO_DECIMALS, f"{symbol} min cost"),
        maker_fee=_fee(market.get("maker"), f"{symbol} maker fee"),
        taker_fee=_fee(market.get("taker"), f"{symbol} taker fee"),
        **extra,
    )


class LevelConverter:
    """Price/size numbers of one instrument to integer units, remembering repeated values.

    Books repeat the same prices on every update, so each distinct float is converted once
    (bounded memory: the memo starts over when it grows past `limit`).
    """

    __slots__ = ("instrument", "_prices", "_sizes", "_limit")

    def __init__(self, instrument: Instrument, limit: int = 1 << 16) -> None:
        self.instrument = instrument
        self._prices: dict[object, int] = {}
        self._sizes: dict[object, int] = {}
        self._limit = limit

    def price(self, value: object) -> int:
        return self._memo(self._prices, value, self.instrument.price_decimals, "price")

    def size(self, value: object) -> int:
        return self._memo(self._sizes, value, self.instrument.size_decimals, "size")

    def _memo(self, memo: dict[object, int], value: object, decimals: int, field: str) -> int:
        units = memo.get(value)
        if units is None:
            if len(memo) >= self._limit:
                memo.clear()
            units = memo[value] = _units(value, decimals, field)
        return units

    def levels(self, raw: Iterable[Sequence[Any]], depth: int) -> dict[int, int]:
        """The first `depth` levels of a CCXT book side (`[[price, amount], ...]`) as {price: size}."""
        out: dict[int, int] = {}
        price = self.price
        size = self.size
        for count, level in enumerate(raw):
            if count >= depth:
                break
            amount = size(level[1])
            if amount:
                out[price(level[0])] = amount
        return out


def _units(value: object, decimals: int, field: str) -> int:
    return to_units(repr(value) if isinstance(value, float) else value, decimals, field)


def trade_from_ccxt(convert: LevelConverter, trade: Mapping[str, Any]) -> TradeTick:
    """A CCXT unified trade as a TradeTick (`side` is the taker's side, as CCXT defines it)."""
    instrument = convert.instrument
    side = trade.get("side")
    if side not in ("buy", "sell"):
        raise InvalidInput("invalid_trade", f"trade {trade.get('id')!r} has no taker side", trade_id=trade.get("id"))
    timestamp = trade.get("timestamp")
    if not isinstance(timestamp, int):
        raise InvalidInput("invalid_trade", f"trade {trade.get('id')!r} has no timestamp", trade_id=trade.get("id"))
    return TradeTick(
        instrument.exchange,
        instrument.symbol,
        timestamp * _NS_PER_MS,
        str(trade.get("id")),
        convert.price(trade.get("price")),
        convert.size(trade.get("amount")),
        side,
    )

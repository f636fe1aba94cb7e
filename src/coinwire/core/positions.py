"""Perpetual-futures positions: one account's exposure in one market, its settings, and the book of all of them.

A position is kept per (account, exchange, symbol, position side, wallet set): in one-way mode
one signed position per market (`PositionSide.BOTH`, size > 0 long, < 0 short), in hedge mode
two independent legs (`LONG` with size >= 0, `SHORT` with size <= 0). Its `entry_cost` is the
notional of the open size at its average entry (ATTO of the settle currency), so the entry
price, the unrealised PnL and the realised PnL of a reduction are exact integer arithmetic;
only `entry_price` (a display value) is a Decimal.

Leverage and margin mode are settings of (account, exchange, symbol), and hedge mode of
(account, exchange), as on Binance; `PositionBook` keeps all three, and the ledger keeps the
book (`Ledger.positions`) so both are restored together. The margin a position uses is held
on its wallet through the ledger's holds under the position's `hold_id` (a negative number,
never an order id): its isolated margin, or for cross margin the initial margin at entry.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.orders import PositionSide

__all__ = ["MarginMode", "Position", "PositionSettings", "HedgeMode", "FundingPayment", "PositionBook", "PositionKey", "entry_price",
           "unrealised_pnl", "notional_at", "DEFAULT_LEVERAGE", "DEFAULT_MARGIN_MODE"]


class MarginMode(str, enum.Enum):
    ISOLATED = "isolated"  # the position's own margin, set at opening and adjusted by the user, is all it can lose
    CROSS = "cross"  # the account's margin balance in the settle currency backs all its cross positions


DEFAULT_LEVERAGE = 20  # Binance's default for a new symbol (capped by the first bracket's maximum)
DEFAULT_MARGIN_MODE = MarginMode.CROSS  # Binance's default

PositionKey = tuple[int, str, str, PositionSide, int | None]  # (account, exchange, symbol, side, wallet_set_id)


class Position(msgspec.Struct, kw_only=True):
    """One perpetual position (or hedge leg); money in ATTO of the settle currency, sizes in contracts.

    `size` is signed (> 0 long, < 0 short); `entry_cost` > 0 while it is open, 0 when flat.
    `realised_pnl`, `funding` (received +, paid -) and `fees` accumulate over its life, across
    closes and reopenings, like Binance's position history per symbol. `mark` is the latest
    mark price the venue saw (price units); `id` names its margin hold (`hold_id`).
    """

    account_id: int
    exchange: str
    symbol: str
    side: PositionSide = PositionSide.BOTH
    wallet_set_id: int | None = None
    size: int = 0
    entry_cost: int = 0
    leverage: int
    margin_mode: MarginMode
    isolated_margin: int = 0
    realised_pnl: int = 0
    funding: int = 0
    fees: int = 0
    mark: int = 0
    opened_at: int = 0
    updated_at: int = 0
    seq: int = 0
    id: int = 0

    @property
    def key(self) -> PositionKey:
        return (self.account_id, self.exchange, self.symbol, self.side, self.wallet_set_id)

    @property
    def hold_id(self) -> int:
        """The ledger hold key of this position's margin: negative, so it never meets an order id."""
        return -self.id

    @property
    def is_open(self) -> bool:
        return self.size != 0

    @property
    def direction(self) -> str:
        """"long", "short" or "flat"."""
        return "long" if self.size > 0 else "short" if self.size < 0 else "flat"


class PositionSettings(msgspec.Struct, kw_only=True, frozen=True):
    """The leverage and margin mode an account trades one perpetual with (new positions and orders use them)."""

    account_id: int
    exchange: str
    symbol: str
    leverage: int
    margin_mode: MarginMode


class HedgeMode(msgspec.Struct, kw_only=True):
    """An account's position mode on one exchange: hedge (long and short legs) or one-way (False, the default)."""

    account_id: int
    exchange: str
    hedge_mode: bool


class FundingPayment(msgspec.Struct, kw_only=True):
    """One funding payment settled on one position: what `funding_history` answers, stored beside its ledger line.

    `id` is the FUNDING wallet line's id; `size` the position's signed size then, `rate` in 1e-8
    units, `mark` at the instrument's price decimals, `amount` ATTO of the settle currency
    (received +, paid -).
    """

    id: int
    account_id: int
    exchange: str
    symbol: str
    side: PositionSide
    wallet_set_id: int | None
    ts: int
    size: int
    rate: int
    mark: int
    amount: int


def notional_at(inst: Instrument, size: int, price: int) -> int:
    """The unsigned notional of `size` contracts at `price` (ATTO of the settle currency)."""
    return inst.contract_notional(price, abs(size))


def entry_price(pos: Position, inst: Instrument) -> Decimal:
    """The average entry price (a display value, exact to 28 digits): entry_cost / (|size| x contract size)."""
    if pos.size == 0:
        return Decimal(0)
    per_price_unit = inst.contract_notional(1, abs(pos.size))  # ATTO of one price unit of this size
    return (Decimal(pos.entry_cost) / Decimal(per_price_unit)).scaleb(-inst.price_decimals)


def unrealised_pnl(pos: Position, inst: Instrument, mark: int) -> int:
    """Profit (+) or loss (-) if the position closed at `mark`, ATTO; exact (no rounding: notionals are whole ATTO)."""
    if pos.size == 0:
        return 0
    value = inst.contract_notional(mark, abs(pos.size))
    return value - pos.entry_cost if pos.size > 0 else pos.entry_cost - value


class PositionBook:
    """Every account's positions and perpetual settings: the ledger's `positions`, restored with it.

    Flat positions stay in the book (they carry realised PnL, funding and fees), so a symbol's
    history is one record per leg. Callers change positions through `core.perp_execution`,
    which keeps the book and the ledger's margin holds in step.
    """

    def __init__(self) -> None:
        self._positions: dict[PositionKey, Position] = {}
        self._settings: dict[tuple[int, str, str], PositionSettings] = {}
        self._hedge: dict[tuple[int, str], bool] = {}
        self._instruments: dict[tuple[str, str], Instrument] = {}
        self.position_ids = IdSequence()

    def register(self, inst: Instrument) -> None:
        """Know a perpetual's instrument: a cross pool's margin needs the brackets of every symbol it holds."""
        self._instruments[(inst.exchange, inst.symbol)] = inst

    def instrument(self, exchange: str, symbol: str) -> Instrument:
        """A registered perpetual (the venue registers its markets at start; a missing one is a bug)."""
        found = self._instruments.get((exchange, symbol))
        if found is None:
            raise LookupError(f"perpetual {symbol} of {exchange} is not registered with the position book")
        return found

    # --- reading ---------------------------------------------------------------------------
    def get(self, account: int, exchange: str, symbol: str, side: PositionSide = PositionSide.BOTH,
            wallet_set_id: int | None = None) -> Position | None:
        return self._positions.get((account, exchange, symbol, side, wallet_set_id))

    def of_account(self, account: int, exchange: str | None = None) -> list[Position]:
        """The account's positions (open and flat), on `exchange` or everywhere, in a stable order."""
        return sorted((p for p in self._positions.values() if p.account_id == account and (exchange is None or p.exchange == exchange)),
                      key=_order)

    def open_positions(self, exchange: str, symbol: str | None = None) -> list[Position]:
        """Every open position on `exchange` (of one `symbol` when given), of every account."""
        return sorted((p for p in self._positions.values()
                       if p.size and p.exchange == exchange and (symbol is None or p.symbol == symbol)), key=_order)

    def all(self) -> list[Position]:
        return sorted(self._positions.values(), key=_order)

    def all_settings(self) -> list[PositionSettings]:
        return sorted(self._settings.values(), key=lambda s: (s.account_id, s.exchange, s.symbol))

    def hedge_modes(self) -> dict[tuple[int, str], bool]:
        return dict(self._hedge)

    def settings(self, account: int, exchange: str, symbol: str, inst: Instrument | None = None) -> PositionSettings:
        """The account's settings for a symbol: stored, else the defaults (leverage capped by `inst`'s first bracket)."""
        stored = self._settings.get((account, exchange, symbol))
        if stored is not None:
            return stored
        leverage = min(DEFAULT_LEVERAGE, inst.max_leverage) if inst is not None and inst.brackets else DEFAULT_LEVERAGE
        return PositionSettings(account_id=account, exchange=exchange, symbol=symbol, leverage=leverage,
                                margin_mode=DEFAULT_MARGIN_MODE)

    def hedge_mode(self, account: int, exchange: str) -> bool:
        """Whether the account trades `exchange`'s perpetuals in hedge mode (default: one-way)."""
        return self._hedge.get((account, exchange), False)

    def has_open(self, account: int, exchange: str, symbol: str | None = None) -> bool:
        return any(p.size and p.account_id == account and p.exchange == exchange and (symbol is None or p.symbol == symbol)
                   for p in self._positions.values())

    # --- writing (through core.perp_execution) -------------------------------------------
    def put_settings(self, settings: PositionSettings) -> None:
        self._settings[(settings.account_id, settings.exchange, settings.symbol)] = settings

    def put_hedge_mode(self, account: int, exchange: str, hedge: bool) -> None:
        self._hedge[(account, exchange)] = hedge

    def open_or_get(self, account: int, exchange: str, symbol: str, side: PositionSide, wallet_set_id: int | None,
                    settings: PositionSettings, ts: int) -> Position:
        """The position at that key, made flat with the account's settings (and a new id) if it has none yet."""
        key = (account, exchange, symbol, side, wallet_set_id)
        pos = self._positions.get(key)
        if pos is None:
            pos = Position(account_id=account, exchange=exchange, symbol=symbol, side=side, wallet_set_id=wallet_set_id,
                           leverage=settings.leverage, margin_mode=settings.margin_mode, opened_at=ts, updated_at=ts,
                           id=self.position_ids.next())
            self._positions[key] = pos
        return pos

    def put(self, pos: Position) -> None:
        """Store `pos` at its key (a restore, or a position a live venue reported), keeping ids unique."""
        if pos.id <= 0:
            pos.id = self.position_ids.next()
        self.position_ids.advance_to(pos.id)
        self._positions[pos.key] = pos

    def remove(self, pos: Position) -> None:
        """Forget a position (only a flat one that was never stored: a refused command taking back its record)."""
        self._positions.pop(pos.key, None)

    def restore(self, positions: Iterable[Position], settings: Iterable[PositionSettings],
                hedge_modes: Iterable[tuple[int, str, bool]] = ()) -> None:
        """Rebuild the book from stored records (copies: the caller's records stay its own)."""
        self._positions.clear()
        self._settings.clear()
        self._hedge.clear()
        for pos in positions:
            self.put(msgspec.structs.replace(pos))
        for item in settings:
            self.put_settings(item)
        for account, exchange, hedge in hedge_modes:
            self._hedge[(account, exchange)] = hedge


def _order(pos: Position) -> tuple[int, str, str, str, int]:
    return (pos.account_id, pos.exchange, pos.symbol, pos.side.value, -1 if pos.wallet_set_id is None else pos.wallet_set_id)


"""Exact conversion between core records and store rows, and the ChangeSet a transaction writes.

Integers at an instrument's precision become decimal TEXT at that precision ("61737.63");
ATTO ledger amounts become decimal TEXT with up to 18 decimals. Both convert back with
`to_units`, which refuses anything inexact, so a corrupted row fails loudly instead of
drifting a ledger. A ChangeSet is encoded into `Rows` when it is handed over, so records a
caller keeps mutating afterwards cannot leak a later state into an earlier transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from coinwire.core.numbers import ATTO_DECIMALS, to_units, units_to_str
from coinwire.core.orders import Fill, Order
from coinwire.core.wallets import Wallet, WalletLine, WalletSet

__all__ = [
    "Scale",
    "ChangeSet",
    "Rows",
    "encode",
    "RecordCodec",
    "ORDERS",
    "FILLS",
    "WALLET_SETS",
    "WALLETS",
    "WALLET_LINES",
]

Row = dict[str, Any]
R = TypeVar("R", bound=msgspec.Struct)

_PRICE, _SIZE, _ATTO = "price", "size", "atto"


class HasDecimals(Protocol):
    @property
    def price_decimals(self) -> int: ...

    @property
    def size_decimals(self) -> int: ...


class Scale(msgspec.Struct, frozen=True):
    """The precision an order's or fill's integers are counted in (its instrument's)."""

    price_decimals: int
    size_decimals: int

    @classmethod
    def of(cls, instrument: HasDecimals) -> Scale:
        """Take the decimals of an Instrument (or anything else that has both)."""
        if isinstance(instrument, Scale):
            return instrument
        return cls(instrument.price_decimals, instrument.size_decimals)


def _decimals(kind: str, scale: Scale | None) -> int:
    if kind == _ATTO:
        return ATTO_DECIMALS
    if scale is None:
        raise ValueError(f"a {kind} amount needs the instrument's Scale")
    return scale.price_decimals if kind == _PRICE else scale.size_decimals


class RecordCodec(Generic[R]):
    """How one record type maps to its table row: money fields (by kind), renamed and dropped fields.

    Orders and fills need the instrument's Scale to write (`to_row(record, scale)`) and
    read it back from the row's own decimals columns; ledger records hold only ATTO.
    """

    __slots__ = ("record", "money", "renames", "dropped")

    def __init__(
        self,
        record: type[R],
        money: dict[str, str],
        renames: dict[str, str] | None = None,
        dropped: tuple[str, ...] = (),
    ) -> None:
        self.record = record
        self.money = money
        self.renames = renames or {}
        self.dropped = dropped

    def to_row(self, record: R, scale: Scale | None = None) -> Row:
        row: Row = msgspec.to_builtins(record)  # enums -> their values; ints stay ints
        for field in self.dropped:
            del row[field]
        for field, kind in self.money.items():
            row[field] = units_to_str(row[field], _decimals(kind, scale))
        for field, column in self.renames.items():
            row[column] = row.pop(field)
        if scale is not None:
            row["price_decimals"] = scale.price_decimals
            row["size_decimals"] = scale.size_decimals
        return row

    def from_row(self, mapping: Mapping[str, Any]) -> R:
        row = {str(key): value for key, value in mapping.items()}  # keys may be str subclasses
        for field, column in self.renames.items():
            row[field] = row.pop(column)
        scale = Scale(row["price_decimals"], row["size_decimals"]) if "price_decimals" in row else None
        for field, kind in self.money.items():
            row[field] = to_units(row[field], _decimals(kind, scale), field)
        return msgspec.convert(row, self.record)


ORDERS: RecordCodec[Order] = RecordCodec(
    Order,
    {"size": _SIZE, "limit": _PRICE, "filled_size": _SIZE, "filled_notional": _ATTO, "fee": _ATTO},
    renames={"limit": "limit_price"},
)
FILLS: RecordCodec[Fill] = RecordCodec(Fill, {"price": _PRICE, "size": _SIZE, "notional": _ATTO, "fee": _ATTO})
WALLET_SETS: RecordCodec[WalletSet] = RecordCodec(WalletSet, {})
WALLETS: RecordCodec[Wallet] = RecordCodec(Wallet, {}, dropped=("balance", "hold"))  # balances are sums of lines
WALLET_LINES: RecordCodec[WalletLine] = RecordCodec(WalletLine, {"movement": _ATTO, "hold": _ATTO})


class ChangeSet(msgspec.Struct, kw_only=True):
    """Everything one command changed, written in ONE transaction (all or nothing).

    Orders and wallet sets are upserted as full records (the latest state wins); fills,
    wallets and wallet lines are inserted and a duplicate id fails the whole set. Orders
    and fills travel with the `Scale` of their instrument.
    """

    orders: list[tuple[Order, Scale]] = msgspec.field(default_factory=list)
    fills: list[tuple[Fill, Scale]] = msgspec.field(default_factory=list)
    wallet_sets: list[WalletSet] = msgspec.field(default_factory=list)
    wallets: list[Wallet] = msgspec.field(default_factory=list)
    wallet_lines: list[WalletLine] = msgspec.field(default_factory=list)

    def add_order(self, order: Order, instrument: HasDecimals) -> ChangeSet:
        """Add an order's current state (upserted by id); returns self for chaining."""
        self.orders.append((order, Scale.of(instrument)))
        return self

    def add_fill(self, fill: Fill, instrument: HasDecimals) -> ChangeSet:
        self.fills.append((fill, Scale.of(instrument)))
        return self

    def is_empty(self) -> bool:
        return not (self.orders or self.fills or self.wallet_sets or self.wallets or self.wallet_lines)


class Rows:
    """A ChangeSet encoded as rows per table; several merge into one group commit."""

    __slots__ = ("by_table",)

    UPSERTED = ("orders", "wallet_sets")

    def __init__(self, by_table: dict[str, list[Row]]) -> None:
        self.by_table = by_table

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.by_table.values())

    @classmethod
    def merge(cls, parts: Iterable[Rows]) -> Rows:
        """Concatenate in order; an upserted record that appears twice keeps its last state.

        One upsert statement must not touch a row twice (PostgreSQL refuses it), and the
        later state is the one a sequence of separate transactions would have left.
        """
        merged: dict[str, list[Row]] = {}
        for part in parts:
            for table, rows in part.by_table.items():
                merged.setdefault(table, []).extend(rows)
        for table in cls.UPSERTED:
            rows = merged.get(table)
            if rows and len({row["id"] for row in rows}) != len(rows):
                merged[table] = list({row["id"]: row for row in rows}.values())
        return cls(merged)


def encode(changes: ChangeSet) -> Rows:
    """Snapshot a ChangeSet as rows, exactly, checking the decimals are usable."""
    for _, scale in (*changes.orders, *changes.fills):
        if not (0 <= scale.price_decimals <= ATTO_DECIMALS and 0 <= scale.size_decimals <= ATTO_DECIMALS):
            raise ValueError(f"decimals out of range: {scale}")
    rows = Rows(
        {
            "wallet_sets": [WALLET_SETS.to_row(s) for s in changes.wallet_sets],
            "wallets": [WALLETS.to_row(w) for w in changes.wallets],
            "orders": [ORDERS.to_row(o, scale) for o, scale in changes.orders],
            "fills": [FILLS.to_row(f, scale) for f, scale in changes.fills],
            "wallet_lines": [WALLET_LINES.to_row(line) for line in changes.wallet_lines],
        }
    )
    return Rows.merge([rows])

"""Exact conversion between core records and store rows, and the ChangeSet a transaction writes.

Integers at an instrument's precision become decimal TEXT at that precision ("61737.63");
ATTO ledger amounts become decimal TEXT with up to 18 decimals. Both convert back with
`to_units`, which refuses anything inexact, so a corrupted row fails loudly instead of
drifting a ledger. A ChangeSet is encoded into `Rows` when it is handed over, so records a
caller keeps mutating afterwards cannot leak a later state into an earlier transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from coinwire.core.accounts import Account
from coinwire.core.external_trades import ExternalTrade
from coinwire.core.numbers import ATTO_DECIMALS, to_units, units_to_str
from coinwire.core.orders import Fill, Order
from coinwire.core.positions import FundingPayment, HedgeMode, Position, PositionSettings
from coinwire.core.wallets import Wallet, WalletLine, WalletSet
from coinwire.store import tables

__all__ = [
    "Scale",
    "ChangeSet",
    "Rows",
    "encode",
    "units_text",
    "RecordCodec",
    "ACCOUNTS",
    "ORDERS",
    "FILLS",
    "WALLET_SETS",
    "WALLETS",
    "WALLET_LINES",
    "POSITIONS",
    "POSITION_SETTINGS",
    "POSITION_MODES",
    "FUNDING_PAYMENTS",
    "EXTERNAL_TRADES",
    "COLUMNS",
    "write_statement",
    "sqlite_write_statements",
]

Row = dict[str, Any]
Values = tuple[Any, ...]  # a row as its table's columns in order
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


_TEXTS: list[dict[int, str]] = [{} for _ in range(ATTO_DECIMALS + 1)]  # per decimals: units -> text
_TEXTS_LIMIT = 4096


def units_text(units: int, decimals: int) -> str:
    """`units_to_str`, memoised: an order's size, price and amounts are rendered for its row,
    its answer and its notifications, and sizes and prices repeat across orders."""
    if not 0 <= decimals <= ATTO_DECIMALS:
        return units_to_str(units, decimals)
    texts = _TEXTS[decimals]
    text = texts.get(units)
    if text is None:
        if len(texts) >= _TEXTS_LIMIT:
            texts.clear()
        text = texts[units] = units_to_str(units, decimals)
    return text


def _compile_encoder(
    record: type[msgspec.Struct], money: dict[str, str], renames: dict[str, str], dropped: tuple[str, ...], columns: tuple[str, ...],
    derived: Mapping[str, Callable[[Any], Any]] | None = None,
) -> Callable[[Any, int, int], Values]:
    """Build `encode(record, price_decimals, size_decimals) -> values` for one record type: the
    tuple of its table's `columns`, in that order.

    Enums become their values, money fields decimal text at their kind's decimals, other
    fields pass through; the generated source is plain Python over the struct's own fields.
    `derived`: columns computed from the whole record (a position's key).
    """
    values: dict[str, str] = {"price_decimals": "pd", "size_decimals": "sd"}  # columns of scaled records only
    namespace: dict[str, Any] = {"_text": units_text, "_texts": _TEXTS}
    for column, function in (derived or {}).items():
        namespace[f"_derived_{column}"] = function
        values[column] = f"_derived_{column}(r)"
    for field in msgspec.inspect.type_info(record).fields:  # type: ignore[attr-defined]
        name = field.name
        if name in dropped:
            continue
        value = f"r.{name}"
        if name in money:  # the memo's dict is read inline; units_text fills it on a miss
            decimals = {_PRICE: "pd", _SIZE: "sd", _ATTO: str(ATTO_DECIMALS)}[money[name]]
            value = f"(_texts[{decimals}].get({value}) or _text({value}, {decimals}))"
        elif isinstance(field.type, msgspec.inspect.EnumType):
            value = f"{value}._value_"  # `.value` is a slow descriptor in Python 3.11
        elif isinstance(field.type, msgspec.inspect.UnionType) and any(
            isinstance(t, msgspec.inspect.EnumType) for t in field.type.types
        ):
            value = f"(None if {value} is None else {value}._value_)"
        values[renames.get(name, name)] = value
    missing = [c for c in columns if c not in values]
    if missing:
        raise ValueError(f"{record.__name__} has no value for the columns {missing}")
    source = "def encode(r, pd, sd):\n    return (" + "".join(f"{values[c]}, " for c in columns) + ")\n"
    exec(compile(source, f"<codec {record.__name__}>", "exec"), namespace)  # noqa: S102 - our own field names
    return namespace["encode"]  # type: ignore[no-any-return]


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

    Encoding runs for every order, fill and ledger line on the order path, so the mapping
    is compiled once into a plain function that reads each field and builds the row in one
    expression (what `dataclasses` does for `__init__`): a few microseconds a row instead of
    a generic walk over `msgspec.to_builtins` output. The row is the tuple of the table's
    columns in their order (`to_values`), what ChangeSets are stored as (`encode`): the SQLite
    writer binds it as it is, with no dict to build and pick the parameters from.
    """

    __slots__ = ("record", "money", "renames", "columns", "derived", "_encode", "_scaled")

    def __init__(
        self,
        record: type[R],
        table: Table,
        money: dict[str, str],
        renames: dict[str, str] | None = None,
        dropped: tuple[str, ...] = (),
        derived: Mapping[str, Callable[[R], Any]] | None = None,
    ) -> None:
        self.record = record
        self.money = money
        self.renames = renames or {}
        self.derived = tuple(derived or ())  # columns computed from the record, not read back
        self.columns: tuple[str, ...] = tuple(c.name for c in table.columns)
        self._scaled = any(kind != _ATTO for kind in money.values())  # needs the instrument's Scale to write
        self._encode: Callable[[R, int, int], Values] = _compile_encoder(record, money, self.renames, dropped, self.columns,
                                                                         derived)

    def to_values(self, record: R, scale: Scale | None = None) -> Values:
        """The row as a tuple in the table's column order (`columns`)."""
        if scale is None:
            if self._scaled:
                raise ValueError(f"{self.record.__name__} amounts need the instrument's Scale")
            return self._encode(record, 0, 0)
        return self._encode(record, scale.price_decimals, scale.size_decimals)

    def to_row(self, record: R, scale: Scale | None = None) -> Row:
        """The row keyed by column name."""
        return dict(zip(self.columns, self.to_values(record, scale), strict=True))

    def from_row(self, mapping: Mapping[Any, Any]) -> R:
        row = {str(key): value for key, value in mapping.items()}  # keys may be str subclasses
        for column in self.derived:
            row.pop(column, None)
        for field, column in self.renames.items():
            row[field] = row.pop(column)
        scale = Scale(row["price_decimals"], row["size_decimals"]) if "price_decimals" in row else None
        for field, kind in self.money.items():
            row[field] = to_units(row[field], _decimals(kind, scale), field)
        return msgspec.convert(row, self.record)


ORDERS: RecordCodec[Order] = RecordCodec(
    Order,
    tables.orders,
    {"size": _SIZE, "limit": _PRICE, "filled_size": _SIZE, "filled_notional": _ATTO, "fee": _ATTO, "funds": _ATTO,
     "stop_price": _PRICE, "trail_delta": _PRICE, "activation_price": _PRICE, "trail_best": _PRICE},
    renames={"limit": "limit_price"},
)
FILLS: RecordCodec[Fill] = RecordCodec(Fill, tables.fills, {"price": _PRICE, "size": _SIZE, "notional": _ATTO, "fee": _ATTO})
ACCOUNTS: RecordCodec[Account] = RecordCodec(Account, tables.accounts, {})
WALLET_SETS: RecordCodec[WalletSet] = RecordCodec(WalletSet, tables.wallet_sets, {})
WALLETS: RecordCodec[Wallet] = RecordCodec(Wallet, tables.wallets, {}, dropped=("balance", "hold"))  # balances are sums of lines
WALLET_LINES: RecordCodec[WalletLine] = RecordCodec(WalletLine, tables.wallet_lines, {"movement": _ATTO, "hold": _ATTO})


POSITIONS: RecordCodec[Position] = RecordCodec(
    Position, tables.positions,
    {"size": _SIZE, "entry_cost": _ATTO, "isolated_margin": _ATTO, "realised_pnl": _ATTO, "funding": _ATTO, "fees": _ATTO,
     "mark": _PRICE},
)
POSITION_SETTINGS: RecordCodec[PositionSettings] = RecordCodec(
    PositionSettings, tables.position_settings, {}, derived={"id": lambda s: f"{s.account_id}:{s.exchange}:{s.symbol}"})
POSITION_MODES: RecordCodec[HedgeMode] = RecordCodec(
    HedgeMode, tables.position_modes, {}, derived={"id": lambda m: f"{m.account_id}:{m.exchange}"})
FUNDING_PAYMENTS: RecordCodec[FundingPayment] = RecordCodec(
    FundingPayment, tables.funding_payments, {"size": _SIZE, "mark": _PRICE, "amount": _ATTO})
# the columns of each change-set table, in the order of the tuples `encode` makes for it
COLUMNS: dict[str, tuple[str, ...]] = {
    table.name: codec.columns  # type: ignore[attr-defined]  # mypy joins the codecs to `object`
    for table, codec in zip(
        (tables.accounts, tables.orders, tables.fills, tables.wallet_sets, tables.wallets, tables.wallet_lines,
         tables.positions, tables.position_settings, tables.position_modes, tables.funding_payments),
        (ACCOUNTS, ORDERS, FILLS, WALLET_SETS, WALLETS, WALLET_LINES, POSITIONS, POSITION_SETTINGS, POSITION_MODES,
         FUNDING_PAYMENTS), strict=True,
    )
}
EXTERNAL_TRADES: RecordCodec[ExternalTrade] = RecordCodec(
    ExternalTrade, tables.external_trades, {"size": _ATTO, "notional": _ATTO, "fee": _ATTO})
COLUMNS["external_trades"] = EXTERNAL_TRADES.columns
COLUMNS["owners"] = tuple(column.name for column in tables.owners.columns)  # (kind, resource_id, user_id)


class ChangeSet(msgspec.Struct, kw_only=True):
    """Everything one command changed, written in ONE transaction (all or nothing).

    Orders and wallet sets are upserted as full records (the latest state wins); fills,
    wallets and wallet lines are inserted and a duplicate id fails the whole set. Orders
    and fills travel with the `Scale` of their instrument.
    """

    orders: list[tuple[Order, Scale]] = msgspec.field(default_factory=list)
    accounts: tuple[Account, ...] = ()  # accounts this command created or changed (a tuple: no list per order)
    fills: list[tuple[Fill, Scale]] = msgspec.field(default_factory=list)
    wallet_sets: list[WalletSet] = msgspec.field(default_factory=list)
    wallets: list[Wallet] = msgspec.field(default_factory=list)
    wallet_lines: list[WalletLine] = msgspec.field(default_factory=list)
    # (kind, resource id, user id) of what this command created for a user: committed with it, so an
    # acknowledged wallet set can never come back after a crash without its owner
    owners: tuple[tuple[str, str, int], ...] = ()  # a tuple: no list allocated for every order's change set
    # perpetuals (None on a spot command: nothing allocated per order): positions in their new state, with
    # their instrument's Scale (upserted by key), leverage and margin mode, hedge mode, funding payments
    positions: list[tuple[Position, Scale]] | None = None
    settings: list[PositionSettings] | None = None
    modes: list[HedgeMode] | None = None
    funding: list[tuple[FundingPayment, Scale]] | None = None
    external_trades: tuple[ExternalTrade, ...] = ()  # an external account's webhook trade, with the lines it applied

    def add_order(self, order: Order, instrument: HasDecimals) -> ChangeSet:
        """Add an order's current state (upserted by id); returns self for chaining."""
        self.orders.append((order, Scale.of(instrument)))
        return self

    def add_fill(self, fill: Fill, instrument: HasDecimals) -> ChangeSet:
        self.fills.append((fill, Scale.of(instrument)))
        return self

    def add_position(self, position: Position, instrument: HasDecimals) -> ChangeSet:
        """Add a position's current state (upserted by its id); returns self for chaining."""
        if self.positions is None:
            self.positions = []
        self.positions.append((position, Scale.of(instrument)))
        return self

    def add_funding(self, payment: FundingPayment, instrument: HasDecimals) -> ChangeSet:
        if self.funding is None:
            self.funding = []
        self.funding.append((payment, Scale.of(instrument)))
        return self

    def is_empty(self) -> bool:
        return not (self.orders or self.fills or self.wallet_sets or self.wallets or self.wallet_lines or self.owners or self.accounts
                    or self.positions or self.settings or self.modes or self.funding or self.external_trades)


if any(COLUMNS[name][0] != "id" for name in ("accounts", "orders", "wallet_sets")):  # pragma: no cover - a schema edit
    raise RuntimeError("Rows.merge keys upserted rows by their first column, which must be the id")


class Rows:
    """A ChangeSet encoded as rows per table; several merge into one group commit.

    Each row is a tuple in its table's column order (`COLUMNS`), the id first.
    """

    __slots__ = ("by_table",)

    UPSERTED = ("accounts", "orders", "wallet_sets", "positions", "position_settings", "position_modes")

    def __init__(self, by_table: dict[str, list[Values]]) -> None:
        self.by_table = by_table

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.by_table.values())

    def __bool__(self) -> bool:  # asked once per commit: no count needed
        return any(self.by_table.values())

    @classmethod
    def merge(cls, parts: Iterable[Rows]) -> Rows:
        """Concatenate in order; an upserted record that appears twice keeps its last state.

        One upsert statement must not touch a row twice (PostgreSQL refuses it), and the
        later state is the one a sequence of separate transactions would have left.
        """
        merged: dict[str, list[Values]] = {}
        for part in parts:
            for table, rows in part.by_table.items():
                merged.setdefault(table, []).extend(rows)
        for table in cls.UPSERTED:
            rows = merged.get(table, [])
            if rows and len({row[0] for row in rows}) != len(rows):
                merged[table] = list({row[0]: row for row in rows}.values())
        owner_rows = merged.get("owners")
        if owner_rows and len(owner_rows) > 1:  # keyed by (kind, resource_id): the last owner wins
            merged["owners"] = list({row[:2]: row for row in owner_rows}.values())
        return cls(merged)

    def as_dicts(self, table: str) -> list[Row]:
        """One table's rows keyed by column name (for SQLAlchemy's executemany), as `RecordCodec.to_row`."""
        columns = COLUMNS[table]
        return [dict(zip(columns, row, strict=True)) for row in self.by_table.get(table, ())]


def encode(changes: ChangeSet) -> Rows:
    """Snapshot a ChangeSet as rows, exactly, checking the decimals are usable (empty tables left out)."""
    by_table: dict[str, list[Values]] = {}
    if changes.accounts:
        by_table["accounts"] = [ACCOUNTS.to_values(a) for a in changes.accounts]
    if changes.wallet_sets:
        by_table["wallet_sets"] = [WALLET_SETS.to_values(s) for s in changes.wallet_sets]
    if changes.wallets:
        by_table["wallets"] = [WALLETS.to_values(w) for w in changes.wallets]
    if changes.orders:
        by_table["orders"] = [ORDERS.to_values(o, _checked(scale)) for o, scale in changes.orders]
    if changes.fills:
        by_table["fills"] = [FILLS.to_values(f, _checked(scale)) for f, scale in changes.fills]
    if changes.wallet_lines:
        by_table["wallet_lines"] = [WALLET_LINES.to_values(line) for line in changes.wallet_lines]
    if changes.owners:
        by_table["owners"] = [(kind, str(resource_id), user_id) for kind, resource_id, user_id in changes.owners]
    if changes.external_trades:
        by_table["external_trades"] = [EXTERNAL_TRADES.to_values(t) for t in changes.external_trades]
    perpetual = changes.positions or changes.settings or changes.modes or changes.funding
    if perpetual:
        _encode_perpetual(changes, by_table)
    rows = Rows(by_table)
    # the same record twice keeps its last state
    if (len(changes.orders) > 1 or len(changes.wallet_sets) > 1 or len(changes.owners) > 1 or len(changes.accounts) > 1
            or perpetual):
        return Rows.merge([rows])
    return rows


def _encode_perpetual(changes: ChangeSet, by_table: dict[str, list[Values]]) -> None:
    """The perpetuals' rows of a change set (only called when it has some: a spot order pays nothing here)."""
    if changes.positions:
        by_table["positions"] = [POSITIONS.to_values(p, _checked(scale)) for p, scale in changes.positions]
    if changes.settings:
        by_table["position_settings"] = [POSITION_SETTINGS.to_values(s) for s in changes.settings]
    if changes.modes:
        by_table["position_modes"] = [POSITION_MODES.to_values(m) for m in changes.modes]
    if changes.funding:
        by_table["funding_payments"] = [FUNDING_PAYMENTS.to_values(f, _checked(scale)) for f, scale in changes.funding]


def _checked(scale: Scale) -> Scale:
    if not (0 <= scale.price_decimals <= ATTO_DECIMALS and 0 <= scale.size_decimals <= ATTO_DECIMALS):
        raise ValueError(f"decimals out of range: {scale}")
    return scale


def write_statement(table: Table, dialect: str) -> Insert:
    """A plain INSERT, or for upserted tables INSERT .. ON CONFLICT (key) DO UPDATE every other column.

    Owners are keyed by (kind, resource_id), every other upserted table by its id.
    """
    if table.name not in Rows.UPSERTED and table.name != "owners":
        return insert(table)
    keys = [table.c.kind, table.c.resource_id] if table.name == "owners" else [table.c.id]
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    updates = {column.name: statement.excluded[column.name] for column in table.columns if column not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def sqlite_write_statements() -> dict[str, Insert]:
    """The SQLite statements of the change-set tables, for a writer outside a Store: the journal's helper, which
    imports this module rather than the Store's (SQLAlchemy's asyncio engine and the migrations cost it start-up)."""
    return {table.name: write_statement(table, "sqlite") for table in tables.CHANGE_SET_TABLES}

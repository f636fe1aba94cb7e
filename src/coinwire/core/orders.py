"""Orders and their explicit state machine: pending -> (untriggered -> triggered ->) open -> done.

    pending ──accept──▶ open ──fill (partial)──▶ open
       │  │               │
       │  └─accept (conditional)─▶ untriggered ──trigger──▶ triggered ──child rests──▶ open
       │                          │                        │
       └──────────────────────────┴────────────────────────┴──fill (complete) / cancel / expire / kill──▶ done

A conditional order (stop, take-profit, trailing stop) waits `untriggered`, holding its
funds, until its trigger price is reached; it then fires once and lives on as its child (a
market or a limit order) under the same id. `done` is terminal and carries a `done_reason`.
Invalid requests never become orders: they are refused at the edge with a stable error code
and nothing is written.
"""

from __future__ import annotations

import enum

import msgspec

from coinwire.core.instruments import Instrument

__all__ = ["Side", "PositionSide",
           "OrderType", "OrderStatus", "DoneReason", "TriggerSource", "TimeInForce", "Order", "Fill", "InvalidTransition",
           "TRANSITIONS", "OrderRequest", "CONDITIONAL_TYPES", "CLIENT_ORDER_TYPES"]


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return _SELL if self is _BUY else _BUY


class PositionSide(str, enum.Enum):
    """Which position of a perpetual an order trades: the one net position (one-way mode) or a hedge-mode leg."""

    BOTH = "both"  # one-way mode: buys and sells net into one signed position
    LONG = "long"  # hedge mode: the long leg (a buy opens it, a sell closes it)
    SHORT = "short"  # hedge mode: the short leg (a sell opens it, a buy closes it)


class OrderType(str, enum.Enum):
    LIMIT = "limit"  # good till cancelled; rests on the book
    MARKET = "market"  # walks the book; the remainder is cancelled
    IOC = "limit-immediate-cancel"  # takes what it can at the limit, cancels the rest
    FOK = "limit-fill-kill"  # fills entirely at the limit or not at all
    POST_ONLY = "limit-post-only"  # rests only; refused if it would take liquidity
    # conditional: wait untriggered for `stop_price`, then live on as a market or a limit order (`time_in_force`)
    STOP_MARKET = "stop-market"  # a sell fires at or below stop_price, a buy at or above
    STOP_LIMIT = "stop-limit"
    TAKE_PROFIT_MARKET = "take-profit-market"  # the mirror image: a sell fires at or above stop_price, a buy at or below
    TAKE_PROFIT_LIMIT = "take-profit-limit"
    TRAILING_STOP = "trailing-stop"  # a stop that follows the best price seen since activation; fires a market order
    LIQUIDATION = "liquidation"  # made by the venue to close a liquidated position; never accepted from a client

    @property
    def rests(self) -> bool:
        return self is _LIMIT or self is _POST_ONLY

    @property
    def conditional(self) -> bool:
        """Waits for a trigger before it reaches the book."""
        return self in CONDITIONAL_TYPES

    @property
    def takes_profit(self) -> bool:
        """Fires when the price moves the order's way (a sell at or above its price), not against it."""
        return self is OrderType.TAKE_PROFIT_MARKET or self is OrderType.TAKE_PROFIT_LIMIT

    @property
    def child_is_limit(self) -> bool:
        """Fires a limit order at `limit` (else a market order)."""
        return self is OrderType.STOP_LIMIT or self is OrderType.TAKE_PROFIT_LIMIT


class OrderStatus(str, enum.Enum):
    PENDING = "pending"
    UNTRIGGERED = "untriggered"  # a conditional order waiting for its trigger, holding its funds
    TRIGGERED = "triggered"  # fired; its child is on its way to the book (a live venue may take a moment)
    OPEN = "open"
    DONE = "done"


class TriggerSource(str, enum.Enum):
    """Which price fires a conditional order."""

    LAST = "last"  # trades (the default)
    MARK = "mark"  # a perpetual's mark price
    BID_ASK = "bid_ask"  # the touch of the side the order would take: the bid for a sell, the ask for a buy


class TimeInForce(str, enum.Enum):
    """How long the limit order a conditional order fires lives (plain limits say it in their type)."""

    GTC = "GTC"  # until cancelled
    IOC = "IOC"  # takes what it can at once, the rest is cancelled
    FOK = "FOK"  # all at once or nothing
    GTD = "GTD"  # until `expire_at`


class DoneReason(str, enum.Enum):
    FILLED = "filled"
    CANCELLED = "cancelled"  # by the user, or the unfilled remainder of a market/IOC order
    EXPIRED = "expired"  # cancel_after elapsed
    KILLED = "killed"  # a fill-or-kill that could not fill completely
    REJECTED = "rejected"  # a live venue refused the order (the refusal is also the make_order answer)
    LIQUIDATED = "liquidated"  # cancelled because its position was liquidated, or a liquidation order's own end


# Members as module constants for the order path: on Python 3.11 `Enum.MEMBER` goes through
# the enum metaclass's attribute hook (~90 ns, a dozen times an order); a global is ~8 ns.
_BUY, _SELL = Side.BUY, Side.SELL
_LIMIT, _POST_ONLY = OrderType.LIMIT, OrderType.POST_ONLY
_OPEN, _DONE = OrderStatus.OPEN, OrderStatus.DONE

CONDITIONAL_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET,
                               OrderType.TAKE_PROFIT_LIMIT, OrderType.TRAILING_STOP})
# what a client may ask for: every type but LIQUIDATION, which only a venue makes (parse client input against this)
CLIENT_ORDER_TYPES: dict[str, OrderType] = {t.value: t for t in OrderType if t is not OrderType.LIQUIDATION}


TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.OPEN, OrderStatus.UNTRIGGERED, OrderStatus.DONE}),
    # untriggered -> untriggered: a trailing stop's level moved; a fired order never goes back
    OrderStatus.UNTRIGGERED: frozenset({OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED, OrderStatus.DONE}),
    OrderStatus.TRIGGERED: frozenset({OrderStatus.OPEN, OrderStatus.DONE}),
    OrderStatus.OPEN: frozenset({OrderStatus.OPEN, OrderStatus.DONE}),
    OrderStatus.DONE: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A bug: the engine tried to move an order along an edge the state machine lacks."""


class Order(msgspec.Struct, kw_only=True, gc=False):
    """An order as the venue sees it. Sizes and prices are integer units of its instrument.

    Timestamps are integer nanoseconds since the epoch, given by the caller (the core never
    reads a clock). `filled_notional` and `fee` are ATTO of the quote currency. Untracked by
    the garbage collector (`gc=False`, as `WalletLine`): scalar fields only, so no cycles, and
    every resting order stays in memory.
    """

    id: int
    client_oid: str
    exchange: str
    symbol: str
    side: Side
    type: OrderType
    size: int
    limit: int = 0  # 0 for market orders
    cancel_after: int = 0  # seconds; 0 = never
    wallet_set_id: int | None = None
    run_id: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    done_reason: DoneReason | None = None
    created_at: int = 0
    exchange_at: int | None = None
    done_at: int | None = None
    last_updated_at: int = 0
    filled_size: int = 0
    filled_notional: int = 0
    fee: int = 0
    fee_currency: str | None = None  # None: the quote currency; a live venue may charge the asset received
    owner_id: int | None = None  # the user who placed it (None: no user, e.g. before users existed; admins see it)
    account_id: int = 0  # the account whose funds it spends (0: a single-account ledger, as a backtest's)
    seq: int = 0  # the account's stream sequence of this order's latest notification (restores the counter at start)
    # ATTO of the quote a market buy by amount may spend, fee included (0: sized by `size`); its `size` is then
    # what the book gave for it when accepted (a live venue's fills may set it higher: the venue sizes it)
    funds: int = 0
    # --- conditional orders (0 / None / False: a plain order) ---
    stop_price: int = 0  # the trigger level in price units; a trailing stop's current level (0 until it is activated)
    trigger: TriggerSource = TriggerSource.LAST
    trail_ppm: int = 0  # a trailing stop's distance in millionths of the best price (1.5% = 15_000) ...
    trail_delta: int = 0  # ... or in price units: exactly one of the two is set for a trailing stop
    activation_price: int = 0  # a trailing stop starts following once this is reached (0: at once)
    trail_best: int = 0  # the best price a trailing stop has seen since activation (0: not active yet)
    time_in_force: TimeInForce = TimeInForce.GTC  # of the limit order a conditional limit fires
    expire_at: int = 0  # nanoseconds: good till this instant (GTD), whatever its state; 0: no date
    triggered_at: int | None = None  # when it fired
    list_id: int = 0  # an OCO's legs share it (the first leg's id): one filling or firing cancels the other
    parent_id: int = 0  # a bracket's child: its parent's id (children are placed once the parent has filled)
    bracket: str | None = None  # a bracket parent's children to place: core.conditional.Bracket as JSON, integer units
    emulated: bool = False  # a live venue lacks the type: coinwire fires it from the mirrored market
    reduce_only: bool = False  # may only shrink a position (enforced for derivatives)
    position_side: PositionSide = PositionSide.BOTH  # a perpetual's position it trades (hedge mode: LONG or SHORT)

    @property
    def remaining(self) -> int:
        return self.size - self.filled_size

    @property
    def is_done(self) -> bool:
        return self.status is _DONE

    @property
    def expires_at(self) -> int | None:
        """Nanosecond instant at which `cancel_after` or `expire_at` (the earlier) ends the order, if it has one."""
        if not self.cancel_after:
            return self.expire_at or None
        after = self.created_at + self.cancel_after * 1_000_000_000
        return min(after, self.expire_at) if self.expire_at else after

    @property
    def is_untriggered(self) -> bool:
        return self.status is OrderStatus.UNTRIGGERED

    def move(self, status: OrderStatus, ts: int, reason: DoneReason | None = None) -> None:
        """Follow one edge of the state machine, or fail loudly (a bug, never user input)."""
        if status not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"order {self.id}: {self.status.value} -> {status.value} is not allowed")
        if status is _DONE:
            if reason is None:
                raise InvalidTransition(f"order {self.id}: done needs a reason")
            self.done_reason = reason
            self.done_at = ts
        if status is _OPEN and self.exchange_at is None:
            self.exchange_at = ts
        self.status = status
        self.last_updated_at = ts

    def record_fill(self, price: int, size: int, notional: int, fee: int, ts: int, fee_currency: str | None = None) -> None:
        """Add one fill's size, notional and fee; a fill beyond the order's size is a bug.

        `fee` adds to the order's total when it is in the order's fee currency, which the first
        fill sets (venues charge one order's fills in one currency: the quote, or the asset received).
        """
        if size <= 0 or size > self.remaining:
            raise InvalidTransition(f"order {self.id}: fill of {size} with {self.remaining} remaining")
        if self.status is _DONE:
            raise InvalidTransition(f"order {self.id}: fill on a done order")
        if self.filled_size == 0:
            self.fee_currency = fee_currency
        self.filled_size += size
        self.filled_notional += notional
        if fee_currency == self.fee_currency:
            self.fee += fee
        self.last_updated_at = ts


class Fill(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One execution against one order: the seed's Trade. Immutable and replayable; scalar fields, untracked (`gc=False`)."""

    id: int
    order_id: int
    client_oid: str
    exchange: str
    symbol: str
    side: Side
    order_type: OrderType
    price: int
    size: int
    notional: int  # ATTO of the quote currency
    fee: int  # ATTO of the quote currency
    maker: bool
    ts: int
    run_id: str | None = None
    wallet_set_id: int | None = None
    ext_id: str | None = None  # the venue's trade id (live exchanges)
    fee_currency: str | None = None  # None: the quote currency
    account_id: int = 0  # the order's account
    position_side: PositionSide = PositionSide.BOTH  # a perpetual fill's position (hedge mode: its leg)
    seq: int = 0  # its notification's account sequence, as stored (the gateway sets it on the row it commits; 0: none)


class OrderRequest:
    """A make_order request after parsing: exact units, known instrument (what the gateway takes from the api and the paper runtime)."""

    __slots__ = ("exchange", "instrument", "side", "type", "size", "limit", "cancel_after", "client_oid", "wallet_set_id", "run_id",
                 "budget", "owner_id", "account_id", "funds", "stop_price", "trigger", "trail_ppm", "trail_delta", "activation_price",
                 "time_in_force", "expire_at", "allow_immediate", "reduce_only", "bracket", "position_side")

    def __init__(
        self,
        *,
        exchange: str,
        instrument: Instrument,
        side: Side,
        type: OrderType,
        size: int,
        limit: int,
        cancel_after: int,
        client_oid: str,
        wallet_set_id: int | None,
        run_id: str | None,
        budget: int | None = None,
        owner_id: int | None = None,
        account_id: int | None = None,
        funds: int = 0,
        stop_price: int = 0,
        trigger: TriggerSource = TriggerSource.LAST,
        trail_ppm: int = 0,
        trail_delta: int = 0,
        activation_price: int = 0,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_at: int = 0,
        allow_immediate: bool = False,
        reduce_only: bool = False,
        bracket: str | None = None,
        position_side: PositionSide = PositionSide.BOTH,
    ) -> None:
        self.exchange = exchange
        self.instrument = instrument
        self.side = side
        self.type = type
        self.size = size
        self.limit = limit
        self.cancel_after = cancel_after
        self.client_oid = client_oid
        self.wallet_set_id = wallet_set_id
        self.run_id = run_id
        self.budget = budget  # ATTO of the quote a market buy may spend (its hold): an all-in buy sized on the book
        self.owner_id = owner_id  # the placing user, stored in the order row with the order
        # the account it spends from, already checked for the caller (None: the wallet set's account on the
        # exchange, else the owner's own account there, made on first use)
        self.account_id = account_id
        self.funds = funds  # ATTO of the quote a market buy spends, fee included (0: `size` says how much); size is then 0
        # a conditional order's (Order says what each is); allow_immediate: accept a stop the market has already passed
        self.stop_price = stop_price
        self.trigger = trigger
        self.trail_ppm = trail_ppm
        self.trail_delta = trail_delta
        self.activation_price = activation_price
        self.time_in_force = time_in_force
        self.expire_at = expire_at
        self.allow_immediate = allow_immediate
        self.reduce_only = reduce_only
        self.bracket = bracket  # a parent's children (core.conditional.Bracket as JSON), placed as an OCO once it filled
        self.position_side = position_side  # a perpetual order's position (hedge mode: LONG or SHORT)

    def same_as(self, order: Order) -> bool:
        return (
            order.exchange == self.exchange
            and order.symbol == self.instrument.symbol
            and order.side is self.side
            and order.type is self.type
            and (order.size == self.size or self.funds > 0)  # a buy by funds: the book sized it
            and order.limit == self.limit
            and order.funds == self.funds
            and (order.stop_price == self.stop_price or self.trail_ppm > 0 or self.trail_delta > 0)  # a trailing level moves
            and order.trail_ppm == self.trail_ppm
            and order.trail_delta == self.trail_delta
            and order.bracket == self.bracket
            and order.position_side is self.position_side
            and order.wallet_set_id == self.wallet_set_id
            and (self.account_id is None or order.account_id == self.account_id)
        )

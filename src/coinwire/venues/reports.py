"""What a live venue says about our orders: exact order and fill reports, in coinwire's integer units.

A venue's answer is reconciled against the gateway's own order, so the reports carry the
venue's truth and nothing else: cumulative sizes and notionals (authoritative), and fills
identified by the venue's trade id (apply each once). Prices and sizes are integers at the
instrument's precision; notionals and fees are integers of ATTO (10**-18) of their currency.
Timestamps are integer nanoseconds since the epoch, as everywhere in coinwire.
"""

from __future__ import annotations

import enum

import msgspec

from coinwire.core.orders import DoneReason, OrderStatus, OrderType, Side, TimeInForce

__all__ = ["FillReport", "Liquidity", "OrderReport", "PositionReport", "Report", "ReportReason"]


class Liquidity(str, enum.Enum):
    MAKER = "maker"  # our resting order was hit
    TAKER = "taker"  # our order took liquidity (every fill an order makes while it is being placed)


class ReportReason(str, enum.Enum):
    """Why the venue finished an order (its words, before coinwire's DoneReason)."""

    FILLED = "filled"
    CANCELLED = "cancelled"  # cancelled on request
    REJECTED = "rejected"  # refused after acceptance (rare: most refusals are errors of `place`)
    EXPIRED = "expired"  # the venue ended it: unfilled rest of a market/IOC order, a FOK that could not fill


class FillReport(msgspec.Struct, frozen=True, kw_only=True):
    """One execution of one of our orders at the venue; `trade_id` is unique per symbol at the venue."""

    trade_id: str
    venue_order_id: str
    client_oid: str  # "" when the venue's trade does not name it and the order is not known to the adapter
    symbol: str
    side: Side
    price: int  # price units of the instrument
    size: int  # size units of the instrument
    notional: int  # ATTO of the quote currency: price x size, exactly
    fee: int  # ATTO of `fee_currency`
    fee_currency: str  # "" when the venue charged nothing
    liquidity: Liquidity
    ts: int  # ns


class OrderReport(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's view of one order: status and cumulative execution, plus the fills this report brings.

    `filled_size` and `filled_notional` are cumulative and authoritative; `fills` holds the fills
    known when the report was made (all of them for `place`, `fetch` and `cancel`; none for a
    streamed status update, whose fills arrive as separate FillReports). `average_price` is
    filled_notional / filled_size rounded to the nearest price unit (0 before any fill).
    `working` is False while the venue holds a conditional order untriggered (Binance:
    `isWorking` false, status NEW), True once it triggered and for every plain order.
    """

    client_oid: str
    venue_order_id: str
    symbol: str
    side: Side
    status: OrderStatus  # OPEN or DONE
    reason: ReportReason | None  # set when DONE
    size: int
    limit: int  # 0 for market orders
    filled_size: int
    filled_notional: int  # ATTO of the quote currency
    average_price: int
    ts: int  # ns: the venue's last update of the order
    fills: tuple[FillReport, ...] = ()
    working: bool = True

    @property
    def is_done(self) -> bool:
        return self.status is OrderStatus.DONE

    def done_reason(self, order_type: OrderType, time_in_force: TimeInForce = TimeInForce.GTC) -> DoneReason | None:
        """coinwire's DoneReason for this report of an order of `order_type` (None while open or rejected).

        A venue `expired` is coinwire's `killed` for a fill-or-kill (a FOK order, or a triggered
        limit whose `time_in_force` is FOK) and `cancelled` for the unfilled rest of a market or
        IOC order, or an OCO leg the venue ended when the other one went; a venue rejection is
        not a done order in coinwire (the gateway reports it as a refusal).
        """
        if self.reason is None or self.reason is ReportReason.REJECTED:
            return None
        if self.reason is ReportReason.EXPIRED:
            killed = order_type is OrderType.FOK or (time_in_force is TimeInForce.FOK and order_type.child_is_limit)
            return DoneReason.KILLED if killed else DoneReason.CANCELLED
        return DoneReason.FILLED if self.reason is ReportReason.FILLED else DoneReason.CANCELLED


Report = OrderReport | FillReport


class PositionReport(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's view of one perpetual position leg: what it holds, at what entry, with which settings.

    The venue is the authority on a live account's positions: the live venue compares these with
    the PositionBook's and takes the venue's word (`venues/live_positions.py`). `size` is signed
    (> 0 long, < 0 short) in size units; prices in price units; money in ATTO of the settle
    currency. `leg` is `both` in one-way mode, `long` / `short` in hedge mode.
    """

    symbol: str
    leg: str  # both | long | short
    size: int
    entry_price: int
    mark: int
    leverage: int
    margin_mode: str  # isolated | cross
    isolated_margin: int  # the isolated wallet (0 for cross)
    unrealised_pnl: int
    liquidation_price: int  # 0: none (flat, or the account cannot be liquidated)
    ts: int  # ns

"""venues.reports: the venue's reasons as coinwire's DoneReason."""

from __future__ import annotations

import pytest

from coinwire.core.orders import DoneReason, OrderStatus, OrderType, Side
from coinwire.venues.reports import OrderReport, ReportReason


def report(reason: ReportReason | None) -> OrderReport:
    return OrderReport(
        client_oid="c", venue_order_id="1", symbol="BTC/USDT", side=Side.BUY,
        status=OrderStatus.OPEN if reason is None else OrderStatus.DONE, reason=reason,
        size=10, limit=1, filled_size=0, filled_notional=0, average_price=0, ts=0,
    )


@pytest.mark.parametrize(
    ("reason", "kind", "expected"),
    [
        (None, OrderType.LIMIT, None),
        (ReportReason.FILLED, OrderType.FOK, DoneReason.FILLED),
        (ReportReason.CANCELLED, OrderType.LIMIT, DoneReason.CANCELLED),
        (ReportReason.EXPIRED, OrderType.FOK, DoneReason.KILLED),
        (ReportReason.EXPIRED, OrderType.IOC, DoneReason.CANCELLED),
        (ReportReason.EXPIRED, OrderType.MARKET, DoneReason.CANCELLED),
        (ReportReason.REJECTED, OrderType.LIMIT, None),
    ],
)
def test_done_reason(reason: ReportReason | None, kind: OrderType, expected: DoneReason | None) -> None:
    assert report(reason).done_reason(kind) is expected
    assert report(reason).is_done is (reason is not None)

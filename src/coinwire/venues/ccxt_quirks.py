"""Exchange quirks of the live venue as data: CCXT options it needs, client ids a venue takes, trade paging, request lifetime.

Adding an exchange's quirk means adding a row here, not a branch in the adapter.
"""

from __future__ import annotations

import re
from typing import Any, Final

from coinwire.core.errors import InvalidInput

__all__ = ["TRADES_FROM_ID", "check_client_oid", "configure", "order_ttl"]

# CCXT options the adapter relies on, merged into the client's own
_CLIENT_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "binance": {"fetchOpenOrders": {"warnWithoutSymbol": False}},  # all open orders are asked for on purpose
}
# the client order ids a venue accepts (Binance newClientOrderId)
_CLIENT_OID: Final[dict[str, re.Pattern[str]]] = {
    "binance": re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$"),
}
# the parameter that pages our trades by trade id (where paging by time could stall on one millisecond)
TRADES_FROM_ID: Final[dict[str, str]] = {"binance": "fromId"}
# seconds an order request may take to reach a venue that documents no receive window
_DEFAULT_ORDER_TTL: Final = 60.0


def configure(client: Any) -> None:
    """Merge the adapter's CCXT options for this exchange into `client.options`."""
    for key, value in _CLIENT_OPTIONS.get(str(getattr(client, "id", "")), {}).items():
        current = client.options.get(key)
        client.options[key] = {**current, **value} if isinstance(current, dict) else value


def check_client_oid(ccxt_id: str, exchange: str, client_oid: str) -> None:
    """Refuse a client id the venue would refuse (InvalidInput invalid_client_oid), before sending anything."""
    pattern = _CLIENT_OID.get(ccxt_id)
    if pattern is not None and not pattern.match(client_oid):
        raise InvalidInput(
            "invalid_client_oid",
            f"{exchange} client ids must match {pattern.pattern}, got {client_oid!r}",
            client_oid=client_oid,
        )


def order_ttl(client: Any, margin: float) -> float:
    """Seconds after sending during which an order request may still be executed by the venue.

    A venue with a receive window (Binance `recvWindow`, sent with every signed request and
    checked by its matching engine) refuses anything older; `margin` covers clock skew.
    """
    window = client.options.get("recvWindow")
    return window / 1000 + margin if isinstance(window, int) and not isinstance(window, bool) else _DEFAULT_ORDER_TTL

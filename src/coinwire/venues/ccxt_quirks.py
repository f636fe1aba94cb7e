"""Exchange quirks of the live venue as data: CCXT options, client ids, trade paging, request lifetime, perpetual legs.

Adding an exchange's quirk means adding a row here, not a branch in the adapter.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

from coinwire.core.errors import InvalidInput

__all__ = [
    "ORDER_TRADES_PARAM", "PERP_LEGS", "TRADES_FROM_ID", "WALLET_BALANCE",
    "PerpLegs", "check_client_oid", "configure", "order_ttl", "perp_order_params",
]

# CCXT options the adapter relies on, merged into the client's own
_CLIENT_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "binance": {"fetchOpenOrders": {"warnWithoutSymbol": False}},  # all open orders are asked for on purpose
    "binanceusdm": {
        "fetchOpenOrders": {"warnWithoutSymbol": False},
        "fetchCurrencies": False,  # the spot wallet's currency list (sapi): a futures account has no use for it
        "fetchPositionsRisk": {"useV2": True},  # v2 positionRisk names each leg's leverage and margin type; v3 does not
    },
}
# the client order ids a venue accepts (Binance newClientOrderId)
_CLIENT_OID: Final[dict[str, re.Pattern[str]]] = {
    "binance": re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$"),
    "binanceusdm": re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$"),
}
# the parameter that pages our trades by trade id (where paging by time could stall on one millisecond)
TRADES_FROM_ID: Final[dict[str, str]] = {"binance": "fromId", "binanceusdm": "fromId"}
# where CCXT's fetch_order_trades is spot-only: the fetch_my_trades param that filters our trades by order id
ORDER_TRADES_PARAM: Final[dict[str, str]] = {"binanceusdm": "orderId"}

# derivatives accounts: (list of the raw balance's assets, its currency key, its wallet balance key), per exchange
WALLET_BALANCE: Final[dict[str, tuple[str, str, str]]] = {"binanceusdm": ("assets", "asset", "walletBalance")}


class PerpLegs(NamedTuple):
    """How a perpetual order names the position leg it trades, on one exchange (CCXT create_order params).

    `param`: the venue's leg parameter and its value per leg (`both`, `long`, `short`), sent as is
    (Binance `positionSide`); None where CCXT derives the leg from `hedged` and the order's side
    (Bybit `positionIdx`, Bitget `tradeSide`: a reduce-only order closes the leg opposite its side).
    `reduce_only_in_hedge`: whether `reduceOnly` may be sent in hedge mode (Binance refuses it:
    there a leg's opposite side reduces by definition).
    """

    param: tuple[str, dict[str, str]] | None
    reduce_only_in_hedge: bool


PERP_LEGS: Final[dict[str, PerpLegs]] = {
    "binanceusdm": PerpLegs(("positionSide", {"both": "BOTH", "long": "LONG", "short": "SHORT"}), False),
    "bybit": PerpLegs(None, True),
    "bitget": PerpLegs(None, True),
}


def perp_order_params(ccxt_id: str, *, leg: str, reduce_only: bool, closes_leg: bool) -> dict[str, Any]:
    """The CCXT params naming a perpetual order's leg (`both` in one-way mode) and its reduce-only flag.

    `closes_leg`: in hedge mode, the order trades against its leg (a sell on the long leg).
    """
    legs = PERP_LEGS.get(ccxt_id)
    if legs is None:
        raise InvalidInput("perpetuals_not_supported", f"{ccxt_id}: perpetual orders are not supported", exchange=ccxt_id)
    params: dict[str, Any] = {}
    hedged = leg != "both"
    if legs.param is not None:
        name, values = legs.param
        params[name] = values[leg]
    elif hedged:
        params["hedged"] = True
    if (reduce_only or (hedged and closes_leg and legs.param is None)) and (not hedged or legs.reduce_only_in_hedge):
        params["reduceOnly"] = True
    return params
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

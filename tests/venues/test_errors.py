"""venues.errors: every class of CCXT failure becomes the coinwire error a caller can act on.

The integration tests (test_ccxt_venue.py) drive these through a real ccxt.binance and real
Binance error bodies; here each row is the exception CCXT raises for a Binance answer, built
with the message CCXT gives it, so the whole table is checked in one place.
"""

from __future__ import annotations

import ccxt
import pytest

from coinwire.core.errors import (
    CoinwireError,
    Conflict,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotReady,
)
from coinwire.venues.ccxt_errors import bad_response
from coinwire.venues.errors import outcome_unknown, venue_error

ROWS: list[tuple[BaseException, type[CoinwireError], str, bool]] = [
    # (what CCXT raises, our class, our code, outcome unknown)
    (ccxt.InsufficientFunds("binance Account has insufficient balance for requested action."),
     InsufficientFunds, "insufficient_funds", False),
    (ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), Conflict, "exchange_duplicate_client_oid", False),
    (ccxt.OrderImmediatelyFillable("binance Order would immediately match and take."),
     InvalidInput, "exchange_invalid_order", False),
    (ccxt.BadRequest('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}'), InvalidInput, "exchange_invalid_order", False),
    (ccxt.InvalidOrder('binance order amount should be evenly divisible by lot size {"code":-1013,"msg":"Filter failure: LOT_SIZE"}'),
     InvalidInput, "exchange_invalid_order", False),
    (ccxt.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}'), InvalidInput, "exchange_bad_symbol", False),
    (ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}'), NotFound, "exchange_order_not_found", False),
    (ccxt.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}'), NotFound, "exchange_order_not_found", False),
    (ccxt.RequestTimeout("binance POST http://127.0.0.1/api/v3/order"), NotReady, "exchange_timeout", True),
    (ccxt.NetworkError("binance Cannot connect to host"), NotReady, "exchange_network_error", True),
    (ccxt.ExchangeNotAvailable("binance GET 502 Bad Gateway"), NotReady, "exchange_unavailable", True),
    (ccxt.ExchangeError('binance {"code":-1008,"msg":"Server is currently overloaded"}'), NotReady, "exchange_busy", True),
    (ccxt.InvalidNonce('binance {"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'),
     NotReady, "exchange_invalid_nonce", True),
    (ccxt.RateLimitExceeded('binance {"code":-1003,"msg":"Too much request weight used"}'), NotReady, "exchange_rate_limited", False),
    (ccxt.DDoSProtection("binance 418 I'm a teapot"), NotReady, "exchange_rate_limited", False),
    (ccxt.ExchangeClosedByUser("Connection closed by the user"), NotReady, "exchange_closed", False),
    (TimeoutError(), NotReady, "exchange_network_error", True),
    (bad_response("binance", "order", "no status"), NotReady, "exchange_bad_response", True),
    (ccxt.AuthenticationError('binance {"code":-1022,"msg":"Signature for this request is not valid."}'),
     DomainError, "exchange_auth_failed", False),
    (ccxt.PermissionDenied("binance This account may not place or cancel orders."), DomainError, "exchange_auth_failed", False),
    (ccxt.ExchangeError('binance {"code":-9999,"msg":"Something new"}'), DomainError, "exchange_error", False),
]


@pytest.mark.parametrize(("raised", "cls", "code", "unknown"), ROWS, ids=[f"{type(r[0]).__name__}-{r[2]}" for r in ROWS])
def test_ccxt_failures_become_coinwire_errors(raised: BaseException, cls: type[CoinwireError], code: str, unknown: bool) -> None:
    error = venue_error(raised, exchange="binance", operation="create_order")
    assert type(error) is cls
    assert error.code == code
    assert error.data["exchange"] == "binance" and error.data["group"]
    assert outcome_unknown(error) is unknown
    assert error.message.startswith("binance ")  # where it happened, then what the venue said


def test_coinwire_errors_pass_through_and_bugs_are_not_venue_failures() -> None:
    mine = InvalidInput("too_precise", "price has more than 2 decimal places")
    assert venue_error(mine, exchange="binance", operation="create_order") is mine
    with pytest.raises(TypeError):
        venue_error(KeyError("spot"), exchange="binance", operation="create_order")

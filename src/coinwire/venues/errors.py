"""The one place a live venue's CCXT failures become coinwire's errors, by what the caller must do.

`venues/ccxt_errors.translate` already groups every CCXT exception (temporary, rate limited,
operational, invalid order, insufficient funds, closed) with a stable `exchange_*` code. An
order path needs coinwire's own classes on top, so the gateway answers a live refusal exactly
as it answers a paper one:

    insufficient funds                         -> InsufficientFunds (code insufficient_funds)
    order refused as placed, unknown symbol    -> InvalidInput  (exchange_invalid_order, exchange_bad_symbol, ...)
    unknown order                              -> NotFound      (exchange_order_not_found)
    client id already used by an open order    -> Conflict      (exchange_duplicate_client_oid)
    perpetuals: leverage, margin mode, position side, reduce-only, margin (Binance USD-M codes)
                                               -> DomainError / InvalidInput with the codes and
                                                  classes of core.perp_execution (leverage_above_maximum, ...)
    network, timeout, maintenance, rate limit  -> NotReady      (exchange_timeout, exchange_network_error, ...)
    credentials, permissions, anything else    -> DomainError   (exchange_auth_failed, exchange_error, ...)

CCXT files a few venue refusals under a class that says less than the venue did (Binance's
-1013 "Filter failure: NOTIONAL" arrives as a BadRequest, a duplicate client id as a plain
InvalidOrder), so two small tables refine them by the venue's code or message. Every error
keeps `group` (and `exchange`, `ccxt`) in its data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from coinwire.core.breaker import DependencyGuard, DependencyUnavailable
from coinwire.core.errors import (
    CoinwireError,
    Conflict,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotReady,
)
from coinwire.venues.ccxt_errors import CcxtError, ErrorGroup, translate, venue_code

__all__ = ["UNAVAILABLE", "already_set", "guarded_feed_call", "outcome_unknown", "venue_error", "venue_unavailable"]

_T = TypeVar("_T")

# (CCXT exchange id, venue error code) -> our code, where CCXT's class is less precise than the venue
_VENUE_CODES: Final[dict[tuple[str, str], str]] = {
    ("binance", "-1013"): "exchange_invalid_order",  # filter failures (NOTIONAL, LOT_SIZE, ...): CCXT says BadRequest
    ("binance", "-1121"): "exchange_bad_symbol",
    ("binanceusdm", "-1121"): "exchange_bad_symbol",
    ("binanceusdm", "-4116"): "exchange_duplicate_client_oid",  # "ClientOrderId is duplicated." (an open order has it)
}
# (CCXT exchange id, venue error code) -> (our class, our code): the perpetual refusals, as core's checks name them
_PERP_CODES: Final[dict[tuple[str, str], tuple[type[CoinwireError], str]]] = {
    ("binanceusdm", "-4028"): (DomainError, "leverage_above_maximum"),  # "Leverage 150 is not valid"
    ("binanceusdm", "-2027"): (DomainError, "leverage_above_maximum"),  # the position is above the new leverage's cap
    ("binanceusdm", "-4047"): (DomainError, "margin_mode_change_with_open_position"),  # ... with open orders
    ("binanceusdm", "-4048"): (DomainError, "margin_mode_change_with_open_position"),
    ("binanceusdm", "-4067"): (DomainError, "position_mode_change_with_open_position"),  # ... with open orders
    ("binanceusdm", "-4068"): (DomainError, "position_mode_change_with_open_position"),
    ("binanceusdm", "-4061"): (InvalidInput, "position_side_mismatch"),  # the leg does not match the account's mode
    ("binanceusdm", "-2022"): (DomainError, "reduce_only_would_open"),  # "ReduceOnly Order is rejected."
    ("binanceusdm", "-2019"): (DomainError, "insufficient_margin"),  # "Margin is insufficient."
    ("binanceusdm", "-4051"): (DomainError, "margin_below_initial"),  # "Isolated balance insufficient."
    ("binanceusdm", "-5022"): (DomainError, "post_only_would_take"),  # a GTX order that would take
}
# (CCXT exchange id, venue error code) of a setting request that changes nothing because it is already so
_ALREADY_SET: Final = frozenset({("binanceusdm", "-4046"), ("binanceusdm", "-4059")})
# (CCXT exchange id, text in the venue's message) -> our code
_VENUE_MESSAGES: Final[tuple[tuple[str, str, str], ...]] = (
    ("binance", "Duplicate order sent.", "exchange_duplicate_client_oid"),  # -2010 with an open order's client id
)

# the codes that say the venue itself is not answering (a circuit breaker's failures): not a rate limit (the venue
# answered, and Backoff waits it out), nor a refusal (invalid order, funds, credentials: the venue works)
UNAVAILABLE: Final = frozenset({
    "exchange_unavailable", "exchange_maintenance", "exchange_timeout", "exchange_network_error", "exchange_bad_response",
    "exchange_busy",
})

_INVALID_INPUT: Final = frozenset({"exchange_invalid_order", "exchange_bad_symbol"})
_NOT_READY: Final = frozenset({ErrorGroup.TEMPORARY, ErrorGroup.RATE_LIMITED, ErrorGroup.CLOSED})


def venue_error(exc: BaseException, *, exchange: str, operation: str) -> CoinwireError:
    """coinwire's error for a CCXT failure of `operation` on `exchange` (a CoinwireError passes through).

    Raises TypeError for anything that is not a CCXT (or network) failure: a bug must surface.
    """
    if isinstance(exc, CoinwireError) and not isinstance(exc, CcxtError):
        return exc
    error = translate(exc, exchange=exchange, operation=operation)
    data = dict(error.data)
    perp = _PERP_CODES.get(venue_code(str(exc)) or ("", ""))
    if perp is not None:
        cls, perp_code = perp
        return cls(perp_code, error.message, **data)
    code = _refined(str(exc)) or error.code
    if code == "exchange_order_not_found":
        return NotFound(code, error.message, **data)
    if code == "exchange_duplicate_client_oid":
        return Conflict(code, error.message, **data)
    if error.group is ErrorGroup.INSUFFICIENT_FUNDS:
        return InsufficientFunds(error.message, **data)
    if error.group is ErrorGroup.INVALID_ORDER or code in _INVALID_INPUT:
        return InvalidInput(code, error.message, **data)
    if error.group in _NOT_READY:
        return NotReady(code, error.message, **data)
    return DomainError(code, error.message, **data)


def venue_unavailable(exc: BaseException) -> bool:
    """True when a call's exception says the venue is unavailable (the `ccxt:<exchange>` breaker counts these).

    A rejected order, a rate limit or anything that is not a CCXT or network failure (a bug) is False.
    """
    if isinstance(exc, CoinwireError) and not isinstance(exc, CcxtError):
        return False
    try:
        return translate(exc).code in UNAVAILABLE
    except TypeError:
        return False


async def guarded_feed_call(breaker: DependencyGuard | None, call: Callable[[], Awaitable[_T]], exchange: str) -> _T:
    """One public REST call of a CCXT feed through its breaker; refused, it fails as a temporary CcxtError (backed off).

    A feed's loops retry temporary CcxtErrors with backoff: a paused dependency is one of them.
    """
    if breaker is None:
        return await call()
    try:
        async with breaker.call(venue_unavailable):
            return await call()
    except DependencyUnavailable as exc:
        raise CcxtError(ErrorGroup.TEMPORARY, exc.code, f"{exchange}: {exc.message}", exchange=exchange,
                        dependency=exc.dependency) from None


def outcome_unknown(error: CoinwireError) -> bool:
    """True when a request may or may not have taken effect at the venue (timeout, dropped connection, 5xx).

    Such a failure of an order placement must be resolved by asking the venue about the order,
    never by sending it again blindly. A rate-limit refusal or a closed client did not reach the venue.
    """
    return isinstance(error, NotReady) and error.data.get("group") == ErrorGroup.TEMPORARY.value


def already_set(exc: BaseException) -> bool:
    """True when a CCXT failure says the setting asked for is already the account's (nothing to change)."""
    return venue_code(str(exc)) in _ALREADY_SET


def _refined(detail: str) -> str | None:
    key = venue_code(detail)
    if key is not None and key in _VENUE_CODES:
        return _VENUE_CODES[key]
    venue = detail.partition(" ")[0]
    for exchange, text, code in _VENUE_MESSAGES:
        if venue == exchange and text in detail:
            return code
    return None

"""The one place CCXT exceptions become coinwire errors, grouped by what the caller must do.

    CcxtError(CoinwireError)          code = a stable `exchange_*` code, group = one of:
      temporary        the venue or the network hiccuped: retry with backoff
      rate_limited     we asked too often (429, 418 ban): retry, backing off much longer
      operational      configuration, credentials or the symbol are wrong: stop, report, fix
      invalid_order    the venue refused an order as placed: the strategy must change it
      insufficient_funds  the account cannot pay for it
      closed           the exchange object was closed on purpose: stop quietly

The table is data, most specific class first, as Freqtrade does it: adding a quirk means
adding a row, not an `except` somewhere else. A second table refines the generic
`ExchangeError` by the venue's own error code where CCXT leaves a documented retryable code
unmapped (Binance -1008 "server busy" arrives as a plain ExchangeError). CCXT also answers
some malformed responses with an empty structure instead of raising (a truncated depth body
parses as an empty book), so callers report those through `bad_response`. Anything CCXT raises that is not in the table
is treated as operational (stop and look), never retried blindly. Feeds and (later) the live
venue import `translate`, `Backoff` and the groups from here and nowhere else.
"""

from __future__ import annotations

import functools
import random
import re
from enum import StrEnum
from typing import Final

from coinwire.core.errors import DomainError

__all__ = ["RETRYABLE", "Backoff", "CcxtError", "ErrorGroup", "bad_response", "translate", "venue_code"]


class ErrorGroup(StrEnum):
    TEMPORARY = "temporary"
    RATE_LIMITED = "rate_limited"
    OPERATIONAL = "operational"
    INVALID_ORDER = "invalid_order"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CLOSED = "closed"


RETRYABLE: Final = frozenset({ErrorGroup.TEMPORARY, ErrorGroup.RATE_LIMITED})


@functools.cache
def _table() -> tuple[tuple[type[BaseException], ErrorGroup, str], ...]:
    """(CCXT class, our group, our stable code); the first row whose class matches wins.

    Built at the first translation: importing CCXT loads every exchange class (~0.3 s), which a
    server with only demo exchanges, and most `coinwire` commands, never need.
    """
    import ccxt

    return (
        (ccxt.ExchangeClosedByUser, ErrorGroup.CLOSED, "exchange_closed"),
        (ccxt.RateLimitExceeded, ErrorGroup.RATE_LIMITED, "exchange_rate_limited"),
        (ccxt.DDoSProtection, ErrorGroup.RATE_LIMITED, "exchange_rate_limited"),
        (ccxt.OnMaintenance, ErrorGroup.TEMPORARY, "exchange_maintenance"),
        (ccxt.RequestTimeout, ErrorGroup.TEMPORARY, "exchange_timeout"),
        (ccxt.ChecksumError, ErrorGroup.TEMPORARY, "exchange_book_out_of_sync"),
        (ccxt.InvalidNonce, ErrorGroup.TEMPORARY, "exchange_invalid_nonce"),
        (ccxt.ExchangeNotAvailable, ErrorGroup.TEMPORARY, "exchange_unavailable"),
        (ccxt.NetworkError, ErrorGroup.TEMPORARY, "exchange_network_error"),
        (ccxt.BadResponse, ErrorGroup.TEMPORARY, "exchange_bad_response"),
        (ccxt.CancelPending, ErrorGroup.TEMPORARY, "exchange_cancel_pending"),
        (ccxt.OperationFailed, ErrorGroup.TEMPORARY, "exchange_operation_failed"),
        (ccxt.InsufficientFunds, ErrorGroup.INSUFFICIENT_FUNDS, "exchange_insufficient_funds"),
        (ccxt.OrderNotFound, ErrorGroup.INVALID_ORDER, "exchange_order_not_found"),
        (ccxt.InvalidOrder, ErrorGroup.INVALID_ORDER, "exchange_invalid_order"),
        (ccxt.AuthenticationError, ErrorGroup.OPERATIONAL, "exchange_auth_failed"),
        (ccxt.BadSymbol, ErrorGroup.OPERATIONAL, "exchange_bad_symbol"),
        (ccxt.NotSupported, ErrorGroup.OPERATIONAL, "exchange_not_supported"),
        (ccxt.RestrictedLocation, ErrorGroup.OPERATIONAL, "exchange_restricted_location"),
        (ccxt.BadRequest, ErrorGroup.OPERATIONAL, "exchange_bad_request"),
        (ccxt.ExchangeError, ErrorGroup.OPERATIONAL, "exchange_error"),
        (ccxt.BaseError, ErrorGroup.OPERATIONAL, "exchange_error"),
    )

# (CCXT exchange id, the venue's error code) -> group and code, for CCXT's generic ExchangeError
_VENUE_CODES: Final[dict[tuple[str, str], tuple[ErrorGroup, str]]] = {
    ("binance", "-1008"): (ErrorGroup.TEMPORARY, "exchange_busy"),  # SERVER_BUSY: "try again in a few minutes"
    ("binance", "-1003"): (ErrorGroup.RATE_LIMITED, "exchange_rate_limited"),  # TOO_MANY_REQUESTS
    ("binanceusdm", "-1008"): (ErrorGroup.TEMPORARY, "exchange_busy"),  # the same codes on the futures API
    ("binanceusdm", "-1003"): (ErrorGroup.RATE_LIMITED, "exchange_rate_limited"),
}
_VENUE_CODE = re.compile(r'"code"\s*:\s*"?(-?\w+)')


class CcxtError(DomainError):
    """A CCXT failure with its group (what to do) and a stable code (what happened)."""

    def __init__(self, group: ErrorGroup, code: str, message: str, **data: object) -> None:
        super().__init__(code, message, group=group.value, **data)
        self.group = group

    @property
    def retryable(self) -> bool:
        """True when trying again later can succeed without anyone changing anything."""
        return self.group in RETRYABLE


def translate(exc: BaseException, *, exchange: str = "", operation: str = "") -> CcxtError:
    """The CcxtError for a CCXT exception (or a timeout/connection error CCXT let through).

    Raises TypeError for anything else: a bug in our code must not be mistaken for a venue
    problem and retried forever.
    """
    if isinstance(exc, CcxtError):
        return exc
    where = f"{exchange} {operation}".strip() or "exchange"
    detail = str(exc).strip() or type(exc).__name__
    import ccxt  # already loaded by _table(), or loaded now: a lookup in sys.modules after the first

    for cls, group, code in _table():
        if isinstance(exc, cls):
            if type(exc) in (ccxt.ExchangeError, ccxt.BaseError):
                group, code = _venue_code(detail) or (group, code)
            return CcxtError(group, code, f"{where}: {detail}", exchange=exchange, ccxt=type(exc).__name__)
    if isinstance(exc, (TimeoutError, ConnectionError)):  # asyncio/aiohttp below CCXT's own wrapping
        return CcxtError(
            ErrorGroup.TEMPORARY, "exchange_network_error", f"{where}: {detail}", exchange=exchange, ccxt=type(exc).__name__
        )
    raise TypeError(f"not a CCXT error: {type(exc).__name__}: {exc}") from exc


def _venue_code(detail: str) -> tuple[ErrorGroup, str] | None:
    """The refined group of a generic ExchangeError from the venue's code in CCXT's message."""
    key = venue_code(detail)
    return _VENUE_CODES.get(key) if key else None


def venue_code(detail: str) -> tuple[str, str] | None:
    """(CCXT exchange id, the venue's own error code) named in a CCXT exception message, if any.

    CCXT's messages start with the exchange id and carry the venue's JSON body:
    `binance {"code":-1008,"msg":"Server is currently overloaded..."}` -> ("binance", "-1008").
    """
    match = _VENUE_CODE.search(detail)
    return (detail.partition(" ")[0], match.group(1)) if match else None


def bad_response(exchange: str, operation: str, detail: str) -> CcxtError:
    """A response CCXT accepted but that cannot be true (an empty book from a truncated body): retry."""
    return CcxtError(
        ErrorGroup.TEMPORARY, "exchange_bad_response", f"{exchange} {operation}: {detail}", exchange=exchange
    )


class Backoff:
    """Delays before retries: exponential from `base`, capped, with jitter; longer when rate limited.

    `jitter` is the fraction of each delay drawn at random (0 makes it deterministic), so
    many symbols that failed together do not all come back in the same instant.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 60.0,
        rate_limit_factor: float = 8.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0 or cap < base or rate_limit_factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < base <= cap, rate_limit_factor >= 1 and 0 <= jitter < 1")
        self.base = base
        self.cap = cap
        self.rate_limit_factor = rate_limit_factor
        self.jitter = jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self, error: CcxtError | None = None) -> float:
        """The wait before the next attempt (and count this failure)."""
        factor = self.rate_limit_factor if error is not None and error.group is ErrorGroup.RATE_LIMITED else 1.0
        delay: float = min(self.cap, self.base * factor * 2 ** min(self.attempts, 30))
        self.attempts += 1
        return delay * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """A success: the next failure starts from `base` again."""
        self.attempts = 0

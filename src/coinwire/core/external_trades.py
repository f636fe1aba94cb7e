"""External accounts' webhook trades: the two accepted shapes read into one record, its signature, its wallet movements.

An external account (core.accounts, kind `external`) is a bot or exchange coinwire does not
trade for; what it did arrives as a webhook body, signed with HMAC-SHA256 under the account's
secret. Two shapes are read, and nothing else:

- kripto's Trade (a Coinbase Pro fill): `id, side, productId ("BTC-GBP"), funds, settled,
  createdAt (ISO-8601, UTC when no zone), fillFees, filledSize, executedValue`: `filledSize`
  of the base changed hands for `executedValue` of the quote, `fillFees` paid in the quote;
  `funds` (what a buy by amount offered) is informative only.
- coinwire's own fill view (messages.FillView): `id, side, symbol ("BTC/USDT"), exec_amount,
  exec_price, notional (optional: exec_amount * exec_price), fee, fee_currency (the quote),
  timestamp`; with `kind: "deposit" | "withdrawal"` it is a transfer instead:
  `id, kind, currency, amount, timestamp`.

Every amount is exact (at most 18 decimals, ATTO); a malformed body is refused with
`invalid_trade` naming the field, before anything is stored. The record is what is stored,
keyed by (account, trade id): a second delivery of the same id is recognised, never applied.

Pure: no clock, no I/O (the caller passes the time it received the body).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from coinwire.core.errors import InvalidInput
from coinwire.core.numbers import ATTO_DECIMALS, str_to_atto
from coinwire.core.symbols import normalize_symbol

__all__ = ["ExternalTrade", "TRADE_KINDS", "SIDES", "MAX_TRADE_ID", "read_trade", "movements", "sign", "signature_ok"]

TRADE_KINDS = ("trade", "deposit", "withdrawal")
SIDES = ("buy", "sell")
MAX_TRADE_ID = 64  # external_trades.trade_id is VARCHAR(64)
_TRADE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")  # a UUID, a number, an exchange's trade id: printable, no spaces
_CURRENCY = re.compile(r"[A-Z0-9]{1,16}")
_PRODUCT = re.compile(r"([A-Za-z0-9]{1,16})-([A-Za-z0-9]{1,16})")
_ONE: int = 10**ATTO_DECIMALS


class ExternalTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One trade (or transfer) of an external account, as stored (table external_trades), amounts in ATTO.

    A trade: `size` of `base` for `notional` of `quote`, `fee` in the quote. A transfer
    (`deposit`, `withdrawal`): `size` of `base`, no quote, no notional or fee.
    """

    account_id: int
    trade_id: str
    kind: str  # TRADE_KINDS
    side: str  # "buy" | "sell"; a deposit is "buy", a withdrawal "sell" (money in, money out)
    base: str
    quote: str  # "" for a transfer
    size: int
    notional: int
    fee: int
    created_at: int  # ns: when the trade happened, as the sender says
    received_at: int  # ns: when this server accepted it
    shape: str  # "kripto" | "coinwire"


def sign(secret: str, body: bytes) -> str:
    """The signature a sender puts in `X-Coinwire-Signature`: hex HMAC-SHA256 of the raw body under the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` signs `body` under `secret`, compared in constant time (a timing says nothing of the secret)."""
    if signature is None:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().lower().encode())


def _atto_product(a: int, b: int) -> int:
    """a * b of two ATTO amounts, in ATTO, rounded half to even (integers only: no context precision to round early)."""
    whole, rest = divmod(a * b, _ONE)
    if rest * 2 > _ONE or (rest * 2 == _ONE and whole % 2):
        whole += 1
    return whole


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput("invalid_trade", f"{field}: {message}", field=field)


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise _bad(field, f"a non-empty string is required, got {value!r}")
    return value


def _trade_id(body: dict[str, Any]) -> str:
    value = body.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not _TRADE_ID.fullmatch(value):
        raise _bad("id", f"1 to {MAX_TRADE_ID} letters, digits or ._:- (a trade's id at its sender), got {value!r}")
    return value


def _amount(body: dict[str, Any], field: str, *, positive: bool = True) -> int:
    value = body.get(field)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise _bad(field, f"a decimal string is required, got {value!r}")
    try:
        atto = str_to_atto(str(value), field)
    except InvalidInput:
        raise _bad(field, f"an exact decimal with at most {ATTO_DECIMALS} decimals is required, got {value!r}") from None
    if atto < 0 or (positive and atto == 0):
        raise _bad(field, f"must be {'above' if positive else 'at least'} zero, got {value!r}")
    return atto


def _side(body: dict[str, Any]) -> str:
    side = body.get("side")
    if side not in SIDES:
        raise _bad("side", f"one of {', '.join(SIDES)}, got {side!r}")
    return str(side)


def _instant(body: dict[str, Any], field: str) -> int:
    """An ISO-8601 instant (UTC when it names no zone) or integer nanoseconds, as ns since the epoch."""
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value < 2**62:
            raise _bad(field, f"nanoseconds since the epoch, got {value!r}")
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise _bad(field, f"an ISO-8601 time such as 2020-05-19T19:39:00Z is required, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise _bad(field, f"an ISO-8601 time such as 2020-05-19T19:39:00Z is required, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1970 <= moment.year <= 2200:
        raise _bad(field, f"a time between 1970 and 2200 is required, got {value!r}")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _kripto(body: dict[str, Any], account_id: int, received_at: int) -> ExternalTrade:
    product = _text(body, "productId")
    match = _PRODUCT.fullmatch(product)
    if match is None or match.group(1).upper() == match.group(2).upper():
        raise _bad("productId", f"BASE-QUOTE such as BTC-GBP is required, got {product!r}")
    settled = body.get("settled")
    if not isinstance(settled, bool):
        raise _bad("settled", f"true or false is required, got {settled!r}")
    if not settled:
        raise InvalidInput("trade_not_settled", "the trade is not settled yet: send it once it is (nothing was stored)",
                           field="settled")
    if "funds" in body and body["funds"] not in (None, ""):
        _amount(body, "funds", positive=False)  # informative, but a malformed one is refused like any other field
    return ExternalTrade(
        account_id=account_id, trade_id=_trade_id(body), kind="trade", side=_side(body), base=match.group(1).upper(),
        quote=match.group(2).upper(), size=_amount(body, "filledSize"), notional=_amount(body, "executedValue"),
        fee=_amount(body, "fillFees", positive=False), created_at=_instant(body, "createdAt"), received_at=received_at,
        shape="kripto")


def _own(body: dict[str, Any], account_id: int, received_at: int) -> ExternalTrade:
    kind = body.get("kind", "trade")
    if kind not in TRADE_KINDS:
        raise _bad("kind", f"one of {', '.join(TRADE_KINDS)}, got {kind!r}")
    trade_id, created_at = _trade_id(body), _instant(body, "timestamp")
    if kind != "trade":
        currency = _text(body, "currency").upper()
        if not _CURRENCY.fullmatch(currency):
            raise _bad("currency", f"a currency code such as BTC is required, got {body.get('currency')!r}")
        return ExternalTrade(account_id=account_id, trade_id=trade_id, kind=str(kind), side="buy" if kind == "deposit" else "sell",
                             base=currency, quote="", size=_amount(body, "amount"), notional=0, fee=0, created_at=created_at,
                             received_at=received_at, shape="coinwire")
    try:
        symbol = normalize_symbol(_text(body, "symbol"))
    except InvalidInput:
        raise _bad("symbol", f"a spot market such as BTC/USDT is required, got {body.get('symbol')!r}") from None
    base, _, quote = symbol.partition("/")
    if ":" in quote or base == quote:
        raise _bad("symbol", f"a spot market such as BTC/USDT is required, got {body.get('symbol')!r}")
    size = _amount(body, "exec_amount")
    price = _amount(body, "exec_price")
    notional = _amount(body, "notional") if body.get("notional") is not None else _atto_product(size, price)
    fee_currency = body.get("fee_currency")
    if fee_currency is not None and (not isinstance(fee_currency, str) or fee_currency.upper() != quote):
        raise _bad("fee_currency", f"fees are in the quote ({quote}), got {fee_currency!r}")
    fee = _amount(body, "fee", positive=False) if body.get("fee") is not None else 0
    return ExternalTrade(account_id=account_id, trade_id=trade_id, kind="trade", side=_side(body), base=base, quote=quote,
                         size=size, notional=notional, fee=fee, created_at=created_at, received_at=received_at, shape="coinwire")


def read_trade(body: bytes, account_id: int, received_at: int) -> ExternalTrade:
    """The trade a webhook body carries, in either shape (kripto's when it names a `productId`); `invalid_trade` otherwise."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidInput("invalid_trade", "the body is not JSON", field="body") from None
    if not isinstance(decoded, dict):
        raise InvalidInput("invalid_trade", "the body is one JSON object (a trade)", field="body")
    return _kripto(decoded, account_id, received_at) if "productId" in decoded else _own(decoded, account_id, received_at)


def movements(trade: ExternalTrade) -> dict[str, int]:
    """What the trade does to the account's wallets, per currency (ATTO; never zero entries).

    A buy receives `size` of the base and pays `notional + fee` of the quote; a sell gives
    `size` of the base and receives `notional - fee`; a deposit adds `size`, a withdrawal takes it.
    """
    sign_ = 1 if trade.side == "buy" else -1
    if trade.kind != "trade":
        return {trade.base: sign_ * trade.size}
    out = {trade.base: sign_ * trade.size, trade.quote: -sign_ * trade.notional - trade.fee}
    return {currency: amount for currency, amount in out.items() if amount}

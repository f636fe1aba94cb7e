"""Strict parameter shapes of every API method: unknown fields, wrong types and over-long strings are refused.

The maximum lengths of client-chosen strings live here, in one place (docs/SECURITY.md, Input
limits): a value beyond them is refused at the edge with `too_long` and never reaches the
store, whose identifier columns are VARCHAR(64).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = [
    "MAX_ID",
    "MAX_NAME",
    "MAX_SYMBOL",
    "MAX_WORD",
    "MAX_PATTERN",
    "MAX_TEXT",
    "MAX_SECRET",
    "MAX_PATH_PARAM",
    "MAX_QUERY_VALUE",
    "MAX_LIST",
    "Ident",
    "Name",
    "Symbol",
    "Word",
    "Pattern",
    "Text",
    "Secret",
    "Number",
    "Id",
    "Seconds",
    "NoParams",
    "EchoParams",
    "GetExchangesParams",
    "ExchangeParams",
    "BookParams",
    "MakeOrderParams",
    "TakeProfitParams",
    "StopLossParams",
    "MakeOcoParams",
    "CancelOrderParams",
    "ListOpenOrdersParams",
    "ListRecentOrdersParams",
    "WalletAllocation",
    "CreateWalletSetParams",
    "AllocateToWalletSetParams",
    "GetWalletParams",
    "WalletSetIdParams",
    "DeactivateWalletSetParams",
    "GetWalletSetParams",
    "AggregateParams",
    "VirtualTxParams",
    "ConvertParams",
    "SubscribeParams",
    "OhlcvParams",
    "GetPositionsParams",
    "PositionParams",
    "SetLeverageParams",
    "SetMarginModeParams",
    "SetPositionModeParams",
    "AdjustMarginParams",
    "ClosePositionParams",
    "GetFundingParams",
]

# Maximum lengths (characters) of client-chosen strings
MAX_ID = 64  # run_id, client_oid, component and key ids, user names, API key names (VARCHAR(64) in the store)
MAX_NAME = 64  # exchange and currency names
MAX_SYMBOL = 64  # pair / symbol (`BTC_USDT`, `BTC/USDT:USDT`)
MAX_WORD = 32  # keywords: side, type, mode, freq, role, plan, scope, channel, timeframe
MAX_PATTERN = 128  # one subject pattern (`ticker.binance.usdt.*`)
MAX_TEXT = 1024  # free text: a wallet set's description
MAX_SECRET = 1024  # passwords (8 to 256 characters, checked further on), refresh tokens
MAX_PATH_PARAM = 256  # any other path segment a route takes (`{name:path}`, web assets)
MAX_QUERY_VALUE = 1024  # any query-string value of any route
MAX_LIST = 1000  # entries of a list parameter (wallets, channels, scopes, frontier assets and data)

Ident = Annotated[str, msgspec.Meta(max_length=MAX_ID)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
Symbol = Annotated[str, msgspec.Meta(max_length=MAX_SYMBOL)]
Word = Annotated[str, msgspec.Meta(max_length=MAX_WORD)]
Pattern = Annotated[str, msgspec.Meta(max_length=MAX_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Secret = Annotated[str, msgspec.Meta(max_length=MAX_SECRET)]

# A decimal: a string, or a JSON number (decoded as an exact Decimal, see api.json_input). Checked
# by core.numbers.to_units (ASCII digits only, on the grid), so the shape itself takes any value.
Number = Annotated[Any, msgspec.Meta(extra_json_schema={"anyOf": [{"type": "string"}, {"type": "number"}]})]
# Bounded integers: an id or a duration beyond these is a mistake, and must not reach the store.
Id = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
Seconds = Annotated[int, msgspec.Meta(le=366 * 86_400)]  # negatives get their own, clearer, error
Count = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31)]
# An instant: ISO 8601 text, or epoch milliseconds (non-negative, before the year 285,000)
Instant = Annotated[str, msgspec.Meta(max_length=MAX_ID)] | Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class Params(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The base of every method's parameters (here and in api/ohlcv_routes.py): an unknown field is refused."""


class NoParams(Params, kw_only=True):
    pass


class EchoParams(msgspec.Struct, kw_only=True):  # echo accepts anything by design
    pass


class SetNotificationsParams(Params, kw_only=True):
    """set_notifications: the body of PUT /api/v1/me/notifications (checked by services.notifications.user_settings)."""

    channels: dict[str, dict[str, Any]] = {}
    events: dict[str, list[str]] = {}


class GetExchangesParams(Params, kw_only=True):
    mode: Word | None = None


class ExchangeParams(Params, kw_only=True):
    exchange: Name


class BookParams(Params, kw_only=True):
    exchange: Name
    pair: Symbol | None = None
    symbol: Symbol | None = None
    depth: Count = 100


class MakeOrderParams(Params, kw_only=True):
    exchange: Name
    side: Word
    size: Number = None  # base to buy or sell; exactly one of size and funds
    funds: Number = None  # a market buy by amount: quote to spend, fee included (kripto's "£10.00 of BTC")
    pair: Symbol | None = None
    symbol: Symbol | None = None
    type: Word = "limit"
    limit: Number | None = None
    price: Number | None = None  # accepted spelling of `limit` for CCXT users
    cancel_after: Seconds = 0
    client_oid: Ident | None = None
    idempotency_key: Ident | None = None  # another name for client_oid (kripto's); both given must agree
    wallet_set_id: Id | None = None
    run_id: Ident | None = None
    post_only: bool = False
    account: Id | None = None  # the account it spends from (None: its wallet set's, else the caller's own on the exchange)
    # conditional orders and time in force (docs/ORDERS.md, API): None / False leaves a plain order as it was
    stop_price: Number | None = None  # stop-*, take-profit-*: the trigger level
    trigger: Word | None = None  # last (default), mark, bid_ask
    trailing_delta: Number | None = None  # trailing-stop: "1.5%" of the best price, or "25.5" (a price distance)
    activation_price: Number | None = None  # trailing-stop: follows the market once this is reached
    time_in_force: Word | None = None  # GTC, IOC, FOK, GTD (with expire_at)
    expire_at: Instant | None = None  # ISO 8601 or epoch milliseconds
    allow_immediate: bool = False  # accept a stop the market has already reached (it fires at once)
    reduce_only: bool = False
    position_side: Word | None = None  # perpetuals: both (one-way mode), long or short (hedge mode: required)
    take_profit: TakeProfitParams | None = None  # with stop_loss: a bracket, placed as an OCO once this order filled
    stop_loss: StopLossParams | None = None


class TakeProfitParams(Params, kw_only=True):
    """A bracket's take-profit: {"limit": p} (a limit order), or {"stop_price": p} (+ "limit": l) for take-profit-market/-limit;
    {"percent": "6"}: 6% beyond the parent's average fill price (take-profit-market, or with "type": "limit" a limit)."""

    limit: Number | None = None
    stop_price: Number | None = None
    type: Word | None = None  # limit, take-profit-market, take-profit-limit (None: what the prices given say)
    percent: Number | None = None


class StopLossParams(Params, kw_only=True):
    """A bracket's stop-loss: {"stop_price": p} (stop-market), or with "limit": l (stop-limit); {"percent": "3"}: a stop-market
    3% beyond the parent's average fill price, against the position."""

    stop_price: Number | None = None
    limit: Number | None = None
    percent: Number | None = None


class MakeOcoParams(Params, kw_only=True):
    """make_oco: a limit leg and a stop leg for the same size; one filling or firing cancels the other."""

    exchange: Name
    side: Word
    size: Number = None
    limit: Number = None  # the limit leg's price
    stop_price: Number = None  # the stop leg's trigger level
    stop_limit: Number | None = None  # the stop leg's limit: a stop-limit leg (None: stop-market)
    pair: Symbol | None = None
    symbol: Symbol | None = None
    trigger: Word | None = None  # of the stop leg: last (default), mark, bid_ask
    client_oid: Ident | None = None  # the legs' are `<client_oid>:limit` and `<client_oid>:stop`
    wallet_set_id: Id | None = None
    run_id: Ident | None = None
    account: Id | None = None


class CancelOrderParams(Params, kw_only=True):
    order_id: Id | None = None
    client_oid: Ident | None = None
    client_order_id: Ident | None = None
    exchange: Name | None = None
    account: Id | None = None  # with client_oid: look only in this account


class ListOpenOrdersParams(Params, kw_only=True):
    exchange: Name | None = None
    wallet_set_id: Id | None = None
    account: Id | None = None  # only this account's (None: every account the caller may read)


class ListRecentOrdersParams(Params, kw_only=True):
    include_open: bool = False
    limit: Count = 100
    exchange: Name | None = None
    account: Id | None = None


class WalletAllocation(Params, kw_only=True):
    exchange: Name
    currency: Name
    allocation: Number
    account: Id | None = None  # the account funding it (None: the caller's own on the exchange, or the set's there)


class CreateWalletSetParams(Params, kw_only=True):
    wallets: Annotated[list[WalletAllocation], msgspec.Meta(max_length=MAX_LIST)]
    run_id: Ident | None = None
    description: Text | None = None


class AllocateToWalletSetParams(Params, kw_only=True):
    wallets: Annotated[list[WalletAllocation], msgspec.Meta(max_length=MAX_LIST)]  # allocation: + in, - back out
    set_id: Id | None = None
    wallet_set_id: Id | None = None  # the seed's name for `set_id`: exactly one of the two


class GetWalletParams(Params, kw_only=True):
    exchange: Name
    currency: Name | None = None
    base: Name | None = None  # the seed's name for `currency`
    wallet_set_id: Id | None = None  # None: the account's wallet (all its partitions)
    account: Id | None = None  # None: the caller's own account on the exchange


class WalletSetIdParams(Params, kw_only=True):
    set_id: Id


class DeactivateWalletSetParams(Params, kw_only=True):
    set_id: Id | None = None
    wallet_set_id: Id | None = None  # the seed's name for the same id: give exactly one of the two


class GetWalletSetParams(Params, kw_only=True):
    set_id: Id
    aggregate_only: bool = False


class AggregateParams(Params, kw_only=True):
    aggregate_only: bool = False
    account: Id | None = None  # one account's funds (None: every account the caller may read)


class AccountParams(Params, kw_only=True):
    account: Id | None = None  # one account's funds (None: every account the caller may read)


class VirtualTxParams(Params, kw_only=True):
    exchange: Name
    base: Name | None = None
    currency: Name | None = None
    movement: Number
    wallet_id: Id | None = None  # the seed's: an unallocated wallet of a paper account the caller owns
    account: Id | None = None  # None: the caller's own account on the exchange


class ConvertParams(Params, kw_only=True):
    currency: Name
    value: Number
    side: Word = "bid"


class SubscribeParams(Params, kw_only=True):
    channels: Annotated[list[Word], msgspec.Meta(max_length=MAX_LIST)]
    tickers: list[Pattern] | None = None  # with channel "ticker": subject patterns, e.g. "ticker.binance.usdt.*"
    public_trades: list[Pattern] | None = None  # with channel "public_trades": subject patterns, e.g. "trade.demo.usdt.btc"
    rates: list[Pattern] | None = None  # with channel "rate": subject patterns, e.g. "rate.binance.usdt.*"
    account: Id | None = None  # with channels order/trade: also this account's (one the caller may read)
    since: Annotated[int, msgspec.Meta(ge=0, le=2**62)] | None = None  # with account: first what came after this seq (api.streams)
    wallet_sets: list[Id] | None = None  # with channel "wallet_set": only these sets (each one the caller may read)


class OhlcvParams(Params, kw_only=True):
    exchange: Name
    pair: Symbol
    start: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    end: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    received_before: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    freq: Word = "highest"


# --- perpetual positions (docs/DERIVATIVES.md, API and streams) -----------------------------------
class GetPositionsParams(Params, kw_only=True):
    account: Id | None = None  # one account's (None: every account the caller may read)
    exchange: Name | None = None
    pair: Symbol | None = None  # BTC_USDT:USDT (or `symbol`, BTC/USDT:USDT)
    symbol: Symbol | None = None
    include_flat: bool = False  # closed positions too (their realised PnL and funding stay)


class PositionParams(Params, kw_only=True):
    """One market of one account: `pair` or `symbol`, and `account` (None: the caller's own on the exchange)."""

    exchange: Name
    pair: Symbol | None = None
    symbol: Symbol | None = None
    account: Id | None = None


class SetLeverageParams(PositionParams, kw_only=True):
    leverage: Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31)]


class SetMarginModeParams(PositionParams, kw_only=True):
    mode: Word  # isolated | cross


class SetPositionModeParams(Params, kw_only=True):
    exchange: Name
    hedge_mode: bool  # true: long and short legs (Binance's dual side position); false: one-way
    account: Id | None = None


class AdjustMarginParams(PositionParams, kw_only=True):
    amount: Number  # settle currency: positive adds isolated margin, negative removes it
    position_side: Word | None = None


class ClosePositionParams(PositionParams, kw_only=True):
    position_side: Word | None = None
    client_oid: Ident | None = None


class GetFundingParams(Params, kw_only=True):
    account: Id | None = None
    exchange: Name | None = None
    pair: Symbol | None = None
    symbol: Symbol | None = None
    limit: Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31)] = 100
    before_id: Id | None = None  # the next page: payments older than this id

"""Strict parameter shapes of every API method: unknown fields and wrong types are refused."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "Number",
    "Id",
    "Seconds",
    "NoParams",
    "EchoParams",
    "GetExchangesParams",
    "ExchangeParams",
    "BookParams",
    "MakeOrderParams",
    "CancelOrderParams",
    "ListOpenOrdersParams",
    "ListRecentOrdersParams",
    "WalletAllocation",
    "CreateWalletSetParams",
    "WalletSetIdParams",
    "GetWalletSetParams",
    "AggregateParams",
    "VirtualTxParams",
    "ConvertParams",
    "SubscribeParams",
    "OhlcvParams",
]

Number = str | int | float
# Bounded integers: an id or a duration beyond these is a mistake, and must not reach the store.
Id = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
Seconds = Annotated[int, msgspec.Meta(le=366 * 86_400)]  # negatives get their own, clearer, error
Count = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31)]


class _Params(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class NoParams(_Params, kw_only=True):
    pass


class EchoParams(msgspec.Struct, kw_only=True):  # echo accepts anything by design
    pass


class GetExchangesParams(_Params, kw_only=True):
    mode: str | None = None


class ExchangeParams(_Params, kw_only=True):
    exchange: str


class BookParams(_Params, kw_only=True):
    exchange: str
    pair: str | None = None
    symbol: str | None = None
    depth: Count = 100


class MakeOrderParams(_Params, kw_only=True):
    exchange: str
    side: str
    size: Number
    pair: str | None = None
    symbol: str | None = None
    type: str = "limit"
    limit: Number | None = None
    price: Number | None = None  # accepted spelling of `limit` for CCXT users
    cancel_after: Seconds = 0
    client_oid: str | None = None
    wallet_set_id: Id | None = None
    run_id: str | None = None
    post_only: bool = False


class CancelOrderParams(_Params, kw_only=True):
    order_id: Id | None = None
    client_oid: str | None = None
    client_order_id: str | None = None
    exchange: str | None = None


class ListOpenOrdersParams(_Params, kw_only=True):
    exchange: str | None = None
    wallet_set_id: Id | None = None


class ListRecentOrdersParams(_Params, kw_only=True):
    include_open: bool = False
    limit: Count = 100
    exchange: str | None = None


class WalletAllocation(_Params, kw_only=True):
    exchange: str
    currency: str
    allocation: Number


class CreateWalletSetParams(_Params, kw_only=True):
    wallets: list[WalletAllocation]
    run_id: str | None = None
    description: str | None = None


class WalletSetIdParams(_Params, kw_only=True):
    set_id: Id


class GetWalletSetParams(_Params, kw_only=True):
    set_id: Id
    aggregate_only: bool = False


class AggregateParams(_Params, kw_only=True):
    aggregate_only: bool = False


class VirtualTxParams(_Params, kw_only=True):
    exchange: str
    base: str | None = None
    currency: str | None = None
    movement: Number
    wallet_id: Id | None = None


class ConvertParams(_Params, kw_only=True):
    currency: str
    value: Number
    side: str = "bid"


class SubscribeParams(_Params, kw_only=True):
    channels: list[str]
    tickers: list[str] | None = None  # with channel "ticker": subject patterns, e.g. "ticker.binance.usdt.*"
    public_trades: list[str] | None = None  # with channel "public_trades": subject patterns, e.g. "trade.demo.usdt.btc"


class OhlcvParams(_Params, kw_only=True):
    exchange: str
    pair: str
    start: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    end: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    received_before: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    freq: str = "highest"

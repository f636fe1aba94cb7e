"""The perpetual-position methods of the API (get_positions, set_leverage, set_margin_mode, set_position_mode, adjust_margin,
close_position, get_funding): validated here, run by the gateway, shaped by `services.position_views` (the same views
`positions_updated` carries).

Every account a client names is checked by `Api.account` (the one place): reads need `view`,
changes `trade`, and another user's account answers `account_not_found` like one that does not
exist. Without `account` a change goes to the caller's own account on the exchange.
"""

from __future__ import annotations

from typing import Any

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.methods import Api, caller, method
from coinwire.api.order_params import decimal_param, parse_position_side
from coinwire.core.errors import InvalidInput
from coinwire.core.numbers import to_units
from coinwire.core.orders import PositionSide
from coinwire.core.positions import MarginMode, PositionSettings

__all__ = ["FUNDING_LIMIT", "parse_margin_mode"]

_MODES = {mode.value: mode for mode in MarginMode}
FUNDING_LIMIT = 1000


def parse_margin_mode(text: str) -> MarginMode:
    mode = _MODES.get(text.lower())
    if mode is None:
        raise InvalidInput("invalid_margin_mode", f"mode must be one of {sorted(_MODES)}, got {text!r}", field="mode")
    return mode


def _symbol(p: P.PositionParams | P.GetPositionsParams | P.GetFundingParams, name: str, required: bool = True) -> str | None:
    """The market named by `pair` or `symbol` (one of them, or both the same)."""
    if p.pair is not None and p.symbol is not None and p.pair.replace("_", "/") != p.symbol.replace("_", "/"):
        raise InvalidInput("conflicting_parameters", f"{name}: `pair` and `symbol` name different markets")
    symbol = p.symbol or p.pair
    if symbol is None and required:
        raise InvalidInput("missing_parameter", f"{name} needs `pair` (BTC_USDT:USDT) or `symbol` (BTC/USDT:USDT)")
    return symbol


def _read_market(api: Api, p: P.GetPositionsParams | P.GetFundingParams, name: str) -> str | None:
    """A read's market: None (every market, of `exchange` if named: checked), or the symbol `pair` names on `exchange`."""
    symbol = _symbol(p, name, required=False)
    if symbol is None:
        if p.exchange is not None:
            api.gateway.exchange(p.exchange)
        return None
    if p.exchange is None:
        raise InvalidInput("missing_parameter", f"{name}: a `pair` is on an exchange: name it in `exchange`")
    return api.gateway.market(p.exchange, symbol).instrument.symbol


async def _perpetual(api: Api, ctx: CallContext, p: P.PositionParams, name: str) -> tuple[int, str, Any]:
    """(account, symbol, instrument) of a change: a perpetual market, an account the caller may trade on that exchange."""
    account_id = api.account(ctx, p.account, need="trade")  # first: another user's account is not found, whatever else is asked
    market = api.gateway.market(p.exchange, _symbol(p, name))
    inst = market.instrument
    if not inst.is_perpetual:
        raise InvalidInput("not_a_perpetual", f"{inst.symbol} on {p.exchange} is a spot market: {name} applies to perpetuals",
                           exchange=p.exchange, symbol=inst.symbol)
    if account_id is None:
        account_id = (await api.gateway.account_for(caller(ctx)[0], p.exchange)).id
    else:
        api.account(ctx, account_id, p.exchange, need="trade")  # on that exchange (account_exchange_mismatch)
    return account_id, inst.symbol, inst


def _settings(settings: PositionSettings) -> dict[str, Any]:
    """A market's settings as JSON, named as the position view names them."""
    return {"account": settings.account_id, "exchange": settings.exchange, "symbol": settings.symbol, "leverage": settings.leverage,
            "margin_mode": settings.margin_mode.value}


@method("get_positions", P.GetPositionsParams)
async def get_positions(api: Api, p: P.GetPositionsParams, ctx: CallContext) -> Any:
    """Open positions of the accounts the caller may read (one `account`, one `exchange`, one `pair`), as position views."""
    accounts = api.readable_accounts(ctx, p.account)  # first: another user's account is not found, whatever else is asked
    symbol = _read_market(api, p, "get_positions")
    return api.gateway.positions(accounts=accounts, exchange=p.exchange, symbol=symbol, include_flat=p.include_flat)


@method("set_leverage", P.SetLeverageParams)
async def set_leverage(api: Api, p: P.SetLeverageParams, ctx: CallContext) -> Any:
    """Sets the leverage of the account's market (1 to the bracket's maximum: `leverage_above_maximum`); answers the settings."""
    if p.leverage < 1:
        raise InvalidInput("invalid_leverage", f"leverage must be a whole number from 1, got {p.leverage}", field="leverage")
    account_id, symbol, _ = await _perpetual(api, ctx, p, "set_leverage")
    return _settings(await api.gateway.set_leverage(account_id=account_id, exchange=p.exchange, symbol=symbol, leverage=p.leverage))


@method("set_margin_mode", P.SetMarginModeParams)
async def set_margin_mode(api: Api, p: P.SetMarginModeParams, ctx: CallContext) -> Any:
    """Sets `isolated` or `cross` for the account's market; refused with an open position or order there
    (`margin_mode_change_with_open_position`). Answers the settings."""
    mode = parse_margin_mode(p.mode)
    account_id, symbol, _ = await _perpetual(api, ctx, p, "set_margin_mode")
    return _settings(await api.gateway.set_margin_mode(account_id=account_id, exchange=p.exchange, symbol=symbol, mode=mode))


@method("set_position_mode", P.SetPositionModeParams)
async def set_position_mode(api: Api, p: P.SetPositionModeParams, ctx: CallContext) -> Any:
    """Hedge mode (long and short legs, Binance's dual side position) or one-way for the account on the exchange;
    refused while it has open positions or orders there."""
    account_id = api.account(ctx, p.account, need="trade")
    api.gateway.exchange(p.exchange)
    if account_id is not None:
        api.account(ctx, account_id, p.exchange, need="trade")
    else:
        account_id = (await api.gateway.account_for(caller(ctx)[0], p.exchange)).id
    hedge = await api.gateway.set_hedge_mode(account_id=account_id, exchange=p.exchange, hedge=p.hedge_mode)
    return {"account": account_id, "exchange": p.exchange, "hedge_mode": hedge}


@method("adjust_margin", P.AdjustMarginParams)
async def adjust_margin(api: Api, p: P.AdjustMarginParams, ctx: CallContext) -> Any:
    """Adds (positive `amount`) or removes (negative) isolated margin of a position; answers its view."""
    side = parse_position_side(p.position_side)
    amount = to_units(decimal_param(p.amount, "amount"), 18, "amount")
    if amount == 0:
        raise InvalidInput("invalid_amount", "amount must not be zero: positive adds margin, negative removes it", field="amount")
    account_id, symbol, _ = await _perpetual(api, ctx, p, "adjust_margin")
    return await api.gateway.adjust_margin(account_id=account_id, exchange=p.exchange, symbol=symbol, amount=amount,
                                           position_side=side or PositionSide.BOTH)


@method("close_position", P.ClosePositionParams)
async def close_position(api: Api, p: P.ClosePositionParams, ctx: CallContext) -> Any:
    """Closes a position with a reduce-only market order for its whole size (hedge mode: `position_side` long or short);
    answers the order. No position: `no_position`."""
    side = parse_position_side(p.position_side)
    account_id, symbol, _ = await _perpetual(api, ctx, p, "close_position")
    owner_id = ctx.principal.user_id if ctx.principal is not None else None
    return await api.gateway.close_position(account_id=account_id, exchange=p.exchange, symbol=symbol,
                                            position_side=side or PositionSide.BOTH, client_oid=p.client_oid, owner_id=owner_id)


@method("get_funding", P.GetFundingParams)
async def get_funding(api: Api, p: P.GetFundingParams, ctx: CallContext) -> Any:
    """Funding payments of the accounts the caller may read, newest first (received positive, paid negative);
    `before_id`: the page after the one whose last `id` it is."""
    if not 1 <= p.limit <= FUNDING_LIMIT:
        raise InvalidInput("invalid_limit", f"limit must be between 1 and {FUNDING_LIMIT}", field="limit")
    accounts = api.readable_accounts(ctx, p.account)  # first, as get_positions
    symbol = _read_market(api, p, "get_funding")
    return await api.gateway.funding_history(accounts=accounts, exchange=p.exchange, symbol=symbol, limit=p.limit, before_id=p.before_id)

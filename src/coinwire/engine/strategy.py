"""The Strategy API: a small class a trader subclasses; the same code runs in backtest, paper and live.

    class MaCross(Strategy):
        symbol = "BTC/USDT"
        timeframe = "5m"
        fast = 50
        slow = 200

        def on_start(self) -> None:
            fast = self.indicator("sma", self.symbol, self.timeframe, self.fast)
            slow = self.indicator("sma", self.symbol, self.timeframe, self.slow)
            self.watch_cross(fast, slow, above=self.golden, below=self.death)

        def golden(self) -> None:
            self.buy(self.symbol)          # all available quote, sized at the fill price, fee included

        def death(self) -> None:
            self.sell(self.symbol)         # the whole position

One style of callback: the `on_*` methods (`on_start`, `on_stop`, `on_fill`, `on_order`,
`on_input`) are hooks a strategy overrides and the run calls; everything else it wants to hear
about it asks for in `on_start` with a verb that takes a callback of any name
(`subscribe_candles`, `subscribe_book`, `subscribe_trades`, `subscribe_ticker`, `watch_cross`,
`every`, `at`, and `on_signal` for outside signals: the one call named like a hook). A class
that defines any other `on_*` method (`def on_candle(self, candle)`, which would otherwise
never be called: a silent run with no trades), `on_signal` included, is refused when it is
defined, with `strategy_callback_misnamed` and the name of the right call.

Parameters are the class attributes with plain values; a run overrides them by name and type
(a typo gets "did you mean"). Everything a strategy can do goes through `self`, which hands it
to the run's runtime: the strategy never learns which mode it is in, sees only closed candles
stamped at or before the clock, and can only spend its run's wallet set.

Orders are keyword calls: `buy`, `sell` and `order` take every order type, conditional ones
included (stops, take-profits, trailing stops with their trigger and time in force), and an
entry's exits (`stop_loss=`, `take_profit=`, `trailing=`: prices, or `"3%"` of its fill);
tickets say whether a conditional order has fired (`trigger_state`).

A run whose wallet set holds funds on several exchanges (a paper or live run started with
balances on each) lists them in `self.exchanges`; orders, prices, books, tickers, trades,
fees and balances take `exchange=` to name one, and default to the first. Candles and
indicators are those of the first exchange.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from coinwire.core.errors import InvalidInput

if TYPE_CHECKING:
    from coinwire.engine.runtime import Runtime

__all__ = ["HOOKS", "Strategy", "Indicator", "OrderTicket", "PositionView", "StrategyParams", "SignalValue", "parse_params",
           "params_json"]

_PARAM_TYPES = (bool, int, float, str, Decimal)

StrategyParams = dict[str, Any]
SignalValue = str | int | float | bool | None  # what a strategy's named signal carries (JSON scalars)

# The methods a strategy overrides and the run calls; no other name may start with `on_`.
HOOKS: frozenset[str] = frozenset({"on_start", "on_stop", "on_fill", "on_order", "on_input", "on_step"})

# What an author who defines one of these meant, and the call that does it.
_SUBSCRIPTIONS: dict[str, str] = {
    "on_candle": "self.subscribe_candles(symbol, timeframe, self.{handler})",
    "on_candles": "self.subscribe_candles(symbol, timeframe, self.{handler})",
    "on_bar": "self.subscribe_candles(symbol, timeframe, self.{handler})",
    "on_book": "self.subscribe_book(symbol, self.{handler})",
    "on_trade": "self.subscribe_trades(symbol, self.{handler})",
    "on_trades": "self.subscribe_trades(symbol, self.{handler})",
    "on_ticker": "self.subscribe_ticker(symbol, self.{handler})",
    "on_tick": "self.subscribe_ticker(symbol, self.{handler})",
    "on_cross": "self.watch_cross(a, b, above=self.{handler}, below=...)",
    "on_timer": "self.every(seconds, self.{handler})",
}
# `on_signal` is the one registering call named like a hook (the name the seed's API and issue 29 give it): defining it
# instead of calling it is refused with the call that does it
_REGISTERING = {"on_signal": 'self.on_signal("tradingview", self.{handler}_received)'}


def misnamed_callback(class_name: str, name: str) -> InvalidInput | None:
    """The refusal of a strategy method called `name`, or None when the name is allowed.

    Why refuse rather than ignore: a method the run never calls looks exactly like one it
    does, and the run it spoils finishes without an error and without a trade.
    """
    if not name.startswith("on_") or name in HOOKS:
        return None
    handler = name[3:] or "handler"
    call = _SUBSCRIPTIONS.get(name) or _REGISTERING.get(name)
    if call is not None:
        right = call.format(handler=handler)
        message = (f"{class_name}.{name} would never be called: a strategy subscribes in on_start with "
                   f"{right} and names its callback anything but on_* (e.g. def {handler}(self, ...))")
    else:
        hint = difflib.get_close_matches(name, sorted(HOOKS), n=1, cutoff=0.8)
        guess = f"did you mean {hint[0]}? " if hint else ""
        message = (f"{class_name}.{name} would never be called: {guess}the methods named on_* are the hooks the run calls "
                   f"({', '.join(sorted(HOOKS))}); name a callback you pass to subscribe_*, watch_cross, every or at "
                   f"anything else (e.g. {handler})")
    return InvalidInput("strategy_callback_misnamed", message, method=name, expected=sorted(HOOKS))


class Indicator:
    """One declared indicator: its values up to the last closed candle, never beyond.

    `value` is the newest value (NaN while warming up); `ind[-2]` the one before;
    `values` a read-only array of everything visible now.
    """

    __slots__ = ("name", "symbol", "timeframe", "args", "_runtime", "key")

    def __init__(self, runtime: Runtime, name: str, symbol: str, timeframe: str, args: tuple[Any, ...], key: int) -> None:
        self._runtime = runtime
        self.name = name
        self.symbol = symbol
        self.timeframe = timeframe
        self.args = args
        self.key = key

    @property
    def value(self) -> float:
        return self._runtime.indicator_value(self.key, -1)

    def __getitem__(self, index: int) -> float:
        if not isinstance(index, int) or index >= 0:
            raise IndexError("indicators are read backwards from the newest value: ind[-1], ind[-2], ...")
        return self._runtime.indicator_value(self.key, index)

    @property
    def values(self) -> np.ndarray:
        return self._runtime.indicator_values(self.key)

    def __repr__(self) -> str:
        return f"Indicator({self.name}{self.args} on {self.symbol} {self.timeframe} = {self.value})"


class PositionView(Decimal):
    """A position as the number spot strategies always compared (`self.position(s) > 0`), carrying a perpetual's details.

    A `Decimal` subclass so that code written for spot keeps working: its value is the base
    held (spot) or the signed size (perpetual: negative when short).
    """

    side: str
    size: Decimal
    entry: Decimal | None
    upnl: Decimal
    liquidation_price: Decimal | None
    leverage: int
    margin_mode: str | None
    position_side: str

    def __new__(cls, value: Decimal, *, side: str, entry: Decimal | None = None, upnl: Decimal = Decimal(0),
                liquidation_price: Decimal | None = None, leverage: int = 1, margin_mode: str | None = None,
                position_side: str = "both") -> PositionView:
        view = super().__new__(cls, value)
        view.side = side
        view.size = abs(Decimal(value))
        view.entry = entry
        view.upnl = upnl
        view.liquidation_price = liquidation_price
        view.leverage = leverage
        view.margin_mode = margin_mode
        view.position_side = position_side
        return view

    def __repr__(self) -> str:
        return (f"PositionView(side={self.side!r}, size={self.size}, entry={self.entry}, upnl={self.upnl}, "
                f"liquidation_price={self.liquidation_price}, leverage={self.leverage})")


class OrderTicket:
    """What a strategy holds for an order it sent: ids to cancel it by, where it went, its state as last reported."""

    __slots__ = ("client_oid", "order_id", "exchange", "symbol", "side", "status", "filled", "error", "type", "stop_price",
                 "triggered", "parent", "exits")

    def __init__(self, client_oid: str, symbol: str, side: str, exchange: str = "", type: str = "market",
                 parent: OrderTicket | None = None) -> None:
        self.client_oid = client_oid
        self.order_id: int | None = None
        self.exchange = exchange
        self.symbol = symbol
        self.side = side
        # pending, untriggered (a conditional order waiting for its level), triggered, open, then how it ended
        self.status = "pending"
        self.filled = Decimal(0)
        self.error: str | None = None
        self.type = type
        self.stop_price: Decimal | None = None  # a conditional order's level (a trailing stop's as it moves)
        self.triggered = False  # a conditional order fired (it then lives on as its market or limit order)
        self.parent = parent  # an exit's entry (stop_loss=, take_profit=, trailing=)
        self.exits: list[OrderTicket] = []  # an entry's exits, once it filled

    @property
    def trigger_state(self) -> str | None:
        """`untriggered` or `triggered` for a conditional order (None for a plain one)."""
        if self.stop_price is None and self.type not in _CONDITIONAL_TYPES:
            return None
        return "triggered" if self.triggered else "untriggered"

    def __repr__(self) -> str:
        where = f" on {self.exchange}" if self.exchange else ""
        stop = f" stop={self.stop_price} {self.trigger_state}" if self.trigger_state else ""
        return f"OrderTicket({self.side} {self.type} {self.symbol}{where} {self.status}{stop} filled={self.filled} oid={self.client_oid})"


_CONDITIONAL_TYPES = frozenset({"stop-market", "stop-limit", "take-profit-market", "take-profit-limit", "trailing-stop"})


def _declared_params(cls: type) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass is Strategy:
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name == "name" or callable(value) or isinstance(value, (property, staticmethod, classmethod)):
                continue
            if isinstance(value, _PARAM_TYPES) or value is None:
                params[name] = value
    return params


def parse_params(cls: type[Strategy], raw: dict[str, Any]) -> StrategyParams:
    """Check overrides against the class's declared parameters; convert CLI strings to their types."""
    declared = _declared_params(cls)
    out: StrategyParams = {}
    for name, value in raw.items():
        if name not in declared:
            hint = difflib.get_close_matches(name, declared, n=1)
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidInput(
                "unknown_parameter",
                f"{cls.__name__} has no parameter {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else f" (parameters: {known})"),
                parameter=name,
            )
        out[name] = _convert(name, declared[name], value)
    return out


def params_json(params: StrategyParams) -> dict[str, Any]:
    """Parameters as JSON values: Decimals (and anything else not JSON-native) become strings."""
    return {k: v if v is None or isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()}


def _convert(name: str, default: Any, value: Any) -> Any:
    kind = type(default)
    try:
        if default is None or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
            return value
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind is float:
            result = float(value)
            if not math.isfinite(result):
                raise ValueError
            return result
        if kind is Decimal:
            return Decimal(str(value))
        return str(value)
    except (ValueError, ArithmeticError):
        raise InvalidInput(
            "invalid_parameter", f"parameter {name!r} must be {kind.__name__}, got {value!r}", parameter=name
        ) from None


class Strategy:
    """Base class of every strategy. Override `on_start` (declare data, indicators, timers) and `on_stop`."""

    name: ClassVar[str] = ""  # registry name; the class name in snake case when empty
    # History each candle series needs before the first event in paper and live runs (see engine/warmup.py):
    # None derives it from the indicators and `warm_up` windows; a subclass may set a number of candles
    # (`warmup = 500`) or a duration (`warmup = "7d"`), which replaces the derived figure and is a parameter.
    warmup: ClassVar[int | str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse an `on_*` method the run would never call, when the class is defined (see `misnamed_callback`)."""
        super().__init_subclass__(**kwargs)
        for name in vars(cls):
            error = misnamed_callback(cls.__name__, name)
            if error is not None:
                raise error

    if not TYPE_CHECKING:  # the type checker keeps reporting unknown attributes itself

        def __getattr__(self, name: str) -> Any:
            """A missing `on_*` (the old registering style, `self.on_candle(...)`) names the call that does it now."""
            call = _SUBSCRIPTIONS.get(name)
            if call is not None:
                raise AttributeError(f"{type(self).__name__} has no {name}: subscribe with {call.format(handler='handler')}")
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __init__(self, runtime: Runtime, params: StrategyParams | None = None) -> None:
        self._rt = runtime
        for key, value in (params or {}).items():
            setattr(self, key, value)

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Declared parameters and their defaults."""
        return _declared_params(cls)

    # --- lifecycle -------------------------------------------------------------------------
    def on_start(self) -> None:
        """Called once before the first event: declare subscriptions, indicators and timers here."""

    def on_stop(self) -> None:
        """Called once after the last event."""

    def on_fill(self, fill: dict[str, Any]) -> None:
        """A fill of one of this run's orders (price, size, fee as decimal strings)."""

    def on_order(self, order: OrderTicket) -> None:
        """An order of this run changed state (untriggered, triggered, open, filled, cancelled, rejected...).

        A conditional order's `trigger_state` says whether it fired; an entry's exits arrive
        here as tickets of their own (`ticket.parent` is the entry's).
        """

    def on_input(self, component_id: str, value: Any) -> None:
        """The user posted `value` to one of this run's UI components."""

    def on_step(self, name: str) -> None:
        """A schedule of the run's owner fired (`strategy_step` job): do the scheduled step called `name`.

        Delivered at the next event boundary, like input; a run that wants to act at fixed wall-clock
        times (a decision every day at 09:00 in the owner's zone) does it here.
        """

    # --- time ------------------------------------------------------------------------------
    @property
    def time(self) -> int:
        """The run's clock in unix seconds (simulated in backtests)."""
        return self._rt.now_ns() // 1_000_000_000

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._rt.now_ns() / 1e9, tz=UTC)

    def every(self, seconds: float, callback: Callable[[], None]) -> None:
        """Call `callback` every `seconds` of the run's clock, first after one period."""
        if not seconds > 0:
            raise InvalidInput("invalid_interval", f"every() needs a positive number of seconds, got {seconds!r}")
        self._rt.add_timer(int(seconds * 1e9), callback, repeat=True)

    def at(self, when: int | datetime, callback: Callable[[], None]) -> None:
        """Call `callback` once at `when` (unix seconds or an aware datetime)."""
        ts = int(when.timestamp() * 1e9) if isinstance(when, datetime) else int(when) * 1_000_000_000
        self._rt.add_timer(ts - self._rt.now_ns(), callback, repeat=False)

    # --- exchanges ---------------------------------------------------------------------------
    @property
    def exchanges(self) -> list[str]:
        """The exchanges this run trades on, the default one first (one in a backtest)."""
        return list(self._rt.exchanges)

    @property
    def markets(self) -> list[str]:
        """The symbols this run has market data for, sorted: a backtest's loaded markets; paper and live: its venues' priced markets.

        What a strategy that spreads over "every market of the run" (`rebalance` with no symbols) reads.
        """
        return sorted(self._rt.report_markets())

    # --- market data -----------------------------------------------------------------------
    def subscribe_candles(self, symbol: str, timeframe: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call `callback(candle)` for every CLOSED candle of symbol/timeframe."""
        self._rt.subscribe_candles(symbol, timeframe, callback)

    def subscribe_book(self, symbol: str, callback: Callable[[dict[str, Any]], None], *, exchange: str | None = None) -> None:
        """Call `callback(book)` when the book of `symbol` changes (top levels of each side)."""
        self._rt.subscribe("book", symbol, callback, self._rt.venue(exchange))

    def subscribe_trades(self, symbol: str, callback: Callable[[dict[str, Any]], None], *, exchange: str | None = None) -> None:
        """Call `callback(trade)` for every public trade of `symbol`."""
        self._rt.subscribe("trades", symbol, callback, self._rt.venue(exchange))

    def subscribe_ticker(self, symbol: str, callback: Callable[[dict[str, Any]], None], *, exchange: str | None = None) -> None:
        """Call `callback(ticker)` when the best bid or ask of `symbol` changes."""
        self._rt.subscribe("ticker", symbol, callback, self._rt.venue(exchange))

    def on_signal(self, provider: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call `callback(signal)` for every outside signal of `provider` (`tradingview`, `generic`, a server's own name).

        A call, not a hook: make it in `on_start`; the run then counts as subscribed to that
        provider. The signal is `{"provider", "method", "ts", "params"}` (`ts`: the run's clock in
        unix ns), delivered at the next event boundary after the server received it (paper, live)
        or at its recorded time, after the candle that closed at or before it (backtests replaying
        `signals.jsonl`); the run's hub records it as `<provider>.<method>`. See docs/SIGNALS.md.
        """
        self._rt.subscribe_signal(provider, callback)

    def candles(self, symbol: str, timeframe: str, count: int | None = None) -> dict[str, np.ndarray]:
        """Closed candles up to the clock: arrays `time, open, high, low, close, volume` (oldest first)."""
        return self._rt.candles(symbol, timeframe, count)

    def price(self, symbol: str, *, exchange: str | None = None) -> float:
        """The last known price: the newest closed candle's close, or the book's mid in paper and live."""
        return self._rt.last_price(symbol, self._rt.venue(exchange))

    def is_perpetual(self, symbol: str, *, exchange: str | None = None) -> bool:
        """Whether `symbol` is a perpetual future here (it can be shorted and leveraged); False for spot and unknown markets."""
        inst = self._rt.instrument(symbol, self._rt.venue(exchange))
        return inst is not None and inst.is_perpetual

    def fee(self, symbol: str, *, exchange: str | None = None) -> Decimal:
        """The taker fee rate of `symbol`'s market (0.001 is 0.1% of what a fill is worth)."""
        inst = self._rt.instrument(symbol, self._rt.venue(exchange))
        if inst is None:
            raise InvalidInput("unknown_symbol", f"no market {symbol} in this run", symbol=symbol)
        return Decimal(inst.taker_fee) / 10**8  # rates are kept in units of 1e-8

    def warm_up(self, symbol: str, timeframe: str, *, bars: int | None = None, seconds: int | None = None) -> None:
        """Declare a window of history: a paper or live run loads `bars` closed candles (or `seconds` of them) before its first event.

        Indicators declare their own (SMA 200 needs 200 candles); this is for what a strategy
        reads itself with `candles()`, e.g. a week of hourly closes. Backtests read their data
        range as it is and ignore it.
        """
        self._rt.declare_window(symbol, timeframe, bars, seconds)

    def indicator(self, kind: str | Callable[..., Any], symbol: str, timeframe: str, *args: Any, source: str = "close") -> Indicator:
        """Declare an indicator once; the runtime computes it in batch where it can, incrementally otherwise."""
        return self._rt.add_indicator(kind, symbol, timeframe, args, source)

    def watch_cross(
        self,
        a: Indicator,
        b: Indicator | float,
        above: Callable[[], None] | None = None,
        below: Callable[[], None] | None = None,
    ) -> None:
        """Call `above()` on the closed candle where `a` crosses above `b`, `below()` where it crosses below.

        A cross needs both values defined on this candle and the previous one: `a[-2] <= b[-2]`
        and `a[-1] > b[-1]` is a cross above. The backtest jumps straight to these candles.
        """
        if above is None and below is None:
            raise InvalidInput("invalid_condition", "watch_cross needs an `above` or a `below` callback")
        self._rt.add_cross(a, b, above, below)

    # --- orders ----------------------------------------------------------------------------
    def buy(
        self,
        symbol: str,
        *,
        size: float | Decimal | str | None = None,
        funds: float | Decimal | str | None = None,
        limit: float | Decimal | str | None = None,
        type: str | None = None,
        cancel_after: int = 0,
        exchange: str | None = None,
        stop_price: float | Decimal | str | None = None,
        trigger: str | None = None,
        trailing_delta: float | Decimal | str | None = None,
        activation_price: float | Decimal | str | None = None,
        time_in_force: str | None = None,
        expire_at: int | datetime | None = None,
        allow_immediate: bool = False,
        stop_loss: float | Decimal | str | None = None,
        take_profit: float | Decimal | str | None = None,
        trailing: float | Decimal | str | None = None,
        reduce_only: bool = False,
    ) -> OrderTicket:
        """Buy `size` (base units), or spend `funds` (quote, fee included), or with neither: all available quote.

        Without `limit` it is a market order (in a backtest it fills at the next candle's open,
        or at the signal candle's close with `--fill close`); with `limit` a good-till-cancelled
        limit unless `type` says otherwise (`limit-immediate-cancel`, `limit-fill-kill`, `limit-post-only`).
        `exchange`: where (one of `self.exchanges`; the first by default), spending the run's funds there.

        Conditional orders wait, holding their funds, until the `trigger` price (`last` trades,
        the default; `mark`; `bid_ask`) reaches their level: `type="stop-market"` (a buy fires at
        or above `stop_price`), `"stop-limit"` (then a limit at `limit`, living per
        `time_in_force`: GTC, IOC, FOK, or GTD until `expire_at`), `"take-profit-market"`,
        `"take-profit-limit"` (a buy fires at or below), `"trailing-stop"` (`trailing_delta`:
        `"1.5%"` or a price distance; following from `activation_price` if given). `stop_price`
        alone implies stop-market, with `limit` stop-limit. A conditional buy needs a `size`.

        Exits of a market or limit entry, placed once it has filled and sized to its fill:
        `stop_loss` (a stop-market), `take_profit` (a take-profit-market) and `trailing` (a
        trailing stop, instead of `stop_loss`), each a price, or a percentage of the entry's
        average fill price as a string: `stop_loss="3%"` is 3% below a long's fill, rounded
        to the tick half-up. With both a stop and a take-profit they are an OCO: one firing
        cancels the other. They show in `ticket.exits` and reach `on_order` as tickets of their own.

        Perpetuals: without a size, a new position of leverage x available margin (docs/ENGINE.md
        "Perpetual futures"); `reduce_only=True` only shrinks the position (cut to it; without a size: all of it).
        """
        return self._rt.place_order("buy", symbol, exchange=self._rt.venue(exchange), size=size, funds=funds, limit=limit, type=type,
                                     cancel_after=cancel_after, stop_price=stop_price, trigger=trigger, trailing_delta=trailing_delta,
                                     activation_price=activation_price, time_in_force=time_in_force, expire_at=expire_at,
                                     allow_immediate=allow_immediate, stop_loss=stop_loss, take_profit=take_profit, trailing=trailing,
                                     **({"reduce_only": True} if reduce_only else {}))

    def sell(
        self,
        symbol: str,
        *,
        size: float | Decimal | str | None = None,
        limit: float | Decimal | str | None = None,
        type: str | None = None,
        cancel_after: int = 0,
        exchange: str | None = None,
        stop_price: float | Decimal | str | None = None,
        trigger: str | None = None,
        trailing_delta: float | Decimal | str | None = None,
        activation_price: float | Decimal | str | None = None,
        time_in_force: str | None = None,
        expire_at: int | datetime | None = None,
        allow_immediate: bool = False,
        stop_loss: float | Decimal | str | None = None,
        take_profit: float | Decimal | str | None = None,
        trailing: float | Decimal | str | None = None,
        reduce_only: bool = False,
    ) -> OrderTicket:
        """Sell `size` (base units), or with no size: the whole available position (on `exchange`, the first by default).

        The conditional types and exits are `buy`'s, mirrored: a sell stop fires at or below its
        level, a sell take-profit at or above; a short's exits are buys above (stop) and below.
        """
        return self._rt.place_order("sell", symbol, exchange=self._rt.venue(exchange), size=size, funds=None, limit=limit, type=type,
                                     cancel_after=cancel_after, stop_price=stop_price, trigger=trigger, trailing_delta=trailing_delta,
                                     activation_price=activation_price, time_in_force=time_in_force, expire_at=expire_at,
                                     allow_immediate=allow_immediate, stop_loss=stop_loss, take_profit=take_profit, trailing=trailing,
                                     **({"reduce_only": True} if reduce_only else {}))

    def order(self, side: str, symbol: str, **kwargs: Any) -> OrderTicket:
        """`buy` or `sell` by name, with any of their arguments (every order type, conditional ones included)."""
        if side not in ("buy", "sell"):
            raise InvalidInput("invalid_side", f"side must be 'buy' or 'sell', got {side!r}")
        return self.buy(symbol, **kwargs) if side == "buy" else self.sell(symbol, **kwargs)

    def cancel(self, ticket: OrderTicket) -> None:
        self._rt.cancel_order(ticket)

    @property
    def open_orders(self) -> list[OrderTicket]:
        return self._rt.open_orders()

    # --- funds -----------------------------------------------------------------------------
    def balance(self, currency: str, exchange: str | None = None) -> Decimal:
        """Total of `currency` in this run's wallet set (held amounts included), on `exchange` or all the run's exchanges."""
        return self._rt.balance(currency, exchange, available=False)

    def available(self, currency: str, exchange: str | None = None) -> Decimal:
        """What this run can still spend of `currency` (total minus holds of open orders), on `exchange` or all of them."""
        return self._rt.balance(currency, exchange, available=True)

    def position(self, symbol: str, exchange: str | None = None) -> PositionView:
        """The run's position in `symbol`: a number (spot: the base held; perpetual: the signed size) with its details.

        `side` ("long", "short", "flat"), `size` (absolute), `entry`, `upnl`,
        `liquidation_price` and `leverage` (None and 1 on spot, where the position is what the
        wallet set holds of the base, on `exchange` or on all the run's exchanges).
        """
        return self._rt.position(symbol, exchange)

    def short(
        self,
        symbol: str,
        *,
        size: float | Decimal | str | None = None,
        limit: float | Decimal | str | None = None,
        type: str | None = None,
        cancel_after: int = 0,
        exchange: str | None = None,
    ) -> OrderTicket:
        """Open or add to a short on a perpetual: a sell of `size`, or with no size the leverage times the available margin.

        Spot markets cannot be shorted (`spot_cannot_short`). A sell on a perpetual is the same
        order; `short` says what the strategy means and never only closes a long.
        """
        exchange = self._rt.venue(exchange)
        inst = self._rt.instrument(symbol, exchange)
        if inst is None or not inst.is_perpetual:
            raise InvalidInput("spot_cannot_short", f"{symbol} is a spot market: it cannot be shorted (a perpetual can, "
                               f"e.g. BTC/USDT:USDT)")
        return self.sell(symbol, size=size, limit=limit, type=type, cancel_after=cancel_after, exchange=exchange)

    def close(self, symbol: str, *, exchange: str | None = None) -> OrderTicket | None:
        """Close the position in `symbol`: a reduce-only market order for all of it (None when there is nothing to close).

        On spot this sells the whole available base, as `sell(symbol)` does.
        """
        exchange = self._rt.venue(exchange)
        inst = self._rt.instrument(symbol, exchange)
        if inst is None or not inst.is_perpetual:
            return self.sell(symbol, exchange=exchange) if self.position(symbol, exchange) > 0 else None
        return self._rt.close_position(symbol, exchange)

    def set_leverage(self, symbol: str, leverage: int, *, exchange: str | None = None) -> None:
        """The leverage of `symbol`'s perpetual (1 to its bracket's maximum: `leverage_above_maximum` beyond)."""
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise InvalidInput("invalid_leverage", f"leverage is a whole number from 1, got {leverage!r}")
        self._rt.set_leverage(symbol, leverage, self._rt.venue(exchange))

    def equity(self, currency: str | None = None) -> Decimal:
        """Everything this run holds, valued at last prices in `currency` (the run's quote by default)."""
        return self._rt.equity(currency)

    # --- log and UI components ------------------------------------------------------------
    def log(self, message: str, level: str = "info") -> None:
        self._rt.log(level, message)

    def signal(self, name: str, value: SignalValue) -> bool:
        """Emit a named signal (`self.signal("ma_cross", "above")`): stored and published in paper and live runs,
        listed in a backtest's report. A value equal to the last one of that name is dropped (returns False)."""
        return self._rt.signal(name, value)

    def component(self, component_id: str, spec: dict[str, Any], data: list[list[Any]] | None = None) -> None:
        """Create or replace a UI component: a JSON `spec` (type, title, fields...) and optional CSV-like rows."""
        self._rt.set_component(component_id, spec, data)

    def update_component(self, component_id: str, spec: dict[str, Any] | None = None, data: list[list[Any]] | None = None) -> None:
        self._rt.update_component(component_id, spec, data)

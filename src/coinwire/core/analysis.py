"""The analyser's vocabulary: series names, indicator references, analysis keys, and one streaming computation.

Why one grammar for every series: the analyser treats everything as technical analysis, a
market's candles as much as a portfolio's value or one currency's balance, so a rule, a
subscription and a stored value all name what they read the same way:

    market:<exchange>:<symbol>:<timeframe>       a market's candles ("market:binance:BTC/USDT:1h")
    portfolio:<scope>:<id>:<timeframe>          a portfolio's value candles (scope account | wallet_set | run | user)
    portfolio[:<timeframe>]                     the rule set's own portfolio (the caller resolves it)
    balance:<account_id>:<currency>             one currency's balance of an account (a point per change)
    position:<account_id>:<symbol>              a position's unrealised PnL (a point per change)

An indicator is a registry name of `core.indicators` (sma, ema, rsi, macd, bollinger, atr, peak,
drawdown, return) or `value` (the series itself), optionally naming one output of a
multi-output indicator (`macd.signal`, `bollinger.upper`), with its parameters in registry
order (the ones left out take their defaults). The analysis key joins the three into one stable string,
`market.binance.BTC-USDT.1h:rsi(14)`, that rules read and the store indexes.
Points series (balance, position) feed an indicator's high, low and close with the one value.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Final, NamedTuple

from coinwire.core.errors import InvalidInput
from coinwire.core.indicators import (
    NAN,
    DrawdownFromPeak,
    Indicator,
    Peak,
    ReturnOverWindow,
    indicator_spec,
)
from coinwire.core.portfolio import BUCKET_S
from coinwire.core.rollup import Row, combine, nests, parse_timeframe, utc_bucket
from coinwire.core.symbols import normalize_symbol

__all__ = [
    "KINDS",
    "PORTFOLIO_SCOPES",
    "PortfolioBars",
    "DrawdownFromPeak",
    "IndicatorRef",
    "Peak",
    "ReturnOverWindow",
    "SeriesRef",
    "Stream",
    "Value",
    "analysis_key",
    "format_params",
    "parse_analysis_key",
    "parse_indicator",
    "parse_series",
]

KINDS: Final = ("market", "portfolio", "balance", "position")
PORTFOLIO_SCOPES: Final = ("account", "wallet_set", "run", "user")  # core.portfolio.SCOPES
PORTFOLIO_TIMEFRAME: Final = "15m"  # the tracker's bucket: a portfolio series rolls up from it
_MAIN_OUTPUT: Final = {"macd": "macd", "bollinger": "middle"}  # the output a multi-output indicator keeps in `value`
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


class SeriesRef(NamedTuple):
    """A parsed series; `text` is its canonical spelling (exchange lower case, symbol and currency upper)."""

    kind: str
    exchange: str = ""  # market
    symbol: str = ""  # market, position
    scope: str = ""  # portfolio ("" = the caller's own scope, not resolved yet)
    scope_id: str = ""  # portfolio
    account_id: int = 0  # balance, position
    currency: str = ""  # balance
    timeframe: str = ""  # market, portfolio ("" for point series)

    @property
    def text(self) -> str:
        if self.kind == "market":
            return f"market:{self.exchange}:{self.symbol}:{self.timeframe}"
        if self.kind == "portfolio":
            if not self.scope:
                return "portfolio" if self.timeframe == PORTFOLIO_TIMEFRAME else f"portfolio:{self.timeframe}"
            return f"portfolio:{self.scope}:{self.scope_id}:{self.timeframe}"
        if self.kind == "balance":
            return f"balance:{self.account_id}:{self.currency}"
        return f"position:{self.account_id}:{self.symbol}"

    @property
    def resolved(self) -> bool:
        """False for `portfolio` alone: whose portfolio depends on the rule set it sits in."""
        return self.kind != "portfolio" or bool(self.scope)

    @property
    def candles(self) -> bool:
        """True for candle series (market, portfolio); balance and position series are points."""
        return self.kind in ("market", "portfolio")

    def in_scope(self, scope: str, scope_id: str) -> SeriesRef:
        """The own-portfolio series resolved to a rule set's scope (any other series unchanged)."""
        if self.resolved:
            return self
        return parse_series(f"portfolio:{scope}:{scope_id}:{self.timeframe}")


def _bad(series: object, why: str) -> InvalidInput:
    return InvalidInput("unknown_series", f"series {series!r}: {why}", series=str(series))


def _timeframe(series: object, text: str) -> str:
    try:
        return str(parse_timeframe(text))
    except InvalidInput as exc:
        raise _bad(series, exc.message) from None


def _symbol(series: object, text: str) -> str:
    try:
        return normalize_symbol(text)
    except InvalidInput as exc:
        raise _bad(series, exc.message) from None


def _account(series: object, text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise _bad(series, f"account id must be a positive integer, got {text!r}")
    return int(text)


def parse_series(series: str) -> SeriesRef:
    """Parse and check a series name (grammar in the module docstring); `unknown_series` says what is wrong."""
    if not isinstance(series, str) or not series.strip():
        raise _bad(series, "a series is a string like 'market:binance:BTC/USDT:1h'")
    parts = series.strip().split(":")
    kind = parts[0].lower()
    if kind == "market":
        if len(parts) < 4:
            raise _bad(series, "a market series is 'market:<exchange>:<symbol>:<timeframe>'")
        exchange = parts[1].strip().lower()
        if not exchange or not set(exchange) <= _NAME_CHARS:
            raise _bad(series, f"exchange must be a name like 'binance', got {parts[1]!r}")
        symbol = _symbol(series, ":".join(parts[2:-1]))
        return SeriesRef("market", exchange=exchange, symbol=symbol, timeframe=_timeframe(series, parts[-1].strip()))
    if kind == "portfolio":
        if len(parts) in (1, 2):
            tf = _portfolio_timeframe(series, parts[1].strip() if len(parts) == 2 else PORTFOLIO_TIMEFRAME)
            return SeriesRef("portfolio", timeframe=tf)
        if len(parts) != 4:
            raise _bad(series, "a portfolio series is 'portfolio:<scope>:<id>:<timeframe>' or 'portfolio' (the own scope)")
        scope, scope_id = parts[1].strip().lower(), parts[2].strip()
        if scope not in PORTFOLIO_SCOPES:
            raise _bad(series, f"scope must be one of {', '.join(PORTFOLIO_SCOPES)}, got {parts[1]!r}")
        if not scope_id or not set(scope_id.lower()) <= _NAME_CHARS:
            raise _bad(series, f"scope id must be an id like '7', got {parts[2]!r}")
        return SeriesRef("portfolio", scope=scope, scope_id=scope_id,
                         timeframe=_portfolio_timeframe(series, parts[3].strip()))
    if kind == "balance":
        if len(parts) != 3:
            raise _bad(series, "a balance series is 'balance:<account_id>:<currency>'")
        currency = parts[2].strip().upper()
        if not currency.isalnum() or not currency.isascii():
            raise _bad(series, f"currency must be a code like 'USDT', got {parts[2]!r}")
        return SeriesRef("balance", account_id=_account(series, parts[1].strip()), currency=currency)
    if kind == "position":
        if len(parts) < 3:
            raise _bad(series, "a position series is 'position:<account_id>:<symbol>'")
        return SeriesRef("position", account_id=_account(series, parts[1].strip()),
                         symbol=_symbol(series, ":".join(parts[2:])))
    raise _bad(series, f"kind must be one of {', '.join(KINDS)}, got {parts[0]!r}")


def _portfolio_timeframe(series: object, text: str) -> str:
    """A portfolio is valued in 15-minute buckets: a longer timeframe must be made of whole buckets."""
    tf = _timeframe(series, text)
    if not nests(parse_timeframe(PORTFOLIO_TIMEFRAME), parse_timeframe(tf)):
        raise _bad(series, f"a portfolio timeframe must be made of whole 15m buckets, got {text!r}")
    return tf


class Value(Indicator):
    """The series itself (its close, or the point's value): what a rule compares to a threshold directly."""

    name = "value"
    __slots__ = ("value", "warmup")

    def __init__(self) -> None:
        self.warmup = 1
        self.value = NAN

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if math.isfinite(value):
            self.value = value
        return self.value


class IndicatorRef(NamedTuple):
    """A checked indicator: its registry name, the output read (None: the main one) and its parameters."""

    name: str
    output: str | None
    params: tuple[int | float, ...]

    @property
    def text(self) -> str:
        return self.name if self.output is None else f"{self.name}.{self.output}"

    def new(self) -> Indicator:
        """A fresh streaming instance (the parameters were checked when the reference was made)."""
        if self.name == "value":
            return Value()
        return indicator_spec(self.name).stream(*self.params)

    def read(self, indicator: Indicator) -> float:
        """The output this reference names, from an instance `new` made."""
        value = indicator.value if self.output is None else getattr(indicator, self.output)
        return float(value)


def _param(indicator: str, name: str, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput("invalid_parameter", f"{indicator} parameter {name} must be a number, got {value!r}",
                           parameter=name)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _defaults(name: str, names: Sequence[str]) -> tuple[int | float, ...]:
    """The defaults of the parameters left out, so `rsi` and `rsi(14)` are one key."""
    if not names:
        return ()
    signature = inspect.signature(indicator_spec(name).stream)
    out: list[int | float] = []
    for param in names:
        default = signature.parameters[param].default
        if default is inspect.Parameter.empty:
            raise InvalidInput("invalid_parameter", f"{name} needs its parameter {param}", parameter=param)
        out.append(_param(name, param, default))
    return tuple(out)


def parse_indicator(indicator: str, params: Sequence[int | float] = ()) -> IndicatorRef:
    """Check an indicator name (`rsi`, `macd.signal`) and its parameters; `unknown_indicator` / `invalid_parameter`."""
    if not isinstance(indicator, str) or not indicator.strip():
        raise InvalidInput("unknown_indicator", f"indicator must be a name like 'rsi', got {indicator!r}",
                           indicator=str(indicator))
    name, dot, output = indicator.strip().lower().partition(".")
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise InvalidInput("invalid_parameter", f"params must be a list of numbers, got {params!r}", parameter="params")
    if name == "value":
        names: tuple[str, ...] = ()
        outputs: tuple[str, ...] = ("value",)
    else:
        spec = indicator_spec(name)
        names, outputs = spec.params, spec.stream.outputs
    if len(params) > len(names):
        raise InvalidInput("invalid_parameter",
                           f"{name} takes at most {len(names)} parameters ({', '.join(names) or 'none'}), got {len(params)}",
                           parameter="params")
    checked = tuple(_param(name, names[i], v) for i, v in enumerate(params)) + _defaults(name, names[len(params):])
    chosen: str | None = None
    if dot:
        if output not in outputs or len(outputs) == 1:
            listed = f"outputs {', '.join(outputs)}" if len(outputs) > 1 else "one output"
            raise InvalidInput("unknown_indicator", f"{name} has {listed}; got {indicator!r}", indicator=indicator)
        chosen = None if output == _MAIN_OUTPUT.get(name) else output  # the main output is `value`
    ref = IndicatorRef(name, chosen, checked)
    ref.new()  # the class checks its parameters' ranges (InvalidInput invalid_parameter)
    return ref


def format_params(params: Sequence[int | float]) -> str:
    """`(14)`, `(20,2.5)`: integers without a point, so 2 and 2.0 name one indicator."""
    return "(" + ",".join(repr(p) for p in params) + ")"


def analysis_key(series: str, indicator: str, params: Sequence[int | float] = ()) -> str:
    """The one name of an analyser output: `market.binance.BTC-USDT.1h:rsi(14)` (checks all three)."""
    ref = parse_series(series)
    ind = parse_indicator(indicator, params)
    dotted = ref.text.replace("/", "-").replace(":", ".")
    return f"{dotted}:{ind.text}{format_params(ind.params)}"


def parse_analysis_key(key: str) -> tuple[str, str, tuple[int | float, ...]]:
    """The (series, indicator, params) an analysis key names, so a rule's `other` key can be computed, not only read.

    The key's spelling folds `/` and `:` into `-` and `.`; the inverse is checked by spelling the
    result again, so a key that no series and indicator spell is refused rather than guessed.
    """
    bad = InvalidInput("unknown_series", f"{key!r} is not an analysis key like 'market.binance.BTC-USDT.1h:sma(50)'",
                       series=str(key)[:300])
    if not isinstance(key, str) or key.count(":") != 1:
        raise bad
    head, tail = key.split(":")
    name, paren, rest = tail.partition("(")
    if paren and not rest.endswith(")"):
        raise bad
    try:
        params = tuple(_number_text(p) for p in rest[:-1].split(",") if p) if paren else ()
    except ValueError:
        raise bad from None
    parts = head.split(".")
    if parts[0] in ("market", "position") and len(parts) >= (4 if parts[0] == "market" else 3):
        first, symbol = (parts[:2], parts[2:-1]) if parts[0] == "market" else (parts[:2], parts[2:])
        last = [parts[-1]] if parts[0] == "market" else []
        dotted = ".".join(symbol).replace(".", ":")
        candidates = [f"{dotted[:i]}/{dotted[i + 1:]}" for i, c in enumerate(dotted) if c == "-"] or [dotted]
        series_texts = [":".join([*first, c, *last]) for c in candidates]
    else:
        series_texts = [head.replace(".", ":")]
    for series in series_texts:
        try:
            if analysis_key(series, name, params) == key:
                return parse_series(series).text, name, params
        except InvalidInput:
            continue
    raise bad


def _number_text(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


class PortfolioBars:
    """A portfolio series' bars: its closed 15-minute candles folded into the series' UTC timeframe.

    One fold for the live analyser (the tracker's candles) and a run's rules (the run's own
    candles), so an indicator on a portfolio reads the same bars in both.
    """

    __slots__ = ("tf", "next_end", "agg")

    def __init__(self, timeframe: str) -> None:
        self.tf = parse_timeframe(timeframe)
        self.next_end = 0  # the end (unix s) of the last 15-minute candle folded in
        self.agg: Row | None = None  # the longer bucket formed so far

    def add(self, row: Row) -> tuple[float, float, float, int] | None:
        """One closed 15-minute candle (open time in s); returns (high, low, close, end s) of the bar it completes.

        A candle already folded (a stored one the tracker also told) is skipped; a bucket left
        incomplete by a gap starts again at the next candle rather than mixing two buckets.
        """
        if row[0] < self.next_end:
            return None
        self.next_end = row[0] + BUCKET_S
        start, end = utc_bucket(self.tf, row[0])
        if self.agg is not None and self.agg[0] != start:
            self.agg = None
        agg = row if self.agg is None else combine(self.agg, row)
        self.agg = (start, *agg[1:])
        if row[0] + BUCKET_S < end:
            return None
        done, self.agg = self.agg, None
        return float(done[2]), float(done[3]), float(done[4]), end


class Stream:
    """One indicator over one series, fed bar by bar (candles) or point by point: the analyser's unit of work."""

    __slots__ = ("ref", "_indicator", "_inputs")

    def __init__(self, ref: IndicatorRef) -> None:
        self.ref = ref
        self._indicator = ref.new()
        self._inputs = self._indicator.inputs

    def update(self, high: float, low: float, close: float) -> float:
        """Feed one closed bar (a point: high = low = close); returns the referenced output (NaN while warming up)."""
        if self._inputs == ("close",):
            self._indicator.update(close)
        else:
            self._indicator.update(high, low, close)
        return self.ref.read(self._indicator)

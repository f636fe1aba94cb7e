"""Outside signals (a TradingView alert, a news webhook, another bot): their body formats read into one normalised form.

Not issue 27's strategy signals (`Strategy.signal`): these come from outside the platform and
reach the runs that subscribed with `Strategy.on_signal(provider, callback)`.

Every provider's body becomes `{"provider", "method", "ts", "params"}`: `ts` in unix
nanoseconds, `params` a JSON object. Two formats are read:

- `tradingview`: TradingView's alert webhook JSON as users write it in the alert's message box,
  the placeholders filled in by TradingView (`"action": "{{strategy.order.action}}"`). The fields
  read are in TRADINGVIEW_FIELDS (each optional but `ticker`); any other field is kept, as text,
  under `params.extra`. A value still holding `{{` (a placeholder TradingView did not fill, e.g.
  a strategy placeholder on an indicator alert) is refused naming the field. The method is
  `alert` unless the body names one (`"method": "exit"`). TradingView's `time` is the bar's OPEN
  time, so it is kept in params and never used as `ts` (that would be look-ahead in a replay):
  `ts` is when the server received the alert.
- `generic` (and every provider a server adds by name): `{"method": "...", "params": {...},
  "ts"?: ...}`; `ts`, when given, is the signal's own time (not after it was received).

`ts` is written one way everywhere (a body's, a replay file's): an integer of unix
nanoseconds, or an ISO 8601 time (`2026-12-07T09:56:00Z`). A credential in the body (`key`, or
TradingView's customary `passphrase`) is taken out by `take_credential` and never kept.

Pure: no clock, no I/O (the caller passes the time it received the body).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from coinwire.core.errors import InvalidInput

__all__ = [
    "GENERIC", "TRADINGVIEW", "BUILTIN_PROVIDERS", "CREDENTIAL_FIELDS", "TRADINGVIEW_FIELDS", "MAX_PARAMS_BYTES", "check_provider",
    "SIGNATURE_WINDOW_S", "normalise", "parse_ts", "read_line", "signature_age", "signed_payload", "take_credential",
    "tradingview_symbol",
]

TRADINGVIEW = "tradingview"
SIGNATURE_WINDOW_S = 300  # how far a signed signal's timestamp may be from the receiver's clock, either way
GENERIC = "generic"
BUILTIN_PROVIDERS = (TRADINGVIEW, GENERIC)
CREDENTIAL_FIELDS = ("key", "passphrase")  # where a sender that cannot set headers puts its API key
MAX_PARAMS_BYTES = 8_192  # what one signal's params may hold, written as JSON (a body is bounded before it is read)
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,23}")  # `signals:<name>` fits an API key's scope (32 characters)
_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_TEXT_MAX = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# TradingView alert fields: name -> kind ("text", "decimal", "side", "position", "time")
TRADINGVIEW_FIELDS: dict[str, str] = {
    "ticker": "text",  # {{ticker}}: BTCUSDT, or BINANCE:BTCUSDT, or BTC/USDT
    "exchange": "text",  # {{exchange}}: BINANCE
    "action": "side",  # {{strategy.order.action}}: buy | sell
    "contracts": "decimal",  # {{strategy.order.contracts}}
    "price": "decimal",  # {{strategy.order.price}} or {{close}}
    "close": "decimal",  # {{close}}
    "position": "position",  # {{strategy.market_position}}: long | flat | short
    "position_size": "decimal",  # {{strategy.market_position_size}}
    "prev_position": "position",  # {{strategy.prev_market_position}}
    "order_id": "text",  # {{strategy.order.id}}
    "comment": "text",  # {{strategy.order.comment}}
    "message": "text",  # {{strategy.order.alert_message}}, or any text
    "interval": "text",  # {{interval}}: 60, 1D
    "time": "time",  # {{time}}: the bar's open time (ISO 8601)
    "timenow": "time",  # {{timenow}}: when the alert fired (ISO 8601)
}
_POSITIONS = ("long", "flat", "short")
_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BTC", "ETH", "BNB")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput("invalid_signal", f"{field}: {message}", field=field)


def signed_payload(timestamp: str, raw: bytes) -> bytes:
    """What a signed signal's HMAC covers: its `X-Coinwire-Timestamp`, a dot, then the raw body, so a captured signal
    cannot be sent again later (the timestamp ages out) and cannot be re-dated (the signature covers it)."""
    return timestamp.encode() + b"." + raw


def signature_age(timestamp: str | None, now_ns: int) -> int | None:
    """Seconds between a signal's `X-Coinwire-Timestamp` (unix seconds) and `now_ns`; None when it is not one."""
    if timestamp is None or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return None
    return abs(now_ns // 1_000_000_000 - int(timestamp))


def check_provider(provider: object) -> str:
    """A provider's name as configured and as it appears in a URL, a scope and a hub method: `[a-z][a-z0-9_-]{0,23}`."""
    if not isinstance(provider, str) or not _NAME.fullmatch(provider):
        raise InvalidInput("invalid_provider", f"a provider name is 1-24 lower-case letters, digits, '_' or '-', got {provider!r}")
    return provider


def take_credential(body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The body without its credential field(s), and the credential (None: none given).

    Why here: TradingView cannot send headers, so its users put the key in the message; it must
    be gone before anything is recorded or delivered.
    """
    found = [body[name] for name in CREDENTIAL_FIELDS if name in body]
    rest = {k: v for k, v in body.items() if k not in CREDENTIAL_FIELDS}
    if not found:
        return rest, None
    if len(found) > 1 or not isinstance(found[0], str):
        raise _invalid(CREDENTIAL_FIELDS[0], "the credential is one string, in `key` or `passphrase`")
    return rest, found[0]


def parse_ts(value: object, field: str = "ts") -> int:
    """Unix nanoseconds from an integer of them, or from an ISO 8601 time (UTC when it names no zone)."""
    if isinstance(value, bool):
        raise _invalid(field, "a time is unix nanoseconds (an integer) or ISO 8601 text")
    if isinstance(value, int):
        if not 0 <= value < 2**63:
            raise _invalid(field, f"unix nanoseconds are between 0 and 2^63, got {value}")
        return value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(field, f"{value!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delta = when - _EPOCH
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
        if ns < 0:
            raise _invalid(field, f"{value!r} is before 1970")
        return ns
    raise _invalid(field, "a time is unix nanoseconds (an integer) or ISO 8601 text")


def tradingview_symbol(ticker: str) -> str | None:
    """The unified `BASE/QUOTE` of a TradingView ticker (`BINANCE:BTCUSDT`, `BTCUSDT`, `BTC/USDT`), or None when unsure."""
    text = ticker.rpartition(":")[2].strip().upper()
    if text.endswith(".P"):  # TradingView's perpetual suffix (BTCUSDT.P): the spot pair's name is still the market's
        text = text[:-2]
    for sep in ("/", "_", "-"):
        base, found, quote = text.partition(sep)
        if found:
            return f"{base}/{quote}" if base.isalnum() and quote.isalnum() else None
    for quote in _QUOTES:
        if text.endswith(quote) and len(text) > len(quote) and text[: -len(quote)].isalnum():
            return f"{text[: -len(quote)]}/{quote}"
    return None


def _text(field: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
        raise _invalid(field, f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if "{{" in text:
        raise InvalidInput("unfilled_placeholder", f"{field}: {text!r} still holds a placeholder TradingView did not fill "
                           "(strategy placeholders work on strategy alerts only)", field=field)
    if len(text) > _TEXT_MAX:
        raise _invalid(field, f"at most {_TEXT_MAX} characters")
    return text


def _decimal(field: str, value: object) -> str:
    text = _text(field, value)
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise _invalid(field, f"{text!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise _invalid(field, f"{text!r} is not a finite number of at least 0")
    return format(number.normalize(), "f") if number else "0"


def _tradingview(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = _method(body.get("method", "alert"))
    if "ticker" not in body:
        raise _invalid("ticker", "a TradingView alert names its ticker: \"ticker\": \"{{ticker}}\"")
    params: dict[str, Any] = {}
    for name, kind in TRADINGVIEW_FIELDS.items():
        value = body.get(name)
        if value is None or value == "":
            params[name] = None
            continue
        if kind == "decimal":
            params[name] = _decimal(name, value)
        elif kind == "time":
            text = _text(name, value)
            parse_ts(text, name)
            params[name] = text
        elif kind == "side":
            side = _text(name, value).lower()
            if side not in ("buy", "sell"):
                raise _invalid(name, f"buy or sell, got {side!r}")
            params[name] = side
        elif kind == "position":
            position = _text(name, value).lower()
            if position not in _POSITIONS:
                raise _invalid(name, f"long, flat or short, got {position!r}")
            params[name] = position
        else:
            params[name] = _text(name, value)
    if not params["ticker"]:
        raise _invalid("ticker", "must not be empty")
    params["symbol"] = tradingview_symbol(params["ticker"])
    extra = {k: v for k, v in body.items() if k not in TRADINGVIEW_FIELDS and k != "method"}
    params["extra"] = {k: _text(k, v) if isinstance(v, (str, int, float, Decimal)) and not isinstance(v, bool) else v
                       for k, v in sorted(extra.items())}
    return method, params


def _method(value: object) -> str:
    if not isinstance(value, str) or not _METHOD.fullmatch(value):
        raise _invalid("method", "a method is 1-64 letters, digits, '_', '.' or '-', starting with a letter")
    return value


def _json_value(field: str, value: Any, depth: int = 0) -> Any:
    """A params value as plain JSON: numbers that are not integers become decimal strings (exact, as money is kept)."""
    if depth > 16:
        raise _invalid(field, "nested too deep (at most 16 levels)")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (Decimal, float)):
        number = Decimal(str(value))
        if not number.is_finite():
            raise _invalid(field, "numbers must be finite")
        return format(number, "f")
    if isinstance(value, list):
        return [_json_value(field, v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(f"{field}.{k}", v, depth + 1) for k, v in value.items()}
    raise _invalid(field, f"not a JSON value: {type(value).__name__}")


def _size(params: Any) -> int:
    """Roughly how many bytes params take as JSON: enough to refuse a body built to be large."""
    if isinstance(params, dict):
        return sum(len(str(k)) + 4 + _size(v) for k, v in params.items()) + 2
    if isinstance(params, list):
        return sum(_size(v) + 1 for v in params) + 2
    return len(str(params)) + 2


def normalise(provider: str, body: object, received_ns: int, tradingview: bool) -> dict[str, Any]:
    """One signal's body in its provider's format -> `{provider, method, ts, params}`; refused `invalid_signal` naming the field.

    `tradingview`: read TradingView's alert format (else the generic one); `received_ns`: when the
    server received it, the `ts` unless a generic body gives its own (which may not be later).
    """
    if not isinstance(body, dict):
        raise _invalid("body", "a signal is a JSON object")
    if tradingview:
        method, params = _tradingview(body)
        ts = received_ns
    else:
        unknown = sorted(set(body) - {"method", "params", "ts"})
        if unknown:
            raise _invalid(unknown[0], "unknown field: a generic signal is {\"method\", \"params\", \"ts\"?}")
        if "method" not in body:
            raise _invalid("method", "required")
        method = _method(body["method"])
        raw = body.get("params", {})
        if not isinstance(raw, dict):
            raise _invalid("params", "a JSON object")
        params = _json_value("params", raw)
        ts = parse_ts(body["ts"]) if "ts" in body and body["ts"] is not None else received_ns
        if ts > received_ns:
            raise _invalid("ts", "a signal's time cannot be after it was received")
    if _size(params) > MAX_PARAMS_BYTES:
        raise _invalid("params", f"at most {MAX_PARAMS_BYTES} bytes of JSON")
    return {"provider": provider, "method": method, "ts": ts, "params": params}


def read_line(line: object, where: str = "line") -> dict[str, Any]:
    """One recorded signal (a line of a replay file, in the normalised form) checked: `{provider, method, ts, params}`."""
    if not isinstance(line, dict):
        raise InvalidInput("invalid_signal", f"{where}: a recorded signal is a JSON object", field="line")
    unknown = sorted(set(line) - {"provider", "method", "ts", "params"})
    missing = sorted({"provider", "method", "ts"} - set(line))
    if unknown or missing:
        field = (unknown or missing)[0]
        raise InvalidInput("invalid_signal", f"{where}: {field}: a recorded signal is {{provider, method, ts, params}}", field=field)
    params = line.get("params", {})
    if not isinstance(params, dict):
        raise InvalidInput("invalid_signal", f"{where}: params: a JSON object", field="params")
    try:
        return {"provider": check_provider(line["provider"]), "method": _method(line["method"]), "ts": parse_ts(line["ts"]),
                "params": _json_value("params", params)}
    except InvalidInput as exc:
        raise InvalidInput(exc.code, f"{where}: {exc.message}", **exc.data) from None

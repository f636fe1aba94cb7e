"""Request JSON, read in one place for REST bodies and JSON-RPC frames: exact numbers, bounded nesting, stable codes.

- JSON numbers with a fraction or an exponent are decoded as `Decimal` from their own text, so
  `10000.00000000000000001` reaches the grid check as written (and is refused `too_precise`
  like the same value as a string) instead of being rounded to the nearest float.
- Nesting deeper than the decoder's recursion limit (about 900 levels: no request needs more
  than a few) is refused `too_deep`, never a 500, also where a typed shape would refuse the
  body's first value (`invalid_params`) before reaching the depth.
- A NUL character (the `\\u0000` escape) in any string is refused `invalid_characters`: no
  column of PostgreSQL can hold it. One search of the raw text finds it (an escaped backslash
  followed by `u0000` is refused too: no request needs that text).
- Conversion to a parameter shape is strict: an integer field takes a JSON integer only (not
  `"5"`, not `5.0`), a string field a JSON string only; a string beyond its maximum length
  (`coinwire.api.params`) is refused `too_long`, naming the field and the limit.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from coinwire.core.errors import InvalidInput

__all__ = [
    "REQUEST_DECODER", "NUL_ESCAPE", "NUL_ESCAPE_TEXT", "decode_json", "has_nul", "no_nul", "decode_shape", "convert_params", "refusal",
]

T = TypeVar("T")

REQUEST_DECODER = msgspec.json.Decoder(float_hook=Decimal)  # JSON-RPC frames use it directly (one call less per order)
_decode = REQUEST_DECODER.decode
_decode_floats = msgspec.json.Decoder().decode  # bodies for strategies (run parameters): floats stay floats
NUL_ESCAPE = b"\\u0000"  # how JSON writes U+0000 (a raw NUL byte is not valid JSON)
NUL_ESCAPE_TEXT = "\\u0000"
_TOO_LONG = re.compile(r"Expected `(\w+)` of length <= (\d+)(?: - at `\$\.?(.*)`)?")


def decode_json(data: bytes | str, exact: bool = True) -> Any:
    """Any JSON document (a REST body, a JSON-RPC frame); `parse_error` or `too_deep` when it cannot be read.

    `exact=False` keeps JSON numbers as floats: for bodies handed to strategies (run parameters,
    component input), which are analytics, not money.
    """
    try:
        document = _decode(data) if exact else _decode_floats(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _unreadable(exc) from None
    no_nul(data)
    return document


def decode_shape(data: bytes, shape: type[T], what: str) -> T:
    """A JSON body straight into a strict shape (an empty body is `{}`)."""
    no_nul(data)
    try:
        return msgspec.json.decode(data or b"{}", type=shape)
    except msgspec.ValidationError as exc:  # a DecodeError too: caught first
        raise _too_deep_or(refusal(exc, what), data) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _unreadable(exc) from None


def _too_deep_or(refused: InvalidInput, data: bytes) -> InvalidInput:
    """A shape refuses a nested body at its first wrong value: read it untyped, so nesting is `too_deep` on every route.

    Only a refused body pays this second read.
    """
    try:
        _decode_floats(data)
    except RecursionError:
        return _unreadable(RecursionError())
    except msgspec.DecodeError:
        pass
    return refused


def has_nul(data: bytes | str) -> bool:
    """True when raw request JSON writes a NUL character in a string (one search of the text)."""
    return NUL_ESCAPE in data if isinstance(data, bytes) else NUL_ESCAPE_TEXT in data


def no_nul(data: bytes | str) -> None:
    """Refuse request JSON with a NUL character (`invalid_characters`): the store could never hold it."""
    if has_nul(data):
        raise InvalidInput("invalid_characters", "strings must not contain NUL characters (\\u0000)")


def _unreadable(exc: Exception) -> InvalidInput:
    """JSON that cannot be read: not JSON at all (`parse_error`), or nested past the decoder's limit (`too_deep`)."""
    if isinstance(exc, RecursionError):
        return InvalidInput("too_deep", "the JSON is nested too deeply")
    return InvalidInput("parse_error", "the request body is not valid JSON")


def convert_params(raw: Any, shape: type[T], what: str) -> T:
    """Decoded parameters into their shape, strictly (integers are integers)."""
    try:
        return msgspec.convert(raw, shape, strict=True)
    except msgspec.ValidationError as exc:
        raise refusal(exc, what) from None


def refusal(exc: msgspec.ValidationError, what: str) -> InvalidInput:
    """A validation failure as a stable code: `too_long` for a string or list beyond its limit, else `invalid_params`."""
    text = str(exc)
    found = _TOO_LONG.match(text)
    if found is None:
        return InvalidInput("invalid_params", f"{what}: {text}")
    kind, limit, field = found.group(1), int(found.group(2)), found.group(3) or "the value"
    unit = "characters" if kind == "str" else "entries"
    return InvalidInput("too_long", f"{what}: `{field}` is longer than {limit} {unit}", field=field, max_length=limit)

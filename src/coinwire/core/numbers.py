"""Exact fixed-point conversions: decimal strings in, scaled integers inside, decimal strings out.

Prices and sizes live as integers at the instrument's precision; ledger amounts live as
integers of 10**-18 of a currency unit (ATTO), so a product of any price and size is exact.
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation

from coinwire.core.errors import InvalidInput

__all__ = [
    "INT64_MAX", "MAX_EXPONENT", "MAX_NUMBER_TEXT", "parse_decimal", "read_int", "ATTO_DECIMALS", "ATTO", "POW10", "to_units",
    "units_to_str", "atto_to_str", "str_to_atto", "ceil_div",
]

ATTO_DECIMALS = 18
ATTO: int = 10**ATTO_DECIMALS
POW10: list[int] = [10**i for i in range(40)]  # 10**n by table: scaling by decimals runs on every order
MAX_EXPONENT = 60  # no price, size or amount needs more than 60 digits either side of the point
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)  # scaling never rounds (default: 28 digits)
# `-12`, `0.5`, `1e-08` (a float's repr), `1E+2` (a Decimal's str): ASCII digits only, no spaces or underscores
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
MAX_NUMBER_TEXT = 100  # characters of decimal text: more is no price, size or amount
INT64_MAX = 2**63 - 1  # the widest integer column (BIGINT): a value beyond it reaches no query
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")  # `int()` would also read "١٠" (other scripts' digits), "1_0" and " 5 "


def read_int(text: str, low: int = -INT64_MAX, high: int = INT64_MAX) -> int | None:
    """The integer `text` writes in ASCII digits, within [low, high]; None for anything else.

    For integers typed as text (query strings, times): `int()` reads other scripts' digits,
    underscores and spaces, and any size; a value must read the same wherever it is stored.
    """
    if _INT_TEXT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_decimal(value: object, field: str = "value") -> Decimal:
    """A finite Decimal from a number or ASCII decimal text, its exponent within ±60; `invalid_number` / `number_out_of_range`.

    For amounts that are not scaled to units here (a conversion's amount): the same text is
    accepted as everywhere else, and `1e999999` never reaches arithmetic that overflows.
    """
    return _parse(value, field)


def _parse(value: object, field: str) -> Decimal:
    """A Decimal from an int, a Decimal, a float (its repr) or decimal text in ASCII digits.

    Python's `Decimal()` also reads other scripts' digits (`"٦٠٠٠٠"`), underscores (`1_000`)
    and surrounding whitespace: text must match `_DECIMAL_TEXT` instead, so a number reads the
    same here as everywhere else it is shown or stored.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidInput("invalid_number", f"{field} must be a decimal number, got {value!r}", field=field)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        text = repr(value) if isinstance(value, float) else str(value)
        if len(text) > MAX_NUMBER_TEXT:
            raise InvalidInput(
                "invalid_number", f"{field} must be a decimal number of at most {MAX_NUMBER_TEXT} characters", field=field
            )
        if _DECIMAL_TEXT.fullmatch(text) is None:
            raise InvalidInput("invalid_number", f"{field} must be a decimal number, got {text!r}", field=field)
        try:
            number = Decimal(text)
        except (InvalidOperation, ValueError):
            raise InvalidInput("invalid_number", f"{field} must be a decimal number, got {text!r}", field=field) from None
    if not number.is_finite():
        raise InvalidInput("invalid_number", f"{field} must be a finite number, got {value!r}", field=field)
    if number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        # `1e999999999` would otherwise make a billion-digit integer: refuse, do not hang
        raise InvalidInput("number_out_of_range", f"{field} {value!r} is out of range", field=field)
    return number


def to_units(value: object, decimals: int, field: str = "value") -> int:
    """Convert a decimal (str, int, Decimal) to an integer count of 10**-decimals, exactly.

    A value with more precision than `decimals` is refused rather than rounded: silently
    rounding a user's price or size is how ledgers drift.
    """
    number = _parse(value, field)
    scaled = number.scaleb(decimals, context=_EXACT)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            "too_precise", f"{field} {value} has more than {decimals} decimal places", field=field, decimals=decimals
        )
    return int(scaled)


def units_to_str(units: int, decimals: int) -> str:
    """Render scaled integer units as a plain decimal string without trailing zeros."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), POW10[decimals])
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


def atto_to_str(amount: int) -> str:
    return units_to_str(amount, ATTO_DECIMALS)


def str_to_atto(value: object, field: str = "amount") -> int:
    return to_units(value, ATTO_DECIMALS, field)


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding toward +infinity (fees round in the venue's favour)."""
    return -((-numerator) // denominator)

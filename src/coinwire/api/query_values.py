"""Integers of query strings, read in one place: ASCII digits only, within a range, refused with a stable code."""

from __future__ import annotations

from coinwire.core.errors import InvalidInput
from coinwire.core.numbers import INT64_MAX, read_int

__all__ = ["INT64_MAX", "query_int", "read_int"]


def query_int(text: str | None, name: str, default: int, low: int, high: int, code: str = "invalid_params") -> int:
    """A query value as an integer from `low` to `high` (`default` when absent or empty); else 400 `code`, naming it."""
    if text is None or text == "":
        return default
    value = read_int(text, low, high)
    if value is None:
        raise InvalidInput(code, f"{name} must be a whole number from {low} to {high}, got {text[:40]!r}", field=name)
    return value

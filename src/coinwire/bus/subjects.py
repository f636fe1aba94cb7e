"""Subject grammar checks and fast NATS-style wildcard matching (`*` one token, `>` the rest).

A subject is dot-separated, non-empty tokens without spaces or wildcards (`order.binance.usdt.btc`).
A pattern may also use `*` as a whole token, and `>` as its last token (one or more tokens).
Checks raise `InvalidInput` with a stable code, because patterns also arrive from API clients
(push-stream subscriptions), not only from our own code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from coinwire.config import validate_namespace  # the one check, shared with the settings
from coinwire.core.errors import InvalidInput
from coinwire.messages import DURABLE_SUBJECTS

__all__ = ["validate_subject", "validate_pattern", "validate_namespace", "matcher", "match", "intersect", "is_durable", "SubjectFilter"]

_BAD_CHARS = re.compile(r"[\s*>]")


def _token_problem(token: str) -> str | None:
    if not token:
        return "has an empty token (leading, trailing or doubled dot)"
    if _BAD_CHARS.search(token):
        return f"has an invalid token {token!r} (no spaces; wildcards only as whole tokens)"
    return None


def validate_subject(subject: str) -> str:
    """Return `subject` unchanged, or raise `invalid_subject`: publish subjects are concrete, never wildcards."""
    if not isinstance(subject, str) or not subject:
        raise InvalidInput("invalid_subject", f"subject must be a non-empty string, got {subject!r}")
    for token in subject.split("."):
        if token in ("*", ">"):
            raise InvalidInput("invalid_subject", f"subject {subject!r} contains wildcard {token!r}; publish to a concrete subject")
        problem = _token_problem(token)
        if problem:
            raise InvalidInput("invalid_subject", f"subject {subject!r} {problem}")
    return subject


def validate_pattern(pattern: str) -> str:
    """Return `pattern` unchanged, or raise `invalid_pattern` (empty tokens, `>` not last, partial wildcards)."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidInput("invalid_pattern", f"pattern must be a non-empty string, got {pattern!r}")
    tokens = pattern.split(".")
    for index, token in enumerate(tokens):
        if token == "*":
            continue
        if token == ">":
            if index != len(tokens) - 1:
                raise InvalidInput("invalid_pattern", f"pattern {pattern!r}: '>' may only be the last token")
            continue
        problem = _token_problem(token)
        if problem:
            raise InvalidInput("invalid_pattern", f"pattern {pattern!r} {problem}")
    return pattern


@lru_cache(maxsize=4096)
def matcher(pattern: str) -> Callable[[str], bool]:
    """Compile `pattern` once into a predicate on subjects (cached: buses match every publish)."""
    validate_pattern(pattern)
    if "*" not in pattern.split(".") and not pattern.endswith(">"):
        return pattern.__eq__
    if pattern == ">":
        return bool  # any valid subject has at least one token
    if pattern.endswith(".>") and "*" not in pattern.split("."):
        prefix = pattern[:-1]  # keeps the dot: `order.>` -> `order.`
        return lambda subject: subject.startswith(prefix) and len(subject) > len(prefix)
    parts = [r"[^.]+" if t == "*" else r"[^.]+(?:\.[^.]+)*" if t == ">" else re.escape(t) for t in pattern.split(".")]
    fullmatch = re.compile(r"\.".join(parts)).fullmatch
    return lambda subject: fullmatch(subject) is not None


class SubjectFilter:
    """Several patterns compiled once, when they are chosen: does any of them select a subject?

    Push subscriptions hold their patterns as one of these, so a message costs a set lookup
    (patterns without wildcards) and one predicate per wildcard pattern, never a compile: the
    shared `matcher` cache holds 4,096 patterns, and a client's thousands evicted everyone's.
    Iterating gives the patterns back, in the order given, each once.
    """

    __slots__ = ("patterns", "_exact", "_wild")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(dict.fromkeys(validate_pattern(p) for p in patterns))
        wild = [p for p in self.patterns if "*" in p.split(".") or p.endswith(">")]
        self._exact = frozenset(self.patterns).difference(wild)
        self._wild = tuple(matcher.__wrapped__(p) for p in wild)  # compiled here, outside the shared cache

    def __call__(self, subject: str) -> bool:
        return subject in self._exact or any(m(subject) for m in self._wild)

    def __iter__(self) -> Iterator[str]:
        return iter(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    def __repr__(self) -> str:
        return f"SubjectFilter({list(self.patterns)!r})"


def match(pattern: str, subject: str) -> bool:
    """True when `subject` is one `pattern` selects (both already valid; see `validate_*`)."""
    return matcher(pattern)(subject)


def intersect(a: str, b: str) -> str | None:
    """The pattern selecting exactly the subjects both `a` and `b` select, or None when they share none.

    NATS patterns are closed under intersection, so JetStream consumers can be given a filter
    that is always a subset of the stream's subjects (older servers accept one filter only).
    """
    ta, tb = a.split("."), b.split(".")
    out: list[str] = []
    for index in range(max(len(ta), len(tb))):
        x = ta[index] if index < len(ta) else None
        y = tb[index] if index < len(tb) else None
        if x == ">":
            return ".".join(out + tb[index:]) if y is not None else None
        if y == ">":
            return ".".join(out + ta[index:]) if x is not None else None
        if x is None or y is None:
            return None
        if x == "*":
            out.append(y)
        elif y == "*" or x == y:
            out.append(x)
        else:
            return None
    return ".".join(out)


@lru_cache(maxsize=65536)
def is_durable(subject: str) -> bool:
    """Whether a bus keeps messages on `subject` (see `coinwire.messages.DURABLE_SUBJECTS`)."""
    return any(match(pattern, subject) for pattern in DURABLE_SUBJECTS)

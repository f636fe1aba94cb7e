"""Failed sign-ins slow down guessing: per (user name, address) a doubling pause, per address a short ceiling.

Guessing one user's password from one address: after `free` failures (5) each further
try waits a pause that doubles from `base` (1 s) up to `cap` (15 minutes), even with the
right password (or the pause would tell a guess right from wrong); a success clears it.

Trying many user names from one address (spraying, or made-up names): the address may fail
`address_burst` times (20), after that once per `address_every` seconds (5). Past that
ceiling a name that has never failed from the address still gets its try (an existing user's
right password signs in; anything else is refused `login_locked` and counts), so failures
with other or unknown names from an address (a proxy shared with an attacker, spraying
without end) never hold back an existing user's right password at all, and a sprayer still
gets one try per name. The sign-in service answers a made-up name's try there without
hashing (after as long as a hash takes), so a spray costs no CPU.

The user name is kept as a digest only (it may be a password typed into the wrong field).
Pure arithmetic over the clock the caller passes; memory is bounded by `max_keys`.
"""

from __future__ import annotations

import hashlib

from coinwire.auth.errors import RateLimited

__all__ = ["LoginThrottle", "name_digest"]


def name_digest(username: object) -> str:
    """A user name as the throttle keeps it: a digest, so the table never holds what was typed."""
    return hashlib.sha256(str(username).encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LoginThrottle:
    """Failed sign-ins per (user name, address) and per address; `check` raises `login_locked` with Retry-After."""

    def __init__(self, free: int = 5, base: float = 1.0, cap: float = 900.0, address_burst: int = 20,
                 address_every: float = 5.0, max_keys: int = 100_000) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.address_burst, self.address_every = float(address_burst), address_every
        self.max_keys = max_keys
        self._pairs: dict[tuple[str, str], tuple[int, float]] = {}  # (name digest, address) -> (failures, paused until)
        self._addresses: dict[str, tuple[float, float]] = {}  # address -> (failures it may still make, as of)

    def _allowance(self, address: str, now: float) -> float:
        left, stamp = self._addresses.get(address, (self.address_burst, now))
        return min(self.address_burst, left + max(0.0, now - stamp) / self.address_every)

    def check(self, name: str, address: str, now: float) -> bool:
        """Raise `login_locked` while this name is paused at this address, or the address used up its failures.

        Returns True for the one exception: the address is over its ceiling, but this name has
        never failed from it. That try is let through (the caller checks the password, and
        answers a wrong one `login_locked` like a refused try, via `address_wait`), so a spray
        of other names, however long it goes on, never locks out an existing user's right
        password; the sprayer gains one try per name, as if it were under the ceiling.
        """
        pair = self._pairs.get((name, address))
        wait = (pair[1] if pair is not None else 0.0) - now
        if wait > 0:
            raise RateLimited("login_locked", "too many failed sign-ins: wait before trying again", wait)
        if self._allowance(address, now) < 1.0:
            if pair is None:
                return True
            raise RateLimited("login_locked", "too many failed sign-ins: wait before trying again", self.address_wait(address, now))
        return False

    def address_wait(self, address: str, now: float) -> float:
        """Seconds until the address may fail once more."""
        return max(0.0, (1.0 - self._allowance(address, now)) * self.address_every)

    def failed(self, name: str, address: str, now: float) -> None:
        count = self._pairs.get((name, address), (0, 0.0))[0] + 1
        paused = now + min(self.cap, self.base * 2 ** (count - self.free)) if count >= self.free else 0.0
        if len(self._pairs) >= self.max_keys:
            self._pairs.clear()  # a flood of names must not grow memory without bound
        if len(self._addresses) >= self.max_keys:
            self._addresses.clear()
        self._pairs[(name, address)] = (count, paused)
        self._addresses[address] = (max(0.0, self._allowance(address, now) - 1.0), now)

    def succeeded(self, name: str, address: str) -> None:
        """The right password: the pair starts afresh (the address's count does not: an own account cannot reset it)."""
        self._pairs.pop((name, address), None)

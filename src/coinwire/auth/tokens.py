"""JWT access tokens (HS256 only) and the signing secret kept in the data directory.

An access token carries the user id (`sub`), session id (`sid`), role and plan, and lives
`ttl` seconds; only HS256 is accepted, so `alg: none` and algorithm-confusion tokens fail
verification. The secret is COINWIRE_JWT_SECRET, or 64 random bytes generated on first
start into `<data_dir>/jwt_secret` (mode 0600) and reused afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from coinwire.auth.abilities import Principal
from coinwire.auth.errors import Unauthenticated

__all__ = ["TokenSigner", "load_secret", "write_private"]

ALGORITHM = "HS256"
_ISSUER = "coinwire"


def write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only (0600) and write `data` into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def load_secret(data_dir: Path, env: Mapping[str, str], name: str = "jwt_secret", env_name: str = "COINWIRE_JWT_SECRET") -> bytes:
    """The secret from the environment, else from its 0600 file, created with random bytes on first use."""
    value = env.get(env_name, "")
    if value:
        if len(value) < 32:
            raise ValueError(f"{env_name} must be at least 32 characters")
        return value.encode()
    path = data_dir / name
    if not path.exists():
        try:
            write_private(path, secrets.token_urlsafe(64).encode())
        except FileExistsError:
            pass  # another process of the same data directory made it first
    return path.read_bytes().strip()


class TokenSigner:
    """Issues and verifies access tokens with one secret."""

    def __init__(self, secret: bytes, ttl: int = 900) -> None:
        self._secret = secret
        self.ttl = ttl

    def issue(self, principal: Principal, now: int) -> str:
        claims = {
            "iss": _ISSUER, "sub": str(principal.user_id), "sid": principal.session_id, "name": principal.username,
            "role": principal.role, "plan": principal.plan, "typ": "access", "iat": now, "exp": now + self.ttl,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, now: int) -> Principal:
        """The token's principal; any defect (signature, algorithm, expiry, claims) is `invalid_token`."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], issuer=_ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "typ"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid_token", f"the access token is not valid ({type(exc).__name__})") from None
        if claims.get("typ") != "access" or not isinstance(claims.get("sid"), str):
            raise Unauthenticated("invalid_token", "not an access token")
        if int(claims["exp"]) <= now:
            raise Unauthenticated("token_expired", "the access token has expired: refresh it or sign in again")
        try:
            return Principal(int(claims["sub"]), str(claims.get("name", "")), str(claims["role"]), str(claims["plan"]),
                             session_id=claims["sid"], expires_at=int(claims["exp"]))
        except (KeyError, ValueError):
            raise Unauthenticated("invalid_token", "the access token lacks its claims") from None

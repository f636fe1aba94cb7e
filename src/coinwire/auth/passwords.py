"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from coinwire.core.errors import InvalidInput

__all__ = ["hash_password", "verify_password", "needs_rehash", "check_password_rules", "DUMMY_HASH"]

_hasher = PasswordHasher()  # argon2id
MIN_LENGTH, MAX_LENGTH = 8, 256


def check_password_rules(password: str) -> str:
    """Refuse passwords too short to resist guessing, or long enough to be a hashing DoS."""
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput("weak_password", f"a password needs {MIN_LENGTH} to {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when `password` matches; a corrupt hash is a mismatch, never an exception."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


# verified against when the user does not exist, so an unknown name costs as long as a wrong password.
# A constant rather than hashed at import: hashing takes ~0.1 s, paid by every `coinwire` command and
# server start; tests/auth/test_passwords.py keeps it under the hasher's current parameters.
DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$xReDzP+vTeRG+DInBkozeQ$QlvioMby/XFB3gygQGj/G6z5iemBrUVR/2mas37fIVg"

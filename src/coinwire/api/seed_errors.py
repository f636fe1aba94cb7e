"""The seed's error shape for its strategy API under `/cryptick/v1`: `{"error": "message"}`, the stable code in a header.

One place for it, so that refusals of the guard (sign-in, role, rate limits, body size) and of the
routes themselves answer a seed client alike.
"""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from coinwire.core.errors import CoinwireError

__all__ = ["CRYPTICK_PREFIX", "ERROR_CODE_HEADER", "is_seed_path", "seed_error_body", "seed_error_response"]

CRYPTICK_PREFIX = "/cryptick/v1/"
ERROR_CODE_HEADER = "X-Error-Code"  # the stable code a seed-shaped error body has no room for


def is_seed_path(path: str) -> bool:
    """A path of the seed's strategy API, whose errors take the seed's shape."""
    return path.startswith(CRYPTICK_PREFIX)


def seed_error_body(exc: CoinwireError) -> bytes:
    """`{"error": "<human message>"}`."""
    return msgspec.json.encode({"error": exc.message})


def seed_error_response(exc: CoinwireError) -> Response:
    """The seed's error shape with its status, the stable code (and a rate limit's Retry-After) in headers."""
    headers = {ERROR_CODE_HEADER: exc.code}
    if "retry_after" in exc.data:
        headers["Retry-After"] = str(exc.data["retry_after"])
    return Response(seed_error_body(exc), status_code=exc.http_status, media_type="application/json", headers=headers)

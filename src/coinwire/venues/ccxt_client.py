"""A CCXT client for an exchange id (ccxt.pro when it has one), with URL overrides checked; and closing one quietly.

Here, under venues, because the live venue, the feeds, the ticker streamers and the history download all make
their clients the same way, and venues are the lowest of those layers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import structlog

from coinwire.core.errors import InvalidInput

__all__ = ["close_client", "make_client"]

log = structlog.get_logger("coinwire.venues.ccxt")


async def close_client(client: Any, exchange: str) -> None:
    """Close a CCXT client if there is one; a failure is logged, never raised (it must not mask why we close)."""
    if client is not None:
        try:
            await client.close()
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not mask why we close
            log.warning("ccxt close failed", exchange=exchange, error=str(exc))


def make_client(
    ccxt_id: str,
    *,
    urls: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
    rate_limit: bool = True,
) -> Any:
    """An async CCXT exchange: the ccxt.pro class when CCXT has one (it does REST too), else async_support.

    `urls` overrides entries of the exchange's `urls` by dotted path, e.g.
    `{"api.public": "http://127.0.0.1:8080/api/v3", "api.ws.spot": "ws://127.0.0.1:8080/stream/ws"}`;
    a path the exchange does not have is refused, so a typo cannot silently hit the real venue.
    `rate_limit` keeps CCXT's own request throttle on (turn it off only for a local server).
    """
    import ccxt.async_support as ccxt_async
    import ccxt.pro as ccxt_pro

    if ccxt_id in ccxt_pro.exchanges:
        cls = getattr(ccxt_pro, ccxt_id)
    elif ccxt_id in ccxt_async.exchanges:
        cls = getattr(ccxt_async, ccxt_id)
    else:
        raise InvalidInput("unknown_exchange", f"CCXT has no exchange {ccxt_id!r}", exchange=ccxt_id)
    config: dict[str, Any] = {"timeout": int(timeout * 1000), "enableRateLimit": rate_limit}
    if options:
        config["options"] = dict(options)
    client = cls(config)
    if urls:
        tree = copy.deepcopy(client.urls)
        for path, url in urls.items():
            *parents, leaf = path.split(".")
            node = tree
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict) or leaf not in node:
                raise InvalidInput(
                    "invalid_url_override", f"{ccxt_id} has no urls entry {path!r} to override", path=path, exchange=ccxt_id
                )
            node[leaf] = url
        client.urls = tree
    return client

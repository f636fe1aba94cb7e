"""The seed's `mhubrpc` message format: a run's hub messages rendered as calls, results and notifications.

The seed's hub speaks a JSON-RPC-like format (its report, "Internal Dataflow"):

- a call (a message a strategy sends that the venue answers: `ANSWERED_CALLS`):
  `{"mhubrpc": "0.0.1", "method": "venue.make_order", "params": {...}, "response_method": "17"}`;
- a result or error (a message that answers a call, `reply_to` set):
  `{"mhubrpc": "0.0.1", "method": "17", "result": {...}}` or `..., "error": {"message": ..., "data": {...}}`;
- a notification (any other message: candles, fills and input to the strategy; its log lines,
  components and leverage changes, which nothing answers):
  `{"mhubrpc": "0.0.1", "method": "market.candle", "params": {...}}`, so a seed client never
  waits on a `response_method` no result will name.

`response_method` is the call's `seq` as text: stable across pages and reads, and a result
names it without looking its call up, so a page renders on its own. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ANSWERED_CALLS", "MHUBRPC_VERSION", "render", "render_one", "response_method"]

MHUBRPC_VERSION = "0.0.1"
ANSWERED_CALLS = frozenset({"venue.make_order", "venue.cancel_order"})  # the calls Runtime.order_call answers (`reply_to`)


def response_method(seq: int) -> str:
    """The `response_method` of the call recorded as `seq` (and the `method` of its result)."""
    return str(seq)


def render_one(message: Mapping[str, Any]) -> dict[str, Any]:
    """One hub message (`HubMessage.to_dict()` form) in the seed's format.

    A result whose params carry an `error` (a refused or failed order) is rendered as the
    seed's error: `{"message": <the error>, "data": <the params>}`.
    """
    reply_to = message.get("reply_to")
    if reply_to is not None:
        params = message["params"]
        if params.get("error"):
            return {"mhubrpc": MHUBRPC_VERSION, "method": response_method(reply_to),
                    "error": {"message": str(params["error"]), "data": params}}
        return {"mhubrpc": MHUBRPC_VERSION, "method": response_method(reply_to), "result": params}
    if message["direction"] == "out" and message["method"] in ANSWERED_CALLS:
        return {"mhubrpc": MHUBRPC_VERSION, "method": message["method"], "params": message["params"],
                "response_method": response_method(message["seq"])}
    return {"mhubrpc": MHUBRPC_VERSION, "method": message["method"], "params": message["params"]}


def render(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Hub messages, in order, in the seed's format."""
    return [render_one(m) for m in messages]

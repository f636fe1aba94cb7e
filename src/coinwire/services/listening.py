"""Stopping a service that listens on the bus with one background task: unsubscribe, then cancel the task."""

from __future__ import annotations

import asyncio
from typing import Any

from coinwire.bus.base import Subscription

__all__ = ["stop_listening"]


async def stop_listening(subs: list[Subscription], task: asyncio.Task[Any] | None) -> None:
    """Unsubscribe first, so no message starts work the cancelled task would drop; `subs` is emptied.

    The task's cancellation (or any error it ended with) is swallowed: the caller's close goes on
    to flush what it holds.
    """
    for sub in subs:
        await sub.unsubscribe()
    subs.clear()
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

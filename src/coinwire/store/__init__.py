"""The Store port: one schema on SQLite (default) or PostgreSQL, migrated on start, written by ChangeSets.

The names below load on first use (PEP 562): the journal's helper process imports `coinwire.store.journal`
and must not pay for the Store's engine and migrations at every start (it runs at a lower priority).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coinwire.store.codec import ChangeSet, Scale
    from coinwire.store.store import Store, StoredState, normalise_url
    from coinwire.store.writer import GroupCommitWriter

__all__ = ["ChangeSet", "Scale", "Store", "StoredState", "GroupCommitWriter", "normalise_url"]

_HOMES = {
    "ChangeSet": "coinwire.store.codec", "Scale": "coinwire.store.codec", "Store": "coinwire.store.store",
    "StoredState": "coinwire.store.store", "normalise_url": "coinwire.store.store", "GroupCommitWriter": "coinwire.store.writer",
}


def __getattr__(name: str) -> Any:
    """The exported name from its module, imported now (a submodule's name is an attribute once imported)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)

"""The Store port: one schema on SQLite (default) or PostgreSQL, migrated on start, written by ChangeSets."""

from coinwire.store.codec import ChangeSet, Scale
from coinwire.store.store import Store, StoredState, normalise_url
from coinwire.store.writer import GroupCommitWriter

__all__ = ["ChangeSet", "Scale", "Store", "StoredState", "GroupCommitWriter", "normalise_url"]

"""How far a SQLite store's journal helper is behind, read from outside the server (`coinwire cluster status`).

Why: with the journal, the database lags what the server acknowledged; the server knows by how
much (Journal.behind_bytes), an operator's command does not share its memory. The journal's files
and the `meta` row `journal` (generation:offset applied, written with the rows) say it all: the
bytes of every journal file beyond that position.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from coinwire.store.journal import journal_dir
from coinwire.store.store import Store
from coinwire.store.tables import meta

__all__ = ["journal_behind_bytes"]

_MAGIC_BYTES = 4


def behind(directory: Path, applied: str | None) -> int:
    """Bytes in `directory`'s journal files past the applied position `generation:offset` (all of them when None)."""
    gen, offset = (int(part) for part in applied.split(":", 1)) if applied else (0, 0)
    total = 0
    for path in directory.glob("*.cwj"):
        if not path.stem.isdigit():
            continue
        size = path.stat().st_size
        number = int(path.stem)
        if number > gen:
            total += max(0, size - _MAGIC_BYTES)
        elif number == gen:
            total += max(0, size - offset)
    return total


async def journal_behind_bytes(store: Store) -> int | None:
    """What a SQLite store's journal holds that the database does not yet (None: not SQLite, or no journal there)."""
    if store.dialect != "sqlite":
        return None
    directory = journal_dir(make_url(store.url).database or "")
    if not directory.is_dir():
        return None
    async with store.engine.connect() as conn:
        applied = (await conn.execute(select(meta.c.value).where(meta.c.key == "journal"))).scalar_one_or_none()
    return behind(directory, None if applied is None else str(applied))


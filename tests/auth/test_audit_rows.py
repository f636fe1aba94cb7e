"""Audit rows the store cannot hold: NULs are made storable, and one refused row never holds back the others."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from coinwire.auth.abilities import Principal
from coinwire.auth.audit import AuditLog
from coinwire.auth.rowbuffer import RowBuffer
from coinwire.store import Store
from coinwire.store.tables import audit


def _row(target: str) -> dict[str, object]:
    return {"ts": 1, "user_id": None, "username": None, "action": "PUT /runs/{run_id}/stop", "target": target,
            "outcome": "401", "client_ip": "127.0.0.1"}


async def test_a_refused_requests_nul_path_is_recorded_with_a_replacement_character(store: Store) -> None:
    log = AuditLog(store)
    log.record(None, "PUT /runs/{run_id}/stop", "/runs/a\x00b/stop", "invalid_characters", "127.0.0.1")
    log.record_call(Principal(7, "tom", "trader", "free"), "make_order", {"client_oid": "x\x00y"}, "invalid_characters")
    rows = await log.query()
    assert [r["target"] for r in rows] == ["client_oid=x\ufffdy", "/runs/a\ufffdb/stop"]


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # SQLite holds a NUL character
async def test_a_row_the_store_refuses_is_dropped_alone_and_later_rows_are_written(store: Store) -> None:
    """PostgreSQL cannot hold a NUL: the batch is written row by row, the refused one dropped, the rest kept."""
    rows = RowBuffer(store, insert(audit), name="audit")
    for target in ("/before", "/poison\x00", "/after"):
        rows.add(_row(target))
    await rows.flush()
    rows.add(_row("/later"))
    await rows.flush()
    written = await AuditLog(store).query()
    assert [r["target"] for r in written] == ["/later", "/after", "/before"]

"""Owners and the audit log survive a restart (their buffered rows are written at shutdown)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.server import ServerProcess


def test_owners_and_audit_rows_survive_a_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    try:
        with server.client() as admin:
            for name in ("tom", "tess"):
                admin.post("/api/v1/users", json={"username": name, "password": f"{name}-password"}).raise_for_status()
        tokens = {n: httpx.post(server.http + "/api/v1/auth/login", json={"username": n, "password": f"{n}-password"}).json()
                  for n in ("tom", "tess")}
        made = httpx.post(server.http + "/xwrap/v1/wallets/new", headers={"Authorization": f"Bearer {tokens['tom']['access_token']}"},
                          json={"wallets": [{"exchange": "demo", "currency": "USDT", "allocation": "10"}]})
        set_id = made.json()["id"]
        server.stop()
        server.start()
        for name, status in (("tom", 200), ("tess", 404)):
            r = httpx.get(f"{server.http}/xwrap/v1/wallets/{set_id}", headers={"Authorization": f"Bearer {tokens[name]['access_token']}"})
            assert r.status_code == status, (name, r.text)  # sessions survive too
        with server.client() as admin:
            rows = admin.get("/api/v1/audit", params={"user": "tom"}).json()
        assert [(r["action"], r["outcome"]) for r in rows] == [("POST /xwrap/v1/wallets/new", "200")]
    finally:
        server.stop()

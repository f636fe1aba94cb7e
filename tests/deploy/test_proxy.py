"""deploy/nginx.conf in front of two real `coinwire serve` processes: spread over both, WebSockets upgraded, no forged address.

The file is run by a real nginx with only its addresses changed (the compose service names `api-1`/`api-2` become
the two servers' loopback ports, its listen port a free one); everything that routes, upgrades and forwards is the
file's own. Each replica has its own embedded store and exchange (`alpha` or `beta`), so its /readyz says which one
answered; the scale-out of one store across replicas is the roles' tests' business.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from coinwire.api.client import RpcClient
from tests.conftest import unavailable
from tests.server import DEMO_EXCHANGES, ServerProcess, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FORGED = "203.0.113.7"  # a documentation address (RFC 5737), only ever written into a header


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if found is None:
        unavailable("nginx is not installed (.ci/run installs nginx-light)")
    return found


def local_config(text: str, listen: int, upstreams: dict[str, int], tmp: Path) -> str:
    """deploy/nginx.conf with its addresses on this machine and its files under `tmp`; nothing else changed."""
    for name, port in upstreams.items():
        text, count = re.subn(rf"server\s+{re.escape(name)}:8000\b", f"server 127.0.0.1:{port}", text)
        assert count == 1, f"{name} is not an upstream server of nginx.conf"
    text, count = re.subn(r"listen\s+8080;", f"listen 127.0.0.1:{listen};", text)
    assert count == 1
    paths = " ".join(f"{kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return text.replace("http {", f"http {{\n  access_log off; {paths}", 1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    nginx = nginx_binary()
    root = tmp_path_factory.mktemp("proxy")
    secret = {"COINWIRE_JWT_SECRET": "deploy-test-signing-secret-of-40-characters"}
    replicas = {}
    for name, exchange in (("api-1", "alpha"), ("api-2", "beta")):
        data = root / name
        data.mkdir()
        replicas[name] = ServerProcess(data, [{**DEMO_EXCHANGES[0], "name": exchange}], env=secret)
    for server in replicas.values():
        server.start(wait_ready=False)
    conf = root / "nginx.conf"
    try:
        for server in replicas.values():
            server.wait_ready(60)
        port = free_port()
        conf.write_text(local_config((DEPLOY / "nginx.conf").read_text(), port, {n: s.port for n, s in replicas.items()}, root))
        options = ["-p", str(root), "-c", str(conf), "-g", f"daemon off; pid {root / 'nginx.pid'}; error_log {root / 'error.log'};"]
        checked = subprocess.run([nginx, "-t", *options], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        proxy = subprocess.Popen([nginx, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(base + "/proxy-health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proxy.poll() is None and time.monotonic() < deadline, (root / "error.log").read_text()
                time.sleep(0.05)
            yield {"base": base, "ws": f"ws://127.0.0.1:{port}", "replicas": replicas}
        finally:
            proxy.terminate()
            proxy.wait(10)
    finally:
        for server in replicas.values():
            server.stop()


def exchange_of(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    (exchange,) = answer.json()["exchanges"]
    return str(exchange)


def test_requests_reach_both_replicas(stack: dict[str, Any]) -> None:
    with httpx.Client(base_url=stack["base"], timeout=10) as client:
        seen = [exchange_of(client.get("/readyz")) for _ in range(6)]
    assert set(seen) == {"alpha", "beta"}, seen


def test_rpc_and_ws_orders_are_upgraded_through_the_proxy(stack: dict[str, Any]) -> None:
    """A token of api-1 opens /rpc through the proxy whenever it lands there (api-2 refuses a session it does not hold)."""
    token = stack["replicas"]["api-1"].token

    async def attempts() -> tuple[list[Any], list[int]]:
        answered, refused = [], []
        for _ in range(6):
            client = RpcClient(f"{stack['ws']}/rpc?access_token={token}")
            try:
                await client.connect()
            except InvalidStatus as exc:  # the handshake reached a replica, which refused the credentials
                refused.append(exc.response.status_code)
                continue
            try:
                answered.append(await client.call("get_status"))
            finally:
                await client.close()
        return answered, refused

    answered, refused = asyncio.run(attempts())
    assert answered and refused, (answered, refused)  # both replicas reached, the upgrade through the proxy worked
    assert set(refused) == {403}
    assert all(a["status"] == "online" and "alpha" in str(a) for a in answered), answered

    async def orders_stream() -> int:
        for _ in range(6):
            try:
                async with websockets.connect(f"{stack['ws']}/ws/orders?access_token={token}") as ws:
                    return int(ws.response.status_code) if ws.response is not None else 0
            except InvalidStatus as exc:
                assert exc.response.status_code == 403
        return 0

    assert asyncio.run(orders_stream()) == 101


def audit_ips(server: ServerProcess, action: str) -> list[str]:
    with server.client() as admin:
        rows = admin.get("/api/v1/audit", params={"action": action, "limit": 100}).json()
    return [str(row["client_ip"]) for row in rows]


def test_a_client_cannot_forge_its_address_through_the_proxy(stack: dict[str, Any]) -> None:
    """The proxy replaces X-Forwarded-For with the client's address; a replica trusts that header from its proxy only."""
    action = "POST /api/v1/auth/refresh"  # audited with its client's address, even refused; it changes nothing here
    replicas = stack["replicas"]
    forged = {"X-Forwarded-For": FORGED}
    with httpx.Client(base_url=stack["base"], timeout=10, headers=forged) as client:
        for _ in range(4):  # spread over both replicas
            refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": "no-such-session.secret"})
            assert refresh.status_code == 401, refresh.text
    with httpx.Client(base_url=replicas["api-1"].http, timeout=10, headers=forged) as client:
        # the control: the same forged header sent to a replica itself, from loopback (a trusted proxy), is believed
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": "no-such-session.secret"}).status_code == 401
    deadline = time.monotonic() + 20
    while True:  # audit rows are written in batches
        seen = {name: audit_ips(server, action) for name, server in replicas.items()}
        if sum(len(ips) for ips in seen.values()) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert FORGED in seen["api-1"], f"the control request's forged address was not recorded: {seen}"
    through_proxy = [ip for ips in seen.values() for ip in ips if ip != FORGED]
    assert len(through_proxy) == 4 and set(through_proxy) == {"127.0.0.1"}, seen
    assert seen["api-1"].count(FORGED) == 1 and FORGED not in seen["api-2"], seen

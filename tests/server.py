"""Runs a real `coinwire serve` process for API tests: free port, temporary data dir, kill and restart."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ServerProcess", "free_port", "DEMO_EXCHANGES", "ADMIN_PASSWORD"]

ADMIN_PASSWORD = "admin-test-password"  # COINWIRE_ADMIN_PASSWORD of every test server

DEMO_EXCHANGES = [
    {
        "name": "demo",
        "feed": "demo",
        "tick_interval": 0.05,
        "seed": 11,
        "paper_funds": {"USDT": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"},
    }
]


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range, where connect() and bind(0) pick theirs (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_ports() -> Iterator[int] | None:
    """Under pytest-xdist, this worker's own slice of the ports below the ephemeral range, from a random start.

    A port handed out is bound only later, by a server starting in another process: two workers asking
    the kernel could both be given the same just-released port, or an outgoing connection could take
    it meanwhile. Disjoint slices outside the kernel's range rule both out inside one test session;
    the random start keeps two sessions on one machine apart. None in a plain (single-process) run.
    """
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    low, high = 10000, _ephemeral_low()
    if not worker.startswith("gw") or count < 1 or high - low < count * 100:
        return None
    size = (high - low) // count
    first = low + int(worker[2:]) * size
    start = random.SystemRandom().randrange(size)  # not the global generator, which tests may seed
    return itertools.cycle([*range(first + start, first + size), *range(first, first + start)])


_PORTS = _worker_ports()


def free_port() -> int:
    """A port nothing listens on now, for a server to bind soon (see _worker_ports for parallel workers)."""
    if _PORTS is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for port in itertools.islice(_PORTS, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken by something else on the machine: the next one
            return port
    raise RuntimeError("no free port in this worker's slice")


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        exchanges: list[dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
        config: str = "",
    ) -> None:
        """`launcher`: a command the server's interpreter runs under (e.g. valgrind and its options);
        `config`: TOML the server reads as its `--config` file (what no environment variable sets, e.g. `[market_data]`)."""
        self.data_dir = data_dir
        self.launcher = launcher or []
        self.config = config
        self.port = free_port()
        self.exchanges = exchanges if exchanges is not None else DEMO_EXCHANGES
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self._token: tuple[str, float] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        """The /rpc URL, signed in as admin (`access_token` query parameter)."""
        return f"{self.ws_anonymous}?access_token={self.token}"

    @property
    def ws_anonymous(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rpc"

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, Any]:
        r = httpx.post(self.http + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def traders(self, *names: str) -> dict[str, str]:
        """New traders `names` (password `<name>-password`), created by admin and signed in: their access tokens."""
        return self.users(dict.fromkeys(names, "trader"))

    def users(self, roles: dict[str, str]) -> dict[str, str]:
        """New users named by `roles` with those roles (password `<name>-password`), signed in: their access tokens."""
        with self.client() as admin:
            for name, role in roles.items():
                admin.post("/api/v1/users", json={"username": name, "password": f"{name}-password", "role": role}).raise_for_status()
        return {name: self.login(name, f"{name}-password")["access_token"] for name in roles}

    @property
    def token(self) -> str:
        """An admin access token, renewed after five minutes (tokens live fifteen)."""
        if self._token is None or time.monotonic() - self._token[1] > 300:
            self._token = (self.login()["access_token"], time.monotonic())
        return self._token[0]

    @property
    def headers(self) -> dict[str, str]:
        """Admin's Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, timeout: float = 10.0) -> httpx.Client:
        """An HTTP client signed in as admin."""
        return httpx.Client(base_url=self.http, timeout=timeout, headers=self.headers)

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COINWIRE_")}
        env.update(
            {
                "COINWIRE_DATA_DIR": str(self.data_dir),
                "COINWIRE_PORT": str(self.port),
                "COINWIRE_EXCHANGES": json.dumps(self.exchanges),
                "COINWIRE_LOG_LEVEL": "warning",
                "COINWIRE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                # tests drive one server hard from one address; tests of the limits set their own
                "COINWIRE_RATE_LIMIT_IP": "10000/100000",
                "COINWIRE_RATE_LIMIT_USER": "10000/100000",
                "COINWIRE_RATE_LIMIT_RPC": "1000000/1000000",  # benchmarks measure throughput through this server
                # PostgreSQL stores: a server killed and started again waits for its own gateway lease to expire
                # (docs/SCALING.md "Gateway leases"); short here, so that such a restart costs a test seconds at most
                "COINWIRE_GATEWAY_LEASE_SECONDS": "3",
            }
        )
        env.update(self.extra_env)
        options: list[str] = []
        if self.config:
            path = self.data_dir / "config.toml"
            path.write_text(self.config)
            options = ["--config", str(path)]
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [*self.launcher, sys.executable, "-m", "coinwire.cli", *options, "serve"], env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._token = None  # a restarted server keeps its sessions, but sign in afresh anyway
        if wait_ready:
            try:
                self.wait_ready(timeout)
            except BaseException:
                # the fixture that called start() never reaches its stop(): a server left running
                # would tick its demo market for the rest of the session, slowing every later test
                self.kill()
                raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /readyz answers and every exchange is `ready` (books synced)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(self.http + "/readyz", timeout=1.0)
                last = r.text
                body = r.json()
                if r.status_code == 200 and body["exchanges"] and all(s == "ready" for s in body["exchanges"].values()):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout}s (last: {last}):\n{self.log()}")

    def until_readyz(self, status: int = 200, timeout: float = 30.0) -> dict[str, Any]:
        """Until /readyz answers `status` (whatever its exchanges say: a process without a gateway has none): its body."""
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(self.http + "/readyz", timeout=2.0)
                last = r.text
                if r.status_code == status:
                    return dict(r.json())
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"/readyz never answered {status} in {timeout}s (last: {last}):\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush; what is committed is all that survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

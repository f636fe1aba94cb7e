"""A private cluster for fault tests: its own PostgreSQL, NATS and Redis, and coinwire role processes, each killable.

Why: the suite runs in parallel against the machine's shared servers, which a test must never
restart; a fault test needs servers it may kill. `Cluster` starts a PostgreSQL (a copy of a
template data directory made once per session by `pg_template`, fsync off), a nats-server with
JetStream in a temporary directory and a redis-server without persistence, each on a free port
(PostgreSQL and Redis on a unix socket too, so a process in a network namespace reaches them
without the network), and the role processes a `spec` names (`(name, roles)` pairs), with
kill -9, SIGSTOP/SIGCONT and restart for each, and a restart of each server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.server import DEMO_EXCHANGES, ServerProcess, free_port

__all__ = ["Cluster", "NetNamespace", "netns_missing", "PrivatePostgres", "PrivateNats", "PrivateRedis", "RoleProcess",
           "pg_template", "GATEWAY_PAIR", "tools_missing"]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/lib/postgresql/bin"))
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_USER = "postgres"  # PostgreSQL refuses to run as root: its files and processes belong to this user

# today's runnable cluster (docs/SCALING.md): two gateway,api processes on one store (one holds the leases,
# the other waits as a standby) and a marketdata process
GATEWAY_PAIR: tuple[tuple[str, str], ...] = (("md", "marketdata"), ("gw1", "gateway,api"), ("gw2", "gateway,api"))


def tools_missing() -> str | None:
    """Why a private cluster cannot run here (a missing binary or user), or None."""
    for path in (PG_BIN / "initdb", PG_BIN / "pg_ctl", Path(NATS_SERVER), Path(REDIS_SERVER)):
        if not path.exists():
            return f"{path} is not installed"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"no {PG_USER} user to run a private PostgreSQL as"
    return None


def _as_pg_user() -> dict[str, Any]:
    """Popen arguments that run a PostgreSQL tool as its own user when we are root."""
    return {"user": PG_USER, "group": pwd.getpwnam(PG_USER).pw_gid} if os.geteuid() == 0 else {}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def pg_template() -> Path:
    """A fresh initdb data directory (to copy per cluster: copying takes ~0.1 s, initdb ~1 s). Remove it with shutil.rmtree."""
    base = Path(tempfile.mkdtemp(prefix="cwpgtpl"))
    _chown(base)
    data = base / "data"
    subprocess.run([str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True, cwd="/", **_as_pg_user())
    return data


def _wait_port(host: str, port: int, timeout: float, what: str) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout} s")


class PrivatePostgres:
    """A PostgreSQL server of this test's own: `url` over TCP, `socket_url` over its unix socket; `restart()` crashes it."""

    def __init__(self, template: Path, listen: str = "127.0.0.1") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="cwpg"))
        _chown(self.base)
        self.data = self.base / "data"
        shutil.copytree(template, self.data, symlinks=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{PG_USER}:", str(self.data)], check=True)
        os.chmod(self.data, 0o700)
        self.listen = listen
        self.port = free_port()
        self.log = self.base / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    @property
    def socket_url(self) -> str:
        return f"postgresql://{PG_USER}@/postgres?host={self.base}&port={self.port}"

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses={self.listen} -c fsync=off -c full_page_writes=off "
                   "-c max_connections=200 -c shared_buffers=32MB")  # synchronous_commit stays on: a crash keeps what was acknowledged
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30",
                        "start"], check=True, capture_output=True, cwd="/", **_as_pg_user())

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"],
                       capture_output=True, cwd="/", **_as_pg_user())

    def restart(self) -> float:
        """Crash it (`-m immediate`: every backend killed, recovery at start) and start it again; the seconds it was down."""
        began = time.monotonic()
        self.stop("immediate")
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class _Daemon:
    """A server process on a port of its own: `kill()` (SIGKILL), `start()` again on the same port."""

    name = "daemon"

    def __init__(self, listen: str) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"cw{self.name}"))
        self.listen = listen
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.base / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.base)
        _wait_port("127.0.0.1", self.port, 15, self.name)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> float:
        """kill -9 and start again on the same port; the seconds it was down."""
        began = time.monotonic()
        self.kill()
        self.start()
        return time.monotonic() - began

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateNats(_Daemon):
    """nats-server with JetStream (its store in a temporary directory, kept across restarts)."""

    name = "nats"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [NATS_SERVER, "-js", "-sd", str(self.base / "js"), "-a", self.listen, "-p", str(self.port)]


class PrivateRedis(_Daemon):
    """redis-server without persistence, on a free port and a unix socket."""

    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        return f"unix://{self.base}/redis.sock?db=0"

    def command(self) -> list[str]:
        return [REDIS_SERVER, "--port", str(self.port), "--bind", self.listen, "--save", "", "--appendonly", "no",
                "--unixsocket", str(self.base / "redis.sock"), "--unixsocketperm", "777", "--protected-mode", "no"]


class RoleProcess(ServerProcess):
    """`coinwire serve --roles <roles>` as a process of the cluster, started again on the same port."""

    def __init__(self, name: str, roles: str, data_dir: Path, env: dict[str, str], launcher: list[str] | None = None,
                 exchanges: list[dict[str, Any]] | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(data_dir, exchanges=exchanges, env={**env, "COINWIRE_ROLES": roles}, launcher=launcher)
        self.name = name
        self.roles = roles
        self.host = "127.0.0.1"  # where the test reaches it (a veth address when it runs in a network namespace)

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_anonymous(self) -> str:
        return f"ws://{self.host}:{self.port}/rpc"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def readyz(self, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
        """(status, body) of /readyz, or (0, {}) when it does not answer within `timeout` (its pings take up to 2 s)."""
        try:
            answer = httpx.get(self.http + "/readyz", timeout=timeout)
            return answer.status_code, dict(answer.json())
        except (httpx.HTTPError, ValueError):
            return 0, {}

    def wait_up(self, timeout: float = 30.0) -> None:
        """Until /readyz answers 200 (a marketdata process has no exchanges to wait for)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if self.readyz()[0] == 200:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready in {timeout} s (last: {self.readyz()}):\n{self.log()}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until /healthz answers 200 (a standby's too, while it waits for a lease)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.http + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer /healthz in {timeout} s:\n{self.log()}")

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        """kill -9, then start again on the same port (without waiting)."""
        self.kill()
        self.start(wait_ready=False)


@dataclass
class Timing:
    """What the cluster's start took, seconds."""

    servers: float = 0.0
    processes: float = 0.0


class Cluster:
    """Private PostgreSQL, NATS and Redis, and role processes per `spec`: `(name, roles)` pairs started in that order.

    `lease_seconds`: the gateways' lease; `env`: more settings for every process; `listen`: the servers' address
    (`nats_listen`: NATS's, when it differs: a network namespace reaches it over a veth). A process whose
    roles include `gateway` is started after the previous one is up (the first takes the leases,
    the next ones wait as standbys).
    """

    def __init__(self, base: Path, template: Path, spec: Sequence[tuple[str, str]] = GATEWAY_PAIR, *,
                 lease_seconds: float = 2.0, env: dict[str, str] | None = None, listen: str = "127.0.0.1",
                 nats_listen: str | None = None, exchanges: list[dict[str, Any]] | None = None) -> None:
        self.base = base
        self.spec = list(spec)
        self.namespace = f"t28chaos{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.exchanges = exchanges if exchanges is not None else DEMO_EXCHANGES
        self.pg = PrivatePostgres(template, listen)
        self.nats = PrivateNats(nats_listen or listen)
        self.redis = PrivateRedis(listen)
        self.extra_env = env or {}
        self.processes: dict[str, RoleProcess] = {}
        self.timing = Timing()

    def env(self, *, sockets: bool = False, nats_url: str | None = None) -> dict[str, str]:
        """The settings of a role process: this cluster's servers (over unix sockets when `sockets`), namespace and leases."""
        return {
            "COINWIRE_STORE_URL": self.pg.socket_url if sockets else self.pg.url,
            "COINWIRE_BUS_URL": nats_url or self.nats.url,
            "COINWIRE_CACHE_URL": self.redis.socket_url if sockets else self.redis.url,
            "COINWIRE_NAMESPACE": self.namespace,
            "COINWIRE_GATEWAY_LEASE_SECONDS": str(self.lease_seconds),
            "COINWIRE_JWT_SECRET": "chaos-cluster-secret-" + self.namespace,
            "COINWIRE_MASTER_KEY": "Y2hhb3MtY2x1c3Rlci1tYXN0ZXIta2V5LTMyYnl0ZXM=",
            "COINWIRE_LOG_LEVEL": "info",
            **self.extra_env,
        }

    def add(self, name: str, roles: str, *, launcher: list[str] | None = None, sockets: bool = False,
            nats_url: str | None = None) -> RoleProcess:
        process = RoleProcess(name, roles, self.base / name, self.env(sockets=sockets, nats_url=nats_url), launcher,
                              self.exchanges)
        self.processes[name] = process
        return process

    def start_servers(self) -> None:
        began = time.monotonic()
        self.pg.start()
        self.nats.start()
        self.redis.start()
        self.timing.servers = time.monotonic() - began

    def start(self) -> Cluster:
        """The servers, then every process of the spec; the first gateway ready, the others standing by or up."""
        self.start_servers()
        began = time.monotonic()
        for name, roles in self.spec:
            self.add(name, roles)
        first: RoleProcess | None = None
        for process in self.processes.values():
            process.start(wait_ready=False)
            if first is None and "gateway" in process.roles.split(","):
                first = process
                process.wait_healthy(60)  # its leases taken (before /healthz answers): the other gateways stand by
        for process in self.processes.values():
            if process is first or "gateway" not in process.roles.split(","):
                process.wait_up(60)
        self.timing.processes = time.monotonic() - began
        return self

    def gateways(self) -> list[RoleProcess]:
        return [p for p in self.processes.values() if "gateway" in p.roles.split(",")]

    def holder(self) -> RoleProcess | None:
        """The gateway process answering ready now (the leases' holder), if any."""
        for process in self.gateways():
            if process.alive() and process.readyz()[0] == 200:
                return process
        return None

    def restart_stepped_down(self) -> list[str]:
        """A supervisor's turn: start again every gateway process that stepped down (/readyz `lease_lost`); their names.

        Why: a gateway that lost its lease to another stays stepped down while that one holds the shard
        (docs/SCALING.md, "Taking the shard back"), and its /healthz stays 200; a supervisor watching
        /readyz restarts it as a plain standby, as this does.
        """
        restarted = []
        for process in self.gateways():
            if process.alive():
                _, body = process.readyz(timeout=3.0)
                if "lease_lost" in [r.get("code") for r in body.get("reasons", [])]:
                    process.restart()
                    restarted.append(process.name)
        return restarted

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{p.log()[-2500:]}" for name, p in self.processes.items())

    def close(self) -> None:
        for process in self.processes.values():
            if process.proc is not None and process.proc.poll() is None:
                with contextlib.suppress(OSError):
                    process.resume()
            process.kill()
        for server in (self.redis, self.nats, self.pg):
            server.close()



def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class NetNamespace:
    """A network namespace with two veth pairs to the host: `bus` (cut with `cut_bus()`) and `api` (the test's way in).

    Why two: a process inside reaches NATS only over the `bus` pair and is reached over HTTP only over
    the `api` pair; PostgreSQL and Redis it reaches over unix sockets (the file system is shared), so
    setting the bus pair's inner end down isolates NATS and nothing else. Root only; `close()` removes
    the namespace (and with it both pairs).
    """

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"cw{tag}"
        self._links = {"bus": (f"cwb{tag}h", f"cwb{tag}n"), "api": (f"cwa{tag}h", f"cwa{tag}n")}
        octet = int(tag[:2], 16) % 250 + 2  # a /30 pair of this namespace's own in 10.231.x and 10.232.x
        self.bus_host, self.bus_inner = f"10.231.{octet}.1", f"10.231.{octet}.2"
        self.api_host, self.api_inner = f"10.232.{octet}.1", f"10.232.{octet}.2"
        self.made = False

    def create(self) -> NetNamespace:
        _ip("netns", "add", self.name)
        self.made = True
        self.run("ip", "link", "set", "lo", "up")
        for kind, host, inner in (("bus", self.bus_host, self.bus_inner), ("api", self.api_host, self.api_inner)):
            outer, inside = self._links[kind]
            _ip("link", "add", outer, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", self.name)
            _ip("addr", "add", f"{host}/30", "dev", outer)
            _ip("link", "set", outer, "up")
            self.run("ip", "addr", "add", f"{inner}/30", "dev", inside)
            self.run("ip", "link", "set", inside, "up")
        return self

    def run(self, *command: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *command], check=True, capture_output=True)

    @property
    def launcher(self) -> list[str]:
        """What a process is started under to run inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut_bus(self) -> None:
        self.run("ip", "link", "set", self._links["bus"][1], "down")

    def heal_bus(self) -> None:
        self.run("ip", "link", "set", self._links["bus"][1], "up")

    def close(self) -> None:
        if self.made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            for outer, _ in self._links.values():  # gone with the namespace; a leftover (a failed create) goes here
                subprocess.run(["ip", "link", "del", outer], capture_output=True)
            self.made = False


def netns_missing() -> str | None:
    """Why network namespaces cannot be made here (not root, no `ip`), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None

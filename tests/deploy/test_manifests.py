"""deploy/: the kustomize base renders and every workload is probed, sized, non-root and secret-free; compose, proxy, image.

Containers cannot run here, so these read what a cluster or compose would be given: the rendered manifests
(`kubectl kustomize deploy/k8s`), the compose file, the proxy's config and the Dockerfile, and check them against
coinwire itself (the roles it knows, the settings it reads, the ports it serves its probes on).
"""

from __future__ import annotations

import base64
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coinwire.config import _ENV_FIELDS, ENV_PREFIX
from coinwire.roles import ROLES, parse_roles, refusals
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SRC = ROOT / "src" / "coinwire"

# Env read by what coinwire runs on rather than by coinwire: uvicorn's trusted proxies for X-Forwarded-For.
OTHER_ENV = {"FORWARDED_ALLOW_IPS"}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
DATA_SERVICES = ("postgres", "nats", "redis")


def known_env_names() -> set[str]:
    """Every COINWIRE_* name coinwire reads: the settings' table, and the names the code reads itself (access layer, vault)."""
    names = {ENV_PREFIX + suffix for suffix in _ENV_FIELDS}
    for path in SRC.rglob("*.py"):
        names.update(re.findall(r"\bCOINWIRE_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return names


# --- kubernetes: the kustomize base ---


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("kubectl is not on PATH")
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def flag(args: list[str], name: str) -> str:
    """The value after `name` in a command line (`--roles api` -> `api`), failing when it is absent."""
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


_UNITS = {"": 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(value: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    assert match and match[2] in _UNITS, f"not a Kubernetes quantity: {value!r}"
    return float(match[1]) * _UNITS[match[2]]


def test_every_workload_is_probed_on_its_port_sized_and_non_root(rendered: list[dict[str, Any]]) -> None:
    found = workloads(rendered)
    assert len(found) >= 4  # api, gateway (with the roles that need it in-process), marketdata, scheduler
    for workload in found:
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        for container in containers(workload):
            ports = {p["containerPort"] for p in container["ports"]} | {p["name"] for p in container["ports"] if "name" in p}
            numbers = {p["containerPort"] for p in container["ports"]}
            assert int(flag(container["args"], "--port")) in numbers, f"{name}: serves on a port it does not declare"
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = container.get(probe, {}).get("httpGet")
                assert get is not None, f"{name}: no {probe}"
                assert get["path"] == path, f"{name}: {probe} on {get['path']}, not {path}"
                assert get["port"] in ports, f"{name}: {probe} on port {get['port']}, not the container's"
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{name}: resources.{part} needs cpu and memory"
            for kind in ("cpu", "memory"):
                request, limit = quantity(resources["requests"][kind]), quantity(resources["limits"][kind])
                assert 0 < request <= limit, f"{name}: {kind} request {request} above its limit {limit}"
            context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, f"{name}: runAsNonRoot is not set"
            assert context.get("runAsUser", 1) != 0, f"{name}: runs as uid 0"
            assert container.get("securityContext", {}).get("allowPrivilegeEscalation") is False, name


def test_no_secret_in_plain_text(rendered: list[dict[str, Any]]) -> None:
    """Secret-like env comes from a Secret; no value anywhere carries a password; the base defines no Secret's values."""
    assert not [d for d in rendered if d["kind"] == "Secret"], "the base must reference its Secret, not define it"
    for workload in workloads(rendered):
        for container in containers(workload):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]) or env["name"] == "COINWIRE_STORE_URL":
                    assert "value" not in env, f"{env['name']} set in plain text"
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{env['name']} must come from a secretKeyRef"
                assert not URL_WITH_PASSWORD.search(str(env.get("value", ""))), f"{env['name']} holds a password"
            for source in container.get("envFrom", []):
                assert "configMapRef" in source or "secretRef" in source
    for config in (d for d in rendered if d["kind"] == "ConfigMap"):
        for key, value in config.get("data", {}).items():
            assert not SECRET_NAME.search(key), f"ConfigMap {config['metadata']['name']}: {key} is a secret"
            assert not URL_WITH_PASSWORD.search(value), f"ConfigMap {config['metadata']['name']}: {key} holds a password"


def test_config_and_secret_references_resolve(rendered: list[dict[str, Any]]) -> None:
    """Every ConfigMap a container reads is in the base with the keys it names; every secret is from the one Secret."""
    configs = {d["metadata"]["name"]: d.get("data", {}) for d in rendered if d["kind"] == "ConfigMap"}
    secrets: set[str] = set()
    for workload in workloads(rendered):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configs, source
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in configs.get(ref["configMapKeyRef"]["name"], {}), env
                if "secretKeyRef" in ref:
                    secrets.add(ref["secretKeyRef"]["name"])
    assert secrets == {"coinwire-secrets"}, secrets


def test_each_role_is_deployed_once_and_only_known_roles(rendered: list[dict[str, Any]]) -> None:
    deployed: list[str] = []
    for workload in workloads(rendered):
        for container in containers(workload):
            roles = flag(container["args"], "--roles").split(",")
            assert set(roles) <= set(ROLES), f"{workload['metadata']['name']}: unknown role in {roles}"
            deployed += roles
    assert sorted(deployed) == sorted(ROLES), "every role runs in exactly one Deployment"
    gateway = next(w for w in workloads(rendered) if "gateway" in flag(containers(w)[0]["args"], "--roles"))
    env = {e["name"]: e for e in containers(gateway)[0]["env"]}
    assert {"COINWIRE_GATEWAY_SHARD", "COINWIRE_GATEWAY_LEASE_SECONDS"} <= set(env), "gateway replicas share a shard by lease"


def test_services_select_pods_that_exist_on_ports_they_serve(rendered: list[dict[str, Any]]) -> None:
    pods = [(w["spec"]["template"]["metadata"]["labels"], containers(w)) for w in workloads(rendered)]
    services = [d for d in rendered if d["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} >= {"coinwire-api"}
    for service in services:
        selector = service["spec"]["selector"]
        matched = [cs for labels, cs in pods if selector.items() <= labels.items()]
        assert matched, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for cs in matched:
                served = {p.get("name") for c in cs for p in c["ports"]} | {p["containerPort"] for c in cs for p in c["ports"]}
                assert target in served, f"Service {service['metadata']['name']}: port {target} is not served"
    for budget in (d for d in rendered if d["kind"] == "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels, _ in pods), budget["metadata"]["name"]


def test_manifests_set_only_settings_coinwire_reads(rendered: list[dict[str, Any]]) -> None:
    known = known_env_names()
    names: set[str] = set()
    for workload in workloads(rendered):
        for container in containers(workload):
            names |= {e["name"] for e in container.get("env", [])}
            names |= {e["valueFrom"]["secretKeyRef"]["key"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    for config in (d for d in rendered if d["kind"] == "ConfigMap"):
        names |= set(config.get("data", {}))
    unknown = {n for n in names - OTHER_ENV if n not in known}
    assert not unknown, f"coinwire reads no {sorted(unknown)}"
    assert {"COINWIRE_JWT_SECRET", "COINWIRE_BUS_URL"} <= known  # both sources: the access layer's and the settings' names


def test_gen_secrets_fills_every_secret_the_manifests_reference(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    """deploy/gen-secrets.sh writes valid values for each secretKeyRef key and the compose env file, owner-only, git-ignored."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("secrets", "secrets.env"))
    out = subprocess.run(["sh", str(copy / "gen-secrets.sh"), "db.internal"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wanted = {e["valueFrom"]["secretKeyRef"]["key"] for w in workloads(rendered) for c in containers(w) for e in c.get("env", [])
              if "secretKeyRef" in e.get("valueFrom", {})}
    k8s = dict(line.split("=", 1) for line in (copy / "k8s" / "secrets.env").read_text().splitlines())
    assert wanted <= set(k8s), f"missing from the Secret: {sorted(wanted - set(k8s))}"
    assert all(k8s.values()), "an empty secret"
    assert len(k8s["COINWIRE_JWT_SECRET"]) >= 32
    assert len(base64.b64decode(k8s["COINWIRE_MASTER_KEY"], validate=True)) == 32
    password = (copy / "secrets" / "postgres_password").read_text().strip()
    assert k8s["COINWIRE_STORE_URL"] == f"postgresql://coinwire:{password}@db.internal:5432/coinwire"
    compose_env = dict(line.split("=", 1) for line in (copy / "secrets.env").read_text().splitlines())
    example = {line.split("=", 1)[0] for line in (DEPLOY / "secrets.env.example").read_text().splitlines() if "=" in line}
    assert set(compose_env) == example
    assert compose_env["COINWIRE_STORE_URL"] == f"postgresql://coinwire:{password}@postgres:5432/coinwire"
    shared = set(compose_env) - {"COINWIRE_STORE_URL"}
    assert {k: compose_env[k] for k in shared} == {k: k8s[k] for k in shared}, "compose and the Secret hold the same secrets"
    for path in (copy / "k8s" / "secrets.env", copy / "secrets.env", copy / "secrets" / "postgres_password"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    again = subprocess.run(["sh", str(copy / "gen-secrets.sh")], capture_output=True, text=True, timeout=30)
    assert again.returncode == 0 and (copy / "secrets" / "postgres_password").read_text().strip() == password, "kept, not replaced"
    for name in ("deploy/secrets.env", "deploy/secrets/postgres_password", "deploy/k8s/secrets.env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT, timeout=10)
        assert ignored.returncode == 0, f"{name} is not git-ignored"


# --- compose and its proxy ---


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # the `<<` merges of its anchors resolved
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def coinwire_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if str(s.get("image", "")).startswith("coinwire")}


def test_compose_runs_the_roles_on_the_data_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(DATA_SERVICES) <= set(services)
    assert "-js" in services["nats"]["command"], "NATS without JetStream"
    for name in DATA_SERVICES:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    roles: list[str] = []
    for name, service in coinwire_services(compose).items():
        command = service["command"]
        assert command[0] == "serve" and flag(command, "--port") == "8000", name
        roles += flag(command, "--roles").split(",")
        check = " ".join(service["healthcheck"]["test"])
        assert "/readyz" in check and ":8000/" in check, f"{name}: healthcheck is not its /readyz"
        depends = service["depends_on"]
        for data in DATA_SERVICES:
            assert depends[data]["condition"] == "service_healthy", f"{name} does not wait for {data}"
        env = service.get("environment", {})
        for key in ("COINWIRE_BUS_URL", "COINWIRE_CACHE_URL", "COINWIRE_NAMESPACE"):
            assert env.get(key), f"{name}: {key} unset"
        assert "COINWIRE_STORE_URL" not in env, f"{name}: the store URL (with its password) belongs in secrets.env"
    assert set(roles) <= set(ROLES), f"unknown roles {sorted(set(roles) - set(ROLES))}"
    assert {"gateway", "marketdata", "engine", "tracker", "scheduler", "notifier"} <= set(roles)
    assert roles.count("api") == 2, "two api replicas"


def _serve_refusals(args: list[str]) -> list[str]:
    """What `coinwire serve` would refuse at start for this command line, on the shared servers every file configures."""
    return refusals(parse_roles(flag(args, "--roles")), store_url="postgresql://coinwire@postgres/coinwire",
                    bus_url="nats://nats:4222", cache_url="redis://redis:6379/0")


def test_every_process_the_files_start_is_one_coinwire_serve_accepts(rendered: list[dict[str, Any]],
                                                                    compose: dict[str, Any]) -> None:
    """No Deployment or service whose roles `serve` refuses (a role that needs the gateway in its process, alone): it
    would exit 2 at every start."""
    for workload in workloads(rendered):
        for container in containers(workload):
            assert _serve_refusals(container["args"]) == [], workload["metadata"]["name"]
    for name, service in coinwire_services(compose).items():
        assert _serve_refusals(service["command"]) == [], name


def test_compose_keeps_secrets_out_of_the_file(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert not URL_WITH_PASSWORD.search(text), "a literal password"
    known = known_env_names()
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), f"{name}: {key} in plain text"
            if name in coinwire_services(compose):
                assert key in known or key in OTHER_ENV, f"{name}: coinwire reads no {key}"
    for name, service in coinwire_services(compose).items():
        files = [f["path"] if isinstance(f, dict) else f for f in service["env_file"]]
        assert files == ["secrets.env"], name
    for secret in compose["secrets"].values():
        path = (DEPLOY / secret["file"]).resolve().relative_to(ROOT)
        assert subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, timeout=10).returncode == 0, path
    example = [line.split("=", 1) for line in (DEPLOY / "secrets.env.example").read_text().splitlines() if "=" in line]
    assert example and all(value == "" for _, value in example), "the example holds no value"
    assert {key for key, _ in example} <= known
    assert {"COINWIRE_STORE_URL", "COINWIRE_JWT_SECRET", "COINWIRE_MASTER_KEY"} <= {key for key, _ in example}


def nginx_blocks(text: str) -> dict[str, str]:
    """`upstream NAME` and `location [=] PATH` blocks of an nginx config, by their header, each with its body."""
    text = re.sub(r"#[^\n]*", "", text)
    blocks = {}
    for match in re.finditer(r"((?:upstream|location)\s+[^{]+?)\s*\{([^{}]*)\}", text):
        blocks[" ".join(match[1].split())] = match[2]
    return blocks


def test_the_proxy_spreads_over_both_api_replicas_and_upgrades_websockets(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    mounted = [v.split(":")[0] for v in proxy["volumes"]]
    assert "./nginx.conf" in mounted
    blocks = nginx_blocks((DEPLOY / "nginx.conf").read_text())
    upstreams = {h.split()[1]: body for h, body in blocks.items() if h.startswith("upstream")}
    assert len(upstreams) == 1
    (upstream, body), = upstreams.items()
    servers = re.findall(r"server\s+([\w.-]+):(\d+)", body)
    api = {name for name, s in coinwire_services(compose).items() if flag(s["command"], "--roles") == "api"}
    assert {name for name, _ in servers} == api and len(api) == 2
    assert all(port == flag(compose["services"][name]["command"], "--port") for name, port in servers)
    assert set(proxy["depends_on"]) == api
    for location in ("location = /rpc", "location /ws/", "location /"):
        assert f"proxy_pass http://{upstream};" in blocks[location], location
    for location in ("location = /rpc", "location /ws/"):
        body = blocks[location]
        assert "proxy_http_version 1.1;" in body
        assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", body), location
        assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", body), location
    forwarded = proxy["networks"]["backend"]["ipv4_address"]
    for name in api:
        assert compose["services"][name]["environment"]["FORWARDED_ALLOW_IPS"] == forwarded, "trust the proxy alone"


# --- the image ---


def dockerfile_stages() -> list[tuple[str, str, list[str]]]:
    """(image, stage name, instructions) per FROM of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            parts = line.split()
            stages.append((parts[1], parts[3] if len(parts) > 3 and parts[2].upper() == "AS" else "", []))
        else:
            assert stages, "an instruction before FROM"
            stages[-1][2].append(line)
    return stages


def test_dockerfile_builds_the_web_and_runs_as_a_non_root_user() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 3
    for image, _, _ in stages:
        assert ":" in image and not image.endswith(":latest"), f"{image} is not pinned to a tag"
    web = next((s for s in stages if s[0].startswith("node:")), None)
    assert web is not None, "no web build stage"
    scripts = yaml.safe_load((SRC / "web" / "package.json").read_text())["scripts"]  # JSON is YAML
    assert "build" in scripts and any("npm ci" in i for i in web[2]) and any("npm run build" in i for i in web[2])
    copies = [i for _, _, body in stages for i in body if i.startswith(f"COPY --from={web[1]} ")]
    assert copies and all("coinwire/web/dist" in c for c in copies), "the web build is not copied into the package"
    _, _, runtime = stages[-1]
    users = [i.split()[1] for i in runtime if i.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime runs as root"
    assert 'ENTRYPOINT ["coinwire"]' in runtime
    assert any(i.startswith("CMD [") and '"serve"' in i for i in runtime)
    assert any(i.startswith("HEALTHCHECK") and "/healthz" in i for i in runtime)
    assert not [i for i in runtime if i.startswith(("RUN npm", "COPY src"))], "sources or Node in the runtime"
    for _, _, body in stages:
        for instruction in body:
            keyword, _, rest = instruction.partition(" ")
            if keyword.upper() in ("ARG", "ENV"):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]
                assert not [n for n in names if SECRET_NAME.search(n)], f"secret in {instruction}"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "src/coinwire/web/node_modules/" in ignore and "!src/" in ignore


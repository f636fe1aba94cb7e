"""`coinwire rules` against a real server: a TOML file of several rule sets added (the whole file checked first, a live
close_all confirmed at the prompt or with --yes), listed, disabled, enabled, their firings read; another user's id refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess
from tests.test_cli import coinwire

FILE = """
[[rule_sets]]
name = "portfolio stop"
scope = "account"
scope_id = "{account}"
mode = "live"
after = "once"
[[rule_sets.rules]]
kind = "portfolio_trailing_stop"
arm_pct = 10
trail_pct = 5
[[rule_sets.actions]]
kind = "close_all"

[[rule_sets]]
name = "hot rsi"
scope = "user"
mode = "dry_run"
after = "rearm"
cooldown = "1h"
[[rule_sets.rules]]
kind = "indicator"
series = "market:demo:BTC/USDT:1h"
indicator = "rsi"
params = [14]
op = "above"
threshold = 80
[[rule_sets.actions]]
kind = "notify"
message = "RSI above 80"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("cli-rules")), env={"COINWIRE_RECORD_RATES": "false"})
    proc.start()
    yield proc
    proc.stop()


def run(server: ServerProcess, token: str, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = coinwire("rules", *args, "--url", server.http, env={"COINWIRE_TOKEN": token}, input=input)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def rita(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """rita's and otto's tokens, rita's paper account and the file of two rule sets on it."""
    tokens = server.traders("rita", "otto")
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {tokens['rita']}"}) as client:
        account = client.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": "cli"}).json()["id"]
    path = tmp_path_factory.mktemp("rules") / "rules.toml"
    path.write_text(FILE.format(account=account))
    return {"tokens": tokens, "account": account, "path": path}


def listed(server: ServerProcess, token: str) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}) as client:
        return {r["name"]: r for r in client.get("/api/v1/rulesets").json()}


def test_a_file_is_added_whole_or_not_at_all(server: ServerProcess, rita: dict[str, Any], tmp_path: Path) -> None:
    token, text = rita["tokens"]["rita"], rita["path"].read_text()
    # not confirmed at the prompt: nothing added, not even the dry run
    code, _, err = run(server, token, "add", str(rita["path"]), input="n\n")
    assert code == 2 and "confirmation_required" in err and listed(server, token) == {}
    # a bad file: refused with the path of what is wrong, before anything is added
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("trail_pct = 5", "trail_pct = 100"))
    code, _, err = run(server, token, "add", str(bad), "--yes")
    assert code == 2 and "out_of_range" in err and "trail_pct" in err and listed(server, token) == {}
    bad.write_text(text.replace('kind = "close_all"', 'kind = "close_all"\ncolour = "red"'))
    code, _, err = run(server, token, "add", str(bad), "--yes")
    assert code == 2 and "invalid_rule_set" in err and listed(server, token) == {}
    bad.write_text("[[rule_sets]\n")
    code, _, err = run(server, token, "add", str(bad))
    assert code == 2 and "invalid_toml" in err
    code, _, err = run(server, rita["tokens"]["otto"], "add", str(rita["path"]), "--yes")  # rita's account: not his to trade
    assert code == 2 and "account_not_found" in err and listed(server, rita["tokens"]["otto"]) == {}


def test_add_list_disable_enable_and_firings(server: ServerProcess, rita: dict[str, Any]) -> None:
    token = rita["tokens"]["rita"]
    code, out, err = run(server, token, "add", str(rita["path"]), input="y\n")  # confirmed at the prompt: both added
    assert code == 0, err
    assert out.count("added rule set") == 2 and "portfolio stop: account" in out and "hot rsi: user" in out
    sets = listed(server, token)
    assert set(sets) == {"portfolio stop", "hot rsi"}
    stop, rsi = sets["portfolio stop"], sets["hot rsi"]
    assert (stop["mode"], stop["enabled"], rsi["mode"], rsi["cooldown"]) == ("live", True, "dry_run", "1h")
    code, out, err = run(server, token, "list")
    assert code == 0 and "portfolio stop" in out and "not armed" in out
    assert run(server, token, "disable", str(stop["id"]))[1].strip() == f"disabled rule set {stop['id']}"
    code, out, err = run(server, token, "enable", str(stop["id"]), input="n\n")  # a live close_all: asked, refused
    assert code == 2 and "confirmation_required" in err
    assert listed(server, token)["portfolio stop"]["enabled"] is False
    assert run(server, token, "enable", str(stop["id"]), "--yes")[1].strip() == f"enabled rule set {stop['id']}"
    assert listed(server, token)["portfolio stop"]["enabled"] is True
    code, out, err = run(server, token, "firings", str(rsi["id"]), "--json")
    assert code == 0 and json.loads(out) == []


def test_another_users_rule_set_is_not_found(server: ServerProcess, rita: dict[str, Any]) -> None:
    token = rita["tokens"]["rita"]
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}) as client:
        made = client.post("/api/v1/rulesets", json={"name": "hers", "scope": "user", "mode": "dry_run",
                                                     "rules": [{"kind": "portfolio_stop", "pct": 10}],
                                                     "actions": [{"kind": "notify"}]}).json()
    for args in (("firings", str(made["id"])), ("disable", str(made["id"])), ("enable", str(made["id"]), "--yes")):
        code, _out, err = run(server, rita["tokens"]["otto"], *args)
        assert code == 2 and "rule_set_not_found" in err
    assert listed(server, token)["hers"]["enabled"] is True
    assert "Firings of rule set" in run(server, token, "firings", str(made["id"]))[1]


def test_firings_shows_a_real_firing_as_the_api_stores_it(server: ServerProcess) -> None:
    """A live rule set whose stop holds at its first sample fires on the server; `rules firings` prints that firing (its
    id, mode, the values that made it fire, each action's status) and `--json` is the API's answer itself."""
    token = server.traders("fiona")["fiona"]
    with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}) as client:
        account = client.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": "fires"}).json()["id"]
        made = client.post("/api/v1/rulesets", json={
            "name": "always", "scope": "account", "scope_id": str(account), "mode": "live",
            "rules": [{"kind": "portfolio_stop", "value": "1000000000"}],
            "actions": [{"kind": "notify", "message": "fired for the cli"}]})  # fmt: skip
        assert made.status_code == 201, made.text
        rule_set_id = made.json()["id"]
        deadline = time.monotonic() + 15
        while True:
            answer = client.get(f"/api/v1/rulesets/{rule_set_id}/firings").json()
            if answer and all(a["status"] == "done" for a in answer[0]["actions"]):
                break
            assert time.monotonic() < deadline, f"no finished firing in time: {answer}"
            time.sleep(0.1)
    [firing] = answer
    assert firing["mode"] == "live" and Decimal(firing["values"]["level"]) == 1000000000
    code, out, err = run(server, token, "firings", str(rule_set_id), "--json")
    assert code == 0, err
    assert json.loads(out) == answer
    code, out, err = run(server, token, "firings", str(rule_set_id), "--limit", "1")
    assert code == 0, err
    text = " ".join(out.split())  # the table may wrap its cells
    assert f"Firings of rule set {rule_set_id}" in text
    row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith(str(firing["id"])))
    assert "live" in row and "notify done" in text and "level 1000000000" in text
    assert f"value {firing['values']['value']}" in text

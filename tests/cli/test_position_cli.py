"""`coinwire position ...` and `order place --position-side` against a real server: answers, and refusals as exit 2 with the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import ServerProcess

SCRIPT = Path(sys.executable).with_name("coinwire")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "coinwire.cli"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("position-cli"))
    proc.start()
    yield proc
    proc.stop()


def run(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINWIRE_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "COINWIRE_TOKEN": server.token})
    return subprocess.run([*COMMAND, *args, "--url", server.http], env=env, capture_output=True, text=True, timeout=60)


def test_position_list_and_funding_answer_json(server: ServerProcess) -> None:
    listed = run(server, "position", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    funding = run(server, "position", "funding", "--exchange", "demo")
    assert funding.returncode == 0 and json.loads(funding.stdout) == []


@pytest.mark.parametrize(("args", "code"), [
    (("position", "leverage", "demo", "BTC_USDT", "5"), "not_a_perpetual"),
    (("position", "leverage", "demo", "BTC_USDT", "0"), "invalid_leverage"),
    (("position", "margin-mode", "demo", "BTC/USDT", "sideways"), "invalid_margin_mode"),
    (("position", "margin", "demo", "BTC_USDT", "0"), "invalid_amount"),
    (("position", "close", "demo", "BTC_USDT", "--position-side", "up"), "invalid_position_side"),
    (("position", "list", "--pair", "BTC_USDT"), "missing_parameter"),
    (("order", "place", "demo", "BTC_USDT", "buy", "0.01", "--type", "market", "--position-side", "long"), "not_a_perpetual"),
    (("order", "place", "demo", "BTC_USDT", "buy", "0.01", "--type", "market", "--reduce-only", "--position-side", "up"),
     "invalid_position_side"),
])
def test_refusals_exit_2_with_the_servers_code(server: ServerProcess, args: tuple[str, ...], code: str) -> None:
    refused = run(server, *args)
    assert refused.returncode == 2 and code in refused.stderr, (args, refused.stdout, refused.stderr)


def test_position_mode_takes_hedge_or_one_way_only(server: ServerProcess) -> None:
    refused = run(server, "position", "mode", "demo", "both")
    assert refused.returncode == 2 and "hedge or one-way" in refused.stderr

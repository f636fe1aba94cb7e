"""A `close_all` killed between two markets resumes after a restart and sells each holding exactly once.

A paper platform with the controller runs in a process of its own (tests/services/controller_child.py).
A portfolio stop fires; its `close_all` sells BTC first, and the process is SIGKILLed by its own gateway
listener the moment that sell's fill is committed: the order is in the store, the command's record of
it is not, ETH is not sold. A new process on the same store resumes the command: it finds the BTC order
by the client id the command derives, sells ETH, and the rule set does not fire again. In the store:
one BTC sell of 1 BTC, ETH sells of 10 ETH in all, one firing, its command `done`, the account in USDT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from coinwire.core.rules import parse_rule_set, rule_set_dict
from coinwire.store import Store
from coinwire.store.rules import RuleSetRow, RuleStore

ROOT = Path(__file__).resolve().parents[2]
ALICE = 601


def _child(folder: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.services.controller_child", str(folder), *args], cwd=ROOT, env=env)


def _wait_for(predicate: Callable[[], Any], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited too long for {what}")
        time.sleep(0.05)


def _books(folder: Path, btc: str, eth: str) -> None:
    """The books the child follows, replaced in one step."""
    books = {"BTC/USDT": {"bids": [[btc, "1000"]], "ask": str(Decimal(btc) + Decimal("0.01"))},
             "ETH/USDT": {"bids": [[eth, "1000"]], "ask": str(Decimal(eth) + Decimal("0.01"))}}  # fmt: skip
    (folder / "books.new").write_text(json.dumps(books))
    os.replace(folder / "books.new", folder / "books.json")


async def test_a_close_all_killed_between_two_markets_sells_each_holding_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o700)
    _books(tmp_path, "30000", "2000")  # the account: 10,000 USDT + 1 BTC + 10 ETH = 60,000
    spec = rule_set_dict(parse_rule_set({
        "name": "floor", "scope": "account", "scope_id": "1", "rules": [{"kind": "portfolio_stop", "value": "59000"}],
        "actions": [{"kind": "close_all"}]}))  # fmt: skip
    async with Store(f"sqlite:///{tmp_path / 'data' / 'coinwire.db'}") as store:  # account 1: the first the child opens
        row = await RuleStore(store).add(RuleSetRow(owner_id=ALICE, name="floor", scope="account", scope_id="1", spec=spec,
                                                    enabled=True, created_ns=1, updated_ns=1))  # fmt: skip

    first = _child(tmp_path, "kill")
    try:
        _wait_for(lambda: (tmp_path / f"ready-{first.pid}").exists(), "the first process")
        assert (tmp_path / f"ready-{first.pid}").read_text() == "1"
        time.sleep(0.5)  # the reference: 60,000
        _books(tmp_path, "28000", "2000")  # 58,000 <= 59,000: fires; the first fill kills the process
        _wait_for(lambda: first.poll() is not None, "the kill at the first fill")
        assert first.returncode == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    second = _child(tmp_path)
    try:
        _wait_for(lambda: (tmp_path / f"report-{second.pid}.json").exists(), "the resumed close_all")
        report = json.loads((tmp_path / f"report-{second.pid}.json").read_text())
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()

    [firing] = report["firings"]  # no second firing after the restart
    assert firing["rule_set_id"] == row.id
    [command] = firing["commands"]
    assert command["status"] == "done" and command["attempts"] == 2  # the attempt the kill cut, the one that finished
    sells = {o["client_oid"]: o for o in report["orders"] if o["side"] == "sell"}
    assert len(sells) == len(report["orders"]) == 2
    by_symbol = {o["symbol"]: o for o in sells.values()}
    assert sorted(by_symbol) == ["BTC/USDT", "ETH/USDT"]  # one sell per holding: BTC was not sold again
    assert by_symbol["BTC/USDT"]["client_oid"] == f"cw-r{firing['id']}-0-0"
    assert by_symbol["ETH/USDT"]["client_oid"] == f"cw-r{firing['id']}-0-1"
    assert [len(report["fills"][oid]) for oid in sells] == [1, 1]
    assert Decimal(report["balances"].get("BTC", "0")) == 0 and Decimal(report["balances"].get("ETH", "0")) == 0
    proceeds = sum(Decimal(f["notional"] - f["fee"]).scaleb(-18) for fs in report["fills"].values() for f in fs)
    assert Decimal(report["balances"]["USDT"]) == Decimal(10000) + proceeds
    assert proceeds == Decimal(28000) * Decimal("0.999") + Decimal(20000) * Decimal("0.999")  # 0.1% taker fee
    # what the command says it did is what was done: the BTC sell counted on resume, the ETH sell after it
    assert {o["client_oid"]: Decimal(o["filled"]) for o in command["detail"]["orders"]} == {
        f"cw-r{firing['id']}-0-0": Decimal(1), f"cw-r{firing['id']}-0-1": Decimal(10)}

"""The real `coinwire` command as a subprocess: help, `config show`, and views of a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess, free_port

SCRIPT = Path(sys.executable).with_name("coinwire")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "coinwire.cli"]


def coinwire(*args: str, env: dict[str, str] | None = None, home: Path | None = None,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script with a clean environment: no COINWIRE_* from the caller, a private data home."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COINWIRE_")}
    clean.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", **_signed_in})
    if home is not None:
        clean["XDG_DATA_HOME"] = str(home)
    clean.update(env or {})
    return subprocess.run([*COMMAND, *args], env=clean, capture_output=True, text=True, timeout=60, input=input)


def succeeds(*args: str, **kwargs: Any) -> str:
    result = coinwire(*args, **kwargs)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(*args: str, **kwargs: Any) -> Any:
    return json.loads(succeeds(*args, "--json", **kwargs))


@pytest.fixture(scope="module")
def booting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Start the server at the first test, without waiting: it boots while the config tests run."""
    proc = ServerProcess(tmp_path_factory.mktemp("cli-server"))
    proc.start(wait_ready=False)
    yield proc
    proc.stop()


@pytest.fixture
def server(booting: ServerProcess) -> ServerProcess:
    booting.wait_ready()
    _signed_in["COINWIRE_TOKEN"] = booting.token  # the CLI's views send it as a bearer token
    return booting


_signed_in: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _boot_early(booting: ServerProcess) -> None:
    pass


# --- help and configuration ---------------------------------------------------------------------------
def test_help() -> None:
    out = succeeds("--help")
    for command in ("serve", "config", "exchanges", "book", "wallets", "orders", "--config", "--data-dir"):
        assert command in out, command
    assert "show" in succeeds("config", "--help")
    assert "--url" in succeeds("orders", "--help")


def test_config_show_defaults(tmp_path: Path) -> None:
    data = as_json("config", "show", home=tmp_path)
    assert data["host"] == "127.0.0.1" and data["port"] == 8000
    assert data["data_dir"] == str(tmp_path / "coinwire")  # the user's data directory (XDG)
    assert data["store_url"] == f"sqlite:///{tmp_path / 'coinwire' / 'coinwire.db'}"
    assert [e["name"] for e in data["exchanges"]] == ["demo"]


def test_config_show_text_is_a_config_file(tmp_path: Path) -> None:
    """`coinwire config show > file` gives back the same configuration through --config."""
    (tmp_path / "in.toml").write_text(
        'port = 8600\n[[exchanges]]\nname = "alpha"\nsymbols = ["BTC/USDT"]\npaper_funds = { USDT = "12.5" }\n'
    )
    text = succeeds("--config", str(tmp_path / "in.toml"), "config", "show", home=tmp_path)
    parsed = tomllib.loads(text)
    assert parsed["port"] == 8600 and parsed["exchanges"][0]["paper_funds"] == {"USDT": "12.5"}
    assert "\n[[exchanges]]\n" in text
    (tmp_path / "out.toml").write_text(text)
    original = as_json("--config", str(tmp_path / "in.toml"), "config", "show", home=tmp_path)
    assert as_json("--config", str(tmp_path / "out.toml"), "config", "show", home=tmp_path) == original


def test_config_precedence_file_env_flag_and_redaction(tmp_path: Path) -> None:
    config = tmp_path / "coinwire.toml"
    config.write_text('host = "0.0.0.0"\nport = 8700\nlog_level = "debug"\ndata_dir = "/from/file"\n')
    env = {
        "COINWIRE_PORT": "8701",
        "COINWIRE_DATA_DIR": "/from/env",
        "COINWIRE_STORE_URL": "postgresql://coin:hunter2@db:5432/coinwire",
        "COINWIRE_CACHE_URL": "redis://:hunter2@cache:6379/0",
    }
    data_dir = tmp_path / "from-flag"
    result = coinwire("--config", str(config), "--data-dir", str(data_dir), "config", "show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["host"], data["log_level"]) == ("0.0.0.0", "debug")  # file over defaults
    assert data["port"] == 8701  # environment over file
    assert data["data_dir"] == str(data_dir)  # flag over environment
    assert data["store_url"] == "postgresql://coin:***@db:5432/coinwire"
    assert data["cache_url"] == "redis://:***@cache:6379/0"
    text = coinwire("--config", str(config), "config", "show", env=env)
    assert 'store_url = "postgresql://coin:***@db:5432/coinwire"' in text.stdout
    assert "hunter2" not in result.stdout + result.stderr + text.stdout + text.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('port = 8000\ncolour = "red"\n', "unknown field `colour`"),
        ('[[exchanges]]\nname = "a"\napi_secret = "x"\n', "unknown field `api_secret`"),
        ("port = 70000\n", "port must be between 1 and 65535"),
        ("port = [\n", "is not valid TOML"),
    ],
)
def test_bad_config_file_exits_2_with_a_clear_message(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "coinwire.toml"
    config.write_text(content)
    result = coinwire("--config", str(config), "config", "show")
    assert result.returncode == 2
    assert "error:" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_config_file_and_bad_environment(tmp_path: Path) -> None:
    missing = coinwire("--config", str(tmp_path / "nope.toml"), "config", "show")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_env = coinwire("config", "show", env={"COINWIRE_EXCHANGES": "not json"})
    assert bad_env.returncode == 2 and "COINWIRE_EXCHANGES must be a JSON list" in bad_env.stderr


# --- views of a running server -----------------------------------------------------------------------------
def test_exchanges(server: ServerProcess) -> None:
    out = succeeds("exchanges", "--url", server.http)
    assert "demo" in out and "paper" in out and "ready" in out and "BTC_USDT" in out
    (demo,) = as_json("exchanges", "--url", server.http + "/")  # a trailing slash is fine
    assert demo["exchange"] == "demo" and demo["status"] == "ready" and "SOL_USDT" in demo["pairs"]


def test_book(server: ServerProcess) -> None:
    out = succeeds("book", "demo", "BTC/USDT", "--depth", "3", "--url", server.http)
    assert "demo BTC/USDT" in out
    book = as_json("book", "demo", "btc_usdt", "--depth", "3", "--url", server.http)
    assert book["symbol"] == "BTC/USDT" and len(book["bids"]) == 3 and len(book["asks"]) == 3
    assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
    unknown = coinwire("book", "demo", "DOGE/USDT", "--url", server.http)
    assert unknown.returncode == 2 and "unknown_symbol" in unknown.stderr and "DOGE/USDT" in unknown.stderr


def test_wallets(server: ServerProcess) -> None:
    out = succeeds("wallets", "--url", server.http)
    assert "total" in out and "unallocated" in out and "USDT" in out and "1000000" in out
    data = as_json("wallets", "--url", server.http)
    assert {"total", "allocated", "unallocated"} <= set(data)
    usdt = next(w for w in data["total"]["wallets"] if w["currency"] == "USDT")
    assert Decimal(usdt["balance"]) == Decimal("1000000")


def test_orders(server: ServerProcess) -> None:
    bid = Decimal(httpx.get(f"{server.http}/xwrap/v1/demo/pricing", headers=server.headers).json()["BTC_USDT"]["bid"])
    key = uuid.uuid4().hex
    order = httpx.post(f"{server.http}/xwrap/v1/orders/new", json={
        "exchange": "demo", "pair": "BTC_USDT", "side": "buy", "size": "0.01",
        "limit": str((bid / 2).quantize(Decimal("0.01"))), "client_oid": key,
    }, headers=server.headers).json()
    assert order["status"] == "open", order
    open_orders = as_json("orders", "--open", "--url", server.http)
    assert [o["client_order_id"] for o in open_orders] == [key]
    recent = as_json("orders", "--limit", "5", "--url", server.http)
    assert order["id"] in [o["id"] for o in recent]  # recent orders include open ones
    table = succeeds("orders", "--url", server.http)
    assert str(order["id"]) in table and "BTC_USDT" in table and "open" in table
    httpx.post(f"{server.http}/xwrap/v1/orders/cancel", json={"order_id": order["id"]}, headers=server.headers).raise_for_status()
    assert as_json("orders", "--open", "--url", server.http) == []
    assert "cancelled" in succeeds("orders", "--url", server.http)


def test_order_place_and_cancel_and_its_refusals(server: ServerProcess) -> None:
    """`order place` sends make_order's parameters under their CLI names; a refusal prints the server's code, exit 2."""
    bid = Decimal(httpx.get(f"{server.http}/xwrap/v1/demo/pricing", headers=server.headers).json()["BTC_USDT"]["bid"])
    low = str((bid / 2).quantize(Decimal("0.01")))
    key = uuid.uuid4().hex
    placed = as_json("order", "place", "demo", "BTC/USDT", "buy", "0.01", "--limit", low, "--time-in-force", "GTC", "--client-oid", key,
                     "--url", server.http)
    assert (placed["type"], placed["status"], placed["client_order_id"], Decimal(placed["limit"])) == ("limit", "open", key, Decimal(low))
    ioc = as_json("order", "place", "demo", "BTC_USDT", "buy", "0.01", "--limit", low, "--time-in-force", "IOC", "--url", server.http)
    assert (ioc["type"], ioc["status"]) == ("limit-immediate-cancel", "done")
    cancelled = succeeds("order", "cancel", str(placed["id"]), "--url", server.http)
    assert str(placed["id"]) in cancelled and "cancelled" in cancelled
    above = str((bid * 2).quantize(Decimal("0.01")))
    for args, code in ((("sell", "0.01", "--type", "stop-market", "--stop-price", above), "stop_would_trigger"),
                       (("sell", "0.01", "--type", "trailing-stop", "--trailing-delta", "100%"), "trailing_delta_out_of_range"),
                       (("buy", "0.01", "--limit", low, "--expire-at", "2020-01-01T00:00:00Z"), "expire_at_in_past"),
                       (("buy", "0.01", "--limit", low, "--take-profit", above, "--stop-loss", above), "bracket_stop_wrong_side")):
        refused = coinwire("order", "place", "demo", "BTC_USDT", *args, "--url", server.http)
        assert refused.returncode == 2 and code in refused.stderr, (args, refused.stderr)
    malformed = coinwire("order", "place", "demo", "BTC_USDT", "buy", "0.01", "--limit", low, "--take-profit", "stop=1,stop=2",
                         "--url", "http://127.0.0.1:9")  # refused before anything is sent
    assert malformed.returncode == 2 and "--take-profit" in malformed.stderr and "stop=PRICE" in malformed.stderr
    wrong = coinwire("order", "oco", "demo", "BTC_USDT", "sell", "0.01", "--limit", low, "--stop-price", "100", "--url", server.http)
    assert wrong.returncode == 2 and "oco_prices_wrong_side" in wrong.stderr
    assert as_json("orders", "--open", "--url", server.http) == []


def test_order_place_conditional_bracket_and_oco(server: ServerProcess) -> None:
    """Stops, trailing stops, brackets and OCOs from the command line rest as the server answered them, and cancel."""
    bid = Decimal(httpx.get(f"{server.http}/xwrap/v1/demo/pricing", headers=server.headers).json()["BTC_USDT"]["bid"])
    low, lower, high = (str((bid * f).quantize(Decimal("0.01"))) for f in (Decimal("0.5"), Decimal("0.4"), Decimal(2)))
    url = ("--url", server.http)
    stop = as_json("order", "place", "demo", "BTC/USDT", "sell", "0.01", "--type", "stop-limit", "--stop-price", low, "--limit", lower,
                   "--time-in-force", "GTD", "--expire-at", "2099-01-01T00:00:00Z", "--trigger", "bid_ask", *url)
    assert (stop["status"], stop["time_in_force"], stop["trigger"], stop["expire_at"][:10]) == \
        ("untriggered", "GTD", "bid_ask", "2099-01-01")
    trailing = as_json("order", "place", "demo", "BTC_USDT", "sell", "0.01", "--type", "trailing-stop", "--trailing-delta", "2.5%",
                       "--activation-price", high, *url)
    assert (trailing["status"], trailing["trailing_delta"]) == ("untriggered", "2.5%")
    parent = as_json("order", "place", "demo", "BTC_USDT", "buy", "0.01", "--limit", low, "--take-profit", f"stop={high},limit={high}",
                     "--stop-loss", lower, *url)
    assert (parent["bracket"]["take_profit"]["type"], parent["bracket"]["stop_loss"]["type"]) == ("take-profit-limit", "stop-market")
    legs = as_json("order", "oco", "demo", "BTC_USDT", "sell", "0.01", "--limit", high, "--stop-price", low, "--stop-limit", lower,
                   "--client-oid", "cli-oco", *url)
    assert [(o["type"], o["client_order_id"]) for o in legs] == [("limit", "cli-oco:limit"), ("stop-limit", "cli-oco:stop")]
    table = succeeds("orders", "--open", *url)
    assert "stop-limit" in table and "trailing-stop" in table and "untriggered" in table
    for order in (stop, trailing, parent, legs[0]):
        assert "done" in succeeds("order", "cancel", str(order["id"]), *url)
    assert as_json("orders", "--open", *url) == []


def test_accounts_list_open_grant_revoke(server: ServerProcess) -> None:
    tokens = server.traders(f"cli-{uuid.uuid4().hex[:8]}")
    (name, token), = tokens.items()
    mine = as_json("accounts", "list", "--url", server.http, env={"COINWIRE_TOKEN": token})
    assert [(a["exchange"], a["kind"], a["role"]) for a in mine] == [("demo", "paper", "owner")]
    opened = succeeds("accounts", "open", "demo", "cli desk", "--url", server.http, env={"COINWIRE_TOKEN": token})
    assert opened.startswith("opened account ") and "cli desk" in opened
    desk = int(opened.split()[2])
    user_id = mine[0]["owner"]
    admin_desk = next(a["id"] for a in as_json("accounts", "list", "--url", server.http) if a["role"] == "owner")  # the admin's own
    assert succeeds("accounts", "grant", str(admin_desk), name, "--role", "view", "--url", server.http).strip() == \
        f"account {admin_desk} members: {user_id}:view"
    assert admin_desk in [a["id"] for a in as_json("accounts", "list", "--url", server.http, env={"COINWIRE_TOKEN": token})]
    table = succeeds("accounts", "list", "--url", server.http)
    assert f"{user_id}:view" in table and "cli desk" in table
    assert succeeds("accounts", "revoke", str(admin_desk), str(user_id), "--url", server.http).strip() == \
        f"account {admin_desk} members: none"
    assert {a["id"] for a in as_json("accounts", "list", "--url", server.http, env={"COINWIRE_TOKEN": token})} == {mine[0]["id"], desk}
    refused = coinwire("accounts", "grant", str(admin_desk), "nobody-at-all", "--role", "view", "--url", server.http)
    assert refused.returncode == 2 and "unknown_user" in refused.stderr
    refused = coinwire("accounts", "grant", str(desk), "1", "--role", "view", "--url", server.http, env={"COINWIRE_TOKEN": token})
    assert refused.returncode == 2 and "forbidden" in refused.stderr  # owners do not grant: admins do
    refused = coinwire("accounts", "open", "demo", "x", "--url", server.http, env={"COINWIRE_TOKEN": "not-a-token"})
    assert refused.returncode == 2 and "invalid_token" in refused.stderr


def test_schedule_add_list_pause_resume_remove(server: ServerProcess) -> None:
    tokens = server.traders(f"cli-{uuid.uuid4().hex[:8]}")
    ((_, token),) = tokens.items()
    env = {"COINWIRE_TOKEN": token}
    job = json.dumps({"kind": "run_strategy", "strategy": "hodl", "mode": "backtest", "for": "1h"})
    added = succeeds("schedule", "add", "nightly", "--cron", "30 1 * * *", "--timezone", "Europe/London", "--job", job,
                     "--url", server.http, env=env)
    assert added.startswith("added schedule ") and "cron 30 1 * * * in Europe/London" in added
    schedule_id = int(added.split()[2])
    (listed,) = as_json("schedule", "list", "--url", server.http, env=env)
    assert (listed["id"], listed["job"]["kind"], listed["next_runs"][0]["at"][11:16]) == (schedule_id, "run_strategy", "01:30")
    assert "nightly" in succeeds("schedule", "list", "--url", server.http, env=env)
    assert succeeds("schedule", "pause", str(schedule_id), "--url", server.http, env=env).strip() == f"paused schedule {schedule_id}"
    assert as_json("schedule", "list", "--url", server.http, env=env)[0]["paused"] is True
    assert succeeds("schedule", "resume", str(schedule_id), "--url", server.http, env=env).startswith(f"resumed schedule {schedule_id}")
    refused = coinwire("schedule", "add", "bad", "--cron", "61 * * * *", "--job", job, "--url", server.http, env=env)
    assert refused.returncode == 2 and "invalid_cron" in refused.stderr
    refused = coinwire("schedule", "add", "bad", "--every", "1m", "--job", "{not json", "--url", server.http, env=env)
    assert refused.returncode == 2 and "invalid_job" in refused.stderr
    others = server.traders(f"cli-{uuid.uuid4().hex[:8]}")
    refused = coinwire("schedule", "remove", str(schedule_id), "--url", server.http, env={"COINWIRE_TOKEN": next(iter(others.values()))})
    assert refused.returncode == 2 and "schedule_not_found" in refused.stderr
    assert succeeds("schedule", "remove", str(schedule_id), "--url", server.http, env=env).strip() == f"removed schedule {schedule_id}"
    assert as_json("schedule", "list", "--url", server.http, env=env) == []


# --- no server ------------------------------------------------------------------------------------------
def test_no_server_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/some/rather/long/path/prefix/that/would/be/wrapped/by/a/narrow/terminal"
    result = coinwire("exchanges", "--url", url, env={"COLUMNS": "60"})
    assert result.returncode != 0
    assert f"cannot reach coinwire at {url}" in result.stderr and "coinwire serve" in result.stderr
    assert "Traceback" not in result.stderr
    # without --url the address comes from the configuration
    result = coinwire("wallets", env={"COINWIRE_PORT": str(port)}, home=tmp_path)
    assert result.returncode != 0 and f"http://127.0.0.1:{port}" in result.stderr


def test_a_server_that_is_not_coinwire(tmp_path: Path) -> None:
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as other:
        thread = threading.Thread(target=other.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{other.server_address[1]}"
        try:
            result = coinwire("orders", "--url", url)
        finally:
            other.shutdown()
    assert result.returncode == 2 and "without JSON" in result.stderr and url in result.stderr
    assert "Traceback" not in result.stderr

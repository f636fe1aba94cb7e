"""load_settings: defaults < TOML file < COINWIRE_* environment < explicit overrides, and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coinwire.config import ConfigError, ExchangeConfig, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "coinwire.toml"
    path.write_text(text)
    return path


def test_defaults_need_nothing(tmp_path: Path) -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert (s.host, s.port, s.bus_url, s.cache_url, s.log_level) == ("127.0.0.1", 8000, "memory://", "memory://", "info")
    assert [e.name for e in s.exchanges] == ["demo"] and s.exchanges[0].mode == "paper" and s.exchanges[0].feed == "demo"
    assert s.exchanges[0].paper_funds["USDT"] == "100000"
    assert s.data_path.is_absolute() and s.resolved_store_url == f"sqlite:///{s.data_path / 'coinwire.db'}"
    assert load_settings(overrides={"data_dir": str(tmp_path)}, env={}).resolved_store_url == f"sqlite:///{tmp_path}/coinwire.db"


def test_precedence_defaults_file_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, 'host = "0.0.0.0"\nport = 9001\nlog_level = "debug"\nbus_url = "nats://file:4222"\n')
    from_file = load_settings(path, env={})
    assert (from_file.host, from_file.port, from_file.log_level, from_file.bus_url) == ("0.0.0.0", 9001, "debug", "nats://file:4222")
    assert from_file.cache_url == "memory://"  # untouched keys keep their defaults
    env = {"COINWIRE_PORT": "9002", "COINWIRE_BUS_URL": "nats://env:4222", "COINWIRE_CACHE_URL": "redis://env:6379/0"}
    from_env = load_settings(path, env=env)
    assert (from_env.host, from_env.port, from_env.bus_url, from_env.cache_url) == ("0.0.0.0", 9002, "nats://env:4222", "redis://env:6379/0")
    assert from_env.log_level == "debug"  # the file still wins over the defaults
    flags = load_settings(path, {"port": 9003, "host": None, "data_dir": str(tmp_path)}, env=env)
    assert (flags.host, flags.port, flags.bus_url, flags.data_dir) == ("0.0.0.0", 9003, "nats://env:4222", str(tmp_path))


def test_env_values_are_parsed(tmp_path: Path) -> None:
    env = {
        "COINWIRE_HOST": "10.0.0.1",
        "COINWIRE_DATA_DIR": str(tmp_path),
        "COINWIRE_STORE_URL": "postgresql://u@db/coinwire",
        "COINWIRE_LOG_LEVEL": "WARNING",
        "COINWIRE_ROLES": " gateway , api,,",
        "COINWIRE_BOOK_DEPTH": "25",
        "COINWIRE_PORT": "",  # empty means unset
        "OTHER_PORT": "1",
    }
    s = load_settings(env=env)
    assert (s.host, s.data_path, s.store_url, s.log_level, s.roles, s.book_depth, s.port) == (
        "10.0.0.1", tmp_path, "postgresql://u@db/coinwire", "WARNING", ["gateway", "api"], 25, 8000,
    )
    with pytest.raises(ConfigError, match="port"):
        load_settings(env={"COINWIRE_PORT": "eighty"})


def test_self_registration_is_off_by_default_and_its_defaults_come_from_the_environment() -> None:
    s = load_settings(env={})
    assert (s.self_registration, s.registration_role) == (False, "viewer")
    s = load_settings(env={"COINWIRE_SELF_REGISTRATION": "true", "COINWIRE_REGISTRATION_ROLE": "trader"})
    assert (s.self_registration, s.registration_role) == (True, "trader")
    assert load_settings(env={"COINWIRE_SELF_REGISTRATION": "0"}).self_registration is False
    with pytest.raises(ConfigError, match="registration_role must be one of viewer, trader, got 'admin'"):
        load_settings(env={"COINWIRE_REGISTRATION_ROLE": "admin"})  # never admins by sign-up
    with pytest.raises(ConfigError, match="self_registration"):
        load_settings(env={"COINWIRE_SELF_REGISTRATION": "perhaps"})


def test_environment_mapping_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINWIRE_PORT", "8123")
    assert load_settings().port == 8123


def test_coinwire_exchanges_json_replaces_the_file_exchanges(tmp_path: Path) -> None:
    path = write(tmp_path, '[[exchanges]]\nname = "fromfile"\nseed = 3\n')
    assert [e.name for e in load_settings(path, env={}).exchanges] == ["fromfile"]
    exchanges = [
        {"name": "alpha", "tick_interval": 0.05, "paper_funds": {"USDT": "5"}, "symbols": ["BTC/USDT"]},
        {"name": "beta", "seed": 9},
    ]
    s = load_settings(path, env={"COINWIRE_EXCHANGES": json.dumps(exchanges)})
    assert s.exchanges == [
        ExchangeConfig(name="alpha", tick_interval=0.05, paper_funds={"USDT": "5"}, symbols=["BTC/USDT"]),
        ExchangeConfig(name="beta", seed=9),
    ]
    with pytest.raises(ConfigError, match="COINWIRE_EXCHANGES must be a JSON list"):
        load_settings(env={"COINWIRE_EXCHANGES": "[{name: alpha}]"})
    with pytest.raises(ConfigError, match="invalid configuration"):
        load_settings(env={"COINWIRE_EXCHANGES": '{"name": "alpha"}'})
    with pytest.raises(ConfigError, match="unknown field `colour`"):
        load_settings(env={"COINWIRE_EXCHANGES": '[{"name": "alpha", "colour": "red"}]'})


def test_toml_file_with_exchanges(tmp_path: Path) -> None:
    path = write(tmp_path, """
port = 8500

[[exchanges]]
name = "binance"
feed = "replay"
replay_paths = ["/data/a.jsonl"]
replay_loop = false
paper_funds = { USDT = "1000", BTC = "0.5" }

[[exchanges]]
name = "demo-2"
symbols = ["ETH/USDT"]
""")
    s = load_settings(path, env={})
    binance, demo = s.exchanges
    assert (binance.feed, binance.replay_paths, binance.replay_loop, binance.paper_funds) == (
        "replay", ["/data/a.jsonl"], False, {"USDT": "1000", "BTC": "0.5"},
    )
    assert (demo.name, demo.feed, demo.symbols) == ("demo-2", "demo", ["ETH/USDT"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'red'\n", "unknown field `colour`"),
        ("[[exchanges]]\nname = 'x'\nsecret = 1\n", r"unknown field `secret` - at `\$.exchanges\[0\]`"),
        ("port = 'eighty'\n", r"\$.port"),
        ("port = \n", "is not valid TOML"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text), env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": 0}, "port must be between 1 and 65535, got 0"),
        ({"port": 65536}, "port must be between 1 and 65535"),
        ({"port": -1}, "port must be between"),
        ({"log_level": "loud"}, "log_level must be one of"),
        ({"ws_max_patterns": 0}, "ws_max_patterns and ws_max_streams must be between 1 and 10000"),
        ({"ws_max_streams": 10_001}, "ws_max_patterns and ws_max_streams must be between 1 and 10000"),
        ({"ws_max_unread_bytes": 1024}, "ws_max_unread_bytes must be between 65536"),
        ({"rates_max_points": 0}, "rates_max_points must be between 1 and 100000, got 0"),
        ({"rates_max_points": 100_001}, "rates_max_points must be between 1 and 100000"),
        ({"rates_max_age": 0.5}, "rates_max_age must be between 1 and 3600 seconds, got 0.5"),
        ({"rates_max_age": 3601}, "rates_max_age must be between 1 and 3600 seconds"),
        ({"exchanges": [{"name": "a"}, {"name": "a"}]}, "exchange names must be unique"),
        ({"exchanges": [{"name": "Binance"}]}, "lowercase"),
        ({"exchanges": [{"name": "my exchange"}]}, "lowercase"),
        ({"exchanges": [{"name": "a.b"}]}, "lowercase"),
        ({"exchanges": [{"name": ""}]}, "lowercase"),
        ({"exchanges": [{"name": "a", "mode": "yolo"}]}, "exchange a: mode must be 'paper' or 'live', got 'yolo'"),
        ({"exchanges": [{"name": "a", "feed": "rss"}]}, "exchange a: feed must be 'demo', 'replay' or 'ccxt', got 'rss'"),
        ({"exchanges": [{"name": "a", "feed": "replay"}]}, "exchange a: a replay feed needs replay_paths"),
        ({"exchanges": [{"name": "a", "mode": "live"}]}, "exchange a: a live exchange needs feed = 'ccxt'"),
        ({"exchanges": [{"name": "binance", "feed": "ccxt"}]}, "exchange binance: a ccxt feed needs symbols"),
        ({"exchanges": [{"name": "a", "feed": "ccxt", "symbols": ["BTC/USDT"]}]}, "CCXT has no exchange 'a'"),
        ({"exchanges": [{"name": "a", "feed": "ccxt", "ccxt_id": "binanse", "symbols": ["BTC/USDT"]}]}, "CCXT has no exchange 'binanse'"),
        ({"exchanges": [{"name": "binance", "feed": "ccxt", "symbols": ["BTC/USDT"], "poll_interval": 0}]},
         "poll_interval and ccxt_timeout must be > 0"),
        ({"exchanges": [{"name": "binance", "feed": "ccxt", "symbols": ["BTC/USDT"], "ccxt_depth": 0}]},
         "ccxt_depth must be between 1 and 5000"),
        ({"exchanges": [{"name": "binance", "feed": "ccxt", "symbols": ["BTC/USDT"], "ccxt_urls": {"api.public": "ftp://x"}}]},
         r"ccxt_urls\['api.public'\] must be an http"),
        ({"exchanges": [{"name": "binance", "feed": "ccxt", "symbols": ["BTC/USDT"], "mode": "live"}]},
         "live trading needs the account's credentials in COINWIRE_BINANCE_API_KEY and COINWIRE_BINANCE_SECRET"),
        ({"exchanges": [{"name": "binance", "feed": "ccxt", "symbols": ["BTC/USDT"], "mode": "live", "paper_funds": {"USDT": "1"}}]},
         "paper_funds are for paper exchanges"),
        ({"exchanges": [{"name": "a", "tick_interval": 0}]}, "tick_interval must be > 0"),
        ({"exchanges": [{"name": "a", "demo_premium_bp": 5001}]}, "exchange a: demo_premium_bp must be between -5000 and 5000"),
        ({"exchanges": [{"name": "a", "demo_premium_bp": "nan"}]}, "demo_premium_bp must be between"),
        ({"exchanges": [{"name": "a", "feed": "replay", "replay_paths": ["x"], "replay_speed": -2}]}, "replay_speed must be > 0"),
        ({"exchanges": [{"name": "a", "seed": "seven"}]}, r"\$.exchanges\[0\].seed"),
        ({"roles": "gateway"}, r"\$.roles"),
    ],
)
def test_validation_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides=overrides, env={})


def test_valid_edge_values() -> None:
    assert load_settings(overrides={"port": 1}, env={}).port == 1
    assert load_settings(overrides={"port": 65535}, env={}).port == 65535
    replay = load_settings(overrides={"exchanges": [{"name": "r", "feed": "replay", "replay_paths": ["x"], "replay_speed": None}]}, env={})
    assert replay.exchanges[0].replay_speed is None
    assert load_settings(overrides={"exchanges": []}, env={}).exchanges == []


def test_a_live_exchange_takes_its_credentials_from_the_environment_only() -> None:
    live = {"name": "bn-main", "feed": "ccxt", "ccxt_id": "binance", "symbols": ["BTC/USDT"], "mode": "live"}
    env = {"COINWIRE_BN_MAIN_API_KEY": "k", "COINWIRE_BN_MAIN_SECRET": "s"}
    cfg = load_settings(overrides={"exchanges": [live]}, env=env).exchanges[0]
    assert (cfg.mode, cfg.credential_env("api_key"), cfg.credential_env("password")) == (
        "live", "COINWIRE_BN_MAIN_API_KEY", "COINWIRE_BN_MAIN_PASSWORD"
    )
    named = load_settings(overrides={"exchanges": [{**live, "api_key_env": "MY_KEY", "secret_env": "MY_SECRET"}]},
                          env={"MY_KEY": "k", "MY_SECRET": "s"}).exchanges[0]
    assert named.credential_env("secret") == "MY_SECRET"
    vaulted = load_settings(overrides={"exchanges": [{**live, "credentials_user": "alice"}]}, env={}).exchanges[0]
    assert vaulted.credentials_user == "alice"  # the keys are in alice's vault entry: no variables needed
    with pytest.raises(ConfigError, match="MY_SECRET"):
        load_settings(overrides={"exchanges": [{**live, "api_key_env": "MY_KEY", "secret_env": "MY_SECRET"}]}, env={"MY_KEY": "k"})


def test_a_paper_exchange_can_mirror_a_real_exchange_through_ccxt(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[exchanges]]
name = "binance-paper"
feed = "ccxt"
ccxt_id = "binance"
symbols = ["BTC/USDT", "eth_usdt"]
poll_interval = 2.5
ccxt_depth = 500
ccxt_urls = {"api.public" = "http://127.0.0.1:9000/api/v3"}
ccxt_options = {fetchMarkets = {types = ["spot"]}}
paper_funds = {USDT = "1000"}
""",
    )
    ex = load_settings(path, env={}).exchanges[0]
    assert (ex.mode, ex.feed, ex.ccxt_id, ex.poll_interval, ex.ccxt_depth, ex.ccxt_websocket) == (
        "paper", "ccxt", "binance", 2.5, 500, True
    )
    assert ex.ccxt_urls == {"api.public": "http://127.0.0.1:9000/api/v3"}
    assert ex.ccxt_options == {"fetchMarkets": {"types": ["spot"]}}
    from coinwire.app import build_feed
    from coinwire.feeds.ccxt_feed import CcxtFeed

    feed = build_feed(ex)
    assert isinstance(feed, CcxtFeed) and feed.exchange == "binance-paper" and feed.ccxt_id == "binance"
    assert feed.symbols == ["BTC/USDT", "ETH/USDT"] and (feed.poll_interval, feed.depth) == (2.5, 500)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://coin:s3cret@db:5432/coinwire", "postgresql://coin:***@db:5432/coinwire"),
        ("postgresql://coin:p@ss:w0rd@db/coinwire", "postgresql://coin:***@db/coinwire"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql://coin@db/coinwire", "postgresql://coin@db/coinwire"),
        ("postgresql://db/coinwire?user=coin&password=s3cret&ssl=true", "postgresql://db/coinwire?user=coin&password=***&ssl=true"),
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
    ],
)
def test_public_view_redacts_passwords(url: str, shown: str) -> None:
    public = load_settings(overrides={"store_url": url, "bus_url": url, "cache_url": url}, env={}).to_public()
    assert public["store_url"] == public["bus_url"] == public["cache_url"] == shown
    assert "s3cret" not in json.dumps(public)


def test_public_view_resolves_defaults(tmp_path: Path) -> None:
    public = load_settings(overrides={"data_dir": str(tmp_path / "d")}, env={}).to_public()
    assert public["data_dir"] == str(tmp_path / "d")
    assert public["store_url"] == f"sqlite:///{tmp_path / 'd' / 'coinwire.db'}"
    assert public["exchanges"][0]["name"] == "demo"
    json.dumps(public)


def test_the_namespace_and_the_bus_retention_are_set_and_checked(tmp_path: Path) -> None:
    s = load_settings(env={"COINWIRE_NAMESPACE": "desk-2", "COINWIRE_BUS_MAX_LOG": "5000", "COINWIRE_BUS_MAX_AGE": "3600",
                           "COINWIRE_BUS_MAX_BYTES": "1048576"})
    assert (s.namespace, s.bus_namespace, s.bus_max_log, s.bus_max_age, s.bus_max_bytes) == ("desk-2", "desk-2", 5000, 3600.0, 1 << 20)
    assert (Settings().namespace, Settings().bus_max_log, Settings().bus_max_age, Settings().bus_max_bytes) == ("coinwire", 50_000, 0, 0)
    # the former name is still read, from the environment and from a file; the new one wins over it
    assert load_settings(env={"COINWIRE_BUS_NAMESPACE": "old-1"}).namespace == "old-1"
    assert load_settings(env={"COINWIRE_BUS_NAMESPACE": "old-1", "COINWIRE_NAMESPACE": "new-1"}).namespace == "new-1"
    (tmp_path / "c.toml").write_text('bus_namespace = "from-file"\n')
    assert load_settings(tmp_path / "c.toml", env={}).namespace == "from-file"
    assert load_settings(tmp_path / "c.toml", env={"COINWIRE_NAMESPACE": "env-wins"}).namespace == "env-wins"
    with pytest.raises(ConfigError, match="namespace"):
        load_settings(env={"COINWIRE_NAMESPACE": "a.b"})  # one subject token: a dot would split it
    with pytest.raises(ConfigError, match="namespace"):
        load_settings(env={"COINWIRE_BUS_NAMESPACE": "a.b"})
    for key, value in (("COINWIRE_BUS_MAX_AGE", "-1"), ("COINWIRE_BUS_MAX_BYTES", "-5")):
        with pytest.raises(ConfigError, match="bus_max_age"):
            load_settings(env={key: value})
    with pytest.raises(ConfigError, match="bus_max_log"):
        load_settings(env={"COINWIRE_BUS_MAX_LOG": "0"})


async def test_the_platform_builds_its_bus_from_the_settings(tmp_path: Path) -> None:
    from coinwire.app import Platform
    from coinwire.bus import MemoryBus
    from coinwire.messages import OrderUpdate
    from tests.events import order_view

    platform = Platform(load_settings(overrides={"data_dir": str(tmp_path), "bus_namespace": "desk-2", "bus_max_log": 3}, env={}))
    bus = platform.bus
    assert isinstance(bus, MemoryBus) and bus.namespace == "desk-2"
    for n in range(5):
        await bus.publish("order.1.demo.usdt.btc", OrderUpdate(order_view(id=n)))
    assert [seq for seq, _, _ in await bus.replay(">")] == [3, 4, 5]  # it keeps bus_max_log of them


def test_scheduler_settings_default_env_and_bounds() -> None:
    """record_rates (the system `rates` schedule) and schedule_ticks_kept_days (housekeeping's retention): read, overridden, checked."""
    defaults = load_settings(env={})
    assert (defaults.record_rates, defaults.schedule_ticks_kept_days) == (True, 30.0)
    changed = load_settings(env={"COINWIRE_RECORD_RATES": "false", "COINWIRE_SCHEDULE_TICKS_KEPT_DAYS": "7"})
    assert (changed.record_rates, changed.schedule_ticks_kept_days) == (False, 7.0)
    for days in ("0", "4000"):
        with pytest.raises(ConfigError, match="schedule_ticks_kept_days"):
            load_settings(env={"COINWIRE_SCHEDULE_TICKS_KEPT_DAYS": days})


def test_signal_providers_default_to_tradingview_and_generic_and_are_checked(tmp_path: Path) -> None:
    assert load_settings(env={}).signal_providers == ["tradingview", "generic"]
    assert load_settings(env={"COINWIRE_SIGNAL_PROVIDERS": "tradingview, news"}).signal_providers == ["tradingview", "news"]
    path = tmp_path / "c.toml"
    for bad in ('["News"]', '["a/b"]', '["news", "news"]'):
        path.write_text(f"signal_providers = {bad}\n")
        with pytest.raises(ConfigError, match="signal_providers"):
            load_settings(path, env={})

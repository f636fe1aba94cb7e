"""The [market_data] section of the configuration: strict, with problems named."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinwire.config import ConfigError, load_settings


def load(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    return load_settings(path, env=env or {})


def test_defaults_need_nothing(tmp_path: Path) -> None:
    settings = load_settings(env={})
    md = settings.market_data
    assert md.tickers == [] and md.fx_source == "" and md.coin_source == "" and md.pegs["USDT"] == "USD"


def test_a_full_section(tmp_path: Path) -> None:
    settings = load(tmp_path, """
[market_data]
fx_source = "openexchangerates"
coin_source = "coingecko"
top = 250
pegs = { USDT = "USD" }
[[market_data.tickers]]
exchange = "binance"
quotes = ["USDT", "EUR"]
[[market_data.tickers]]
exchange = "kraken"
symbols = ["BTC/EUR"]
websocket = false
""", {"COINWIRE_OPENEXCHANGERATES_APP_ID": "abc"})
    md = settings.market_data  # type: ignore[attr-defined]
    assert [t.exchange for t in md.tickers] == ["binance", "kraken"] and md.tickers[0].symbols == ["*"]
    assert md.top == 250 and md.pegs == {"USDT": "USD"}


@pytest.mark.parametrize(("toml", "message"), [
    ('[market_data]\nfx_source = "yahoo"', "fx_source"),
    ('[market_data]\ncoin_source = "coinmarketcap"', "COINWIRE_COINMARKETCAP_API_KEY"),
    ('[market_data]\nfx_source = "openexchangerates"\nfx_key_env = "MY_OXR"', "MY_OXR"),
    ('[market_data]\ntop = 0', "top"),
    ('[market_data]\npegs = { usdt = "USD" }', "pegs"),
    ('[[market_data.tickers]]\nexchange = "Binance"', "lowercase"),
    ('[[market_data.tickers]]\nexchange = "b"\nsymbols = ["*", "BTC/USDT"]', "symbols"),
    ('[[market_data.tickers]]\nexchange = "b"\n[[market_data.tickers]]\nexchange = "b"', "one streamer per exchange"),
    ('[market_data]\nfx_sorce = "ecb"', "fx_sorce"),
])
def test_problems_are_named(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, toml)


def test_every_ccxt_exchange_gets_a_ticker_streamer_unless_one_is_configured() -> None:
    from coinwire.config import load_settings
    from coinwire.services.market_data import ticker_configs

    mirrored = {"name": "bn", "feed": "ccxt", "ccxt_id": "binance", "symbols": ["BTC/USDT"], "ccxt_urls": {"api.public": "http://127.0.0.1:1/api/v3"}}
    settings = load_settings(env={}, overrides={"exchanges": [{"name": "demo"}, mirrored]})
    (implied,) = ticker_configs(settings.market_data, settings.exchanges)  # demo publishes its own tickers
    assert (implied.exchange, implied.ccxt_id, implied.symbols, implied.urls) == ("bn", "binance", ["BTC/USDT"], mirrored["ccxt_urls"])
    named = load_settings(env={}, overrides={"exchanges": [mirrored], "market_data": {"tickers": [{"exchange": "bn", "quotes": ["USDT"]}]}})
    assert [(t.exchange, t.quotes) for t in ticker_configs(named.market_data, named.exchanges)] == [("bn", ["USDT"])]

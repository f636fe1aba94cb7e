"""The `[market_data]` configuration: ticker streamers, FX and coin sources, pegs (strict msgspec structs).

```toml
[market_data]
fx_source = "ecb"                      # "" (none) | ecb | openexchangerates (key from fx_key_env)
coin_source = "coingecko"              # "" (none) | coingecko | coinmarketcap (key from coin_key_env)
top = 100                              # coins of the top-N list
pegs = { USDT = "USD", USDC = "USD" }  # stablecoins convert 1:1 (set {} to price them only by tickers)

[[market_data.tickers]]                # one streamer per entry: CCXT watch_tickers, polling while it fails
exchange = "binance"
symbols = ["*"]                        # every spot market; or ["BTC/USDT", ...]
quotes = ["USDT", "EUR"]               # with "*": only these quote currencies
```

API keys are never in the file: `fx_key_env` / `coin_key_env` name environment variables
(default `COINWIRE_OPENEXCHANGERATES_APP_ID`, `COINWIRE_COINMARKETCAP_API_KEY`,
`COINWIRE_COINGECKO_API_KEY`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["MarketDataConfig", "TickerConfig", "check_market_data", "DEFAULT_PEGS"]

DEFAULT_PEGS = {"USDT": "USD", "USDC": "USD", "FDUSD": "USD", "TUSD": "USD", "DAI": "USD", "BUSD": "USD"}
FX_SOURCES = ("", "ecb", "openexchangerates")
COIN_SOURCES = ("", "coingecko", "coinmarketcap")
DEFAULT_KEY_ENV = {
    "openexchangerates": "COINWIRE_OPENEXCHANGERATES_APP_ID",
    "coinmarketcap": "COINWIRE_COINMARKETCAP_API_KEY",
    "coingecko": "COINWIRE_COINGECKO_API_KEY",
}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CODE = re.compile(r"[A-Z0-9]{2,12}")


class TickerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ticker streamer: an exchange's prices through CCXT (public data, no keys)."""

    exchange: str
    ccxt_id: str = ""  # default: `exchange`
    symbols: list[str] = msgspec.field(default_factory=lambda: ["*"])  # ["*"] = every spot market
    quotes: list[str] = msgspec.field(default_factory=list)
    poll_interval: float = 10.0  # seconds between fetch_tickers while the WebSocket is unavailable
    websocket: bool = True
    timeout: float = 10.0
    urls: dict[str, str] = msgspec.field(default_factory=dict)  # as ExchangeConfig.ccxt_urls
    options: dict[str, Any] = msgspec.field(default_factory=dict)  # as ExchangeConfig.ccxt_options


class MarketDataConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tickers: list[TickerConfig] = msgspec.field(default_factory=list)
    ticker_max_age: float = 3600.0  # seconds: older prices are not used by convert
    fx_source: str = ""
    fx_url: str = ""  # default: the source's public URL
    fx_key_env: str = ""
    coin_source: str = ""
    coin_url: str = ""
    coin_key_env: str = ""
    top: int = 100
    refresh_interval: float = 3600.0  # seconds between reference-data fetches
    retry_interval: float = 300.0  # seconds before asking a failed source again
    pegs: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_PEGS))

    def key_env(self, source: str, configured: str) -> str:
        return configured or DEFAULT_KEY_ENV.get(source, "")


def check_market_data(cfg: MarketDataConfig, env: Mapping[str, str]) -> list[str]:
    """Every problem of the section, as sentences (empty: usable)."""
    problems: list[str] = []
    if cfg.fx_source not in FX_SOURCES:
        problems.append(f"market_data.fx_source must be one of {FX_SOURCES[1:]} or empty, got {cfg.fx_source!r}")
    if cfg.coin_source not in COIN_SOURCES:
        problems.append(f"market_data.coin_source must be one of {COIN_SOURCES[1:]} or empty, got {cfg.coin_source!r}")
    for source, configured in (("openexchangerates", cfg.fx_key_env), ("coinmarketcap", cfg.coin_key_env)):
        if source in (cfg.fx_source, cfg.coin_source) and not env.get(cfg.key_env(source, configured)):
            problems.append(f"market_data: {source} needs a key in the environment variable {cfg.key_env(source, configured)}")
    if not 1 <= cfg.top <= 5000:
        problems.append(f"market_data.top must be between 1 and 5000, got {cfg.top}")
    if cfg.refresh_interval <= 0 or cfg.retry_interval <= 0 or cfg.ticker_max_age <= 0:
        problems.append("market_data: refresh_interval, retry_interval and ticker_max_age must be > 0 seconds")
    for coin, fiat in cfg.pegs.items():
        if not _CODE.fullmatch(coin) or not _CODE.fullmatch(fiat):
            problems.append(f"market_data.pegs: {coin!r} = {fiat!r} must be upper-case currency codes")
    names = [t.exchange for t in cfg.tickers]
    if len(set(names)) != len(names):
        problems.append(f"market_data.tickers: one streamer per exchange, got {names}")
    for t in cfg.tickers:
        if not _NAME.fullmatch(t.exchange):
            problems.append(f"market_data.tickers: exchange {t.exchange!r} must be lowercase letters, digits, '_' or '-'")
        if t.poll_interval <= 0 or t.timeout <= 0:
            problems.append(f"market_data.tickers[{t.exchange}]: poll_interval and timeout must be > 0 seconds")
        if not t.symbols or ("*" in t.symbols and len(t.symbols) > 1):
            problems.append(f"market_data.tickers[{t.exchange}]: symbols is [\"*\"] or a list of symbols")
    return problems

"""The market-data role of one process: ticker streamers, latest prices, reference data, and `convert`.

Built from `[market_data]` (coinwire.config.market_data) by the composition root. `convert`
gathers every rate it can trust into `core.conversion` edges: the latest ticker of every
exchange (no older than `ticker_max_age`), the FX source's rates, the coin source's USD
prices and the configured pegs (USDT = USD), and converts along the best route.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import structlog

from coinwire.bus.base import Bus
from coinwire.cache.base import Cache
from coinwire.config import ExchangeConfig
from coinwire.config.market_data import MarketDataConfig, TickerConfig
from coinwire.core.conversion import Conversion, Rate, best_route, convert
from coinwire.core.errors import InvalidInput
from coinwire.core.numbers import parse_decimal
from coinwire.feeds.ccxt_tickers import TickerStreamer
from coinwire.refdata.repository import RefDataRepository
from coinwire.refdata.service import RefDataService
from coinwire.refdata.sources import CoinGecko, CoinMarketCap, CoinSource, EcbRates, FxSource, OpenExchangeRates
from coinwire.services.breakers import Breakers
from coinwire.services.tickers import TickerReader, TickerService
from coinwire.store import Store

__all__ = ["MarketData", "build_streamer", "build_refdata", "conversion_view", "ticker_configs"]

log = structlog.get_logger("coinwire.market_data")

_NS = 1_000_000_000
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def build_streamer(cfg: TickerConfig, breakers: Breakers | None = None) -> TickerStreamer:
    """A ticker streamer; its REST calls pass the exchange's `feed:<exchange>` breaker of `breakers`."""
    return TickerStreamer(
        cfg.exchange, cfg.ccxt_id or cfg.exchange, None if cfg.symbols == ["*"] else cfg.symbols, quotes=cfg.quotes,
        poll_interval=cfg.poll_interval, websocket=cfg.websocket, urls=cfg.urls, options=cfg.options, timeout=cfg.timeout,
        breaker=breakers.get(f"feed:{cfg.exchange}") if breakers is not None else None,
    )


def ticker_configs(market: MarketDataConfig, exchanges: Sequence[ExchangeConfig]) -> list[TickerConfig]:
    """The configured streamers, plus one per exchange mirrored through CCXT that none names (its symbols).

    Demo and replay feeds publish ticker subjects themselves; a CCXT feed mirrors books and
    trades only, so without a streamer its exchange would have no prices.
    """
    named = {t.exchange for t in market.tickers}
    implied = [
        TickerConfig(exchange=e.name, ccxt_id=e.ccxt_id, symbols=list(e.symbols) or ["*"], websocket=e.ccxt_websocket,
                     timeout=e.ccxt_timeout, urls=dict(e.ccxt_urls), options=dict(e.ccxt_options))
        for e in exchanges if e.feed == "ccxt" and e.name not in named
    ]
    return [*market.tickers, *implied]


def build_refdata(cfg: MarketDataConfig, store: Store, env: Mapping[str, str] | None = None,
                  breakers: Breakers | None = None) -> RefDataService | None:
    """The reference-data service the section asks for (None when neither source is configured); its sources pass
    their `refdata:<source>` breakers of `breakers`."""
    env = os.environ if env is None else env
    fx: FxSource | None = None
    coins: CoinSource | None = None
    if cfg.fx_source == "ecb":
        fx = EcbRates(cfg.fx_url) if cfg.fx_url else EcbRates()
    elif cfg.fx_source == "openexchangerates":
        key = env.get(cfg.key_env("openexchangerates", cfg.fx_key_env), "")
        fx = OpenExchangeRates(key, cfg.fx_url) if cfg.fx_url else OpenExchangeRates(key)
    if cfg.coin_source == "coingecko":
        key = env.get(cfg.key_env("coingecko", cfg.coin_key_env), "")
        coins = CoinGecko(cfg.coin_url, key) if cfg.coin_url else CoinGecko(api_key=key)
    elif cfg.coin_source == "coinmarketcap":
        key = env.get(cfg.key_env("coinmarketcap", cfg.coin_key_env), "")
        coins = CoinMarketCap(key, cfg.coin_url) if cfg.coin_url else CoinMarketCap(key)
    if fx is None and coins is None:
        return None
    return RefDataService(RefDataRepository(store), fx=fx, coins=coins, top=cfg.top, interval=cfg.refresh_interval,
                          retry=cfg.retry_interval, breakers=breakers)


class MarketData:
    """Latest prices (always), ticker streamers and reference data (when configured), and conversion."""

    def __init__(self, cfg: MarketDataConfig, bus: Bus, cache: Cache, store: Store, *,
                 clock: Callable[[], int] = time.time_ns, refdata: RefDataService | None = None,
                 streamers: list[TickerStreamer] | None = None, breakers: Breakers | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        self.tickers = TickerService(bus, cache, clock=clock)
        self.reader = TickerReader(cache, clock)
        self.refdata = refdata if refdata is not None else build_refdata(cfg, store, breakers=breakers)
        self.streamers = streamers if streamers is not None else [build_streamer(t, breakers) for t in cfg.tickers]
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, sources: bool = True) -> None:
        """Follow the latest prices; with `sources` also fetch reference data and run the ticker streamers (the marketdata
        role: a process apart from it reads what that one publishes and stores)."""
        await self.tickers.start()
        if not sources:
            return
        if self.refdata is not None:
            await self.refdata.start()
        for streamer in self.streamers:
            self._tasks.append(asyncio.create_task(self._run(streamer), name=f"tickers-{streamer.exchange}"))

    async def close(self) -> None:
        for streamer in self.streamers:
            await streamer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.refdata is not None:
            await self.refdata.close()
        await self.tickers.close()

    async def _run(self, streamer: TickerStreamer) -> None:
        try:
            await streamer.run(self.bus.publish)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ticker streamer stopped", exchange=streamer.exchange)

    def streamer_status(self) -> list[dict[str, Any]]:
        return [
            {"exchange": s.exchange, "mode": s.mode, "published": s.published, "rejected": s.rejected,
             "websocket_failures": s.ws_failures, "error": None if s.error is None else s.error.to_dict()}
            for s in self.streamers
        ]

    async def rates(self) -> list[Rate]:
        """Every rate convert may use now."""
        now = self.clock()
        oldest = now - int(self.cfg.ticker_max_age * _NS)
        out = [
            Rate(*view.symbol.split("/"), view.price, f"ticker:{view.exchange}", view.ts)  # type: ignore[call-arg, arg-type]  # BASE/QUOTE
            for view in await self.reader.tickers()
            if view.ts >= oldest
        ]
        refdata = self.refdata
        if refdata is not None and refdata.fx is not None:
            fx = refdata.fx
            out += [Rate(fx.base, quote, rate, f"fx:{fx.source}", fx.ts) for quote, rate in fx.rates.items()]
        if refdata is not None:
            out += [Rate(c.symbol, "USD", c.price, f"coins:{c.source}", c.ts) for c in refdata.coins]
        out += [Rate(coin, fiat, Decimal(1), "peg", now) for coin, fiat in self.cfg.pegs.items()]  # always true
        return out

    def display_currencies(self) -> set[str]:
        """The currencies values may be shown in: USD (what values are computed in), the pegs' fiats, and every
        currency the FX source knows. A user's display currency must be one of them (auth.preferences)."""
        known = {"USD", *self.cfg.pegs.values()}
        refdata = self.refdata
        if refdata is not None and refdata.fx is not None:
            known |= {refdata.fx.base, *refdata.fx.rates}
        return known

    async def convert(self, amount: object, source: object, target: object) -> Conversion:
        """`amount` of `source` in `target` along the best route; InvalidInput / NotFound with stable codes."""
        value = _amount(amount)
        src, dst = _currency(source, "from"), _currency(target, "to")
        return convert(value, best_route(await self.rates(), src, dst))


def _amount(value: object) -> Decimal:
    """ASCII decimal text (core.numbers), its exponent bounded: `1e999999` is `number_out_of_range`, not an overflow."""
    try:
        amount = parse_decimal(value, "amount")
    except InvalidInput as exc:
        if exc.code != "invalid_number":
            raise
        raise InvalidInput("invalid_amount", f"amount must be a decimal number, got {str(value)[:40]!r}") from None
    if amount < 0:
        raise InvalidInput("invalid_amount", f"amount must be a finite, non-negative number, got {value!r}")
    return amount


def _currency(value: object, field: str) -> str:
    code = str(value or "").strip().upper()
    if not 2 <= len(code) <= 16 or not set(code) <= _CODE_CHARS:
        raise InvalidInput("invalid_currency", f"`{field}` must be a currency code like BTC or EUR, got {value!r}", field=field)
    return code


def conversion_view(conversion: Conversion, source: str, target: str, now_ns: int) -> dict[str, Any]:
    """JSON shape of a conversion: decimal strings, the route step by step with each rate's age."""
    return {
        "amount": str(conversion.amount),
        "from": source.upper(),
        "to": target.upper(),
        "result": str(conversion.result),
        "rate": str(conversion.rate),
        "age": None if not conversion.route else round(max(0.0, (now_ns - conversion.ts) / _NS), 3),
        "route": [
            {"from": step.base, "to": step.quote, "rate": str(step.rate), "source": step.source,
             "time": step.ts / _NS, "age": round(max(0.0, (now_ns - step.ts) / _NS), 3)}
            for step in conversion.route
        ],
    }

"""`coinwire run -m paper|live`: a strategy trading through an embedded gateway, on a recording or the configured feeds.

With `--data CAPTURE`, the session is a replay: one paper exchange named after the run's
balance, fed the recorded Binance capture (as fast as possible unless `--speed` says
otherwise), funded with exactly the run's balances; the run ends with the recording. Without
it, the configured exchanges trade (the seeded demo market by default) until `--end` in
market time or Ctrl-C. Either way the gateway is the real one, with its own store in the
run's folder, so the session's orders, fills and wallet lines are there to inspect after.
Balances on several configured exchanges (`--balance demo:USDT=1000 --balance demo2:BTC=0.1`)
give the run one wallet set over all of them (see the `cross_exchange` strategy).

`-m live` trades a configured live exchange (the account's real money, through its venue);
the run's mode must be the exchange's mode. Its gateway is embedded too: do not run a live
session on an account that a running server also trades (both would allocate the same
money); start live runs on the server instead (`PUT /runnables/{name}/start`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from coinwire.config import ExchangeConfig, Settings
from coinwire.core.errors import DomainError, InvalidInput
from coinwire.engine.paper import RECORDING_ENDED, PaperRuntime
from coinwire.engine.runs import RunOutcome
from coinwire.engine.strategy import params_json, parse_params
from coinwire.logs import configure_logging
from coinwire.strategies.registry import load_strategy, strategy_name

__all__ = ["run_paper_session"]


def run_paper_session(settings: Settings, strategy_ref: str, raw_params: dict[str, Any], funds: dict[str, dict[str, str]],
                      end: int | None, data: list[str] | None, speed: float | None,
                      mode: str = "paper", warmup: str = "best_effort",
                      rules: Sequence[Mapping[str, Any]] = ()) -> tuple[RunOutcome, PaperRuntime]:
    """Run to the end (recording over, `end`, Ctrl-C or a failure) and return the outcome; bad input raises first.

    `funds`: exchange -> currency -> amount, as `engine.runs.parse_funds` reads `--balance` (the first exchange is the run's default).
    """
    cls = load_strategy(strategy_ref)
    params = parse_params(cls, raw_params)
    if mode == "live" and data:
        raise InvalidInput("invalid_params", "--data replays a recording on a paper exchange; a live session trades the live exchange")
    run_id = f"{'lv' if mode == 'live' else 'pp'}-{secrets.token_hex(5)[:9]}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    folder = settings.data_path / "runs" / run_id
    # a session is a whole platform of its own on its own store: every role, whatever COINWIRE_ROLES says for `serve`
    changes: dict[str, Any] = {"store_url": f"sqlite:///{folder / 'gateway.db'}", "roles": ["all"]}
    if data:
        if len(funds) != 1:
            raise InvalidInput("invalid_balance", f"--data replays one recording on one exchange; the balances name {', '.join(funds)}")
        ((exchange, balances),) = funds.items()
        changes["exchanges"] = [_replay_exchange(exchange, balances, data, speed)]
    session = msgspec.structs.replace(settings, **changes)
    for exchange, balances in funds.items():
        if exchange not in {e.name for e in session.exchanges}:
            known = ", ".join(e.name for e in session.exchanges)
            raise InvalidInput("unknown_exchange", f"no exchange {exchange!r} is configured (exchanges: {known}); or pass --data CAPTURE")
        cfg = next(e for e in session.exchanges if e.name == exchange)
        if cfg.mode != mode:
            raise InvalidInput("mode_mismatch", f"exchange {exchange} is a {cfg.mode} exchange; a {mode} session cannot trade on it")
        if mode == "paper":
            _check_funds(cfg, balances)
    folder.mkdir(parents=True, exist_ok=True)
    configure_logging("warning", sys.stderr)  # stdout carries the report
    runtime = asyncio.run(_session(session, run_id, cls, params, funds, end, replay=bool(data), warmup=warmup, rules=rules))
    from coinwire.services.paper_runs import finish_paper

    return finish_paper(runtime, strategy_name(cls), params_json(params)), runtime


def _check_funds(cfg: ExchangeConfig, balances: dict[str, str]) -> None:
    """The session's gateway starts empty and credits the exchange's paper funds: the run cannot take more."""
    for currency, amount in balances.items():
        have = Decimal(cfg.paper_funds.get(currency, "0"))
        if Decimal(amount) > have:
            raise DomainError("insufficient_funds", f"{amount} {currency} asked for, but exchange {cfg.name} is credited {have} "
                              f"{currency} (its paper_funds)", currency=currency)


def _replay_exchange(name: str, balances: dict[str, str], data: list[str], speed: float | None) -> ExchangeConfig:
    from coinwire.history.formats import capture_markets

    captures = capture_markets(Path(item) for item in data)
    if len(captures) != 1 or captures[0][:2] != ("BTC/USDT", "binance"):
        found = ", ".join(f"{s} ({e})" for s, e, _ in captures) or "no raw capture"
        raise InvalidInput("invalid_data", f"a paper replay takes one Binance spot BTCUSDT capture; the data holds {found}")
    return ExchangeConfig(name=name, feed="replay", replay_paths=[str(p) for p in captures[0][2]], replay_speed=speed,
                          replay_loop=False, paper_funds=dict(balances))


async def _session(settings: Settings, run_id: str, cls: Any, params: Any, funds: dict[str, dict[str, str]],
                   end: int | None, replay: bool, warmup: str = "best_effort",
                   rules: Sequence[Mapping[str, Any]] = ()) -> PaperRuntime:
    from coinwire.app import Platform

    platform = Platform(settings)
    await platform.start(feeds=False)
    try:
        runtime = PaperRuntime(run_id, platform.gateway, funds, end=end, history=platform.warm_sources(), warmup=warmup,
                               rules=rules)
        await runtime.open(cls, params)
        feeds = platform.start_feeds()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, runtime.request_stop, "interrupted (Ctrl-C)")
        try:
            if replay:
                ended: asyncio.Future[Any] = asyncio.gather(*feeds)
                await asyncio.wait([ended, asyncio.ensure_future(runtime.done.wait())], return_when=asyncio.FIRST_COMPLETED)
                await platform.gateway.caught_up(give_up=runtime.done)
                if not runtime.done.is_set():
                    runtime.request_stop(RECORDING_ENDED)
            await runtime.run()
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        return runtime
    finally:
        with contextlib.suppress(Exception):  # logged by stop, which closes the gateway and the store whatever failed
            await platform.stop()

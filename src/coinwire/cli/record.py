"""`coinwire record EXCHANGE [SYMBOL...] --to DIR`: record a configured exchange's feed as raw capture files for L2 backtests.

The exchange's feed (demo or CCXT, as `coinwire serve` would run it) publishes on an in-process
bus and services.capture_recorder writes books, trades and tickers into DIR, one file per market,
until `--for` has passed, Ctrl-C or SIGTERM: then the files are flushed and closed. Exit codes:
0 recorded, 1 the feed failed, 2 bad input, 3 the disk filled or writing failed (the files end on a whole record).
"""

from __future__ import annotations

import asyncio
import errno
import json
import signal
from pathlib import Path
from typing import Any

import msgspec
import typer
from rich.markup import escape

from coinwire.cli.common import err, root_settings
from coinwire.config import ConfigError, Settings
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.core.rollup import parse_timeframe

__all__ = ["record_command", "parse_duration"]

EXIT_FEED_FAILED, EXIT_BAD_INPUT, EXIT_DISK_FULL = 1, 2, 3
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no room: the disk, a quota, a file size limit


def parse_duration(text: str) -> float:
    """`120`, `90s`, `2m`, `1h`, `1d` -> seconds (core.rollup's timeframe grammar, or plain seconds)."""
    raw = text.strip()
    try:
        seconds = float(raw) if raw.replace(".", "", 1).isdigit() else parse_timeframe(raw).utc_seconds
    except (InvalidInput, ValueError):
        seconds = None
    if not seconds or seconds <= 0:
        raise InvalidInput("invalid_duration", f"--for must be seconds or a duration like 90s, 2m, 1h, 1d; got {text!r}")
    return float(seconds)


def _exchange(settings: Settings, name: str, symbols: list[str]) -> Any:
    """The exchange's configuration, its symbols replaced by those given; refused when it cannot be recorded."""
    from coinwire.core.symbols import normalize_symbol

    cfg = next((c for c in settings.exchanges if c.name == name), None)
    if cfg is None:
        configured = ", ".join(c.name for c in settings.exchanges) or "none"
        raise InvalidInput("unknown_exchange", f"no exchange {name!r} is configured (configured: {configured})", exchange=name)
    if cfg.feed not in ("demo", "ccxt"):
        raise InvalidInput("unsupported_feed", f"exchange {name} has a {cfg.feed} feed: only demo and ccxt feeds are recorded "
                           "(a replay is a recording already)", exchange=name)
    wanted = [normalize_symbol(s) for s in symbols] or list(cfg.symbols)
    perpetual = [s for s in wanted if ":" in s]
    if perpetual:
        raise InvalidInput("unsupported_market", f"{', '.join(perpetual)}: the capture format names a market by base and quote "
                           "only, so perpetuals are not recorded", symbols=perpetual)
    return msgspec.structs.replace(cfg, symbols=wanted)


async def _record(cfg: Any, folder: Path, seconds: float | None) -> tuple[list[dict[str, Any]], str | None, OSError | None]:
    """Run the feed into a recorder until the time is up, a signal, the feed's end or a full disk."""
    from coinwire.app import build_feed
    from coinwire.bus.memory import MemoryBus
    from coinwire.services.capture_recorder import CaptureRecorder

    try:
        feed = build_feed(cfg)
    except ConfigError as exc:  # what only building the feed finds (a demo_epoch too old to catch up from)
        raise InvalidInput("invalid_config", str(exc)) from None
    bus = MemoryBus()
    await bus.start()
    symbols = cfg.symbols or [i.symbol for i in feed.instruments() if ":" not in i.symbol]
    recorder = CaptureRecorder(bus, folder, cfg.name, symbols)  # the feed publishes each book first
    await recorder.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(feed.run(bus.publish), name="record-feed")
    waits = [running, asyncio.create_task(stop.wait()), asyncio.create_task(recorder.stopped.wait())]
    feed_error: str | None = None
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await feed.close()
        for task in waits:
            task.cancel()
        results = await asyncio.gather(*waits, return_exceptions=True)
        if isinstance(results[0], Exception) and not isinstance(results[0], asyncio.CancelledError):
            feed_error = f"{type(results[0]).__name__}: {results[0]}"
        await recorder.close()
        await bus.close()
    return recorder.summary(), feed_error, recorder.failure


def record_command(
    ctx: typer.Context,
    exchange: str = typer.Argument(..., help="A configured exchange's name (demo by default)."),
    symbols: list[str] = typer.Argument(None, help="Symbols like BTC/USDT; default: the exchange's configured ones (demo: all)."),
    to: Path = typer.Option(..., "--to", help="Folder for the capture files (created if missing)."),
    duration: str | None = typer.Option(None, "--for", help="How long: 120, 90s, 2m, 1h, 1d (default: until Ctrl-C or SIGTERM)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Record a feed's book, trades and tickers as raw capture files; `coinwire run --data DIR/FILE.gz` backtests on them."""
    settings = root_settings(ctx)  # a bad configuration: its message, exit 2
    try:
        seconds = parse_duration(duration) if duration is not None else None
        cfg = _exchange(settings, exchange, symbols or [])
        if to.exists() and not to.is_dir():
            raise InvalidInput("invalid_folder", f"--to {to}: not a folder", path=str(to))
        summary, feed_error, failure = asyncio.run(_record(cfg, to, seconds))
    except CoinwireError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)} [dim]({exc.code})[/dim]")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except OSError as exc:  # the folder cannot be made or written
        err.print(f"[red]error:[/red] {escape(str(exc))} [dim](invalid_folder)[/dim]")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    code = None if failure is None else "disk_full" if failure.errno in _DISK_FULL else "write_failed"
    if as_json:
        typer.echo(json.dumps({"files": summary, "error": code or ("feed_failed" if feed_error is not None else None)}))
    else:
        for item in summary:
            err.print(f"{escape(item['path'])}: {item['lines']:,} records, {item['bytes']:,} bytes ({escape(item['symbol'])})")
    if failure is not None:
        err.print(f"[red]error:[/red] the recording stopped, writing failed: {escape(str(failure))}; every file ends on a whole "
                  f"record [dim]({code})[/dim]")
        raise typer.Exit(EXIT_DISK_FULL)
    if feed_error is not None:
        err.print(f"[red]error:[/red] the feed stopped: {escape(feed_error)}; what came before is recorded [dim](feed_failed)[/dim]")
        raise typer.Exit(EXIT_FEED_FAILED)

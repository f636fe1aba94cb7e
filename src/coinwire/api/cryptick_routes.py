"""The seed's strategy API under `/cryptick/v1` (its appendix C), mapped onto the runs routes' access and coinwire's runs.

    GET  /cryptick/v1/runnables                        runnable names: the seed's (`HodlStrategy`...), then the other built-ins'
    GET  /cryptick/v1/runs                             `{run_id: {mode, run_id, running, strategy}}` of the caller's runs
    GET  /cryptick/v1/runs/{id}                        that record, with the run's details (status, report, progress)
    GET  /cryptick/v1/runs/{id}/components             its UI components (spec + data)
    GET  /cryptick/v1/runs/{id}/messages               its whole hub in the seed's mhubrpc format: one list, streamed (X-Total-Count)
    PUT  /cryptick/v1/runnables/{name}/start           `{mode, start, end, balances: [{exchange, base, balance}]}`: the run id
    PUT  /cryptick/v1/run/{id}/stop                    stop it (singular `run`, as the seed): its record
    PUT  /cryptick/v1/runs/{id}/components/{cid}       the JSON body itself is the input the strategy gets

A thin adapter: ownership, the start's checks and the messages query are the runs routes' (`RunAccess`),
names resolve in `strategies/registry.py`, the message format is `engine/mhubrpc.py`. Only the
shapes are the seed's: mode `backtesting` where coinwire says `backtest`, `running` instead of a
status, the seed's balances list, the bare run id, and errors `{"error": "message"}` with a 4xx
(the stable code in the `X-Error-Code` header, as the guard's refusals on these paths).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from coinwire.api.json_input import decode_json
from coinwire.api.rest import json_response
from coinwire.api.runs_routes import RunAccess, json_body, run_endpoint
from coinwire.api.seed_errors import seed_error_response
from coinwire.core.errors import InvalidInput
from coinwire.strategies.registry import SEED_NAMES, builtin_name, builtin_strategies, seed_name

__all__ = ["PREFIX", "add_cryptick_routes", "seed_run", "native_start_body"]

PREFIX = "/cryptick/v1"
_SEED_MODES = {"backtest": "backtesting"}  # coinwire's mode -> the seed's, where they differ
_NATIVE_MODES = {"backtest": "backtest", "backtesting": "backtest", "paper": "paper", "live": "live"}


def seed_run(run: dict[str, Any]) -> dict[str, Any]:
    """A run record in the seed's shape: `{mode, run_id, running, strategy}` (the seed's runnable name where it has one)."""
    mode = str(run.get("mode", ""))
    return {"mode": _SEED_MODES.get(mode, mode), "run_id": run["run_id"], "running": run.get("status") == "running",
            "strategy": seed_name(str(run.get("strategy", "")))}


def native_start_body(body: Any) -> dict[str, Any]:
    """The seed's start body as the runs routes' (`services/runs.py StartRequest`).

    `mode` `backtest` (or the seed's listing word `backtesting`), `paper` or `live`; `start` and `end` unix seconds;
    `balances` a list of `{exchange, base, balance}`. Coinwire's own fields (params, data, fee...) pass through as they are.
    """
    if not isinstance(body, dict):
        raise InvalidInput("invalid_params", "the start body must be a JSON object: {mode, start, end, balances}")
    out = dict(body)
    mode = out.get("mode", "backtest")
    if isinstance(mode, str):  # anything else is refused by the runs' own checks (after the length limits)
        out["mode"] = _NATIVE_MODES.get(mode, mode)
    balances = out.get("balances")
    if isinstance(balances, list) and all(isinstance(b, dict) for b in balances):
        out["balances"] = [_balance(b, i) for i, b in enumerate(balances)]
    elif balances is not None and not isinstance(balances, dict | list):
        raise InvalidInput("invalid_balance", "balances must be a list of {exchange, base, balance}")
    return out


def _balance(entry: dict[str, Any], index: int) -> str:
    """One seed balance `{exchange, base, balance}` as the runs' `exchange:CURRENCY=amount`."""
    extra = sorted(set(entry) - {"exchange", "base", "balance"})
    exchange, base, amount = entry.get("exchange"), entry.get("base"), entry.get("balance")
    if extra or not isinstance(exchange, str) or not isinstance(base, str) or not exchange or not base \
            or isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise InvalidInput("invalid_balance", f"balances[{index}] must be {{exchange, base, balance}}: two strings and a number, "
                           "and nothing else")
    return f"{exchange}:{base.upper()}={amount}"


def _json_list(pages: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    """One JSON list of the pages' items, a page a chunk (run in a worker thread by StreamingResponse: it reads files)."""
    encode = msgspec.json.Encoder().encode
    yield b"["
    first = True
    for page in pages:
        if page:
            yield (b"" if first else b",") + b",".join(encode(item) for item in page)
            first = False
    yield b"]"


def _answer(payload: Any, status: int) -> Response:
    return payload if isinstance(payload, Response) else json_response(payload, status)


def add_cryptick_routes(app: FastAPI, access: RunAccess) -> None:
    """Mount the seed's strategy API over the runs routes' `access` (the same owner checks, start checks and run store)."""
    manager = access.manager

    def route(method: str, path: str, handler: Callable[..., Awaitable[Any]]) -> None:
        app.add_api_route(PREFIX + path, run_endpoint(access, handler, PREFIX + path, 200, _answer, seed_error_response), methods=[method],
                          tags=["cryptick"], summary=handler.__name__)

    async def runnables(request: Request) -> Any:
        """Runnable strategies by name: the seed's names first (HodlStrategy, EchoStrategy, DemoStrategy, ComponentDemo,
        EfficientFrontier), then coinwire's other built-ins by theirs."""
        seeds = [name for name, builtin in SEED_NAMES.items() if builtin in builtin_strategies()]
        return seeds + sorted(set(builtin_strategies()) - set(SEED_NAMES.values()))

    async def start(request: Request, name: str) -> Any:
        """Start a run of `name` with the seed's body {mode, start, end, balances: [{exchange, base, balance}]}: answers the
        run id (a JSON string)."""
        started = await access.start(request, builtin_name(name), native_start_body(await json_body(request)))
        return started["run_id"]

    async def runs(request: Request) -> Any:
        """The caller's runs, keyed by run id: {mode, run_id, running, strategy}."""
        return {run["run_id"]: seed_run(run) for run in access.visible(request)}

    async def run(request: Request, run_id: str) -> Any:
        """One run: the seed's record and coinwire's details (status, report, progress while it runs)."""
        details = manager.get(run_id)
        return {**details, **seed_run(details)}

    async def components(request: Request, run_id: str) -> Any:
        """The run's UI components: spec and data rows."""
        return manager.store.components(run_id)

    async def messages(request: Request, run_id: str) -> Any:
        """All the messages of the run's hub, in order, in the seed's mhubrpc format ("returns all messages that went
        through the message hub during a run"): one JSON list, streamed a page at a time so that a long run is not held
        whole. `offset`, `limit` (none: all), `method`, `direction` narrow it; `format=native` gives coinwire's records.
        X-Total-Count says how many match; only when `limit` stops short, X-Next-Offset and a `Link: rel="next"` say where
        the rest starts."""
        query = access.message_query(request, default_format="mhubrpc", default_limit=None, max_limit=2**62)
        pages = await run_in_threadpool(manager.store.message_pages, run_id, query.offset, query.limit, query.method,
                                        query.direction)  # counted before the headers: a read of the whole file
        following = min(pages.total, query.offset + query.limit) if query.limit is not None else pages.total
        headers = {"X-Total-Count": str(pages.total)}
        if following < pages.total:
            link = request.url.include_query_params(offset=following)
            headers |= {"X-Next-Offset": str(following), "Link": f'<{link.path}?{link.query}>; rel="next"'}
        return StreamingResponse(_json_list(query.render(page) for page in pages), media_type="application/json",
                                 headers=headers)

    async def stop(request: Request, run_id: str) -> Any:
        """Stop a running run; answers its record (running false). 409 when it is already done."""
        return seed_run(await manager.stop(run_id))

    async def component_input(request: Request, run_id: str, component_id: str) -> Any:
        """Send the JSON body, as it is, to a component of a running run: the strategy gets it as a `ui.input` message."""
        raw = await request.body()
        if not raw.strip():
            raise InvalidInput("invalid_params", "the body must be the JSON value to send to the component")
        return manager.post_input(run_id, component_id, decode_json(raw, exact=False))

    route("GET", "/runnables", runnables)
    route("PUT", "/runnables/{name:path}/start", start)
    route("GET", "/runs", runs)
    route("GET", "/runs/{run_id}", run)
    route("GET", "/runs/{run_id}/components", components)
    route("GET", "/runs/{run_id}/messages", messages)
    route("PUT", "/run/{run_id}/stop", stop)
    route("PUT", "/runs/{run_id}/components/{component_id}", component_input)

"""The seed's mhubrpc rendering of a run's hub: calls, results paired to them, notifications; and pairing in real runs."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.hub import HubMessage, MessageHub
from coinwire.engine.mhubrpc import render, render_one
from coinwire.engine.runs import run_backtest
from coinwire.engine.strategy import Strategy
from coinwire.strategies.registry import load_strategy

H = 3600
T0 = 1_700_000_000 // H * H


def test_calls_results_errors_and_notifications_in_the_seeds_shape() -> None:
    hub = MessageHub()
    call = hub.record(1, "out", "venue.make_order", {"client_oid": "a-1", "side": "buy"})
    hub.record(2, "in", "market.candle", {"close": "100"})
    hub.record(3, "in", "venue.order", {"client_oid": "a-1", "status": "open"}, call)
    refused = hub.record(4, "out", "venue.make_order", {"client_oid": "a-2", "side": "sell"})
    hub.record(5, "in", "venue.order", {"client_oid": "a-2", "status": "rejected", "error": "insufficient funds"}, refused)
    assert render(m.to_dict() for m in hub) == [
        {"mhubrpc": "0.0.1", "method": "venue.make_order", "params": {"client_oid": "a-1", "side": "buy"}, "response_method": "1"},
        {"mhubrpc": "0.0.1", "method": "market.candle", "params": {"close": "100"}},
        {"mhubrpc": "0.0.1", "method": "1", "result": {"client_oid": "a-1", "status": "open"}},
        {"mhubrpc": "0.0.1", "method": "venue.make_order", "params": {"client_oid": "a-2", "side": "sell"}, "response_method": "4"},
        {"mhubrpc": "0.0.1", "method": "4", "error": {"message": "insufficient funds", "data": {
            "client_oid": "a-2", "status": "rejected", "error": "insufficient funds"}}},
    ]


def test_a_reply_must_answer_an_earlier_message_and_old_records_still_load() -> None:
    hub = MessageHub()
    with pytest.raises(ValueError):
        hub.record(1, "in", "venue.order", {}, 1)
    old = msgspec.json.decode(b'{"seq": 1, "ts": 5, "direction": "in", "method": "run.start", "params": {}}')
    message = HubMessage(**old)  # a run stored before replies were recorded
    assert message.reply_to is None and message.to_dict() == old
    assert render_one(message.to_dict()) == {"mhubrpc": "0.0.1", "method": "run.start", "params": {}}


@st.composite
def hub_traffic(draw: st.DrawFn) -> MessageHub:
    """A hub as a run fills it: calls out, notifications in, and answers in to calls not answered yet (any order)."""
    hub, open_calls = MessageHub(), []
    for step in range(draw(st.integers(0, 60))):
        kind = draw(st.sampled_from(["call", "note", "answer"]))
        if kind == "answer" and open_calls:
            seq = open_calls.pop(draw(st.integers(0, len(open_calls) - 1)))
            error = draw(st.sampled_from([None, "refused"]))
            hub.record(step, "in", "venue.order", {"status": "rejected" if error else "open", "error": error}, seq)
        elif kind == "call":
            open_calls.append(hub.record(step, "out", draw(st.sampled_from(["venue.make_order", "venue.cancel_order"])),
                                         {"n": step}))
        elif kind == "answer":  # no call open: a message out that nothing answers (a log line, a component)
            hub.record(step, "out", draw(st.sampled_from(["strategy.log", "ui.component", "venue.set_leverage"])), {"n": step})
        else:
            hub.record(step, "in", draw(st.sampled_from(["market.candle", "venue.fill", "ui.input"])), {"n": step})
    return hub


@given(hub_traffic())
@settings(max_examples=200, deadline=None)
def test_every_result_names_exactly_one_earlier_call(hub: MessageHub) -> None:
    rendered = render(m.to_dict() for m in hub)
    assert len(rendered) == len(hub) and all(r["mhubrpc"] == "0.0.1" for r in rendered)
    calls_so_far: list[str] = []
    answered: set[str] = set()
    for out in rendered:
        if "response_method" in out:
            calls_so_far.append(out["response_method"])
        elif "result" in out or "error" in out:
            assert calls_so_far.count(out["method"]) == 1  # exactly one earlier call has it
            assert out["method"] not in answered  # and it is answered once
            answered.add(out["method"])
        else:
            assert set(out) == {"mhubrpc", "method", "params"}
    assert len(set(calls_so_far)) == len(calls_so_far)
    assert set(calls_so_far) <= answered | {str(seq) for seq in _open(hub)}  # a call is answered, or still may be


def _open(hub: MessageHub) -> set[int]:
    """The seqs of venue calls no message answers (yet)."""
    answered = {m.reply_to for m in hub if m.reply_to is not None}
    return {m.seq for m in hub if m.direction == "out" and m.method.startswith("venue.") and m.seq not in answered}


def candles(closes: list[float]) -> Series:
    c = np.array(closes, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    return Series("BTC/USDT", "1h", T0 + H * np.arange(len(c)), o, np.maximum(o, c), np.minimum(o, c), c, np.full(len(c), 1e9))


def pairs(hub: MessageHub) -> list[tuple[str, str, dict[str, Any]]]:
    """(call method, answer method, answer params) of every answered call."""
    by_seq = {m.seq: m for m in hub}
    return [(by_seq[m.reply_to].method, m.method, m.params) for m in hub if m.reply_to is not None]


def test_a_backtests_orders_and_cancels_are_answered_by_the_venue_once() -> None:
    outcome, rt = run_backtest(load_strategy("hodl"), {"timeframe": "1h"}, [candles([100.0] * 5)],
                               BacktestConfig(exchange="binance", balances={"USDT": "1000"}, fee="0.001"))
    assert outcome.status == "finished", outcome.error
    answered = pairs(rt.hub)
    assert [(c, a, p["status"]) for c, a, p in answered] == [("venue.make_order", "venue.order", "filled")]
    # later updates of the same order answer nothing: they are notifications
    later = [m for m in rt.hub if m.method == "venue.fill"]
    assert later and all(m.reply_to is None for m in later)


class RestsThenCancels(Strategy):
    """A limit buy far below the market at the first candle, cancelled at the third; then one too big to pay for."""

    symbol = "BTC/USDT"
    timeframe = "1h"

    def on_start(self) -> None:
        self.seen = 0
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen == 1:
            self.ticket = self.buy(self.symbol, size="1", limit="50")
        elif self.seen == 3:
            self.cancel(self.ticket)
        elif self.seen == 4:
            self.buy(self.symbol, size="1000")


def test_a_cancel_is_answered_by_the_cancellation_and_a_refusal_is_an_error() -> None:
    outcome, rt = run_backtest(RestsThenCancels, {}, [candles([100.0] * 6)],
                               BacktestConfig(exchange="binance", balances={"USDT": "1000"}, fee="0.001"))
    assert outcome.status == "finished", outcome.error
    assert [(c, p["status"]) for c, _a, p in pairs(rt.hub)] == [("venue.make_order", "open"), ("venue.cancel_order", "cancelled"),
                                                                 ("venue.make_order", "rejected")]
    rendered = render(m.to_dict() for m in rt.hub)
    (refusal,) = [r for r in rendered if "error" in r]
    assert refusal["error"]["data"]["status"] == "rejected" and refusal["error"]["message"]

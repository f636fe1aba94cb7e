"""Outside signals end to end against one real server: a TradingView alert reaches a running paper strategy, and the same
signals, read back, replay in a backtest at their recorded times.

Two traders (ann, ben) each run `signal_trader` on paper, subscribed to `tradingview`; a viewer (val) was granted view
on ann's account. ann's alert (her `signals:tradingview` key in the body, as TradingView sends it; or signed with her
HMAC secret) reaches her run only: its hub shows `tradingview.alert` and the strategy buys what the alert says, while
ben's run hears nothing. Every refusal (bad key, a key without the scope, bad signature, unknown user or provider,
an oversized or malformed body) answers its stable code and reaches no hub; the viewer can get no credential that
posts, for ann or for herself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.core.external_trades import sign
from coinwire.core.outside_signals import signed_payload
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.runs import SIGNALS_FILE, finish_backtest, prepare_any_backtest
from coinwire.strategies.registry import load_strategy
from tests.api.signed_in import ok, refused
from tests.server import ServerProcess

ALERT = {"ticker": "BINANCE:BTCUSDT", "exchange": "BINANCE", "action": "buy", "contracts": "0.001", "price": "30000",
         "position": "long", "time": "2026-12-07T09:00:00Z"}
URL = "/api/v1/signals/tradingview"


def signed(secret: str, raw: bytes, at: float | None = None) -> dict[str, str]:
    """A signed signal's headers: the timestamp (now, or `at`) and the HMAC of `<timestamp>.<body>`."""
    ts = str(int(time.time() if at is None else at))
    return {"X-Coinwire-Timestamp": ts, "X-Coinwire-Signature": sign(secret, signed_payload(ts, raw)),
            "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # the server's providers: TradingView's format, and `news` in the generic one (no `generic`)
    proc = ServerProcess(Path(tmp_path_factory.mktemp("signals")), env={"COINWIRE_SIGNAL_PROVIDERS": "tradingview,news"})
    proc.start()
    yield proc
    proc.stop()


def client(server: ServerProcess, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=15, headers={"Authorization": f"Bearer {token}"} if token else {})


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        answer = fetch()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> dict[str, Any]:
    """ann's and ben's paper accounts and running signal_trader runs, their `signals:tradingview` keys, val granted view."""
    tokens = server.traders("ann", "ben")
    tokens.update(server.users({"val": "viewer"}))
    with server.client() as admin:
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    out: dict[str, Any] = {"tokens": tokens, "ids": ids, "runs": {}, "keys": {}}
    for name in ("ann", "ben"):
        with client(server, tokens[name]) as rest:
            account = ok(rest.post("/api/v1/accounts", json={"exchange": "demo", "kind": "paper", "name": "signals"}), 201)
            out.setdefault("accounts", {})[name] = account["id"]
            out["keys"][name] = ok(rest.post("/api/v1/api_keys", json={"name": "tv", "scopes": ["signals:tradingview"]}),
                                   201)["key"]
            started = rest.put("/runnables/signal_trader/start", json={"mode": "paper", "balances": {"demo:USDT": "1000"},
                                                                        "params": {"provider": "tradingview"}})
            assert started.status_code == 202, started.text
            out["runs"][name] = started.json()["run_id"]
    with server.client() as admin:
        ok(admin.put(f"/api/v1/accounts/{out['accounts']['ann']}/members/{ids['val']}", json={"role": "view"}))
    return out


def heard(server: ServerProcess, token: str, run_id: str) -> list[dict[str, Any]]:
    with client(server, token) as rest:
        return list(ok(rest.get(f"/runs/{run_id}/messages", params={"method": "tradingview.alert"}))["messages"])


def fills(server: ServerProcess, token: str, run_id: str) -> list[dict[str, Any]]:
    with client(server, token) as rest:
        return [m["params"] for m in ok(rest.get(f"/runs/{run_id}/messages", params={"method": "venue.fill"}))["messages"]]


def test_an_alert_reaches_the_senders_subscribed_paper_run_only_and_the_strategy_buys(server: ServerProcess,
                                                                                     world: dict[str, Any]) -> None:
    tokens, runs = world["tokens"], world["runs"]
    answer = ok(httpx.post(server.http + URL, json={**ALERT, "passphrase": world["keys"]["ann"]}, timeout=15))
    assert (answer["provider"], answer["method"], answer["runs"], answer["run_ids"]) == ("tradingview", "alert", 1, [runs["ann"]])
    messages = wait_for(lambda: heard(server, tokens["ann"], runs["ann"]), lambda m: len(m) >= 1)
    assert len(messages) == 1 and messages[0]["direction"] == "in"
    params = messages[0]["params"]
    assert params["symbol"] == "BTC/USDT" and params["action"] == "buy" and params["contracts"] == "0.001"
    assert world["keys"]["ann"] not in json.dumps(messages)  # the key in the body is never recorded
    bought = wait_for(lambda: fills(server, tokens["ann"], runs["ann"]), lambda f: len(f) >= 1)
    assert [(f["side"], f["symbol"], f["size"]) for f in bought] == [("buy", "BTC/USDT", "0.001")]
    assert heard(server, tokens["ben"], runs["ben"]) == [] and fills(server, tokens["ben"], runs["ben"]) == []
    # ben cannot read ann's run's hub either
    with client(server, tokens["ben"]) as ben:
        refused(ben.get(f"/runs/{runs['ann']}/messages"), 404, "unknown_run")


def test_a_signed_alert_and_a_key_in_the_header_or_query_reach_the_run_too(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens, runs, key = world["tokens"], world["runs"], world["keys"]["ann"]
    before = len(heard(server, tokens["ann"], runs["ann"]))
    with client(server, tokens["ann"]) as ann:
        secret = ok(ann.post(URL + "/secret"))
    assert secret["secret"].startswith("sigsec_") and secret["url"] == f"{URL}?user=ann"
    # two seconds after the buy, so that a backtest on 1-second candles has filled it too (test_received_signals_replay...)
    bought_at = heard(server, tokens["ann"], runs["ann"])[0]["ts"] / 1e9
    time.sleep(max(0.0, bought_at + 2.0 - time.time()))
    alert = json.dumps({**ALERT, "action": "sell", "contracts": "0.0005"}).encode()
    headers = signed(secret["secret"], alert)
    assert ok(httpx.post(server.http + secret["url"], content=alert, timeout=15, headers=headers))["run_ids"] == [runs["ann"]]
    # the same signed signal again (captured, replayed): refused, and it reaches no run (the count below is exact)
    refused(httpx.post(server.http + secret["url"], content=alert, timeout=15, headers=headers), 409, "signal_replayed")
    ok(httpx.post(server.http + URL, json={**ALERT, "action": None}, headers={"Authorization": f"Bearer {key}"}, timeout=15))
    ok(httpx.post(server.http + URL, params={"key": key}, json={**ALERT, "action": None}, timeout=15))
    messages = wait_for(lambda: heard(server, tokens["ann"], runs["ann"]), lambda m: len(m) >= before + 3)
    assert len(messages) == before + 3
    sold = wait_for(lambda: fills(server, tokens["ann"], runs["ann"]), lambda f: any(x["side"] == "sell" for x in f))
    assert [(f["side"], f["size"]) for f in sold if f["side"] == "sell"] == [("sell", "0.0005")]


def test_every_refusal_answers_its_code_and_reaches_no_hub(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens, runs, key = world["tokens"], world["runs"], world["keys"]["ann"]
    before = {name: len(heard(server, tokens[name], runs[name])) for name in ("ann", "ben")}
    with client(server, tokens["ben"]) as ben:
        read_key = ok(ben.post("/api/v1/api_keys", json={"name": "r", "scopes": ["read", "trade"]}), 201)["key"]
        generic_key = ok(ben.post("/api/v1/api_keys", json={"name": "g", "scopes": ["signals:generic"]}), 201)["key"]
    post = lambda body, **kw: httpx.post(server.http + kw.pop("url", URL), json=body, timeout=15, **kw)  # noqa: E731
    bad_keys = [key[:-2] + "xx", "cwk_0000000000000000_" + "a" * 43, read_key, generic_key, "nonsense", ""]
    for bad in bad_keys:
        refused(post({**ALERT, "key": bad}), 401, "invalid_signal_credentials")
    refused(post(ALERT), 401, "invalid_signal_credentials")  # no credential at all
    raw = json.dumps(ALERT).encode()
    for user, signature in (("ann", "0" * 64), ("ann", sign("whsec_guess", raw)), ("nobody", sign("x", raw)), (None, "ab")):
        params = {"user": user} if user else {}
        refused(httpx.post(server.http + URL, content=raw, params=params, headers={"X-Coinwire-Signature": signature},
                           timeout=15), 401, "invalid_signal_credentials")
    with client(server, tokens["ann"]) as ann:
        secret = ok(ann.post(URL + "/secret"))["secret"]
    post_signed = lambda headers: httpx.post(server.http + URL, content=raw, params={"user": "ann"}, headers=headers,  # noqa: E731
                                             timeout=15)
    good = signed(secret, raw)
    refused(post_signed({**good, "X-Coinwire-Timestamp": ""}), 401, "invalid_signal_credentials")  # the time is signed too
    refused(post_signed({**good, "X-Coinwire-Timestamp": str(int(good["X-Coinwire-Timestamp"]) - 1)}), 401, "invalid_signal_credentials")
    refused(post_signed({k: v for k, v in good.items() if k != "X-Coinwire-Timestamp"}), 401, "invalid_signal_credentials")
    refused(post_signed({**good, "X-Coinwire-Signature": sign(secret, raw)}), 401, "invalid_signal_credentials")  # body alone
    refused(post_signed(signed(secret, raw, at=time.time() - 301)), 401, "stale_signature")
    refused(post_signed(signed(secret, raw, at=time.time() + 301)), 401, "stale_signature")
    # signed, but no time: the header's byte 0xB2 is "²" (latin-1), a digit to str.isdigit and not to int()
    superscript = {"X-Coinwire-Timestamp": b"\xb2", "X-Coinwire-Signature": sign(secret, signed_payload("\u00b2", raw)),
                   "Content-Type": "application/json"}
    refused(post_signed(superscript), 401, "stale_signature")
    for provider in ("twitter", "generic"):  # not configured on this server
        refused(post({**ALERT, "key": key}, url=f"/api/v1/signals/{provider}"), 404, "unknown_provider")
    for bad, code in (({**ALERT, "action": "hold"}, "invalid_signal"), ({**ALERT, "ticker": "{{ticker}}"}, "unfilled_placeholder"),
                      ({k: v for k, v in ALERT.items() if k != "ticker"}, "invalid_signal")):
        refused(post({**bad, "key": key}), 400, code)
    refused(httpx.post(server.http + URL, content=b"{not json", timeout=15), 400, "parse_error")
    refused(httpx.post(server.http + URL, params={"key": key, "other": "1"}, json=ALERT, timeout=15), 400, "invalid_params")
    big = json.dumps({**ALERT, "key": key, "comment": "x" * 20_000}).encode()
    refused(httpx.post(server.http + URL, content=big, timeout=15), 413, "payload_too_large")
    time.sleep(0.6)  # what a queued signal would need to reach a run (the inbox is read every 50 ms, served every 250 ms)
    assert {name: len(heard(server, tokens[name], runs[name])) for name in ("ann", "ben")} == before


def test_a_configured_provider_takes_the_generic_format(server: ServerProcess, world: dict[str, Any]) -> None:
    with client(server, world["tokens"]["ben"]) as ben:
        key = ok(ben.post("/api/v1/api_keys", json={"name": "news", "scopes": ["signals:news"]}), 201)["key"]
        news = {"method": "headline", "params": {"text": "ETF approved", "score": 0.9}, "ts": "2026-01-02T03:04:05Z", "key": key}
        answer = ok(httpx.post(server.http + "/api/v1/signals/news", json=news, timeout=15))
        assert (answer["method"], answer["ts"], answer["runs"]) == ("headline", 1_767_323_045_000_000_000, 0)  # no run subscribed
        refused(httpx.post(server.http + "/api/v1/signals/news", json={**news, "params": 3}, timeout=15), 400, "invalid_signal")
        lines = [json.loads(line) for line in ben.get("/api/v1/signals/news/received").text.splitlines()]
    assert lines == [{"provider": "news", "method": "headline", "ts": 1_767_323_045_000_000_000,
                      "params": {"text": "ETF approved", "score": "0.9"}}]


def test_a_viewer_gets_no_credential_that_posts(server: ServerProcess, world: dict[str, Any]) -> None:
    with client(server, world["tokens"]["val"]) as val:
        assert ok(val.get(f"/api/v1/accounts/{world['accounts']['ann']}"))["role"] == "view"  # she may read ann's account
        refused(val.post("/api/v1/api_keys", json={"name": "tv", "scopes": ["signals:tradingview"]}), 403, "forbidden")
        refused(val.post(URL + "/secret"), 403, "forbidden")
        read_key = ok(val.post("/api/v1/api_keys", json={"name": "r", "scopes": ["read"]}), 201)["key"]
        assert val.get(f"{URL}/received").text == ""  # her own received signals: none
    refused(httpx.post(server.http + URL, json={**ALERT, "key": read_key}, timeout=15), 401, "invalid_signal_credentials")
    with client(server, world["tokens"]["ann"]) as ann:
        refused(ann.post("/api/v1/api_keys", json={"name": "x", "scopes": ["signals:Bad!"]}), 400, "invalid_scopes")


def test_received_signals_replay_in_a_backtest_at_their_recorded_times(server: ServerProcess, world: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    tokens, runs = world["tokens"], world["runs"]
    with client(server, tokens["ann"]) as ann:
        page = ann.get(f"{URL}/received")
        assert page.status_code == 200 and page.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in page.text.splitlines()]
        first = ann.get(f"{URL}/received", params={"limit": 1})
        assert len(first.text.splitlines()) == 1 and first.headers["X-Coinwire-Next-Since"]
    with client(server, tokens["ben"]) as ben:
        assert ben.get(f"{URL}/received").text == ""  # ben's own: none; ann's are never his
    live = heard(server, tokens["ann"], runs["ann"])
    assert len(lines) == len(live) >= 4 and [line["params"] for line in lines] == [m["params"] for m in live]
    assert all(line["provider"] == "tradingview" and line["method"] == "alert" for line in lines)
    # the candles around them, and the lines beside the candles as signals.jsonl
    first = lines[0]["ts"] // 1_000_000_000 - 60
    rows = [[(first + i) * 1000, 30_000.0, 30_010.0, 29_990.0, 30_000.0, 100.0] for i in range(600)]  # 1-second candles
    (tmp_path / "BTC_USDT-1s.json").write_text(json.dumps(rows))
    (tmp_path / SIGNALS_FILE).write_text(page.text)
    prepared = prepare_any_backtest(load_strategy("signal_trader"), {}, [str(tmp_path / "BTC_USDT-1s.json")],
                                    BacktestConfig(exchange="demo", balances={"USDT": "1000"}), tmp_path)
    outcome = finish_backtest(prepared)
    assert outcome.status == "finished", outcome.error
    replayed = [(m.ts, m.params) for m in prepared.runtime.hub.messages if m.method == "tradingview.alert"]
    assert replayed == [(line["ts"], line["params"]) for line in lines]  # at their recorded times, in order
    backtest_fills = [(m.params["side"], m.params["size"]) for m in prepared.runtime.hub.messages if m.method == "venue.fill"]
    paper_fills = [(f["side"], f["size"]) for f in fills(server, tokens["ann"], runs["ann"])]
    assert backtest_fills == paper_fills == [("buy", "0.001"), ("sell", "0.0005")]  # the same callbacks, the same trades

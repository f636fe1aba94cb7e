"""The notifier in a real platform: receipts of real orders, e-mail over STARTTLS/TLS, retries, webhooks, dead letters.

The outside world is real local servers (tests/notify_servers.py): aiosmtpd for SMTP, an
HTTP server for webhooks. The platform is coinwire's own (store, bus, gateway, demo feed).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.app import Platform
from coinwire.auth.preferences import PreferencesRepository
from coinwire.auth.repository import AuthRepository
from coinwire.auth.vault import Credentials, MasterKeys, Vault
from coinwire.config import load_settings
from coinwire.config.notifications import SmtpConfig
from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order, OrderRequest, OrderType, Side, TimeInForce, TriggerSource
from coinwire.services.accounts import MembersRepository
from coinwire.services.notifications.channels import Delivery, DeliveryFailed
from coinwire.services.notifications.email import EmailChannel
from coinwire.services.notifications.receipts import grouped, render_triggered
from coinwire.services.notifications.webhook import sign, verify_signature
from coinwire.services.views import order_view
from tests.notify_servers import SmtpReceiver, WebhookReceiver
from tests.server import free_port

TOM, TESS, VIC = 501, 502, 503
SECRET = "whsec-0123456789abcdef-tom"
PASSWORD = "smtp-secret-pass-99"
FUNDS = {"USDT": "100000000", "BTC": "10"}


@asynccontextmanager
async def platform(tmp_path: Path, smtp_port: int = 0, smtp: dict[str, Any] | None = None, **notifications: Any
                   ) -> AsyncIterator[Platform]:
    """A platform with the demo exchange ready and the notifier running; SMTP to 127.0.0.1:`smtp_port` when given."""
    if smtp is None:
        smtp = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "sender": "coinwire <bot@coinwire.test>"} if smtp_port else {}
    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "breaker_reset_seconds": 1.0,  # a relay down for several tries pauses its breaker; these tests wait seconds, not 30
        "exchanges": [{"name": "demo", "tick_interval": 0.02, "paper_funds": FUNDS}],
        "notifications": {"smtp": smtp, "base_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.05, **notifications}})
    p = Platform(settings)
    await p.start()
    try:
        await wait_for(lambda: p.gateway.venues["demo"].status == "ready", 30)
        yield p
    finally:
        await p.stop()


async def wait_for(predicate: Callable[[], Any], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


async def market_buy(p: Platform, owner: int, size: int = 1000, type: OrderType = OrderType.MARKET, limit: int = 0) -> Any:
    """A buy of `size` units (0.00001000 BTC each unit at 8 decimals) of BTC/USDT by `owner`'s own paper account."""
    market = p.gateway.market("demo", "BTC/USDT")
    account = await p.gateway.account_for(owner, "demo")
    assert account is not None
    return await p.gateway.make_order(OrderRequest(
        exchange="demo", instrument=market.instrument, side=Side.BUY, type=type, size=size, limit=limit, cancel_after=0,
        client_oid=uuid.uuid4().hex, wallet_set_id=None, run_id=None, owner_id=owner, account_id=account.id))


async def test_a_webhook_that_fails_three_times_gets_the_event_once_signed(tmp_path: Path) -> None:
    hook = WebhookReceiver(SECRET, fail_first=3).start()
    try:
        async with platform(tmp_path, attempts=5) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                             "events": {"trade_receipt": ["webhook"], "order_filled": ["webhook"]}})
            order = await market_buy(p, TOM)
            await wait_for(lambda: sum(r["json"]["event"] == "order_filled" if "event" in r["json"] else 0
                                       for r in hook.delivered()) >= 1 and any("productId" in r["json"] for r in hook.delivered()), 20)
            await asyncio.sleep(0.5)  # nothing more arrives: no repeat after the success
            receipts = [r for r in hook.delivered() if r["headers"]["x-coinwire-event"] == "trade_receipt"]
            assert len(receipts) == 1
            key = f"trade_receipt:{order.id}:webhook"
            assert receipts[0]["headers"]["x-coinwire-delivery"] == key
            # the first delivery (whichever event came first) failed three times, then succeeded; the other went once
            assert [r["answered"] for r in hook.requests] == [500, 500, 500] + [200] * (len(hook.requests) - 3)
            assert len(hook.requests) == 3 + len(hook.delivered())
            assert all(r["verified"] for r in hook.requests)
            body = receipts[0]["json"]
            assert (body["id"], body["side"], body["productId"], body["settled"]) == (str(order.id), "buy", "BTC-USDT", True)
            assert Decimal(body["filledSize"]) == Decimal(order.filled_size) > 0
            fills = await p.gateway.order_fills(order.id)
            assert Decimal(body["executedValue"]) == sum(Decimal(f.notional) for f in fills) / Decimal(10**18)
            rows = await service.outbox.rows(TOM)
            assert {(r.key, r.state) for r in rows if r.event == "trade_receipt"} == {(key, "sent")}
    finally:
        hook.stop()


def test_a_receiver_detects_a_bad_signature() -> None:
    body = b'{"id": "1", "funds": "10"}'
    good = sign(SECRET, body)
    assert verify_signature(SECRET, body, good)
    assert not verify_signature("another-secret-0123456789", body, good)  # signed with someone else's secret
    assert not verify_signature(SECRET, body.replace(b"10", b"99"), good)  # the body changed on the way
    assert not verify_signature(SECRET, body, None)  # no signature at all
    assert not verify_signature(SECRET, body, "sha256=" + "0" * 64)


async def test_dead_letters_are_their_users_only_and_secrets_stay_sealed(tmp_path: Path) -> None:
    hook = WebhookReceiver(SECRET, fail_first=100).start()
    try:
        async with platform(tmp_path, attempts=3) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                             "events": {"trade_receipt": ["webhook"]}})
            order = await market_buy(p, TOM)
            await wait_for(lambda: len(hook.requests) >= 3, 20)
            await asyncio.sleep(0.3)
            assert len(hook.requests) == 3  # attempts = 3, then parked: no fourth
            letters = await service.dead_letters(TOM)
            assert [(x["key"], x["attempts"]) for x in letters] == [(f"trade_receipt:{order.id}:webhook", 3)]
            assert await service.dead_letters(TESS) == []
            with pytest.raises(Exception) as refused:
                await service.retry_dead_letter(TESS, letters[0]["id"])
            assert getattr(refused.value, "code", None) == "dead_letter_not_found"
            # the backoff between attempts doubles from base_delay, capped at max_delay
            assert [service.backoff(a) for a in (1, 2, 3, 4)] == [0.05, 0.1, 0.2, 0.2]
            stored = b"".join(f.read_bytes() for f in (tmp_path / "data").glob("coinwire.db*") if f.is_file())
            assert SECRET.encode() not in stored
    finally:
        hook.stop()


async def test_receipts_are_in_the_quote_with_the_display_currency_and_masked_when_the_user_masks(tmp_path: Path) -> None:
    smtp = SmtpReceiver(tmp_path).start()
    try:
        async with platform(tmp_path, smtp.port) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"email": {"address": "tom@example.org"}},
                                             "events": {"trade_receipt": ["email"]}})
            await service.put_settings(TESS, {"channels": {"email": {"address": "tess@example.org"}},
                                              "events": {"trade_receipt": ["email"]}})
            await PreferencesRepository(p.store).update(TESS, {"mask": True})
            mine = await market_buy(p, TOM)
            theirs = await market_buy(p, TESS)
            # a limit IOC order far above the ask for more than the book's best level: partly filled, then cancelled
            market = p.gateway.market("demo", "BTC/USDT")
            book = p.gateway.snapshot("demo", "BTC/USDT")
            assert book is not None
            assert book.asks
            limit = book.asks[0][0] * 1002 // 1000  # the best ask and a little (the book moves), in price units
            within = sum(size for price, size in book.asks if price <= limit)
            partial = await market_buy(p, TOM, size=within + 10**market.instrument.size_decimals // 10, type=OrderType.IOC, limit=limit)
            assert partial.status == "done" and Decimal(partial.filled_size) > 0 and partial.done_reason == "cancelled", partial
            await wait_for(lambda: len(smtp.distinct()) >= 3, 20)
            by_id = {m["Message-ID"]: m for m in smtp.distinct().values()}
            toms = by_id[f"<trade_receipt.{mine.id}.email@coinwire.test>"]
            assert toms["To"] == "tom@example.org"
            text = smtp.body(toms, "plain")
            html = smtp.body(toms, "html")
            assert f"Trade id         {mine.id}\n" in text and "Market           BTC-USDT on demo\n" in text
            assert "USDT (≈" in text and "USD)" in text  # the quote, the display currency beside it
            assert "<table>" in html and "Executed value" in html
            tess_mail = by_id[f"<trade_receipt.{theirs.id}.email@coinwire.test>"]
            assert tess_mail["To"] == "tess@example.org"
            masked = smtp.body(tess_mail, "plain")
            assert "**** USDT" in masked and theirs.filled_size.rstrip("0") not in masked
            assert f"<trade_receipt.{partial.id}.email@coinwire.test>" in by_id  # partly filled, cancelled: a receipt
    finally:
        smtp.stop()


async def test_an_smtp_server_that_is_down_delays_the_receipt_then_it_arrives_once(tmp_path: Path) -> None:
    port = free_port()
    async with platform(tmp_path, port, attempts=50) as p:
        service = p.notifications
        await service.put_settings(TOM, {"channels": {"email": {"address": "tom@example.org"}},
                                         "events": {"trade_receipt": ["email"]}})
        order = await market_buy(p, TOM)

        async def tried() -> list[Any]:
            return [r for r in await service.outbox.rows(TOM) if r.attempts >= 2 and r.state == "pending"]

        rows: list[Any] = []
        for _ in range(200):
            rows = await tried()
            if rows:
                break
            await asyncio.sleep(0.05)
        assert rows and "unreachable" in (rows[0].last_error or "")
        smtp = SmtpReceiver(tmp_path, port=port).start()
        try:
            await wait_for(lambda: len(smtp.messages) >= 1, 20)
            await asyncio.sleep(0.5)
            assert list(smtp.ids().values()) == [1]
            assert f"<trade_receipt.{order.id}.email@coinwire.test>" in smtp.ids()
            assert [r.state for r in await service.outbox.rows(TOM)] == ["sent"]
        finally:
            smtp.stop()


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_starttls_and_tls_with_a_login(tmp_path: Path, security: str) -> None:
    smtp = SmtpReceiver(tmp_path, security=security, login=("coinwire", PASSWORD)).start()
    assert smtp.cert is not None
    delivery = Delivery(key="trade_receipt:7:email", user_id=TOM, event="trade_receipt", subject="Receipt", text="hello",
                        html="<p>hello</p>")
    try:
        cfg = SmtpConfig(host="127.0.0.1", port=smtp.port, security=security, username="coinwire", password=PASSWORD,
                         sender="bot@coinwire.test", ca_file=str(smtp.cert))
        await EmailChannel(cfg).send({"address": "tom@example.org"}, delivery)
        assert smtp.ids() == {"<trade_receipt.7.email@coinwire.test>": 1}
        # the relay's certificate is checked: without its CA the send is refused, and the reason holds no password
        with pytest.raises(DeliveryFailed) as untrusted:
            await EmailChannel(SmtpConfig(host="127.0.0.1", port=smtp.port, security=security, username="coinwire",
                                          password=PASSWORD, sender="bot@coinwire.test")).send({"address": "t@example.org"}, delivery)
        assert PASSWORD not in untrusted.value.reason
        with pytest.raises(DeliveryFailed) as wrong:  # a wrong password: refused by the relay
            await EmailChannel(SmtpConfig(host="127.0.0.1", port=smtp.port, security=security, username="coinwire",
                                          password="wrong-password-1", sender="bot@coinwire.test", ca_file=str(smtp.cert))
                               ).send({"address": "t@example.org"}, delivery)
        assert "535" in wrong.value.reason and "wrong-password-1" not in wrong.value.reason
        assert len(smtp.messages) == 1
    finally:
        smtp.stop()


async def test_the_smtp_password_can_come_from_the_vault(tmp_path: Path) -> None:
    smtp = SmtpReceiver(tmp_path, login=("coinwire", PASSWORD)).start()
    try:
        async with platform(tmp_path, smtp.port, smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                                       "username": "coinwire", "password_vault": "postmaster/smtp",
                                                       "sender": "bot@coinwire.test"}) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"email": {"address": "tom@example.org"}}})
            missing = await service.send_test(TOM, "email")  # no such user yet: said plainly, no password anywhere
            assert missing == {"channel": "email", "sent": False,
                               "reason": "notifications.smtp.password_vault names no user 'postmaster'"}
            user_id = await AuthRepository(p.store).add_user("postmaster", "x", "admin", "free", 0)
            vault = Vault(p.store, MasterKeys.load(p.settings.data_path, os.environ))
            await vault.put(user_id, "smtp", Credentials(api_key="coinwire", secret=PASSWORD), 0)
            assert await service.send_test(TOM, "email") == {"channel": "email", "sent": True}
            assert len(smtp.messages) == 1 and smtp.recipients == [["tom@example.org"]]
    finally:
        smtp.stop()


async def test_verify_off_trusts_any_certificate_and_timeout_bounds_a_silent_relay(tmp_path: Path) -> None:
    smtp = SmtpReceiver(tmp_path, security="tls").start()
    delivery = Delivery(key="k:1", user_id=TOM, event="daily_stats", subject="s", text="t")
    try:
        await EmailChannel(SmtpConfig(host="127.0.0.1", port=smtp.port, security="tls", verify=False)).send(
            {"address": "tom@example.org"}, delivery)
        assert len(smtp.messages) == 1
    finally:
        smtp.stop()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections and never says a word
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryFailed):
            await EmailChannel(SmtpConfig(host="127.0.0.1", port=silent.getsockname()[1], security="none", timeout=0.3)).send(
                {"address": "tom@example.org"}, delivery)
        assert time.monotonic() - started < 3
    finally:
        silent.close()


@pytest.mark.parametrize("recovery_orders", [1000, 0])
async def test_a_receipt_missed_while_the_notifier_was_down_is_recovered_at_its_start(tmp_path: Path, recovery_orders: int) -> None:
    hook = WebhookReceiver(SECRET).start()
    try:
        async with platform(tmp_path, recovery_orders=recovery_orders) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                             "events": {"trade_receipt": ["webhook"]}})
            await service.close()  # as if the process died after the gateway's commit, before the outbox row
            order = await market_buy(p, TOM)
            await asyncio.sleep(0.3)
            assert hook.requests == []
            await service.start()
            if recovery_orders:
                await wait_for(lambda: len(hook.delivered()) == 1, 20)
                assert hook.delivered()[0]["headers"]["x-coinwire-delivery"] == f"trade_receipt:{order.id}:webhook"
            else:  # the scan is off: nothing is derived again
                await asyncio.sleep(1.0)
                assert hook.requests == []
            await service.close()
            await service.start()  # a second start derives the same key again: no second row, no second delivery
            await asyncio.sleep(1.0)
            assert len(hook.requests) == (1 if recovery_orders else 0)
    finally:
        hook.stop()


async def test_order_done_and_exchange_degraded_reach_those_who_chose_them(tmp_path: Path) -> None:
    toms, tess, vics = WebhookReceiver(SECRET).start(), WebhookReceiver(SECRET).start(), WebhookReceiver(SECRET).start()
    try:
        async with platform(tmp_path) as p:
            service = p.notifications
            await service.put_settings(TOM, {"channels": {"webhook": {"url": toms.url, "secret": SECRET}},
                                             "events": {"order_done": ["webhook"], "exchange_degraded": ["webhook"]}})
            await service.put_settings(TESS, {"channels": {"webhook": {"url": tess.url, "secret": SECRET}},
                                              "events": {"order_filled": ["webhook"]}})
            await service.put_settings(VIC, {"channels": {"webhook": {"url": vics.url, "secret": SECRET}},
                                             "events": {"exchange_degraded": ["webhook"]}})
            order = await market_buy(p, TOM)
            await p.gateway.set_status(p.gateway.venues["demo"], "degraded")
            await wait_for(lambda: len(toms.delivered()) == 2 and len(vics.delivered()) == 1, 20)
            # one status change, two users who chose it: each gets it (their keys differ by user)
            keys = {r["headers"]["x-coinwire-delivery"] for r in vics.delivered() + toms.delivered()
                    if r["headers"]["x-coinwire-event"] == "exchange_degraded"}
            assert len(keys) == 2
            got = {r["headers"]["x-coinwire-event"]: r["json"] for r in toms.delivered()}
            assert got["order_done"]["order"]["id"] == order.id and got["order_done"]["order"]["status"] == "done"
            assert (got["exchange_degraded"]["exchange"], got["exchange_degraded"]["to"]) == ("demo", "degraded")
            await asyncio.sleep(0.5)
            assert tess.requests == []  # she chose fills of her own orders only: tom's order and the status are not hers
            assert len(toms.requests) == 2
    finally:
        toms.stop()
        tess.stop()
        vics.stop()


async def test_order_triggered_reaches_the_owner_and_who_may_read_the_account_only(tmp_path: Path) -> None:
    toms, tess, vics = WebhookReceiver(SECRET).start(), WebhookReceiver(SECRET).start(), WebhookReceiver(SECRET).start()
    try:
        async with platform(tmp_path) as p:
            service = p.notifications
            for user, hook in ((TOM, toms), (TESS, tess), (VIC, vics)):
                await service.put_settings(user, {"channels": {"webhook": {"url": hook.url, "secret": SECRET}},
                                                  "events": {"order_triggered": ["webhook"]}})
            account = await p.gateway.account_for(TOM, "demo")
            await MembersRepository(p.store).put(account.id, VIC, "view", None)  # as the grant route does: stored, then in effect
            p.gateway.accounts.set_member(account.id, VIC, "view")
            await p.gateway.account_for(TESS, "demo")
            market = p.gateway.market("demo", "BTC/USDT")
            inst = market.instrument
            bid = market.engine.book.best_bid()
            assert bid is not None
            stop = bid + 10 * inst.tick  # a sell stop above the bid: it fires at once, as allowed
            view = await p.gateway.make_order(OrderRequest(
                exchange="demo", instrument=inst, side=Side.SELL, type=OrderType.STOP_MARKET, size=inst.parse_size("0.01"),
                limit=0, cancel_after=0, client_oid="tom-stop", wallet_set_id=None, run_id=None, owner_id=TOM,
                account_id=account.id, stop_price=stop, trigger=TriggerSource.BID_ASK, allow_immediate=True))
            assert view.triggered_at is not None
            await wait_for(lambda: len(toms.delivered()) == 1 and len(vics.delivered()) == 1, 20)
            level = grouped(inst.price_str(stop))
            for hook in (toms, vics):
                body = hook.delivered()[0]
                assert body["headers"]["x-coinwire-event"] == "order_triggered"
                assert body["json"]["text"] == f"Your stop-market sell of 0.01 BTC triggered at {level} and became a market order"
                assert body["json"]["order"]["id"] == view.id
            assert toms.delivered()[0]["headers"]["x-coinwire-delivery"] != vics.delivered()[0]["headers"]["x-coinwire-delivery"]
            await asyncio.sleep(0.5)
            assert tess.requests == []  # another trader's order: never hers
            assert len(toms.requests) == 1 and len(vics.requests) == 1  # fired once, told once
    finally:
        toms.stop()
        tess.stop()
        vics.stop()


def test_the_triggered_text_names_the_level_and_what_the_order_became() -> None:
    assert grouped("61234.5") == "61,234.50" and grouped("0.00012345") == "0.00012345" and grouped("7") == "7.00"
    inst = Instrument("demo", "BTC/USDT", "BTC", "USDT", price_decimals=2, size_decimals=5)
    order = Order(id=7, client_oid="c", exchange="demo", symbol="BTC/USDT", side=Side.BUY, type=OrderType.STOP_LIMIT,
                  size=inst.parse_size("0.25"), limit=inst.parse_price("61300"), stop_price=inst.parse_price("61234.50"),
                  time_in_force=TimeInForce.IOC)
    subject, text = render_triggered(order_view(order, inst))
    assert text == "Your stop-limit buy of 0.25 BTC triggered at 61,234.50 and became a IOC limit order at 61,300.00"
    assert subject.startswith("Order 7 triggered: stop-limit buy 0.25 BTC at 61,234.50")

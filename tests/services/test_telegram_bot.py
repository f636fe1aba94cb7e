"""Telegram commands end to end: each user's bot polled from a real local Bot API server, answered from a real platform.

The platform is the real one (demo exchange, gateway, store, health, market data) with a real
RunManager running paper runs; two users with a bot each and a viewer granted one of the
accounts ask the same commands and each sees only their own. Nothing here is a stand-in but
Telegram itself, which the local server speaks for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from coinwire.api.ownership import Owners
from coinwire.app import Platform
from coinwire.auth.abilities import Principal
from coinwire.auth.preferences import PreferencesRepository
from coinwire.auth.repository import AuthRepository
from coinwire.config import ConfigError, Settings, load_settings
from coinwire.services.accounts import MembersRepository
from coinwire.services.notifications.telegram_bot import TelegramBots
from coinwire.services.notifications.telegram_commands import StoreFills, TelegramCommands
from coinwire.services.runs import RunManager
from tests.conftest import postgres_database
from tests.telegram_server import TelegramServer

ALICE_TOKEN = "111111:AAA-alicesecretsecretsecret_x1"
BOB_TOKEN = "222222:BBB-bobsecretsecretsecretsec_x2"
CAROL_TOKEN = "333333:CCC-carolsecretsecretsecretx_3"
TOKENS = (ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN)
ALICE_CHAT, BOB_CHAT, CAROL_CHAT, STRANGER_CHAT = "1001", "2002", "3003", "9009"


@dataclass
class World:
    tg: TelegramServer
    settings: Settings
    platform: Platform
    runs: RunManager
    owners: Owners
    bots: TelegramBots
    users: dict[str, int]
    now: list[float]  # the commands' monotonic clock (confirmation windows)


async def ask(tg: TelegramServer, token: str, chat: str, text: str) -> str:
    """Write `text` to the bot from `chat` and wait for its answer there."""
    before = len(tg.texts(token, chat))
    await tg.say(token, chat, text)
    deadline = time.monotonic() + 15
    while len(tg.texts(token, chat)) == before:
        assert time.monotonic() < deadline, f"no answer to {text!r}"
        await tg.wait_sent(len(tg.sent) + 1, timeout=15)
    return tg.texts(token, chat)[-1]


async def wait_ready(platform: Platform) -> None:
    for _ in range(400):
        if platform.gateway.venues["demo"].status == "ready":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the demo exchange never became ready")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The platform's store: its default SQLite file, or a database of its own on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
async def world(tmp_path: Path, store_url: str | None) -> AsyncIterator[World]:
    async with TelegramServer() as tg:
        for token, chat in zip(TOKENS, (ALICE_CHAT, BOB_CHAT, CAROL_CHAT), strict=True):
            tg.add_bot(token, chat, STRANGER_CHAT)
        # the setting the composition root passes to TelegramBots and TelegramChannel, read from the environment here
        settings = load_settings(env={"COINWIRE_TELEGRAM_API_BASE": tg.api_base},
                                 overrides={"data_dir": str(tmp_path), "store_url": store_url})
        platform = Platform(settings)
        await platform.start()
        runs = RunManager(settings.data_path, False, stop_grace=5.0, gateway=platform.gateway)
        await runs.open()
        bots: TelegramBots | None = None
        try:
            await wait_ready(platform)
            repo = AuthRepository(platform.store)
            users = {name: await repo.add_user(name, "not-a-hash", role, "free", time.time_ns())
                     for name, role in (("alice", "trader"), ("bob", "trader"), ("carol", "viewer"))}
            owners = Owners(repo)
            await owners.load()
            now = [0.0]
            commands = TelegramCommands(platform.gateway, runs, lambda run_id: owners.owner_of("run", run_id), platform.health,
                                        StoreFills(platform.store), PreferencesRepository(platform.store), platform.market,
                                        clock=lambda: now[0])
            bots = TelegramBots(settings.telegram_api_base, commands, poll_timeout=1, backoff=0.05, max_backoff=0.2)
            await bots.start()
            yield World(tg, settings, platform, runs, owners, bots, users, now)
        finally:
            if bots is not None:
                await bots.close()
            await runs.close()
            await platform.stop()


async def start_run(world: World, user: str) -> str:
    """A paper run of `user` (hodl on 1 s candles: it buys at once), recorded as theirs as the runs route does."""
    user_id = world.users[user]
    started = await world.runs.start("hodl", {"mode": "paper", "balances": {"demo:USDT": "500"}, "params": {"timeframe": "1s"}},
                                     owner_id=user_id)
    await world.owners.save("run", started["run_id"], Principal(user_id, user, "trader", "free"))
    return str(started["run_id"])


async def test_each_user_sees_only_their_own_accounts_runs_and_fills(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tg, gateway, users = world.tg, world.platform.gateway, world.users
    alice_account = await gateway.account_for(users["alice"], "demo")
    bob_account = await gateway.account_for(users["bob"], "demo")
    await MembersRepository(world.platform.store).put(alice_account.id, users["carol"], "view", None)  # carol may view alice's
    gateway.accounts.set_member(alice_account.id, users["carol"], "view")
    alice_run, bob_run = await start_run(world, "alice"), await start_run(world, "bob")
    fills = StoreFills(world.platform.store)
    for _ in range(600):  # both hodl runs buy at their first candle; their fills reach the store soon after
        if await fills.fills_since([bob_account.id], 0) and await fills.fills_since([alice_account.id], 0):
            break
        await asyncio.sleep(0.1)
    with structlog.testing.capture_logs() as logs:
        await world.bots.configure(users["alice"], ALICE_TOKEN, ALICE_CHAT)
        await world.bots.configure(users["bob"], BOB_TOKEN, int(BOB_CHAT))
        await world.bots.configure(users["carol"], CAROL_TOKEN, CAROL_CHAT)
        assert world.bots.configured() == {users["alice"]: ALICE_CHAT, users["bob"]: BOB_CHAT, users["carol"]: CAROL_CHAT}

        # balances: one's own accounts, and those granted
        alice_balance = await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/balance")
        assert f"Account {alice_account.id} " in alice_balance and f"Account {bob_account.id} " not in alice_balance
        assert "USDT" in alice_balance
        bob_balance = await ask(tg, BOB_TOKEN, BOB_CHAT, "/balance@bot222222")  # the command with the bot's name, as groups send it
        assert f"Account {bob_account.id} " in bob_balance and f"Account {alice_account.id} " not in bob_balance
        carol_balance = await ask(tg, CAROL_TOKEN, CAROL_CHAT, "/balance")
        assert f"Account {alice_account.id} " in carol_balance and f"Account {bob_account.id} " not in carol_balance

        # someone else writing to alice's bot gets nothing, and the log names the chat, not the token
        await tg.say(ALICE_TOKEN, STRANGER_CHAT, "/balance")
        await tg.say(ALICE_TOKEN, STRANGER_CHAT, f"/stop {alice_run} yes")
        assert "Account" in await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/balance")  # answered after the stranger's messages
        assert tg.texts(ALICE_TOKEN, STRANGER_CHAT) == []
        ignored = [e for e in logs if e["event"] == "telegram message from another chat ignored"]
        assert len(ignored) == 2 and all(e["chat"] == STRANGER_CHAT and e["user"] == users["alice"] for e in ignored)

        # runs: one's own only
        alice_runs = await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/runs")
        assert alice_run in alice_runs and bob_run not in alice_runs and "running" in alice_runs
        assert bob_run in await ask(tg, BOB_TOKEN, BOB_CHAT, "/runs")
        assert await ask(tg, CAROL_TOKEN, CAROL_CHAT, "/runs") == "You have no runs."

        # /stop: another's run does not exist; a stop needs its confirmation in time
        assert await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {bob_run}") == f"No such run {bob_run}."
        assert await ask(tg, CAROL_TOKEN, CAROL_CHAT, f"/stop {alice_run}") == f"No such run {alice_run}."
        assert await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/stop nonsense-run") == "No such run nonsense-run."
        unasked = await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {alice_run} yes")
        assert unasked.startswith(f"No stop of {alice_run} is waiting for confirmation")
        asked = await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {alice_run}")
        assert asked == f"Stop run {alice_run} (hodl, paper)? Reply /stop {alice_run} yes within 60 s."
        world.now[0] += 61  # too late
        assert (await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {alice_run} yes")).startswith("No stop of")
        assert world.runs.get(alice_run)["status"] == "running"
        await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {alice_run}")
        assert (await ask(tg, BOB_TOKEN, BOB_CHAT, f"/stop {alice_run} yes")) == f"No such run {alice_run}."  # bob cannot confirm it
        world.now[0] += 30
        assert await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {alice_run} yes") == f"Run {alice_run} is stopped."
        assert world.runs.get(alice_run)["status"] == "stopped"
        assert world.runs.get(bob_run)["status"] == "running"
        assert await ask(tg, ALICE_TOKEN, ALICE_CHAT, f"/stop {alice_run}") == f"Run {alice_run} is already stopped."

        # daily: the fills of one's own accounts today
        alice_fills = await fills.fills_since([alice_account.id], 0)
        alice_daily = await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/daily")
        assert alice_fills and f"Account {alice_account.id} demo (demo): {len(alice_fills)} fill" in alice_daily
        assert f"Account {bob_account.id} " not in alice_daily
        volume = sum(f.notional for f in alice_fills)
        flow = (sum(f.notional if f.side == "sell" else -f.notional for f in alice_fills)
                - sum(f.fee for f in alice_fills if f.fee_currency == "USDT"))
        usd = Decimal(1)  # the demo exchange quotes USDT, pegged to USD: the display values are the same amounts, to the cent
        assert (f"volume {format(volume.normalize(), 'f')} USDT ({(volume * usd).quantize(Decimal('0.01'))} USD), "
                f"cash flow {format(flow.normalize(), 'f')} USDT ({(flow * usd).quantize(Decimal('0.01'))} USD)") in alice_daily
        assert "not a profit figure" in alice_daily
        bob_daily = await ask(tg, BOB_TOKEN, BOB_CHAT, "/daily")
        assert f"Account {bob_account.id} " in bob_daily and f"Account {alice_account.id} " not in bob_daily

        # positions: spot holdings valued in the display currency (USD by default)
        positions = await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/positions")
        assert positions.startswith("Spot holdings (perpetual futures positions are not supported yet)")
        assert "BTC " in positions and " USD" in positions

        # a user who masks balances sees currencies without amounts, as in the dashboard
        await PreferencesRepository(world.platform.store).update(users["carol"], {"mask": True})
        masked = await ask(tg, CAROL_TOKEN, CAROL_CHAT, "/balance")
        assert "  USDT ••••• (available •••••)" in masked and not any(ch.isdigit() for ch in masked.split(":", 1)[1])
        masked_daily = await ask(tg, CAROL_TOKEN, CAROL_CHAT, "/daily")
        assert "volume ••••• USDT (••••• USD), cash flow ••••• USDT (••••• USD)" in masked_daily

        status = await ask(tg, BOB_TOKEN, BOB_CHAT, "/status")
        assert status.splitlines()[0] in ("Server: online", "Server: degraded") and "Exchange demo: ready" in status
        assert "/stop RUN - stop one of your runs (asks for confirmation)" in await ask(tg, BOB_TOKEN, BOB_CHAT, "/help")
        assert await ask(tg, BOB_TOKEN, BOB_CHAT, "/launch") == "Unknown command /launch. Send /help for the commands."
        assert await ask(tg, BOB_TOKEN, BOB_CHAT, "hello") == "Send /help for the commands."

    # no token anywhere: not in our log events, not in the libraries' log records
    text = caplog.text + repr(logs)
    for token in TOKENS:
        assert token not in text and token.split(":")[1] not in text
    assert "/bot<token>/getUpdates" in caplog.text


async def test_polling_survives_faults_and_skips_stale_messages(world: World) -> None:
    tg, users = world.tg, world.users
    tg.fail_next(ALICE_TOKEN, 2, 500, method="getUpdates")
    tg.fail_next(ALICE_TOKEN, 1, 429, retry_after=1, method="getUpdates")
    await tg.say(ALICE_TOKEN, ALICE_CHAT, "/runs", date=int(time.time()) - 3600)  # sent an hour before the bot was configured
    with structlog.testing.capture_logs() as logs:
        await world.bots.configure(users["alice"], ALICE_TOKEN, ALICE_CHAT)
        assert await ask(tg, ALICE_TOKEN, ALICE_CHAT, "/help") == TelegramCommands.help()
    assert tg.texts(ALICE_TOKEN, ALICE_CHAT) == [TelegramCommands.help()]  # the stale /runs got no answer
    assert sum(1 for e in logs if e["event"] == "telegram polling failed; retrying") == 2
    assert any(e["event"] == "telegram message older than the poller ignored" for e in logs)

    # a reconfigured bot replaces the old one; a removed one is no longer polled
    await world.bots.configure(users["alice"], BOB_TOKEN, BOB_CHAT)
    assert world.bots.configured() == {users["alice"]: BOB_CHAT}
    assert await ask(tg, BOB_TOKEN, BOB_CHAT, "/runs") == "You have no runs."  # answered as alice, who has none
    await world.bots.remove(users["alice"])
    polls = tg.bots[BOB_TOKEN].polls
    await tg.say(BOB_TOKEN, BOB_CHAT, "/runs")
    await asyncio.sleep(1.5)
    assert tg.bots[BOB_TOKEN].polls == polls and len(tg.texts(BOB_TOKEN, BOB_CHAT)) == 1

    # a token Telegram refuses: a warning without it, then slow retries
    with structlog.testing.capture_logs() as logs:
        await world.bots.configure(users["bob"], "444444:DDD-revokedsecretsecretsecret", BOB_CHAT)
        for _ in range(100):
            if logs:
                break
            await asyncio.sleep(0.05)
    assert logs and logs[0]["event"] == "telegram refused the bot token; polling again later"
    assert "revokedsecret" not in repr(logs)


def test_the_api_base_setting_is_an_http_url() -> None:
    assert load_settings(env={}).telegram_api_base == "https://api.telegram.org"
    assert load_settings(env={"COINWIRE_TELEGRAM_API_BASE": "http://127.0.0.1:8081"}).telegram_api_base == "http://127.0.0.1:8081"
    for bad in ("api.telegram.org", "ftp://x", "https://api.telegram.org/"):
        with pytest.raises(ConfigError, match="telegram_api_base must be an http"):
            load_settings(env={"COINWIRE_TELEGRAM_API_BASE": bad})

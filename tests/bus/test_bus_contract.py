"""One Bus contract, run against MemoryBus and against NatsBus on a real NATS JetStream server."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from coinwire.bus import MemoryBus, bus_from_url
from coinwire.bus.base import Bus
from coinwire.bus.nats import NatsBus
from coinwire.core.errors import InvalidInput
from coinwire.messages import BookTicker, FillEvent, Message, OrderUpdate, Ticker, TradeTick
from coinwire.messages import subject as make_subject
from tests.conftest import NATS_URL, require_service
from tests.events import fill_view, order_view

BusFactory = Callable[[], Awaitable[Bus]]


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.services)])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Build started buses sharing one fresh namespace per test factory call; NATS streams are deleted after."""
    if request.param == "nats":
        url = urlsplit(NATS_URL)
        require_service("NATS", url.hostname or "127.0.0.1", url.port or 4222)
    made: list[Bus] = []

    async def build() -> Bus:
        namespace = f"t{uuid.uuid4().hex[:16]}"
        bus: Bus = MemoryBus(namespace) if request.param == "memory" else NatsBus(NATS_URL, namespace)
        await bus.start()
        made.append(bus)
        return bus

    yield build
    for bus in made:
        if isinstance(bus, NatsBus):
            await bus.start()  # reconnects a bus the test closed, so its stream is still removed
            await bus.delete_stream()
        await bus.close()


@pytest.fixture
async def bus(make_bus: BusFactory) -> Bus:
    return await make_bus()


class Collector:
    """A handler that records what it receives and can wait for a count."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Message]] = []

    async def __call__(self, subject: str, message: Message) -> None:
        self.got.append((subject, message))

    @property
    def subjects(self) -> list[str]:
        return [s for s, _ in self.got]

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.got) < count:
                await asyncio.sleep(0.001)


def tick(n: int, exchange: str = "binance", symbol: str = "BTC/USDT") -> TradeTick:
    return TradeTick(exchange=exchange, symbol=symbol, ts=n, trade_id=str(n), price=6_000_000 + n, size=1000, aggressor="buy")


def order(n: int) -> OrderUpdate:
    return OrderUpdate(order=order_view(id=n, status="open", limit="60000.5"))


def fill(n: int) -> FillEvent:
    return FillEvent(trade=fill_view(id=n, order_id=n, exec_amount="0.001"))


async def test_wildcards_select_one_token_or_the_rest(bus: Bus) -> None:
    star, rest, first, exact = Collector(), Collector(), Collector(), Collector()
    await bus.subscribe("trade.binance.usdt.*", star)
    await bus.subscribe("trade.>", rest)
    await bus.subscribe("*.binance.usdt.btc", first)
    await bus.subscribe("trade.kraken.eur.btc", exact)
    subjects = ["trade.binance.usdt.btc", "trade.binance.usdt.eth", "trade.kraken.eur.btc", "trade.binance.btc.eth",
                "book.binance.usdt.btc"]
    for n, subject in enumerate(subjects):
        await bus.publish(subject, tick(n))
    await bus.publish("trade.binance.usdt.end", tick(99))  # every collector but `first` and `exact` sees this last
    await rest.wait_for(5)
    await star.wait_for(3)
    await asyncio.sleep(0.05)
    assert star.subjects == ["trade.binance.usdt.btc", "trade.binance.usdt.eth", "trade.binance.usdt.end"]
    assert rest.subjects == [s for s in subjects if s.startswith("trade.")] + ["trade.binance.usdt.end"]
    assert first.subjects == ["trade.binance.usdt.btc", "book.binance.usdt.btc"]
    assert exact.subjects == ["trade.kraken.eur.btc"]
    assert [m for _, m in rest.got][:2] == [tick(0), tick(1)]  # messages arrive intact (decoded on NATS)


async def test_a_subscription_for_some_types_gets_only_those_in_order(bus: Bus) -> None:
    """`types` narrows a wide pattern to some message classes; what it lets through keeps its order."""
    fills_and_trades, everything = Collector(), Collector()
    await bus.subscribe(">", fills_and_trades, types=frozenset({FillEvent, TradeTick}))
    await bus.subscribe(">", everything)
    sent: list[tuple[str, Message]] = [
        ("trade.binance.usdt.btc", tick(1)), ("order.binance.usdt.btc", order(2)), ("fill.binance.usdt.btc", fill(3)),
        ("order.binance.usdt.btc", order(4)), ("trade.binance.usdt.btc", tick(5)),
    ]
    for subject, message in sent:
        await bus.publish(subject, message)
    await everything.wait_for(5)
    await fills_and_trades.wait_for(3)
    await asyncio.sleep(0.05)
    assert fills_and_trades.got == [sent[0], sent[2], sent[4]]
    assert everything.got == sent


async def test_an_inline_subscription_gets_its_types_in_order_and_survives_a_raising_handler(bus: Bus) -> None:
    """`inline=True` takes a plain function, called where the message arrives; in process, before `publish` returns."""
    got: list[tuple[str, Message]] = []

    def handler(subject: str, message: Message) -> None:
        got.append((subject, message))
        if isinstance(message, FillEvent) and message.trade.id == 3:
            raise RuntimeError("a handler bug must not end the subscription")

    await bus.subscribe("*.binance.>", handler, types=frozenset({FillEvent, OrderUpdate}), inline=True)
    sent: list[tuple[str, Message]] = [
        ("order.binance.usdt.btc", order(1)), ("trade.binance.usdt.btc", tick(2)), ("fill.binance.usdt.btc", fill(3)),
        ("fill.binance.usdt.btc", fill(4)), ("order.binance.usdt.btc", order(5)),
    ]
    for subject, message in sent:
        await bus.publish(subject, message)
    if isinstance(bus, MemoryBus):
        assert len(got) == 4  # already delivered, by publish itself
    async with asyncio.timeout(5):
        while len(got) < 4:
            await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)
    assert got == [sent[0], sent[2], sent[3], sent[4]]


async def test_ticker_subjects_select_an_exchange_quote_or_base(bus: Bus) -> None:
    """`ticker.binance.usdt.*` gets every USDT pair of binance, whichever kind of ticker carries it, exactly."""
    usdt, btc_anywhere, binance = Collector(), Collector(), Collector()
    await bus.subscribe("ticker.binance.usdt.*", usdt)
    await bus.subscribe("ticker.*.*.btc", btc_anywhere)
    await bus.subscribe("ticker.binance.>", binance)
    messages: list[Message] = [
        Ticker("binance", "BTC/USDT", 1, last=Decimal("61000.10"), bid=Decimal("61000.09"), base_volume=Decimal("1E+3")),
        Ticker("binance", "ETH/BTC", 2, last=Decimal("0.04262")),
        BookTicker("binance", "SOL/USDT", 3, 7, 15012, 40, 15013, 25),
        Ticker("kraken", "BTC/USDT", 4, last=Decimal("61001")),
        Ticker("binance", "1000SATS/USDT", 5, last=Decimal("0.0003101")),
    ]
    for message in messages:
        await bus.publish(make_subject("ticker", message.exchange, message.symbol), message)  # type: ignore[union-attr]
    await binance.wait_for(4)
    await usdt.wait_for(3)
    await btc_anywhere.wait_for(2)
    await asyncio.sleep(0.05)
    assert usdt.subjects == ["ticker.binance.usdt.btc", "ticker.binance.usdt.sol", "ticker.binance.usdt.1000sats"]
    assert btc_anywhere.subjects == ["ticker.binance.usdt.btc", "ticker.kraken.usdt.btc"]
    assert [m for _, m in binance.got] == [messages[0], messages[1], messages[2], messages[4]]
    first = usdt.got[0][1]
    assert isinstance(first, Ticker) and str(first.last) == "61000.10" and str(first.base_volume) == "1E+3"  # exact


async def test_no_cross_talk_between_namespaces(make_bus: BusFactory) -> None:
    one, two = await make_bus(), await make_bus()
    heard_one, heard_two = Collector(), Collector()
    await one.subscribe(">", heard_one)
    await two.subscribe(">", heard_two)
    await one.publish("trade.binance.usdt.btc", tick(1))
    assert await one.publish("order.binance.usdt.btc", order(1)) == 1
    await two.publish("trade.binance.usdt.btc", tick(2))
    await heard_one.wait_for(2)
    await heard_two.wait_for(1)
    await asyncio.sleep(0.05)
    assert [m for _, m in heard_one.got] == [tick(1), order(1)]
    assert [m for _, m in heard_two.got] == [tick(2)]
    assert await two.replay(">") == []
    assert await two.last_seq() == 0


async def test_per_subject_order_one_call_at_a_time_under_concurrency(bus: Bus) -> None:
    subjects = ["trade.binance.usdt.btc", "trade.binance.usdt.eth", "trade.kraken.usd.btc", "order.binance.usdt.btc",
                "fill.binance.usdt.btc"]
    per_subject = 200  # 1000 messages in all, published by one task per subject at once
    received: dict[str, list[int]] = {s: [] for s in subjects}
    running = 0
    overlapped = False

    async def handler(subject: str, message: Message) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped |= running > 1
        if len(received[subject]) % 7 == 0:
            await asyncio.sleep(0)  # a handler that suspends must still not be re-entered
        received[subject].append(_number(message))
        running -= 1

    await bus.subscribe(">", handler)

    async def publish_all(index: int, subject: str) -> None:
        for n in range(per_subject):
            message = order(n) if subject.startswith("order") else fill(n) if subject.startswith("fill") else tick(n)
            await bus.publish(subject, message)
            if n % (index + 2) == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(publish_all(i, s) for i, s in enumerate(subjects)))
    async with asyncio.timeout(10):
        while sum(map(len, received.values())) < per_subject * len(subjects):
            await asyncio.sleep(0.005)
    assert all(numbers == list(range(per_subject)) for numbers in received.values())
    assert not overlapped


def _number(message: Message) -> int:
    if isinstance(message, OrderUpdate):
        return message.order.id
    if isinstance(message, FillEvent):
        return message.trade.id
    assert isinstance(message, TradeTick)
    return message.ts


async def test_durable_publish_returns_increasing_seqs_ephemeral_none(bus: Bus) -> None:
    assert await bus.last_seq() == 0
    seqs = []
    for n in range(5):
        seqs.append(await bus.publish("order.binance.usdt.btc", order(n)))
        assert await bus.publish("trade.binance.usdt.btc", tick(n)) is None
        seqs.append(await bus.publish("fill.kraken.eur.eth", fill(n)))
    assert seqs == list(range(1, 11))
    assert await bus.last_seq() == 10


async def test_replay_from_a_seq_returns_exactly_the_later_messages_in_order(bus: Bus) -> None:
    published = []
    for n in range(10):
        subject, message = ("order.binance.usdt.btc", order(n)) if n % 3 else ("fill.binance.usdt.btc", fill(n))
        published.append((await bus.publish(subject, message), subject, message))
    assert await bus.replay(">") == published
    assert await bus.replay(">", from_seq=6) == published[5:]
    assert await bus.replay(">", from_seq=10) == published[9:]
    assert await bus.replay(">", from_seq=11) == []
    assert await bus.replay(">", from_seq=0) == published


async def test_replay_filtered_by_pattern(bus: Bus) -> None:
    entries = [
        ("order.binance.usdt.btc", order(1)),
        ("fill.binance.usdt.btc", fill(1)),
        ("order.kraken.eur.btc", order(2)),
        ("fill.kraken.eur.btc", fill(2)),
        ("order.binance.usdt.eth", order(3)),
    ]
    published = [(await bus.publish(s, m), s, m) for s, m in entries]
    assert await bus.replay("fill.>") == [published[1], published[3]]
    assert await bus.replay("order.binance.usdt.*") == [published[0], published[4]]
    assert await bus.replay("*.kraken.>") == [published[2], published[3]]
    assert await bus.replay("order.binance.>", from_seq=2) == [published[4]]
    assert await bus.replay("order.nowhere.>") == []


async def test_replay_pages_with_limit_and_a_reader_resuming_after_its_last_seq_misses_nothing(bus: Bus) -> None:
    published = []
    for n in range(25):
        subject, message = ("order.binance.usdt.btc", order(n)) if n % 4 else ("fill.binance.usdt.btc", fill(n))
        published.append((await bus.publish(subject, message), subject, message))
        await bus.publish("trade.binance.usdt.btc", tick(n))  # ephemeral, between them: never in a page
    orders = [p for p in published if p[1].startswith("order")]
    assert await bus.replay("order.>", limit=5) == orders[:5]
    assert await bus.replay(">", from_seq=3, limit=2) == published[2:4]
    assert await bus.replay("order.>", limit=0) == []
    paged, next_from = [], 1
    while True:
        page = await bus.replay("order.>", next_from, limit=4)
        paged += page
        if len(page) < 4:
            break
        next_from = page[-1][0] + 1
    assert paged == orders
    assert await bus.replay("*.binance.>", from_seq=4, limit=3) == published[3:6]  # two durable kinds, no server filter


async def test_publish_many_keeps_each_batch_together_and_in_order_under_concurrency(bus: Bus) -> None:
    """One command's notifications (fills, then its order) must not be split by another command's on the bus."""
    heard = Collector()
    await bus.subscribe(">", heard)

    async def command(n: int) -> list[int | None]:
        batch: list[tuple[str, Message]] = [("fill.binance.usdt.btc", fill(n * 10 + i)) for i in range(3)]
        batch.append(("order.binance.usdt.btc", order(n * 10 + 9)))
        batch.append(("trade.binance.usdt.btc", tick(n)))  # an ephemeral one in a batch: sent, not kept
        await asyncio.sleep(0)
        return await bus.publish_many(batch)

    results = await asyncio.gather(*(command(n) for n in range(40)))
    for seqs in results:
        assert seqs[-1] is None and seqs[:4] == list(range(seqs[0], seqs[0] + 4))  # type: ignore[operator]
    kept = await bus.replay(">")
    numbers = [_number(m) for _, _, m in kept]
    assert len(numbers) == 160
    for start in range(0, 160, 4):  # batch by batch, as sent
        base = numbers[start] - numbers[start] % 10
        assert numbers[start:start + 4] == [base, base + 1, base + 2, base + 9]
    await heard.wait_for(200)
    assert [_number(m) for _, m in heard.got if not isinstance(m, TradeTick)] == numbers


async def test_ephemeral_subjects_are_not_replayable(bus: Bus) -> None:
    await bus.publish("trade.binance.usdt.btc", tick(1))
    seq = await bus.publish("order.binance.usdt.btc", order(1))
    await bus.publish("log.info", tick(2))  # any message type goes on any subject; only the subject decides
    assert await bus.replay("trade.>") == []
    assert await bus.replay(">") == [(seq, "order.binance.usdt.btc", order(1))]


async def test_subscribers_receive_durable_messages_live(bus: Bus) -> None:
    fills = Collector()
    await bus.subscribe("fill.*.usdt.*", fills)
    await bus.publish("fill.binance.usdt.btc", fill(7))
    await fills.wait_for(1)
    assert fills.got == [("fill.binance.usdt.btc", fill(7))]


async def test_unsubscribe_stops_delivery(bus: Bus) -> None:
    stopped, kept = Collector(), Collector()
    subscription = await bus.subscribe("trade.>", stopped)
    await bus.subscribe("trade.>", kept)
    await bus.publish("trade.binance.usdt.btc", tick(1))
    await stopped.wait_for(1)
    await subscription.unsubscribe()
    await bus.publish("trade.binance.usdt.btc", tick(2))
    await bus.publish("order.binance.usdt.btc", order(3))
    await kept.wait_for(2)
    await asyncio.sleep(0.05)
    assert [m for _, m in stopped.got] == [tick(1)]


async def test_a_handler_may_unsubscribe_itself(bus: Bus) -> None:
    got: list[Message] = []
    subscription = None

    async def once(subject: str, message: Message) -> None:
        got.append(message)
        assert subscription is not None
        await subscription.unsubscribe()
        await asyncio.sleep(0)

    subscription = await bus.subscribe("trade.>", once)
    kept = Collector()
    await bus.subscribe("trade.>", kept)
    for n in range(3):
        await bus.publish("trade.binance.usdt.btc", tick(n))
    await kept.wait_for(3)
    await asyncio.sleep(0.05)
    assert got == [tick(0)]


async def test_a_raising_handler_keeps_its_subscription(bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    got: list[int] = []

    async def fragile(subject: str, message: Message) -> None:
        assert isinstance(message, TradeTick)
        if message.ts % 2 == 0:
            raise ValueError(f"boom {message.ts}")
        got.append(message.ts)

    await bus.subscribe("trade.>", fragile)
    with caplog.at_level(logging.ERROR, logger="coinwire.bus"):
        for n in range(6):
            await bus.publish("trade.binance.usdt.btc", tick(n))
        async with asyncio.timeout(5):
            while len(got) < 3:
                await asyncio.sleep(0.001)
    assert got == [1, 3, 5]
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 3 and all(r.exc_info for r in failures)


async def test_invalid_subjects_and_patterns_are_refused(bus: Bus) -> None:
    for subject in ("trade.*.usdt.btc", "trade.>", "trade..btc", "", "trade.bin ance"):
        with pytest.raises(InvalidInput) as error:
            await bus.publish(subject, tick(1))
        assert error.value.code == "invalid_subject"
    for pattern in ("trade.>.btc", "trade..*", "tr*de.>"):
        with pytest.raises(InvalidInput) as error:
            await bus.subscribe(pattern, Collector())
        assert error.value.code == "invalid_pattern"
    with pytest.raises(TypeError):
        await bus.publish("trade.binance.usdt.btc", {"not": "a message"})  # type: ignore[arg-type]


async def test_ping_reports_health(bus: Bus) -> None:
    assert await bus.ping() is True
    await bus.close()
    assert await bus.ping() is False


async def test_bus_from_url_picks_the_adapter() -> None:
    assert isinstance(bus_from_url(None), MemoryBus)
    assert isinstance(bus_from_url("memory://", namespace="x"), MemoryBus)
    nats_bus = bus_from_url("nats://127.0.0.1:4222", namespace="other")
    assert isinstance(nats_bus, NatsBus) and nats_bus.stream == "other_durable"
    with pytest.raises(InvalidInput) as error:
        bus_from_url("kafka://somewhere")
    assert error.value.code == "unsupported_bus_url"


async def test_nats_start_fails_fast_when_the_server_is_unreachable() -> None:
    bus = NatsBus("nats://127.0.0.1:1", "unreachable", connect_timeout=0.5)
    with pytest.raises(ConnectionError):
        await bus.start()
    with pytest.raises(RuntimeError):
        await bus.publish("trade.binance.usdt.btc", tick(1))

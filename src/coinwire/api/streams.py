"""Resumes one account's order and trade notifications on a connection: what it missed after `since`, then live.

With no gap and no duplicate at the seam.

Every order and trade notification carries its account's sequence number `seq` (consecutive
per account, stamped by the gateway) and is published on a durable subject,
`order.<account>.>` or `fill.<account>.>`, which the bus keeps and can replay (the in-process
bus its newest `bus_max_log` messages, NATS JetStream what its stream keeps). A client that
saw up to `seq` S connects with `?account=ID&since=S` (/rpc or /ws/orders), or sends
`subscribe(channels, account, since=S)`, and `AccountStreams.resume` then:

1. holds the account's live notifications to this connection back (`Notifier.hold`), and
   follows the account;
2. reads both subjects from the bus a page at a time up to the bus's last sequence at that
   moment, merged by bus sequence (the order live receivers saw), and pushes the
   notifications with `seq` > S, the same bytes as live ones, a page at a time at the pace
   the connection reads;
3. releases the hold: what arrived meanwhile goes out in arrival order, except what the
   replay already gave (a set of the sequence numbers sent).

Nothing runs on the path of other connections' notifications: only a connection that holds
pays for holding. Notifications already pushed to a connection cannot be taken back, and what
it missed would come after them: so with the query the hold starts before the connection
receives anything, and `subscribe` with `since` answers `since_not_first` when a notification
of the account may already have reached the connection (every connection receives its user's
accounts' from the start). A `since` whose next notifications the bus no longer keeps answers
`replay_unavailable` with `oldest_seq`, the first `seq` it can still give (so `since` may be
`oldest_seq - 1`); a `since` past the account's latest `seq` is `invalid_since`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any, NamedTuple, NoReturn
from urllib.parse import parse_qs

import structlog

from coinwire.api.context import CallContext
from coinwire.api.notifier import Hold, Notifier, is_acceptance, notification
from coinwire.api.query_values import query_int
from coinwire.bus.base import Bus
from coinwire.core.errors import CoinwireError, DomainError, InvalidInput, NotReady
from coinwire.messages import FillEvent, Message, OrderUpdate, PositionUpdate

__all__ = ["REPLAY_PAGE", "AccountStreams", "ReplayUnavailable", "SeqSet", "StreamQuery", "stream_query"]

log = structlog.get_logger("coinwire.streams")

REPLAY_PAGE = 512  # notifications read from the bus, and pushed, at a time
# channel -> its durable subject kind (the account channels: api.context.ACCOUNT_CHANNELS)
_SUBJECT_OF = {"order": "order", "trade": "fill", "orders_updated": "order", "orders_executed": "order",
               "positions_updated": "position"}


def stream_query(query_string: bytes) -> tuple[int | None, int | None]:
    """`account` and `since` of a WebSocket's query string: whole numbers, `since` only with an `account` (`invalid_params`)."""
    values = {k: v[-1] for k, v in parse_qs(query_string.decode("latin-1")).items()}
    account = None if values.get("account") is None else query_int(values["account"], "account", 0, 1, 2**62)
    since = None if values.get("since") is None else query_int(values["since"], "since", 0, 0, 2**62)
    if since is not None and account is None:
        raise InvalidInput("invalid_params", "since replays one account: name it in `account`", field="since")
    return account, since


class StreamQuery(NamedTuple):
    """What a WebSocket's query asked for: an account (checked), a `since`, and the hold that keeps its notifications back."""

    account_id: int | None
    since: int | None
    hold: Hold | None


class ReplayUnavailable(DomainError):
    """The bus no longer keeps the notifications after `since` (`oldest_seq`: the first it can give)."""

    http_status = 410
    rpc_code = -32006

    def __init__(self, account_id: int, since: int, oldest_seq: int) -> None:
        super().__init__(
            "replay_unavailable",
            f"account {account_id}'s notifications after seq {since} are no longer kept; the oldest kept is seq {oldest_seq} "
            f"(resume with since >= {oldest_seq - 1}, after reading the account's orders afresh)",
            account=account_id, oldest_seq=oldest_seq,
        )


class SeqSet:
    """Sequence numbers sent: every one up to `upto`, plus the few beyond it (replays are nearly consecutive)."""

    __slots__ = ("_beyond", "upto")

    def __init__(self, upto: int) -> None:
        self.upto = upto
        self._beyond: set[int] = set()

    def add(self, seq: int) -> None:
        if seq <= self.upto:
            return
        if seq != self.upto + 1:
            self._beyond.add(seq)
            return
        self.upto = seq
        beyond = self._beyond
        while self.upto + 1 in beyond:
            self.upto += 1
            beyond.remove(self.upto)

    def __contains__(self, seq: int) -> bool:
        return seq <= self.upto or seq in self._beyond


class _Cursor:
    """One durable subject of the account, read a page at a time from the bus, up to bus sequence `bound`.

    Every cursor of a replay stops at the same `bound` (the bus's last sequence once the hold
    began): what came later arrives live, held. Cursors that stopped wherever their last page
    ended would let one subject run ahead of the other (an order before its own fill).
    """

    __slots__ = ("bound", "buffer", "bus", "channel", "done", "next_from", "pattern")

    def __init__(self, bus: Bus, channel: str, pattern: str, bound: int) -> None:
        self.bus = bus
        self.channel = channel
        self.pattern = pattern
        self.bound = bound
        self.next_from = 1
        self.buffer: deque[tuple[int, str, Message]] = deque()
        self.done = bound < 1

    async def fill(self) -> None:
        """Read the next page when nothing is buffered (the last is short, or reaches the bound)."""
        if self.buffer or self.done:
            return
        page = await self.bus.replay(self.pattern, self.next_from, REPLAY_PAGE)
        self.done = len(page) < REPLAY_PAGE or page[-1][0] >= self.bound
        if page:
            self.next_from = page[-1][0] + 1
            self.buffer.extend(item for item in page if item[0] <= self.bound)


class AccountStreams:
    """`resume`: an account's notifications after `since`, then live; built with the bus, the notifier and the accounts' latest seqs."""

    def __init__(self, bus: Bus, notifier: Notifier, latest_seq: Callable[[int], int | Awaitable[int]]) -> None:
        self.bus = bus
        self.notifier = notifier
        # account id -> the seq of its latest notification: the gateway's counters (an api replica asks its process for them)
        self.latest_seq = latest_seq

    # --- the replay -------------------------------------------------------------------------------
    async def resume(self, ctx: CallContext, account_id: int, since: int, channels: Collection[str],
                     hold: Hold | None = None) -> dict[str, Any]:
        """Follow the account on `channels` (order, trade) from `since` on: the missed notifications, then live ones.

        The account must already be checked readable by the caller; `hold`: the one
        `Api.stream_of` made when the connection started (before anything reached it). Answers what was sent before it: `{"account",
        "since", "replayed", "last_seq"}`.
        """
        kinds = [c for c in _SUBJECT_OF if c in channels]
        if not kinds:
            raise InvalidInput("invalid_params", "since replays an account's channels (order, trade, orders_executed, orders_updated, "
                               "positions_updated): name one of them", field="channels")
        answer = self.latest_seq(account_id)
        latest = await answer if isinstance(answer, Awaitable) else answer
        if since > latest:
            raise InvalidInput("invalid_since", f"since {since} is past account {account_id}'s latest seq {latest}",
                               field="since", latest_seq=latest)
        notifier = self.notifier
        if hold is None:
            if notifier.holding(ctx) is not None:
                raise InvalidInput("replay_in_progress", "this connection is already replaying; wait for that answer first")
            if notifier.follows(ctx, account_id) and ctx.channels.intersection(kinds) and notifier.reached_since_added(ctx, account_id):
                raise InvalidInput(
                    "since_not_first",
                    f"account {account_id}'s notifications may already have reached this connection, so a replay could repeat "
                    f"some and send the rest after them: connect with ?account={account_id}&since={since} instead",
                )
            hold = notifier.hold(ctx, account_id)
        hold.replaying = True
        new_follow = account_id not in ctx.followed
        new_channels = [c for c in kinds if c not in ctx.channels]
        sent = {kind: SeqSet(since) for kind in kinds}  # per channel: orders_updated repeats order's seqs
        replayed, last = 0, since
        try:
            ctx.followed.add(account_id)
            await notifier.listen(ctx, new_channels)  # live ones from here on are held
            try:
                # nothing missed (since == latest): no history to read; what is in flight arrives live, held until the end
                bound = await self.bus.last_seq() if since < latest else 0
                cursors = [_Cursor(self.bus, c, f"{_SUBJECT_OF[c]}.{account_id}.>", bound) for c in kinds]
                await self._check_kept(account_id, since, latest)
                merged = _merged(cursors)
                first = await anext(merged, None)
            except BaseException as exc:  # noqa: BLE001 - nothing was sent: the connection is left as it was, then it is raised
                if new_follow:
                    ctx.followed.discard(account_id)
                notifier.unlisten(ctx, new_channels)
                _raise_bus_failure(exc)
            page: list[bytes] = []
            item = first
            while item is not None:
                channel, seq, data = item
                if seq > since and seq not in sent[channel]:
                    sent[channel].add(seq)
                    page.append(data)
                    replayed, last = replayed + 1, max(last, seq)
                    if len(page) >= REPLAY_PAGE:
                        await self._push_page(ctx, page, hold)
                        page = []
                try:
                    item = await anext(merged, None)
                except Exception as exc:  # noqa: BLE001 - raised again, as bus_unavailable unless it is a refusal
                    _raise_bus_failure(exc)
            if page:
                await self._push_page(ctx, page, hold)
            replayed_kinds = frozenset(kinds)
            released = notifier.release(ctx, skip=lambda channel, seq: channel in replayed_kinds and (seq <= since or seq in sent[channel]))
            if released is not None:
                for _, seq, channel, _ in released.items:
                    if channel in replayed_kinds and seq not in sent[channel]:
                        sent[channel].add(seq)
                        replayed, last = replayed + 1, max(last, seq)
        finally:
            if notifier.holding(ctx) is hold:  # refused or interrupted: what was held goes out if the connection still follows it
                follows = notifier.follows(ctx, account_id)
                notifier.release(ctx, skip=None if follows else (lambda channel, seq: True))
        if ctx.drained is not None:
            await ctx.drained()  # everything above is sent before the answer, whatever the sender
        return {"account": account_id, "since": since, "replayed": replayed, "last_seq": last}

    async def _check_kept(self, account_id: int, since: int, latest: int) -> None:
        """`replay_unavailable` unless the bus still keeps the account's notifications from `since + 1` (or none was missed)."""
        if since == latest:
            return
        firsts = []
        for kind in ("order", "fill", "position"):  # the oldest kept of any tells how far back the account's history goes
            first = await self.bus.replay(f"{kind}.{account_id}.>", 1, 1)
            if first:
                firsts.append(_seq(first[0][2]))
        oldest = min(firsts) if firsts else latest + 1
        if oldest > since + 1:
            raise ReplayUnavailable(account_id, since, oldest)

    async def _push_page(self, ctx: CallContext, page: list[bytes], hold: Hold) -> None:
        """Push one page, then wait until the connection has taken it (its pace, never past its unread limit)."""
        if hold.overflowed:
            raise DomainError("slow_consumer", "live notifications outgrew what this connection had not read of its replay")
        if ctx.connection_id not in self.notifier.connections:
            raise DomainError("connection_closed", "the connection closed during its replay")
        push = ctx.push
        if push is not None:
            for data in page:
                push(data)
        if ctx.drained is not None:
            await ctx.drained()


def _raise_bus_failure(exc: BaseException) -> NoReturn:
    """Raise what a replay answers when reading the bus failed: its own refusals as they are, anything else `bus_unavailable`."""
    if isinstance(exc, CoinwireError) or not isinstance(exc, Exception):
        raise exc
    log.warning("replay failed: the bus could not be read", error=str(exc) or type(exc).__name__)
    raise NotReady("bus_unavailable", "the bus could not be read for the replay; try again") from exc


def _seq(message: Message) -> int:
    return message.seq if isinstance(message, (OrderUpdate, FillEvent, PositionUpdate)) else 0


def _encoded(channel: str, message: Message) -> bytes | None:
    """A replayed message as its live notification's bytes on `channel` (`Notifier` encodes the same dict the same way)."""
    if isinstance(message, OrderUpdate):
        if channel == "orders_executed" and not is_acceptance(message.order):
            return None
        return notification(channel, message.order)
    if isinstance(message, FillEvent):
        return notification(channel, message.trade)
    if isinstance(message, PositionUpdate):
        return notification(channel, message.position)
    return None


async def _merged(cursors: list[_Cursor]) -> AsyncIterator[tuple[str, int, bytes]]:
    """(channel, seq, notification bytes) of every cursor's messages, merged by bus sequence."""
    while True:
        for cursor in cursors:
            await cursor.fill()
        live = [c for c in cursors if c.buffer]
        if not live:
            return
        cursor = min(live, key=lambda c: c.buffer[0][0])
        _, _, message = cursor.buffer.popleft()
        data = _encoded(cursor.channel, message)
        if data is not None:
            yield cursor.channel, _seq(message), data

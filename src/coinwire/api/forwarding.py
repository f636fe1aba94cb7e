"""Api calls across processes: an api replica forwards `Api.call` to the gateway's process over NATS request-reply.

Why: the gateway's memory is the truth about accounts, orders and balances, so one process
(the holder of the gateway's leases) runs every method that reads or changes them. An api
replica (`serve --roles api`) authorises locally (the rules table), then sends the method name,
the raw parameters, the caller's identity (a `Principal`: user id, name, role, plan, scopes, the
session's or key's id; never a password or token), the transport and an idempotency key
(`ForwardedCall`) to `<namespace>.gwapi.<exchange>` (a call naming a configured exchange) or
`<namespace>.gwapi._` (the rest). The gateway process answers from `CallResponder`: it rebuilds a
`CallContext` and runs its own `Api.call` (ownership, validation, audit: once, there), then answers
the result's JSON or the CoinwireError's code, message, statuses and data (`CallAnswer`), which the
replica answers its client exactly as one process would.

No process serving the subject (no gateway, one waiting for its lease, one that stepped down)
is retried until `gateway_wait_seconds`, then `gateway_unavailable` (503, retryable). Each try
carries the same key; the responder keeps recent answers by (user, key) and joins a repeat to a
call under way, so a retry after a lost answer yields one result (make_order's client_oid dedupes
per owner across restarts too). Methods that work on the caller's connection (`LOCAL_METHODS`:
subscribe, echo_notify, ...) run in the replica, on an account book the gateway publishes
(`RemoteAccounts`) and latest seqs it answers (`kind="seq"`). docs/SCALING.md "Commands across processes".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from coinwire import metrics
from coinwire.api.context import CallContext
from coinwire.api.json_input import REQUEST_DECODER
from coinwire.api.remote_streams import ALIVE_SECONDS, STREAM_METHODS, RemoteConnections, StreamClient
from coinwire.auth.abilities import Principal
from coinwire.bus.requests import NoResponder, Requests, Responder
from coinwire.core.accounts import Account
from coinwire.core.errors import CoinwireError, NotReady
from coinwire.services.accounts import AccountBook
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.schedules import ScheduleRow

if TYPE_CHECKING:

    from coinwire.api.methods import Api

__all__ = ["LOCAL_METHODS", "GATEWAY_ROUTES", "ForwardedCall", "CallAnswer", "RemoteError", "Forwarder",
           "CallResponder", "RemoteAccounts", "AccountsDelta", "call_subject",
           "gateway_unavailable"]

log = structlog.get_logger("coinwire.forwarding")

# Run in the replica: they work on the caller's connection (its channels, its push), or answer without the gateway.
# (The portfolio and analysis streams are fed in the gateway's process: forwarded with the connection, api/remote_streams.)
LOCAL_METHODS: frozenset[str] = frozenset({
    "authenticate", "echo", "echo_notify", "broadcast_notify", "subscribe", "unsubscribe", "subscribe_ohlcv",
    "unsubscribe_ohlcv",
})
# HTTP routes outside Api.call that reach the gateway or the engine in memory: a replica sends them whole to the
# gateway's process (api/route_forwarding.py) rather than answer from its own (empty) gateway. Prefixes of paths.
# accounts, grants, imports and webhook secrets (the gateway's account book and external accounts), portfolio candles,
# balances and days (the tracker and the ledger), the analyser and signals (its memory; outside signals go to runs),
# the gateway's log feed, and the runs and the seed's strategy API (the engine's runs in memory).
GATEWAY_ROUTES: tuple[str, ...] = (
    "/api/v1/accounts", "/api/v1/webhooks", "/api/v1/portfolio", "/api/v1/analysis", "/api/v1/signals", "/api/v1/logs",
    "/runs", "/run/", "/runnables", "/start", "/cryptick/",
)
SUBJECT = "gwapi"  # <namespace>.gwapi.<exchange> | <namespace>.gwapi._
EVENTS = "gwevents.accounts"  # the gateway's account book, whole, after each change (not kept)
QUEUE = "gwapi"  # one serving process answers each call
_RETRY_PAUSE = 0.1  # seconds between tries while no process serves the subject
_ATTEMPT = 2.0  # seconds one try waits for its answer before trying again (same key: the responder joins them)
_KEEP = 20_000  # answers kept by the responder, newest
_KEEP_SECONDS = 600.0
_KEEP_BYTES = 64 * 1024 * 1024  # and at most this much of them (answers in parts may be large)
_ANSWER_SECONDS = 60.0  # how long an HTTP request a gateway's process has taken may run (a try that timed out reached one)
PARTS = "gwparts"  # <namespace>.gwparts.<replica>: the parts of an answer bigger than PART_BYTES
PART_BYTES = 256 * 1024  # well under NATS's default max_payload (1 MiB), whatever the headers
_PARTS_SECONDS = 10.0  # how long a replica waits for the rest of an answer once its first part came
_PART_HEAD = b"\x00"  # an answer in parts starts with this byte (a JSON answer never does), then the part count


class ForwardedCall(msgspec.Struct, frozen=True, omit_defaults=True):
    """One call sent to the gateway's process (`kind`: "call"; "seq" and "accounts" are the replica's own reads)."""

    method: str
    params: msgspec.Raw = msgspec.Raw(b"{}")
    principal: Principal | None = None
    transport: str = "http"
    key: str = ""
    kind: str = "call"  # "call" | "http" (an HTTP request in `params`: api/route_forwarding.py) | "job" | "seq" | "accounts"
    #                     | "alive" (a replica's connections with streams, in `params`: api/remote_streams.py)
    account: int = 0
    tick: int = 0  # a job's tick (epoch ms), its schedule in `params`
    reply_to: str = ""  # where the parts of an answer too big for one NATS message go (the replica's `gwparts.<id>`)
    reply_id: str = ""  # what those parts are tagged with: one per call the replica makes (never shared by two callers)
    connection: str = ""  # a stream method's caller, `<replica>.<connection id>` (api/remote_streams.py)


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str
    http_status: int
    rpc_code: int
    data: dict[str, Any] = {}
    internal: bool = False


class CallAnswer(msgspec.Struct, frozen=True):
    """The result's JSON (as the transports would encode it) or the error (then `result` is null)."""

    result: msgspec.Raw = msgspec.Raw(b"null")
    error: ErrorBody | None = None


class AccountsDelta(msgspec.Struct, frozen=True, omit_defaults=True):
    """What changed in the gateway's account book (a page of it, when a replica loads it: `done` on the last one).

    `members`: the whole member map (user id -> role) of each account whose members changed; `reload`: the
    gateway's process started, a replica loads the book again (it may have missed the last change before).
    """

    accounts: list[Account] = []
    removed: list[int] = []
    members: dict[int, dict[int, str]] = {}
    done: bool = True
    reload: bool = False


class RemoteError(CoinwireError):
    """A CoinwireError the gateway's process answered, with its statuses: the replica answers it as that process would."""

    def __init__(self, body: ErrorBody) -> None:
        super().__init__(body.code, body.message, **body.data)
        self.http_status = body.http_status
        self.rpc_code = body.rpc_code


class ForwardedBug(RuntimeError):
    """The gateway's process failed with a bug (logged there): the transports answer `internal_error`, as for one of their own."""


_encode = msgspec.json.Encoder().encode  # the transports' encoder: results come back as the same bytes
_params_encode = msgspec.json.Encoder(decimal_format="number").encode  # request numbers stay numbers
_call_decode = msgspec.json.Decoder(ForwardedCall).decode
_answer_decode = msgspec.json.Decoder(CallAnswer).decode
_delta_decode = msgspec.json.Decoder(AccountsDelta).decode
_row_decode = msgspec.json.Decoder(ScheduleRow).decode
ACCOUNTS_PAGE = 2000  # accounts in one answer to a replica loading the book (a NATS message stays well under its 1 MB)


def gateway_unavailable(waited: float) -> NotReady:
    """No gateway answered within the wait: retryable (503, `retry_after`), and the retry is safe with the same key."""
    return NotReady("gateway_unavailable", f"no gateway answered within {waited:g} s; try again (the same "
                    "Idempotency-Key or client_oid yields one result)", retry_after=1)


def call_subject(raw: Mapping[str, Any] | None, exchanges: Collection[str]) -> str:
    """`gwapi.<exchange>` for a call naming a configured exchange, `gwapi._` otherwise."""
    exchange = raw.get("exchange") if raw else None
    return f"{SUBJECT}.{exchange}" if isinstance(exchange, str) and exchange in exchanges else f"{SUBJECT}._"


class Forwarder:
    """The replica's side: `call` sends one Api call to the gateway's process and answers what it answered."""

    def __init__(self, requests: Requests, exchanges: Collection[str], wait_seconds: float) -> None:
        self.requests = requests
        self.exchanges = frozenset(exchanges)
        self.wait_seconds = wait_seconds
        self.instance = uuid.uuid4().hex[:12]
        self.reply_to = f"{PARTS}.{self.instance}"
        self._parts: dict[str, dict[int, bytes]] = {}  # reply id -> the parts of its answer come so far (index -> bytes)
        self._part_came: dict[str, asyncio.Event] = {}
        self._listening: Responder | None = None
        self.streams: StreamClient | None = None  # the connections' streams fed in the gateway's process (set by the app)

    async def start(self) -> None:
        """Listen for the parts of big answers (a result or a response over PART_BYTES) sent to this replica."""
        self._listening = await self.requests.listen(self.reply_to, self._on_part)

    async def close(self) -> None:
        if self._listening is not None:
            await self._listening.stop()

    def _on_part(self, subject: str, data: bytes) -> None:
        reply_id, index, part = _split_part(data)
        parts = self._parts.get(reply_id)
        if parts is not None:  # else an answer nobody waits for any more (a try given up): dropped
            parts[index] = part
            self._part_came[reply_id].set()

    async def call(self, name: str, raw: dict[str, Any] | None, ctx: CallContext) -> msgspec.Raw:
        # a client's key is its own per method (a key reused on another method is another call); else one per call
        key = f"{name}:{ctx.idempotency_key}" if ctx.idempotency_key else f"{self.instance}:{uuid.uuid4().hex}"
        reply_id = uuid.uuid4().hex
        connection = self.streams.connection(ctx) if self.streams is not None and name in STREAM_METHODS else ""
        body = _encode(ForwardedCall(name, msgspec.Raw(_params_encode(raw or {})), ctx.principal, ctx.transport, key,
                                     reply_to=self.reply_to, reply_id=reply_id, connection=connection))
        started = time.perf_counter()
        try:
            answer = _answer_decode(await self._ask(call_subject(raw, self.exchanges), body, reply_id))
        except NotReady:
            metrics.FORWARDED.labels("gateway_unavailable").observe(time.perf_counter() - started)
            raise
        metrics.FORWARDED.labels("ok" if answer.error is None else "error").observe(time.perf_counter() - started)
        if answer.error is not None:
            if answer.error.internal:
                raise ForwardedBug(f"{name} failed in the gateway's process")
            raise RemoteError(answer.error)
        if connection and self.streams is not None:
            self.streams.answered(name, raw, ctx, answer.result)
        return answer.result

    async def alive(self, connections: list[str]) -> list[str]:
        """Name this replica's connections with streams to the gateway's process; answers those it has (remote_streams)."""
        body = _encode(ForwardedCall("", msgspec.Raw(_encode(connections)), kind="alive"))
        return list(msgspec.json.decode(await self._ask(f"{SUBJECT}._", body, wait=ALIVE_SECONDS), type=list[str]))

    async def latest_seq(self, account_id: int) -> int:
        """The account's latest notification seq, from the gateway's counters (`subscribe` with `since`)."""
        reply = await self._ask(f"{SUBJECT}._", _encode(ForwardedCall("", kind="seq", account=account_id)))
        return int(msgspec.json.decode(reply))

    async def accounts(self, after: int = 0) -> bytes:
        """A page of the gateway's account book: the accounts with ids above `after` (`AccountsDelta`)."""
        return await self._ask(f"{SUBJECT}._", _encode(ForwardedCall("", kind="accounts", account=after)))

    async def request(self, principal: Principal | None, key: str, request: bytes) -> bytes:
        """The answer of the gateway's process to an HTTP request (api/route_forwarding.py), tried as a call is.

        A try that timed out reached a process, which may still be running it: tries go on (joined
        there by the key) for up to a minute, not only `gateway_wait_seconds`.
        """
        reply_id = uuid.uuid4().hex
        body = _encode(ForwardedCall("HTTP", msgspec.Raw(request), principal, "http", key, kind="http", reply_to=self.reply_to,
                                     reply_id=reply_id))
        started = time.perf_counter()
        try:
            answer = await self._ask(f"{SUBJECT}._", body, reply_id, answer_seconds=_ANSWER_SECONDS)
        except NotReady:
            metrics.FORWARDED.labels("gateway_unavailable").observe(time.perf_counter() - started)
            raise
        metrics.FORWARDED.labels("ok").observe(time.perf_counter() - started)
        return answer

    async def run_job(self, row: ScheduleRow, tick: int) -> None:
        """A claimed tick's job, run by the gateway's process (`Scheduler.run_job` there): a scheduler apart dispatches here.

        Its key is the tick's own: a retry after a lost answer joins or repeats that one run.
        """
        key, reply_id = f"job:{row.id}:{tick}", uuid.uuid4().hex
        body = _encode(ForwardedCall(row.job_kind, msgspec.Raw(_encode(row)), None, "job", key, kind="job", tick=tick,
                                     reply_to=self.reply_to, reply_id=reply_id))
        # a tick is claimed once: a failover (no gateway for a lease or two) is waited out rather than losing the tick
        answer = _answer_decode(await self._ask(f"{SUBJECT}._", body, reply_id, answer_seconds=_ANSWER_SECONDS,
                                                wait=max(self.wait_seconds, _ANSWER_SECONDS)))
        if answer.error is not None:
            if answer.error.internal:
                raise ForwardedBug(f"the {row.job_kind} job failed in the gateway's process")
            raise RemoteError(answer.error)

    async def _ask(self, subject: str, body: bytes, reply_id: str = "", answer_seconds: float = 0.0,
                   wait: float | None = None) -> bytes:
        started = time.monotonic()
        waiting = self.wait_seconds if wait is None else wait
        deadline = started + waiting
        if reply_id:
            self._parts[reply_id], self._part_came[reply_id] = {}, asyncio.Event()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise gateway_unavailable(waiting)
                try:
                    answer = await self.requests.request(subject, body, min(remaining, _ATTEMPT))
                except NoResponder as exc:
                    metrics.FORWARD_RETRIES.labels().inc()
                    if exc.timed_out and answer_seconds:  # a process has it: wait for its answer longer
                        deadline = max(deadline, started + answer_seconds)
                else:
                    return await self._whole(reply_id, answer, waiting) if answer.startswith(_PART_HEAD) else answer
                await asyncio.sleep(min(_RETRY_PAUSE, max(0.0, deadline - time.monotonic())))
        finally:
            if reply_id:
                self._parts.pop(reply_id, None)
                self._part_came.pop(reply_id, None)

    async def _whole(self, reply_id: str, head: bytes, waiting: float) -> bytes:
        """An answer sent in parts: the first came as the reply (with the count), the others on this replica's subject.

        Parts that do not all come (the bus lost one) answer `gateway_unavailable`: a retry with the same key
        gets the kept answer again.
        """
        count, first = int.from_bytes(head[1:5], "big"), head[5:]
        parts, came = self._parts.get(reply_id), self._part_came.get(reply_id)
        if parts is None or came is None:
            raise gateway_unavailable(waiting)
        parts[0] = first
        try:
            async with asyncio.timeout(_PARTS_SECONDS):
                while len(parts) < count:
                    came.clear()
                    await came.wait()
        except TimeoutError:
            raise gateway_unavailable(waiting) from None
        return b"".join(parts[i] for i in range(count))


class CallResponder:
    """The gateway process's side: answers forwarded calls with its own `Api.call` while it holds its leases."""

    def __init__(self, api: Api, requests: Requests, exchanges: Collection[str], lost: Callable[[], str | None],
                 accounts: AccountBook, seqs: Callable[[int], int], page_size: int = ACCOUNTS_PAGE,
                 routes: Callable[[ForwardedCall], Awaitable[tuple[bytes, bool]]] | None = None,
                 jobs: Callable[[ScheduleRow, int], Awaitable[None]] | None = None,
                 remote: RemoteConnections | None = None) -> None:
        self.api = api
        self.remote = remote  # the replicas' connections with streams here (api/remote_streams.py); None: none served
        self.routes = routes  # runs a forwarded HTTP request (api/route_forwarding.py RouteRunner); None: none served
        self.jobs = jobs  # runs a scheduled job's tick (services.scheduler.Scheduler.run_job); None: none served
        self.requests = requests
        self.exchanges = list(exchanges)
        self.lost = lost  # why the gateway stepped down (its leases), or None while it writes
        self.accounts = accounts
        self.seqs = seqs
        self.page_size = page_size
        self._sent: tuple[dict[int, Account], dict[int, dict[int, str]]] = ({}, {})  # the book as last published
        self._served: list[Responder] = []
        self._answers: OrderedDict[tuple[int | None, str], tuple[float, bytes]] = OrderedDict()
        self._kept_bytes = 0
        self._pending: dict[tuple[int | None, str], asyncio.Future[bytes]] = {}
        self._watch: asyncio.Task[None] | None = None
        self._announce: asyncio.Task[None] | None = None
        self._dirty = False

    async def start(self) -> None:
        """Serve `gwapi.<exchange>` of the shard and `gwapi._`; publish the account book now and after each change."""
        self.accounts.changed.append(self._accounts_changed)
        await self._serve()
        self._watch = asyncio.create_task(self._watch_lease(), name="gwapi-lease-watch")

    async def _serve(self) -> None:
        for subject in [f"{SUBJECT}.{e}" for e in self.exchanges] + [f"{SUBJECT}._"]:
            self._served.append(await self.requests.serve(subject, self.handle, QUEUE))
        self._sent = (dict(self.accounts.accounts), {i: dict(m) for i, m in self.accounts.members.items()})
        await self._emit(AccountsDelta(reload=True))  # replicas that outlived the previous holder load the book again

    async def close(self) -> None:
        for task in (self._watch, self._announce):  # the watch first: it would serve again what is stopped below
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        served, self._served = self._served, []
        for responder in served:
            await responder.stop()
        if self._accounts_changed in self.accounts.changed:
            self.accounts.changed.remove(self._accounts_changed)

    async def _watch_lease(self) -> None:
        """A gateway that stepped down stops serving (replicas wait for, and reach, the next holder); one that took
        its shard back (services.gateway_leases) serves again."""
        while True:
            lost = self.lost()
            if lost is not None and self._served:
                log.warning("forwarded calls no longer served: the gateway stepped down", reason=lost)
                served, self._served = self._served, []
                for responder in served:
                    await responder.stop()
            elif lost is None and not self._served:
                log.info("forwarded calls served again: the gateway took its shard back")
                await self._serve()
            await asyncio.sleep(0.25)

    def _accounts_changed(self) -> None:
        self._dirty = True
        if self._announce is None or self._announce.done():  # coalesced: changes in one loop turn make one message
            self._announce = asyncio.get_running_loop().create_task(self._announce_changes())

    async def _announce_changes(self) -> None:
        while self._dirty:  # a change made while one was being sent goes in the next message
            self._dirty = False
            await self._emit(None)

    async def _emit(self, delta: AccountsDelta | None) -> None:
        """Publish `delta`, or what changed in the book since the last one published (each change is small)."""
        try:
            await self.requests.emit(EVENTS, _encode(delta if delta is not None else self._changes()))
        except Exception:  # noqa: BLE001 - the bus is away: replicas load the book again at the next start
            log.warning("the account book's change could not be published")

    def _changes(self) -> AccountsDelta:
        book, (accounts, members) = self.accounts, self._sent
        changed = [a for i, a in book.accounts.items() if accounts.get(i) != a]
        removed = [i for i in accounts if i not in book.accounts]
        granted = {i: dict(m) for i, m in book.members.items() if members.get(i) != m}
        granted.update({i: {} for i in members if i not in book.members})
        self._sent = (dict(book.accounts), {i: dict(m) for i, m in book.members.items()})
        return AccountsDelta(changed, removed, granted)

    def page(self, after: int) -> bytes:
        """The accounts with ids above `after`, at most `page_size`, and their members (`done` on the last page)."""
        book = self.accounts
        ids = sorted(i for i in book.accounts if i > after)
        taken = ids[:self.page_size]
        return _encode(AccountsDelta([book.accounts[i] for i in taken], [],
                                     {i: dict(book.members[i]) for i in taken if i in book.members}, len(ids) <= self.page_size))

    async def handle(self, data: bytes) -> bytes | None:
        if self.lost() is not None:
            return None  # not this process's to answer any more: the caller retries until the next holder serves
        try:
            call = _call_decode(data)
        except msgspec.DecodeError:
            log.warning("an undecodable forwarded call was dropped")
            return None
        answer = await self._answer(call)
        if len(answer) <= PART_BYTES or not call.reply_to or not call.reply_id:
            return answer
        # too big for one NATS message: every part but the first to the replica's subject, the first (and the count) as
        # the reply; a repeat of the key sends them again (the replica keeps the parts of the try it waits on)
        parts = [answer[i:i + PART_BYTES] for i in range(0, len(answer), PART_BYTES)]
        for index, part in enumerate(parts[1:], 1):
            await self.requests.emit(call.reply_to, _join_part(call.reply_id, index, part))
        return _PART_HEAD + len(parts).to_bytes(4, "big") + parts[0]

    async def _answer(self, call: ForwardedCall) -> bytes:
        if call.kind == "seq":
            return _encode(self.seqs(call.account))
        if call.kind == "accounts":
            return self.page(call.account)
        if call.kind == "alive":
            named = msgspec.json.decode(call.params, type=list[str])
            return _encode(self.remote.alive(named) if self.remote is not None else [])
        key = (call.principal.user_id if call.principal is not None else None, call.key)
        kept = self._answers.get(key)
        if kept is not None:
            return kept[1]
        running = self._pending.get(key)
        if running is not None:  # a retry of a call under way: one run, both answered
            return await asyncio.shield(running)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer, keep = await self._run(call)
        except BaseException:  # cancelled (the process stops): a joined retry is cancelled too, and tries again
            future.cancel()
            raise
        finally:
            self._pending.pop(key, None)
        future.set_result(answer)
        if keep:
            self._keep(key, answer)
        return answer

    async def _run(self, call: ForwardedCall) -> tuple[bytes, bool]:
        """The call's answer, and whether to keep it for repeats (not a passing outage: a retry should run again)."""
        if call.kind == "http":
            if self.routes is None:
                return _encode(CallAnswer(error=_error_body(NotReady("method_not_served", "this process serves no HTTP routes")))), False
            return await self.routes(call)
        if call.connection and self.remote is not None:  # a replica connection's stream: fed here, pushed back there
            ctx = self.remote.context(call.connection, call.principal, call.transport)
        else:
            ctx = CallContext(call.transport, principal=call.principal)
        try:
            if call.kind == "job":  # a tick a scheduler apart claimed: run here, where the runs and the market data are
                if self.jobs is None:
                    raise NotReady("method_not_served", "this process runs no scheduled jobs")
                await self.jobs(_row_decode(call.params), call.tick)
                return _encode(CallAnswer()), True
            raw = REQUEST_DECODER.decode(call.params)
            if call.method not in self.api.methods or not isinstance(raw, dict):
                raise NotReady("method_not_served", f"the gateway's process does not serve {call.method!r}")
            result = await self.api.call(call.method, raw, ctx)
            return _encode(CallAnswer(result=msgspec.Raw(_encode(result)))), True
        except CoinwireError as exc:
            return _encode(CallAnswer(error=_error_body(exc))), exc.http_status < 500
        except Exception as exc:
            if store_unreachable(exc):
                return _encode(CallAnswer(error=_error_body(store_unavailable()))), False
            log.exception("forwarded call failed", method=call.method)
            return _encode(CallAnswer(error=ErrorBody("internal_error", "Internal error", 500, -32603, internal=True))), False

    def _keep(self, key: tuple[int | None, str], answer: bytes) -> None:
        now = time.monotonic()
        answers = self._answers
        previous = answers.pop(key, None)
        if previous is not None:
            self._kept_bytes -= len(previous[1])
        answers[key] = (now, answer)
        self._kept_bytes += len(answer)
        while answers and (len(answers) > _KEEP or self._kept_bytes > _KEEP_BYTES
                           or next(iter(answers.values()))[0] < now - _KEEP_SECONDS):
            self._kept_bytes -= len(answers.popitem(last=False)[1][1])


def _join_part(reply_id: str, index: int, part: bytes) -> bytes:
    raw = reply_id.encode()
    return len(raw).to_bytes(2, "big") + raw + index.to_bytes(4, "big") + part


def _split_part(data: bytes) -> tuple[str, int, bytes]:
    size = int.from_bytes(data[:2], "big")
    return data[2:2 + size].decode(), int.from_bytes(data[2 + size:6 + size], "big"), data[6 + size:]


def _error_body(exc: CoinwireError) -> ErrorBody:
    return ErrorBody(exc.code, exc.message, exc.http_status, exc.rpc_code, dict(exc.data))


class RemoteAccounts:
    """The replica's account book: the gateway's, loaded a page at a time, then kept by the changes it publishes.

    The notifier routes an account's notifications to the connections that may view it, and
    `subscribe` checks the account a caller names: both read this book, as in one process.
    Changes that arrive while it loads wait, then apply in order.
    """

    def __init__(self, forwarder: Forwarder, requests: Requests, book: AccountBook) -> None:
        self.forwarder = forwarder
        self.requests = requests
        self.book = book
        self.loaded = False
        self._waiting: list[AccountsDelta] | None = []  # changes during a load (None: applied as they come)
        self._listening: Responder | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False

    async def start(self) -> None:
        self._listening = await self.requests.listen(EVENTS, self._on_event)
        self._task = asyncio.create_task(self._load(), name="remote-accounts")

    def _on_event(self, subject: str, data: bytes) -> None:
        try:
            delta = _delta_decode(data)
        except msgspec.DecodeError:
            log.warning("an undecodable account book change was dropped")
            return
        if delta.reload:
            if self._task is not None and not self._task.done():
                self._again = True
            else:
                self._waiting = []
                self._task = asyncio.get_running_loop().create_task(self._load(), name="remote-accounts")
        elif self._waiting is not None:
            self._waiting.append(delta)
        else:
            self.apply(delta)

    async def _load(self) -> None:
        """Ask the gateway's process for its book a page at a time until one answers; then apply what came meanwhile."""
        while True:
            accounts: list[Account] = []
            members: dict[int, dict[int, str]] = {}
            try:
                after = 0
                while True:
                    page = _delta_decode(await self.forwarder.accounts(after))
                    accounts += page.accounts
                    members.update(page.members)
                    if page.done or not page.accounts:
                        break
                    after = page.accounts[-1].id
            except NotReady:
                await asyncio.sleep(0.5)
                continue
            if self._again:  # the gateway restarted during the load: once more
                self._again = False
                continue
            break
        self.book.load(accounts, [(a, u, r) for a, users in members.items() for u, r in users.items()])
        waiting, self._waiting = self._waiting or [], None
        for delta in waiting:
            self.apply(delta)
        self.loaded = True

    def apply(self, delta: AccountsDelta) -> None:
        book = self.book
        for account in delta.accounts:
            book.add(account)
        for account_id in delta.removed:
            gone = book.accounts.get(account_id)
            if gone is not None:
                book.forget(gone)
        for account_id, now in delta.members.items():
            before = book.members_of(account_id)
            for user_id in before.keys() - now.keys():
                book.set_member(account_id, user_id, None)
            for user_id, role in now.items():
                if before.get(user_id) != role:
                    book.set_member(account_id, user_id, role)

    async def close(self) -> None:
        if self._listening is not None:
            await self._listening.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

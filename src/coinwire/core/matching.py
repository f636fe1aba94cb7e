"""Paper matching of our orders against a mirrored L2 book: takers, resting makers, queue position.

The public book is the market and our orders are virtual: they never change the book and
never trade with each other (self-trade prevention). Three rules keep the simulation honest:

* Liquidity consumption (double trade protection). Size our orders took at a public level
  is remembered per (side, price) and is not available again until the feed touches that
  level (a delta naming its price, or a snapshot): available = displayed - consumed.
* Queue position. A resting order joins behind the size displayed at its price on its own
  side (`queue_ahead`). Public trades at that price hitting our side eat the queue first,
  then fill our orders in time priority; a level shrinking below the queue shortens it.
  One public trade's volume is never given twice.
* Trade-through and cross. A public trade at a strictly better-for-us price, or the
  opposite side of the book moving onto our price, fills the order as maker at its own
  limit, up to the trade's size or the crossing levels' available size (which is consumed).

Fills come back as immutable `Fill`s with notional and fee in ATTO; orders move through
their state machine here. Everything is integer arithmetic on caller-supplied timestamps.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from heapq import heapify, heappop, heappush

from coinwire.core.book import L2Book, Level
from coinwire.core.errors import DomainError, NotFound
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.orders import DoneReason, Fill, InvalidTransition, Order, OrderStatus, OrderType, Side

__all__ = ["MatchingEngine", "Levels"]

Levels = Iterable[Level]  # (price units, absolute size units); size 0 removes a level

_BUY = Side.BUY
_SELL = Side.SELL
_OPEN = OrderStatus.OPEN
_DONE = OrderStatus.DONE
_PENDING = OrderStatus.PENDING
_TRIGGERED = OrderStatus.TRIGGERED
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_FOK = OrderType.FOK
_POST_ONLY = OrderType.POST_ONLY
_FILLED = DoneReason.FILLED
_CANCELLED = DoneReason.CANCELLED


class MatchingEngine:
    """One instrument's paper venue: our orders against the mirrored public book.

    `open_orders` holds the resting orders (read it freely; change it only through
    `submit`, `cancel`, `expire`, `restore` and `clear_orders`, which keep the price
    levels, queues and expiry schedule in step).
    """

    __slots__ = (
        "instrument",
        "book",
        "open_orders",
        "_fill_ids",
        "_to_atto",
        "_fee",
        "_queue_ahead",
        "_consumed_bids",
        "_consumed_asks",
        "_own_bids",
        "_own_asks",
        "_own_bid_keys",
        "_own_ask_keys",
        "_expiries",
    )

    def __init__(self, instrument: Instrument, fill_ids: IdSequence, book: L2Book | None = None) -> None:
        self.instrument = instrument
        self.book = book if book is not None else L2Book()
        self.open_orders: dict[int, Order] = {}
        self._fill_ids = fill_ids
        self._to_atto = instrument.notional_to_atto
        self._fee = instrument.fee_atto
        self._queue_ahead: dict[int, int] = {}  # order id -> public size ahead of it at its price
        self._consumed_bids: dict[int, int] = {}  # public bid price -> size our sells took there
        self._consumed_asks: dict[int, int] = {}  # public ask price -> size our buys took there
        # our resting orders: price -> {order id: order} (insertion order = time priority),
        # plus sorted keys best first (bids negated, as in L2Book)
        self._own_bids: dict[int, dict[int, Order]] = {}
        self._own_asks: dict[int, dict[int, Order]] = {}
        self._own_bid_keys: list[int] = []
        self._own_ask_keys: list[int] = []
        self._expiries: list[tuple[int, int]] = []  # heap of (expires_at, order id); stale entries skipped

    # --- market data ----------------------------------------------------------------------
    def on_snapshot(self, bids: Levels, asks: Levels, ts: int) -> list[Fill]:
        """Replace the book and forget all consumption; resting orders now crossed fill as makers."""
        book = self.book
        book.load(bids, asks)
        self._consumed_bids.clear()
        self._consumed_asks.clear()
        queue_ahead = self._queue_ahead
        for oid, order in self.open_orders.items():
            shown = book.size_at(order.side, order.limit)
            if queue_ahead[oid] > shown:
                queue_ahead[oid] = shown
        fills: list[Fill] = []
        self._cross(True, ts, fills)
        self._cross(False, ts, fills)
        return fills

    def on_levels(self, bids: Levels, asks: Levels, ts: int) -> list[Fill]:
        """Apply absolute level sizes (0 removes); touched levels regain their full size for us."""
        book = self.book
        if not self.open_orders and not self._consumed_bids and not self._consumed_asks:
            book.apply(bids, asks)  # fast path: nothing of ours can notice the change
            return []
        fills: list[Fill] = []
        if bids:  # an untouched side cannot newly reach our orders: skip it (empty lists are common)
            self._touch(bids, book.set_bid, self._consumed_bids, self._own_bids)
        if asks:
            self._touch(asks, book.set_ask, self._consumed_asks, self._own_asks)
            self._cross(True, ts, fills)
        if bids:
            self._cross(False, ts, fills)
        return fills

    def on_trade(self, price: int, size: int, aggressor: Side, ts: int) -> list[Fill]:
        """A public trade: shortens queues at its price and fills our orders it reached or traded through."""
        hits_bids = aggressor is _SELL
        keys = self._own_bid_keys if hits_bids else self._own_ask_keys
        if not keys or size <= 0:
            return []
        own = self._own_bids if hits_bids else self._own_asks
        queue_ahead = self._queue_ahead
        fill = self._fill
        fills: list[Fill] = []
        done: list[Order] = []
        used = 0  # volume of this trade already given to our orders
        for key in keys:  # best first; only levels at least as good as the trade price for us
            ours = -key if hits_bids else key
            if (ours < price) if hits_bids else (ours > price):
                break
            through = ours != price
            for oid, order in own[ours].items():
                if through:
                    queue_ahead[oid] = 0  # it printed beyond our price: all that was ahead of us traded
                    reach = size - used
                else:
                    ahead = queue_ahead[oid]
                    reach = size - ahead - used
                    queue_ahead[oid] = ahead - size if ahead > size else 0
                if reach > 0:
                    remaining = order.size - order.filled_size
                    take = reach if reach < remaining else remaining
                    used += take
                    fills.append(fill(order, ours, take, True, ts))
                    if take == remaining:
                        done.append(order)
        for order in done:
            self._unrest(order)
        return fills

    # --- orders -----------------------------------------------------------------------------
    def submit(self, order: Order, ts: int, as_type: OrderType | None = None, max_size: int | None = None) -> list[Fill]:
        """Execute a validated, funded pending order now; rest what a LIMIT or POST_ONLY leaves.

        MARKET walks the book with no limit, IOC within its limit, and both cancel what is
        left; FOK fills completely within its limit or is killed with no fills; POST_ONLY
        raises `post_only_would_take` before touching anything if it would take liquidity.

        A triggered conditional order is executed as its child: `as_type` (MARKET, LIMIT, IOC
        or FOK) says which, and the order keeps its own `type`. `max_size` caps what a MARKET
        takes (a triggered market buy's budget buys no more); the rest is cancelled.
        """
        if order.status is not _PENDING and (as_type is None or order.status is not _TRIGGERED):
            raise InvalidTransition(f"order {order.id}: submit needs a pending order, not {order.status.value}")
        kind = order.type if as_type is None else as_type
        side = order.side
        limit = None if kind is _MARKET else order.limit
        book = self.book
        if side is _BUY:
            best = book.best_ask()
            reaches = best is not None and (limit is None or best <= limit)
        else:
            best = book.best_bid()
            reaches = best is not None and (limit is None or best >= limit)
        fills: list[Fill] = []
        if reaches:  # the displayed book is in reach; what is still available decides the rest
            if kind is _POST_ONLY:
                if next(self.available_levels(side, limit), None) is not None:
                    raise DomainError(
                        "post_only_would_take",
                        f"post-only {side.value} at {self.instrument.price_str(order.limit)} would take liquidity",
                        order_id=order.id,
                    )
            elif kind is not _FOK or self.preview(side, order.size, limit)[0] == order.size:  # else killed below
                consumed = self._consumed_asks if side is _BUY else self._consumed_bids
                fill = self._fill
                remaining = order.size - order.filled_size
                if max_size is not None and max_size < remaining:
                    remaining = max_size
                for price, available in self.available_levels(side, limit):
                    take = available if available < remaining else remaining
                    consumed[price] = consumed.get(price, 0) + take
                    fills.append(fill(order, price, take, False, ts))
                    remaining -= take
                    if not remaining:
                        break
        order.exchange_at = ts
        if kind is _FOK and not fills:
            order.move(_DONE, ts, DoneReason.KILLED)
            return fills
        if order.filled_size == order.size:
            order.move(_DONE, ts, _FILLED)
        elif kind is _LIMIT or kind is _POST_ONLY:  # OrderType.rests, without the slow enum property
            order.move(_OPEN, ts)
            self._rest(order)
        else:
            order.move(_DONE, ts, _CANCELLED)
        return fills

    def preview(self, side: Side, size: int, limit: int | None) -> tuple[int, int]:
        """(size that would fill now, its notional in ATTO), changing nothing: for funds checks."""
        filled = 0
        notional = 0
        for price, available in self.available_levels(side, limit):
            take = min(available, size - filled)
            filled += take
            notional += price * take
            if filled >= size:
                break
        return filled, notional * self._to_atto

    def cancel(self, order_id: int, ts: int) -> Order:
        """Cancel a resting order (done/cancelled); NotFound if it is not resting here."""
        order = self.open_orders.get(order_id)
        if order is None:
            raise NotFound(
                "order_not_found", f"order {order_id} is not open on {self.instrument.symbol}", order_id=order_id
            )
        self._unrest(order)
        order.move(_DONE, ts, _CANCELLED)
        return order

    def expire(self, ts: int) -> list[Order]:
        """Retire resting orders whose cancel_after has elapsed by `ts` (done/expired)."""
        heap = self._expiries
        open_orders = self.open_orders
        expired: list[Order] = []
        while heap and heap[0][0] <= ts:
            order = open_orders.get(heappop(heap)[1])
            if order is not None:
                self._unrest(order)
                order.move(_DONE, ts, DoneReason.EXPIRED)
                expired.append(order)
        return expired

    def next_expiry(self) -> int | None:
        """The earliest instant at which `expire` has work, so a scheduler can sleep until then."""
        heap = self._expiries
        while heap and heap[0][1] not in self.open_orders:
            heappop(heap)  # drop entries of orders that already left the book
        return heap[0][0] if heap else None

    def restore(self, order: Order) -> None:
        """Put back an open order recovered from storage; it rejoins the queue at the back.

        A triggered stop-limit or take-profit-limit whose limit child rests is open too.

        If the book already crosses it, it fills as maker at the next change of the opposite side.
        """
        if order.status is not _OPEN or not (order.type.rests or order.type.child_is_limit) or order.id in self.open_orders:
            raise InvalidTransition(f"order {order.id}: only an open resting order not already here can be restored")
        self._rest(order)

    def clear_orders(self) -> None:
        """Forget every resting order without changing them (before restoring from storage)."""
        self.open_orders.clear()
        self._queue_ahead.clear()
        self._own_bids.clear()
        self._own_asks.clear()
        self._own_bid_keys.clear()
        self._own_ask_keys.clear()
        self._expiries.clear()

    def queue_ahead(self, order_id: int) -> int:
        """Public size still ahead of a resting order at its price (NotFound if not resting)."""
        ahead = self._queue_ahead.get(order_id)
        if ahead is None:
            raise NotFound("order_not_found", f"order {order_id} is not open on {self.instrument.symbol}")
        return ahead

    def available(self, side: Side, price: int) -> int:
        """Public size at one level of `side` (BUY = bids) still available to us: displayed - consumed."""
        consumed = self._consumed_bids if side is _BUY else self._consumed_asks
        return max(self.book.size_at(side, price) - consumed.get(price, 0), 0)

    def available_levels(self, side: Side, limit: int | None) -> Iterator[Level]:
        """Opposite levels an order of `side` may take within `limit`, best first, as (price, available).

        Public because core.execution walks them too. Callers may consume at the level just yielded
        before asking for the next one.
        """
        book = self.book
        if side is _BUY:
            sizes, consumed, sign, opposite = book.asks, self._consumed_asks, 1, _SELL
        else:
            sizes, consumed, sign, opposite = book.bids, self._consumed_bids, -1, _BUY
        bound = None if limit is None else sign * limit  # signed so that "worse" is always "greater"
        for price in book.iter_prices(opposite):
            if bound is not None and sign * price > bound:
                return
            available = sizes[price] - consumed.get(price, 0)
            if available > 0:
                yield price, available

    def _fill(self, order: Order, price: int, size: int, maker: bool, ts: int) -> Fill:
        """Record one execution on `order` (done/filled when complete) and build its Fill."""
        notional = price * size * self._to_atto
        fee = self._fee(notional, maker)
        order.record_fill(price, size, notional, fee, ts)
        if maker and order.filled_size == order.size:
            order.move(_DONE, ts, _FILLED)  # takers are finished by submit; makers here (caller unrests)
        return Fill(
            id=self._fill_ids.next(),
            order_id=order.id,
            client_oid=order.client_oid,
            exchange=order.exchange,
            symbol=order.symbol,
            side=order.side,
            order_type=order.type,
            price=price,
            size=size,
            notional=notional,
            fee=fee,
            maker=maker,
            ts=ts,
            run_id=order.run_id,
            wallet_set_id=order.wallet_set_id,
            account_id=order.account_id,
        )

    def _touch(
        self,
        levels: Levels,
        set_level: Callable[[int, int], None],
        consumed: dict[int, int],
        own: dict[int, dict[int, Order]],
    ) -> None:
        """Apply level changes on one side: reset their consumption, shorten queues they shrank."""
        queue_ahead = self._queue_ahead
        for price, size in levels:
            set_level(price, size)
            if consumed:
                consumed.pop(price, None)
            ours = own.get(price)
            if ours is not None:
                for oid in ours:
                    if queue_ahead[oid] > size:
                        queue_ahead[oid] = size

    def _cross(self, buys: bool, ts: int, fills: list[Fill]) -> None:
        """Fill our resting orders of one side that the opposite public side now reaches, as makers.

        Our orders go best price first, then time priority; public levels best first. Each
        fill is at our limit and consumes the public level it matched.
        """
        book = self.book
        if buys:
            keys, own, sizes, consumed = self._own_bid_keys, self._own_bids, book.asks, self._consumed_asks
            best = book.best_ask()
            if not keys or best is None or best > -keys[0]:
                return
            opposite = iter(book.iter_prices(_SELL))
        else:
            keys, own, sizes, consumed = self._own_ask_keys, self._own_asks, book.bids, self._consumed_bids
            best = book.best_bid()
            if not keys or best is None or best < keys[0]:
                return
            opposite = iter(book.iter_prices(_BUY))
        fill = self._fill
        done: list[Order] = []
        level_price = 0
        available = 0
        try:
            for key in keys:
                ours = -key if buys else key
                for order in own[ours].values():
                    remaining = order.size - order.filled_size
                    while remaining:
                        while available <= 0:
                            level_price = next(opposite)  # StopIteration: the public side is used up
                            if (level_price > ours) if buys else (level_price < ours):
                                return  # this and every worse order of ours is out of reach
                            available = sizes[level_price] - consumed.get(level_price, 0)
                        if (level_price > ours) if buys else (level_price < ours):
                            return
                        take = available if available < remaining else remaining
                        consumed[level_price] = consumed.get(level_price, 0) + take
                        available -= take
                        remaining -= take
                        fills.append(fill(order, ours, take, True, ts))
                    done.append(order)
        except StopIteration:
            pass
        finally:
            for order in done:
                self._unrest(order)

    def _rest(self, order: Order) -> None:
        """Put an open order on our side of the book, behind the public size shown at its price."""
        oid = order.id
        price = order.limit
        if order.side is _BUY:
            own, keys, key, shown = self._own_bids, self._own_bid_keys, -price, self.book.bids.get(price, 0)
        else:
            own, keys, key, shown = self._own_asks, self._own_ask_keys, price, self.book.asks.get(price, 0)
        level = own.get(price)
        if level is None:
            own[price] = {oid: order}
            insort(keys, key)
        else:
            level[oid] = order
        self._queue_ahead[oid] = shown
        open_orders = self.open_orders
        open_orders[oid] = order
        expires_at = order.expires_at
        if expires_at is not None:
            heap = self._expiries
            heappush(heap, (expires_at, oid))
            if len(heap) > 64 + 2 * len(open_orders):  # mostly stale: rebuild
                heap[:] = [entry for entry in heap if entry[1] in open_orders]
                heapify(heap)

    def _unrest(self, order: Order) -> None:
        """Take an order off our side of the book (its state is the caller's business)."""
        oid = order.id
        price = order.limit
        del self.open_orders[oid]
        del self._queue_ahead[oid]
        if order.side is _BUY:
            own, keys, key = self._own_bids, self._own_bid_keys, -price
        else:
            own, keys, key = self._own_asks, self._own_ask_keys, price
        level = own[price]
        del level[oid]
        if not level:
            del own[price]
            del keys[bisect_left(keys, key)]

"""Every message type coinwire sends between services, and the subject grammar (the wire contract).

Subjects are dot-separated tokens, lower case, NATS style (`*` one token, `>` the rest):

    book.<exchange>.<quote>.<base>       BookSnapshot | BookDelta     (market data)
    trade.<exchange>.<quote>.<base>      TradeTick
    ticker.<exchange>.<quote>.<base>     BookTicker | Ticker
    mark.<exchange>.<quote>.<base>       MarkPrice (a perpetual's mark price and funding rate)
    markets.<exchange>                   Markets (the instruments a feed serves)
    order.<account>.<exchange>.<quote>.<base>  OrderUpdate            (durable)
    fill.<account>.<exchange>.<quote>.<base>   FillEvent              (durable)
    position.<account>.<exchange>.<quote>.<base>  PositionUpdate      (durable)
    exchstatus.<exchange>                ExchangeStatusChanged
    rate.<exchange>.<quote>.<base>       Rate (a market's stored rate of one minute)
    analysis.<scope>.<id>.<name>         AnalysisValue (an analyser output: analysis_subject)
    signal.<run>.<name>                  Signal (a strategy's named signal, when it changed: signal_subject)
    log.<level>                          LogMessage
    import.<account>                     ImportProgress (an account import's progress, for every api process to push)
    walletset.<id>                       WalletSetChanged (a wallet set as get_wallet_set answers it, after it changed)
    mdrequest.<exchange>                 MarketDataRequest (a gateway apart from the feeds asks for markets and books)
    mdalive.<exchange>                   MarketDataAlive (the marketdata role's feed of an exchange runs: once a second)

A perpetual's quote token names its settle currency too (`BTC/USDT:USDT` -> `usdt:usdt.btc`).
So `ticker.binance.usdt.*` receives every USDT pair of binance. Market-data messages carry
prices and sizes as integers at the instrument's precision, together with that precision,
so they are exact on any wire. Notifications carry decimal strings (they go to people).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from coinwire.core.instruments import Instrument
from coinwire.core.symbols import split_symbol

__all__ = [
    "Markets",
    "BookSnapshot",
    "BookDelta",
    "TradeTick",
    "BookTicker",
    "Ticker",
    "MarkPrice",
    "PositionView",
    "PositionUpdate",
    "OrderView",
    "FillView",
    "OrderUpdate",
    "FillEvent",
    "ExchangeStatusChanged",
    "LogMessage",
    "Rate",
    "AnalysisValue",
    "Signal",
    "MarketDataRequest",
    "MarketDataAlive",
    "ImportProgress",
    "import_subject",
    "WalletSetChanged",
    "wallet_set_subject",
    "Message",
    "DURABLE_SUBJECTS",
    "subject",
    "account_subject",
    "analysis_subject",
    "signal_subject",
    "encode",
    "decode",
]

Levels = list[tuple[int, int]]


class Markets(msgspec.Struct, frozen=True, tag="markets"):
    exchange: str
    instruments: list[Instrument]


class BookSnapshot(msgspec.Struct, frozen=True, tag="book_snapshot"):
    """A full book. `last_update_id` follows Binance's `lastUpdateId` (0 when the feed has none)."""

    exchange: str
    symbol: str
    ts: int  # ns since epoch (the venue's event time where known)
    last_update_id: int
    bids: Levels
    asks: Levels


class BookDelta(msgspec.Struct, frozen=True, tag="book_delta"):
    """Absolute new sizes of changed levels (0 removes), covering update ids first..last."""

    exchange: str
    symbol: str
    ts: int
    first_update_id: int
    last_update_id: int
    bids: Levels
    asks: Levels
    prev_update_id: int = 0  # futures feeds chain with `pu`; 0 when unused


class TradeTick(msgspec.Struct, frozen=True, tag="trade"):
    """A public trade. `aggressor` is the taker's side: `sell` hit the bids, `buy` lifted the asks."""

    exchange: str
    symbol: str
    ts: int
    trade_id: str
    price: int
    size: int
    aggressor: str


class BookTicker(msgspec.Struct, frozen=True, tag="ticker"):
    exchange: str
    symbol: str
    ts: int
    update_id: int
    bid: int
    bid_size: int
    ask: int
    ask_size: int


class MarkPrice(msgspec.Struct, frozen=True, tag="mark_price"):
    """A perpetual's mark price (Binance's `markPriceUpdate`), with the funding rate of the next funding time.

    `funding_rate` in 1e-8 units (0.0001 = 10_000); `next_funding_time` ns (0: not known).
    """

    exchange: str
    symbol: str
    ts: int
    mark: int
    funding_rate: int = 0
    next_funding_time: int = 0


class Ticker(msgspec.Struct, frozen=True, tag="ticker_stats"):
    """A venue's ticker (CCXT `watch_tickers` / `fetch_tickers`): last price, touch, rolling 24 h figures.

    Exact decimals rather than instrument-scaled integers: a ticker streamer follows every
    market of an exchange, most of which no feed has announced an Instrument for. Fields the
    venue does not send are None (Binance's mini ticker has no bid or ask).
    """

    exchange: str
    symbol: str
    ts: int  # ns since epoch, the venue's time for these figures
    last: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    open: Decimal | None = None  # 24 h
    high: Decimal | None = None
    low: Decimal | None = None
    base_volume: Decimal | None = None
    quote_volume: Decimal | None = None


class BracketLegView(msgspec.Struct, frozen=True, gc=False):
    """One child a bracket parent places once it has filled: its type, trigger level and limit (None: not its kind).

    A level given as a percentage of the parent's average fill price is `percent` (`"3"`: 3%)
    and its price (`stop_price`, or `limit` for a limit take-profit) is None until the fill sets it.
    A trailing stop-loss has `trailing_delta` (`"2%"` of the best price, or a price distance) and
    no level: it follows from the fill.
    """

    type: str  # limit | take-profit-market | take-profit-limit | stop-market | stop-limit | trailing-stop
    stop_price: str | None = None
    limit: str | None = None
    percent: str | None = None
    trailing_delta: str | None = None


class BracketView(msgspec.Struct, frozen=True, gc=False):
    """A bracket parent's children, as `make_order`'s `take_profit` and `stop_loss` gave them."""

    take_profit: BracketLegView | None  # None: the bracket has no take-profit (a lone stop-loss)
    stop_loss: BracketLegView | None  # None: no stop-loss (a lone take-profit)
    trigger: str = "last"


class OrderView(msgspec.Struct, frozen=True, gc=False):
    """One order as clients see it (the seed's `order` notification and every order answer): money as decimal strings,
    times as ISO 8601 UTC text. The fields, in this order, are the JSON object's keys (services.views builds it)."""

    id: int
    created_at: str
    wallet_set_id: int | None
    exchange: str
    client_order_id: str
    run_id: str | None
    type: str  # limit | market | limit-immediate-cancel | limit-fill-kill | limit-post-only
    pair: str  # BTC_USDT
    symbol: str  # BTC/USDT
    size: str
    side: str  # buy | sell
    limit: str  # "0" for market orders
    cancel_after: int  # seconds, 0: never
    status: str  # pending | open | done
    done_reason: str | None
    done_at: str | None
    exchange_at: str | None
    last_updated_at: str
    filled_size: str
    avg_price: str  # volume-weighted, "0" before any fill
    fee: str
    fee_currency: str
    account: int
    seq: int  # its account's sequence number of the order's latest notification
    # the seed's Trade shape (kripto): `filled_size` is above; appended, so the keys before keep their places
    funds: str | None = None  # a market buy by amount: the quote it was given, fee included (None: sized by `size`)
    executed_value: str = "0"  # quote spent on fills, fee excluded (the fills' notional)
    fill_fees: str = "0"  # fees of its fills, in `fee_currency`
    settled: bool = False  # done, every fill settled on the ledger: nothing more will change
    # conditional orders (docs/ORDERS.md); a plain order has the defaults
    stop_price: str | None = None  # the trigger level (a trailing stop's current one; None before it activates)
    trigger: str | None = None  # last | mark | bid_ask
    trailing_delta: str | None = None  # "1.5%" or a price distance
    activation_price: str | None = None
    time_in_force: str = "GTC"  # of the limit a conditional limit fires; GTD: until expire_at
    expire_at: str | None = None
    triggered_at: str | None = None  # when it fired (status untriggered until then)
    oco_id: int | None = None  # an OCO's legs share it
    parent_id: int | None = None  # a bracket's child: its parent
    emulated: bool = False  # fired by coinwire from the mirrored market, not by the exchange
    reduce_only: bool = False
    bracket: BracketView | None = None  # a bracket parent: the children it places (as an OCO) once it has filled
    position_side: str | None = None  # a perpetual order in hedge mode: long | short (None: one-way mode, or spot)


class FillView(msgspec.Struct, frozen=True, gc=False):
    """One fill of one of our orders as clients see it (the seed's `trade` notification), keys in this order."""

    id: int
    order_id: int
    client_order_id: str
    run_id: str | None
    wallet_set_id: int | None
    account: int
    exchange: str
    type: str  # the order's type
    side: str
    pair: str
    symbol: str
    exec_amount: str
    exec_price: str
    notional: str
    fee: str
    fee_currency: str
    maker: bool
    ext_id: str | None  # the venue's trade id (live exchanges)
    timestamp: str
    seq: int  # its account's sequence number of this notification
    # the seed's Trade shape (kripto), for this fill: appended, so the keys before keep their places
    funds: str | None = None  # its order's funds when that order was a buy by amount
    filled_size: str = "0"  # = exec_amount
    executed_value: str = "0"  # = notional
    fill_fees: str = "0"  # = fee
    settled: bool = True  # a fill is notified once the ledger settled it


class OrderUpdate(msgspec.Struct, frozen=True, tag="order"):
    """The seed's `order` notification: the order's view (its JSON is the notification's params)."""

    order: OrderView
    owner_id: int | None = None  # the placing user: its connections get the notification (never in the payload)
    account_id: int = 0  # the order's account: the connections that may read it get the notification
    seq: int = 0  # the account's sequence number of this notification (also in the payload)


class FillEvent(msgspec.Struct, frozen=True, tag="trade_fill"):
    """The seed's `trade` notification: one fill of one of our orders."""

    trade: FillView
    owner_id: int | None = None  # the order's owner, as in OrderUpdate
    account_id: int = 0
    seq: int = 0


class PositionView(msgspec.Struct, frozen=True, gc=False):
    """One perpetual position as clients see it (the `positions_updated` notification and every position answer):
    money and sizes as decimal strings; keys in this order (services.views builds it)."""

    account: int
    exchange: str
    symbol: str
    position_side: str  # both | long | short
    side: str  # long | short | flat
    size: str  # absolute
    entry_price: str
    mark_price: str
    notional: str
    unrealised_pnl: str
    realised_pnl: str
    funding: str
    fees: str
    leverage: int
    margin_mode: str  # isolated | cross
    isolated_margin: str | None
    initial_margin: str
    maintenance_margin: str
    margin_ratio: str  # "0.0123" = 1.23%; 1 = liquidation
    liquidation_price: str | None
    wallet_set_id: int | None
    updated_at: int  # ns
    seq: int


class PositionUpdate(msgspec.Struct, frozen=True, tag="position"):
    """The `positions_updated` notification: one position changed (a fill, funding, a liquidation, a new mark)."""

    position: PositionView
    owner_id: int | None = None  # the account's owner (never in the payload)
    account_id: int = 0
    seq: int = 0


class ExchangeStatusChanged(msgspec.Struct, frozen=True, tag="exchstatus"):
    exchange: str
    from_status: str
    to_status: str
    ts: int


class LogMessage(msgspec.Struct, frozen=True, tag="logmessages"):
    level: str
    name: str  # the source: a logger's name, or `user.orders.<run>`
    message: str
    ts: int
    context: dict[str, object] = {}  # the record's structured fields (services.log_feed)
    owner_id: int | None = None  # the user the message is about (their order), None: admins only


class Rate(msgspec.Struct, frozen=True, tag="rate"):
    """A market's rate of one minute, published once when it is first stored (the seed's RateUpdate event).

    `time` is the minute's start in unix ms; `price` the last trade price or the mid of the
    touch, exact; `source` where it came from: "ticker" (the ticker cache) or "ccxt" (fetched).
    """

    exchange: str
    symbol: str
    time: int
    price: Decimal
    source: str


class AnalysisValue(msgspec.Struct, frozen=True, tag="analysis"):
    """One analyser output: an indicator's value on a series at `time` (unix seconds of the bar's close or the point).

    `key` is core.analysis.analysis_key of (series, indicator, params); `owner_id` the user whose
    series it is (None: a market's, public), never in a client's payload.
    """

    key: str
    series: str
    indicator: str
    params: list[int | float]
    value: float
    time: int
    owner_id: int | None = None


class Signal(msgspec.Struct, frozen=True, tag="signal"):
    """A strategy's named signal (`ma_cross` = "above"), sent only when it differs from the run's last one of that name."""

    run_id: str
    name: str
    value: str | int | float | bool | None
    time: int  # unix seconds
    owner_id: int | None = None


class MarketDataRequest(msgspec.Struct, frozen=True, tag="marketdata_request"):
    """A process without the exchange's feed asks the process running it to publish its `Markets` and its books again.

    Why: a feed announces its markets and first books once, when it starts; a gateway that starts
    later, or whose book lost its sync, has no other way to get them (the answer comes on the usual
    `markets.*` and `book.*` subjects, for every listener). `market` (a symbol) None: every market's book.
    """

    exchange: str
    market: str | None = None
    books: bool = True  # False: the markets alone


class MarketDataAlive(msgspec.Struct, frozen=True, tag="marketdata_alive"):
    """The marketdata role's feed of `exchange` runs (sent once a second): a gateway apart from it knows when it is gone."""

    exchange: str
    ts: int  # unix ns when sent


class ImportProgress(msgspec.Struct, frozen=True, tag="import_progress"):
    """An account import's progress (`services.account_import.progress_view`) from the process running the import.

    Why on the bus: the import runs beside the gateway, while its followers may be connected to any
    api process; each one pushes it to its own connections whose user may view the account.
    """

    account_id: int
    progress: dict[str, Any]


class WalletSetChanged(msgspec.Struct, frozen=True, tag="wallet_set"):
    """A wallet set after it changed (`view`: what get_wallet_set answers), from the gateway's process (api.wallet_set_push).

    It carries who may read it, as the gateway knows it when it sends: `owner_id` (None: made before
    users, the admins') and the accounts whose funds it holds (a user who may view every one of them
    may read the set), so any api process can choose its receivers without the ledger.
    """

    set_id: int
    owner_id: int | None
    accounts: list[int]
    view: dict[str, Any]


class RuleFired(msgspec.Struct, frozen=True, tag="rule_fired"):
    """A rule set's firing (`payload`: what the `rule_fired` channel pushes), from the controller's process.

    It carries who may read it, as that process knows when it sends: the rule set's owner, its scope,
    and the scope's owner (a wallet set's, a run's, the user of a `user` scope). An `account` scope is
    checked against each api process's own account book when it arrives, so a grant taken back counts.
    """

    rule_set_id: int
    owner_id: int | None
    scope: str
    scope_id: str
    scope_owner_id: int | None
    payload: dict[str, Any]


Message = (
    Markets
    | BookSnapshot
    | BookDelta
    | TradeTick
    | BookTicker
    | Ticker
    | MarkPrice
    | OrderUpdate
    | FillEvent
    | PositionUpdate
    | ExchangeStatusChanged
    | LogMessage
    | Rate
    | AnalysisValue
    | Signal
    | MarketDataRequest
    | MarketDataAlive
    | ImportProgress
    | WalletSetChanged
    | RuleFired
)

# Subjects whose messages a bus keeps and can replay from a sequence number.
DURABLE_SUBJECTS: tuple[str, ...] = ("order.>", "fill.>", "position.>")


def account_subject(kind: str, account_id: int, exchange: str, symbol: str) -> str:
    """An account's order or fill subject: `account_subject("order", 7, "binance", "BTC/USDT")` -> `order.7.binance.usdt.btc`.

    The account comes first so one account's stream is one filter (`order.7.>`), which JetStream
    applies on the server when a client replays what it missed.
    """
    quote, base = _tokens(symbol)
    return f"{kind}.{account_id}.{exchange.lower()}.{quote}.{base}"


def subject(kind: str, exchange: str, symbol: str | None = None) -> str:
    """Build a subject: `subject("ticker", "binance", "BTC/USDT")` -> `ticker.binance.usdt.btc`."""
    if symbol is None:
        return f"{kind}.{exchange.lower()}"
    quote, base = _tokens(symbol)
    return f"{kind}.{exchange.lower()}.{quote}.{base}"


def _token(text: str) -> str:
    """One subject token from free text: lower case, `.` `*` `>` and spaces to `_`, `/` and `:` to `-`."""
    out = text.strip().lower().replace("/", "-").replace(":", "-")
    for bad in (".", "*", ">", " ", "\t"):
        out = out.replace(bad, "_")
    return out or "_"


def import_subject(account_id: int) -> str:
    """`import.<account>`: the subject of an account import's progress."""
    return f"import.{account_id}"


def rule_fired_subject(rule_set_id: int) -> str:
    """`rulefired.<id>`: the subject of a rule set's firings."""
    return f"rulefired.{rule_set_id}"


def wallet_set_subject(set_id: int) -> str:
    """`walletset.<id>`: the subject of a wallet set's changes."""
    return f"walletset.{set_id}"


def analysis_subject(series: str, indicator: str, params: list[int | float] | tuple[int | float, ...]) -> str:
    """`analysis.<scope>.<id>.<name>`: `analysis.market.binance-btc-usdt-1h.rsi-14`, `analysis.portfolio.account-7-15m.sma-20`.

    The scope is the series' kind, the id the rest of its canonical name, the name the indicator and
    its parameters; so `analysis.portfolio.>` is every portfolio's output, `analysis.market.*.rsi-14` every RSI(14).
    """
    kind, _, rest = series.partition(":")
    name = "-".join([indicator, *(repr(p) for p in params)])
    return f"analysis.{_token(kind)}.{_token(rest or 'own')}.{_token(name)}"


def signal_subject(run_id: str, name: str) -> str:
    """`signal.<run>.<name>`: one run's signals are `signal.<run>.>`."""
    return f"signal.{_token(run_id)}.{_token(name)}"


def _tokens(symbol: str) -> tuple[str, str]:
    """A symbol's quote and base subject tokens; a perpetual's quote token names its settle currency too
    (`BTC/USDT:USDT` -> `usdt:usdt`, `btc`), so `ticker.binance.usdt.*` is the spot markets alone."""
    base, quote = split_symbol(symbol)
    _, colon, settle = symbol.partition(":")
    if colon:
        return f"{quote.lower()}:{settle.strip().lower()}", base.lower()
    return quote.lower(), base.lower()


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """Serialise for a network bus (msgpack; the tag names the type)."""
    return _encoder.encode(message)


def decode(data: bytes) -> Message:
    return _decoder.decode(data)

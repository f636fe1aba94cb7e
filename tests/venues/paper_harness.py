"""The paper venue's harness: a real gateway over a SQLite store, the book and trades a test gives its mirror, a test clock.

Used by the venue contract (tests/venues/test_contract_paper.py) and the gateway's tests of conditional orders.
"""

from __future__ import annotations

from pathlib import Path

from coinwire.config import load_settings
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import str_to_atto
from coinwire.messages import Markets, TradeTick
from tests.venues.gateway_harness import SYMBOL, GatewayHarness

__all__ = ["EXCHANGE", "INSTRUMENT", "PaperHarness"]

EXCHANGE = "paper"
INSTRUMENT = Instrument(EXCHANGE, SYMBOL, "BTC", "USDT", price_decimals=2, size_decimals=5, min_notional=str_to_atto("5"))


class PaperHarness(GatewayHarness):
    def __init__(self, tmp_path: Path) -> None:
        settings = load_settings(env={}, overrides={
            "data_dir": str(tmp_path), "exchanges": [{"name": EXCHANGE, "feed": "demo", "paper_funds": {}}]})
        super().__init__(settings, tmp_path)
        self.book: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
        self._trades = 0

    async def open(self) -> None:
        await super().open()
        await self.gw.apply_market(Markets(EXCHANGE, [INSTRUMENT]))
        self.account = (await self.gw.account_for(None, EXCHANGE)).id

    async def fund(self, currency: str, amount: str) -> None:
        await self.gw.add_virtual_wallet_tx(exchange=EXCHANGE, currency=currency, movement=str_to_atto(amount), account_id=self.account)

    async def set_book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.book = (bids, asks)
        await self.mirror_book(bids, asks)

    async def trade(self, price: str, size: str, aggressor: str) -> None:
        self._trades += 1
        await self.gw.apply_market(TradeTick(EXCHANGE, SYMBOL, self.t, str(self._trades), INSTRUMENT.parse_price(price),
                                             INSTRUMENT.parse_size(size), aggressor))

    async def restart(self) -> None:
        await self.gw.close()
        await self._start_gateway()
        await self.gw.apply_market(Markets(EXCHANGE, [INSTRUMENT]))  # the feed's markets: the stored orders go back to their books
        await self.mirror_book(*self.book)

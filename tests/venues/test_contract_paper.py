"""The venue contract (tests/venues/contract.py) run against the paper venue, inside a real gateway.

The paper venue matches on the book the harness gives its mirror (a snapshot, as a feed
sends one); a trade is a feed's trade print. Every scenario runs: none is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coinwire.config import load_settings
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import str_to_atto
from coinwire.messages import Markets, TradeTick
from tests.venues.contract import SCENARIOS, Scenario
from tests.venues.gateway_harness import SYMBOL, GatewayHarness

EXCHANGE = "paper"
INSTRUMENT = Instrument(EXCHANGE, SYMBOL, "BTC", "USDT", price_decimals=2, size_decimals=5, min_notional=str_to_atto("5"))
SKIPPED: dict[str, str] = {}  # scenario -> why the paper venue cannot run it (none)


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


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[PaperHarness]:
    h = PaperHarness(tmp_path)
    await h.open()
    try:
        yield h
    finally:
        await h.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.removeprefix("scenario_"))
async def test_paper_venue_keeps_the_contract(harness: PaperHarness, scenario: Scenario) -> None:
    if scenario.__name__ in SKIPPED:
        pytest.skip(SKIPPED[scenario.__name__])
    await scenario(harness)

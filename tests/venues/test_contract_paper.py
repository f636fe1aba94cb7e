"""The venue contract (tests/venues/contract.py) run against the paper venue, inside a real gateway.

The paper venue matches on the book the harness gives its mirror (a snapshot, as a feed
sends one); a trade is a feed's trade print. Every scenario runs: none is skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.venues.contract import SCENARIOS, Scenario
from tests.venues.paper_harness import PaperHarness

SKIPPED: dict[str, str] = {}  # scenario -> why the paper venue cannot run it (none)


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

"""The venue contract (tests/venues/contract.py) run against the simulated venue: over candles and over an L2 book.

The harnesses (tests/venues/harness_simulated.py) are the venue's host as a backtest runtime
is: the candle venue's book is what the scenario sets (its candles lie beyond the scenario's
time), the L2 venue is fed the book as a snapshot and trades as trade messages. Every
scenario runs with both but the conditional orders' (SKIPPED).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.venues.contract import CONDITIONAL_SCENARIOS, SCENARIOS, Scenario, VenueHarness
from tests.venues.harness_simulated import BookHarness, SimulatedHarness

HARNESSES: dict[str, Callable[[], VenueHarness]] = {"candles": SimulatedHarness, "l2": BookHarness}
SKIPPED: dict[tuple[str, str], str] = {  # (harness, scenario) -> why that venue cannot run it
    (kind, name): "conditional orders: cond-bt/cond-live" for kind in ("candles", "l2") for name in CONDITIONAL_SCENARIOS}


@pytest.mark.parametrize("kind", list(HARNESSES))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.removeprefix("scenario_"))
async def test_simulated_venue_keeps_the_contract(kind: str, scenario: Scenario) -> None:
    reason = SKIPPED.get((kind, scenario.__name__))
    if reason is not None:
        pytest.skip(reason)
    await scenario(HARNESSES[kind]())

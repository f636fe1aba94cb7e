"""A gateway that reloads its memory from the store (a failed commit, or taking its shard back) still trades its venues.

The reload rebuilds the ledger from the stored wallets; an exchange whose markets came before it
(a feed announces them once) but that has no stored wallet yet must stay known, or its first
orders answer `exchange_not_found` until the feed's next announcement (seen in CI: a gateway that
lost its lease under load at start took it back and refused the first order).
"""

from __future__ import annotations

from pathlib import Path

from coinwire.core.ledger import Balance
from tests.venues.paper_harness import EXCHANGE, PaperHarness


async def test_an_exchange_without_stored_wallets_stays_known_across_a_reload(tmp_path: Path) -> None:
    h = PaperHarness(tmp_path)  # no paper funds: nothing stored for the exchange before the reload
    await h.open()
    try:
        await h.gw.reload_from_store()
        await h.fund("USDT", "1000")  # refused with exchange_not_found when the reload forgot the exchange
        await h.fund("BTC", "1")
        assert h.ledger.account_balances(EXCHANGE, h.account) == {"USDT": Balance(1000 * 10**18), "BTC": Balance(10**18)}
    finally:
        await h.close()

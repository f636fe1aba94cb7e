"""Wallet and wallet-set views in the seed's shapes, valued in USD from the mirrored books."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from coinwire.core.errors import NotFound
from coinwire.core.ledger import Balance, history
from coinwire.core.numbers import ATTO, atto_to_str
from coinwire.core.wallets import Wallet, WalletSet
from coinwire.services.gateway import Gateway
from coinwire.services.views import iso

__all__ = ["WalletViews", "USD_LIKE"]

USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "DAI", "TUSD", "FDUSD"})


class WalletViews:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # --- pricing ------------------------------------------------------------------------------
    def usd_price(self, currency: str, side: str = "bid") -> int | None:
        """Price of one unit of `currency` in USD, in ATTO; stablecoins are 1; None when no route."""
        if currency in USD_LIKE:
            return ATTO
        direct = self._book_price(currency, USD_LIKE, side)
        if direct is not None:
            return direct
        for bridge in ("BTC", "ETH"):
            via = self._book_price(currency, {bridge}, side)
            bridge_usd = self._book_price(bridge, USD_LIKE, side) if via is not None else None
            if via is not None and bridge_usd is not None:
                return via * bridge_usd // ATTO
        return None

    def _book_price(self, base: str, quotes: set[str] | frozenset[str], side: str) -> int | None:
        for ex in self.gateway.venues.values():
            for market in ex.markets.values():
                inst = market.instrument
                if inst.base != base or inst.quote not in quotes:
                    continue
                book = market.engine.book
                price = book.best_bid() if side == "bid" else book.best_ask()
                if price is not None:
                    return int(price * 10 ** (18 - inst.price_decimals))
        return None

    def convert_to_usd(self, currency: str, amount: int, side: str = "bid") -> str | None:
        price = self.usd_price(currency, side)
        return None if price is None else atto_to_str(amount * price // ATTO)

    def _present_value(self, currency: str, balance: Balance) -> dict[str, str | None]:
        price = self.usd_price(currency)

        def usd(amount: int) -> str | None:
            return None if price is None else atto_to_str(amount * price // ATTO)

        return {"balance_usd": usd(balance.balance), "available_usd": usd(balance.available), "hold_usd": usd(balance.hold)}

    # --- shapes ---------------------------------------------------------------------------------
    def wallet_view(self, exchange: str, currency: str, balance: Balance, wallet_id: int | None) -> dict[str, Any]:
        return {
            "currency": currency,
            "exchange": exchange,
            "id": wallet_id,
            "balance": atto_to_str(balance.balance),
            "available": atto_to_str(balance.available),
            "hold": atto_to_str(balance.hold),
            "present_value": self._present_value(currency, balance),
        }

    def _wallet(self, w: Wallet) -> dict[str, Any]:
        view = self.wallet_view(w.exchange, w.currency, Balance(w.balance, w.hold), w.id)
        view["account"] = w.account_id
        return view

    def _set_view(self, wallet_set: WalletSet, aggregate_only: bool) -> dict[str, Any]:
        wallets = self.gateway.ledger.wallets(wallet_set.id)
        view: dict[str, Any] = {
            "timestamp": wallet_set.created_at / 1e9,
            "created_at": iso(wallet_set.created_at),
            "description": wallet_set.description,
            "id": wallet_set.id,
            "run_id": wallet_set.run_id,
            "active": wallet_set.active,
            "type": wallet_set.type,
            "accounts": sorted({w.account_id for w in wallets}),  # whose funds it holds: one account per exchange
        }
        if aggregate_only:
            view["aggregate"] = self._aggregate_by_currency({(w.exchange, w.currency): Balance(w.balance, w.hold) for w in wallets})
        else:
            view["wallets"] = [self._wallet(w) for w in sorted(wallets, key=lambda w: (w.exchange, w.currency))]
        return view

    def _aggregate_by_currency(self, balances: dict[tuple[str, str], Balance]) -> dict[str, dict[str, Any]]:
        per_currency: dict[str, Balance] = {}
        for (_, currency), balance in balances.items():
            per_currency[currency] = per_currency.get(currency, Balance()) + balance
        return {c: self.wallet_view("*", c, b, None) for c, b in sorted(per_currency.items())}

    def set_wallet(self, exchange: str, currency: str, set_id: int) -> dict[str, Any]:
        """One wallet of a wallet set, shaped as in `wallet_set`; a currency the set does not list is `unknown_wallet`."""
        wallet = self.gateway.ledger.wallet(exchange, currency, set_id)
        if not wallet.id:
            raise NotFound("unknown_wallet", f"wallet set {set_id} has no {currency} wallet on {exchange}", wallet_set_id=set_id)
        return self._wallet(wallet)

    def account_wallet(self, exchange: str, currency: str, account_id: int) -> dict[str, Any]:
        """An account's wallet of `currency`: all its partitions summed (allocated + unallocated); `id` is its unallocated wallet's."""
        unallocated = self.gateway.ledger.wallet(exchange, currency, None, account_id)  # refuses a currency the exchange lacks
        balance = self.gateway.ledger.exchange_totals((account_id,)).get((exchange, currency), Balance())
        view = self.wallet_view(exchange, currency, balance, unallocated.id or None)
        view["account"] = account_id
        return view

    def wallet_set(self, set_id: int, aggregate_only: bool = False) -> dict[str, Any]:
        return self._set_view(self.gateway.ledger.wallet_set(set_id), aggregate_only)

    def _balances(self, kind: str, accounts: Collection[int] | None) -> dict[tuple[str, str], Balance]:
        """`kind` per exchange and currency, of `accounts` (None: every account): total = allocated + unallocated per account."""
        ledger = self.gateway.ledger
        if kind == "total":
            return ledger.exchange_totals(accounts)
        if kind == "allocated":
            return ledger.allocated(accounts=accounts)
        return ledger.unallocated(accounts)

    def aggregate(self, kind: str, aggregate_only: bool = False, accounts: Collection[int] | None = None) -> dict[str, Any]:
        """`total`, `allocated` or `unallocated` as a WalletSet object (per exchange and currency).

        `accounts`: the accounts the caller may read (None: all, as admins see it).
        """
        balances = self._balances(kind, accounts)
        view: dict[str, Any] = {
            "timestamp": self.gateway.clock() / 1e9,
            "description": f"{kind.capitalize()} funds",
            "id": kind,
            "run_id": None,
            "type": kind,
        }
        if aggregate_only:
            view["aggregate"] = self._aggregate_by_currency(balances)
        else:
            view["wallets"] = [self.wallet_view(ex, cur, bal, None) for (ex, cur), bal in sorted(balances.items())]
        return view

    def all_sets(self, aggregate_only: bool = False, sets: Collection[int] | None = None,
                 accounts: Collection[int] | None = None) -> dict[str, Any]:
        """Every active set the caller may read (`sets`; None: all) keyed by id, and the aggregates of its `accounts`."""
        out: dict[str, Any] = {
            str(ws.id): self._set_view(ws, aggregate_only)
            for ws in self.gateway.ledger.wallet_sets(active_only=True) if sets is None or ws.id in sets
        }
        for kind in ("total", "allocated", "unallocated"):
            out[kind] = self.aggregate(kind, aggregate_only, accounts)
        return out

    def unallocated_per_exchange(self, accounts: Collection[int] | None = None) -> dict[str, Any]:
        per = self.gateway.ledger.unallocated_per_exchange(accounts)
        return {
            exchange: [self.wallet_view(exchange, cur, bal, None) for cur, bal in sorted(currencies.items())]
            for exchange, currencies in sorted(per.items())
        }

    async def history(self, set_id: int) -> dict[str, Any]:
        """The set now, and `[ts_seconds, wallet]` after each movement (the seed's wallet-set history), read from the store.

        The ledger keeps balances, not lines: the set's lines are read from the store, where they are kept.
        """
        ledger = self.gateway.ledger
        current = self.wallet_set(set_id)
        wallets = {w.id: w for w in ledger.wallets(set_id)}
        data = []
        for point in history(await self.gateway.store.wallet_lines(sorted(wallets))):
            wallet = wallets[point.wallet_id]
            data.append(
                [
                    point.ts // 1_000_000_000,
                    {
                        "currency": wallet.currency,
                        "exchange": wallet.exchange,
                        "id": wallet.id,
                        "balance": atto_to_str(point.balance),
                        "available": atto_to_str(point.available),
                        "hold": atto_to_str(point.hold),
                    },
                ]
            )
        return {"timestamp": self.gateway.clock() / 1e9, "run_id": current["run_id"], "id": set_id, "current": current, "data": data}

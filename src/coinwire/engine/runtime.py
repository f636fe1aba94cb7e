"""What every mode's runtime shares: the hub, the run log, UI components, tickets and safe callbacks.

A runtime is the strategy's world. The backtest runtime drives a simulated clock over stored
candles and a simulated venue; the paper runtime follows a feed on the wall clock and trades
through the gateway. Both route every message through the run's `MessageHub`, so the audit
trail reads the same in every mode.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.engine.hub import MessageHub
from coinwire.engine.strategy import Indicator, OrderTicket

__all__ = ["Runtime", "StrategyFailed", "LogLine", "Component"]


class StrategyFailed(Exception):
    """The strategy raised: its run stops and is marked failed; the traceback is in the run log."""

    def __init__(self, where: str, error: BaseException) -> None:
        self.where = where
        self.error = error
        self.traceback = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        super().__init__(f"strategy failed in {where}: {type(error).__name__}: {error}")


LogLine = tuple[int, str, str]  # (ts ns, level, message)


class Component:
    """A UI component of a run: a JSON spec (type, title, fields...) plus tabular data rows."""

    __slots__ = ("id", "spec", "data", "version")

    def __init__(self, component_id: str, spec: dict[str, Any], data: list[list[Any]]) -> None:
        self.id = component_id
        self.spec = spec
        self.data = data
        self.version = 1

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "spec": self.spec, "data": self.data, "version": self.version}


class Runtime:
    """Base of the mode runtimes; subclasses provide the clock, data and venue."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.hub = MessageHub()
        self.logs: list[LogLine] = []
        self.components: dict[str, Component] = {}
        self.tickets: dict[str, OrderTicket] = {}
        self._oid_seq = 0

    # --- the clock (subclasses) ---------------------------------------------------------------
    def now_ns(self) -> int:
        raise NotImplementedError

    # --- log, components, input -------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        if level not in ("debug", "info", "warning", "error"):
            raise InvalidInput("invalid_log_level", f"log level must be debug, info, warning or error, got {level!r}")
        ts = self.now_ns()
        self.logs.append((ts, level, str(message)))
        self.hub.record(ts, "out", "strategy.log", {"level": level, "message": str(message)})

    def set_component(self, component_id: str, spec: dict[str, Any], data: list[list[Any]] | None) -> None:
        _check_component(component_id, spec, data)
        previous = self.components.get(component_id)
        component = Component(component_id, dict(spec), [list(row) for row in data or []])
        if previous is not None:
            component.version = previous.version + 1
        self.components[component_id] = component
        self.hub.record(self.now_ns(), "out", "ui.component", {"id": component_id, "version": component.version, "spec": component.spec, "rows": len(component.data)})

    def update_component(self, component_id: str, spec: dict[str, Any] | None, data: list[list[Any]] | None) -> None:
        component = self.components.get(component_id)
        if component is None:
            raise InvalidInput("unknown_component", f"no component {component_id!r}; create it with component() first")
        self.set_component(component_id, {**component.spec, **(spec or {})}, data if data is not None else component.data)

    def deliver_input(self, strategy: Any, component_id: str, value: Any) -> None:
        """User input posted to a component reaches the strategy as a message."""
        if component_id not in self.components:
            raise InvalidInput("unknown_component", f"run {self.run_id} has no component {component_id!r}")
        self.hub.record(self.now_ns(), "in", "ui.input", {"id": component_id, "value": value})
        self.call("on_input", strategy.on_input, component_id, value)

    # --- callbacks ------------------------------------------------------------------------------
    def call(self, where: str, callback: Callable[..., Any], *args: Any) -> Any:
        """Run strategy code; anything it raises becomes StrategyFailed (this run only)."""
        try:
            return callback(*args)
        except StrategyFailed:
            raise
        except Exception as exc:  # a bug, or a refusal (CoinwireError) the strategy did not handle
            raise StrategyFailed(where, exc) from exc

    # --- orders: shared bookkeeping --------------------------------------------------------------
    def new_ticket(self, symbol: str, side: str) -> OrderTicket:
        self._oid_seq += 1
        ticket = OrderTicket(f"{self.run_id[:12]}-{self._oid_seq}", symbol, side)
        self.tickets[ticket.client_oid] = ticket
        return ticket

    def open_orders(self) -> list[OrderTicket]:
        return [t for t in self.tickets.values() if t.status in ("pending", "open")]

    # --- subclasses ------------------------------------------------------------------------------
    def add_indicator(self, kind: Any, symbol: str, timeframe: str, args: tuple[Any, ...], source: str) -> Indicator:
        raise NotImplementedError

    def indicator_value(self, key: int, index: int) -> float:
        raise NotImplementedError

    def indicator_values(self, key: int) -> np.ndarray:
        raise NotImplementedError

    def balance(self, currency: str, exchange: str | None, available: bool) -> Decimal:
        raise NotImplementedError


def _check_component(component_id: str, spec: dict[str, Any], data: list[list[Any]] | None) -> None:
    if not isinstance(component_id, str) or not component_id or len(component_id) > 64:
        raise InvalidInput("invalid_component", "a component id is a non-empty string of at most 64 characters")
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise InvalidInput("invalid_component", f"component {component_id!r} needs a spec object with a 'type'")
    if data is not None and not all(isinstance(row, (list, tuple)) for row in data):
        raise InvalidInput("invalid_component", f"component {component_id!r}: data is a list of rows (lists)")

"""Which strategies can run: the built-ins by name, and user strategies from `path/to/file.py:ClassName`.

Here, above the engine, because listing the built-ins imports them, and they import the engine's
Strategy API: the engine takes the class a caller resolved here.
"""

from __future__ import annotations

from coinwire.core.errors import NotFound
from coinwire.engine.registry import is_file_ref, load_strategy_file, strategy_name
from coinwire.engine.strategy import Strategy
from coinwire.strategies.component_demo import ComponentDemo
from coinwire.strategies.cross_exchange import CrossExchange
from coinwire.strategies.echo import Echo
from coinwire.strategies.efficient_frontier import EfficientFrontier
from coinwire.strategies.hodl import Hodl
from coinwire.strategies.ma_cross import MaCross
from coinwire.strategies.trade_decider import TradeDecider

__all__ = ["builtin_strategies", "load_strategy", "strategy_name"]


def builtin_strategies() -> dict[str, type[Strategy]]:
    """Every built-in strategy by its name."""
    classes: list[type[Strategy]] = [Hodl, Echo, ComponentDemo, MaCross, TradeDecider, EfficientFrontier, CrossExchange]
    return {strategy_name(c): c for c in classes}


def load_strategy(ref: str) -> type[Strategy]:
    """A built-in name, or `file.py:ClassName` (the file is imported as its own module)."""
    if is_file_ref(ref):
        return load_strategy_file(ref)
    builtins = builtin_strategies()
    if ref not in builtins:
        raise NotFound("strategy_not_found",
                       f"unknown strategy {ref!r}; built-ins: {', '.join(sorted(builtins))}, or use file.py:ClassName")
    return builtins[ref]

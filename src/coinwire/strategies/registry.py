"""Which strategies can run: the built-ins by name (and by the seed's runnable names), and user strategies from `file.py:Class`.

Here, above the engine, because listing the built-ins imports them, and they import the engine's
Strategy API: the engine takes the class a caller resolved here.
"""

from __future__ import annotations

from coinwire.core.errors import NotFound
from coinwire.engine.registry import is_file_ref, load_strategy_file, strategy_name
from coinwire.engine.strategy import Strategy
from coinwire.strategies.component_demo import ComponentDemo
from coinwire.strategies.cross_exchange import CrossExchange
from coinwire.strategies.demo import Demo
from coinwire.strategies.echo import Echo
from coinwire.strategies.efficient_frontier import EfficientFrontier
from coinwire.strategies.hodl import Hodl
from coinwire.strategies.ma_cross import MaCross
from coinwire.strategies.rebalance import Rebalance
from coinwire.strategies.signal_trader import SignalTrader
from coinwire.strategies.trade_decider import TradeDecider

__all__ = ["SEED_NAMES", "builtin_strategies", "load_strategy", "seed_name", "strategy_name", "builtin_name"]


# The seed's runnable names (its appendix C, `/cryptick/v1`) -> the built-in each one runs
SEED_NAMES: dict[str, str] = {
    "HodlStrategy": "hodl",
    "EchoStrategy": "echo",
    "DemoStrategy": "demo",
    "ComponentDemo": "component_demo",
    "EfficientFrontier": "efficient_frontier",
}
_BY_BUILTIN = {builtin: seed for seed, builtin in SEED_NAMES.items()}


def builtin_strategies() -> dict[str, type[Strategy]]:
    """Every built-in strategy by its name."""
    classes: list[type[Strategy]] = [Hodl, Echo, Demo, ComponentDemo, MaCross, TradeDecider, EfficientFrontier, CrossExchange,
                                     Rebalance, SignalTrader]
    return {strategy_name(c): c for c in classes}


def builtin_name(name: str) -> str:
    """The built-in a seed runnable name runs (`HodlStrategy` -> `hodl`); any other name as it is."""
    return SEED_NAMES.get(name, name)


def seed_name(strategy: str) -> str:
    """The seed's runnable name of a built-in (`hodl` -> `HodlStrategy`); one the seed does not have keeps its own name."""
    return _BY_BUILTIN.get(strategy, strategy)


def load_strategy(ref: str) -> type[Strategy]:
    """A built-in name (or its seed name), or `file.py:ClassName` (the file is imported as its own module)."""
    if is_file_ref(ref):
        return load_strategy_file(ref)
    builtins = builtin_strategies()
    ref = builtin_name(ref)
    if ref not in builtins:
        raise NotFound("strategy_not_found",
                       f"unknown strategy {ref!r}; built-ins: {', '.join(sorted(builtins))}, or use file.py:ClassName")
    return builtins[ref]

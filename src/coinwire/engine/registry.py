"""Which strategies can run: the built-ins by name, and user strategies from `path/to/file.py:ClassName`."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.engine.strategy import Strategy

__all__ = ["builtin_strategies", "load_strategy", "strategy_name"]


def strategy_name(cls: type[Strategy]) -> str:
    return cls.name or re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def builtin_strategies() -> dict[str, type[Strategy]]:
    from coinwire.strategies.component_demo import ComponentDemo
    from coinwire.strategies.cross_exchange import CrossExchange
    from coinwire.strategies.echo import Echo
    from coinwire.strategies.efficient_frontier import EfficientFrontier
    from coinwire.strategies.hodl import Hodl
    from coinwire.strategies.ma_cross import MaCross
    from coinwire.strategies.trade_decider import TradeDecider

    classes: list[type[Strategy]] = [Hodl, Echo, ComponentDemo, MaCross, TradeDecider, EfficientFrontier, CrossExchange]
    return {strategy_name(c): c for c in classes}


def load_strategy(ref: str) -> type[Strategy]:
    """A built-in name, or `file.py:ClassName` (the file is imported as its own module)."""
    if ":" in ref and ref.split(":", 1)[0].endswith(".py"):
        path_text, class_name = ref.rsplit(":", 1)
        path = Path(path_text)
        if not path.is_file():
            raise NotFound("strategy_not_found", f"strategy file {path} does not exist")
        module_name = f"coinwire_user_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise InvalidInput("strategy_not_loadable", f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except CoinwireError:  # a strategy class refused as it was defined (strategy.misnamed_callback): its own code
            raise
        except (Exception, SystemExit) as exc:  # a file that calls exit() at import is refused like one that raises
            raise InvalidInput("strategy_not_loadable", f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise NotFound("strategy_not_found", f"{path} has no Strategy subclass named {class_name}")
        return cls
    builtins = builtin_strategies()
    if ref not in builtins:
        raise NotFound("strategy_not_found",
                       f"unknown strategy {ref!r}; built-ins: {', '.join(sorted(builtins))}, or use file.py:ClassName")
    return builtins[ref]

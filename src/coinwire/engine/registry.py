"""Strategy names, and user strategies loaded from `path/to/file.py:ClassName`.

The built-ins are listed by `coinwire.strategies.registry`, above the engine: the engine runs a
Strategy class it is given and never imports the strategies themselves.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.engine.strategy import Strategy

__all__ = ["is_file_ref", "load_strategy_file", "strategy_name"]


def strategy_name(cls: type[Strategy]) -> str:
    return cls.name or re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def is_file_ref(ref: str) -> bool:
    """`path/to/file.py:ClassName`, as opposed to a built-in's name."""
    return ":" in ref and ref.split(":", 1)[0].endswith(".py")


def load_strategy_file(ref: str) -> type[Strategy]:
    """The class `ClassName` of `file.py:ClassName` (the file is imported as its own module)."""
    if not is_file_ref(ref):
        raise NotFound("strategy_not_found", f"{ref!r} is not a strategy file reference (file.py:ClassName)")
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

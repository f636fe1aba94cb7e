"""One callback style: `on_*` methods are the hooks a run calls; any other `on_*` method is refused when its class is defined.

Before, `on_candle`/`on_cross` registered callbacks while `on_fill`/`on_order` were overridden,
so `def on_candle(self, candle)` was a run that finished cleanly with no trade at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.engine.backtest import BacktestConfig, BacktestRuntime
from coinwire.engine.strategy import HOOKS, Strategy
from coinwire.history.candles import Candles
from coinwire.strategies.registry import builtin_strategies, load_strategy


def _refusal(body: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        exec(f"class Probe(Strategy):\n{body}", {"Strategy": Strategy, "Any": Any})  # noqa: S102 - a class defined from text
    assert caught.value.code == "strategy_callback_misnamed"
    return caught.value


@pytest.mark.parametrize(("name", "right"), [
    ("on_candle", "self.subscribe_candles(symbol, timeframe, self.candle)"),
    ("on_bar", "self.subscribe_candles(symbol, timeframe, self.bar)"),
    ("on_cross", "self.watch_cross(a, b, above=self.cross"),
    ("on_trades", "self.subscribe_trades(symbol, self.trades)"),
    ("on_book", "self.subscribe_book(symbol, self.book)"),
    ("on_ticker", "self.subscribe_ticker(symbol, self.ticker)"),
])
def test_defining_a_data_callback_as_a_hook_is_refused_naming_the_subscription(name: str, right: str) -> None:
    error = _refusal(f"    def {name}(self, event):\n        pass\n")
    assert f"Probe.{name} would never be called" in error.message and right in error.message
    assert error.data["method"] == name and error.data["expected"] == sorted(HOOKS)


def test_a_misspelt_hook_gets_did_you_mean_and_any_other_on_name_the_hooks() -> None:
    assert "did you mean on_fill?" in _refusal("    def on_fills(self, fill):\n        pass\n").message
    error = _refusal("    def on_golden(self):\n        pass\n")
    assert "did you mean" not in error.message and "on_fill, on_input, on_order, on_start, on_step, on_stop" in error.message
    _refusal("    on_candle = print\n")  # any attribute of that name, not only a def


def test_the_hooks_and_other_names_define_fine_in_subclasses_of_subclasses() -> None:
    class Base(Strategy):
        def on_start(self) -> None: ...
        def on_fill(self, fill: dict[str, Any]) -> None: ...
        def candle(self, candle: dict[str, Any]) -> None: ...
        _on_private = 1

    class Child(Base):
        def on_order(self, order: Any) -> None: ...
        def on_input(self, component_id: str, value: Any) -> None: ...
        def on_stop(self) -> None: ...

    assert issubclass(Child, Strategy)
    with pytest.raises(InvalidInput, match="subscribe_candles"):
        type("Grandchild", (Child,), {"on_candle": lambda self, candle: None})


def test_every_builtin_follows_the_one_style() -> None:
    for cls in builtin_strategies().values():
        assert not [n for c in cls.__mro__ for n in vars(c) if n.startswith("on_") and n not in HOOKS and c is not Strategy]


def test_a_strategy_file_with_a_misnamed_callback_is_refused_with_that_code_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "silent.py"
    path.write_text("from coinwire.engine.strategy import Strategy\n\n\nclass Silent(Strategy):\n"
                    "    def on_candle(self, candle):\n        self.buy('BTC/USDT')\n")
    with pytest.raises(CoinwireError) as caught:
        load_strategy(f"{path}:Silent")
    assert caught.value.code == "strategy_callback_misnamed" and "subscribe_candles" in caught.value.message


def test_the_right_style_hears_every_closed_candle() -> None:
    hour = 3600
    candles = Candles("binance", "BTC/USDT", "1h", [i * hour for i in range(6)], [1.0] * 6, [2.0] * 6, [0.5] * 6,
                      [1.5] * 6, [10.0] * 6)

    class Right(Strategy):
        def on_start(self) -> None:
            self.seen: list[int] = []
            self.subscribe_candles("BTC/USDT", "1h", self.candle)

        def candle(self, candle: dict[str, Any]) -> None:
            self.seen.append(candle["time"])

    runtime = BacktestRuntime("r", [candles], BacktestConfig(exchange="binance", balances={"USDT": "100"}))
    strategy = runtime.run(Right, {})
    assert strategy.seen == [i * hour for i in range(6)]  # type: ignore[attr-defined]


def test_calling_the_old_registering_style_names_the_subscription() -> None:
    class Old(Strategy):
        def on_start(self) -> None:
            self.on_candle("BTC/USDT", "1h", self.candle)  # type: ignore[attr-defined]

        def candle(self, candle: dict[str, object]) -> None:
            pass

    strategy = Old.__new__(Old)
    with pytest.raises(AttributeError, match=r"subscribe with self\.subscribe_candles\(symbol, timeframe"):
        strategy.on_start()
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        strategy.nothing_here  # type: ignore[attr-defined]  # noqa: B018

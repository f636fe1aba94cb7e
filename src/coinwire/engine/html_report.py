"""A backtest's self-contained HTML report: metrics, equity, drawdown, 15-minute portfolio closes and price with trades, as inline SVG;
its rule sets' firings when it had some.

No script and no external file: the page opens offline, prints, and can be mailed.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from coinwire.engine.report import equity_curve
from coinwire.engine.runtime import Runtime

__all__ = ["write_html_report", "render_html_report"]

_W, _H = 960, 220


def _downsample(x: np.ndarray, y: np.ndarray, points: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= points:
        return x, y
    idx = np.linspace(0, len(x) - 1, points).astype(int)
    return x[idx], y[idx]


def _polyline(x: np.ndarray, y: np.ndarray, x0: float, x1: float, y0: float, y1: float, color: str) -> str:
    if not len(x):
        return ""
    sx = (x - x0) / ((x1 - x0) or 1) * (_W - 60) + 50
    sy = _H - 20 - (y - y0) / ((y1 - y0) or 1) * (_H - 40)
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(sx, sy, strict=True))
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{pts}"/>'


def _chart(title: str, x: np.ndarray, y: np.ndarray, color: str, marks: list[tuple[float, float, str]] | None = None) -> str:
    xs, ys = _downsample(x, y)
    if not len(ys):
        return f"<h2>{html.escape(title)}</h2><p>no data</p>"
    x0, x1 = float(x[0]), float(x[-1])
    y0, y1 = float(np.nanmin(y)), float(np.nanmax(y))
    parts = [_polyline(xs, ys, x0, x1, y0, y1, color)]
    for mx, my, side in marks or []:
        cx = (mx - x0) / ((x1 - x0) or 1) * (_W - 60) + 50
        cy = _H - 20 - (my - y0) / ((y1 - y0) or 1) * (_H - 40)
        fill = "#16a34a" if side == "buy" else "#dc2626"
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{fill}"><title>{side} {my:g}</title></circle>')
    labels = (f'<text x="4" y="16" font-size="11">{y1:,.6g}</text>'
              f'<text x="4" y="{_H - 22}" font-size="11">{y0:,.6g}</text>')
    return (f"<h2>{html.escape(title)}</h2><svg viewBox='0 0 {_W} {_H}' width='100%' role='img' aria-label='{html.escape(title)}'>"
            f"<rect width='{_W}' height='{_H}' fill='#fafafa'/>{labels}{''.join(parts)}</svg>")


def render_html_report(outcome: Any, runtime: Runtime) -> str:
    rep = outcome.report or {}
    t, equity, _ = equity_curve(runtime)
    x = t / 1e9
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    drawdown = -(1 - equity / peak) * 100 if len(equity) else equity
    market = next(iter(runtime.report_markets().values()))
    s = market.series
    marks = [
        (f.ts / 1e9, f.price / 10**market.instrument.price_decimals, f.side.value)
        for f in runtime.fills if f.symbol == market.instrument.symbol
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(rep.get(k)))}</td></tr>"
        for k in ("run_id", "strategy", "status", "initial_equity", "final_equity", "total_return", "cagr", "sharpe", "sortino",
                  "max_drawdown", "entries", "exits", "win_rate", "profit_factor", "exposure", "fees", "orders", "candles",
                  "intrabar", "bars_with_both_legs")
        if k in rep or k not in ("intrabar", "bars_with_both_legs")  # the candle backtest's stated assumption
    )
    trades = "".join(
        f"<tr><td>{tr['time']}</td><td>{tr['side']}</td><td>{tr['price']}</td><td>{tr['size']}</td><td>{tr['fee']}</td></tr>"
        for tr in rep.get("trades", [])[:2000]
    )
    firings = "".join(
        f"<tr><td>{f['time']}</td><td>{html.escape(str(f['rule_set']))}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in f['values'].items()))}</td>"
        f"<td>{html.escape(', '.join(a['kind'] + ' ' + a['status'] for a in f['actions']))}</td></tr>"
        for f in rep.get("rule_firings", [])
    )
    rules = ("" if "rule_firings" not in rep else
             "<h2>Rule firings</h2><table><tr><th>time</th><th>rule set</th><th>values</th><th>actions</th></tr>"
             f"{firings}</table>" + (f"<p>rules effect: {html.escape(str(rep['rules_effect']))}</p>" if "rules_effect" in rep else ""))
    candles = rep.get("portfolio", {}).get("candles", [])
    pt = np.array([c[0] + 900 for c in candles], dtype=np.float64)  # each bucket's close instant
    portfolio = _chart(f"Portfolio value at 15-minute closes ({runtime.quote}, {len(candles)} candles)", pt,
                       np.array([float(c[4]) for c in candles]), "#7c3aed")
    title = f"coinwire report {html.escape(str(rep.get('run_id')))}"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#111}}table{{border-collapse:collapse}}
th,td{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}}</style></head><body>
<h1>{html.escape(str(rep.get('strategy')))} {html.escape(str(rep.get('mode', 'backtest')))}</h1><table>{rows}</table>
{_chart("Equity (" + runtime.quote + ")", x, equity, "#2563eb")}
{_chart("Drawdown (%)", x, drawdown, "#dc2626")}
{portfolio}
{_chart(market.instrument.symbol + " close with fills", s.close_ns / 1e9, s.close, "#374151", marks)}
{rules}
<h2>Trades</h2><table><tr><th>time</th><th>side</th><th>price</th><th>size</th><th>fee</th></tr>{trades}</table>
</body></html>"""


def write_html_report(path: Path, outcome: Any, runtime: Runtime) -> None:
    path.write_text(render_html_report(outcome, runtime), encoding="utf-8")

"""Drawings of an efficient frontier over its random cloud: a self-contained HTML page (inline SVG) or a PNG (matplotlib).

Why our own SVG: the HTML needs nothing installed and no script or network to open (like
the engine's HTML report); matplotlib is used for PNG only when it is installed.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from coinwire.core.errors import InvalidInput

__all__ = ["write_plot"]

_W, _H, _PAD = 900, 560, 60
_CLOUD_MAX = 5000  # points drawn of the cloud in SVG (a sample: the page stays small)


def write_plot(path: Path, summary: dict[str, Any], cloud_vol: np.ndarray, cloud_ret: np.ndarray,
               singles: list[dict[str, Any]]) -> None:
    """Write the frontier (`summary` as `core.frontier.summary` makes it) over the cloud to `.html` or `.png`."""
    suffix = path.suffix.lower()
    if suffix == ".html":
        path.write_text(_html(summary, cloud_vol, cloud_ret, singles), encoding="utf-8")
    elif suffix == ".png":
        _png(path, summary, cloud_vol, cloud_ret, singles)
    else:
        raise InvalidInput("invalid_plot", f"--plot writes .png or .html files, got {path.name!r}", path=str(path))


def _series(summary: dict[str, Any]) -> tuple[list[float], list[float]]:
    return [p["volatility"] for p in summary["frontier"]], [p["return"] for p in summary["frontier"]]


def _png(path: Path, summary: dict[str, Any], cloud_vol: np.ndarray, cloud_ret: np.ndarray, singles: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInput(
            "plot_needs_matplotlib", "a PNG needs matplotlib (pip install 'coinwire[plot]'); --plot FILE.html needs nothing"
        ) from None
    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=110)
    sharpe = (cloud_ret - summary["risk_free"]) / cloud_vol
    ax.scatter(cloud_vol, cloud_ret, c=sharpe, s=2, cmap="viridis", alpha=0.5, linewidths=0, label="random portfolios")
    vols, rets = _series(summary)
    ax.plot(vols, rets, color="#d62728", lw=2, label="efficient frontier")
    for key, marker, label in (("max_sharpe", "*", "max Sharpe"), ("min_variance", "D", "min variance")):
        if summary[key] is not None:
            ax.scatter([summary[key]["volatility"]], [summary[key]["return"]], marker=marker, s=160, color="black", label=label, zorder=3)
    for s in singles:
        ax.annotate(s["asset"], (s["volatility"], s["return"]), fontsize=7, color="#555555")
    ax.set_xlabel("annualised volatility")
    ax.set_ylabel("annualised return")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _html(summary: dict[str, Any], cloud_vol: np.ndarray, cloud_ret: np.ndarray, singles: list[dict[str, Any]]) -> str:
    vols, rets = _series(summary)
    step = max(1, len(cloud_vol) // _CLOUD_MAX)
    cv, cr = cloud_vol[::step], cloud_ret[::step]
    xs = np.concatenate([cv, vols, [s["volatility"] for s in singles]])
    ys = np.concatenate([cr, rets, [s["return"] for s in singles]])
    x0, x1 = 0.0, float(xs.max()) * 1.05
    y0, y1 = float(min(ys.min(), 0.0)), float(ys.max())
    y0, y1 = y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0)

    def px(x: float) -> float:
        return _PAD + (x - x0) / (x1 - x0) * (_W - 2 * _PAD)

    def py(y: float) -> float:
        return _H - _PAD - (y - y0) / (y1 - y0) * (_H - 2 * _PAD)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-family="sans-serif" font-size="11">',
             f'<rect width="{_W}" height="{_H}" fill="white"/>']
    for i in range(6):
        gx, gy = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        parts.append(f'<line x1="{px(gx):.1f}" y1="{_PAD}" x2="{px(gx):.1f}" y2="{_H - _PAD}" stroke="#eee"/>'
                     f'<text x="{px(gx):.1f}" y="{_H - _PAD + 16}" text-anchor="middle">{gx:.0%}</text>')
        parts.append(f'<line x1="{_PAD}" y1="{py(gy):.1f}" x2="{_W - _PAD}" y2="{py(gy):.1f}" stroke="#eee"/>'
                     f'<text x="{_PAD - 6}" y="{py(gy) + 4:.1f}" text-anchor="end">{gy:.0%}</text>')
    parts.append("".join(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="1.3" fill="#7fa7d9" fill-opacity="0.5"/>'
                         for x, y in zip(cv.tolist(), cr.tolist(), strict=True)))
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(vols, rets, strict=True))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#d62728" stroke-width="2.5"/>')
    for s in singles:
        parts.append(f'<circle cx="{px(s["volatility"]):.1f}" cy="{py(s["return"]):.1f}" r="3" fill="#555"/>'
                     f'<text x="{px(s["volatility"]) + 5:.1f}" y="{py(s["return"]) - 4:.1f}" fill="#555">{html.escape(s["asset"])}</text>')
    for key, colour, label in (("max_sharpe", "#000", "max Sharpe"), ("min_variance", "#2ca02c", "min variance")):
        p = summary[key]
        if p is not None:
            parts.append(f'<circle cx="{px(p["volatility"]):.1f}" cy="{py(p["return"]):.1f}" r="6" fill="{colour}"/>'
                         f'<text x="{px(p["volatility"]) + 9:.1f}" y="{py(p["return"]) + 4:.1f}" font-weight="bold">{label}</text>')
    parts.append(f'<text x="{_W / 2}" y="{_H - 18}" text-anchor="middle">annualised volatility</text>'
                 f'<text x="16" y="{_H / 2}" transform="rotate(-90 16 {_H / 2})" text-anchor="middle">annualised return</text>')
    parts.append("</svg>")
    title = f"Efficient frontier: {', '.join(summary['assets'])}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif'><h2>{html.escape(title)}</h2>"
            f"<p>{len(summary['frontier'])} frontier points (red) over {len(cloud_vol):,} random portfolios"
            f"{f' (every {step}th drawn)' if step > 1 else ''}; risk-free rate {summary['risk_free']:.2%}.</p>"
            + "".join(parts) + "</body></html>\n")

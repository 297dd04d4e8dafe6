"""PNG charts of the plan report (the optional `plot` extra, matplotlib): the Pareto frontier
and the sensitivity panels. Each returns PNG bytes, or None without matplotlib. matplotlib is
imported only here and only when a chart is drawn."""

from __future__ import annotations

import io
from typing import Any

from planner.search import PlanResult
from planner.sensitivity import SensitivityTable


def _pyplot() -> Any | None:
    """matplotlib.pyplot on the non-interactive Agg backend, or None when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _png(plt: Any, fig: Any, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def frontier_png(res: PlanResult) -> bytes | None:
    """Every kept candidate as goodput per GPU against tokens/s per user (1 / median TPOT),
    with the Pareto frontier drawn through."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, items in res.per_strategy.items():
        xs = [1.0 / r.goodput.prediction.tpot_s[50] for r in items if r.goodput.prediction]
        ys = [r.goodput.per_gpu for r in items if r.goodput.prediction]
        ax.scatter(xs, ys, label=strategy)
    fx = [1.0 / r.goodput.prediction.tpot_s[50] for r in res.frontier if r.goodput.prediction]
    fy = [r.goodput.per_gpu for r in res.frontier if r.goodput.prediction]
    ax.plot(fx, fy, "k--", marker="x", linewidth=1, label="Pareto frontier (all evaluated)")
    ax.set_xlabel("tokens/s per user (1 / median TPOT)")
    ax.set_ylabel("goodput per GPU (req/s)")
    ax.legend()
    return _png(plt, fig, 110)


def sensitivity_png(tables: list[SensitivityTable]) -> bytes | None:
    """One panel per sensitivity table (goodput per GPU of each strategy against the varied
    input); None also when no strategy has a deployment to draw."""
    if not any(t.rows for t in tables):
        return None
    plt = _pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 3.6))
    for ax, t in zip(axes, tables, strict=True):
        for strategy, vals in t.rows.items():
            ax.plot(t.column_labels, vals, marker="o", label=strategy)
        ax.set_title(t.title, fontsize=9)
        ax.set_ylabel("goodput per GPU (req/s)")
    axes[0].legend(fontsize=8)
    return _png(plt, fig, 100)

"""PNG charts (the optional `plot` extra, matplotlib): the plan report's Pareto frontier,
sensitivity panels and GPUs per ramp step, and `ecoplan compare`'s costs per GPU type. Each
returns PNG bytes, or None without matplotlib. matplotlib is imported only here and only when
a chart is drawn."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.compare import Comparison
    from planner.pipeline import ScaleOutcome
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


def scaling_png(scaling: ScaleOutcome, cluster_gpus: int) -> bytes | None:
    """GPUs per step of the rate ramp, one line per strategy, with the cluster's size drawn
    across (steps above it assume a grown cluster); None when no strategy has a schedule."""
    plans = [p for p in scaling.plans if p.steps]
    if not plans:
        return None
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    x = list(range(len(scaling.ramp.rates)))
    for p in plans:
        ax.step(x, [s.gpus for s in p.steps], where="mid", marker="o", label=p.strategy)
    ax.axhline(cluster_gpus, color="k", linestyle="--", linewidth=1)
    ax.annotate(
        f"cluster: {cluster_gpus} GPUs", (x[-1], cluster_gpus), fontsize=8, ha="right", va="top"
    )
    ax.set_xticks(x, [f"{r:g}" for r in scaling.ramp.rates])
    ax.set_xlabel(f"request rate (req/s), {scaling.ramp.step_hours:g} h per step")
    ax.set_ylabel("GPUs")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return _png(plt, fig, 110)


def plot_available() -> bool:
    """Whether the `plot` extra (matplotlib) is installed, so that charts can be drawn."""
    return _pyplot() is not None


def compare_png(cmp: Comparison) -> bytes | None:
    """The GPU comparison as two bar panels, cheapest on top: cost per hour of the GPUs the
    target rate needs (with their count), and cost per million output tokens at goodput.
    None without matplotlib or when no GPU has a plan."""
    rows = [(o, o.best) for o in cmp.options if o.best is not None]
    if not rows:
        return None
    plt = _pyplot()
    if plt is None:
        return None
    shapes = len({o.shape for o in cmp.options}) > 1
    labels = [f"{o.gpu} ({o.shape})" if shapes else o.gpu for o, _ in rows][::-1]
    for_target = [b.cost_per_hour or 0.0 for _, b in rows][::-1]
    per_million = [b.cost_per_million_tokens for _, b in rows][::-1]
    needed = [b.gpus_needed for _, b in rows][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.6), sharey=True)
    bars = left.barh(labels, for_target, color="tab:blue")
    left.bar_label(bars, [f" {n} GPUs" for n in needed], fontsize=8)
    left.set_xlabel(f"US$ per hour for {cmp.target_rate:g} req/s")
    left.margins(x=0.25)
    right.barh(labels, per_million, color="tab:green")
    right.set_xlabel("US$ per million output tokens at goodput")
    fig.suptitle(
        f"{cmp.scenario.model.name}, {cmp.scenario.workload.name}: cheapest GPU for "
        f"{cmp.target_rate:g} req/s",
        fontsize=10,
    )
    return _png(plt, fig, 110)

"""Renderings of the commands' result objects — the markdown report (markdown.py), JSON
(json_doc.py), PNG charts (charts.py), terminal tables (terminal.py) — and writing the plan
report's files."""

from __future__ import annotations

from pathlib import Path

from planner.outputs import write_atomic
from planner.pipeline import PlanOutcome
from planner.report import charts
from planner.report.markdown import render_markdown


def write_plan_files(outcome: PlanOutcome, out: Path) -> list[Path]:
    """Write the report to `out` and, with the `plot` extra, its charts beside it
    (`<out stem>.png`, `<out stem>-sensitivity.png`, `<out stem>-scaling.png`); each file
    atomically. Charts are skipped when `out` is not a regular file's path (e.g. /dev/null).
    Returns the paths written."""
    written: list[Path] = []
    regular = not out.exists() or out.is_file()
    frontier = charts.frontier_png(outcome.plan) if regular else None
    sens = charts.sensitivity_png(outcome.sensitivity) if regular and outcome.sensitivity else None
    cluster_gpus = outcome.scenario.cluster.total_gpus
    ramp = (
        charts.scaling_png(outcome.scaling, cluster_gpus) if regular and outcome.scaling else None
    )
    frontier_path = out.with_suffix(".png")
    sens_path = out.with_name(f"{out.stem}-sensitivity.png")
    ramp_path = out.with_name(f"{out.stem}-scaling.png")
    for path, png in ((frontier_path, frontier), (sens_path, sens), (ramp_path, ramp)):
        if png is not None:
            write_atomic(path, png)
            written.append(path)
    text = render_markdown(
        outcome,
        frontier_path.name if frontier else None,
        sens_path.name if sens else None,
        ramp_path.name if ramp else None,
    )
    write_atomic(out, text)
    return [out, *written]

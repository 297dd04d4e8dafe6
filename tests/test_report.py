"""The markdown report's tables: no column that can only hold "–", ramp steps beyond the
cluster marked and explained, and the GPUs-per-step chart beside the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import search
from planner.config import Objective, PlanFile, RampSpec, load_plan
from planner.pipeline import PlanOutcome, ScaleOutcome
from planner.report import write_plan_files
from planner.report.markdown import render_markdown
from planner.scaling import scale

from .conftest import EXAMPLES

SMALL = EXAMPLES / "small-model-llama-3.1-8b-alpaca.yaml"


def _outcome(plan: PlanFile, ramp: RampSpec | None = None) -> PlanOutcome:
    """The search and (with `ramp`) the scaling section only: no sensitivity tables."""
    res = search.plan(plan.scenario(SMALL.parent), plan.search, plan.objective)
    scaling = ScaleOutcome(scale(res, ramp), ramp) if ramp is not None else None
    return PlanOutcome(res, scaling=scaling)


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def _header(section: str) -> list[str]:
    line = next(x for x in section.splitlines() if x.startswith("| strategy"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def small() -> PlanFile:
    return load_plan(SMALL)


def test_target_columns_only_with_a_target_rate(small: PlanFile) -> None:
    text = render_markdown(_outcome(small))
    for title in ("Best deployment per strategy", "Runner-up plans"):
        head = _header(_section(text, title))
        assert "GPUs for target" not in head and "$/h for target" not in head
        assert "$/M output tokens" in head
    assert "when the plan's objective sets `target_rate`" in text

    aimed = small.model_copy(update={"objective": Objective(kind="min_gpus", target_rate=30)})
    text = render_markdown(_outcome(aimed))
    best = _section(text, "Best deployment per strategy")
    head = _header(best)
    i, j = head.index("GPUs for target"), head.index("$/h for target")
    rows = [r for r in best.splitlines() if r.startswith("| ") and "(" in r.split("|")[1]]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(head)
        assert cells[i].isdigit() and cells[j].startswith("$")
    assert "objective sets `target_rate`" not in text


def test_ramp_steps_beyond_the_cluster_are_marked(small: PlanFile) -> None:
    gpus = small.cluster.nodes * small.cluster.gpus_per_node
    within = render_markdown(_outcome(small, RampSpec(rates=[1, 2])))
    assert "†" not in _section(within, "Scaling over a rate ramp")

    text = render_markdown(_outcome(small, RampSpec(rates=[1, 400])))
    ramp = _section(text, "Scaling over a rate ramp")
    per_step = ramp[ramp.index("**GPUs per step**") :].split("\n\n")[1]
    rows = [r for r in per_step.splitlines() if r.startswith("| ") and "/s" not in r]
    assert rows
    for row in rows:
        first, last = (c.strip() for c in row.strip("|").split("|")[1:])
        assert "†" not in first and last.endswith("†")
        assert int(last.removesuffix("†")) > gpus
    assert f"More GPUs than the cluster's {gpus}" in ramp
    assert "grows by whole nodes" in ramp


def test_scaling_chart_beside_the_report(small: PlanFile, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.md"
    files = write_plan_files(_outcome(small, RampSpec(rates=[5, 10, 40])), out)
    png = tmp_path / "report-scaling.png"
    assert png in files and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![GPUs per ramp step](report-scaling.png)" in out.read_text()


def test_no_scaling_chart_without_the_section(small: PlanFile, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    write_plan_files(_outcome(small), out)
    assert not (tmp_path / "report-scaling.png").exists()
    assert "GPUs per ramp step" not in out.read_text()

"""Inputs that name what is wrong: deeper pipelines than layers, inverted mitosis bounds, the
option a launch error names, and figures that cannot be negative or meaningless."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner import search
from planner.cli import app
from planner.config import PlanFile, load_plan
from planner.deployment import Deployment
from planner.ecoserve_paper import compare_with_paper
from planner.errors import PlannerError
from planner.report.launch import launch_input
from planner.scenario import deployment_problem
from planner.simulate.goodput import SimGoodput

runner = CliRunner()


def test_pipeline_deeper_than_the_model_is_refused() -> None:
    pf = PlanFile.model_validate(
        {"model": "llama-3.1-8b", "cluster": {"gpu": "l20", "nodes": 8, "gpus_per_node": 8}}
    )
    scen = pf.scenario()
    why = deployment_problem(Deployment("vllm", tp=1, pp=40, instances=1), scen)
    assert why is not None and "32 layers" in why
    res = runner.invoke(app, ["estimate", "--gpu", "l20", "--model", "llama-3.1-8b", "--pp", "64"])
    assert res.exit_code == 2 and "--pp: 64 exceeds" in res.output


def test_inverted_macro_bounds_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("ramp: {rates: [1, 5], macro_min: 11, macro_max: 6}\n")
    res = runner.invoke(app, ["scale", str(path)])
    assert res.exit_code == 2
    assert "macro_min (11) must not exceed macro_max (6)" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_launch_error_names_the_option_used() -> None:
    pf = PlanFile.model_validate({"model": "llama-3.1-8b", "search": {"strategies": ["vllm"]}})
    res = search.plan(pf.scenario(), pf.search, pf.objective)
    with pytest.raises(PlannerError, match=r"^--launch-strategy: sarathi"):
        launch_input(res, "sarathi", "--launch-strategy")


def test_paper_margin_is_null_without_another_strategy() -> None:
    path = Path(__file__).parent.parent / "examples" / "small-model-llama-3.1-8b-alpaca.yaml"
    pf = load_plan(path)
    spec = pf.search.model_copy(update={"strategies": ["ecoserve"]})
    res = search.plan(pf.scenario(path.parent), spec, pf.objective)
    cmp = compare_with_paper(res)
    assert cmp is not None and cmp.ecoserve_margin_at_paper_shape is None


def test_simulated_interval_never_below_zero() -> None:
    g = SimGoodput(Deployment("vllm", instances=1), (0.0, 0.0, 3.0), 100, None)
    lo, hi = g.ci_per_gpu
    assert lo == 0.0 and hi > g.per_gpu

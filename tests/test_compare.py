"""`ecoplan compare`: the same plan on each GPU type, ranked by cost for a target rate; GPUs
that cannot hold the model are skipped with the reason; JSON keys documented; progress bars
only on a terminal."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from planner import cli, pipeline
from planner.cli import app
from planner.compare import compare, default_gpus
from planner.config import ClusterSpec, Objective, PlanFile, SearchSpec, load_plan
from planner.report.json_doc import SCHEMA_VERSION

from .conftest import EXAMPLES
from .test_json import _undocumented

runner = CliRunner()
SMALL = EXAMPLES / "small-model-llama-3.1-8b-alpaca.yaml"
TWO = ["l20", "l40s"]


@pytest.fixture(scope="module")
def small() -> PlanFile:
    return load_plan(SMALL)


def test_each_gpu_is_planned_and_ranked_by_cost(small: PlanFile) -> None:
    cmp = compare(small, SMALL.parent, gpus=[*TWO, "a100-80g-sxm"], target_rate=20)
    assert cmp.target_rate == 20 and cmp.target_source == "--target-rate"
    assert sorted(o.gpu for o in cmp.options) == sorted([*TWO, "a100-80g-sxm"])
    costs = []
    for o in cmp.options:
        b = o.best
        assert o.skipped is None and b is not None
        assert (o.nodes, o.gpus_per_node) == (1, 4)  # the plan's node shape
        assert o.cluster_cost_per_hour == pytest.approx(4 * o.price_per_gpu_hour)
        assert b.gpus_needed is not None and b.gpus_needed * b.goodput.per_gpu >= 20 - 1e-9
        assert b.cost_per_hour == pytest.approx(b.gpus_needed * o.price_per_gpu_hour)
        costs.append((b.cost_per_hour, b.cost_per_million_tokens))
    assert costs == sorted(costs)
    assert cmp.cheapest is cmp.options[0]


def test_the_plans_own_gpu_matches_ecoplan_plan(small: PlanFile) -> None:
    """On the plan's own GPU, compare finds what `plan --no-sensitivity` finds."""
    cmp = compare(small, SMALL.parent, gpus=["l20"], target_rate=20)
    with_target = small.model_copy(update={"objective": Objective(target_rate=20)})
    own = pipeline.run_plan(with_target, with_target.scenario(SMALL.parent), sections=False)
    assert own.plan.winner is not None and cmp.options[0].best is not None
    assert cmp.options[0].best.goodput.per_gpu == pytest.approx(own.plan.winner.goodput.per_gpu)
    assert cmp.options[0].best.gpus_needed == own.plan.winner.gpus_needed


def test_target_rate_sources(small: PlanFile) -> None:
    one = ["l20"]
    ramp = compare(small, SMALL.parent, gpus=one)
    assert (ramp.target_rate, ramp.target_source) == (max(small.ramp.rates), "ramp peak")
    aimed = small.model_copy(update={"objective": Objective(kind="min_cost", target_rate=7)})
    obj = compare(aimed, SMALL.parent, gpus=one)
    assert (obj.target_rate, obj.target_source) == (7, "objective.target_rate")
    assert compare(aimed, SMALL.parent, gpus=one, target_rate=9).target_rate == 9


def test_gpu_without_room_for_the_model_is_skipped_with_the_reason() -> None:
    """CodeLlama-34B in BF16 (65.5 GiB with reserve) fits one 80 GB H100, not one 48 GB L20."""
    plan = PlanFile(
        cluster=ClusterSpec(nodes=1, gpus_per_node=1, price_per_gpu_hour=9.0),
        search=SearchSpec(strategies=["vllm"], tp=[1], pp=[1]),
    )
    cmp = compare(plan, gpus=["l20", "h100-sxm"], target_rate=5)
    assert [o.gpu for o in cmp.options] == ["h100-sxm", "l20"]  # skipped ones last
    h100, l20 = cmp.options
    assert h100.best is not None and h100.skipped is None
    assert h100.price_per_gpu_hour == 2.25  # the plan's price override is l20's only
    assert l20.price_per_gpu_hour == 9.0
    assert l20.best is None and l20.skipped is not None
    assert "codellama-34b" in l20.skipped and "GiB" in l20.skipped
    assert cmp.cheapest is h100


def test_cluster_shapes(small: PlanFile) -> None:
    cmp = compare(small, SMALL.parent, gpus=["l20"], nodes=[1, 2], gpus_per_node=[2])
    assert sorted(o.shape for o in cmp.options) == ["1×2", "2×2"]


def test_default_gpus_are_every_shipped_profile(small: PlanFile) -> None:
    from planner import catalog

    assert default_gpus(small) == catalog.gpu_names()
    assert len(default_gpus(small)) >= 3


def _json(args: list[str]) -> dict[str, Any]:
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def test_compare_json_is_versioned_and_documented() -> None:
    doc = _json(["compare", str(SMALL), "--gpus", ",".join(TWO), "--target-rate", "15"])
    assert doc["schema_version"] == SCHEMA_VERSION and doc["command"] == "compare"
    assert not _undocumented(doc), _undocumented(doc)
    assert doc["target_rate_rps"] == 15 and doc["target_source"] == "--target-rate"
    assert doc["cheapest"] == doc["options"][0]["gpu"]
    assert {o["gpu"] for o in doc["options"]} == set(TWO)
    for o in doc["options"]:
        best = o["best"]
        assert best["gpus_for_target"] >= 1 and best["goodput_per_gpu_rps"] > 0
        assert math.isclose(
            best["cost_per_hour_for_target"], best["gpus_for_target"] * o["price_per_gpu_hour"]
        )
    assert doc["files"] == []


def test_compare_table() -> None:
    res = runner.invoke(app, ["compare", str(SMALL), "--gpus", ",".join(TWO)])
    assert res.exit_code == 0, res.output
    assert "cheapest for 50 req/s" in res.stdout  # the ramp's peak
    for gpu in TWO:
        assert gpu in res.stdout


def test_compare_bad_input_is_one_line() -> None:
    for args, needle in [
        (["--gpus", "l20,nope"], "--gpus: unknown profile 'nope'"),
        (["--target-rate", "0"], "--target-rate"),
        (["--nodes", "x"], "--nodes"),
    ]:
        res = runner.invoke(app, ["compare", str(SMALL), *args])
        assert res.exit_code == 2
        assert res.output.strip().splitlines()[-1].startswith(f"error: {needle}"), res.output


def test_compare_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "compare.png"
    doc = _json(["compare", str(SMALL), "--gpus", ",".join(TWO), "--chart", str(png)])
    assert doc["files"] == [str(png)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- progress bars ---------------------------------------------------------------------------


def test_no_progress_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped (as under CliRunner), the long commands draw no progress bar at all."""

    def no_bar(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a progress bar was built for a non-terminal stderr")

    monkeypatch.setattr("rich.progress.Progress", no_bar)  # cli imports it when drawing
    for args in (
        ["compare", str(SMALL), "--gpus", "l20"],
        ["simulate", str(SMALL), "--rate", "5", "--requests", "200"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert res.stderr == ""
        assert "simulating" not in res.output and "search" not in res.output


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    term = Console(file=buf, force_terminal=True, width=100)
    monkeypatch.setattr(cli, "_console", lambda stderr=False: term)
    with cli._progress(4, "comparing") as progress:
        progress("comparing", 2, 4)
    assert "comparing" in buf.getvalue()

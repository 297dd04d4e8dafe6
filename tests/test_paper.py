"""The report's comparison with the EcoServe paper (docs/model.md §9.4): the paper's shape,
the figures it reads from the plan, and the section's structure."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from planner import search
from planner.config import load_plan
from planner.deployment import FAMILY, strategy_help, strategy_title
from planner.ecoserve_paper import compare_with_paper, paper_deployments, paper_tp
from planner.pipeline import PlanOutcome
from planner.report.markdown import render_markdown
from planner.scenario import Scenario

from .conftest import EXAMPLES


@pytest.fixture(scope="module")
def eco_plan() -> tuple[Scenario, search.PlanResult]:
    path = EXAMPLES / "ecoserve-codellama-34b-alpaca.yaml"
    plan = load_plan(path)
    scen = plan.scenario(path.parent)
    return scen, search.plan(scen, plan.search, plan.objective)


def test_paper_tp_follows_the_papers_runs(eco_plan: tuple[Scenario, search.PlanResult]) -> None:
    scen, _ = eco_plan
    assert paper_tp(scen) == 4  # CodeLlama-34B: TP 4 in the paper
    big = EXAMPLES / "ecoserve-qwen2-72b-alpaca.yaml"
    assert paper_tp(load_plan(big).scenario(big.parent)) == 8  # Qwen2-72B: TP 8


def test_paper_deployments_use_every_gpu(eco_plan: tuple[Scenario, search.PlanResult]) -> None:
    scen, _ = eco_plan
    deps = paper_deployments(scen)
    n = scen.cluster.total_gpus // 4
    assert set(deps) == set(FAMILY)
    for items in deps.values():
        assert all(d.gpus == scen.cluster.total_gpus and d.tp == 4 and d.pp == 1 for d in items)
        assert all(d.replicas == 1 for d in items)  # 32 GPUs: the paper's own cluster
    assert len(deps["mooncake"]) == n - 1  # every P:D split of the n instances
    assert deps["ecoserve"][0].macro_size == n


def test_paper_unit_is_replicated_on_larger_clusters(
    eco_plan: tuple[Scenario, search.PlanResult],
) -> None:
    scen, _ = eco_plan
    big = dataclasses.replace(
        scen, cluster=scen.cluster.model_copy(update={"nodes": 12}), _instances={}, _units={}
    )
    deps = paper_deployments(big)
    for items in deps.values():
        assert all(d.gpus == 96 for d in items)
    assert all(d.replicas == 3 for d in deps["mooncake"]) and len(deps["mooncake"]) == 7
    assert deps["ecoserve"][0].macro_size == 8 and deps["ecoserve"][0].instances == 24


def test_comparison_reads_the_plan(eco_plan: tuple[Scenario, search.PlanResult]) -> None:
    scen, res = eco_plan
    cmp = compare_with_paper(res)
    assert cmp is not None and res.winner is not None
    assert cmp.winner == res.winner.deployment.strategy
    eco = res.per_strategy["ecoserve"][0].goodput.per_gpu
    assert cmp.ecoserve_vs_winner == pytest.approx(eco / res.winner.goodput.per_gpu)
    assert (cmp.ecoserve_rank == 1) == (cmp.winner == "ecoserve")
    for s, v in cmp.views.items():
        if v.at_paper_shape is not None:  # the paper's shape is one candidate the search saw
            assert v.at_paper_shape.deployment.tp == 4
        if FAMILY[s] == "FuDG" and v.best is not None:
            per_req = scen.model.kv_bytes_per_sequence(scen.sample()[0]).mean()
            assert v.kv_bytes_per_request == pytest.approx(float(per_req))
    pickle.loads(pickle.dumps(cmp))  # built in a forked worker: plain values only
    assert 0.0 <= cmp.allreduce_share_prefill <= 1.0
    assert 0.0 <= cmp.allreduce_share_decode <= 1.0


def test_report_section_names_each_mechanism(
    eco_plan: tuple[Scenario, search.PlanResult],
) -> None:
    _, res = eco_plan
    text = render_markdown(PlanOutcome(res, paper=compare_with_paper(res)))
    sec = text[text.index("## Against the EcoServe paper") :]
    sec = sec[: sec.index("\n## ", 1)]
    assert "arXiv 2504.18154" in sec
    for mechanism in ("Parallelism", "TP all-reduce", "EcoServe's own limit"):
        assert f"**{mechanism}" in sec
    if res.per_strategy.get("mooncake"):
        assert "**KV transfer (mooncake).**" in sec
    head = next(x for x in sec.splitlines() if x.startswith("| strategy"))
    assert "at TP 4: goodput/GPU" in head
    # without EcoServe in the search there is nothing to compare
    no_eco = {k: v for k, v in res.per_strategy.items() if k != "ecoserve"}
    assert compare_with_paper(search.PlanResult(**{**res.__dict__, "per_strategy": no_eco})) is None


def test_strategy_names_say_which_vllm_scheduler() -> None:
    assert "V0" in strategy_title("vllm") and "V1" in strategy_title("sarathi")
    text = strategy_help()
    assert "vllm: " in text and "vLLM V0" in text and "vLLM V1's default" in text

"""The search's pruning bound is sound (issue 14): no candidate's goodput exceeds
`upper_bound_rate`, and pruning changes no strategy's best plans."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from planner import search
from planner.config import PlanFile, load_plan
from planner.deployment import STRATEGIES
from planner.errors import PlannerError
from planner.scenario import deployment_problem
from planner.strategies import goodput
from planner.workload import preset

from .conftest import EXAMPLES

# goodput's root finder stops within rel_tol = 0.3% of the crossing, always on a passing rate;
# the bound is exact up to float rounding, so 1% only absorbs numerical noise
REL_TOL = 0.01
PER_STRATEGY = 2  # candidates checked per strategy and scenario


@st.composite
def scenarios(draw: st.DrawFn) -> PlanFile:
    workload = draw(st.sampled_from(["alpaca", "sharegpt", "longbench"]))
    slo = preset(workload).slo
    scale = draw(st.sampled_from([0.5, 1.0, 2.0]))
    return PlanFile.model_validate(
        {
            "cluster": {
                "gpu": draw(st.sampled_from(["l20", "a800-80g-pcie", "h100-sxm"])),
                "nodes": draw(st.sampled_from([1, 2, 4])),
                "gpus_per_node": draw(st.sampled_from([4, 8])),
                "network": {"bandwidth_gbit": draw(st.sampled_from([1.0, 10.0, 100.0, 400.0]))},
            },
            "model": draw(st.sampled_from(["llama-3.1-8b", "codellama-34b", "llama-30b"])),
            "workload": {
                "preset": workload,
                # a shared prefix reused by vLLM V1's prefix caching (docs/model.md §7.1)
                "prefix": draw(
                    st.sampled_from(
                        [None, {"tokens": 64, "share": 0.5}, {"tokens": 800, "share": 0.9}]
                    )
                ),
            },
            "slo": {
                "ttft_s": slo.ttft_s * scale,
                "tpot_s": slo.tpot_s * scale,
                "attainment": draw(st.sampled_from([50.0, 90.0, 99.0])),
                "joint": draw(st.booleans()),
            },
            "kv": {"policy": draw(st.sampled_from(["paged", "paged", "max", "predicted"]))},
        }
    )


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pf=scenarios(), data=st.data())
def test_bound_holds_for_every_strategy(pf: PlanFile, data: st.DataObject) -> None:
    """goodput(d).rate ≤ upper_bound_rate(d) on a few candidates of each strategy, drawn from
    the search's own candidate list, over models, workloads, SLOs, targets, KV policies,
    networks and cluster sizes."""
    scen = pf.scenario()
    try:
        cands = [d for d in search.candidates(scen, pf.search) if not deployment_problem(d, scen)]
    except PlannerError:  # no shape holds the model on this cluster
        assume(False)
    for strategy in STRATEGIES:
        pool = [d for d in cands if d.strategy == strategy]
        if not pool:
            continue
        picks = data.draw(
            st.lists(
                st.integers(0, len(pool) - 1),
                min_size=1,
                max_size=PER_STRATEGY,
                unique=True,
            ),
            label=strategy,
        )
        for i in picks:
            d = pool[i]
            g = goodput(d, scen, percentiles=False)
            bound = search.upper_bound_rate(d, scen)
            assert g.rate <= bound * (1.0 + REL_TOL) + 1e-9, (
                f"{d.label()} ({strategy}): goodput {g.rate:.4g} req/s > bound {bound:.4g} "
                f"({g.binding}: {g.detail})"
            )


# pruned vs exhaustive search: the examples in the suite (one per objective kind and model
# size, and the shared-prefix case, ~16 s together); ECOPLAN_FULL_BOUND_CHECK=1 runs all
# thirteen (~1 min of CPU)
IN_SUITE = {
    "small-model-llama-3.1-8b-alpaca",  # small model, every strategy feasible
    "a800-roce-llama-2-70b-azure-conv",  # min_gpus objective: pruning by GPUs needed
    "ecoserve-qwen2-72b-longbench",  # long prompts, DistServe mostly placement-infeasible
    "l20-codellama-34b-system-prompt",  # a shared prefix under prefix caching
}
FULL = os.environ.get("ECOPLAN_FULL_BOUND_CHECK") == "1"


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_pruning_keeps_the_best_plans(example: Path) -> None:
    if not FULL and example.stem not in IN_SUITE:
        pytest.skip("set ECOPLAN_FULL_BOUND_CHECK=1 to check every example")
    pf = load_plan(example)
    results = {}
    for exhaustive in (False, True):
        spec = pf.search.model_copy(update={"exhaustive": exhaustive})
        results[exhaustive] = search.plan(pf.scenario(example.parent), spec, pf.objective)
    pruned, full = results[False], results[True]
    assert full.pruned == 0
    assert pruned.evaluated + pruned.pruned == full.evaluated
    for s in pf.search.strategies:
        got = [(r.deployment, r.goodput.rate) for r in pruned.per_strategy[s]]
        want = [(r.deployment, r.goodput.rate) for r in full.per_strategy[s]]
        assert got == want, s
    assert pruned.infeasible == full.infeasible

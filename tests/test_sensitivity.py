"""Sensitivity tables (docs/model.md §9.1): variants that predict as the plan's scenario does
take the plan's goodput; the others are re-solved."""

from __future__ import annotations

from planner import search
from planner.config import PlanFile
from planner.deployment import Deployment
from planner.scenario import Scenario
from planner.sensitivity import _off_network, sensitivity_parts


def test_network_only_matters_to_deployments_that_use_it() -> None:
    pf = PlanFile()
    scen: Scenario = pf.scenario()
    assert _off_network(Deployment("vllm", tp=2, pp=2, instances=8), scen)
    assert _off_network(Deployment("distserve", tp=1, instances=4, decode_instances=4), scen)
    assert not _off_network(Deployment("mooncake", tp=1, instances=4, decode_instances=4), scen)
    # TP8·PP2 spans two 8-GPU nodes: its stage boundary crosses the network
    assert not _off_network(Deployment("vllm", tp=8, pp=2, instances=2), scen)

    res = search.plan(scen, pf.search, pf.objective)
    table = sensitivity_parts(res)[0]()  # inter-node bandwidth
    for strategy, row in table.rows.items():
        best = res.per_strategy[strategy][0]
        if _off_network(best.deployment, scen):
            assert row == [best.goodput.per_gpu] * len(row), strategy
    moon = table.rows["mooncake"]
    assert moon[0] <= moon[-1]  # more bandwidth never hurts FuDG over the network

"""Scale-out (issue 16): replicated units behind a round-robin balancer (docs/model.md §8.5) and
instances larger than a node, pipeline stages across nodes (§2.7, §7.4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner import search
from planner.catalog import load_gpu, load_model
from planner.cli import app
from planner.config import PlanFile
from planner.deployment import (
    STRATEGIES,
    Deployment,
    cross_node_boundaries,
    instance_nodes,
    interleaved_groups,
    interleaved_placement,
    kv_node_shares,
    nodes_needed,
    placement,
    span_problem,
)
from planner.hardware import Network
from planner.perf import InstancePerf
from planner.scenario import deployment_problem, unit_scenario
from planner.simulate.run import simulate
from planner.strategies import goodput, predict

from .conftest import EXAMPLES

runner = CliRunner()


# ---- node arithmetic (hand-computed) --------------------------------------------------------
@pytest.mark.parametrize(
    ("tp", "pp", "gpn", "nodes", "crossing"),
    [
        (2, 2, 8, 1, 0),  # inside a node
        (2, 2, 2, 2, 1),  # stages 0 | 1 on two nodes
        (2, 4, 2, 4, 3),  # every boundary crosses
        (1, 4, 2, 2, 1),  # GPUs 0,1 | 2,3: the boundary after stage 2 crosses
        (4, 4, 8, 2, 1),  # boundaries at GPUs 4, 8, 12: only 8 is a node edge
        (8, 2, 8, 2, 1),  # DeepSeek-V3 on two H100 nodes
    ],
)
def test_instance_nodes_and_crossing_boundaries(
    tp: int, pp: int, gpn: int, nodes: int, crossing: int
) -> None:
    assert instance_nodes(tp, pp, gpn) == nodes
    assert cross_node_boundaries(tp, pp, gpn) == crossing
    assert span_problem(tp, pp, gpn) is None


def test_stages_never_straddle_nodes() -> None:
    assert span_problem(4, 2, 2) is not None  # TP across nodes
    assert span_problem(4, 2, 6) is not None  # 6-GPU nodes cannot hold whole 4-GPU stages
    assert span_problem(3, 4, 6) is None


def test_stage_sends_cross_nodes_over_one_nic() -> None:
    """Llama-3.1-70B, TP2·PP4 on 2-GPU L20 nodes over 25 GbE: 3 boundaries, all across nodes;
    1,000 tokens send 1000·8192·2 bytes each at 25e9/8·0.95 B/s + 10 µs."""
    m, g = load_model("llama-3.1-70b"), load_gpu("l20")
    net = Network(bandwidth_gbit=25, nics_per_node=4)  # one NIC per send, not four
    across = InstancePerf(m, g, g.intra_node, 2, 4, network=net, cross_node_boundaries=3)
    inside = InstancePerf(m, g, g.intra_node, 2, 4)
    msg = 1000 * 8192 * 2
    want = 3 * (msg / (25e9 / 8 * 0.95) + 10e-6)
    assert float(across.stage_sends_s(1000.0)) == pytest.approx(want, rel=1e-12)
    link = g.intra_node
    assert float(inside.stage_sends_s(1000.0)) == pytest.approx(
        3 * (msg / link.p2p_bandwidth_bytes_s + link.latency_s), rel=1e-12
    )
    extra = float(across.prefill(1000.0).comm_s - inside.prefill(1000.0).comm_s)
    assert extra == pytest.approx(want - float(inside.stage_sends_s(1000.0)), rel=1e-9)
    with pytest.raises(ValueError):
        InstancePerf(m, g, g.intra_node, 2, 4, network=net, cross_node_boundaries=4)
    with pytest.raises(ValueError):
        InstancePerf(m, g, g.intra_node, 2, 4, cross_node_boundaries=1)


def test_placement_of_instances_spanning_nodes() -> None:
    # Mooncake on 2-GPU nodes: one prefill TP2·PP2 (2 nodes), two decode TP2 (a node each)
    dep = Deployment("mooncake", tp=2, pp=2, instances=1, decode_instances=2, decode_pp=1)
    assert placement(dep, 2, 5) == [(1, 0), (0, 0), (0, 1), (0, 1), (0, 0)]
    assert kv_node_shares(dep, 2, 4) == ((0.5, 0.0), (0.5, 0.0), (0.0, 1.0), (0.0, 1.0))
    assert nodes_needed(dep, 2) == 4
    # single-node instances: decode fills what prefill leaves on each node
    small = Deployment("mooncake", tp=2, instances=3, decode_instances=3, decode_tp=1)
    assert placement(small, 4, 3) == [(2, 0), (1, 2), (0, 1)]
    assert nodes_needed(small, 4) == 3


def test_distserve_stage_aligned_groups() -> None:
    """TP1·PP4 prefill and decode on 2-GPU nodes: a group of 4 nodes, node j holding stage j
    of both, so the KV of each stage stays on its node (1/4 of an instance's KV per node)."""
    dep = Deployment("distserve", tp=1, pp=4, instances=2, decode_instances=2)
    g = interleaved_groups(dep, 2, 8)
    assert g is not None and (g.groups, g.nodes, g.prefill, g.decode) == (2, 4, 1, 1)
    assert interleaved_placement(dep, 2, 8) == [(1, 1), (0, 0), (0, 0), (0, 0)] * 2
    assert kv_node_shares(dep, 2, 8) == ((0.25, 0.25),) * 8
    assert nodes_needed(dep, 2) == 8
    # different pipeline depths cannot share stage boundaries across nodes
    odd = Deployment("distserve", tp=1, pp=4, instances=1, decode_instances=1, decode_pp=1)
    assert interleaved_groups(odd, 2, 8) is None


# ---- replication ------------------------------------------------------------------------------
def _scen(nodes: int = 4, gpn: int = 8, model: str = "llama-3.1-8b") -> PlanFile:
    return PlanFile.model_validate(
        {
            "cluster": {"gpu": "l20", "nodes": nodes, "gpus_per_node": gpn},
            "model": model,
            "workload": {"preset": "alpaca"},
        }
    )


def test_replicated_deployment_is_one_unit_at_its_share() -> None:
    scen = _scen().scenario()
    dep = Deployment("vllm", tp=8, instances=1, replicas=4)
    assert dep.gpus == 32 and dep.unit_gpus == 8 and dep.label() == "4 × [1× TP8]"
    unit = unit_scenario(dep, scen)
    assert unit.cluster.nodes == 1
    assert unit.workload.arrivals.ca2 == pytest.approx(0.25)
    assert deployment_problem(dep, scen) is None
    five = Deployment("vllm", tp=4, replicas=5)  # 20 GPUs, but a node per unit
    assert "needs 5 nodes (5 units of 1)" in str(deployment_problem(five, scen))
    a = predict(dep, scen, 8.0, percentiles=False)
    b = predict(dep.unit, unit, 2.0, percentiles=False)
    assert a.attainment == b.attainment and a.decode_batch == b.decode_batch
    # Erlang arrivals queue less than Poisson: replication never lowers this goodput
    whole = goodput(Deployment("vllm", tp=8, instances=4), scen, percentiles=False)
    assert goodput(dep, scen, percentiles=False).rate >= whole.rate * (1 - 3e-3)
    assert search.upper_bound_rate(dep, scen) == pytest.approx(
        4 * search.upper_bound_rate(dep.unit, unit)
    )


def test_simulator_splits_round_robin_and_pools_units() -> None:
    scen = _scen(nodes=2).scenario()
    dep = Deployment("vllm", tp=4, instances=2, replicas=2)
    res = simulate(dep, scen, 10.0, requests=301)
    assert res.requests == 2 * 151
    assert 0.0 <= res.attainment <= 1.0
    assert res.little_rate_x_sojourn == pytest.approx(res.in_system_mean, rel=0.2)
    one = simulate(dep.unit, unit_scenario(dep, scen), 5.0, requests=151)
    assert one.requests == 151


def test_search_offers_replicated_units() -> None:
    pf = _scen(nodes=4)
    scen = pf.scenario()
    cands = list(search.candidates(scen, pf.search))
    for strategy in STRATEGIES:
        reps = {d.replicas for d in cands if d.strategy == strategy}
        if strategy in ("distserve", "mooncake"):  # units on every divisor of the 4 nodes
            assert reps == {1, 2, 4}, strategy
        else:  # round-robin everywhere: r units of q queues predict what r·q queues do
            assert reps == {1}, strategy
    dep = Deployment("vllm", tp=2, instances=8, replicas=2)
    whole = Deployment("vllm", tp=2, instances=16)
    assert goodput(dep, scen).rate == pytest.approx(goodput(whole, scen).rate, rel=1e-3)


# the best goodput per GPU of every strategy on N nodes and on m·N nodes (Poisson arrivals)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    nodes=st.sampled_from([1, 2]),
    gpn=st.sampled_from([2, 4]),
    m=st.sampled_from([2, 3]),
    preset=st.sampled_from(["alpaca", "sharegpt"]),
)
def test_growing_by_whole_units_never_lowers_goodput_per_gpu(
    nodes: int, gpn: int, m: int, preset: str
) -> None:
    def best(n: int) -> dict[str, float]:
        pf = PlanFile.model_validate(
            {
                "cluster": {"gpu": "l20", "nodes": n, "gpus_per_node": gpn},
                "model": "llama-3.1-8b",
                "workload": {"preset": preset},
                "search": {"tp": [1, 2], "pp": [1, 2], "chunk_tokens": [512], "top": 1},
            }
        )
        res = search.plan(pf.scenario(), pf.search, pf.objective)
        return {s: (r[0].goodput.per_gpu if r else 0.0) for s, r in res.per_strategy.items()}

    small, big = best(nodes), best(nodes * m)
    for s in small:
        # the root finder stops within 0.3% below the crossing
        assert big[s] >= small[s] * (1 - 1e-2), (s, small[s], big[s])


# ---- end to end -------------------------------------------------------------------------------
def test_llama_70b_plans_on_2_gpu_l20_nodes(tmp_path: Path) -> None:
    example = EXAMPLES / "l20-2gpu-nodes-llama-3.1-70b-sharegpt.yaml"
    res = runner.invoke(
        app, ["plan", str(example), "--no-sensitivity", "--out", str(tmp_path / "r.md")]
    )
    assert res.exit_code == 0, res.output
    assert "winner:" in res.output


def test_deepseek_v3_plans_on_two_h100_nodes(tmp_path: Path) -> None:
    path = tmp_path / "ds.yaml"
    path.write_text(
        "cluster: {gpu: h100-sxm, nodes: 2, gpus_per_node: 8,"
        " network: {bandwidth_gbit: 400, nics_per_node: 8}}\n"
        "model: deepseek-v3\nworkload: {preset: sharegpt}\n"
        "search: {strategies: [vllm, sarathi]}\n"
    )
    out = str(tmp_path / "r.md")
    res = runner.invoke(
        app, ["plan", str(path), "--no-sensitivity", "--out", out, "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout[res.stdout.index("{") :])
    dep = doc["winner"]["deployment"]
    assert dep["tp"] * dep["pp"] == 16 and dep["tp"] <= 8  # one instance over both nodes
    assert doc["winner"]["goodput_per_gpu_rps"] > 0
    assert math.isfinite(doc["winner"]["goodput_rps"])

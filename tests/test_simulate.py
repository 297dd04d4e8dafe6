"""Discrete-event simulator: timing tables, queueing laws, determinism, agreement, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app
from planner.crosscheck.validation import check_example, median_abs_gap
from planner.deployment import Deployment
from planner.hardware import Cluster, Network
from planner.perf import InstancePerf
from planner.perf.iteration import IterationTimer
from planner.queueing import md1_mean_ttft_s
from planner.scenario import Scenario
from planner.simulate import simulate
from planner.simulate.goodput import sim_goodput
from planner.simulate.requests import draw_requests
from planner.strategies import goodput
from planner.workload import SLO, LengthDist, Workload

from .test_json import _undocumented
from .test_strategies import scenario

runner = CliRunner()


@pytest.mark.parametrize(("tp", "pp"), [(4, 1), (1, 2), (2, 2)])
def test_iteration_timer_matches_roofline(tp: int, pp: int) -> None:
    """The simulator's tables reproduce the roofline phases they were built from."""
    gpu, model = catalog.load_gpu("l20"), catalog.load_model("codellama-34b")
    perf = InstancePerf(model, gpu, gpu.intra_node, tp, pp)
    timer = IterationTimer(perf)
    for length, batch in [(512, 1), (300, 3), (9000, 1), (20000, 2)]:
        attn = float(timer.prompt_attention_s(np.full(batch, length)).sum())
        assert timer.prefill_s(length * batch, batch, attn) == pytest.approx(
            float(perf.prefill(length, batch).total_s) / 1.0, rel=1e-9
        )
    for b, ctx in [(1, 100), (17, 600), (200, 1500)]:
        assert timer.decode_s(b, b * ctx) == pytest.approx(
            float(perf.decode_step(b, ctx).total_s), rel=1e-6
        )
    for b, ctx, c, pre in [(10, 500, 400, 100), (0, 0, 512, 0), (50, 2000, 30, 7000)]:
        chunk_s = timer.chunk_attention_s(c, pre, timer.hybrid_chunk_share)
        t = timer.hybrid_s(b, b * ctx, chunk_s, c)
        assert t == pytest.approx(float(perf.hybrid_step(b, ctx, c, pre).total_s), rel=1e-6)


def test_request_stream_scales_with_rate() -> None:
    """Common random numbers: the same seed gives the same requests, closer together."""
    wl = scenario().workload
    a = draw_requests(wl, 4096, 500, 2.0, seed=7)
    b = draw_requests(wl, 4096, 500, 4.0, seed=7)
    assert np.allclose(a.arrival_s, 2 * b.arrival_s)
    assert np.array_equal(a.input_tokens, b.input_tokens)
    gaps = np.diff(draw_requests(wl, 4096, 20000, 5.0, seed=1).arrival_s)
    assert gaps.mean() == pytest.approx(0.2, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_same_seed_same_result_other_seed_differs() -> None:
    scen = scenario()
    dep = Deployment("ecoserve", tp=4, instances=8, macro_size=4)
    one = simulate(dep, scen, 20.0, requests=1500, seed=3)
    two = simulate(dep, scen, 20.0, requests=1500, seed=3)
    other = simulate(dep, scen, 20.0, requests=1500, seed=4)
    assert one == two
    assert one.mean_ttft_s != other.mean_ttft_s


@pytest.mark.parametrize(
    "dep",
    [
        Deployment("vllm", tp=4, instances=8),
        Deployment("sarathi", tp=4, instances=8),
        Deployment("mooncake", tp=4, instances=4, decode_instances=4),
        Deployment("ecoserve", tp=4, instances=8, macro_size=8),
    ],
    ids=lambda d: d.strategy,
)
def test_littles_law(dep: Deployment) -> None:
    """Time-average number in the system = arrival rate × mean time in the system, in a steady
    state (at 60% of the deployment's analytical goodput)."""
    scen = scenario()
    r = simulate(dep, scen, 0.6 * goodput(dep, scen).rate, requests=6000, seed=0)
    assert r.in_system_mean == pytest.approx(r.little_rate_x_sojourn, rel=0.05)


def test_prefill_queue_matches_md1() -> None:
    """One instance, fixed prompts that fill the token budget (so every batch is one prompt),
    single-token outputs: the prefill queue is M/D/1 and its mean TTFT is DistServe's formula."""
    wl = Workload(
        name="fixed",
        input=LengthDist(kind="fixed", mean=8192),
        output=LengthDist(kind="fixed", mean=1),
    )
    cl = Cluster(
        gpu=catalog.load_gpu("l20"), nodes=1, gpus_per_node=8, network=Network(bandwidth_gbit=10)
    )
    scen = Scenario(
        cluster=cl,
        model=catalog.load_model("llama-3.1-8b"),
        workload=wl,
        slo=SLO(ttft_s=100.0, tpot_s=0.1),
        samples=64,
    )
    dep = Deployment("vllm", tp=1, instances=1)
    service = float(scen.instance(1, 1).prefill_s[0])
    for rho in (0.3, 0.6, 0.8):
        rate = rho / service
        r = simulate(dep, scen, rate, requests=20000, seed=1)
        assert r.mean_ttft_s == pytest.approx(md1_mean_ttft_s(rate, service), rel=0.06)


def test_attainment_falls_with_rate() -> None:
    scen = scenario()
    dep = Deployment("vllm", tp=4, instances=8)
    a = [simulate(dep, scen, r, requests=1500, seed=0).attainment for r in (10, 20, 30)]
    assert a[0] >= a[1] >= a[2] and a[2] < 0.9


def test_sim_goodput_close_to_analytical_on_paper_vllm() -> None:
    scen = scenario()
    dep = Deployment("vllm", tp=4, instances=8)
    ana = goodput(dep, scen)
    sim = sim_goodput(dep, scen, guess=ana.rate, seeds=(0, 1), requests=1500)
    lo, hi = sim.ci_per_gpu
    assert lo <= sim.per_gpu <= hi
    assert sim.at_rate is not None and sim.at_rate.attainment >= 0.8
    assert abs(ana.per_gpu - sim.per_gpu) / sim.per_gpu < 0.15


def test_agreement_on_default_scenario() -> None:
    """The validation check on the default scenario (docs/validation.md covers every example):
    median |gap| ≤ 15% and no strategy's ranking flipped."""
    check = check_example(None, seeds=(0, 1))
    assert len(check.rows) == 5
    assert median_abs_gap([check]) <= 0.15
    assert check.flips() == []


def test_simulate_cli_at_rate() -> None:
    res = runner.invoke(app, ["simulate", "--rate", "10", "--requests", "500"])
    assert res.exit_code == 0, res.output
    for s in ("vllm", "sarathi", "distserve", "mooncake", "ecoserve"):
        assert s in res.output
    assert "TTFT" in res.output


def test_simulate_cli_bad_rate() -> None:
    res = runner.invoke(app, ["simulate", "--rate", "-3"])
    assert res.exit_code == 2
    assert "rate" in res.output and "Traceback" not in res.output


SMALL_CLUSTER = (
    "cluster: {gpu: l20, nodes: 1, gpus_per_node: 4, network: {bandwidth_gbit: 10}}\n"
    "model: llama-3.1-8b\nworkload: {preset: alpaca}\n"
)


def test_simulate_rate_reports_runs_it_cannot_do_and_simulates_the_rest(tmp_path: Path) -> None:
    """With --rate, a deployment that does not fit the cluster and a run over the simulator's
    memory limit are rows that say why (table and JSON, in order, with the other rows' keys);
    every other run is still simulated, over one process or several."""
    plan = tmp_path / "p.yaml"
    plan.write_text(
        SMALL_CLUSTER + "deployments: [{strategy: vllm, tp: 1, instances: 4}, "
        "{strategy: vllm, tp: 1, instances: 8}, {strategy: sarathi, tp: 1, instances: 2}]\n"
    )
    args = ["simulate", str(plan), "--rate", "5", "--rate", "1e5", "--requests", "200"]
    res = runner.invoke(app, [*args, "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "needs 8 GPUs, the cluster has 4" in res.stdout and "MiB limit" in res.stdout
    assert res.stdout.count("100%") >= 2  # both runs that fit meet the SLO at 5 req/s
    res = runner.invoke(app, [*args, "--jobs", "2", "--format", "json"])
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)["runs"]
    got = [(r["deployment"]["strategy"], r["deployment"]["instances"], r["rate_rps"]) for r in runs]
    want = [
        (s, n, rate) for s, n in (("vllm", 4), ("vllm", 8), ("sarathi", 2)) for rate in (5, 1e5)
    ]
    assert got == want
    errors = [r["error"] for r in runs]
    assert errors[0] is None and errors[4] is None
    assert errors[2] == errors[3] == "needs 8 GPUs, the cluster has 4"
    assert "MiB limit" in errors[1] and "MiB limit" in errors[5]
    assert runs[0]["attainment"] > 0.9 and runs[4]["attainment"] > 0.9
    assert all(r["attainment"] is None and r["ttft_s"] is None for r in runs if r["error"])
    assert all(r.keys() == runs[0].keys() for r in runs)
    assert not _undocumented({"runs": runs})


def test_simulate_rate_fails_only_when_no_run_can_be_simulated(tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text(
        SMALL_CLUSTER + "deployments: [{strategy: vllm, tp: 1, instances: 8}, "
        "{strategy: vllm, tp: 2, instances: 4}]\n"
    )
    res = runner.invoke(app, ["simulate", str(plan), "--rate", "5", "--jobs", "1"])
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: no deployment can be simulated; vllm 8× TP1 at 5 req/s: "
        "needs 8 GPUs, the cluster has 4"
    )
    assert res.stdout == ""


def test_simulate_goodput_reports_a_deployment_that_cannot_run(tmp_path: Path) -> None:
    """Goodput mode: a DistServe split with no node holding both pools (KV moves inside a node)
    is a row that says why, next to the deployments that run; the same split alone exits 2."""
    plan = tmp_path / "p.yaml"
    cluster = (
        "cluster: {gpu: l20, nodes: 2, gpus_per_node: 4, network: {bandwidth_gbit: 25}}\n"
        "model: llama-3.1-8b\nworkload: {preset: alpaca}\n"
    )
    bad = "{strategy: distserve, tp: 1, instances: 5, decode_instances: 1}"
    plan.write_text(cluster + f"deployments: [{bad}, {{strategy: vllm, tp: 1, instances: 2}}]\n")
    args = ["simulate", str(plan), "--requests", "200", "--seeds", "1", "--jobs", "1"]
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["goodput"]
    assert "do not split evenly over nodes that each hold both" in rows[0]["error"]
    assert rows[0]["simulated_per_gpu_rps"] is None and rows[0]["gap"] is None
    assert rows[1]["error"] is None and rows[1]["simulated_per_gpu_rps"] > 0
    assert set(rows[0]) == set(rows[1])
    table = runner.invoke(app, args)
    assert "infeasible: 5 prefill and 1 decode" in table.stdout
    plan.write_text(cluster + f"deployments: [{bad}]\n")
    alone = runner.invoke(app, args)
    assert alone.exit_code == 2
    assert alone.stderr.startswith("error: distserve 5P(TP1) : 1D(TP1): 5 prefill and 1 decode")
    assert len(alone.stderr.strip().splitlines()) == 1


def test_plan_confirm_adds_simulation_section(tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    res = runner.invoke(
        app,
        ["plan", "examples/small-model-llama-3.1-8b-alpaca.yaml", "--out", str(out), "--confirm"],
    )
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "## Simulation check" in text
    assert "simulated/GPU (95% CI)" in text


def test_simulate_jobs_give_byte_identical_json(tmp_path: Path) -> None:
    """docs/model.md §10.7: the seeds' goodput searches and the runs at given rates are spread
    over --jobs processes with the same results (seeded, assembled in submission order)."""
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "cluster: {gpu: l20, nodes: 1, gpus_per_node: 4, network: {bandwidth_gbit: 10}}\n"
        "model: llama-3.1-8b\nworkload: {preset: alpaca}\n"
        "deployments: [{strategy: vllm, tp: 1, instances: 4}, "
        "{strategy: distserve, tp: 1, instances: 2, decode_instances: 2}]\n"
    )
    outs = {}
    for jobs in ("1", "2"):
        args = ["simulate", str(plan), "--requests", "200", "--seeds", "2", "--format", "json"]
        res = runner.invoke(app, [*args, "--jobs", jobs])
        assert res.exit_code == 0, res.output
        outs[jobs] = res.output
    assert outs["1"] == outs["2"]
    assert len(json.loads(outs["1"])["goodput"]) == 2


@pytest.mark.parametrize(("model", "tp", "pp"), [("codellama-34b", 2, 2), ("llama-3.1-8b", 1, 1)])
def test_decode_s_fast_path_is_the_composed_formula(model: str, tp: int, pp: int) -> None:
    """`IterationTimer.decode_s` caches per-batch parts and inlines the attention lookup: the
    same value to the bit as tokens + head + `decode_attention_s` of a micro-batch."""
    gpu = catalog.load_gpu("l20")
    timer = IterationTimer(InstancePerf(catalog.load_model(model), gpu, gpu.intra_node, tp, pp))
    rng = np.random.default_rng(3)
    for b, kv in zip(rng.integers(0, 600, 300), rng.uniform(0.0, 4e6, 300), strict=True):
        batch = int(b)
        micro = -(-max(batch, 1) // pp)
        g = timer.graphed(micro)
        want = (
            timer.tokens_s(micro, g)
            + timer.head_s(micro, g)
            + timer.decode_attention_s(float(kv) * micro / max(batch, 1), micro, g)
        )
        assert timer.decode_s(batch, float(kv)) == want

"""Simulator independence, routing, the DistServe link and vLLM V1 admission (docs/model.md
§6.7, §10.2, §10.3)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner import catalog
from planner.crosscheck.validation import ExampleCheck, TailRow, render_tails, why_paragraph
from planner.deployment import Deployment
from planner.errors import PlannerError
from planner.kv_policy import KVPolicy
from planner.perf import InstancePerf
from planner.perf.iteration import IterationTimer
from planner.queueing import routed_ca2
from planner.scenario import Scenario
from planner.simulate import simulate
from planner.simulate.instance import Instance, RequestTable
from planner.simulate.requests import RequestStream, unit_gaps
from planner.simulate.routing import Routing, first_targets, least_loaded
from planner.simulate.run import Link, _Loop, prefill_comm_s
from planner.strategies import goodput
from planner.workload import Arrivals, SharedPrefix

from .test_strategies import scenario

SIMULATE = Path(__file__).resolve().parent.parent / "planner" / "simulate"
FORBIDDEN = ("planner.strategies", "planner.search", "planner.queueing", "planner.crosscheck")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_simulator_imports_no_analytical_model() -> None:
    """The simulator checks the analytical models, so it must not use them: no module of
    planner/simulate imports the strategies, the search, the queueing formulas or the
    cross-checks (only the performance layer, deployments and the scenario)."""
    files = sorted(SIMULATE.glob("*.py"))
    assert len(files) >= 6
    bad = [
        f"{f.name}: {name}"
        for f in files
        for name in _imports(f)
        if any(name == m or name.startswith(m + ".") for m in FORBIDDEN)
    ]
    assert bad == []


def test_import_walker_sees_both_import_forms(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("import planner.queueing as q\nfrom planner import search\n")
    assert "planner.queueing" in _imports(src) and "planner.search" in _imports(src)


# ---- routing ----------------------------------------------------------------------------------


def test_round_robin_gives_each_instance_every_nth_request() -> None:
    t = first_targets("round-robin", 23, 4, seed=0)
    for i in range(4):
        assert [r for r, j in enumerate(t) if j == i] == list(range(i, 23, 4))


def test_random_routing_is_seeded_and_uniform() -> None:
    a = first_targets("random", 8000, 4, seed=1)
    assert a == first_targets("random", 8000, 4, seed=1)
    assert np.bincount(a, minlength=4) == pytest.approx([2000] * 4, rel=0.1)


def test_least_loaded_picks_the_emptiest_candidate() -> None:
    loads = [5, 2, 7, 2, 0]
    assert least_loaded(loads, [0, 1, 2, 3]) == 1  # tie 1/3: the lower index
    assert least_loaded(loads, [0, 2]) == 0
    assert least_loaded(loads, [2, 4]) == 4


def test_instance_load_counts_running_and_queued() -> None:
    table = _table([100, 900, 100], [50, 50, 50])
    inst = _instance(table, capacity=10_000)
    assert inst.load() == 0
    for rid in (0, 1, 2):
        inst.enqueue(rid)
    assert inst.load() == 3
    _run(inst, None, steps=1)  # 0 prefilled, 1 partly (512-token budget), 2 waits
    assert inst.load() == 3 and len(inst.waiting) == 1
    _run(inst, None, steps=3)
    assert inst.load() == 3 and inst.n_run == 3


@given(st.floats(0.05, 9.0), st.integers(1, 64))
def test_routed_ca2_invariants(ca2: float, n: int) -> None:
    """Round-robin smooths (ca²/n ≤ ca²); random splitting moves ca² towards 1 (Poisson stays
    Poisson); one instance sees the stream unchanged either way."""
    rr, rnd = routed_ca2(ca2, n), routed_ca2(ca2, n, "random")
    assert rr == pytest.approx(ca2 / n)
    assert min(ca2, 1.0) - 1e-12 <= rnd <= max(ca2, 1.0) + 1e-12
    assert routed_ca2(1.0, n, "random") == pytest.approx(1.0)
    if n == 1:
        assert rr == pytest.approx(ca2) and rnd == pytest.approx(ca2)


def test_routed_ca2_matches_split_streams() -> None:
    """The gaps one instance sees, from a simulated Gamma stream of CV² 2 split over 4."""
    wl = scenario().workload.model_copy(update={"arrivals": Arrivals(process="gamma", cv=2**0.5)})
    t = np.cumsum(unit_gaps(wl, 200_000, seed=3))
    for routing in ("round-robin", "random"):
        target = np.asarray(first_targets(routing, t.size, 4, seed=3))
        gaps = np.diff(t[target == 0])
        cv2 = float(gaps.var() / gaps.mean() ** 2)
        assert cv2 == pytest.approx(routed_ca2(2.0, 4, routing), rel=0.08)
    with pytest.raises(ValueError, match="routing"):
        routed_ca2(1.0, 2, "sticky")


def test_simulate_routing_option() -> None:
    scen = scenario()
    dep = Deployment("vllm", tp=4, instances=8)
    rr = simulate(dep, scen, 20.0, requests=1500, seed=0)
    rnd = simulate(dep, scen, 20.0, requests=1500, seed=0, routing="random")
    # the even split queues less than the random one
    assert rr.mean_ttft_s < rnd.mean_ttft_s
    with pytest.raises(PlannerError, match="routing"):
        simulate(dep, scen, 20.0, requests=1500, routing="sticky")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dep",
    [
        Deployment("distserve", tp=4, instances=4, decode_instances=4),
        Deployment("sarathi", tp=4, instances=8, chunk_tokens=512),
    ],
    ids=lambda d: d.strategy,
)
def test_littles_law_with_routers(dep: Deployment) -> None:
    scen = scenario()
    r = simulate(dep, scen, 0.6 * goodput(dep, scen).rate, requests=6000, seed=0)
    assert r.in_system_mean == pytest.approx(r.little_rate_x_sojourn, rel=0.05)


# ---- the DistServe link -----------------------------------------------------------------------


def test_link_is_fifo_and_a_transfer_waits_behind_tp_traffic() -> None:
    """TP all-reduce traffic of a prefill iteration (0.5 s from t = 0) occupies the node's link:
    a KV transfer ready at 0.1 s starts at 0.5 s and ends at 0.7 s; one ready after the link
    went idle starts at once."""
    link = Link()
    assert link.submit(0.0, 0.5) == pytest.approx(0.5)
    assert link.submit(0.1, 0.2) == pytest.approx(0.7)
    assert link.submit(2.0, 0.2) == pytest.approx(2.2)


def test_prefill_comm_is_the_perf_layers_communication_time() -> None:
    gpu, model = catalog.load_gpu("l20"), catalog.load_model("codellama-34b")
    perf = InstancePerf(model, gpu, gpu.intra_node, 4, 1)
    table = prefill_comm_s(perf, 4096)
    for tokens in (1, 512, 4096):
        assert table[tokens] == pytest.approx(float(perf.token_time(float(tokens)).comm_s))
    assert table[4096] > table[512] > 0.0
    assert prefill_comm_s(InstancePerf(model, gpu, gpu.intra_node, 1, 1), 8)[8] == 0.0


def test_distserve_transfers_queue_behind_prefill_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wiring: each prefill iteration's communication time occupies its node's link, the link
    KV transfers use. Charging 2 s of link time per prefill iteration makes transfers wait and
    TTFT grow by seconds; the decode pool is unchanged."""
    import planner.simulate.run as run

    scen = scenario()
    dep = Deployment("distserve", tp=4, instances=4, decode_instances=4)
    base = simulate(dep, scen, 2.0, requests=300, seed=0)
    monkeypatch.setattr(run, "prefill_comm_s", lambda perf, top: [2.0] * (top + 1))
    slow = simulate(dep, scen, 2.0, requests=300, seed=0)
    assert base.ttft_s[50] < 1.0
    assert slow.ttft_s[50] > base.ttft_s[50] + 1.0


# ---- vLLM V1 admission (sarathi mode) ---------------------------------------------------------


def _timer() -> IterationTimer:
    gpu, model = catalog.load_gpu("l20"), catalog.load_model("llama-3.1-8b")
    return IterationTimer(InstancePerf(model, gpu, gpu.intra_node, 1, 1))


TIMER = _timer()


def _table(prompts: list[int], steps: list[int]) -> RequestTable:
    n = len(prompts)
    return RequestTable(
        arrival_s=[0.0] * n,
        prompt=list(prompts),
        remaining=list(steps),
        steps=list(steps),
        attention_s=TIMER.prompt_attention_s(np.asarray(prompts)).tolist(),
        first_decode_s=[-1.0] * n,
        finish_s=[-1.0] * n,
        reserve=[0] * n,
    )


def _instance(table: RequestTable, capacity: int) -> Instance:
    return Instance(
        timer=TIMER, kv_capacity_tokens=capacity, requests=table, mode="sarathi", chunk_tokens=512
    )


def _run(inst: Instance, until_s: float | None, steps: int = 10_000) -> float:
    """Run up to `steps` iterations from t = 0 (`until_s` unused: the loop ends when idle)."""
    now = 0.0
    for _ in range(steps):
        end = inst.start(now)
        if end is None:
            break
        inst.complete(end)
        now = end
    return now


def test_v1_no_admission_in_a_step_that_preempted_and_recompute() -> None:
    """KV for 100 tokens. A and B (40-token prompts, 30 decode steps) are admitted and decode;
    C (a 25-token prompt) waits for room. Once A and B hold 100 tokens, the next step preempts
    B, the newest; that step frees 50 tokens, enough for C, but V1 admits nothing in a step
    that preempted. B is recomputed later with the 10 tokens it had generated."""
    table = _table([40, 40, 25], [30, 30, 5])
    inst = _instance(table, capacity=100)
    for rid in (0, 1):
        inst.enqueue(rid)
    now = _run(inst, None, steps=1)  # A and B prefilled in one chunk
    inst.enqueue(2)
    while table.preemptions == 0:
        before = dict(inst._progress), list(inst.waiting)
        end = inst.start(now)
        assert end is not None
        if table.preemptions:
            break
        assert before[1] == [2]  # C waits: no room while A and B grow
        inst.complete(end)
        now = end
    assert list(inst.waiting) == [1, 2]  # B back at the head, C not admitted
    assert inst._progress == {}
    assert table.prompt[1] == 40 + 10  # recompute: the prompt plus the generated tokens
    assert table.remaining[1] == 30 - 10
    inst.complete(end)
    _run_from(inst, end)
    assert all(f > 0 for f in table.finish_s)
    assert table.preemptions >= 1


def _run_from(inst: Instance, now: float) -> None:
    for _ in range(10_000):
        end = inst.start(now)
        if end is None:
            return
        inst.complete(end)
        now = end


def test_v1_preempts_a_partly_prefilled_prompt_first() -> None:
    """Request 0 (300-token prompt) decodes, holding 301 tokens; request 1 (2,000 tokens) is
    admitted into the last 2,002 free of 2,303 and chunked 511 tokens a step. Two decode steps
    later request 0's next token no longer fits: the newest admitted request — the prompt still
    being chunked — is preempted, not the decode; it waits until 0 has finished, then runs."""
    table = _table([300, 2000], [400, 3])
    inst = _instance(table, capacity=2303)
    inst.enqueue(0)
    now = _run(inst, None, steps=2)  # 0 prefilled, then one decode step
    inst.enqueue(1)
    end = inst.start(now)
    assert end is not None and inst._progress == {1: 511}
    while 1 in inst._progress:
        inst.complete(end)
        end = inst.start(end)
        assert end is not None
    assert table.preemptions == 1
    assert list(inst.waiting) == [1] and table.prompt[1] == 2000
    assert inst.n_run == 1 and table.remaining[0] == 400
    inst.complete(end)
    _run_from(inst, end)
    assert table.preemptions == 1
    assert table.first_decode_s[1] > table.finish_s[0] > 0


# ---- validation page: tails -------------------------------------------------------------------


def _tail(strategy: str, ana: float, sim: float, tpot_sim_p99: float, pre: int) -> TailRow:
    return TailRow(
        strategy=strategy,
        rate=10.0,
        ana_ttft_s={50: ana, 90: 2 * ana, 99: 4 * ana},
        ana_tpot_s={50: 0.05, 90: 0.06, 99: 0.066},
        sim_ttft_s={50: sim, 90: 2 * sim, 99: 8 * sim},
        sim_tpot_s={50: 0.05, 90: 0.06, 99: tpot_sim_p99},
        preemptions=pre,
    )


def test_why_paragraph_reads_the_numbers() -> None:
    """Hand-made rows: simulated TTFT equal at P50 and twice the analytical at P99; the
    simulated TPOT P99 is 1% over its P90 against the analytical 10%."""
    rows = [_tail("vllm", 1.0, 1.0, 0.0606, 0), _tail("sarathi", 0.5, 0.5, 0.0606, 0)]
    text = "\n".join(why_paragraph(rows))
    assert "TTFT: simulated minus analytical, median over rows: P50 +0%, P90 +0%, P99 +100%" in text
    assert "analytical +10%, simulated +1%: the simulated TPOT tail is narrower" in text
    assert "the analytical TTFT tail is lighter" in text
    assert "0 in 2 simulations" in text
    rows.append(_tail("distserve", 1.0, 1.0, 0.066, 7))
    assert "Preemptions at these rates: 7 in 3 simulations." in "\n".join(why_paragraph(rows))


def test_render_tails_table() -> None:
    check = ExampleCheck("demo", [], 0.0, [_tail("vllm", 1.0, 2.0, 0.07, 3)])
    lines = render_tails([check])
    assert (
        "| demo | vllm | 10 | 1.00/2.00/4.00 | 2.00/4.00/16.00 | 50/60/66 | 50/60/70 | 3 |" in lines
    )


# ---- own clocks and back-to-back decode steps (docs/model.md §10.7) ---------------------------


def _busy_scenario(model: str, dataset: str) -> Scenario:
    """A scenario that exercises every slow path of the decode loop: per-token gaps (TBT SLO),
    KV reservations lent out (predicted+pipelining), a shared prefix, and Gamma arrivals."""
    base = scenario(model=model, dataset=dataset, cv=2.0)
    wl = base.workload.model_copy(update={"prefix": SharedPrefix(tokens=64, share=0.5)})
    slo = base.slo.model_copy(update={"tbt_s": 0.09})
    return Scenario(
        cluster=base.cluster,
        model=base.model,
        workload=wl,
        slo=slo,
        samples=base.samples,
        kv=KVPolicy(policy="predicted+pipelining"),
    )


_CODELLAMA = ("codellama-34b", "sharegpt", 14.0)
_QWEN_LONG = ("qwen2-72b", "longbench", 3.0)
ENGINE_CASES = [
    # (deployment, model, dataset, rate): PP2 makes prefilled requests due after the instance
    # is free again (wake-ups); the qwen2-72b long-prompt runs preempt
    (Deployment("vllm", tp=2, pp=2, instances=8), *_CODELLAMA),
    (Deployment("sarathi", tp=2, pp=2, instances=8, chunk_tokens=1024), *_CODELLAMA),
    (Deployment("distserve", tp=2, pp=2, instances=4, decode_instances=4), *_CODELLAMA),
    (Deployment("mooncake", tp=2, pp=2, instances=3, decode_instances=5), *_CODELLAMA),
    (Deployment("ecoserve", tp=2, pp=2, instances=8, macro_size=4), *_CODELLAMA),
    (Deployment("vllm", tp=4, instances=8), *_QWEN_LONG),
    (Deployment("ecoserve", tp=4, instances=8, macro_size=8), *_QWEN_LONG),
]


@pytest.mark.parametrize(
    ("dep", "model", "dataset", "rate"),
    ENGINE_CASES,
    ids=[f"{d.strategy}-{m}" for d, m, _, _ in ENGINE_CASES],
)
def test_back_to_back_decode_steps_are_exact(
    dep: Deployment, model: str, dataset: str, rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Instance.decode_until` runs plain decode steps back to back with the batch's sums in
    locals; with it switched off every step goes through `complete` and `start` one at a time.
    Both give the same simulation to the bit (latencies, utilisation, preemptions, gaps)."""
    scen = _busy_scenario(model, dataset)
    fast = simulate(dep, scen, rate, requests=300, seed=3)
    monkeypatch.setattr(Instance, "decode_running", lambda self: False)
    slow = simulate(dep, _busy_scenario(model, dataset), rate, requests=300, seed=3)
    assert repr(fast) == repr(slow)


@pytest.mark.parametrize("routing", ["round-robin", "random"])
@pytest.mark.parametrize(
    "dep",
    [
        Deployment("vllm", tp=2, pp=2, instances=8),
        Deployment("sarathi", tp=2, pp=2, instances=8, chunk_tokens=512),
    ],
    ids=lambda d: d.strategy,
)
def test_instances_on_their_own_clocks_match_the_shared_heap(
    dep: Deployment, routing: Routing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NoDG instances run one after the other on their own clocks (`_Loop.run_apart`); routing
    every arrival through the shared event heap instead (`_Loop.run`, as EcoServe's and FuDG's
    prefill side still do) gives the same simulation to the bit."""
    scen = _busy_scenario("codellama-34b", "sharegpt")
    apart = simulate(dep, scen, 14.0, requests=300, seed=5, routing=routing)

    def shared_heap(loop: _Loop, stream: RequestStream, targets: list[int], win: slice) -> None:
        def route(rid: int, now: float) -> None:
            loop.instances[targets[rid]].enqueue(rid)
            loop.kick(targets[rid], now)

        loop.run(stream, route, win)

    monkeypatch.setattr(_Loop, "run_apart", shared_heap)
    together = simulate(
        dep,
        _busy_scenario("codellama-34b", "sharegpt"),
        14.0,
        requests=300,
        seed=5,
        routing=routing,
    )
    assert repr(apart) == repr(together)

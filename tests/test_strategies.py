"""Strategy models: hand-checked cases and invariants (DESIGN.md §1, §3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import catalog
from planner.deployment import Deployment
from planner.hardware import Cluster, Network
from planner.scenario import Scenario
from planner.strategies import goodput, predict
from planner.strategies.fudg import nic_request_rate_limit
from planner.strategies.padg import ACTIVE_PHASES, _active_overlap_s, window_prompts
from planner.workload import PRESETS, SLO, Arrivals

L20 = catalog.load_gpu("l20")


def scenario(
    model: str = "codellama-34b",
    dataset: str = "sharegpt",
    gbit: float = 10.0,
    slo: SLO | None = None,
    cv: float | None = None,
    samples: int = 256,
) -> Scenario:
    p = PRESETS[dataset]
    wl = p.workload
    if cv is not None:
        wl = wl.model_copy(update={"arrivals": Arrivals(process="gamma", cv=cv)})
    cl = Cluster(gpu=L20, nodes=4, gpus_per_node=8, network=Network(bandwidth_gbit=gbit))
    return Scenario(
        cluster=cl, model=catalog.load_model(model), workload=wl, slo=slo or p.slo, samples=samples
    )


PAPER = [
    Deployment("vllm", tp=4, instances=8),
    Deployment("sarathi", tp=4, instances=8, chunk_tokens=512),
    Deployment("distserve", tp=4, instances=4, decode_instances=4),
    Deployment("mooncake", tp=4, instances=4, decode_instances=4),
    Deployment("ecoserve", tp=4, instances=8, macro_size=8),
]


@pytest.mark.parametrize("dep", PAPER, ids=lambda d: d.strategy)
def test_every_strategy_has_positive_goodput_on_paper_setup(dep: Deployment) -> None:
    g = goodput(dep, scenario())
    assert g.rate > 0 and g.per_gpu == pytest.approx(g.rate / 32)
    p = g.prediction
    assert p is not None and p.attainment >= 0.9 - 1e-6
    assert p.ttft_s[50] <= p.ttft_s[90] <= p.ttft_s[99]
    assert p.tpot_s[50] <= p.tpot_s[90] <= p.tpot_s[99]
    # just above goodput the target is missed
    assert predict(dep, scenario(), g.rate * 1.05).attainment < 0.9


def test_mooncake_llama30b_sharegpt_is_network_bound() -> None:
    """10 GbE ≈ 1.19 GB/s; a ShareGPT prompt's KV is ≈ 0.55 GB: ≈ 2 req/s per NIC."""
    scen = scenario("llama-30b")
    kv = 343.76 * scen.model.kv_bytes_per_token
    assert kv / 1e9 == pytest.approx(0.55, abs=0.02)
    per_nic = nic_request_rate_limit(kv, scen.cluster.network.node_bandwidth_bytes_s)
    assert per_nic == pytest.approx(2.17, abs=0.1)
    dep = Deployment("mooncake", tp=4, instances=4, decode_instances=4)
    g = goodput(dep, scen)
    # two prefill nodes send KV: goodput below 2 NICs' worth, and the network is named
    assert g.rate < 2 * per_nic
    assert "network" in (g.binding + g.detail).lower()
    # with 100 GbE the same deployment is no longer network-bound and serves more
    assert goodput(dep, scenario("llama-30b", gbit=100)).rate > 1.5 * g.rate


def test_ecoserve_with_one_instance_per_macro_is_nodg() -> None:
    scen = scenario()
    eco = Deployment("ecoserve", tp=4, instances=8, macro_size=1)
    vllm = Deployment("vllm", tp=4, instances=8)
    for rate in (5.0, 15.0, 25.0):
        a, b = predict(eco, scen, rate), predict(vllm, scen, rate)
        assert a.attainment == pytest.approx(b.attainment)
        assert a.tpot_s == b.tpot_s and a.ttft_s == b.ttft_s


def test_distserve_needs_p_and_d_in_each_node() -> None:
    scen = scenario("qwen2-72b")
    g = goodput(Deployment("distserve", tp=8, instances=2, decode_instances=2), scen)
    assert g.rate == 0 and g.binding == "infeasible"
    assert "nodes that each hold both" in g.detail  # `deployment_problem`, as the simulator's


def test_infeasible_deployment_names_reason() -> None:
    g = goodput(Deployment("vllm", tp=1, instances=32), scenario("qwen2-72b"))
    assert g.rate == 0 and g.binding == "infeasible" and "GiB" in g.detail


SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRATEGY = st.sampled_from(PAPER)


@SETTINGS
@given(dep=STRATEGY, k=st.floats(1.0, 3.0))
def test_looser_slo_never_lowers_goodput(dep: Deployment, k: float) -> None:
    base = PRESETS["sharegpt"].slo
    tight = goodput(dep, scenario(slo=base)).rate
    loose = goodput(dep, scenario(slo=base.scaled(k))).rate
    assert loose >= tight * (1 - 0.01)


@SETTINGS
@given(
    strategy=st.sampled_from(["distserve", "mooncake"]),
    gbit=st.floats(5.0, 50.0),
    extra=st.floats(1.0, 8.0),
)
def test_more_bandwidth_never_lowers_fudg_goodput(strategy: str, gbit: float, extra: float) -> None:
    dep = Deployment(strategy, tp=4, instances=4, decode_instances=4)  # type: ignore[arg-type]
    low = goodput(dep, scenario("llama-30b", gbit=gbit)).rate
    high = goodput(dep, scenario("llama-30b", gbit=gbit * extra)).rate
    assert high >= low * (1 - 0.01)


@SETTINGS
@given(dep=STRATEGY, cv=st.floats(1.0, 2.5), rate_frac=st.floats(0.3, 1.0))
def test_burstier_arrivals_never_raise_attainment(
    dep: Deployment, cv: float, rate_frac: float
) -> None:
    calm = scenario()
    rate = goodput(dep, calm).rate * rate_frac
    a_calm = predict(dep, calm, rate, percentiles=False).attainment
    a_bursty = predict(dep, scenario(cv=cv), rate, percentiles=False).attainment
    assert a_bursty <= a_calm + 1e-9


@SETTINGS
@given(dep=STRATEGY, lo=st.floats(0.5, 10.0), hi_mult=st.floats(1.2, 3.0))
def test_attainment_falls_with_rate_near_capacity(
    dep: Deployment, lo: float, hi_mult: float
) -> None:
    scen = scenario()
    g = goodput(dep, scen).rate
    assert predict(dep, scen, g * hi_mult, percentiles=False).attainment < 0.9


def test_sarathi_hybrid_iteration_carries_what_waits() -> None:
    """Long prompts fill the chunk budget; short prompts at a trickle ride one per iteration;
    at high rates an iteration carries the tokens that arrived during it (fixed point)."""
    from planner.strategies.nodg import _hybrid_iterations

    long_im = scenario("codellama-34b", "longbench").instance(4, 1)
    _, room, t_full, chunk, t_c = _hybrid_iterations(long_im, 512, 5.0 * 5000)
    assert np.array_equal(chunk, room) and np.array_equal(t_c, t_full)
    short = scenario("codellama-34b", "alpaca").instance(4, 1)
    mean_in = float(short.inp.mean())
    b, room, t_full, chunk, t_c = _hybrid_iterations(short, 512, 1e-3)
    assert b.size == min(short.step_s.size, 513) and np.array_equal(room, 512 - b)
    live = room > 21  # where one mean prompt is less than the full chunk
    assert np.allclose(chunk, np.minimum(room, mean_in)) and np.all(t_c[live] < t_full[live])
    rate = 20.0 * mean_in  # 20 prompts/s: at large batches several prompts per iteration
    _, room, _, chunk, t_c = _hybrid_iterations(short, 4096, rate)
    assert np.allclose(chunk, np.minimum(room, np.maximum(mean_in, rate * t_c)), rtol=0.01)
    assert chunk[-1] > 2 * mean_in  # at the largest batch the engine holds
    # beyond the chunked-prefill capacity every iteration is full
    _, room, _, chunk, _ = _hybrid_iterations(short, 4096, 200.0 * mean_in)
    assert np.array_equal(chunk, room)


def test_ecoserve_attainment_does_not_recover_at_higher_rates() -> None:
    """Once a macro instance saturates it stays saturated as the rate grows (the window's
    batching does not jump when predicted prefill work outpaces real time), so goodput is the
    first crossing, not an island of stability above it."""
    scen = scenario("qwen2-72b", "alpaca")
    dep = Deployment("ecoserve", tp=4, pp=2, instances=4, macro_size=4, window_s=1.0)
    att = [predict(dep, scen, r, percentiles=False).attainment for r in np.arange(10, 40, 0.5)]
    first_fail = next(i for i, a in enumerate(att) if a < 0.5)
    assert max(att[first_fail:]) < 0.5
    assert all(b <= a + 0.01 for a, b in itertools.pairwise(att))


def test_window_prompts_by_hand() -> None:
    """Check 2 with dilution and double counting: B = 1 decode with M = 3 s saved, prompts of
    s = 1 s, nothing earned between them: j² + 3j − 2 ≤ 0, so j = (−3 + √17)/2."""
    assert window_prompts(1.0, 3.0, 1.0, 0.0) == pytest.approx(1.0 + (-3.0 + 17**0.5) / 2.0)
    # not even the first prompt fits: the share of one prefill the saved TPOT covers
    assert window_prompts(2.0, 0.5, 1.0, 0.0) == pytest.approx(0.5)
    # decodes earn more than two prefills between arrivals: the TTFT budget is the only limit
    assert window_prompts(2.0, 3.0, 1.0, 2.5) == np.inf
    # more saved TPOT never admits fewer prompts
    sizes = [window_prompts(4.0, m, 0.5, 0.1) for m in (0.5, 1.0, 2.0, 4.0, 8.0)]
    assert all(b >= a for a, b in itertools.pairwise(sizes))


def test_active_overlap_by_hand() -> None:
    """Activation D = 1 s every T = 4 s, k = 2 prompts per activation, a 5 s decode span
    admitted halfway through its activation: the rest of its own activation brings
    min(5, 0.5)·(2 − 1)/2 = 0.25 s, the next activation [3.5, 4.5) s lies wholly inside it."""
    overlap = _active_overlap_s(np.array([5.0, 0.2]), 1.0, 4.0, 2.0)
    mid = ACTIVE_PHASES // 2  # u = (mid + 0.5)/ACTIVE_PHASES, just past one half
    u = (mid + 0.5) / ACTIVE_PHASES
    assert overlap[0, mid] == pytest.approx((1.0 - u) * 0.5 + 1.0)
    assert overlap[1, mid] == pytest.approx(min(0.2, 1.0 - u) * 0.5)
    # overlaps never exceed the span, and one prompt per activation leaves nothing after it
    assert np.all(overlap <= np.array([[5.0], [0.2]]) + 1e-12)
    assert np.all(_active_overlap_s(np.array([0.5]), 1.0, 4.0, 1.0) == 0.0)


def test_ecoserve_is_slack_paced_before_it_saturates() -> None:
    """Long prompts: once the decodes' saved TPOT no longer covers one prefill, requests pend
    (TTFT grows) rather than the macro instance failing outright; it fails only where the
    decodes cannot earn the stalls back, the fluid limit t_d/(1 − f_p) = S_TPOT."""
    scen = scenario("qwen2-72b", "longbench")
    dep = Deployment("ecoserve", tp=4, pp=2, instances=4, macro_size=4, window_s=3.75)
    preds = [predict(dep, scen, r, percentiles=False) for r in np.arange(0.6, 1.8, 0.02)]
    paced = [p for p in preds if "pending" in p.detail]
    assert paced, "no slack-paced rate between 0.6 and 1.8 req/s"
    assert max(p.attainment for p in paced) > 0.3
    assert all(y.attainment <= x.attainment + 0.01 for x, y in itertools.pairwise(preds))
    fail = predict(dep, scen, 1.8, percentiles=False)
    assert fail.attainment == 0.0 and fail.binding == "TPOT slack"


def test_prefill_batching_grows_with_load_and_the_wait_before_it() -> None:
    """φ = E[T(K)]/(E[K]·T(1)) ≤ 1 falls as batches grow: with the rate, and with the decode
    step prompts gather during before a run of prefill batches; an idle prefill instance at a
    vanishing rate runs prompts alone (φ = 1, no extra latency)."""
    im = scenario("codellama-34b", "alpaca").instance(2, 1)
    alone = im.prefill_batching(1e-6, 0.0)
    assert alone[0] == pytest.approx(1.0) and alone[1] == pytest.approx(0.0, abs=1e-9)
    phis = [im.prefill_batching(r, 0.05)[0] for r in (1.0, 5.0, 20.0, 80.0)]
    assert all(b < a <= 1.0 for a, b in itertools.pairwise(phis))
    assert im.prefill_batching(10.0, 0.1)[0] < im.prefill_batching(10.0, 0.0)[0]


def test_latency_percentiles_are_computed_when_read() -> None:
    """A prediction's percentiles are computed lazily, each once, and equal the mixture
    quantile of the strategy's CDF."""
    from planner.strategies.predict import LazyQuantiles, _mixture_quantile

    calls: list[float] = []

    def cdf(t: float) -> np.ndarray:
        calls.append(t)
        return np.array([1.0 - np.exp(-t / 0.2), 1.0 - np.exp(-t / 0.4)])

    lazy = LazyQuantiles(cdf, 1e3, [50, 90, 99])
    assert not calls and list(lazy) == [50, 90, 99] and len(lazy) == 3
    p50 = lazy[50]
    n = len(calls)
    assert p50 == _mixture_quantile(cdf, 0.5, 1e3) and lazy[50] == p50
    assert len(calls) == 2 * n  # the reference computation only: the second read is memoised
    with pytest.raises(KeyError):
        lazy[95]

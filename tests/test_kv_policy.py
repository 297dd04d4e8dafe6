"""KV-cache allocation policies: analytical batch limits and the simulator's accounting."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from planner.deployment import Deployment
from planner.kv_policy import KV_POLICIES, KVPolicy, held_tokens, predicted_outputs
from planner.simulate import simulate
from planner.strategies import goodput, predict
from planner.workload import PRESETS

from .test_strategies import scenario


def test_max_policy_batch_is_free_kv_over_prompt_plus_max_output() -> None:
    scen = scenario("llama-30b").with_kv(KVPolicy(policy="max", max_output_tokens=1024))
    im = scen.instance(4, 1)
    w = np.maximum(im.out - 1.0, 1e-9)
    mean_prompt = float(np.sum(w * im.inp) / np.sum(w))  # decode-time weighted
    assert im.kv_batch_limit == pytest.approx(
        im.memory.kv_capacity_tokens / (mean_prompt + 1024), rel=1e-9
    )


def test_held_tokens_by_hand() -> None:
    inp, out, pred = np.array([100.0]), np.array([200.0]), np.array([100.0])
    paged = held_tokens(KVPolicy(policy="paged"), inp, out, 500, pred)
    assert paged[0] == 200.0  # prompt + half the output
    assert held_tokens(KVPolicy(policy="max"), inp, out, 500, pred)[0] == 600.0
    # under-predicted: reserves 100 for the first half, then grows: (100² + 200²)/400 = 125
    assert held_tokens(KVPolicy(policy="predicted"), inp, out, 500, pred)[0] == 225.0
    piped = held_tokens(KVPolicy(policy="predicted+pipelining"), inp, out, 500, pred)[0]
    assert piped == pytest.approx(225.0 - 0.5 * 25.0)


def test_predictions_are_mean_unbiased() -> None:
    out = np.full(20000, 300.0)
    u = (np.arange(out.size) + 0.5) / out.size
    assert predicted_outputs(out, 0.5, u).mean() == pytest.approx(300.0, rel=0.01)
    assert np.array_equal(predicted_outputs(out, 0.0, u), out)


@pytest.mark.parametrize("model", ["llama-30b", "codellama-34b", "qwen2-72b"])
def test_pipelining_never_admits_fewer_than_predicted(model: str) -> None:
    scen = scenario(model)
    limits = {
        p: scen.with_kv(KVPolicy(policy=p)).instance(8, 1).kv_batch_limit for p in KV_POLICIES
    }
    assert limits["predicted+pipelining"] >= limits["predicted"]
    assert limits["paged"] >= limits["predicted+pipelining"] >= limits["max"]


def test_policies_order_goodput_when_kv_binds() -> None:
    """LLaMA-30B (1.5 MiB KV per token) on ShareGPT with a 250 ms TPOT SLO is KV-bound under
    `max` (0.1% tolerance for the root finder)."""
    base = scenario("llama-30b")
    base = dataclasses.replace(base, slo=base.slo.model_copy(update={"tpot_s": 0.25}))
    dep = Deployment("vllm", tp=4, instances=8)
    g = {p: goodput(dep, base.with_kv(KVPolicy(policy=p))).per_gpu for p in KV_POLICIES}
    order = [g["paged"], g["predicted+pipelining"], g["predicted"], g["max"]]
    assert all(a >= b * (1 - 1e-3) for a, b in itertools.pairwise(order))
    assert g["max"] < 0.9 * g["paged"]


@pytest.mark.parametrize("policy", KV_POLICIES)
def test_simulator_kv_accounting_never_exceeds_capacity(policy: str) -> None:
    """Every policy runs to completion with all requests served, and reservations keep
    `max` free of preemptions."""
    scen = scenario("llama-30b").with_kv(KVPolicy(policy=policy))  # type: ignore[arg-type]
    dep = Deployment("vllm", tp=4, instances=8)
    r = simulate(dep, scen, 5.0, requests=800, seed=2)
    assert np.isfinite(r.mean_ttft_s) and np.isfinite(r.mean_tpot_s)
    if policy == "max":
        assert r.preemptions == 0


def test_simulated_pipelining_holds_at_least_the_predicted_batch() -> None:
    """Overloaded and KV-bound, the simulator's decode batch is larger when reservation tails
    are lent, and largest under paged allocation."""
    base = scenario("llama-30b")
    dep = Deployment("vllm", tp=4, instances=2)
    batch = {
        p: simulate(dep, base.with_kv(KVPolicy(policy=p)), 8.0, requests=600).mean_decode_batch
        for p in ("max", "predicted", "predicted+pipelining", "paged")
    }
    assert batch["max"] < batch["predicted"] <= batch["predicted+pipelining"] <= batch["paged"]


def test_kv_full_share_by_hand() -> None:
    """Compound-Poisson occupancy: B = 20 decoding requests on average, each holding h tokens
    with mean m and variance v, total ~ Normal(B·m, B·(v + m²)); P(total > K)."""
    im = scenario("llama-30b").instance(4, 1)
    b, m, v, cap = 20.0, im.kv_held_mean, im.kv_held_var, im.memory.kv_capacity_tokens
    z = (cap - b * m) / math.sqrt(b * (v + m * m))
    assert im.kv_overflow_probability(b) == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert im.kv_overflow_probability(0.0) == 0.0
    assert im.kv_overflow_probability(im.kv_batch_limit) == pytest.approx(0.5)


def test_paged_attainment_counts_requests_that_find_the_cache_full() -> None:
    """Under paged allocation the attainment is at most the latency attainment times
    (1 − P(cache full)); on a KV-bound deployment that factor is what binds (with a TPOT bound of
    120 ms, so that the TPOT tail of its hybrid iterations does not bind first)."""
    slo = PRESETS["sharegpt"].slo
    scen = scenario("llama-30b", slo=slo.model_copy(update={"tpot_s": 1.2 * slo.tpot_s}))
    dep = Deployment("sarathi", tp=2, instances=16, chunk_tokens=256)
    g = goodput(dep, scen)
    assert g.binding == "KV memory", g.detail
    p = predict(dep, scen, g.rate, percentiles=False)
    full = scen.instance(2, 1).kv_overflow_probability(p.decode_batch)
    assert 0.05 < full < 0.1
    assert p.attainment <= (1.0 - full) * min(p.ttft_attainment, p.tpot_attainment) + 1e-12
    assert min(p.ttft_attainment, p.tpot_attainment) > 0.95

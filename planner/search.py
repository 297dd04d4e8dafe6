"""Search the deployment space of a cluster for each strategy (DESIGN.md §4).

Candidates use the whole cluster (unless told otherwise) with instances inside one node:
NoDG — every TP×PP shape (× Sarathi chunk sizes); FuDG — prefill and decode pool shapes with
the P:D split near the balance of prefill and decode capacity (± one instance); PaDG — every
shape, macro-instance size dividing the instance count, and prefill-window budget. A cheap,
sound upper bound on each candidate's goodput (`upper_bound_rate`: batched prefill, decode and
KV-link capacity and the SLO conditions every request must meet) prunes candidates that cannot
enter the strategy's current top-k before the root finding runs; `search.exhaustive` turns the
pruning off.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar, cast

import numpy as np
from scipy import special

from planner.config import Objective, SearchSpec
from planner.deployment import (
    Deployment,
    StrategyName,
    instance_nodes,
    interleaved_groups,
    kv_node_shares,
    span_problem,
)
from planner.errors import PlannerError
from planner.parallel import fork_map
from planner.scenario import InstanceModel, Scenario, deployment_problem, unit_scenario
from planner.strategies import Goodput, goodput
from planner.strategies.fudg import pool_instances
from planner.strategies.nodg import _hybrid_iterations
from planner.strategies.predict import attach, detach


@dataclass(frozen=True)
class Ranked:
    """A candidate's goodput with what the objective needs."""

    goodput: Goodput
    gpus_needed: int | None  # for the target rate, in whole replication units
    cost_per_hour: float | None
    cost_per_million_tokens: float

    @property
    def deployment(self) -> Deployment:
        return self.goodput.deployment


@dataclass(frozen=True)
class PlanResult:
    scenario: Scenario
    objective: Objective
    per_strategy: dict[str, list[Ranked]]  # best first, up to `top`
    infeasible: dict[str, str]  # strategy -> why nothing worked
    frontier: list[Ranked]  # Pareto: goodput/GPU vs per-user tokens/s
    evaluated: int
    pruned: int

    @property
    def winner(self) -> Ranked | None:
        best = [r[0] for r in self.per_strategy.values() if r and r[0].goodput.feasible]
        return min(best, key=lambda r: _rank_key(r, self.objective)) if best else None


def _shape_problem(scen: Scenario, tp: int, pp: int) -> str | None:
    """Why a tp×pp instance cannot serve the model on this cluster, or None. An instance larger
    than a node spans whole nodes, pipeline stages split between them (docs/model.md §2.7)."""
    c = scen.cluster
    span = span_problem(tp, pp, c.gpus_per_node)
    if span is not None:
        return span
    if instance_nodes(tp, pp, c.gpus_per_node) > c.nodes:
        return f"tp={tp}×pp={pp} needs more than the cluster's {c.nodes} nodes"
    if scen.model.num_layers < pp:
        return f"pp={pp} exceeds the model's {scen.model.num_layers} layers"
    return scen.instance(tp, pp).memory.reason


def shapes(scen: Scenario, spec: SearchSpec) -> list[tuple[int, int]]:
    """Instance shapes (tp, pp) that hold the model and one full request (an instance larger
    than a node on whole nodes);
    a PlannerError naming each shape's problem when there is none."""
    out = [(tp, pp) for tp in spec.tp for pp in spec.pp if _shape_problem(scen, tp, pp) is None]
    if not out:
        reasons = [_shape_problem(scen, tp, pp) for tp in spec.tp for pp in spec.pp]
        why = "; ".join(dict.fromkeys(str(r) for r in reasons[:6]))
        raise PlannerError(f"search: no instance shape can serve {scen.model.name}: {why}")
    return out


def _decode_capacity(im: InstanceModel, tpot_s: float) -> float:
    """Requests/s one instance can decode: the largest batch whose step meets the TPOT SLO (and
    fits the KV cache), over the decode steps a request needs. Sets the FuDG P:D split only; it
    is not a bound (see `upper_bound_rate`)."""
    limit = int(min(im.kv_batch_limit, im.step_s.size - 1))
    ok = np.nonzero(im.step_s[1 : limit + 1] <= tpot_s)[0]
    b = int(ok[-1]) + 1 if ok.size else 1
    return b / (max(im.mean_steps, 1.0) * float(im.step_s[b]))


# ---- the pruning bound ----------------------------------------------------------------------
# Slack in the safe direction for float rounding (the bound may only come out larger).
_EPS = 1e-9


@dataclass(frozen=True)
class _Needs:
    """What attainment ≥ target demands of any rate, whatever the strategy."""

    k: int  # sampled requests that must meet each SLO: ⌈target·N⌉
    tpot_binding: bool  # a decode step over the TPOT SLO fails too many requests
    z: float  # Φ⁻¹(target): the share of time a paged KV cache is full must be ≤ 1 − target


T = TypeVar("T")


def _memo(im: InstanceModel, key: tuple[object, ...], compute: Callable[[], T]) -> T:
    """`compute()` once per instance model and key (every argument it depends on beyond the
    instance model is in the key)."""
    if key not in im.bound_memo:
        im.bound_memo[key] = compute()
    return cast(T, im.bound_memo[key])


def _needs(scen: Scenario, im: InstanceModel) -> _Needs:
    return _memo(im, ("needs", scen.slo.target), lambda: _needs_of(scen, im))


def _needs_of(scen: Scenario, im: InstanceModel) -> _Needs:
    """Attainment is the mean over the N sampled requests of a per-request probability, and it
    is at most the TTFT share, the TPOT share and 1 − P(KV full) (`base.predict`, joint or not):
    at least ⌈target·N⌉ requests must have a non-zero chance at each SLO. A request that decodes
    (output > 1) misses TPOT for sure when the decode step exceeds the SLO in every model, so
    that cap binds unless the requests that never decode alone reach the target."""
    target = scen.slo.target
    no_decode = float(np.mean(im.steps <= 0.0))
    return _Needs(
        k=max(1, math.ceil(target * im.inp.size - 1e-6)),
        tpot_binding=no_decode < target - _EPS,
        z=float(special.ndtri(target - _EPS)),
    )


def _kth(values: np.ndarray, k: int) -> float:
    """The k-th smallest value (k ≥ 1)."""
    return float(np.partition(values, k - 1)[k - 1])


def _prefill_floor(im: InstanceModel) -> tuple[float, float]:
    return _memo(im, ("prefill floor",), lambda: _prefill_floor_of(im))


def _prefill_floor_of(im: InstanceModel) -> tuple[float, float]:
    """(s_b, e_min): the least queue service a prompt can cost, s_b = E[s]·φ_min with
    φ_min = min_k T(k)/(k·T(1)) over the batch grid k = 1..K (K mean-length prompts fill the
    token budget: `InstanceModel.max_prefill_batch`), and the least extra latency its batch
    can add, e_min = min_k T(k) − T(1). `prefill_batching`'s φ is a ratio of weighted sums of
    T(k) and k·T(1) over k ∈ [1, K] (linear in between, where T(k)/k is monotone), so φ ≥ φ_min
    and the extra latency E_K[T(K)] − T(1) ≥ e_min, at every rate, gap and window cap."""
    grid = im._batch_grid_s
    k = np.arange(1, grid.size, dtype=float)
    phi_min = float(np.min(grid[1:] / (k * grid[1])))
    return im.service_mean_s * phi_min, float(np.min(grid[1:]) - grid[1])


def _batch_cap(im: InstanceModel, scen: Scenario, needs: _Needs) -> float:
    """Largest decode batch per instance a passing rate can have: the KV limit (every model's
    KV check), the step grid's end, and under paged KV the batch at which the cache is full
    1 − target of the time (`kv_overflow_probability`, increasing in the batch):
    B·h + z·√(B·E[h²]) ≤ capacity, a quadratic in √B."""
    cap = min(float(im.kv_batch_limit), float(im.step_s.size - 1))
    h = im.kv_held_mean
    if scen.kv.policy == "paged" and h > 0.0:
        c = math.sqrt(im.kv_held_var + h * h)
        kv = float(im.memory.kv_capacity_tokens)
        x = (-needs.z * c + math.sqrt(needs.z**2 * c * c + 4.0 * h * kv)) / (2.0 * h)
        cap = min(cap, x * x * (1.0 + _EPS))
    return cap


def _decode_rate(im: InstanceModel, batch_cap: float, step_cap: float) -> float:
    return _memo(
        im, ("decode rate", batch_cap, step_cap), lambda: _decode_rate_of(im, batch_cap, step_cap)
    )


def _decode_rate_of(im: InstanceModel, batch_cap: float, step_cap: float) -> float:
    """Requests/s one instance decodes at most: max B/(E[n]·t_d(B)) over the batches B ≤
    batch_cap whose step t_d(B) (`step_at`: linear between grid points) is ≤ step_cap; 0 when
    none is. B/t_d(B) is monotone on each grid segment, so the maximum over the allowed set is
    at a grid point, at batch_cap, or where t_d crosses step_cap. inf when nothing decodes."""
    if im.mean_steps <= 0.0:
        return math.inf
    s = im.step_s
    top = min(batch_cap, float(s.size - 1))
    if top <= 0.0:
        return 0.0
    j = np.arange(1, s.size - 1, dtype=float)  # segment [j, j + 1]
    lo, hi = s[1:-1], s[2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = j + (step_cap - lo) / (hi - lo)
    cross = cross[((lo - step_cap) * (hi - step_cap) < 0.0) & np.isfinite(cross)]
    pts = np.concatenate([np.arange(1.0, math.floor(top) + 1.0), [top], cross])
    pts = pts[(pts > 0.0) & (pts <= top)]
    t = np.interp(np.maximum(pts, 1.0), np.arange(s.size, dtype=float), s)
    ok = t <= step_cap * (1.0 + _EPS)
    return float(np.max(pts[ok] / t[ok])) / im.mean_steps if np.any(ok) else 0.0


def _colocated_rate(im: InstanceModel, scen: Scenario, *, ttft_stretch: bool) -> float:
    """Requests/s one vLLM (ttft_stretch) or EcoServe instance passes at most."""
    needs = _needs(scen, im)
    slo = scen.slo
    s_b, e_min = _prefill_floor(im)
    step_cap = slo.tpot_s if needs.tpot_binding else math.inf
    g = _decode_rate(im, _batch_cap(im, scen, needs), step_cap)
    if g <= 0.0:
        return 0.0
    # decodes run at 1/(1 − ρ) of their pace, ρ ≥ λ·s_b: λ·E[n]·t_d(B) = B(1 − ρ)
    rate = 1.0 / (1.0 / g + s_b)
    q = _kth(im.prefill_s + e_min, needs.k)  # the k-th shortest prompt's prefill
    if not ttft_stretch:
        return rate if q <= slo.ttft_s * (1.0 + _EPS) else 0.0
    # vLLM: a request meets TTFT only if (S − t_d/2)(1 − ρ) ≥ its prefill + extra
    room = slo.ttft_s - float(np.min(im.step_s[1:])) / 2.0
    if q > room * (1.0 + _EPS):
        return 0.0
    return min(rate, max(1.0 - q / room, 0.0) * (1.0 + _EPS) / s_b)


def _sarathi_rate(im: InstanceModel, scen: Scenario, budget: int) -> float:
    """Requests/s one Sarathi instance with token budget C passes at most."""
    needs = _needs(scen, im)
    slo = scen.slo
    # at rate 0 every hybrid iteration carries one prompt: (batches, room, t_full, one, t_one)
    _batch, room, t_full, _one, t_one = _hybrid_iterations(im, budget, 0.0)
    b = np.arange(1, room.size, dtype=float)
    room, t_one, t_full = room[1:], t_one[1:], t_full[1:]
    t_d = im.step_s[1 : room.size + 1]
    tau = np.minimum(t_d, t_one)  # least mean iteration time at batch b
    ok = (room > 0.0) & (b <= _batch_cap(im, scen, needs) * (1.0 + _EPS))
    if needs.tpot_binding:  # TPOT_i < t_d(b) fails unless the hybrid step is shorter
        ok &= tau <= slo.tpot_s * (1.0 + _EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_tok = np.where(room > 0.0, t_full / room, np.inf)  # s per prompt token, full chunks
        prompt = im.prefill_tokens
        ok &= _kth(prompt, needs.k) * t_tok + tau <= slo.ttft_s * (1.0 + _EPS)
        prefill = 1.0 / (t_tok * float(prompt.mean()))
        decode = b / (max(im.mean_steps, 0.0) * tau)
    if not np.any(ok):
        return 0.0
    return float(np.max(np.minimum(prefill, decode)[ok]))


@functools.lru_cache(maxsize=4096)
def _busiest_nic_share(layout: tuple[tuple[float, float], ...], n_p: int, n_d: int) -> float:
    """The busiest NIC direction's share of the KV traffic (per unit rate): a node's prefill
    share times the decode instances outside it, or its decode share times the prefill
    instances outside it."""
    return max(
        max(pi / n_p * (1.0 - di / n_d) for pi, di in layout),
        max(di / n_d * (1.0 - pi / n_p) for pi, di in layout),
    )


def _fudg_rate(dep: Deployment, scen: Scenario) -> float:
    """Requests/s a FuDG deployment passes at most."""
    p, d = pool_instances(dep, scen)
    c = scen.cluster
    slo = scen.slo
    needs = _needs(scen, d)
    s_b, e_min = _prefill_floor(p)
    kv = _memo(p, ("kv bytes",), lambda: scen.model.kv_bytes_per_sequence(p.prefill_tokens))
    kv_mean = _memo(p, ("kv mean",), lambda: float(kv.mean()))
    if dep.strategy == "distserve":
        inter = interleaved_groups(dep, c.gpus_per_node, c.nodes)
        if inter is None:
            return 0.0
        p_node = inter.prefill / inter.nodes
        bw, latency = c.link.p2p_bandwidth_bytes_s, c.link.latency_s
        pre = p.mean_prefill
        comm = float(pre.comm_s / pre.total_s) * s_b * p_node
        # per prefill instance: x·p_node·E[kv] < bw·max(1 − comm·x, 0.05)
        a = p_node * kv_mean
        link = dep.instances * max(bw / (a + bw * comm), 0.05 * bw / a)
    else:
        bw, latency = c.network.node_bandwidth_bytes_s, c.network.latency_s
        layout = kv_node_shares(dep, c.gpus_per_node, c.nodes)
        per_rate = _busiest_nic_share(layout, dep.instances, dep.decode_instances)
        link = bw / (per_rate * kv_mean) if per_rate > 0.0 else math.inf
    # TTFT of the k-th fastest request, less the half decode step it joins
    q = _memo(
        p,
        ("ttft k", bw, latency, needs.k),
        lambda: _kth(p.prefill_s + e_min + kv / bw + latency, needs.k),
    )
    if q > slo.ttft_s * (1.0 + _EPS):
        return 0.0
    step_cap = 2.0 * (slo.ttft_s - q)
    if needs.tpot_binding:
        step_cap = min(step_cap, slo.tpot_s)
    decode = dep.decode_instances * _decode_rate(d, _batch_cap(d, scen, needs), step_cap)
    return min(dep.instances / s_b, link * (1.0 + _EPS), decode)


def upper_bound_rate(dep: Deployment, scen: Scenario) -> float:
    """A rate no passing rate of `dep` exceeds: goodput(dep).rate ≤ this, for every strategy.

    Goodput is a rate at which the strategy model is stable and attainment ≥ target > 0, so
    every condition below is necessary (each model returns `Unstable`, or attainment under the
    target, when it fails). Per instance, λ_i = λ/instances (FuDG: λ/n_p, λ/n_d); E[n] the mean
    decode steps, t_d(B) the decode step at batch B, S_TTFT / S_TPOT the SLOs.

    Common floors. (1) Batched prefill: a prompt's queue service is E[s]·φ with
    φ ≥ φ_min = min_k T(k)/(k·T(1)) over batches up to the token budget, so ρ ≥ λ_i·s_b with
    s_b = E[s]·φ_min (`_prefill_floor`). (2) Decode batch: B ≤ B_max, the KV limit, and under
    paged KV the batch whose cache is full 1 − target of the time (attainment is scaled by
    1 − P(full)). (3) TPOT: a request that decodes misses the SLO for sure once t_d(B) > S_TPOT
    (vLLM and EcoServe: the interruption work is ≥ 0; FuDG: TPOT = t_d; Sarathi: below both
    the decode step and the hybrid iteration), so t_d(B) ≤ S_TPOT when the requests that never
    decode cannot reach the target alone — never a tail-based cap, which would not hold at
    P50. (4) TTFT: the k-th fastest request (k = ⌈target·N⌉ of the sample) must be able to
    meet it.

    vLLM: B = λ_i·E[n]·t_d(B)/(1 − ρ) (Little's law, `solve_decode_batch` is exact on the
    interpolated grid) and ρ ≥ λ_i·s_b give λ_i ≤ 1/(1/g + s_b), g = max B/(E[n]·t_d(B)) over
    B ≤ B_max with t_d(B) ≤ S_TPOT (`_decode_rate`); TTFT_i ≥ t_d/2 + (p_i + e)/(1 − ρ) for
    every request (the queue wait only adds), so (S_TTFT − t_min/2)(1 − ρ) ≥ q_k, the k-th
    smallest prefill p_i + e_min: λ_i ≤ (1 − q_k/(S_TTFT − t_min/2))/s_b.
    EcoServe: the same decode and prefill-share conditions per instance (f_p = λ_i·E[s]·φ < 1,
    B from Little's law with slowdown 1/(1 − f_p), KV check), so λ_i ≤ 1/(1/g + s_b), and 0 when
    q_k > S_TTFT (every TTFT branch needs p_i + e ≤ S_TTFT). Macro size 1 is vLLM.
    Sarathi (budget C): at the model's batch index b, ρ = λ_i·E[I]·t_full(b)/(C − b) < 1 and
    λ_i·E[n]·TPOT_mean(b) ≤ b with TPOT_mean a harmonic mix of t_d(b) and the typical hybrid
    iteration, ≥ τ(b) = min(t_d(b), t_one(b)) (a hybrid iteration takes no less with more of
    its C − b prompt tokens); b ≤ B_max, τ(b) ≤ S_TPOT, and TTFT_i ≥ I_i·t_full/(C − b) + τ.
    So λ_i ≤ max over allowed b of min((C − b)/(E[I]·t_full(b)), b/(E[n]·τ(b))).
    FuDG: λ/n_p < 1/s_b; the KV link queue below 1 (MoonCake: λ·c·E[kv] < bw, c the busiest
    NIC direction's share; DistServe: per prefill instance x·p·E[kv] < bw·max(1 − a·x·s_b·p,
    0.05), the TP traffic's share of the intra-node path, 0 without an interleaved placement);
    λ/n_d ≤ g_d with t_d ≤ min(S_TPOT, 2(S_TTFT − q_k)), q_k the k-th smallest prefill +
    e_min + KV transfer + link latency (TTFT_i ≥ that + t_d/2).

    NoDG and PaDG return instances × the per-instance rate. The cost is a few vector operations
    on the step and batch grids per candidate (Sarathi: the hybrid tables the model caches).

    Replicated (docs/model.md §8.5): the prediction at λ is the unit's at λ/r on its scenario
    (`unit_scenario`), so r × the unit's bound there bounds it.
    """
    if dep.replicas > 1:
        return dep.replicas * upper_bound_rate(dep.unit, unit_scenario(dep, scen))
    if dep.family == "FuDG":
        return _fudg_rate(dep, scen)
    im = scen.instance(dep.tp, dep.pp)
    if dep.strategy == "sarathi":
        return dep.instances * _sarathi_rate(im, scen, dep.chunk_tokens)
    stretch = dep.strategy == "vllm" or dep.macro_size == 1
    return dep.instances * _colocated_rate(im, scen, ttft_stretch=stretch)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(scen: Scenario, spec: SearchSpec) -> Iterator[Deployment]:
    """Every strategy's deployments of the whole cluster, and of units on fewer nodes replicated
    to fill it (docs/model.md §8.5). FuDG: units on every divisor k of the node count, each with
    its own P:D splits. NoDG and PaDG: the deployments of the whole cluster only — with
    round-robin routing over units and inside them, r units of q queues predict exactly what
    one unit of r·q queues does (every queue sees c²/(r·q), `queueing.routed_ca2`), so their
    replicated forms add nothing."""
    c = scen.cluster
    sh = shapes(scen, spec)
    for strategy in spec.strategies:
        if strategy in ("distserve", "mooncake"):
            for k in _divisors(c.nodes):
                unit_total = k * c.gpus_per_node
                for d in _fudg_candidates(strategy, scen, sh, unit_total):
                    yield d if k == c.nodes else replace(d, replicas=c.nodes // k)
            continue
        yield from _colocated_candidates(strategy, scen, spec, sh, c.total_gpus)


# the largest macro instance the search tries by default: EcoServe's mitosis splits a macro
# instance past N_u = 11 instances (arXiv 2504.18154, §5; its goodput flattens near 11), so 16,
# the first power of two beyond it, bounds what EcoServe itself would run (docs/model.md §8.1)
MAX_MACRO_SIZE = 16


def _colocated_candidates(
    strategy: StrategyName,
    scen: Scenario,
    spec: SearchSpec,
    sh: list[tuple[int, int]],
    total: int,
) -> Iterator[Deployment]:
    """NoDG and PaDG deployments of `total` GPUs: every shape (× Sarathi chunk sizes; EcoServe:
    × macro sizes dividing the instance count × window budgets). An instance larger than a node
    takes whole nodes, so it counts ⌊nodes/span⌋ instances."""
    c = scen.cluster
    slo = scen.slo
    for tp, pp in sh:
        size = tp * pp
        span = instance_nodes(tp, pp, c.gpus_per_node)
        n = (total // c.gpus_per_node) // span if span > 1 else total // size
        if n < 1:
            continue
        if strategy == "vllm":
            yield Deployment("vllm", tp=tp, pp=pp, instances=n)
        elif strategy == "sarathi":
            for ch in spec.chunk_tokens:
                yield Deployment("sarathi", tp=tp, pp=pp, instances=n, chunk_tokens=ch)
        elif strategy == "ecoserve":
            sizes = spec.macro_sizes or [d for d in _divisors(n) if 2 <= d <= MAX_MACRO_SIZE]
            for m in sizes:
                if n % m:
                    continue
                for f in spec.window_fractions:
                    yield Deployment(
                        "ecoserve",
                        tp=tp,
                        pp=pp,
                        instances=n,
                        macro_size=m,
                        window_s=slo.ttft_s * f,
                    )


def _fudg_candidates(
    strategy: StrategyName, scen: Scenario, sh: list[tuple[int, int]], total: int
) -> Iterator[Deployment]:
    """P and D pool shapes; P:D splits around the capacity balance n_p·p_cap ≈ n_d·d_cap with
    n_p·sp + n_d·sd = total GPUs. The prefill capacity of an instance lies between unbatched
    (1/E[s]) and fully batched (1/s_b, `_prefill_floor`) service, so every split from the
    balance at the one to the balance at the other is tried, ± one prefill instance; the
    pruning bound discards the hopeless ones cheaply. An instance larger than a node counts
    its whole nodes' GPUs."""
    gpn = scen.cluster.gpus_per_node
    for tp_p, pp_p in sh:
        p_im = scen.instance(tp_p, pp_p)
        caps = (1.0 / p_im.service_mean_s, 1.0 / _prefill_floor(p_im)[0])
        for tp_d, pp_d in sh:
            d_cap = _decode_capacity(scen.instance(tp_d, pp_d), scen.slo.tpot_s)
            sp, sd = (
                tp * pp if tp * pp <= gpn else instance_nodes(tp, pp, gpn) * gpn
                for tp, pp in ((tp_p, pp_p), (tp_d, pp_d))
            )
            if strategy == "distserve":  # stage slices share nodes (`interleaved_groups`)
                sp, sd = tp_p * pp_p, tp_d * pp_d
            stars = [total / (sp + sd * p_cap / d_cap) for p_cap in caps]
            lo = max(1, math.floor(min(stars)) - 1)
            hi = math.ceil(max(stars)) + 1
            for n_p in range(lo, hi + 1):
                n_d = (total - n_p * sp) // sd
                if n_d < 1:
                    continue
                yield Deployment(
                    strategy,
                    tp=tp_p,
                    pp=pp_p,
                    instances=n_p,
                    decode_instances=n_d,
                    decode_tp=tp_d,
                    decode_pp=pp_d,
                )


def replication_unit_gpus(dep: Deployment) -> int:
    """Smallest group of GPUs that can be replicated with the same per-GPU goodput."""
    dep = dep.unit
    if dep.family == "FuDG":
        g = math.gcd(dep.instances, dep.decode_instances)
        return dep.gpus // g
    if dep.strategy == "ecoserve":
        return dep.macro_size * dep.tp * dep.pp
    return dep.tp * dep.pp


def rank(g: Goodput, scen: Scenario, objective: Objective) -> Ranked:
    price = scen.cluster.gpu_hour_price
    mean_out = float(scen.sample()[1].mean())
    per_hour_all = g.deployment.gpus * price
    tokens_per_hour = g.rate * mean_out * 3600.0
    per_m = per_hour_all / tokens_per_hour * 1e6 if tokens_per_hour > 0 else math.inf
    needed: int | None = None
    cost: float | None = None
    if objective.target_rate is not None and g.per_gpu > 0:
        unit = replication_unit_gpus(g.deployment)
        needed = math.ceil(objective.target_rate / g.per_gpu / unit - 1e-9) * unit
        cost = needed * price
    return Ranked(g, needed, cost, per_m)


Key = tuple[float, float]


def _rank_key(r: Ranked, objective: Objective) -> Key:
    if objective.kind != "max_goodput_per_gpu" and r.gpus_needed is not None:
        primary = r.gpus_needed if objective.kind == "min_gpus" else (r.cost_per_hour or 0.0)
        return (primary, -r.goodput.per_gpu)
    return (-r.goodput.per_gpu, 0.0)


def pareto(items: list[Ranked]) -> list[Ranked]:
    """Candidates not dominated in (goodput/GPU, per-user tokens/s at that goodput)."""

    def user_tps(r: Ranked) -> float:
        p = r.goodput.prediction
        t = p.tpot_s.get(50, math.inf) if p else math.inf
        return 1.0 / t if t > 0 else 0.0

    pts = sorted(
        (r for r in items if r.goodput.feasible), key=lambda r: (-r.goodput.per_gpu, -user_tps(r))
    )
    front: list[Ranked] = []
    best_tps = -1.0
    for r in pts:
        if user_tps(r) > best_tps:
            front.append(r)
            best_tps = user_tps(r)
    return front


def _key_floor(d: Deployment, bound_per_gpu: float, scen: Scenario, objective: Objective) -> Key:
    """The best `_rank_key` a candidate whose goodput/GPU is at most `bound_per_gpu` can have:
    fewer GPUs per goodput only for more goodput/GPU, so needed GPUs (and cost) are at least
    those at the bound, and goodput/GPU at most the bound (lexicographically ≤ its true key)."""
    if objective.kind != "max_goodput_per_gpu" and objective.target_rate is not None:
        if bound_per_gpu <= 0.0:
            return (math.inf, 0.0)
        unit = replication_unit_gpus(d)
        needed = math.ceil(objective.target_rate / bound_per_gpu / unit - 1e-9) * unit
        primary = needed if objective.kind == "min_gpus" else needed * scen.cluster.gpu_hour_price
        return (primary, -bound_per_gpu)
    return (-bound_per_gpu, 0.0)


# `goodput` brackets the rate by doubling from this floor (req/s per GPU)
_FLOOR_PER_GPU = 1e-3


def _first_rate(bound: float, gpus: int) -> float | None:
    """Where the goodput root finder starts: the largest floor·2^j at or below the bound (None
    for the floor itself). Doubling from the floor tries exactly these rates, and powers of two
    scale floats exactly, so when attainment falls with the rate (the root finder's premise)
    the bracket, and hence the goodput, is the same bit for bit, found in about two steps
    instead of log2(goodput/floor)."""
    floor = _FLOOR_PER_GPU * gpus
    if not bound > 2.0 * floor or not math.isfinite(bound):
        return None
    return floor * 2.0 ** math.floor(math.log2(bound / floor))


@dataclass
class _Visit:
    """The state of a visit of the sorted candidates (`_visit`)."""

    per: dict[str, list[Ranked]]
    why: dict[str, str]
    everything: list[Ranked]
    evaluated: int = 0
    pruned: int = 0


def _visit(
    cands: list[Deployment],
    bounds: dict[Deployment, float],
    floors: dict[Deployment, Key],
    scen: Scenario,
    spec: SearchSpec,
    objective: Objective,
    evaluate: Callable[[Deployment], Goodput],
    progress: Callable[[int, int], None] | None = None,
) -> _Visit:
    """Visit the candidates in order: prune (see `plan`) or evaluate and rank each. Pruning a
    candidate depends only on what its own strategy has kept, so a strategy's decisions are the
    same whether its candidates are visited alone or among the others."""
    v = _Visit({s: [] for s in spec.strategies}, {}, [])
    for i, d in enumerate(cands):
        if progress:
            progress(i + 1, len(cands))
        kept = v.per[d.strategy]
        beaten = len(kept) >= spec.top and floors[d] >= _rank_key(kept[-1], objective)
        # a zero bound means no goodput: evaluate it only to say why a strategy has no plan
        hopeless = bounds[d] <= 0.0 and (bool(kept) or d.strategy in v.why)
        if not spec.exhaustive and (beaten or hopeless):
            v.pruned += 1
            continue
        g = evaluate(d)
        v.evaluated += 1
        r = rank(g, scen, objective)
        if not g.feasible:
            v.why.setdefault(d.strategy, f"{d.label()}: {g.binding}: {g.detail}")
            continue
        v.everything.append(r)
        kept.append(r)
        kept.sort(key=lambda x: _rank_key(x, objective))
        del kept[spec.top :]
    return v


# what a strategy's visit found: each evaluated candidate's goodput (a worker's come back
# `detach`ed, the planner's own keep their lazy percentiles)
_Found = dict[Deployment, Goodput]


def _solve(d: Deployment, bounds: dict[Deployment, float], scen: Scenario) -> Goodput:
    """A candidate's goodput, the root finder started under its bound (`_first_rate`)."""
    return goodput(d, scen, guess=_first_rate(bounds[d] * d.gpus, d.gpus))


def _bounds(
    cands: list[Deployment], scen: Scenario, objective: Objective
) -> tuple[dict[Deployment, float], dict[Deployment, Key]]:
    """Each candidate's `upper_bound_rate` per GPU (0 when it cannot run) and the best rank key
    it could reach (`_key_floor`)."""
    bounds: dict[Deployment, float] = {}
    for d in cands:
        ok = deployment_problem(d, scen) is None
        bounds[d] = upper_bound_rate(d, scen) / d.gpus if ok else 0.0
    return bounds, {d: _key_floor(d, b, scen, objective) for d, b in bounds.items()}


_Search = tuple[_Found, dict[Deployment, float], dict[Deployment, Key]]


def _strategy_search(
    cands: list[Deployment], scen: Scenario, spec: SearchSpec, objective: Objective
) -> _Search:
    """One strategy's part of the parallel search: its candidates' bounds and key floors, then
    its visit in their order — the order the planner's own visit of all candidates gives them
    (a stable sort on the same keys) — with the goodput of each candidate it evaluates and the
    median TPOT the Pareto frontier reads computed here, in parallel with the other visits."""
    bounds, floors = _bounds(cands, scen, objective)
    found: _Found = {}

    def evaluate(d: Deployment) -> Goodput:
        g = found[d] = _solve(d, bounds, scen)
        if g.feasible and g.prediction is not None:
            g.prediction.tpot_s.get(50)
        return g

    ordered = sorted(cands, key=lambda d: floors[d])
    _visit(ordered, bounds, floors, scen, spec, objective, evaluate)
    return found, bounds, floors


def _portable(part: _Search) -> _Search:
    """A worker's goodputs made picklable (`detach`): the percentiles it did not compute are
    computed in the planner's process if they are read."""
    found, bounds, floors = part
    return {d: detach(g) for d, g in found.items()}, bounds, floors


def plan(
    scen: Scenario,
    spec: SearchSpec,
    objective: Objective,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = 1,
) -> PlanResult:
    """Evaluate every candidate and rank them per strategy. Unless `spec.exhaustive`, a candidate
    is skipped when even its `upper_bound_rate` cannot rank it above the strategy's current
    top-k (`_key_floor`), or when its bound is 0 and the strategy already has a plan or a
    reason for having none. The bound is sound, so the top-k per strategy and the reasons are
    those of the exhaustive search (the Pareto frontier only sees evaluated candidates).

    With `jobs` > 1 (None: the CPU count) the strategies' visits are shared between this
    process and forked workers (`parallel.fork_map`; pruning looks only at a candidate's own
    strategy, so each visit decides as the sequential one would); this process then visits
    all candidates in order and takes each evaluated goodput as found, here or in a worker (a
    worker's come `detach`ed: percentiles the worker did not compute are computed here, from
    the same prediction made again, if read), so the result is the same to the bit for any
    `jobs` (docs/model.md §8.2)."""
    cands = list(candidates(scen, spec))
    found: _Found = {}
    streams = [[d for d in cands if d.strategy == s] for s in spec.strategies]
    streams = [c for c in streams if c]
    if len(streams) > 1 and jobs != 1:
        # each process bounds and visits whole strategies (`_strategy_search`): EcoServe's
        # visit, the longest (the most evaluations, each the costliest), first, then the
        # others by candidate count, so that they fill the other processes around it
        streams.sort(key=lambda c: (c[0].strategy != "ecoserve", -len(c)))
        thunks = [functools.partial(_strategy_search, c, scen, spec, objective) for c in streams]
        bounds: dict[Deployment, float] = {}
        floors: dict[Deployment, Key] = {}
        for part, b, f in fork_map(thunks, jobs, portable=_portable):
            found.update(part)
            bounds.update(b)
            floors.update(f)
    else:
        bounds, floors = _bounds(cands, scen, objective)
    # visit the most promising first so that pruning bites early (the same order when
    # exhaustive, so that ties resolve alike)
    cands.sort(key=lambda d: floors[d])

    def evaluate(d: Deployment) -> Goodput:
        if d not in found:
            return _solve(d, bounds, scen)
        return attach(found[d], scen)

    v = _visit(cands, bounds, floors, scen, spec, objective, evaluate, progress)
    per, why = v.per, v.why
    for s in spec.strategies:
        if per[s]:
            why.pop(s, None)
        elif s not in why:
            why[s] = "no deployment of this strategy fits the cluster"
    return PlanResult(
        scenario=scen,
        objective=objective,
        per_strategy=per,
        infeasible=why,
        frontier=pareto(v.everything),
        evaluated=v.evaluated,
        pruned=v.pruned,
    )


__all__ = ["PlanResult", "Ranked", "candidates", "plan", "upper_bound_rate"]

"""A scenario (cluster, model, workload, SLO, KV policy, engine) and the rate-independent facts
about each instance shape under it (docs/model.md §7.1): the input of every strategy model and
of the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from planner.deployment import (
    Deployment,
    cross_node_boundaries,
    interleaved_groups,
    nodes_needed,
    span_problem,
)
from planner.engine import DEFAULT_ENGINE, ENGINES, EngineProfile
from planner.hardware import Cluster, Network
from planner.kv_policy import KVPolicy, held_tokens, predicted_outputs
from planner.model import ModelSpec
from planner.perf import InstancePerf, MemoryPlan, PhaseTime
from planner.perf.memory import plan_engine_memory
from planner.queueing import routed_ca2
from planner.rootfind import brent_root

if TYPE_CHECKING:
    from planner.perf.iteration import IterationTimer

from planner.workload import (
    SLO,
    Arrivals,
    Workload,
    cached_prefix_tokens,
    request_sample,
    stratified_prefix_hits,
)


def _read_only(a: np.ndarray) -> np.ndarray:
    """`a`, locked against writes: a cached array handed to every caller must not change."""
    a.flags.writeable = False
    return a


@dataclass
class InstanceModel:
    """Rate-independent facts about one instance type under a scenario, computed once."""

    perf: InstancePerf
    memory: MemoryPlan
    inp: np.ndarray  # sampled input lengths (tokens)
    out: np.ndarray  # sampled output lengths (tokens)
    prefill_s: np.ndarray  # prefill latency of each sampled prompt (batch of one)
    service_s: np.ndarray  # queue service time: latency / pp (pipelined prefills)
    decode_context: float  # time-averaged context of a decoding request
    kv_batch_limit: float  # decode batch the instance holds: KV cache or max_num_seqs
    step_s: np.ndarray  # decode step time at batch 0..len−1 (entry 0 = entry 1)
    max_batched_tokens: int = 8192  # prompt tokens per prefill iteration (engine budget)
    seq_limited: bool = False  # the engine's max_num_seqs, not the KV cache, caps the batch
    kv_held_mean: float = 0.0  # KV tokens a decoding request holds on average (policy)
    kv_held_var: float = 0.0
    # prompt tokens each sampled request finds in the prefix cache (None: none do)
    cached: np.ndarray | None = field(default=None, repr=False)
    prefix_tokens: float = 0.0  # KV tokens of the shared prefix, held once per instance
    prefix_share: float = 0.0  # share of requests that reuse it
    # rate-independent Sarathi tables per token budget (strategies.nodg._hybrid_iterations):
    # the end points (one prompt, the full room) per decode batch, and the step-time grid
    # between them, built when a model first needs it
    hybrid_tables: dict[int, tuple[np.ndarray, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    hybrid_grids: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # the search's bound helpers' results by helper and arguments (`search._memo`): thousands of
    # candidates share a few instance shapes
    bound_memo: dict[tuple[object, ...], object] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def batch_limit_reason(self) -> str:
        """What caps the decode batch, for messages."""
        if self.seq_limited:
            return f"the engine's max_num_seqs ({self.kv_batch_limit:.0f} sequences)"
        return f"the KV cache ({self.memory.kv_capacity_tokens:,} tokens)"

    def kv_overflow_probability(self, batch: float) -> float:
        """P(the KV held by the decoding requests exceeds the cache) when `batch` of them decode
        on average: their number is Poisson (an M/G/∞ population) and their holdings h are
        independent, so the total has mean B·E[h] and variance B·E[h²] (compound Poisson),
        taken as normal. Under `paged` this is the share of time the cache is full, when new
        requests wait for memory and running ones are preempted."""
        if batch <= 0:
            return 0.0
        mu = batch * self.kv_held_mean
        sd = float(np.sqrt(batch * (self.kv_held_var + self.kv_held_mean**2))) or 1e-9
        room = self.memory.kv_capacity_tokens - self.prefix_held_tokens(batch)
        return float(0.5 * special.erfc((room - mu) / (sd * np.sqrt(2))))

    def prefix_held_tokens(self, batch: float) -> float:
        """KV tokens the shared prefix takes while `batch` requests decode
        (`shared_prefix_held_tokens`)."""
        return shared_prefix_held_tokens(self.prefix_tokens, self.prefix_share, batch)

    @cached_property
    def prefill_tokens(self) -> np.ndarray:
        """Prompt tokens each sampled request computes: input − cached prefix (read-only)."""
        return _read_only(self.inp if self.cached is None else self.inp - self.cached)

    @cached_property
    def chunk_prefix_tokens(self) -> float:
        """Token-weighted mean number of tokens before a computed prompt token:
        E[n·c + n²/2]/E[n] with n the computed and c the cached tokens of a prompt (E[I²]/2E[I]
        without a cache); the context a prompt chunk's attention re-reads (docs/model.md §7.3)."""
        n = self.prefill_tokens.astype(float)
        c = 0.0 if self.cached is None else self.cached.astype(float)
        return float((n * c + n * n / 2.0).mean()) / max(float(n.mean()), 1e-12)

    @cached_property
    def mean_prefill(self) -> PhaseTime:
        """The prefill of one mean prompt: mean computed tokens after the mean cached ones."""
        return self._prefill_of_mean(1.0)

    def _prefill_of_mean(self, batch: np.ndarray | float) -> PhaseTime:
        mean_new = max(float(self.prefill_tokens.mean()), 1.0)
        mean_cached = 0.0 if self.cached is None else float(self.cached.mean())
        return self.perf.prefill(mean_new, batch, mean_cached)

    @cached_property
    def _batch_grid_s(self) -> np.ndarray:
        """Time of a prefill batch of k mean-length prompts, k = 0..K (K: the token budget, which
        counts computed tokens only: cached ones are not scheduled)."""
        mean_in = max(float(self.prefill_tokens.mean()), 1.0)
        top = max(int(self.max_batched_tokens // mean_in), 1)
        k = np.arange(top + 1, dtype=float)
        grid = self._prefill_of_mean(np.maximum(k, 1.0)).total_s / self.perf.pp
        return np.asarray(grid, dtype=float)

    @cached_property
    def _batch_grid_list(self) -> list[float]:
        """`_batch_grid_s` as Python floats: `prefill_batching` interpolates it in a scalar loop,
        where list indexing is several times cheaper than `np.interp` per point."""
        return [float(x) for x in self._batch_grid_s]

    @property
    def max_prefill_batch(self) -> float:
        """Mean-length prompts that fill the per-iteration token budget."""
        return float(self._batch_grid_s.size - 1)

    def prefill_batching(
        self, rate: float, gap_s: float = 0.0, max_batch: float = np.inf
    ) -> tuple[float, float]:
        """Prefill batching at `rate` prompts/s into one prefill queue (docs/model.md §6.5):
        (service factor φ = E[T(K)]/(E[K]·T(1)), extra latency E_K[T(K)] − T(1) a prompt waits
        for the others of its batch, E_K size-biased), T(k) the time of a batch of k mean-length
        prompts (its occupancy under PP).

        Waiting prompts run as one batch (up to the token budget) at the next iteration
        boundary. A run of back-to-back prefill batches starts with the prompts that arrived
        during the iteration before it — a decode step of `gap_s` (none on an idle FuDG prefill
        instance, whose first prompt starts alone): k_0 = λg/(1 − e^{−λg}), Poisson given at
        least one. Batch i + 1 holds those that arrived during batch i: it exists with
        probability q_i = 1 − e^{−λT(k_i)} and then holds k_{i+1} = λT(k_i)/q_i. The moments
        are sums over the run weighted by Π q_j, with a geometric tail once k_i settles.
        Batches hold at most `max_batch` prompts (e.g. the prompts one PaDG window admits)."""
        grid = self._batch_grid_list
        last = len(grid) - 1
        top = max(min(float(last), max_batch), 1.0)
        t_1 = grid[1]
        lam_g = rate * gap_s
        k = lam_g / -math.expm1(-lam_g) if lam_g > 1e-12 else 1.0
        weight, prompts, busy, biased = 1.0, 0.0, 0.0, 0.0
        for _ in range(200):
            k = min(max(k, 1.0), top)
            i = int(k)  # linear interpolation on the unit-spaced grid (as np.interp does it)
            t_k = grid[last] if i >= last else (grid[i + 1] - grid[i]) * (k - i) + grid[i]
            prompts += weight * k
            busy += weight * t_k
            biased += weight * k * t_k
            q = -math.expm1(-rate * t_k)
            nxt = min(rate * t_k / q, top) if q > 0 else 1.0
            weight *= q
            if weight < 1e-9:
                break
            if abs(nxt - k) < 1e-9 * k and q < 1.0:  # settled: the rest is a geometric series
                tail = weight / (1.0 - q)
                prompts += tail * k
                busy, biased = busy + tail * t_k, biased + tail * k * t_k
                break
            k = nxt
        return busy / (prompts * t_1), biased / prompts - t_1

    def batched_service(self, rate: float, gap_s: float = 0.0) -> tuple[float, float, float]:
        """A prompt's prefill-queue service with waiting prompts batched at `rate` prompts/s:
        (mean φ·E[s], second moment φ²·E[s²], extra latency), φ from `prefill_batching`."""
        phi, extra_s = self.prefill_batching(rate, gap_s)
        return self.service_mean_s * phi, self.service_m2_s2 * phi**2, extra_s

    @cached_property
    def timer(self) -> IterationTimer:
        """Tabulated iteration times for the simulator (imported with it, not by the plan)."""
        from planner.perf.iteration import IterationTimer

        return IterationTimer(self.perf)

    @cached_property
    def steps(self) -> np.ndarray:
        """Decode iterations per request after its first token: output − 1 (read-only)."""
        return _read_only(np.maximum(self.out - 1.0, 0.0))

    @cached_property
    def distinct_steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sample's distinct decode-step counts, the first request with each, and each
        request's index into them: a model whose per-request answer depends on the steps alone
        computes it once per distinct count (the same values, fewer rows)."""
        values, first, inverse = np.unique(self.steps, return_index=True, return_inverse=True)
        return values, first, inverse

    # the sample's moments, asked for at every rate a root finder tries: computed once
    @cached_property
    def mean_steps(self) -> float:
        return float(self.steps.mean())

    @cached_property
    def service_mean_s(self) -> float:
        return float(self.service_s.mean())

    @cached_property
    def service_m2_s2(self) -> float:
        return float((self.service_s**2).mean())

    def step_at(self, batch: float) -> float:
        """Decode step time at a (fractional) batch, interpolated on the grid."""
        grid = np.arange(self.step_s.size)
        return float(np.interp(max(batch, 1.0), grid, self.step_s))


@dataclass
class Scenario:
    """Cluster, model, workload and SLO: everything a prediction needs besides the deployment."""

    cluster: Cluster
    model: ModelSpec
    workload: Workload
    slo: SLO
    samples: int = 512
    kv: KVPolicy = field(default_factory=KVPolicy)
    engine: EngineProfile = field(default_factory=lambda: ENGINES[DEFAULT_ENGINE])
    # by (tp, pp, stage boundaries across nodes, the network they cross): variants made with
    # dataclasses.replace (sensitivity) share this dict, and only crossing instances depend on
    # the network
    _instances: dict[tuple[int, int, int, Network | None], InstanceModel] = field(
        default_factory=dict, repr=False
    )
    _sample: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # unit scenarios by (replicas, queues, id of the scenario they derive from): variants made
    # with dataclasses.replace share this dict, so each entry keeps its source alive and is
    # only used for it
    _units: dict[tuple[int, int], tuple[Scenario, Scenario]] = field(
        default_factory=dict, repr=False
    )

    @property
    def max_output_tokens(self) -> float:
        """max_tokens for the `max` policy: the policy's, else the output distribution's p99.9."""
        if self.kv.max_output_tokens is not None:
            return float(self.kv.max_output_tokens)
        cap = self.model.max_context - 1
        return float(self.workload.output.quantiles(np.array([0.999]), cap=cap)[0])

    def with_kv(self, kv: KVPolicy) -> Scenario:
        """The scenario under another KV policy (the length sample is shared)."""
        return replace(self, kv=kv, _instances={}, _units={})

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The stratified (input, output) length sample, drawn once per scenario."""
        if self._sample is None:
            self._sample = request_sample(self.workload, self.model.max_context, n=self.samples)
        return self._sample

    @property
    def prefix_cache_block_tokens(self) -> int:
        """KV block size the engine reuses cached prefixes in; 0 when nothing is reused (no
        shared prefix, a share of 0, or an engine without prefix caching)."""
        pre = self.workload.prefix
        if pre is None or pre.share <= 0.0 or not self.engine.prefix_caching:
            return 0
        return self.engine.kv_block_tokens

    @property
    def shared_prefix_tokens(self) -> int:
        """KV tokens of the shared prefix an instance holds: its whole blocks
        (`cached_prefix_tokens` of a prompt longer than it); 0 when nothing is reused."""
        block = self.prefix_cache_block_tokens
        pre = self.workload.prefix
        return 0 if block == 0 or pre is None else pre.tokens // block * block

    def cached_tokens(self) -> np.ndarray | None:
        """Prompt tokens each sampled request finds in the prefix cache (docs/model.md §4.6,
        §7.1): the stratified hits of `stratified_prefix_hits` reuse the prefix's whole KV
        blocks; None when the workload has no shared prefix, no request has it, or the
        engine does not cache prefixes."""
        pre, block = self.workload.prefix, self.prefix_cache_block_tokens
        if pre is None or block == 0:
            return None
        inp, _ = self.sample()
        hit = stratified_prefix_hits(inp, pre.share)
        cached = cached_prefix_tokens(inp, hit, pre.tokens, block)
        return cached if np.any(cached > 0) else None

    def instance(self, tp: int, pp: int, crossing: int | None = None) -> InstanceModel:
        """The InstanceModel for tp×pp (cached) whose stages are laid out on whole nodes in
        order (`cross_node_boundaries`), or with `crossing` of its stage boundaries between
        nodes when a placement splits it otherwise (DistServe's stage-aligned groups,
        docs/model.md §7.4)."""
        if crossing is None:
            crossing = cross_node_boundaries(tp, pp, self.cluster.gpus_per_node)
        key = (tp, pp, crossing, self.cluster.network if crossing else None)
        if key not in self._instances:
            self._instances[key] = self._build_instance(tp, pp, crossing)
        return self._instances[key]

    def _build_instance(self, tp: int, pp: int, crossing: int) -> InstanceModel:
        inp, out = self.sample()
        need = int(min(float((inp + out).max()), self.model.max_context))
        gpu, eng = self.cluster.gpu, self.engine
        # time-average context over decoding requests: weight each request by its decode length
        w = np.maximum(out - 1.0, 1e-9)
        ctx = float(np.sum(w * (inp + out / 2.0)) / np.sum(w))
        u = (np.random.default_rng(7).permutation(inp.size) + 0.5) / inp.size
        pred = predicted_outputs(out, self.kv.prediction_cv, u)
        cached = self.cached_tokens()
        held = held_tokens(self.kv, inp, out, self.max_output_tokens, pred, cached)
        held_mean = float(np.sum(w * held) / np.sum(w))
        held_var = float(np.sum(w * (held - held_mean) ** 2) / np.sum(w))
        # prefills are not chunked outside Sarathi: a whole prompt must fit one iteration; the
        # deployment sets max_model_len to the longest request it serves (`need`); sliding-window
        # KV per token is taken at the mean held tokens
        mem, limits = plan_engine_memory(
            self.model, gpu, tp, pp, eng, max_model_len=need, context_tokens=held_mean
        )
        perf = InstancePerf(
            self.model,
            gpu,
            self.cluster.link,
            tp,
            pp,
            eng,
            network=self.cluster.network if crossing else None,
            cross_node_boundaries=crossing,
        )
        if cached is None:
            prefill = perf.prefill(inp).total_s
            prefix, share = 0.0, 0.0
        else:
            prefill = perf.prefill(inp - cached, 1.0, cached).total_s
            prefix, share = float(self.shared_prefix_tokens), float(np.mean(cached > 0))
        kv_limit = kv_batch_limit(mem.kv_capacity_tokens, max(held_mean, 1.0), prefix, share)
        seqs = limits.max_num_seqs
        limit = min(kv_limit, float(seqs))
        top = int(max(limit, 1.0)) + 1
        steps = perf.decode_step(np.arange(top + 1), ctx).total_s.astype(float)
        steps[0] = steps[1]
        return InstanceModel(
            perf=perf,
            memory=mem,
            inp=inp,
            out=out,
            prefill_s=prefill,
            service_s=prefill / pp,
            decode_context=ctx,
            kv_batch_limit=limit,
            step_s=steps,
            max_batched_tokens=limits.max_num_batched_tokens,
            seq_limited=seqs < kv_limit,
            kv_held_mean=held_mean,
            kv_held_var=held_var,
            cached=cached,
            prefix_tokens=prefix,
            prefix_share=share,
        )


def shared_prefix_held_tokens(prefix_tokens: float, prefix_share: float, batch: float) -> float:
    """KV tokens a shared prefix takes while `batch` requests decode (docs/model.md §7.1):
    P·(1 − (1 − s)^B), the prefix's P tokens held once while at least one of the B requests
    is a hit (share s, hits independent); unused, its blocks stay as evictable cache, free for
    other requests. Never more than the s·B·P the hits would hold without sharing."""
    if prefix_tokens <= 0.0 or prefix_share <= 0.0 or batch <= 0.0:
        return 0.0
    if prefix_share >= 1.0:
        return prefix_tokens
    return prefix_tokens * -float(np.expm1(batch * np.log1p(-prefix_share)))


def kv_batch_limit(
    capacity_tokens: float, held_tokens: float, prefix_tokens: float, prefix_share: float
) -> float:
    """Decode batch B the KV cache holds (docs/model.md §5.2, §7.1): the root of
    B·h + P·(1 − (1 − s)^B) = capacity, h the mean tokens a request holds beyond the cached
    prefix, P the prefix held once while a hit runs (share s); capacity/h without a prefix.
    The left side grows with B, so the root is unique, between (capacity − P)/h and
    capacity/h."""
    top = capacity_tokens / held_tokens
    if prefix_tokens <= 0.0 or prefix_share <= 0.0:
        return top

    def excess(b: float) -> float:
        held_prefix = shared_prefix_held_tokens(prefix_tokens, prefix_share, b)
        return b * held_tokens + held_prefix - capacity_tokens

    lo = max((capacity_tokens - prefix_tokens) / held_tokens, 0.0)
    if excess(lo) >= 0.0:
        return lo
    return brent_root(excess, lo, top, xtol=1e-9, rtol=1e-12)


def unit_scenario(dep: Deployment, scen: Scenario) -> Scenario:
    """The scenario one unit of a replicated deployment sees (docs/model.md §8.5): its share of
    the nodes, and Gamma arrivals with the squared CV c²/r of every r-th arrival
    (`queueing.routed_ca2`; the sum of r Gamma gaps is Gamma, so that is exact); the strategy
    models then route round-robin over the unit's queues. The instance models and
    the length sample are shared with `scen`. `scen` itself when replicas = 1."""
    if dep.replicas <= 1:
        return scen
    key = (dep.replicas, id(scen))
    if key not in scen._units:
        ca2 = routed_ca2(scen.workload.arrivals.ca2, dep.replicas)
        arrivals = Arrivals(process="gamma", cv=math.sqrt(ca2))
        scen.sample()
        unit = replace(
            scen,
            cluster=scen.cluster.model_copy(update={"nodes": scen.cluster.nodes // dep.replicas}),
            workload=scen.workload.model_copy(update={"arrivals": arrivals}),
            _instances=scen._instances,
            _sample=scen._sample,
            _units={},
        )
        scen._units[key] = (scen, unit)
    return scen._units[key][1]


def deployment_problem(dep: Deployment, scen: Scenario) -> str | None:
    """Why a deployment cannot run on the scenario's cluster, or None."""
    c = scen.cluster
    if dep.replicas < 1:
        return "replicas must be at least 1"
    if dep.gpus > c.total_gpus:
        return f"needs {dep.gpus} GPUs, the cluster has {c.total_gpus}"
    pools = [(dep.tp, dep.pp, dep.instances)]
    if dep.family == "FuDG":
        if dep.instances < 1 or dep.decode_instances < 1:
            return "FuDG needs at least one prefill and one decode instance"
        pools.append((dep.dtp, dep.dpp, dep.decode_instances))
    for tp, pp, n in pools:
        if n < 1:
            return "needs at least one instance"
        if pp > scen.model.num_layers:
            return f"pp={pp} exceeds the model's {scen.model.num_layers} layers"
        span = span_problem(tp, pp, c.gpus_per_node)
        if span is not None:
            return span
        mem = scen.instance(tp, pp).memory
        if not mem.fits:
            return mem.reason
    nodes = nodes_needed(dep, c.gpus_per_node)
    if dep.replicas * nodes > c.nodes:
        each = f" ({dep.replicas} units of {nodes})" if dep.replicas > 1 else ""
        return f"needs {dep.replicas * nodes} nodes{each}, the cluster has {c.nodes}"
    if dep.strategy == "distserve" and (
        interleaved_groups(dep.unit, c.gpus_per_node, c.nodes // dep.replicas) is None
    ):
        # KV moves inside a node (docs/model.md §7.4): every node used holds both pools
        return (
            f"{dep.instances} prefill and {dep.decode_instances} decode instances do not split "
            "evenly over nodes that each hold both (DistServe moves KV inside a node)"
        )
    if dep.strategy == "ecoserve" and (dep.macro_size < 1 or dep.instances % dep.macro_size):
        return f"{dep.instances} instances do not split into macro instances of {dep.macro_size}"
    if dep.strategy == "sarathi" and dep.chunk_tokens < 16:
        return "chunk_tokens must be >= 16"
    return None

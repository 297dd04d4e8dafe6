"""Search the deployment space of a cluster for each strategy (DESIGN.md §4).

Candidates use the whole cluster (unless told otherwise) with instances inside one node:
NoDG — every TP×PP shape (× Sarathi chunk sizes); FuDG — prefill and decode pool shapes with
the P:D split near the balance of prefill and decode capacity (± one instance); PaDG — every
shape, macro-instance size dividing the instance count, and prefill-window budget. Cheap upper
bounds (prefill and decode capacity) prune candidates that cannot beat the strategy's current
top-k before the root finding runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from planner.config import Objective, SearchSpec
from planner.errors import PlannerError
from planner.strategies import Deployment, Goodput, Scenario, goodput
from planner.strategies.base import InstanceModel, StrategyName, deployment_problem


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
    """Why a tp×pp instance cannot serve the model on this cluster, or None."""
    if tp * pp > scen.cluster.gpus_per_node:
        return f"tp={tp}×pp={pp} exceeds a node's {scen.cluster.gpus_per_node} GPUs"
    if scen.model.num_layers < pp:
        return f"pp={pp} exceeds the model's {scen.model.num_layers} layers"
    return scen.instance(tp, pp).memory.reason


def shapes(scen: Scenario, spec: SearchSpec) -> list[tuple[int, int]]:
    """Instance shapes (tp, pp) inside one node that hold the model and one full request;
    a PlannerError naming each shape's problem when there is none."""
    out = [(tp, pp) for tp in spec.tp for pp in spec.pp if _shape_problem(scen, tp, pp) is None]
    if not out:
        reasons = [_shape_problem(scen, tp, pp) for tp in spec.tp for pp in spec.pp]
        why = "; ".join(dict.fromkeys(str(r) for r in reasons[:6]))
        raise PlannerError(f"search: no instance shape can serve {scen.model.name}: {why}")
    return out


def _decode_capacity(im: InstanceModel, tpot_s: float) -> float:
    """Requests/s one instance can decode: the largest batch whose step meets the TPOT SLO (and
    fits the KV cache), over the decode steps a request needs."""
    limit = int(min(im.kv_batch_limit, im.step_s.size - 1))
    ok = np.nonzero(im.step_s[1 : limit + 1] <= tpot_s)[0]
    b = int(ok[-1]) + 1 if ok.size else 1
    return b / (max(im.mean_steps, 1.0) * float(im.step_s[b]))


def upper_bound_rate(dep: Deployment, scen: Scenario) -> float:
    """Rate no deployment can exceed: the smaller of total prefill capacity (instances / E[s])
    and total decode capacity at the TPOT SLO."""
    slo = scen.slo.tpot_s
    if dep.family == "FuDG":
        p = scen.instance(dep.tp, dep.pp)
        d = scen.instance(dep.dtp, dep.dpp)
        return min(
            dep.instances / p.service_mean_s, dep.decode_instances * _decode_capacity(d, slo)
        )
    im = scen.instance(dep.tp, dep.pp)
    pre = dep.instances / im.service_mean_s
    dec = dep.instances * _decode_capacity(im, slo)
    # prefill and decode share the instances: rate·(E[s] + E[n]/dec_i) ≤ instances
    return 1.0 / (1.0 / pre + 1.0 / dec)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(scen: Scenario, spec: SearchSpec) -> Iterator[Deployment]:
    total = scen.cluster.total_gpus
    sh = shapes(scen, spec)
    slo = scen.slo
    for strategy in spec.strategies:
        for tp, pp in sh:
            size = tp * pp
            n = total // size
            if n < 1:
                continue
            if strategy == "vllm":
                yield Deployment("vllm", tp=tp, pp=pp, instances=n)
            elif strategy == "sarathi":
                for c in spec.chunk_tokens:
                    yield Deployment("sarathi", tp=tp, pp=pp, instances=n, chunk_tokens=c)
            elif strategy == "ecoserve":
                sizes = spec.macro_sizes or [d for d in _divisors(n) if d >= 2]
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
        if strategy in ("distserve", "mooncake"):
            yield from _fudg_candidates(strategy, scen, sh, total)


def _fudg_candidates(
    strategy: StrategyName, scen: Scenario, sh: list[tuple[int, int]], total: int
) -> Iterator[Deployment]:
    """P and D pool shapes; P:D near the capacity balance, ± one prefill instance."""
    for tp_p, pp_p in sh:
        p_im = scen.instance(tp_p, pp_p)
        p_cap = 1.0 / p_im.service_mean_s
        for tp_d, pp_d in sh:
            d_cap = _decode_capacity(scen.instance(tp_d, pp_d), scen.slo.tpot_s)
            sp, sd = tp_p * pp_p, tp_d * pp_d
            # GPUs split so that n_p·p_cap ≈ n_d·d_cap with n_p·sp + n_d·sd = total
            n_p_star = total / (sp + sd * p_cap / d_cap)
            base = max(1, round(n_p_star))
            for n_p in sorted({base - 1, base, base + 1}):
                if n_p < 1:
                    continue
                rest = total - n_p * sp
                n_d = rest // sd
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


def _rank_key(r: Ranked, objective: Objective) -> tuple[float, float]:
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


def plan(
    scen: Scenario,
    spec: SearchSpec,
    objective: Objective,
    progress: Callable[[int, int], None] | None = None,
) -> PlanResult:
    """Evaluate every candidate (pruned by capacity bounds) and rank them per strategy."""
    cands = list(candidates(scen, spec))
    per: dict[str, list[Ranked]] = {s: [] for s in spec.strategies}
    why: dict[str, str] = {}
    evaluated = pruned = 0
    everything: list[Ranked] = []
    # visit the most promising first so that pruning bites early
    bounds = {}
    for d in cands:
        bounds[d] = (
            0.0 if deployment_problem(d, scen) is not None else upper_bound_rate(d, scen) / d.gpus
        )
    cands.sort(key=lambda d: -bounds[d])
    for i, d in enumerate(cands):
        if progress:
            progress(i + 1, len(cands))
        kept = per[d.strategy]
        if len(kept) >= spec.top and bounds[d] <= kept[-1].goodput.per_gpu:
            pruned += 1
            continue
        g = goodput(d, scen)
        evaluated += 1
        r = rank(g, scen, objective)
        if not g.feasible:
            why.setdefault(d.strategy, f"{d.label()}: {g.binding}: {g.detail}")
            continue
        everything.append(r)
        kept.append(r)
        kept.sort(key=lambda x: _rank_key(x, objective))
        del kept[spec.top :]
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
        frontier=pareto(everything),
        evaluated=evaluated,
        pruned=pruned,
    )


__all__ = ["PlanResult", "Ranked", "candidates", "plan", "upper_bound_rate"]

"""Capacity over a request-rate ramp: EcoServe's mitosis scaling vs scaling NoDG instances and
FuDG P/D pools (docs/model.md §9.3).

For each step of the ramp, each strategy gets the fewest GPUs whose analytical goodput covers
the step's rate, built from the plan's best deployment of that strategy (same instance shape,
chunk size, P:D ratio and prefill window):
  NoDG — n instances, n = ⌈rate / one instance's goodput⌉.
  FuDG — k copies of the smallest pool pair with the plan's P:D ratio, the fewest k whose
         goodput covers the rate.
  PaDG — M instances grouped into macro instances of N_l..N_u instances (mitosis): M is the
         fewest instances whose macro instances' goodputs sum to the rate. A macro instance
         grows by one instance at a time; past N_u it splits in two, and two macro instances
         merge when together they fit in N_u (the schedule says which happened at each step).
Attainment per step is the analytical SLO attainment of that step's deployment at its rate;
GPU-hours sum GPUs × step length. The cluster is grown (whole nodes) when a step needs more
GPUs than it has: this is a capacity plan, not a fit into the current cluster.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from planner.config import RampSpec
from planner.deployment import Deployment, nodes_needed
from planner.errors import PlannerError
from planner.scenario import Scenario
from planner.search import PlanResult
from planner.strategies import goodput, predict

MAX_INSTANCES = 1 << 16  # the largest deployment a ramp step may call for


def macro_sizes(instances: int, n_lower: int, n_upper: int) -> list[int]:
    """Split `instances` into macro instances within [N_l, N_u]: as even as possible over
    ⌈M/N_u⌉ macro instances when that respects N_l; otherwise full macro instances of N_u
    plus one last partial one (also when M < N_l)."""
    if instances <= 0:
        return []
    m = math.ceil(instances / n_upper)
    base, extra = divmod(instances, m)
    sizes = [base + 1] * extra + [base] * (m - extra)
    if min(sizes) >= n_lower or m == 1:
        return sizes
    full, rest = divmod(instances, n_upper)
    return [n_upper] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class ScaleStep:
    rate: float
    deployment: Deployment
    gpus: int
    attainment: float
    macro_sizes: tuple[int, ...] = ()
    event: str = ""

    def label(self) -> str:
        d = self.deployment
        if not self.macro_sizes:
            return d.label()
        par = f"TP{d.tp}" + (f"·PP{d.pp}" if d.pp > 1 else "")
        sizes = " + ".join(str(n) for n in self.macro_sizes)
        return f"{sum(self.macro_sizes)} inst ({par}) as {sizes}"


@dataclass(frozen=True)
class ScalePlan:
    strategy: str
    steps: list[ScaleStep]
    step_hours: float

    @property
    def gpu_hours(self) -> float:
        return sum(s.gpus for s in self.steps) * self.step_hours

    @property
    def min_attainment(self) -> float:
        return min(s.attainment for s in self.steps)


def _grown(scen: Scenario, dep: Deployment) -> Scenario:
    """The scenario on a cluster with the nodes `dep` needs (at least its GPUs in whole nodes;
    `nodes_needed` per unit when instances span nodes or share them by stage), caches shared."""
    c = scen.cluster
    need = dep.replicas * nodes_needed(dep, c.gpus_per_node)
    nodes = max(c.nodes, math.ceil(dep.gpus / c.gpus_per_node), need)
    if nodes == c.nodes:
        return scen
    return dataclasses.replace(scen, cluster=c.model_copy(update={"nodes": nodes}))


def _smallest(covers: Callable[[int], bool]) -> int:
    """Smallest n ≥ 1 with covers(n): doubling then bisection (covers is monotone)."""
    hi = 1
    while not covers(hi):
        hi *= 2
        if hi > MAX_INSTANCES:
            raise PlannerError(f"scale: the ramp needs more than {MAX_INSTANCES:,} instances")
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if covers(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _step(scen: Scenario, dep: Deployment, rate: float, **extra: object) -> ScaleStep:
    s = _grown(scen, dep)
    p = predict(dep, s, rate, percentiles=False)
    return ScaleStep(rate, dep, dep.gpus, p.attainment, **extra)  # type: ignore[arg-type]


def _capacity(scen: Scenario, dep: Deployment, per_gpu_hint: float) -> float:
    """Analytical goodput (req/s) of `dep`, the root finder started from the best deployment's
    goodput per GPU times its GPUs."""
    s = _grown(scen, dep)
    return goodput(dep, s, guess=per_gpu_hint * dep.gpus, percentiles=False).rate


def _scale_nodg(
    scen: Scenario, best: Deployment, per_gpu: float, ramp: RampSpec
) -> list[ScaleStep]:
    one = dataclasses.replace(best, instances=1)
    per = _capacity(scen, one, per_gpu)
    if per <= 0:
        raise PlannerError(f"scale: one {best.strategy} instance meets the SLO at no rate")
    steps = []
    for r in ramp.rates:
        n = math.ceil(r / per * (1 + 1e-9))
        if n > MAX_INSTANCES:
            raise PlannerError(
                f"scale: {r:g} req/s needs more than {MAX_INSTANCES:,} {best.strategy} instances"
            )
        steps.append(_step(scen, dataclasses.replace(best, instances=n), r))
    return steps


def _scale_fudg(
    scen: Scenario, best: Deployment, per_gpu: float, ramp: RampSpec
) -> list[ScaleStep]:
    g = math.gcd(best.instances, best.decode_instances)
    p0, d0 = best.instances // g, best.decode_instances // g

    @cache
    def capacity(k: int) -> float:
        dep = dataclasses.replace(best, instances=k * p0, decode_instances=k * d0)
        return _capacity(scen, dep, per_gpu)

    steps = []
    for r in ramp.rates:
        k = _smallest(lambda k: capacity(k) >= r)  # noqa: B023 (used at once)
        dep = dataclasses.replace(best, instances=k * p0, decode_instances=k * d0)
        steps.append(_step(scen, dep, r))
    return steps


def _scale_padg(
    scen: Scenario, best: Deployment, per_gpu: float, ramp: RampSpec
) -> list[ScaleStep]:
    n_l, n_u = ramp.macro_min, max(ramp.macro_max, ramp.macro_min)

    @cache
    def macro_goodput(n: int) -> float:
        dep = dataclasses.replace(best, instances=n, macro_size=n)
        return _capacity(scen, dep, per_gpu)

    def capacity(m: int) -> float:
        return sum(macro_goodput(n) for n in macro_sizes(m, n_l, n_u))

    steps: list[ScaleStep] = []
    prev: list[int] = []
    for r in ramp.rates:
        m = _smallest(lambda m: capacity(m) >= r)  # noqa: B023 (used at once)
        sizes = macro_sizes(m, n_l, n_u)
        event = _mitosis_event(prev, sizes)
        prev = sizes
        # the analytical model treats macro instances as equal; evaluate the step as the
        # sum of its macro instances' attainment, weighted by the rate each receives
        dep = dataclasses.replace(best, instances=m, macro_size=max(sizes))
        shares = [macro_goodput(n) / capacity(m) for n in sizes]
        att = 0.0
        for n, share in zip(sizes, shares, strict=True):
            d = dataclasses.replace(best, instances=n, macro_size=n)
            att += share * predict(d, _grown(scen, d), r * share, percentiles=False).attainment
        steps.append(ScaleStep(r, dep, m * best.tp * best.pp, att, tuple(sizes), event))
    return steps


def _mitosis_event(prev: list[int], sizes: list[int]) -> str:
    if not prev:
        return "start"
    if len(sizes) > len(prev):
        return f"split ({len(prev)} → {len(sizes)} macro instances)"
    if len(sizes) < len(prev):
        return f"merge ({len(prev)} → {len(sizes)} macro instances)"
    d = sum(sizes) - sum(prev)
    if d > 0:
        return f"expand +{d}"
    if d < 0:
        return f"contract {d}"
    return "–"


def scale(res: PlanResult, ramp: RampSpec) -> list[ScalePlan]:
    """The ramp's schedule for each strategy's best deployment in the plan."""
    plans = []
    for strategy, items in res.per_strategy.items():
        if not items:
            continue
        # the ramp scales its own copies (replicas of the plan's unit would double count them)
        best, per_gpu = items[0].deployment.unit, items[0].goodput.per_gpu
        scale_family = {"NoDG": _scale_nodg, "FuDG": _scale_fudg, "PaDG": _scale_padg}
        steps = scale_family[best.family](res.scenario, best, per_gpu, ramp)
        plans.append(ScalePlan(strategy, steps, ramp.step_hours))
    return plans

"""How each strategy's best deployment responds to the scenario's uncertain inputs: inter-node
bandwidth, SLO tightness and arrival burstiness (the report's sensitivity section).

Each table re-solves the analytical goodput (docs/model.md §7.6) of the plan's best deployment per
strategy with one input changed, starting the root finder from the plan's goodput (a variant
equal to the plan's scenario takes the plan's goodput). The
scenario's per-instance tables (roofline, memory, length sample) do not depend on these inputs
and are shared, so a table costs a few goodput solves.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from planner.deployment import Deployment, instance_nodes
from planner.kv_policy import KV_POLICIES
from planner.scenario import Scenario
from planner.search import PlanResult
from planner.strategies import goodput
from planner.workload import Arrivals

BANDWIDTHS_GBIT = (10.0, 25.0, 100.0)
SLO_SCALES = (0.5, 0.75, 1.0, 1.5, 2.0)
ARRIVAL_CVS = (1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class SensitivityTable:
    """A figure (default: goodput per GPU) of each strategy's best deployment as one input
    varies."""

    title: str
    column_labels: list[str]
    rows: dict[str, list[float]]  # strategy -> value per column
    fmt: str = "{:.3f}"


def _variant(scen: Scenario, **changes: object) -> Scenario:
    """The scenario with some inputs replaced, sharing its per-instance caches."""
    return dataclasses.replace(scen, **changes)  # type: ignore[arg-type]


def _same_inputs(a: Scenario, b: Scenario) -> bool:
    """Whether two scenarios predict alike (same cluster, model, workload, SLO, KV policy,
    engine and sample size): a variant equal to the plan's scenario needs no new solve."""
    return (
        a.cluster == b.cluster
        and a.model == b.model
        and a.workload == b.workload
        and a.slo == b.slo
        and a.kv == b.kv
        and a.engine == b.engine
        and a.samples == b.samples
    )


def _off_network(dep: Deployment, scen: Scenario) -> bool:
    """Whether `dep` sends nothing over the inter-node network: no MoonCake KV transfers and
    every instance inside one node (no pipeline stage boundary between nodes), so its goodput
    does not depend on the network's bandwidth or latency."""
    gpn = scen.cluster.gpus_per_node
    pools = [(dep.tp, dep.pp)] + ([(dep.dtp, dep.dpp)] if dep.family == "FuDG" else [])
    return dep.strategy != "mooncake" and all(instance_nodes(t, p, gpn) == 1 for t, p in pools)


def _same_but_network(a: Scenario, b: Scenario) -> bool:
    """Whether two scenarios differ at most in the inter-node network."""
    other = a.cluster.model_copy(update={"network": b.cluster.network})
    return _same_inputs(dataclasses.replace(a, cluster=other), b)


def _table(
    res: PlanResult, title: str, labels: list[str], variants: list[Scenario]
) -> SensitivityTable:
    """Goodput per GPU of each strategy's best deployment in each variant, re-solved from the
    plan's goodput; a variant that predicts as the plan's scenario does — equal to it, or
    differing only in the network for a deployment that does not use it — takes the plan's
    goodput itself."""
    rows: dict[str, list[float]] = {}
    scen = res.scenario
    same = [_same_inputs(v, scen) for v in variants]  # per variant, whatever the deployment
    network_only = [_same_but_network(v, scen) for v in variants]
    for strategy, items in res.per_strategy.items():
        if items:
            best = items[0].goodput
            dep, guess = best.deployment, best.rate
            off = _off_network(dep, scen)
            rows[strategy] = [
                best.per_gpu
                if same[i] or (off and network_only[i])
                else goodput(dep, v, guess=guess, percentiles=False).per_gpu
                for i, v in enumerate(variants)
            ]
    return SensitivityTable(title, labels, rows)


def sensitivity_parts(res: PlanResult) -> list[Callable[[], SensitivityTable]]:
    """The three tables of `sensitivity`, each as a callable that builds it (`pipeline` builds
    them in parallel)."""
    scen = res.scenario
    c = scen.cluster
    bws = sorted({*BANDWIDTHS_GBIT, c.network.bandwidth_gbit})

    def with_bw(bw: float) -> Scenario:
        net = c.network.model_copy(update={"bandwidth_gbit": bw})
        return _variant(scen, cluster=c.model_copy(update={"network": net}))

    def with_cv(cv: float) -> Scenario:
        arr = Arrivals() if cv == 1.0 else Arrivals(process="gamma", cv=cv)
        return _variant(scen, workload=scen.workload.model_copy(update={"arrivals": arr}))

    make: list[tuple[str, list[str], list[float], Callable[[float], Scenario]]] = [
        ("inter-node bandwidth", [f"{b:g} Gb/s" for b in bws], bws, with_bw),
        (
            "SLO scale (TTFT and TPOT bounds × k)",
            [f"×{k:g}" for k in SLO_SCALES],
            list(SLO_SCALES),
            lambda k: _variant(scen, slo=scen.slo.scaled(k)),
        ),
        (
            "arrival burstiness (inter-arrival CV; 1 = Poisson)",
            [f"CV {cv:g}" for cv in ARRIVAL_CVS],
            list(ARRIVAL_CVS),
            with_cv,
        ),
    ]
    return [
        functools.partial(_table, res, title, labels, [f(x) for x in xs])
        for title, labels, xs, f in make
    ]


def sensitivity(res: PlanResult) -> list[SensitivityTable]:
    """Three tables: network bandwidth, SLO scale (TTFT and TPOT bounds × k), arrival CV."""
    return [part() for part in sensitivity_parts(res)]


def kv_policy_tables(res: PlanResult) -> list[SensitivityTable]:
    """The KV-policy comparison: goodput per GPU of each strategy's best deployment under each
    policy, the KV-bound decode batch of its decode instances, and, at that goodput, the
    share of time the cache is full under paged allocation (kv_policy.py; docs/model.md §5)."""
    base = res.scenario
    variants = [base.with_kv(base.kv.model_copy(update={"policy": p})) for p in KV_POLICIES]
    labels: list[str] = list(KV_POLICIES)
    good: dict[str, list[float]] = {}
    limit: dict[str, list[float]] = {}
    risk: dict[str, list[float]] = {}
    for strategy, items in res.per_strategy.items():
        if not items:
            continue
        best = items[0].goodput
        dep, guess = best.deployment, best.rate
        gs = [
            best if _same_inputs(v, base) else goodput(dep, v, guess=guess, percentiles=False)
            for v in variants
        ]
        good[strategy] = [g.per_gpu for g in gs]
        ims = [v.instance(dep.dtp, dep.dpp) for v in variants]
        limit[strategy] = [im.kv_batch_limit for im in ims]
        risk[strategy] = [
            ims[0].kv_overflow_probability(g.prediction.decode_batch)
            if p == "paged" and g.prediction is not None
            else 0.0
            for p, g in zip(KV_POLICIES, gs, strict=True)
        ]
    return [
        SensitivityTable("goodput per GPU under each KV policy", labels, good),
        SensitivityTable("KV-bound decode batch per (decode) instance", labels, limit, "{:.0f}"),
        SensitivityTable(
            "share of time the KV cache is full (paged: waits and preemptions) at that goodput",
            labels[:1],
            {k: v[:1] for k, v in risk.items()},
            "{:.1%}",
        ),
    ]

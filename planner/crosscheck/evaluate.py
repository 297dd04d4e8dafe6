"""`ecoplan simulate`: simulate a plan file's deployments at given rates, or find their
simulated goodput, next to the analytical figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.deployment import Deployment
from planner.scenario import Scenario
from planner.simulate.goodput import (
    GoodputTask,
    SimGoodput,
    default_requests,
    sim_goodputs,
    simulate_many,
)
from planner.simulate.results import SimResult
from planner.strategies import Goodput, goodput


@dataclass(frozen=True)
class SimRun:
    deployment: Deployment
    result: SimResult


@dataclass(frozen=True)
class SimComparison:
    analytical: Goodput
    simulated: SimGoodput


@dataclass(frozen=True)
class SimReport:
    runs: list[SimRun]  # each deployment at each requested rate (or at its simulated goodput)
    goodputs: list[SimComparison]  # empty when rates were given


def simulate_deployments(
    scen: Scenario,
    deployments: Sequence[Deployment],
    rates: Sequence[float] | None,
    *,
    seeds: Sequence[int],
    requests: int | None = None,
    progress: Callable[[], None] | None = None,
    jobs: int | None = 1,
) -> SimReport:
    """With rates: one simulation (first seed) per deployment and rate. Without: simulated
    goodput over the seeds, searched from the analytical goodput, and a run at it. The
    simulations run in `jobs` processes (`simulate.goodput.sim_goodputs`); the report is the
    same for any `jobs`."""
    if rates:
        todo = [
            (d, r, requests or default_requests(d), seeds[0]) for d in deployments for r in rates
        ]
        results = simulate_many(scen, todo, jobs=jobs, progress=progress)
        return SimReport([SimRun(d, res) for (d, *_), res in zip(todo, results, strict=True)], [])
    analytical = [goodput(dep, scen) for dep in deployments]
    tasks = [
        GoodputTask(dep, ana.rate, tuple(seeds), requests or default_requests(dep))
        for dep, ana in zip(deployments, analytical, strict=True)
    ]
    sims = sim_goodputs(scen, tasks, jobs=jobs, progress=progress)
    comps = [SimComparison(a, s) for a, s in zip(analytical, sims, strict=True)]
    runs = [SimRun(s.deployment, s.at_rate) for s in sims if s.at_rate is not None]
    return SimReport(runs, comps)

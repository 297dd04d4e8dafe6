"""`ecoplan simulate`: simulate a plan file's deployments at given rates, or find their
simulated goodput, next to the analytical figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.deployment import Deployment
from planner.scenario import Scenario
from planner.simulate.goodput import SimGoodput, default_requests, sim_goodput
from planner.simulate.results import SimResult
from planner.simulate.run import simulate
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
) -> SimReport:
    """With rates: one simulation (first seed) per deployment and rate. Without: simulated
    goodput over the seeds, searched from the analytical goodput, and a run at it."""
    runs: list[SimRun] = []
    comps: list[SimComparison] = []
    for dep in deployments:
        n = requests or default_requests(dep)
        if rates:
            for r in rates:
                runs.append(SimRun(dep, simulate(dep, scen, r, requests=n, seed=seeds[0])))
                if progress is not None:
                    progress()
            continue
        ana = goodput(dep, scen)
        sim = sim_goodput(dep, scen, guess=ana.rate, seeds=seeds, requests=n, progress=progress)
        comps.append(SimComparison(ana, sim))
        if sim.at_rate is not None:
            runs.append(SimRun(dep, sim.at_rate))
    return SimReport(runs, comps)

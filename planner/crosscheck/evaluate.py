"""`ecoplan simulate`: simulate a plan file's deployments at given rates, or find their
simulated goodput, next to the analytical figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.deployment import Deployment
from planner.errors import PlannerError
from planner.scenario import Scenario, deployment_problem
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
    """One deployment at one rate: its simulation, or (result None) why the simulator cannot
    run it, reported as a row of its own so that it does not hide the other deployments'."""

    deployment: Deployment
    rate: float  # req/s
    result: SimResult | None
    problem: str | None = None


@dataclass(frozen=True)
class SimComparison:
    """A deployment's analytical and simulated goodput; `problem` says why it cannot run
    (`deployment_problem`; both goodputs are then 0)."""

    analytical: Goodput
    simulated: SimGoodput
    problem: str | None = None


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
    same for any `jobs`.

    With rates, a deployment that cannot run (`deployment_problem`, which goodput mode skips
    too) or a run the simulator refuses (over its memory limit) becomes a run that carries its
    problem, and the other runs are still simulated: one bad row does not hide the rest. Only
    when no run can be simulated is there nothing to report: a PlannerError naming the first
    run's problem."""
    if rates:
        return _at_rates(scen, deployments, rates, seeds[0], requests, progress, jobs)
    analytical = [goodput(dep, scen) for dep in deployments]
    tasks = [
        GoodputTask(dep, ana.rate, tuple(seeds), requests or default_requests(dep))
        for dep, ana in zip(deployments, analytical, strict=True)
    ]
    problems = [deployment_problem(dep, scen) for dep in deployments]
    if problems and all(p is not None for p in problems):
        first = deployments[0]
        every = "no deployment can be simulated; " if len(deployments) > 1 else ""
        raise PlannerError(f"{every}{first.strategy} {first.label()}: {problems[0]}")
    sims = sim_goodputs(scen, tasks, jobs=jobs, progress=progress)
    comps = [SimComparison(a, s, p) for a, s, p in zip(analytical, sims, problems, strict=True)]
    runs = [SimRun(s.deployment, s.at_rate.rate, s.at_rate) for s in sims if s.at_rate is not None]
    return SimReport(runs, comps)


def _at_rates(
    scen: Scenario,
    deployments: Sequence[Deployment],
    rates: Sequence[float],
    seed: int,
    requests: int | None,
    progress: Callable[[], None] | None,
    jobs: int | None,
) -> SimReport:
    """`simulate_deployments` with rates: each deployment at each rate, in that order."""
    problems = [deployment_problem(d, scen) for d in deployments]
    todo = [
        (d, r, requests or default_requests(d), seed)
        for d, p in zip(deployments, problems, strict=True)
        if p is None
        for r in rates
    ]
    if progress is not None:  # the runs that cannot start are done at once
        for _ in range(len(deployments) * len(rates) - len(todo)):
            progress()
    done = iter(simulate_many(scen, todo, jobs=jobs, progress=progress))
    runs = []
    for d, p in zip(deployments, problems, strict=True):
        for r in rates:
            res = p if p is not None else next(done)
            runs.append(SimRun(d, r, None, res) if isinstance(res, str) else SimRun(d, r, res))
    if all(run.result is None for run in runs):
        first = runs[0]
        where = f"{first.deployment.strategy} {first.deployment.label()} at {first.rate:g} req/s"
        every = "no deployment can be simulated; " if len(runs) > 1 else ""
        raise PlannerError(f"{every}{where}: {first.problem}")
    return SimReport(runs, [])

"""Goodput by simulation: the highest rate whose simulated attainment meets the SLO target,
found per seed by the same bracketing and Brent's method as the analytical goodput (docs/model.md
§6.6, §10.5), with a Student-t confidence interval over seeds.

The seeds' searches and the runs at given rates are independent, so `sim_goodputs` and
`simulate_many` spread them over `jobs` worker processes (docs/model.md §10.7): each search is
sequential in its own rates and seeded, so the results do not depend on `jobs` or on the order
in which the workers finish.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from planner.deployment import Deployment
from planner.errors import PlannerError
from planner.parallel import can_fork, default_jobs
from planner.rootfind import highest_passing_rate
from planner.scenario import Scenario, deployment_problem
from planner.simulate.results import SimResult, max_simulated_rate
from planner.simulate.run import request_lifetime_s, simulate

DEFAULT_SEEDS = (0, 1, 2)
# first bracket move from the starting guess (the analytical goodput, typically within ~10% of
# the simulated one: docs/validation.md), squared at each further move up to ×1.5
GUESS_STEP = 1.1


def default_requests(dep: Deployment) -> int:
    """Requests per simulation: 250 per instance of every unit (so each sees a few hundred), at
    least 2,000 and at most 8,000."""
    instances = dep.replicas * (
        dep.instances + (dep.decode_instances if dep.family == "FuDG" else 0)
    )
    return int(min(max(250 * instances, 2000), 8000))


@dataclass(frozen=True)
class SimGoodput:
    """Simulated goodput of one deployment: per-seed rates, their mean and a 95% interval."""

    deployment: Deployment
    seed_rates: tuple[float, ...]
    requests: int
    at_rate: SimResult | None  # the first seed's simulation at the mean goodput

    @property
    def rate(self) -> float:
        return float(np.mean(self.seed_rates))

    @property
    def per_gpu(self) -> float:
        return self.rate / self.deployment.gpus

    def gap(self, analytical_per_gpu: float) -> float:
        """(analytical − simulated) / simulated per-GPU goodput (0 when both are 0)."""
        s, a = self.per_gpu, analytical_per_gpu
        return (a - s) / s if s > 0 else (0.0 if a == 0 else float("inf"))

    def ci_text(self) -> str:
        """Per-GPU goodput and its 95% interval, e.g. `0.412 (0.380–0.444)`."""
        lo, hi = self.ci_per_gpu
        return f"{self.per_gpu:.3f} ({lo:.3f}–{hi:.3f})"

    @property
    def ci_per_gpu(self) -> tuple[float, float]:
        """95% Student-t interval of the mean per-GPU goodput over seeds."""
        k = len(self.seed_rates)
        if k < 2:
            return self.per_gpu, self.per_gpu
        sd = float(np.std(self.seed_rates, ddof=1)) / self.deployment.gpus
        half = float(special.stdtrit(k - 1, 0.975)) * sd / math.sqrt(k)
        return max(self.per_gpu - half, 0.0), self.per_gpu + half  # goodput is never negative


def seed_goodput(
    dep: Deployment, scen: Scenario, seed: int, requests: int, guess: float, rel_tol: float
) -> float:
    """One seed's goodput: `rootfind.highest_passing_rate` from the guess (first move ×1.1, then
    squared up to 1.5× steps) on the simulated attainment (a step function of the rate, made
    nearly monotone by the common random numbers of `draw_requests`)."""
    target = scen.slo.target

    def excess(rate: float) -> float:
        return simulate(dep, scen, rate, requests=requests, seed=seed).attainment - target + 1e-12

    # past the rate whose run would exceed the simulator's memory limit, the search stops at
    # the last passing rate (`results.max_simulated_rate`)
    instances = dep.replicas * (
        dep.instances + (dep.decode_instances if dep.family == "FuDG" else 0)
    )
    top = max_simulated_rate(requests, request_lifetime_s(dep, scen), instances)
    return highest_passing_rate(
        excess,
        floor=1e-3 * dep.gpus,
        guess=guess,
        growth=1.5,
        ceiling=min(1e6, top),
        rel_tol=rel_tol,
        first_step=GUESS_STEP,
    )


@dataclass(frozen=True)
class GoodputTask:
    """One deployment's simulated-goodput search: start near `guess` (req/s, e.g. the analytical
    goodput), one search per seed, `requests` per simulation (None: `default_requests`)."""

    deployment: Deployment
    guess: float | None = None
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    requests: int | None = None
    rel_tol: float = 0.01


# the scenario of the current worker process (set once per worker by `_init_worker`, so that its
# instance tables are built once per process, not once per task)
_WORKER_SCENARIO: Scenario | None = None


def _init_worker(scen: Scenario | None) -> None:
    global _WORKER_SCENARIO
    _WORKER_SCENARIO = scen


def _seed_task(dep: Deployment, seed: int, requests: int, guess: float, rel_tol: float) -> float:
    assert _WORKER_SCENARIO is not None
    return seed_goodput(dep, _WORKER_SCENARIO, seed, requests, guess, rel_tol)


def _run_task(dep: Deployment, rate: float, requests: int, seed: int) -> SimResult:
    assert _WORKER_SCENARIO is not None
    return simulate(dep, _WORKER_SCENARIO, rate, requests=requests, seed=seed)


def _try_run_task(dep: Deployment, rate: float, requests: int, seed: int) -> SimResult | str:
    """`_run_task`, or the PlannerError's message when the simulator cannot run it (a message
    crosses the process boundary as plain text)."""
    try:
        return _run_task(dep, rate, requests, seed)
    except PlannerError as exc:
        return str(exc)


class _Runner:
    """Runs module-level task functions inline (jobs = 1) or in a process pool whose workers hold
    the scenario; `submit` returns a Future either way."""

    def __init__(self, scen: Scenario, jobs: int | None) -> None:
        jobs = default_jobs() if jobs is None else jobs
        if jobs < 1:
            raise ValueError("jobs must be ≥ 1")
        self.scen = scen
        self.pool: ProcessPoolExecutor | None = None
        if jobs > 1:
            # fork (where the platform has it) hands the workers the parent's scenario and its
            # instance tables without pickling or rebuilding them
            ctx = multiprocessing.get_context("fork" if can_fork() else None)
            self.pool = ProcessPoolExecutor(
                max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(scen,)
            )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        fut: Future[Any] = Future()
        _init_worker(self.scen)
        fut.set_result(fn(*args))
        return fut

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        _init_worker(None)
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def sim_goodputs(
    scen: Scenario,
    tasks: Sequence[GoodputTask],
    *,
    jobs: int | None = 1,
    progress: Callable[[], None] | None = None,
) -> list[SimGoodput]:
    """Simulated goodput of each task's deployment over its seeds, the seeds' searches (and then
    each deployment's run at its mean goodput) spread over `jobs` processes; `progress()` is
    called as each seed's search ends; jobs None: `default_jobs()`. Identical results for any
    `jobs`."""
    n_of = [t.requests or default_requests(t.deployment) for t in tasks]
    ok = [deployment_problem(t.deployment, scen) is None for t in tasks]
    rates: list[list[float | None]] = [[None] * len(t.seeds) for t in tasks]
    at: list[SimResult | None] = [None] * len(tasks)
    with _Runner(scen, jobs) as runner:
        pending: dict[Future[Any], tuple[int, int]] = {}  # future → (task, seed index or −1)
        for i, t in enumerate(tasks):
            if not ok[i]:
                continue
            start = t.guess if t.guess and t.guess > 0 else 0.05 * t.deployment.gpus
            for j, s in enumerate(t.seeds):
                fut = runner.submit(_seed_task, t.deployment, s, n_of[i], start, t.rel_tol)
                pending[fut] = (i, j)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            # handle finished futures in submission order, so that progress and follow-up
            # submissions do not depend on which worker finished first
            for fut in sorted(done, key=lambda f: pending[f]):
                i, j = pending.pop(fut)
                if j < 0:
                    at[i] = fut.result()
                    continue
                rates[i][j] = fut.result()
                if progress is not None:
                    progress()
                got = rates[i]
                if all(r is not None for r in got):
                    mean = float(np.mean([float(r or 0.0) for r in got]))
                    if mean > 0:
                        t = tasks[i]
                        follow = runner.submit(_run_task, t.deployment, mean, n_of[i], t.seeds[0])
                        pending[follow] = (i, -1)
    out = []
    for i, t in enumerate(tasks):
        seed_rates = tuple(float(r or 0.0) for r in rates[i]) if ok[i] else (0.0,) * len(t.seeds)
        out.append(SimGoodput(t.deployment, seed_rates, n_of[i], at[i]))
    return out


def simulate_many(
    scen: Scenario,
    runs: Sequence[tuple[Deployment, float, int, int]],
    *,
    jobs: int | None = 1,
    progress: Callable[[], None] | None = None,
) -> list[SimResult | str]:
    """`simulate` of each (deployment, rate, requests, seed), over `jobs` processes, in order.
    A run the simulator cannot do (its PlannerError: the deployment does not fit, the run is too
    large, no placement) gives that error's one-line message in its place, so that it does not
    stop the other runs."""
    with _Runner(scen, jobs) as runner:
        futs = [runner.submit(_try_run_task, *r) for r in runs]
        out = []
        for fut in futs:
            out.append(fut.result())
            if progress is not None:
                progress()
    return out


def sim_goodput(
    dep: Deployment,
    scen: Scenario,
    *,
    guess: float | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    requests: int | None = None,
    rel_tol: float = 0.01,
    progress: Callable[[], None] | None = None,
    jobs: int | None = 1,
) -> SimGoodput:
    """Simulated goodput over `seeds` (guess: where to start looking, e.g. the analytical
    goodput); `jobs` processes search the seeds in parallel (`sim_goodputs`)."""
    task = GoodputTask(dep, guess, tuple(seeds), requests, rel_tol)
    return sim_goodputs(scen, [task], jobs=jobs, progress=progress)[0]

"""Goodput by simulation: the highest rate whose simulated attainment meets the SLO target,
found per seed by the same bracketing and brentq as the analytical goodput (docs/model.md
§6.6, §10.5), with a Student-t confidence interval over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from planner.deployment import Deployment
from planner.rootfind import highest_passing_rate
from planner.scenario import Scenario, deployment_problem
from planner.simulate.results import SimResult, max_simulated_rate
from planner.simulate.run import request_lifetime_s, simulate

DEFAULT_SEEDS = (0, 1, 2)


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
        return self.per_gpu - half, self.per_gpu + half


def seed_goodput(
    dep: Deployment, scen: Scenario, seed: int, requests: int, guess: float, rel_tol: float
) -> float:
    """One seed's goodput: `rootfind.highest_passing_rate` from the guess in 1.5× steps on the
    simulated attainment (a step function of the rate, made nearly monotone by the common
    random numbers of `draw_requests`)."""
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
    )


def sim_goodput(
    dep: Deployment,
    scen: Scenario,
    *,
    guess: float | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    requests: int | None = None,
    rel_tol: float = 0.01,
    progress: Callable[[], None] | None = None,
) -> SimGoodput:
    """Simulated goodput over `seeds` (guess: where to start looking, e.g. the analytical
    goodput)."""
    n = requests or default_requests(dep)
    if deployment_problem(dep, scen) is not None:
        return SimGoodput(dep, tuple(0.0 for _ in seeds), n, None)
    start = guess if guess and guess > 0 else 0.05 * dep.gpus
    rates = []
    for s in seeds:
        rates.append(seed_goodput(dep, scen, s, n, start, rel_tol))
        if progress is not None:
            progress()
    mean = float(np.mean(rates))
    at = simulate(dep, scen, mean, requests=n, seed=seeds[0]) if mean > 0 else None
    return SimGoodput(dep, tuple(rates), n, at)

"""`ecoplan plan --confirm`: re-evaluate the planner's top candidates with the simulator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from planner.search import PlanResult, Ranked
from planner.simulate.goodput import DEFAULT_SEEDS, GoodputTask, SimGoodput, sim_goodputs


@dataclass(frozen=True)
class Confirmation:
    """One candidate's analytical and simulated goodput."""

    ranked: Ranked
    sim: SimGoodput

    @property
    def gap(self) -> float:
        """(analytical − simulated) / simulated per-GPU goodput."""
        return self.sim.gap(self.ranked.goodput.per_gpu)


def to_confirm(res: PlanResult, top: int) -> list[Ranked]:
    """The first `top` feasible candidates of each strategy, best first."""
    return [r for items in res.per_strategy.values() for r in items[:top] if r.goodput.rate > 0]


def confirm(
    res: PlanResult,
    top: int = 1,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    progress: Callable[[], None] | None = None,
    jobs: int | None = 1,
) -> list[Confirmation]:
    """Simulated goodput (over `seeds`) of each strategy's top candidates, starting the search
    at the analytical goodput, in `jobs` processes (same results for any `jobs`)."""
    ranked = to_confirm(res, top)
    tasks = [GoodputTask(r.goodput.deployment, r.goodput.rate, tuple(seeds)) for r in ranked]
    sims = sim_goodputs(res.scenario, tasks, jobs=jobs, progress=progress)
    return [Confirmation(r, sim) for r, sim in zip(ranked, sims, strict=True)]

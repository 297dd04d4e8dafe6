"""The `plan` and `scale` pipelines: search → simulation check → sensitivity → KV-policy
tables → scaling over the rate ramp, as one result object that the renderers (markdown, JSON,
charts, terminal tables) turn into output. The CLI calls these and renders; nothing here
prints or writes files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from planner import search
from planner.config import PlanFile, RampSpec
from planner.ecoserve_paper import PaperComparison, compare_with_paper
from planner.parallel import fork_map
from planner.scaling import ScalePlan, scale
from planner.scenario import Scenario
from planner.search import PlanResult
from planner.sensitivity import SensitivityTable, kv_policy_tables, sensitivity_parts
from planner.strategies.predict import (
    Goodput,
    Percentiles,
    all_percentiles,
    preset_percentiles,
)

if TYPE_CHECKING:
    # the simulator is imported only when `confirm_top` asks for it
    from planner.crosscheck.confirm import Confirmation

# progress(task, completed, total): `task` names the stage ("search", "confirm", "sections");
# total is None while unknown
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class ScaleOutcome:
    """Each strategy's GPUs per step of a rate ramp (`ecoplan scale`, the report's section)."""

    plans: list[ScalePlan]
    ramp: RampSpec


@dataclass(frozen=True)
class PlanOutcome:
    """Everything `ecoplan plan` found: the ranked search, and the optional sections."""

    plan: PlanResult
    confirmed: list[Confirmation] | None = None
    sensitivity: list[SensitivityTable] | None = None
    kv_tables: list[SensitivityTable] | None = None
    scaling: ScaleOutcome | None = None
    paper: PaperComparison | None = None

    @property
    def scenario(self) -> Scenario:
        return self.plan.scenario


def _search(
    plan_file: PlanFile, scen: Scenario, progress: Progress | None, jobs: int | None = 1
) -> PlanResult:
    def tick(i: int, n: int) -> None:
        if progress is not None:
            progress("search", i, n)

    return search.plan(scen, plan_file.search, plan_file.objective, progress=tick, jobs=jobs)


def run_plan(
    plan_file: PlanFile,
    scen: Scenario,
    *,
    confirm_top: int | None = None,
    sections: bool = True,
    progress: Progress | None = None,
    jobs: int | None = 1,
) -> PlanOutcome:
    """Search the deployments; with `confirm_top`, re-measure that many top candidates per
    strategy by simulation; with `sections`, add the sensitivity, KV-policy and ramp-scaling
    tables (each re-solves goodput of the best deployment per strategy). The simulations of
    `confirm_top` and the sections run in `jobs` processes (None: the CPU count; the same
    results for any `jobs`)."""
    res = _search(plan_file, scen, progress, jobs)
    confirmed = None
    if confirm_top is not None:
        from planner.crosscheck.confirm import confirm, to_confirm
        from planner.simulate.goodput import DEFAULT_SEEDS

        total = len(to_confirm(res, confirm_top)) * len(DEFAULT_SEEDS)
        done = [0]

        def step() -> None:
            done[0] += 1
            if progress is not None:
                progress("confirm", done[0], total)

        confirmed = confirm(res, confirm_top, progress=step, jobs=jobs)
    if not sections:
        return PlanOutcome(res, confirmed)
    if progress is not None:
        progress("sections", 0, None)
    # the sections are independent re-solves of the search's best deployments: built in
    # parallel (forked workers, results in order, so the same for any `jobs`); the workers take
    # them in this order, so the costliest come first: the rate ramp, the SLO and burstiness
    # tables, the KV policies, the paper's shapes, and the bandwidth table (whose cells mostly
    # reuse the plan's goodputs)
    bandwidth, slo_scale, burstiness = sensitivity_parts(res)
    parts: dict[str, Callable[[], object]] = {}
    if res.winner:
        parts["scale"] = partial(scale, res, plan_file.ramp)
    # the latency percentiles the report and JSON read (each strategy's ranked deployments),
    # computed in a worker too instead of one by one here when the report is written
    ranked = [r.goodput for items in res.per_strategy.values() for r in items]
    parts["percentiles"] = partial(_report_percentiles, ranked)
    parts |= {
        "slo": slo_scale,
        "cv": burstiness,
        "kv": partial(kv_policy_tables, res),
        "paper": partial(compare_with_paper, res),
        "bandwidth": bandwidth,
    }
    built = dict(zip(parts, fork_map(list(parts.values()), jobs), strict=True))
    for g, values in zip(ranked, cast(list[Percentiles | None], built["percentiles"]), strict=True):
        if values is not None:
            preset_percentiles(g, values)
    sens = cast(list[SensitivityTable], [built["bandwidth"], built["slo"], built["cv"]])
    kv = cast(list[SensitivityTable], built["kv"])
    paper = cast(PaperComparison | None, built["paper"])
    scaling = (
        ScaleOutcome(cast(list[ScalePlan], built["scale"]), plan_file.ramp) if res.winner else None
    )
    return PlanOutcome(res, confirmed, sens, kv, scaling, paper)


def _report_percentiles(goodputs: list[Goodput]) -> list[Percentiles | None]:
    """`all_percentiles` of each goodput (the same values wherever computed: `predict` is a
    pure function of its arguments)."""
    return [all_percentiles(g) for g in goodputs]


def run_scale(
    plan_file: PlanFile, scen: Scenario, progress: Progress | None = None
) -> ScaleOutcome:
    """Plan the scenario, then scale each strategy's best deployment over the plan's ramp."""
    res = _search(plan_file, scen, progress)
    return ScaleOutcome(scale(res, plan_file.ramp), plan_file.ramp)

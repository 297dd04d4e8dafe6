"""Which GPU is cheapest for a workload (`ecoplan compare`): the plan file's model, workload,
SLO, objective and search space planned on a cluster of each GPU type in turn.

Each GPU gets the plan's node shape (or each shape of `nodes` × `gpus_per_node` asked for) and
the plan's inter-node network; the plan's `price_per_gpu_hour` and `intra_node` overrides
apply only to the plan's own GPU, every other GPU uses its profile's price and link. Only the
deployment search runs (no sensitivity, KV-policy or ramp sections), so a GPU costs one
`ecoplan plan --no-sensitivity`. A GPU on which the model fits no instance shape, or on which
no deployment meets the SLO, is kept with the reason and ranked last.

GPUs for the target rate are the plan's: ⌈target / goodput per GPU⌉ in whole replication
units of the best deployment (search.rank), and their cost per hour at the GPU's price. The
target is, in this order, the one asked for, the objective's `target_rate`, or the peak of the
plan's rate ramp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from planner import catalog, pipeline
from planner.config import MAX_RATE, ClusterSpec, PlanFile
from planner.errors import PlannerError
from planner.scenario import Scenario
from planner.search import PlanResult, Ranked
from planner.yamlio import validate

# progress(task, completed, total), as pipeline.Progress
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class GpuOption:
    """One GPU type on one cluster shape: its plan, or why it has none."""

    gpu: str  # as asked: a profile name or a YAML file
    nodes: int
    gpus_per_node: int
    price_per_gpu_hour: float
    plan: PlanResult | None  # None when the model fits no instance shape
    skipped: str | None  # why there is no best deployment; None when there is one

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def cluster_cost_per_hour(self) -> float:
        """The whole cluster's price per hour."""
        return self.total_gpus * self.price_per_gpu_hour

    @property
    def best(self) -> Ranked | None:
        """The plan's winner under the plan's objective (None when skipped)."""
        return self.plan.winner if self.plan is not None else None

    @property
    def shape(self) -> str:
        return f"{self.nodes}×{self.gpus_per_node}"


def _cost_key(o: GpuOption) -> tuple[float, float, str]:
    b = o.best
    if b is None:
        return (math.inf, math.inf, o.gpu)
    for_target = b.cost_per_hour if b.cost_per_hour is not None else math.inf
    return (for_target, b.cost_per_million_tokens, o.gpu)


@dataclass(frozen=True)
class Comparison:
    """Every GPU option, cheapest first for the target rate (then per million output tokens);
    skipped options last."""

    scenario: Scenario  # the plan's own (its model, workload and SLO are every option's)
    target_rate: float  # req/s
    target_source: str  # "--target-rate", "objective.target_rate" or "ramp peak"
    options: tuple[GpuOption, ...]

    @property
    def cheapest(self) -> GpuOption | None:
        first = self.options[0] if self.options else None
        return first if first is not None and first.best is not None else None


def _target(plan: PlanFile, target_rate: float | None) -> tuple[float, str]:
    if target_rate is not None:
        if not (math.isfinite(target_rate) and 0 < target_rate <= MAX_RATE):
            raise PlannerError(f"--target-rate: must be a rate in (0, {MAX_RATE:g}] req/s")
        return target_rate, "--target-rate"
    if plan.objective.target_rate is not None:
        return plan.objective.target_rate, "objective.target_rate"
    return max(plan.ramp.rates), "ramp peak"


def default_gpus(plan: PlanFile) -> list[str]:
    """Every shipped GPU profile, and the plan's own GPU when it is a profile file."""
    names = catalog.gpu_names()
    own = plan.cluster.gpu
    return [*names, own] if isinstance(own, str) and own not in names else names


def _cluster(plan: PlanFile, gpu: str, nodes: int, per_node: int) -> ClusterSpec:
    base = plan.cluster
    own = isinstance(base.gpu, str) and base.gpu == gpu
    data = {
        "gpu": gpu,
        "nodes": nodes,
        "gpus_per_node": per_node,
        "network": base.network,
        "intra_node": base.intra_node if own else None,
        "price_per_gpu_hour": base.price_per_gpu_hour if own else None,
    }
    return validate(ClusterSpec, data, f"cluster of {nodes}×{per_node} {gpu}")


def _option(
    plan: PlanFile, base_dir: Path, cluster: ClusterSpec, progress: Progress | None
) -> GpuOption:
    variant = plan.model_copy(update={"cluster": cluster})
    scen = variant.scenario(base_dir)
    price = scen.cluster.gpu_hour_price
    assert isinstance(cluster.gpu, str)
    args = (cluster.gpu, cluster.nodes, cluster.gpus_per_node, price)
    try:
        res = pipeline.run_plan(variant, scen, sections=False, progress=progress).plan
    except PlannerError as exc:  # no instance shape holds the model
        return GpuOption(*args, plan=None, skipped=str(exc).removeprefix("search: "))
    if res.winner is None:
        first = next(iter(res.infeasible.items()), None)
        why = f"; {first[0]}: {first[1]}" if first else ""
        return GpuOption(*args, plan=res, skipped=f"no deployment meets the SLO{why}")
    return GpuOption(*args, plan=res, skipped=None)


def compare(
    plan: PlanFile,
    base_dir: Path = Path("."),
    *,
    gpus: Sequence[str] | None = None,
    nodes: Sequence[int] | None = None,
    gpus_per_node: Sequence[int] | None = None,
    target_rate: float | None = None,
    progress: Progress | None = None,
) -> Comparison:
    """Plan `plan` on each of `gpus` (default: `default_gpus`) and each cluster shape of
    `nodes` × `gpus_per_node` (default: the plan's), ranked by cost for the target rate."""
    rate, source = _target(plan, target_rate)
    plan = plan.model_copy(
        update={"objective": plan.objective.model_copy(update={"target_rate": rate})}
    )
    scen = plan.scenario(base_dir)
    refs = list(dict.fromkeys(gpus if gpus is not None else default_gpus(plan)))
    if not refs:
        raise PlannerError("--gpus: no GPU to compare")
    for ref in refs:  # unknown names and bad files fail before any work
        try:
            catalog.gpu_ref(ref, base_dir)
        except PlannerError as exc:
            raise PlannerError(f"--gpus: {str(exc).removeprefix('gpu: ')}") from None
    shapes = [
        (n, g)
        for n in dict.fromkeys(nodes or [plan.cluster.nodes])
        for g in dict.fromkeys(gpus_per_node or [plan.cluster.gpus_per_node])
    ]
    clusters = [_cluster(plan, ref, n, g) for ref in refs for n, g in shapes]
    options = []
    for i, cluster in enumerate(clusters):
        if progress is not None:
            progress("compare", i, len(clusters))
        options.append(_option(plan, base_dir, cluster, progress))
    if progress is not None:
        progress("compare", len(clusters), len(clusters))
    options.sort(key=_cost_key)
    return Comparison(scen, rate, source, tuple(options))


__all__ = ["Comparison", "GpuOption", "compare", "default_gpus"]

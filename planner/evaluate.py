"""Evaluate fixed deployments: goodput and attainment vs rate (`ecoplan evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.deployment import Deployment
from planner.errors import PlannerError
from planner.scenario import Scenario
from planner.strategies import Goodput, Prediction, goodput, predict

TP_CHOICES = (1, 2, 4, 8)


def smallest_fitting_tp(scen: Scenario) -> int:
    """The smallest TP (one node at most) whose instance holds the weights and a full request,
    as in EcoServe's setup (TP=4 for 30B/34B models, TP=8 for 72B on L20)."""
    for tp in TP_CHOICES:
        if tp <= scen.cluster.gpus_per_node and scen.instance(tp, 1).memory.fits:
            return tp
    reasons = {tp: scen.instance(tp, 1).memory.reason for tp in TP_CHOICES}
    raise PlannerError(f"model: {scen.model.name} fits no instance of up to 8 GPUs: {reasons[8]}")


def default_deployments(scen: Scenario) -> list[Deployment]:
    """One deployment per strategy on the whole cluster at the smallest fitting TP: NoDG with
    every instance, FuDG split half/half, PaDG as one macro instance of every instance."""
    tp = smallest_fitting_tp(scen)
    n = scen.cluster.total_gpus // tp
    half = max(n // 2, 1)
    return [
        Deployment("vllm", tp=tp, instances=n),
        Deployment("sarathi", tp=tp, instances=n, chunk_tokens=512),
        Deployment("distserve", tp=tp, instances=half, decode_instances=max(n - half, 1)),
        Deployment("mooncake", tp=tp, instances=half, decode_instances=max(n - half, 1)),
        Deployment("ecoserve", tp=tp, instances=n, macro_size=n),
    ]


@dataclass(frozen=True)
class Evaluation:
    results: list[Goodput]
    rates: list[float]
    table: list[list[Prediction]]  # table[i][j]: deployment i at rates[j]


def evaluate(
    scen: Scenario, deployments: list[Deployment], rates: list[float] | None
) -> Evaluation:
    """Goodput of each deployment and its predictions at a common list of rates (default: six
    rates spread geometrically from a quarter to 1.5× the best goodput)."""
    results = [goodput(d, scen) for d in deployments]
    if rates is None:
        best = max((r.rate for r in results), default=0.0)
        rates = list(np.geomspace(best / 4, best * 1.5, 6)) if best > 0 else [1.0]
    table = [[predict(d, scen, r, percentiles=False) for r in rates] for d in deployments]
    return Evaluation(results=results, rates=rates, table=table)

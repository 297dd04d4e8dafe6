"""The interface every strategy model implements (docs/model.md §7.1).

A strategy model maps (deployment, scenario, request rate) to per-request latency distributions
over the scenario's stratified sample of request lengths (`Latencies`: TTFT and TPOT CDFs, and
the probability of meeting a per-token gap bound), or says which resource
has no steady state at that rate (`Unstable`). `strategies.predict` turns them into attainment,
percentiles and goodput.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from planner.deployment import Deployment
from planner.scenario import Scenario


@dataclass(frozen=True)
class Latencies:
    """A strategy model's answer at one rate: per-request CDFs plus the state behind them."""

    ttft_cdf: Callable[[float], np.ndarray]
    tpot_cdf: Callable[[float], np.ndarray]
    decode_batch: float
    utilisation: dict[str, float]
    network_bytes_s: float
    ttft_driver: str  # what sets TTFT (e.g. "prefill queue, util 0.62")
    tpot_driver: str  # what sets TPOT
    # per-request P(at most m of its inter-token gaps exceed bound_s), given (bound_s, m per
    # request): the per-token gap (TBT) SLO of docs/model.md §4.3; None: not modelled (always met)
    tbt_cdf: Callable[[float, np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class Unstable:
    """No steady state at this rate: some resource is overloaded."""

    constraint: str  # "prefill capacity", "decode capacity", "KV memory", "network", ...
    detail: str
    utilisation: dict[str, float] = field(default_factory=dict)


Model = Callable[[Deployment, Scenario, float], "Latencies | Unstable"]

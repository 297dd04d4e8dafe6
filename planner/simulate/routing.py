"""How the simulator's front ends pick an instance (docs/model.md §10.3).

Real routers do not split a stream at random: a stateless load balancer in front of vLLM
replicas cycles through them (round-robin), and DistServe- and MoonCake-style schedulers send a
prefilled request to the decode instance with the least work. `random` (a uniformly random
instance per request, the exact Poisson split) is kept for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

Routing = Literal["round-robin", "random"]
ROUTINGS: tuple[str, ...] = get_args(Routing)


def first_targets(routing: Routing, requests: int, instances: int, seed: int) -> list[int]:
    """The instance each of `requests` arrivals goes to, in arrival order: request i to
    i mod n under round-robin (an instance sees every n-th arrival), or a uniformly random
    instance (seeded) under `random`."""
    if routing == "round-robin":
        return (np.arange(requests) % instances).tolist()
    return np.random.default_rng([seed, 3]).integers(0, instances, requests).tolist()


def least_loaded(loads: Sequence[int], candidates: Sequence[int]) -> int:
    """The candidate instance with the fewest requests (running plus queued); ties go to the
    lowest index, so the choice is deterministic."""
    return min(candidates, key=lambda j: (loads[j], j))

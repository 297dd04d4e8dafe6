"""Request streams for the simulator: arrival times and sampled lengths (docs/model.md §10.1).

Inter-arrival gaps are drawn at unit rate (exponential for Poisson, Gamma with shape 1/CV² for
bursty arrivals) and divided by the request rate, so the streams for two rates under one seed
are the same requests, only closer together: the common random numbers that make simulated
attainment nearly monotone in the rate, so root finding on it is well posed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.workload import Workload


@dataclass(frozen=True)
class RequestStream:
    """n requests: arrival times (s, increasing), input and output lengths (tokens)."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    @property
    def size(self) -> int:
        return int(self.arrival_s.size)


def unit_gaps(workload: Workload, n: int, seed: int) -> np.ndarray:
    """n inter-arrival gaps with mean 1 and the workload's coefficient of variation."""
    rng = np.random.default_rng([seed, 1])
    arr = workload.arrivals
    if arr.process == "poisson":
        return rng.exponential(1.0, n)
    shape = 1.0 / arr.ca2
    return rng.gamma(shape, 1.0 / shape, n)


def draw_requests(
    workload: Workload, max_context: int, n: int, rate: float, seed: int
) -> RequestStream:
    """A seeded stream of n requests at `rate` requests/s. Lengths are independent draws from
    the workload's distributions; inputs are cut so input + output fits the context."""
    gaps = unit_gaps(workload, n, seed)
    rng = np.random.default_rng([seed, 2])
    out = workload.output.quantiles(rng.random(n), cap=max_context - 1)
    inp = workload.input.quantiles(rng.random(n), cap=max_context - 1)
    inp = np.minimum(inp, max_context - out)
    return RequestStream(
        arrival_s=np.cumsum(gaps) / rate,
        input_tokens=inp.astype(np.int64),
        output_tokens=out.astype(np.int64),
    )

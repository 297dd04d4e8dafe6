"""Request streams for the simulator: arrival times and sampled lengths (docs/model.md §10.1).

Inter-arrival gaps are drawn at unit rate (exponential for Poisson, Gamma with shape 1/CV² for
bursty arrivals) and divided by the request rate, so the streams for two rates under one seed
are the same requests, only closer together: the common random numbers that make simulated
attainment nearly monotone in the rate, so root finding on it is well posed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.workload import Workload, cached_prefix_tokens


@dataclass(frozen=True)
class RequestStream:
    """n requests: arrival times (s, increasing), input and output lengths (tokens), and the
    prompt tokens each finds in the prefix cache (None: none)."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray | None = None

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
    workload: Workload,
    max_context: int,
    n: int,
    rate: float,
    seed: int,
    cache_block_tokens: int = 0,
) -> RequestStream:
    """A seeded stream of n requests at `rate` requests/s. Lengths are independent draws from
    the workload's distributions; inputs are cut so input + output fits the context. With
    `cache_block_tokens` > 0 (the engine reuses cached prefixes in blocks of that size),
    requests start with the workload's shared prefix with its probability (`prefix_hits`)."""
    gaps = unit_gaps(workload, n, seed)
    rng = np.random.default_rng([seed, 2])
    out = workload.output.quantiles(rng.random(n), cap=max_context - 1)
    inp = workload.input.quantiles(rng.random(n), cap=max_context - 1)
    inp = np.minimum(inp, max_context - out).astype(np.int64)
    cached = None
    if cache_block_tokens > 0 and workload.prefix is not None:
        hit = prefix_hits(workload.prefix.share, n, seed)
        cached = cached_prefix_tokens(inp, hit, workload.prefix.tokens, cache_block_tokens)
    return RequestStream(
        arrival_s=np.cumsum(gaps) / rate,
        input_tokens=inp,
        output_tokens=out.astype(np.int64),
        cached_tokens=cached,
    )


def prefix_hits(share: float, n: int, seed: int) -> np.ndarray:
    """Which of n requests start with the shared prefix: each independently with probability
    `share`, from a random stream of its own (docs/model.md §10.1), so that lengths and arrivals
    are the same requests whatever the share, and a larger share only adds hits."""
    return np.random.default_rng([seed, 5]).random(n) < share

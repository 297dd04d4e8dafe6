"""What one simulation measured: per-request TTFT/TPOT, SLO attainment, percentiles,
utilisation and the Little's-law check (docs/model.md §10.4)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.errors import PlannerError
from planner.workload import SLO

WARMUP_LIVES = 1.5  # arrivals during the first 1.5 request lifetimes fill the system
COOLDOWN_LIVES = 0.5  # and arrivals after the measured ones keep it loaded while they finish


@dataclass(frozen=True)
class SimResult:
    """Measured service quality of one deployment at one rate (the `requests` measured requests
    only; see `measured_window`)."""

    rate: float
    requests: int
    attainment: float
    ttft_attainment: float
    tpot_attainment: float
    tbt_attainment: float | None  # share meeting the per-token gap bound (None: no bound)
    ttft_s: dict[int, float]
    tpot_s: dict[int, float]
    mean_ttft_s: float
    mean_tpot_s: float
    e2e_s: dict[int, float]  # end-to-end latency (arrival to last token) percentiles
    mean_e2e_s: float
    utilisation: dict[str, float]
    mean_decode_batch: float
    preemptions: int
    in_system_mean: float  # time-average number of requests in the system (measured window)
    little_rate_x_sojourn: float  # arrival rate × mean time in system over the same window
    makespan_s: float


def measured_window(requests: int, rate: float, lifetime_s: float) -> tuple[int, slice]:
    """(total requests to simulate, which of them to measure): `requests` measured arrivals
    after a warm-up of WARMUP_LIVES typical lifetimes (so the decode batch has built up), then
    COOLDOWN_LIVES lifetimes more arrivals so the last measured ones finish under load."""
    warm = math.ceil(rate * WARMUP_LIVES * lifetime_s)
    cool = math.ceil(rate * COOLDOWN_LIVES * lifetime_s)
    return warm + requests + cool, slice(warm, warm + requests)


# Memory a simulation needs, measured with tracemalloc on every strategy (~380 bytes per
# simulated request: the request stream, the per-request table and lists of the event loop, and
# the result arrays), rounded up; plus ~4.4–5.1 KB per instance (its state, queues, heaps and
# statistics: tracemalloc peak over 1,000 and 4,000 TP1 vLLM instances at 100 requests),
# rounded up. Runs past MAX_SIM_BYTES — about
# half a million simulated requests, a minute or more at the simulator's 3,000–10,000 requests
# per second — are refused before anything is allocated (`check_simulation_size`).
SIM_BYTES_PER_REQUEST = 512
SIM_BYTES_PER_INSTANCE = 6144
MAX_SIM_BYTES = 256 << 20  # 256 MiB
_MIB = float(1 << 20)


def simulation_requests(requests: int, rate: float, lifetime_s: float) -> float:
    """Requests a run simulates (`measured_window`'s total) as a float, safe for any rate."""
    return requests + rate * (WARMUP_LIVES + COOLDOWN_LIVES) * lifetime_s + 2.0


def max_simulated_rate(requests: int, lifetime_s: float, instances: int) -> float:
    """The highest rate whose simulation of `requests` measured requests fits MAX_SIM_BYTES
    (0 when even the measured requests alone do not fit)."""
    room = (MAX_SIM_BYTES - instances * SIM_BYTES_PER_INSTANCE) / SIM_BYTES_PER_REQUEST
    spare = room - requests - 2.0
    if spare <= 0 or lifetime_s <= 0:
        return 0.0 if spare <= 0 else math.inf
    return spare / ((WARMUP_LIVES + COOLDOWN_LIVES) * lifetime_s)


def check_simulation_size(requests: int, rate: float, lifetime_s: float, instances: int) -> None:
    """A PlannerError naming --rate and --requests when a run would need more than
    MAX_SIM_BYTES: its warm-up and cool-down add (WARMUP_LIVES + COOLDOWN_LIVES) request
    lifetimes of arrivals to the measured requests."""
    total = simulation_requests(requests, rate, lifetime_s)
    need = total * SIM_BYTES_PER_REQUEST + instances * SIM_BYTES_PER_INSTANCE
    if need <= MAX_SIM_BYTES:
        return
    top = max_simulated_rate(requests, lifetime_s, instances)
    most = int(MAX_SIM_BYTES / SIM_BYTES_PER_REQUEST)
    fix = (
        f"lower --rate to at most {top:.3g} or --requests"
        if top > 0
        else f"lower --requests (at most ~{most:,} in all)"
    )
    raise PlannerError(
        f"simulate: {rate:g} req/s (--rate) with {requests:,} measured requests (--requests) "
        f"needs {total:.3g} simulated requests, ~{need / _MIB:.3g} MiB (warm-up and cool-down "
        f"add {WARMUP_LIVES + COOLDOWN_LIVES:g} request lifetimes of {lifetime_s:.3g} s of "
        f"arrivals), over the {MAX_SIM_BYTES / _MIB:.0f} MiB limit; {fix}"
    )


def latencies(
    arrival_s: np.ndarray, first_decode_s: np.ndarray, finish_s: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """TTFT = first decode step start − arrival; TPOT = (finish − first decode) / steps (0 for
    single-token outputs), as EcoServe measures them."""
    ttft = first_decode_s - arrival_s
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(steps > 0, (finish_s - first_decode_s) / np.maximum(steps, 1), 0.0)
    return ttft, np.nan_to_num(tpot, nan=math.inf)


def attainment(
    ttft: np.ndarray, tpot: np.ndarray, slo: SLO, gaps_ok: np.ndarray | None = None
) -> tuple[float, float, float]:
    """(SLO attainment, TTFT attainment, TPOT attainment): joint or the weakest metric.
    `gaps_ok` says per request whether it met the per-token gap bound (docs/model.md §4.3),
    when the SLO sets one."""
    ok_t = ttft <= slo.ttft_s
    ok_p = tpot <= slo.tpot_s
    a_t, a_p = float(ok_t.mean()), float(ok_p.mean())
    if gaps_ok is None:
        joint = float((ok_t & ok_p).mean()) if slo.joint else min(a_t, a_p)
    else:
        a_g = float(gaps_ok.mean())
        joint = float((ok_t & ok_p & gaps_ok).mean()) if slo.joint else min(a_t, a_p, a_g)
    return joint, a_t, a_p


def little_check(arrival_s: np.ndarray, finish_s: np.ndarray, win: slice) -> tuple[float, float]:
    """(time-average number in system, λ·W) over the measured window [t0, t1]: N(t) counted
    from arrival and finish events, λ the arrivals in the window per second, W the mean time
    in system of those arrivals. Little's law says the two agree."""
    n = arrival_s.size
    t0, t1 = float(arrival_s[win.start]), float(arrival_s[win.stop - 1])
    if not (t1 > t0) or not np.all(np.isfinite(finish_s)):
        return math.nan, math.nan
    times = np.concatenate([arrival_s, finish_s])
    delta = np.concatenate([np.ones(n), -np.ones(n)])
    order = np.argsort(times, kind="stable")
    times, count = times[order], np.cumsum(delta[order])
    # area of N(t) over [t0, t1]: segments [times[i], times[i+1]) at level count[i]
    left = np.clip(times[:-1], t0, t1)
    right = np.clip(times[1:], t0, t1)
    area = float(np.sum(count[:-1] * (right - left)))
    inside = (arrival_s >= t0) & (arrival_s <= t1)
    rate = float(inside.sum()) / (t1 - t0)
    sojourn = float(np.mean(finish_s[inside] - arrival_s[inside]))
    return area / (t1 - t0), rate * sojourn

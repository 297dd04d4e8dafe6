"""Queueing formulas (docs/model.md §6): waiting times, tails, compound interruptions, decode batch.

Pure functions on floats and numpy arrays. Times in seconds, rates in requests per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


def allen_cunneen_wait_s(
    rate: float, mean_s: float, second_moment_s2: float, ca2: float = 1.0, servers: int = 1
) -> float:
    """Mean wait in a G/G/c queue (Allen–Cunneen): E[W] = (ca² + cs²)/2 · C(c, a)·E[S]/(c − a),
    a = λ·E[S] the offered load and C the Erlang C probability of waiting (`erlang_c`).

    With one server C = ρ, so E[W] = (ca² + cs²)/2 · ρ/(1−ρ) · E[S]; with Poisson arrivals
    (ca² = 1) that is exactly Pollaczek–Khinchine, λE[S²]/(2(1−ρ)). Returns inf when a ≥ c.
    """
    offered = rate * mean_s
    if offered >= servers:
        return float("inf")
    if mean_s <= 0.0:
        return 0.0
    cs2 = max(second_moment_s2 / mean_s**2 - 1.0, 0.0)
    return (ca2 + cs2) / 2.0 * erlang_c(servers, offered) * mean_s / (servers - offered)


def md1_mean_ttft_s(rate: float, service_s: float) -> float:
    """DistServe's M/D/1 prefill TTFT: Avg_TTFT = D + R·D² / (2(1 − R·D))."""
    rho = rate * service_s
    if rho >= 1.0:
        return float("inf")
    return service_s + rate * service_s**2 / (2.0 * (1.0 - rho))


@dataclass(frozen=True)
class ExpTailWait:
    """Waiting time with an atom at 0 and an exponential tail (docs/model.md §6.2):
    P(W > t) = p_wait · exp(−t / m), where m = E[W] / p_wait is the mean wait of those who wait."""

    p_wait: float
    mean_s: float

    @property
    def mean_if_waiting_s(self) -> float:
        return self.mean_s / self.p_wait if self.p_wait > 0 else 0.0

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.p_wait <= 0.0 or self.mean_s <= 0.0:
            return np.where(t >= 0.0, 1.0, 0.0)
        if not np.isfinite(self.mean_s):
            return np.zeros_like(t)
        tail = self.p_wait * np.exp(-np.maximum(t, 0.0) / self.mean_if_waiting_s)
        return np.where(t >= 0.0, 1.0 - tail, 0.0)

    def plus(self, other: ExpTailWait) -> ExpTailWait:
        """Sum of two independent waits, kept in the same family: P(wait) = 1 − (1−p1)(1−p2),
        mean = mean1 + mean2 (a moment-preserving approximation)."""
        p = 1.0 - (1.0 - self.p_wait) * (1.0 - other.p_wait)
        return ExpTailWait(p_wait=p, mean_s=self.mean_s + other.mean_s)


def mg1_wait(rate: float, mean_s: float, second_moment_s2: float, ca2: float = 1.0) -> ExpTailWait:
    """M/G/1 (G/G/1) wait as an ExpTailWait: P(wait) = ρ, mean from Allen–Cunneen."""
    return mgc_wait(rate, 1, mean_s, second_moment_s2, ca2)


def erlang_c(servers: int, offered: float) -> float:
    """Erlang C: probability that an arrival to an M/M/c queue with offered load a = λ·E[S]
    (c servers) waits, from the Erlang B recursion B_k = a·B_{k−1}/(k + a·B_{k−1}) and
    C = c·B_c / (c − a·(1 − B_c)). Returns 1 when a ≥ c."""
    if offered >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1.0 - b))


def mgc_wait(
    rate: float, servers: int, mean_s: float, second_moment_s2: float, ca2: float = 1.0
) -> ExpTailWait:
    """G/G/c wait as an ExpTailWait: P(wait) = Erlang C (ρ for one server), mean from
    Allen–Cunneen (`allen_cunneen_wait_s`); certain and endless when a = λ·E[S] ≥ c."""
    offered = rate * mean_s
    if offered >= servers:
        return ExpTailWait(p_wait=1.0, mean_s=float("inf"))
    return ExpTailWait(
        p_wait=erlang_c(servers, offered),
        mean_s=allen_cunneen_wait_s(rate, mean_s, second_moment_s2, ca2, servers),
    )


# Below this Gamma shape `compound_cdf` evaluates the regularised incomplete gamma function
# exactly; from it on, the Wilson–Hilferty cube-root normal approximation, whose absolute CDF
# error is at most 6.1e-4 at shape 10 and falls about as 0.006/shape beyond (measured against
# scipy's gammainc: tests/test_queueing.py bounds it by 7e-4; docs/model.md §6.3).
WILSON_HILFERTY_MIN_SHAPE = 10.0


def gamma_cdf_wilson_hilferty(ratio: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """P(G ≤ x) for G ~ Gamma(shape k, mean μ) at ratio = x/μ by Wilson & Hilferty (1931): (G/μ)^⅓
    is nearly normal with mean 1 − 1/(9k) and variance 1/(9k), so the CDF is
    Φ((ratio^⅓ − 1 + c)/√c) with c = 1/(9k) (docs/model.md §6.3). Vectorised, no special
    function but Φ; accurate to ~0.006/k in absolute CDF for k ≥ 1."""
    c = 1.0 / (9.0 * shape)
    z = np.cbrt(ratio)
    z -= 1.0
    z += c
    z /= np.sqrt(c)
    return special.ndtr(z)


def compound_cdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """P(X ≤ x) for a compound (Poisson or renewal) sum X approximated by a moment-matched Gamma
    (shape mean²/var, scale var/mean); X = 0 when its mean is 0 (docs/model.md §6.3).

    Shapes below WILSON_HILFERTY_MIN_SHAPE use the exact regularised incomplete gamma function
    (scipy's gammainc), larger ones the Wilson–Hilferty approximation
    (`gamma_cdf_wilson_hilferty`, absolute error ≤ 7e-4 there), which is several times cheaper
    on the (requests × phases) arrays of the PaDG TPOT model."""
    x = np.asarray(x, dtype=float)
    mean = np.asarray(mean, dtype=float)
    var = np.maximum(np.asarray(var, dtype=float), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shape = mean**2 / var
        ratio = np.maximum(x, 0.0) / np.maximum(mean, 1e-300)
        shape, ratio = np.broadcast_arrays(shape, ratio)
        out = np.array(gamma_cdf_wilson_hilferty(ratio, shape), dtype=float, ndmin=0)
        exact = shape < WILSON_HILFERTY_MIN_SHAPE
        if exact.any():
            k = shape[exact]
            out[exact] = special.gammainc(k, ratio[exact] * k)
        # a zero variance (infinite shape) leaves the point mass at the mean
        point = np.isinf(shape)
        if point.any():
            out[point] = np.where(ratio[point] >= 1.0, 1.0, 0.0)
    # the masks below are rare: set only where they hold
    for mask, value in ((mean <= 0.0, 1.0), (x < 0.0, 0.0)):
        if mask.any():
            out[np.broadcast_to(mask, out.shape)] = value
    return out


def compound_moments(
    rate: float, horizon_s: np.ndarray, job_mean: float, job_m2: float, ca2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the work arriving in `horizon_s` from a renewal stream of `rate` whose
    jobs have mean `job_mean` and second moment `job_m2`. Counts have mean λT and variance
    ca²·λT (renewal CLT), so Var = λT·(Var[job] + ca²·E[job]²); Poisson gives λT·E[job²]."""
    n = rate * np.asarray(horizon_s, dtype=float)
    var_job = max(job_m2 - job_mean**2, 0.0)
    return n * job_mean, n * (var_job + ca2 * job_mean**2)


def solve_decode_batch(
    arrival_rate: float, mean_steps: float, step_s: np.ndarray, slowdown: np.ndarray | float = 1.0
) -> float | None:
    """Decode batch B from Little's law: B = λ · E[steps] · TPOT(B), TPOT(B) = step_s[B]·slowdown.

    `step_s[b]` is the step time at batch b (index 0 is batch 0, unused). Returns the smallest
    B ≥ 0 where λ·E[n]·TPOT(B) ≤ B (the stable equilibrium, linear interpolation between grid
    points), or None when the grid's largest batch cannot keep up (decode overloaded)."""
    b = np.arange(step_s.size, dtype=float)
    demand = arrival_rate * mean_steps * np.asarray(step_s, dtype=float) * slowdown
    excess = demand - b
    if arrival_rate <= 0.0:
        return 0.0
    ok = np.nonzero(excess[1:] <= 0.0)[0]
    if ok.size == 0:
        return None
    i = int(ok[0]) + 1
    # demand(B) − B crosses zero between i−1 and i
    lo, hi = excess[i - 1], excess[i]
    if i == 1:
        # below one request in flight, batch ≈ λ·E[n]·TPOT(1)
        return float(demand[1])
    frac = lo / (lo - hi) if lo != hi else 1.0
    return float(i - 1 + frac)

"""Queueing formulas (docs/model.md §6): waiting times, tails, compound interruptions, decode batch.

Pure functions on floats and numpy arrays. Times in seconds, rates in requests per second.
"""

from __future__ import annotations

import math
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


class CompoundGamma:
    """The moment-matched Gamma of a compound sum (shape mean²/var, scale var/mean; docs/model.md
    §6.3) with everything that does not depend on x computed once: a strategy model's CDF is
    evaluated at many x (SLO bounds, percentile searches) for the same moments. `cdf(x)` is
    `compound_cdf(x, mean, var)`.

    Shapes k from WILSON_HILFERTY_MIN_SHAPE on use Wilson & Hilferty (1931): (G/μ)^⅓ is nearly
    normal with mean 1 − c and variance c, c = 1/(9k), so P(G ≤ x) = Φ(((x/μ)^⅓ − 1 + c)/√c),
    accurate to ~0.006/k in absolute CDF; smaller shapes use scipy's exact `gammainc`."""

    def __init__(self, mean: np.ndarray, var: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=float)
        var = np.maximum(np.asarray(var, dtype=float), 1e-300)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.shape = self.mean**2 / var
            self.inv_mean = 1.0 / np.maximum(self.mean, 1e-300)
            self.c = 1.0 / (9.0 * self.shape)  # Wilson–Hilferty: (G/μ)^⅓ ~ N(1 − c, c)
            self.offset = self.c - 1.0
            self.inv_sd = 1.0 / np.sqrt(self.c)
        self.exact = self.shape < WILSON_HILFERTY_MIN_SHAPE
        self.any_exact = bool(self.exact.any())
        # where x has the moments' own shape (the common case), the exact entries by flat index
        self._exact_at = np.flatnonzero(self.exact)
        self._exact_shape = self.shape.reshape(-1)[self._exact_at]
        self.point = np.isinf(self.shape)  # zero variance: a point mass at the mean
        self.any_point = bool(self.point.any())
        self.empty = self.mean <= 0.0
        self.any_empty = bool(self.empty.any())

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = np.maximum(x, 0.0) * self.inv_mean
            z = np.cbrt(ratio)
            z += self.offset
            z *= self.inv_sd
            out = special.ndtr(z)
            if not isinstance(out, np.ndarray) or out.ndim == 0:
                out = np.array(out, dtype=float, ndmin=0)
            if self.any_exact and out.shape == self.shape.shape:
                at, k = self._exact_at, self._exact_shape
                np.put(out, at, special.gammainc(k, ratio.reshape(-1)[at] * k))
            elif self.any_exact:
                exact = np.broadcast_to(self.exact, out.shape)
                k = np.broadcast_to(self.shape, out.shape)[exact]
                out[exact] = special.gammainc(k, ratio[exact] * k)
            if self.any_point:
                point = np.broadcast_to(self.point, out.shape)
                out[point] = np.where(ratio[point] >= 1.0, 1.0, 0.0)
        # the masks below are rare: set only where they hold
        if self.any_empty:
            out[np.broadcast_to(self.empty, out.shape)] = 1.0
        negative = x < 0.0
        if negative.any():
            out[np.broadcast_to(negative, out.shape)] = 0.0
        return out


def compound_cdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """P(X ≤ x) for a compound (Poisson or renewal) sum X approximated by a moment-matched Gamma
    (shape mean²/var, scale var/mean); X = 0 when its mean is 0 (docs/model.md §6.3).

    Shapes below WILSON_HILFERTY_MIN_SHAPE use the exact regularised incomplete gamma function
    (scipy's gammainc), larger ones the Wilson–Hilferty approximation
    (`CompoundGamma`, absolute error ≤ 7e-4 there), which is several times cheaper
    on the (requests × phases) arrays of the PaDG TPOT model. `CompoundGamma` keeps the
    x-independent parts for repeated evaluation."""
    return CompoundGamma(mean, var).cdf(x)


def routed_ca2(ca2: float, instances: int, routing: str = "round-robin") -> float:
    """Squared CV of the arrivals one of `instances` instances sees when a renewal stream of
    squared CV `ca2` is split over them (docs/model.md §6.7). Round-robin: an instance gets
    every n-th arrival, so its gap is a sum of n independent gaps, mean n/λ and variance
    n·ca²/λ², and ca²/n. Random (each arrival to a uniformly random instance, p = 1/n): its gap
    is a geometric sum of gaps, which gives p·ca² + 1 − p (a Poisson stream stays Poisson)."""
    n = max(int(instances), 1)
    if routing == "round-robin":
        return ca2 / n
    if routing == "random":
        return ca2 / n + 1.0 - 1.0 / n
    raise ValueError(f"routing must be round-robin or random, got {routing!r}")


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


def infinite_server_kappa(service: np.ndarray) -> float:
    """κ = ∫(1 − G(t))² dt / E[S] = E[min(S₁, S₂)]/E[S] for two independent service times
    (docs/model.md §6.8): 1 for constant service, 1/2 for exponential. `service` is an equally
    weighted sample (any unit); E[min] over it is Σ_k s_(k)·(2(N − k) + 1)/N², s sorted
    ascending, k = 1..N (the chance that the smaller of two draws is the k-th value)."""
    s = np.sort(np.asarray(service, dtype=float).ravel())
    mean = float(s.mean()) if s.size else 0.0
    if mean <= 0.0:
        return 0.0
    size = s.size
    weights = (2.0 * (size - np.arange(1, size + 1)) + 1.0) / size**2
    return float(np.dot(s, weights)) / mean


def infinite_server_peakedness(ca2: float, kappa: float) -> float:
    """Peakedness z = Var[N]/E[N] of the number N in a GI/G/∞ system (docs/model.md §6.8):
    z ≈ 1 + (c_a² − 1)·κ, κ from `infinite_server_kappa` (Whitt's heavy-traffic approximation
    for GI/G/∞; exact for Poisson arrivals, z = 1, the M/G/∞ population being Poisson),
    floored at 0."""
    return max(1.0 + (ca2 - 1.0) * kappa, 0.0)


def time_average_variance_factor(horizon: np.ndarray, correlation: float) -> np.ndarray:
    """Var of the time average over a horizon L of a stationary process with autocorrelation
    e^{−τ/θ}, relative to its point variance (docs/model.md §6.8):
    v = (2/L²)∫₀ᴸ (L − τ)e^{−τ/θ} dτ = 2(x − 1 + e^{−x})/x², x = L/θ (1 at L = 0, → 2/x for
    long horizons). `horizon` and `correlation` (θ) in the same unit."""
    x = np.asarray(horizon, dtype=float) / max(correlation, 1e-300)
    small = x < 1e-6
    xs = np.where(small, 1.0, x)
    v = 2.0 * (xs - 1.0 + np.exp(-xs)) / xs**2
    return np.where(small, 1.0, v)


def count_cdf(m: np.ndarray, mean: np.ndarray, dispersion: float) -> np.ndarray:
    """P(K ≤ m) for an event count K of mean `mean` and variance `dispersion`·mean
    (docs/model.md §6.9): Poisson (P(K ≤ m) = Q(m + 1, μ), the regularised upper incomplete gamma)
    when the dispersion is at most 1, else negative binomial with r = μ/(D − 1) and success
    probability 1/D (P(K ≤ m) = I_{1/D}(r, m + 1), the regularised incomplete beta). A renewal
    count over a long window has dispersion c_a² (Cox); the Poisson case is used below 1, which
    overstates the spread of smoother streams slightly. m < 0 gives 0."""
    m = np.floor(np.asarray(m, dtype=float))
    mu = np.maximum(np.asarray(mean, dtype=float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if dispersion <= 1.0:
            out = special.gammaincc(np.maximum(m, 0.0) + 1.0, mu)
        else:
            r = np.maximum(mu / (dispersion - 1.0), 1e-300)
            out = special.betainc(r, np.maximum(m, 0.0) + 1.0, 1.0 / dispersion)
    out = np.where(mu <= 0.0, 1.0, out)
    return np.where(m < 0.0, 0.0, out)


def renewal_count_cdf(m: np.ndarray, mean: np.ndarray, gap_scv: float) -> np.ndarray:
    """P(K ≤ m) for the number K of events of a Gamma renewal stream (inter-event times of
    squared CV `gap_scv`) in a window that opens at one of its events, `mean` the stream's
    rate × the window (docs/model.md §6.9): at most m events follow within L iff the sum of
    m + 1 gaps exceeds L, and that sum is Gamma with shape (m + 1)/c² and rate λ/c², so
    P(K ≤ m) = Q((m + 1)/c², λL/c²), the regularised upper incomplete gamma. c² = 1 is the
    Poisson count; a smoother stream (c² < 1, e.g. every n-th arrival of a round-robin router)
    seldom puts an event right after the one that opened the window, a burstier one often
    does. m < 0 gives 0, a zero mean 1."""
    m = np.floor(np.asarray(m, dtype=float))
    mu = np.maximum(np.asarray(mean, dtype=float), 0.0)
    c2 = max(float(gap_scv), 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = special.gammaincc((np.maximum(m, 0.0) + 1.0) / c2, mu / c2)
    out = np.where(mu <= 0.0, 1.0, out)
    return np.where(m < 0.0, 0.0, out)


# `renewal_compound_cdf` mixes over N = 0, 1, … up to about this mean count, a single Gamma past it
RENEWAL_MIXTURE_MAX_COUNT = 400.0


def renewal_compound_cdf(
    m: np.ndarray,
    mean_count: np.ndarray,
    gap_scv: float,
    p_positive: float,
    positive_mean: float,
    positive_var: float = 0.0,
) -> np.ndarray:
    """P(X ≤ m) for X the sum of the items (whole numbers ≥ 0: long stalls, long iterations per
    prompt) that the events of a Gamma renewal stream bring in a window that opens at one of its
    events, `mean_count` its rate × the window (docs/model.md §6.9). An item is positive with
    probability `p_positive`, then of the given mean and variance. Over the stream's count N
    (`renewal_count_cdf`) and the number J ~ Binomial(N, p) of positive items among its events,
    P(X ≤ m) = Σ_k P(N = k) Σ_j P(J = j | k)·P(S_j ≤ m), the sum S_j of j positive items a
    moment-matched Gamma (§6.3) taken at m + ½ (exact for items of one size) and S_0 = 0. The
    mixture keeps the atom at N = 0 that a single Gamma over X would smear: a short window of a
    smooth stream often holds no event at all. Past a mean of RENEWAL_MIXTURE_MAX_COUNT events,
    one Gamma with the renewal count's variance c²·λL. An endless window gives 0."""
    m = np.floor(np.asarray(m, dtype=float))
    mu = np.maximum(np.asarray(mean_count, dtype=float), 0.0)
    shape = np.broadcast_shapes(m.shape, mu.shape)
    m_r = np.broadcast_to(m, shape).reshape(-1, 1)
    q = min(max(float(p_positive), 0.0), 1.0)
    if q <= 0.0 or positive_mean <= 0.0:  # no event ever adds anything
        return np.where(m_r[:, 0] < 0.0, 0.0, 1.0).reshape(shape)
    c2 = max(float(gap_scv), 1e-6)
    mu_r = np.broadcast_to(mu, shape).reshape(-1, 1)
    finite = np.isfinite(mu_r)
    top = float(mu_r[finite].max(initial=0.0))
    item_mean = q * positive_mean  # per event, zeros included
    item_var = q * (positive_var + positive_mean**2) - item_mean**2
    if top > RENEWAL_MIXTURE_MAX_COUNT:
        # long windows: the atom at N = 0 is gone and N ≈ λL with variance c²·λL (renewal
        # theory), so a single Gamma over X serves
        x_mean = mu_r * item_mean
        x_var = mu_r * item_var + c2 * mu_r * item_mean**2
        out = np.where(m_r < 0.0, 0.0, CompoundGamma(x_mean, x_var).cdf(m_r + 0.5))
        return np.where(finite, out, 0.0)[:, 0].reshape(shape)
    k = np.arange(math.ceil(top + 10.0 * math.sqrt(max(c2, 1.0) * top + 1.0) + 10.0) + 1)
    count_cdf_k = renewal_count_cdf(k[None, :].astype(float), np.where(finite, mu_r, 0.0), c2)
    pmf_n = np.diff(count_cdf_k, axis=1, prepend=0.0)  # (rows, k)
    # P(S_j ≤ m) for j positive items, then over J | N = k ~ Binomial(k, q)
    sums = CompoundGamma(k * positive_mean, k * max(positive_var, 0.0)).cdf(m_r + 0.5)
    sums[:, 0] = 1.0  # no positive item: nothing added
    binom = _binomial_pmf(k, q)  # (k, j)
    per_count = sums @ binom.T  # (rows, k): P(S ≤ m | N = k)
    out = np.where(m_r[:, 0] < 0.0, 0.0, (pmf_n * per_count).sum(axis=1))
    out = np.where(finite[:, 0], out, 0.0)  # an endless window holds endlessly many events
    return np.clip(out, 0.0, 1.0).reshape(shape)


def _binomial_pmf(n: np.ndarray, p: float) -> np.ndarray:
    """P(J = j) for J ~ Binomial(n_i, p), as a matrix over (n_i, j) with j = 0..max n (zero
    where j > n_i), from log-gamma terms."""
    nn = np.asarray(n, dtype=float)[:, None]
    j = np.arange(nn.size, dtype=float)[None, :]
    if p >= 1.0:
        return (j == nn).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_pmf = (
            special.gammaln(nn + 1.0)
            - special.gammaln(j + 1.0)
            - special.gammaln(np.maximum(nn - j, 0.0) + 1.0)
            + j * math.log(p)
            + (nn - j) * math.log1p(-p)
        )
    return np.where(j <= nn, np.exp(log_pmf), 0.0)


def head_start_wait(wait: ExpTailWait, head_s: float) -> ExpTailWait:
    """The wait beyond a head start: max(W − h, 0) for an `ExpTailWait` W (docs/model.md §6.2).
    The tail is memoryless, so P(W − h > w) = p·e^{−h/m}·e^{−w/m} with m the mean of those who
    wait: the same family with P(wait) = p·e^{−h/m} and the same m."""
    m = wait.mean_if_waiting_s
    if wait.p_wait <= 0.0 or m <= 0.0 or not np.isfinite(m):
        return wait
    p = wait.p_wait * float(np.exp(-max(head_s, 0.0) / m))
    return ExpTailWait(p_wait=p, mean_s=p * m)


def delay_nodes(wait: ExpTailWait, residual_s: float, nodes: int = 4) -> tuple[np.ndarray, ...]:
    """Quadrature of D = W + R for an `ExpTailWait` W and R uniform on [0, residual_s]
    (docs/model.md §6.2): (delays, weights), weights summing to 1. R takes `nodes` midpoints
    (k + ½)/nodes·residual; W is 0 with probability 1 − p and otherwise takes the exponential's
    quantiles at the midpoints, −m·ln(1 − (k + ½)/nodes), each with weight p/nodes."""
    mid = (np.arange(nodes) + 0.5) / nodes
    r = mid * residual_s
    p, m = wait.p_wait, wait.mean_if_waiting_s
    if p <= 0.0 or m <= 0.0:
        return r, np.full(nodes, 1.0 / nodes)
    w = np.concatenate([[0.0], -m * np.log1p(-mid)])
    pw = np.concatenate([[1.0 - p], np.full(nodes, p / nodes)])
    delays = (w[:, None] + r[None, :]).ravel()
    weights = (pw[:, None] * np.full(nodes, 1.0 / nodes)[None, :]).ravel()
    return delays, weights

"""Attainment, latency percentiles and goodput of a deployment from its strategy model
(docs/model.md §7.1, §7.6). Goodput is the highest rate whose attainment meets the SLO target,
found by bracketing (doubling) and Brent's method (`rootfind.brent_root`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from planner.deployment import Deployment
from planner.rootfind import highest_passing_rate
from planner.scenario import Scenario, deployment_problem, unit_scenario
from planner.strategies.base import Unstable
from planner.strategies.registry import MODELS
from planner.workload import PERCENTILES


@dataclass(frozen=True)
class Prediction:
    """Predicted service quality of a deployment at one request rate."""

    rate: float
    stable: bool
    attainment: float
    ttft_attainment: float
    tpot_attainment: float
    tbt_attainment: float | None  # per-token gap bound (None: the SLO sets none)
    ttft_s: Mapping[int, float]  # percentile → seconds (computed when read)
    tpot_s: Mapping[int, float]
    decode_batch: float
    utilisation: dict[str, float]
    network_bytes_s: float
    binding: str
    detail: str


@dataclass(frozen=True)
class Goodput:
    """Highest rate meeting the SLO target, per deployment."""

    deployment: Deployment
    rate: float
    per_gpu: float
    prediction: Prediction | None
    binding: str
    detail: str

    @property
    def feasible(self) -> bool:
        return self.rate > 0.0


# `_mixture_quantile` locates a percentile to this share of the log-time bracket [1e-5 s, hi]:
# the width 24 halvings leave (about 1e-6 relative for hi = 1e4 s)
_QUANTILE_HALVINGS = 24


def _mixture_quantile(cdf: Callable[[float], np.ndarray], q: float, hi: float) -> float:
    """Smallest t with mean(cdf(t)) ≥ q (inf if not reached by `hi`), on u = log t over
    [log 1e-5, log hi] to a bracket width of 2^−24 of that span (about 1e-6 relative).

    The mixture CDF F is monotone but may jump (TTFT steps at each request's fixed prefill
    time), so the bracket [lo, hi] with F(lo) < q ≤ F(hi) is kept throughout and t = exp(hi)
    is returned. Steps are the Illinois variant of false position (Dowell & Jarratt 1971: the
    value of an end kept twice in a row is halved), which converges superlinearly on a smooth F,
    with a bisection step whenever an end lies on a plateau (F = 0 or 1) or two steps have not
    halved the bracket, so the bracket at least halves every second step; on the default plan's
    latency CDFs it takes 19 evaluations on average instead of bisection's 26
    (docs/model.md §7.6)."""

    def excess(u: float) -> float:
        return float(np.mean(cdf(math.exp(u)))) - q

    lo_u, hi_u = math.log(1e-5), math.log(hi)
    g_hi = excess(hi_u)
    if g_hi < 0.0:
        return math.inf
    g_lo = excess(lo_u)
    if g_lo >= 0.0:
        return 1e-5
    tol = (hi_u - lo_u) / 2**_QUANTILE_HALVINGS
    f_lo, f_hi = g_lo + q, g_hi + q  # the mixture CDF at the ends (before Illinois halving)
    side = 0  # which end the last step replaced: −1 lo, +1 hi
    width_before = hi_u - lo_u
    steps = 0
    while hi_u - lo_u > tol:
        steps += 1
        flat = f_lo <= 0.0 or f_hi >= 1.0  # an end on a plateau: interpolation would crawl
        if flat or (steps % 2 == 0 and hi_u - lo_u > width_before / 2.0):
            u = (lo_u + hi_u) / 2.0
        else:
            u = hi_u - g_hi * (hi_u - lo_u) / (g_hi - g_lo)
            # keep the trial point strictly inside, at least tol/2 away from either end
            u = min(max(u, lo_u + tol / 2.0), hi_u - tol / 2.0)
        if steps % 2 == 0:
            width_before = hi_u - lo_u
        g = excess(u)
        if g >= 0.0:
            hi_u, g_hi, f_hi = u, g, g + q
            if side == 1:
                g_lo /= 2.0
            side = 1
        else:
            lo_u, g_lo, f_lo = u, g, g + q
            if side == -1:
                g_hi /= 2.0
            side = -1
    return math.exp(hi_u)


class LazyQuantiles(Mapping[int, float]):
    """Latency percentiles of a per-request CDF, each computed (`_mixture_quantile`) the first
    time it is read: the search evaluates many candidates, and only the reported ones need all
    of them (the Pareto frontier reads one, the median TPOT)."""

    def __init__(self, cdf: Callable[[float], np.ndarray], hi_s: float, qs: list[int]) -> None:
        self._cdf, self._hi, self._qs = cdf, hi_s, qs
        self._done: dict[int, float] = {}

    def __getitem__(self, q: int) -> float:
        if q not in self._qs:
            raise KeyError(q)
        if q not in self._done:
            self._done[q] = _mixture_quantile(self._cdf, q / 100, self._hi)
        return self._done[q]

    def __iter__(self) -> Iterator[int]:
        return iter(self._qs)

    def __len__(self) -> int:
        return len(self._qs)

    def computed(self) -> dict[int, float]:
        """The percentiles read so far."""
        return dict(self._done)

    def preset(self, values: Mapping[int, float]) -> None:
        """Take percentiles computed elsewhere from the same CDF (another process's copy of
        this prediction): they are then not computed here."""
        self._done.update({q: v for q, v in values.items() if q in self._qs})


class DetachedQuantiles(Mapping[int, float]):
    """The latency percentiles of a prediction made in another process (the parallel search's
    workers, whose CDFs are closures that do not travel): the ones it computed, and the others
    computed here when first read, from the same prediction made again (`predict` is a pure
    function of its arguments, so the values are the same) once `attach` has given the
    scenario."""

    def __init__(
        self, dep: Deployment, rate: float, kind: str, qs: list[int], known: dict[int, float]
    ) -> None:
        self._dep, self._rate, self._kind, self._qs = dep, rate, kind, qs
        self._known = dict(known)
        self._scen: Scenario | None = None

    @classmethod
    def of(cls, dep: Deployment, p: Prediction, kind: str) -> Mapping[int, float]:
        """Prediction `p`'s `kind` ("ttft" or "tpot") percentiles, detached when lazy."""
        values = p.ttft_s if kind == "ttft" else p.tpot_s
        if not isinstance(values, LazyQuantiles):
            return dict(values)
        return cls(dep, p.rate, kind, list(values), values.computed())

    def attach(self, scen: Scenario) -> None:
        self._scen = scen

    def preset(self, values: Mapping[int, float]) -> None:
        """Take percentiles computed elsewhere from the same prediction (`LazyQuantiles.preset`)."""
        self._known.update({q: v for q, v in values.items() if q in self._qs})

    def __getitem__(self, q: int) -> float:
        if q not in self._qs:
            raise KeyError(q)
        if q not in self._known:
            if self._scen is None:
                raise RuntimeError("DetachedQuantiles: attach a scenario first")
            p = predict(self._dep, self._scen, self._rate)
            values = p.ttft_s if self._kind == "ttft" else p.tpot_s
            self._known.update({k: values[k] for k in self._qs})
        return self._known[q]

    def __iter__(self) -> Iterator[int]:
        return iter(self._qs)

    def __len__(self) -> int:
        return len(self._qs)


# a prediction's latency percentiles: (TTFT, TPOT), each percentile → seconds
Percentiles = tuple[dict[int, float], dict[int, float]]


def all_percentiles(g: Goodput) -> Percentiles | None:
    """Every latency percentile of `g`'s prediction at its goodput, computed now (None
    without a prediction)."""
    p = g.prediction
    if p is None:
        return None
    return dict(p.ttft_s.items()), dict(p.tpot_s.items())


def preset_percentiles(g: Goodput, values: Percentiles) -> None:
    """Give `g`'s lazy percentiles the values `all_percentiles` computed from the same
    prediction in another process, so that they are not computed again here."""
    p = g.prediction
    if p is None:
        return
    for lazy, known in ((p.ttft_s, values[0]), (p.tpot_s, values[1])):
        if isinstance(lazy, LazyQuantiles | DetachedQuantiles):
            lazy.preset(known)


def detach(g: Goodput) -> Goodput:
    """`g` made picklable: its prediction's lazy percentiles as `DetachedQuantiles`."""
    p = g.prediction
    if p is None:
        return g
    dep = g.deployment
    ttft, tpot = DetachedQuantiles.of(dep, p, "ttft"), DetachedQuantiles.of(dep, p, "tpot")
    return dataclasses.replace(g, prediction=dataclasses.replace(p, ttft_s=ttft, tpot_s=tpot))


def attach(g: Goodput, scen: Scenario) -> Goodput:
    """Give a `detach`ed goodput's percentiles the scenario to compute the missing ones."""
    if g.prediction is not None:
        for values in (g.prediction.ttft_s, g.prediction.tpot_s):
            if isinstance(values, DetachedQuantiles):
                values.attach(scen)
    return g


def joint_attainment(marginals: list[np.ndarray]) -> float:
    """Share of requests meeting every bound, from each request's per-bound probabilities
    (docs/model.md §4.3, §7.1): the mean over requests of their product. Every latency is
    driven up by the same congestion (more work queued or arriving), so the events "meets
    bound k" are decreasing in it and positively associated: by Harris–FKG the product is a
    lower bound on the joint probability (exact when they are independent, as TTFT and TPOT
    are under Poisson arrivals, which depend on arrivals before and after the first token),
    and the smallest marginal an upper bound; the product never exceeds the smallest marginal."""
    joint = np.prod(np.vstack(marginals), axis=0)
    return float(joint.mean())


def predict(dep: Deployment, scen: Scenario, rate: float, percentiles: bool = True) -> Prediction:
    """Latency distributions, SLO attainment and state of `dep` at `rate` requests/s."""
    problem = deployment_problem(dep, scen)
    if problem is not None:
        return _failed(rate, "infeasible", problem, {})
    # a replicated deployment: one unit at its round-robin share (docs/model.md §8.5)
    res = MODELS[dep.strategy](dep.unit, unit_scenario(dep, scen), rate / dep.replicas)
    if isinstance(res, Unstable):
        return _failed(rate, res.constraint, res.detail, res.utilisation)
    slo = scen.slo
    f_ttft = res.ttft_cdf(slo.ttft_s)
    f_tpot = res.tpot_cdf(slo.tpot_s)
    marginals = [f_ttft, f_tpot]
    a_tbt: float | None = 1.0 if slo.tbt_s is not None else None
    a_ttft, a_tpot = float(f_ttft.mean()), float(f_tpot.mean())
    if a_ttft <= a_tpot:
        binding, detail = "TTFT", res.ttft_driver
    else:
        binding, detail = "TPOT", res.tpot_driver
    if slo.tbt_s is not None and res.tbt_cdf is not None:
        im = scen.instance(dep.dtp, dep.dpp)
        f_tbt = res.tbt_cdf(slo.tbt_s, slo.allowed_long_gaps(im.steps))
        marginals.append(f_tbt)
        a_tbt = float(f_tbt.mean())
        if a_tbt < min(a_ttft, a_tpot):
            binding = "TBT"
            detail = f"per-token gaps over {slo.tbt_s * 1e3:g} ms; {res.tpot_driver}"
    attain = joint_attainment(marginals) if slo.joint else min(float(f.mean()) for f in marginals)
    # paged KV: by PASTA a share p_full of requests finds the cache full; they wait for memory
    # or are preempted and recomputed, and count as missing the SLO
    p_full = 0.0
    if scen.kv.policy == "paged":
        p_full = scen.instance(dep.dtp, dep.dpp).kv_overflow_probability(res.decode_batch)
    if 1.0 - p_full < min(float(f.mean()) for f in marginals):  # below TTFT, TPOT and TBT
        binding = "KV memory"
        detail = (
            f"KV cache full {p_full:.0%} of the time at decode batch {res.decode_batch:.0f} per "
            "instance (paged: requests then wait for memory or are preempted)"
        )
    attain *= 1.0 - p_full
    ttft_p: Mapping[int, float] = {}
    tpot_p: Mapping[int, float] = {}
    if percentiles:
        qs = sorted({*PERCENTILES, round(slo.attainment)})
        ttft_p = LazyQuantiles(res.ttft_cdf, 1e4, qs)
        tpot_p = LazyQuantiles(res.tpot_cdf, 1e3, qs)
    return Prediction(
        rate=rate,
        stable=True,
        attainment=attain,
        ttft_attainment=a_ttft,
        tpot_attainment=a_tpot,
        tbt_attainment=a_tbt,
        ttft_s=ttft_p,
        tpot_s=tpot_p,
        decode_batch=res.decode_batch,
        utilisation=res.utilisation,
        network_bytes_s=res.network_bytes_s * dep.replicas,
        binding=binding,
        detail=detail,
    )


def _failed(rate: float, binding: str, detail: str, util: dict[str, float]) -> Prediction:
    return Prediction(
        rate=rate,
        stable=False,
        attainment=0.0,
        ttft_attainment=0.0,
        tpot_attainment=0.0,
        tbt_attainment=None,
        ttft_s={q: math.inf for q in PERCENTILES},
        tpot_s={q: math.inf for q in PERCENTILES},
        decode_batch=0.0,
        utilisation=util,
        network_bytes_s=0.0,
        binding=binding,
        detail=detail,
    )


def goodput(
    dep: Deployment,
    scen: Scenario,
    *,
    guess: float | None = None,
    rel_tol: float = 3e-3,
    percentiles: bool = True,
) -> Goodput:
    """Highest rate with attainment ≥ target (docs/model.md §7.6), by
    `rootfind.highest_passing_rate` from `guess` (req/s, e.g. a nearby scenario's goodput) or
    from 0.001 req/s per GPU.
    percentiles=False leaves the latency percentiles of the prediction at that rate empty
    (callers that only need the rate skip their cost)."""
    target = scen.slo.target
    problem = deployment_problem(dep, scen)
    if problem is not None:
        return Goodput(dep, 0.0, 0.0, None, "infeasible", problem)

    # the root finder's last evaluation is usually the answer: keep the predictions (their
    # percentiles are lazy, so asking for them costs nothing until they are read)
    seen: dict[float, Prediction] = {}

    def at_rate(r: float) -> Prediction:
        if r not in seen:
            seen[r] = predict(dep, scen, r, percentiles=percentiles)
        return seen[r]

    def excess(r: float) -> float:
        return at_rate(r).attainment - target + 1e-12

    floor = 1e-3 * dep.gpus
    rate = highest_passing_rate(excess, floor=floor, guess=guess, rel_tol=rel_tol)
    return _goodput_from(dep, scen, rate, rel_tol, at_rate)


def _goodput_from(
    dep: Deployment,
    scen: Scenario,
    rate: float,
    rel_tol: float,
    at_rate: Callable[[float], Prediction],
) -> Goodput:
    """Goodput at the root finder's `rate`: unmet at the floor when 0, else the prediction at
    the rate, with the binding constraint of the one 5·rel_tol beyond it when that is unstable."""
    if rate == 0.0:
        return _unmet(dep, scen, 1e-3 * dep.gpus)
    at = at_rate(rate)
    beyond = at_rate(rate * (1 + 5 * rel_tol))
    binding, detail = (
        (beyond.binding, beyond.detail) if not beyond.stable else (at.binding, at.detail)
    )
    return Goodput(dep, rate, rate / dep.gpus, at, binding, detail)


def _unmet(dep: Deployment, scen: Scenario, rate: float) -> Goodput:
    """A deployment that misses the SLO even at a trickle: say which constraint binds and by
    how much (the latency at the target percentile against its bound)."""
    p = predict(dep, scen, rate)
    slo = scen.slo
    q = round(slo.attainment)
    why = f"{p.detail} (attainment {p.attainment:.0%} even at {rate:.3g} req/s"
    if p.stable and p.binding in ("TTFT", "TPOT"):
        value = p.ttft_s[q] if p.binding == "TTFT" else p.tpot_s[q]
        bound = slo.ttft_s if p.binding == "TTFT" else slo.tpot_s
        if math.isfinite(value):
            why += (
                f"; P{q} {p.binding} {_ms(value)} vs SLO {_ms(bound)}, "
                f"{_short(value / bound, '.1f')}×"
            )
    return Goodput(dep, 0.0, 0.0, p, p.binding, why + ")")


def _short(x: float, fmt: str) -> str:
    """`x` in format `fmt` when that is short (1 ≤ |x| < 1e6, or 0), else %g-style."""
    return format(x, fmt) if x == 0 or 1 <= abs(x) < 1e6 else f"{x:.3g}"


def _ms(seconds: float) -> str:
    """A latency in whole milliseconds, %g-style below 1 ms or beyond 1,000 s."""
    return f"{_short(seconds * 1e3, '.0f')} ms"

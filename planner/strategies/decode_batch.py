"""The decode step of a fluctuating population (docs/model.md §6.8): requests stay in an
instance's decode batch for their n decode steps whatever the others do, so the batch is the
population of an infinite-server queue around its Little's-law mean, and each member adds its
own context to the KV the step reads. The step time therefore fluctuates around t_d(B̄), and a
request sees it averaged over its own steps. FuDG's TPOT is that averaged step (§7.4); NoDG and
PaDG add its spread to their prefill interruptions (§7.2, §7.3, §7.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.queueing import (
    compound_cdf,
    infinite_server_kappa,
    infinite_server_peakedness,
    time_average_variance_factor,
)
from planner.scenario import InstanceModel

CONTEXT_PROBE = 1.5  # the KV-read slope is read between the mean context and 1.5× it
SLOPE_SPAN = 4  # batches either side of B̄ for the step's slope per request (≥ pp up to PP4)


@dataclass(frozen=True)
class PopulationShape:
    """The rate-independent part of an instance's decode-step fluctuation (docs/model.md §6.8):
    each sampled request's decode steps `steps`; κ of the decode lengths (peakedness per unit of
    c_a² − 1); the correlation time `corr_steps` θ = E[n²]/(2E[n]) steps (the integral of the
    M/G/∞ population's autocorrelation); each request's averaging factor v(n_i/θ); the
    variance of a decoding request's context over time `context_var` (tokens²); the step time
    at batch 0, 1, … at the mean context, made non-decreasing (`step_s`); and the step time's
    slope per KV token read at each batch (`kv_slope_s`, seconds per token)."""

    steps: np.ndarray
    kappa: float
    corr_steps: float
    averaging: np.ndarray
    context_var: float
    step_s: np.ndarray
    kv_slope_s: np.ndarray


_SHAPES: dict[int, tuple[InstanceModel, PopulationShape]] = {}
_SHAPES_KEPT = 256  # instance models whose shape is kept (each holds its model alive)


def context_moments(inp: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """Mean and variance of a decoding request's context over time (docs/model.md §6.8): a
    request of i input and o output tokens decodes for n = o − 1 steps with a context growing
    from i to i + o, so weighting requests by n, E[C] = Σn(i + o/2)/Σn and
    E[C²] = Σn(i² + i·o + o²/3)/Σn (the mean of (i + u·o)² over u uniform in [0, 1])."""
    i = np.asarray(inp, dtype=float)
    o = np.asarray(out, dtype=float)
    w = np.maximum(o - 1.0, 0.0)
    total = float(w.sum())
    if total <= 0.0:
        return float(i.mean()) if i.size else 0.0, 0.0
    mean = float(np.sum(w * (i + o / 2.0))) / total
    second = float(np.sum(w * (i * i + i * o + o * o / 3.0))) / total
    return mean, max(second - mean * mean, 0.0)


def population_shape(im: InstanceModel) -> PopulationShape:
    """`PopulationShape` of an instance model, computed once per model (the search evaluates
    each at many rates). The KV-read slope at batch b is (t(b, 1.5·c̄) − t(b, c̄))/(b·0.5·c̄)
    from the roofline decode step (§2.7)."""
    hit = _SHAPES.get(id(im))
    if hit is not None and hit[0] is im:
        return hit[1]
    steps = np.asarray(im.steps, dtype=float)
    mean_n = max(float(steps.mean()), 1e-9)
    corr = max(float((steps**2).mean()) / (2.0 * mean_n), 1.0)
    _, ctx_var = context_moments(im.inp, im.out)
    ctx = max(im.decode_context, 1.0)
    batch = np.arange(im.step_s.size, dtype=float)
    longer = im.perf.decode_step(batch, ctx * CONTEXT_PROBE).total_s.astype(float)
    slope = (longer - im.step_s) / (np.maximum(batch, 1.0) * ctx * (CONTEXT_PROBE - 1.0))
    shape = PopulationShape(
        steps=steps,
        kappa=infinite_server_kappa(steps),
        corr_steps=corr,
        averaging=time_average_variance_factor(steps, corr),
        context_var=ctx_var,
        step_s=np.maximum.accumulate(np.asarray(im.step_s, dtype=float)),
        kv_slope_s=np.maximum(slope, 0.0),
    )
    if len(_SHAPES) >= _SHAPES_KEPT:
        _SHAPES.clear()
    _SHAPES[id(im)] = (im, shape)
    return shape


@dataclass(frozen=True)
class StepFluctuation:
    """The decode step of an instance around its mean (docs/model.md §6.8): mean batch B̄
    (Little's law), the population's peakedness z, the mean step t_d(B̄) and the variance of
    the step at a point in time; a request sees the step averaged over its own steps, with
    variance × v(n_i/θ)."""

    batch: float
    peakedness: float
    mean_step_s: float
    point_var_s2: float
    shape: PopulationShape

    @property
    def averaged_var_s2(self) -> np.ndarray:
        """Per request, the variance of the step time averaged over its own steps."""
        return np.asarray(self.point_var_s2 * self.shape.averaging, dtype=float)

    def tpot_cdf(self, t: float) -> np.ndarray:
        """P(TPOT_i ≤ t) per request when TPOT is the averaged step (FuDG decode): Gamma with
        mean t_d(B̄) and variance `averaged_var_s2`; 1 from the step time at the grid's largest
        batch on (the KV cache or `max_num_seqs` caps the batch)."""
        steps = self.shape.steps
        if t >= float(self.shape.step_s[-1]):
            return np.ones(steps.shape)
        mean = np.full(steps.shape, self.mean_step_s)
        return compound_cdf(np.full(steps.shape, t), mean, self.averaged_var_s2)

    def step_at_most_cdf(self, t: float) -> float:
        """Share of time a decode step takes at most `t` seconds (Gamma with the point
        variance)."""
        if t >= float(self.shape.step_s[-1]):
            return 1.0
        mean = np.asarray(self.mean_step_s)
        return float(compound_cdf(np.asarray(t), mean, np.asarray(self.point_var_s2)))


def step_fluctuation(im: InstanceModel, batch: float, ca2: float) -> StepFluctuation:
    """The decode step's fluctuation at mean batch B̄ under arrivals of squared CV c_a²
    (docs/model.md §6.8). Each of the population's members adds a = g + k·(C − c̄) to the step,
    g the grid's slope per request around B̄ (at the mean context c̄, a secant over ±4
    batches), k the slope per KV token and
    C its context; for a population of peakedness z (`infinite_server_peakedness`) the step
    then has variance z·B̄·E[a²] = z·B̄·(g² + k²·Var C)."""
    shape = population_shape(im)
    z = infinite_server_peakedness(ca2, shape.kappa)
    grid = shape.step_s
    top = grid.size - 1
    b = min(max(batch, 0.0), float(top))
    # a secant over ±SLOPE_SPAN batches: with pipeline parallelism the grid rises in steps of
    # pp requests (one more per micro-batch), so neighbouring points would alternate 0 and 2g
    lo = max(int(np.floor(b)) - SLOPE_SPAN, 0)
    hi = min(int(np.floor(b)) + SLOPE_SPAN, top)
    g = float(grid[hi] - grid[lo]) / (hi - lo) if hi > lo else 0.0
    k = float(np.interp(b, np.arange(grid.size, dtype=float), shape.kv_slope_s))
    return StepFluctuation(
        batch=batch,
        peakedness=z,
        mean_step_s=im.step_at(batch),
        point_var_s2=z * batch * (g * g + k * k * shape.context_var),
        shape=shape,
    )

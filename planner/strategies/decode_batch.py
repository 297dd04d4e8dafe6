"""The decode batch as a fluctuating population (docs/model.md §6.7, §7.4): requests stay in
an instance's decode batch for their n decode steps whatever the others do, so the batch is the
population of an infinite-server queue around its Little's-law mean. FuDG's decode pool
uses it; NoDG and PaDG keep the mean batch (the spread it adds there is small beside the
prefill interruptions, §7.2)."""

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


@dataclass(frozen=True)
class PopulationShape:
    """The rate-independent part of an instance's decode-batch fluctuation (docs/model.md §6.7):
    each sampled request's decode steps `steps`, κ of the decode lengths (peakedness per unit of
    c_a² − 1), the correlation time `corr_steps` θ = E[n²]/(2E[n]) steps (the integral of the
    M/G/∞ population's autocorrelation), each request's averaging factor v(n_i/θ), and the step
    time at batch 0, 1, … made non-decreasing for inversion."""

    steps: np.ndarray
    kappa: float
    corr_steps: float
    averaging: np.ndarray
    step_s: np.ndarray


_SHAPES: dict[int, tuple[InstanceModel, PopulationShape]] = {}
_SHAPES_KEPT = 256  # instance models whose shape is kept (each holds its model alive)


def population_shape(dim: InstanceModel) -> PopulationShape:
    """`PopulationShape` of an instance model, computed once per model (the search evaluates
    each at many rates)."""
    hit = _SHAPES.get(id(dim))
    if hit is not None and hit[0] is dim:
        return hit[1]
    steps = np.asarray(dim.steps, dtype=float)
    mean_n = max(float(steps.mean()), 1e-9)
    corr = max(float((steps**2).mean()) / (2.0 * mean_n), 1.0)
    shape = PopulationShape(
        steps=steps,
        kappa=infinite_server_kappa(steps),
        corr_steps=corr,
        averaging=time_average_variance_factor(steps, corr),
        step_s=np.maximum.accumulate(np.asarray(dim.step_s, dtype=float)),
    )
    if len(_SHAPES) >= _SHAPES_KEPT:
        _SHAPES.clear()
    _SHAPES[id(dim)] = (dim, shape)
    return shape


@dataclass(frozen=True)
class BatchFluctuation:
    """The decode batch of an instance as a fluctuating population (docs/model.md §6.7, §7.4):
    mean `batch` (Little's law) and peakedness (variance / mean) `peakedness`, over the
    instance's `PopulationShape`."""

    batch: float
    peakedness: float
    shape: PopulationShape

    def batch_at_s(self, t: float) -> float:
        """The batch whose decode step takes `t` seconds: t_d⁻¹(t) on the grid (linear between
        grid points); inf at or beyond the largest step time (the batch cannot exceed the
        grid's limit, the KV cache or the engine's max_num_seqs)."""
        grid = self.shape.step_s
        if t >= float(grid[-1]):
            return np.inf
        return float(np.interp(t, grid[1:], np.arange(1, grid.size, dtype=float), left=0.0))

    def tpot_cdf(self, t: float) -> np.ndarray:
        """P(TPOT_i ≤ t) per request: TPOT_i = t_d(B̄_i), B̄_i the batch averaged over the
        request's own n_i steps, Gamma with mean B̄ and variance z·B̄·v(n_i/θ) (§6.7)."""
        steps = self.shape.steps
        b_star = self.batch_at_s(t)
        if not np.isfinite(b_star):
            return np.ones(steps.shape)
        var = self.peakedness * self.batch * self.shape.averaging
        return compound_cdf(np.full(steps.shape, b_star), np.asarray(self.batch), var)

    def step_at_most_cdf(self, t: float) -> float:
        """Share of time the decode step takes at most `t` seconds: P(B ≤ t_d⁻¹(t)) for the
        point (not time-averaged) batch, Gamma with mean B̄ and variance z·B̄."""
        b_star = self.batch_at_s(t)
        if not np.isfinite(b_star):
            return 1.0
        mean = np.asarray(self.batch)
        return float(compound_cdf(np.asarray(b_star), mean, self.peakedness * mean))


def decode_batch_fluctuation(dim: InstanceModel, batch: float, ca2: float) -> BatchFluctuation:
    """The decode-pool batch as a GI/G/∞ population (requests stay for their n decode steps):
    peakedness from the arrivals' c_a² and the decode lengths (`infinite_server_peakedness`),
    docs/model.md §7.4."""
    shape = population_shape(dim)
    return BatchFluctuation(
        batch=batch, peakedness=infinite_server_peakedness(ca2, shape.kappa), shape=shape
    )

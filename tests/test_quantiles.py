"""Latency percentiles of a mixture CDF (`strategies.predict._mixture_quantile`, docs/model.md
§7.6) against bisection and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from planner.strategies.predict import _mixture_quantile


def _lognormal_mixture(medians: np.ndarray, sigma: float):  # type: ignore[no-untyped-def]
    def cdf(t: float) -> np.ndarray:
        return special.ndtr((math.log(t) - np.log(medians)) / sigma)

    return cdf


def test_single_lognormal_by_hand() -> None:
    # median 0.2 s, σ = 0.5: P90 = 0.2·e^{0.5·1.2816} = 0.3793 s
    cdf = _lognormal_mixture(np.array([0.2]), 0.5)
    assert _mixture_quantile(cdf, 0.5, 1e3) == pytest.approx(0.2, rel=1e-5)
    assert _mixture_quantile(cdf, 0.9, 1e3) == pytest.approx(
        0.2 * math.exp(0.5 * 1.2815516), rel=1e-5
    )


def test_unreached_and_immediate() -> None:
    cdf = _lognormal_mixture(np.array([1e5]), 0.1)
    assert _mixture_quantile(cdf, 0.5, 1e3) == math.inf
    assert _mixture_quantile(lambda t: np.ones(3), 0.5, 1e3) == 1e-5


def test_steps_give_the_smallest_passing_time() -> None:
    # four requests whose latency is exactly 0.1, 0.2, 0.4, 0.8 s: the P50 is 0.2 s, reached
    # from above (the answer passes), to 2⁻²⁴ of the log span
    points = np.array([0.1, 0.2, 0.4, 0.8])

    def cdf(t: float) -> np.ndarray:
        return np.where(points <= t, 1.0, 0.0)

    got = _mixture_quantile(cdf, 0.5, 1e3)
    span = math.log(1e3) - math.log(1e-5)
    assert 0.2 <= got <= 0.2 * math.exp(span / 2**24 * 1.01)
    assert float(np.mean(cdf(got))) >= 0.5


@settings(max_examples=60, deadline=None)
@given(
    medians=st.lists(st.floats(1e-3, 50.0), min_size=1, max_size=8),
    sigma=st.floats(0.05, 2.0),
    q=st.sampled_from([0.5, 0.9, 0.99]),
    atoms=st.lists(st.floats(1e-3, 50.0), max_size=3),
)
def test_matches_bisection(
    medians: list[float], sigma: float, q: float, atoms: list[float]
) -> None:
    """Smooth parts and jumps: the same answer as 24 halvings of the log bracket, within its
    resolution, and the answer passes."""
    smooth = _lognormal_mixture(np.array(medians), sigma)
    jumps = np.array(atoms)

    def cdf(t: float) -> np.ndarray:
        return np.concatenate([smooth(t), np.where(jumps <= t, 1.0, 0.0)])

    hi = 1e3
    if float(np.mean(cdf(hi))) < q:
        assert _mixture_quantile(cdf, q, hi) == math.inf
        return
    lo_l, hi_l = math.log(1e-5), math.log(hi)
    for _ in range(24):
        mid = (lo_l + hi_l) / 2.0
        if float(np.mean(cdf(math.exp(mid)))) >= q:
            hi_l = mid
        else:
            lo_l = mid
    got = _mixture_quantile(cdf, q, hi)
    width = (math.log(hi) - math.log(1e-5)) / 2**24
    assert float(np.mean(cdf(got))) >= q
    assert abs(math.log(got) - hi_l) <= 2 * width

"""Queueing formulas against hand-checked cases (DESIGN.md §3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from planner.queueing import (
    WILSON_HILFERTY_MIN_SHAPE,
    allen_cunneen_wait_s,
    compound_cdf,
    erlang_c,
    md1_mean_ttft_s,
    mg1_wait,
    mgc_wait,
    solve_decode_batch,
)


def test_md1_matches_distserve_formula() -> None:
    # D = 0.1 s, R = 5 req/s: TTFT = D + R·D²/(2(1 − R·D)) = 0.1 + 0.05/1 = 0.15 s
    assert md1_mean_ttft_s(5.0, 0.1) == pytest.approx(0.15)
    # Allen–Cunneen with deterministic service (cs² = 0) and Poisson arrivals is M/D/1
    wait = allen_cunneen_wait_s(5.0, 0.1, 0.1**2, ca2=1.0)
    assert 0.1 + wait == pytest.approx(md1_mean_ttft_s(5.0, 0.1))


def test_pollaczek_khinchine_for_exponential_service() -> None:
    # M/M/1: E[W] = ρ/(1−ρ)·E[S]; E[S²] = 2E[S]²
    assert allen_cunneen_wait_s(8.0, 0.1, 2 * 0.01) == pytest.approx(0.8 / 0.2 * 0.1)


def test_unstable_queue_is_infinite() -> None:
    assert allen_cunneen_wait_s(10.0, 0.1, 0.01) == float("inf")
    assert md1_mean_ttft_s(11.0, 0.1) == float("inf")


def test_burstier_arrivals_wait_longer() -> None:
    base = allen_cunneen_wait_s(5.0, 0.1, 0.01, ca2=1.0)
    assert allen_cunneen_wait_s(5.0, 0.1, 0.01, ca2=4.0) > base


def test_exp_tail_wait_mean_and_atom() -> None:
    w = mg1_wait(5.0, 0.1, 0.02)  # M/M/1 at ρ = 0.5: P(wait) = 0.5, E[W] = 0.1
    assert w.p_wait == pytest.approx(0.5)
    assert float(w.cdf(0.0)) == pytest.approx(0.5)
    # E[W] = ∫ P(W > t) dt
    t = np.linspace(0, 5, 200_001)
    assert np.trapezoid(1 - w.cdf(t), t) == pytest.approx(w.mean_s, rel=1e-3)


def test_compound_cdf_moments() -> None:
    mean, var = np.array([2.0]), np.array([1.0])
    xs = np.linspace(0, 20, 400_001)
    pdf = np.gradient(compound_cdf(xs, mean, var), xs)
    assert np.trapezoid(xs * pdf, xs) == pytest.approx(2.0, rel=1e-3)
    assert float(compound_cdf(np.array([0.0]), np.array([0.0]), np.array([0.0]))[0]) == 1.0


def test_compound_cdf_error_bound_against_gammainc() -> None:
    # docs/model.md §6.3: exact below the switch shape, within 7e-4 of scipy's gammainc above it
    # (measured maximum 6.1e-4 at shape 10, shrinking about as 0.006/shape)
    shapes = np.geomspace(1e-3, 1e5, 400)
    ratios = np.geomspace(1e-6, 60.0, 4001)
    k, r = np.meshgrid(shapes, ratios, indexing="ij")
    mean = np.full_like(k, 3.0)
    got = compound_cdf(r * mean, mean, mean**2 / k)
    want = special.gammainc(k, r * k)
    err = np.abs(got - want)
    assert np.all(err[shapes < WILSON_HILFERTY_MIN_SHAPE] <= 1e-12)
    assert err.max() <= 7e-4
    # the approximation is not exact: the bound is what makes it safe, not a coincidence
    assert err.max() >= 1e-4


@settings(max_examples=200, deadline=None)
@given(
    mean=st.floats(1e-6, 1e6),
    shape=st.floats(1e-2, 1e6),
    ratios=st.lists(st.floats(0.0, 100.0), min_size=2, max_size=20),
)
def test_compound_cdf_is_a_cdf_close_to_gammainc(
    mean: float, shape: float, ratios: list[float]
) -> None:
    x = np.sort(np.array(ratios)) * mean
    f = compound_cdf(x, np.full_like(x, mean), np.full_like(x, mean**2 / shape))
    assert np.all((f >= 0.0) & (f <= 1.0))
    assert np.all(np.diff(f) >= -1e-12)
    assert np.allclose(f, special.gammainc(shape, x / mean * shape), atol=7e-4, rtol=0.0)


def test_decode_batch_littles_law_by_hand() -> None:
    # step time 50 ms flat: B = λ·E[n]·t = 10 · 100 · 0.05 = 50
    steps = np.full(200, 0.05)
    assert solve_decode_batch(10.0, 100.0, steps) == pytest.approx(50.0, abs=1.0)
    # a decode that cannot keep up within the grid returns None
    assert solve_decode_batch(100.0, 100.0, steps) is None


def test_erlang_c_by_hand() -> None:
    # M/M/2 at offered load a = 1: C = (a²/2 · 2/(2 − a)) / (1 + a + a²/2 · 2/(2 − a)) = 1/3
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    # one server: the probability of waiting is the utilisation
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(3, 3.0) == 1.0


def test_mgc_wait_reduces_to_mg1_and_shrinks_with_servers() -> None:
    one = mgc_wait(0.5, 1, 1.0, 2.0)
    assert one == mg1_wait(0.5, 1.0, 2.0)
    # M/M/1 at ρ = 0.5, E[S] = 1 s: Pollaczek–Khinchine λE[S²]/(2(1 − ρ)) = 1 s, P(wait) = ρ
    assert one.p_wait == pytest.approx(0.5) and one.mean_s == pytest.approx(1.0)
    # M/M/2 at a = 1, exponential service of 1 s: E[W] = C/(cμ − λ) = (1/3)/(2 − 1)
    assert mgc_wait(1.0, 2, 1.0, 2.0).mean_s == pytest.approx(1.0 / 3.0)
    waits = [mgc_wait(1.5, c, 1.0, 2.0).mean_s for c in (2, 3, 4, 8)]
    assert all(b < a for a, b in itertools.pairwise(waits))
    assert not np.isfinite(mgc_wait(2.0, 2, 1.0, 2.0).mean_s)


def test_compound_gamma_prepared_once_matches_compound_cdf() -> None:
    """`CompoundGamma` keeps the moments' parts; every x gives what `compound_cdf` gives,
    including the point mass (zero variance), an empty sum (zero mean) and x < 0."""
    from planner.queueing import CompoundGamma, compound_cdf

    mean = np.array([[0.0, 1.0, 2.0, 50.0]])
    var = np.array([[1.0, 0.0, 3.0, 4.0]])
    g = CompoundGamma(mean, var)
    for x in (-1.0, 0.0, 0.5, 1.0, 2.5, 60.0):
        xs = np.full((3, 1), x)
        assert np.array_equal(g.cdf(xs), compound_cdf(xs, mean, var))
    assert g.cdf(np.array([[0.99]]))[0, 1] == 0.0 and g.cdf(np.array([[1.01]]))[0, 1] == 1.0
    assert g.cdf(np.array([[-0.1]]))[0, 0] == 0.0 and g.cdf(np.array([[0.0]]))[0, 0] == 1.0

"""The goodput root finder on functions whose answer is known by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

from planner.rootfind import brent_root, highest_passing_rate


@pytest.mark.parametrize("guess", [None, 0.5, 5.0, 4.9, 80.0])
def test_linear_crossing_from_any_guess(guess: float | None) -> None:
    """excess = 5 − r crosses at r = 5 (wherever the bracket starts)."""
    r = highest_passing_rate(lambda r: 5.0 - r, floor=0.01, guess=guess, rel_tol=1e-6)
    assert r == pytest.approx(5.0, rel=1e-5)
    assert r <= 5.0  # the answer itself passes


def test_step_function_answer_passes() -> None:
    """A step-shaped attainment (like a simulation's): the answer is a passing rate within
    rel_tol of the step at 3."""
    r = highest_passing_rate(lambda r: 1.0 if r <= 3.0 else -1.0, floor=0.1, rel_tol=1e-3)
    assert 3.0 * (1 - 2e-3) <= r <= 3.0


def test_floor_failing_is_zero_and_ceiling_caps() -> None:
    assert highest_passing_rate(lambda r: -1.0, floor=0.1, guess=50.0) == 0.0
    assert highest_passing_rate(lambda r: -1.0, floor=0.1) == 0.0
    assert highest_passing_rate(lambda r: 1.0, floor=0.1, ceiling=100.0) == 51.2  # 0.1 × 2⁹


@given(
    root=st.floats(0.02, 1e4),
    guess=st.floats(0.01, 1e5),
    growth=st.sampled_from([1.5, 2.0]),
)
def test_finds_the_crossing_of_a_decreasing_function(
    root: float, guess: float, growth: float
) -> None:
    r = highest_passing_rate(
        lambda r: 1.0 - r / root, floor=0.01, guess=guess, growth=growth, rel_tol=1e-4
    )
    assert r == pytest.approx(root, rel=1e-3)


def test_each_rate_is_evaluated_once() -> None:
    """The final check re-reads brentq's answer instead of evaluating it again."""
    calls: list[float] = []

    def excess(r: float) -> float:
        calls.append(r)
        return 5.0 - r

    highest_passing_rate(excess, floor=0.01, guess=1.0, rel_tol=1e-6)
    assert len(calls) == len(set(calls))


def test_first_step_brackets_a_close_guess_in_fewer_evaluations() -> None:
    """A guess 5% below the answer: ×1.1 brackets it at once (×1.5 overshoots by 43%), and both
    land on the same rate within the tolerance."""
    calls: list[float] = []

    def excess(rate: float) -> float:
        calls.append(rate)
        return 10.5 - rate

    plain = highest_passing_rate(excess, floor=0.01, guess=10.0, growth=1.5, rel_tol=1e-2)
    n_plain = len(calls)
    calls.clear()
    near = highest_passing_rate(
        excess, floor=0.01, guess=10.0, growth=1.5, rel_tol=1e-2, first_step=1.1
    )
    assert calls[1] == pytest.approx(11.0)  # the first move is ×1.1
    assert near == pytest.approx(plain, rel=2e-2) and near <= 10.5
    assert len(calls) <= n_plain
    # far from the answer the moves grow (1.1, 1.21, 1.46, then ×1.5 steps) and still bracket it
    assert highest_passing_rate(
        lambda r: 100.0 - r, floor=0.01, guess=1.0, growth=1.5, rel_tol=1e-3, first_step=1.1
    ) == pytest.approx(100.0, rel=2e-3)


@given(
    a=st.floats(-1.0, 2.9),
    b=st.floats(3.1, 50.0),
    rtol=st.sampled_from([4 * 2.220446049250313e-16, 1e-12, 3e-3, 1e-2]),
    kind=st.sampled_from(["cubic", "step", "logistic", "exp"]),
)
def test_brent_root_agrees_with_scipy_brentq(a: float, b: float, rtol: float, kind: str) -> None:
    """Our Brent's method is the variant scipy.optimize.brentq implements: the same root and the
    same points evaluated, on smooth, flat-tailed and step-shaped functions crossing at 3."""
    funcs = {
        "cubic": lambda x: 27.0 - x**3,
        "step": lambda x: 1.0 if x <= 3.0 else -1.0,
        "logistic": lambda x: 0.5 - 1.0 / (1.0 + math.exp(-2.0 * (x - 3.0))),
        "exp": lambda x: math.exp(-x) - math.exp(-3.0),
    }
    f = funcs[kind]
    ours: list[float] = []
    theirs: list[float] = []
    r_ours = brent_root(lambda x: (ours.append(x), f(x))[1], a, b, rtol=rtol)
    r_theirs = brentq(lambda x: (theirs.append(x), f(x))[1], a, b, rtol=rtol)
    assert r_ours == r_theirs
    assert ours == theirs


def test_brent_root_refuses_a_bracket_without_a_sign_change() -> None:
    with pytest.raises(ValueError, match="differ in sign"):
        brent_root(lambda x: x * x + 1.0, -1.0, 1.0)
    assert brent_root(lambda x: x - 2.0, 2.0, 5.0) == 2.0  # a root at an end

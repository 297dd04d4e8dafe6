"""The goodput root finder shared by the analytical model and the simulator (docs/model.md §6.6).

Goodput is the highest request rate whose SLO attainment still meets the target. Attainment
falls with the rate, so `excess(rate) = attainment(rate) − target` has one sign change: bracket
it by growing or shrinking a starting guess geometrically, then refine it with Brent's method
(`brent_root`, written here so that no command pays scipy.optimize's import: docs/model.md §6.6).
"""

from __future__ import annotations

import math
from collections.abc import Callable

_EPS = 2.220446049250313e-16  # double precision machine epsilon


def brent_root(
    f: Callable[[float], float],
    a: float,
    b: float,
    *,
    xtol: float = 2e-12,
    rtol: float = 4 * _EPS,
    max_iterations: int = 100,
) -> float:
    """A root of f in [a, b], where f(a) and f(b) differ in sign, by Brent's method (R. P. Brent,
    "Algorithms for Minimization without Derivatives", 1973, ch. 4): keep a bracket [x, blk]
    with the sign change and the iterate x at its better end; step by inverse quadratic
    interpolation through the last three points (a secant when only two differ), and fall back
    to bisection whenever that step leaves the bracket's inner three quarters or fails to shrink
    faster than the step before last. Stops when the half bracket is below
    δ = (xtol + rtol·|x|)/2 and returns x; a step shorter than δ is taken as δ, so every
    evaluation moves. The tolerances mean what scipy.optimize.brentq's do (the same variant, so
    the answers agree with it: tests/test_rootfind.py)."""
    x_pre, x_cur = float(a), float(b)
    f_pre, f_cur = f(x_pre), f(x_cur)
    if f_pre == 0.0:
        return x_pre
    if f_cur == 0.0:
        return x_cur
    if (f_pre > 0.0) == (f_cur > 0.0):
        raise ValueError("brent_root: f(a) and f(b) must differ in sign")
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(max_iterations):
        if f_pre != 0.0 and f_cur != 0.0 and (f_pre > 0.0) != (f_cur > 0.0):
            x_blk, f_blk = x_pre, f_pre  # the far end of the bracket
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):  # keep the better end as the iterate
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = (xtol + rtol * abs(x_cur)) / 2.0
        s_bis = (x_blk - x_cur) / 2.0
        if f_cur == 0.0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            if x_pre == x_blk:  # two distinct points: secant
                s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
            else:  # three: inverse quadratic interpolation
                d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            if 2.0 * abs(s_try) < min(abs(s_pre), 3.0 * abs(s_bis) - delta):
                s_pre, s_cur = s_cur, s_try  # the interpolation step is accepted
            else:
                s_pre, s_cur = s_bis, s_bis
        else:
            s_pre, s_cur = s_bis, s_bis
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else (delta if s_bis > 0.0 else -delta)
        f_cur = f(x_cur)
    return x_cur


class _CheckedOnce:
    """`excess` with NaN turned into a failure (−1: attainment lies in [0, 1]), evaluated once
    per rate (`seen`): Brent's method returns a rate it has already evaluated, and the final
    check would otherwise evaluate (or, for the simulator, simulate) it again."""

    def __init__(self, excess: Callable[[float], float]) -> None:
        self._excess = excess
        self.seen: dict[float, float] = {}

    def __call__(self, rate: float) -> float:
        value = self.seen.get(rate)
        if value is None:
            value = self._excess(rate)
            value = value if value == value else -1.0
            self.seen[rate] = value
        return value


def highest_passing_rate(
    excess: Callable[[float], float],
    *,
    floor: float,
    guess: float | None = None,
    growth: float = 2.0,
    ceiling: float = 1e7,
    rel_tol: float = 3e-3,
    first_step: float | None = None,
) -> float:
    """Highest rate r ≥ floor with excess(r) ≥ 0, to relative precision rel_tol; 0.0 when even
    the floor fails. The bracket starts at `guess` (default: the floor) and moves by ×growth;
    rates past `ceiling` are never tried: the last passing rate below it is returned. When Brent's
    method ends on the failing side of the crossing (it returns the end of its last bracket
    with the smaller |excess|), the answer is the highest evaluated rate below that passed: the
    bracket's passing end, within rel_tol, at no extra evaluation. An excess that is not a
    number (NaN) counts as failing, so the search always ends on a finite rate. Each rate is
    evaluated at most once.

    `first_step` (> 1) makes the bracket's first move from a trusted guess a small one, ×first_step,
    each later move the square of the one before, up to ×growth: a guess within a few percent of
    the answer is then bracketed in one or two evaluations instead of overshooting by ×growth
    (the simulated goodput starts from the analytical one; each of its evaluations is a whole
    simulation)."""
    excess = _CheckedOnce(excess)
    lo = guess if guess is not None and math.isfinite(guess) and guess > floor else floor
    lo = min(lo, max(ceiling, floor))
    step = min(first_step, growth) if first_step is not None and first_step > 1.0 else growth
    if excess(lo) >= 0:
        hi = lo * step
        while True:
            if hi > ceiling:
                return lo
            if excess(hi) < 0:
                break
            step = min(step * step, growth)
            lo, hi = hi, hi * step
    else:
        hi = lo
        while hi > floor:
            lo = max(hi / step, floor)
            if excess(lo) >= 0:
                break
            step = min(step * step, growth)
            hi = lo
        else:
            return 0.0
    rate = brent_root(excess, lo, hi, rtol=rel_tol)
    if excess(rate) < 0:
        # Brent's method stopped on the failing end of its last bracket: the answer is the
        # highest rate below it that was evaluated and passed (that bracket's other end, within
        # rel_tol; `lo` at worst)
        rate = max(r for r, v in excess.seen.items() if lo <= r < rate and v >= 0)
    return rate

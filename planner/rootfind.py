"""The goodput root finder shared by the analytical model and the simulator (docs/model.md §6.6).

Goodput is the highest request rate whose SLO attainment still meets the target. Attainment
falls with the rate, so `excess(rate) = attainment(rate) − target` has one sign change: bracket
it by growing or shrinking a starting guess geometrically, then refine with scipy's brentq.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from scipy import optimize


def _checked_once(excess: Callable[[float], float]) -> Callable[[float], float]:
    """`excess` with NaN turned into a failure (−1: attainment lies in [0, 1]), evaluated once
    per rate: brentq returns a rate it has already evaluated, and the final check would
    otherwise evaluate (or, for the simulator, simulate) it again."""
    seen: dict[float, float] = {}

    def checked(rate: float) -> float:
        value = seen.get(rate)
        if value is None:
            value = excess(rate)
            value = value if value == value else -1.0
            seen[rate] = value
        return value

    return checked


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
    rates past `ceiling` are never tried: the last passing rate below it is returned. The result
    is stepped back until it passes, since brentq may land just beyond the crossing of a
    step-shaped attainment curve. An excess that is not a number (NaN) counts as failing, so the
    search always ends on a finite rate. Each rate is evaluated at most once.

    `first_step` (> 1) makes the bracket's first move from a trusted guess a small one, ×first_step,
    each later move the square of the one before, up to ×growth: a guess within a few percent of
    the answer is then bracketed in one or two evaluations instead of overshooting by ×growth
    (the simulated goodput starts from the analytical one; each of its evaluations is a whole
    simulation)."""
    excess = _checked_once(excess)
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
    rate = float(optimize.brentq(excess, lo, hi, rtol=rel_tol))
    while excess(rate) < 0 and rate > lo:
        rate = max(lo, rate * (1 - rel_tol))
    return rate

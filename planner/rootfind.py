"""The goodput root finder shared by the analytical model and the simulator (docs/model.md §6.6).

Goodput is the highest request rate whose SLO attainment still meets the target. Attainment
falls with the rate, so `excess(rate) = attainment(rate) − target` has one sign change: bracket
it by growing or shrinking a starting guess geometrically, then refine with scipy's brentq.
"""

from __future__ import annotations

from collections.abc import Callable

from scipy import optimize


def highest_passing_rate(
    excess: Callable[[float], float],
    *,
    floor: float,
    guess: float | None = None,
    growth: float = 2.0,
    ceiling: float = 1e7,
    rel_tol: float = 3e-3,
) -> float:
    """Highest rate r ≥ floor with excess(r) ≥ 0, to relative precision rel_tol; 0.0 when even
    the floor fails. The bracket starts at `guess` (default: the floor) and moves by ×growth;
    past `ceiling` the last passing rate is returned. The result is stepped back until it passes,
    since brentq may land just beyond the crossing of a step-shaped attainment curve."""
    lo = max(guess or floor, floor)
    if excess(lo) >= 0:
        hi = lo * growth
        while excess(hi) >= 0:
            lo, hi = hi, hi * growth
            if hi > ceiling:
                return lo
    else:
        hi = lo
        while hi > floor:
            lo = max(hi / growth, floor)
            if excess(lo) >= 0:
                break
            hi = lo
        else:
            return 0.0
    rate = float(optimize.brentq(excess, lo, hi, rtol=rel_tol))
    while excess(rate) < 0 and rate > lo:
        rate = max(lo, rate * (1 - rel_tol))
    return rate

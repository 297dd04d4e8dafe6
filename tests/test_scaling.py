"""Rate-ramp capacity plans: mitosis bounds, coverage, GPU-hours."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from planner.config import RampSpec, load_plan
from planner.scaling import macro_sizes, scale
from planner.search import plan


@given(m=st.integers(1, 400), n_l=st.integers(1, 12), extra=st.integers(0, 12))
def test_macro_sizes_stay_within_bounds_but_the_last(m: int, n_l: int, extra: int) -> None:
    n_u = n_l + extra
    sizes = macro_sizes(m, n_l, n_u)
    assert sum(sizes) == m
    assert all(s <= n_u for s in sizes)
    assert all(n_l <= s for s in sizes[:-1])


def test_default_ramp_plans() -> None:
    pf = load_plan(None)
    scen = pf.scenario()
    res = plan(scen, pf.search, pf.objective)
    ramp = RampSpec(rates=[20, 35, 50, 30], step_hours=2)
    plans = {p.strategy: p for p in scale(res, ramp)}
    assert set(plans) == {"vllm", "sarathi", "distserve", "mooncake", "ecoserve"}
    for p in plans.values():
        assert [s.rate for s in p.steps] == [20, 35, 50, 30]
        assert p.gpu_hours == 2 * sum(s.gpus for s in p.steps)
        # every step meets the SLO target (the GPUs are chosen so goodput covers the rate)
        assert p.min_attainment >= 0.9 - 1e-6
        g = [s.gpus for s in p.steps]
        assert g[0] <= g[1] <= g[2] and g[3] <= g[2]
    eco = plans["ecoserve"].steps
    assert eco[0].event == "start"
    best = res.per_strategy["ecoserve"][0].deployment
    assert all(sum(s.macro_sizes) * best.tp * best.pp == s.gpus for s in eco)
    assert any(e.event.startswith(("split", "merge", "contract")) for e in eco[1:])
    for step in eco:  # no macro instance outside [N_l, N_u] except a last partial one
        assert all(ramp.macro_min <= m <= ramp.macro_max for m in step.macro_sizes[:-1])
        assert 1 <= step.macro_sizes[-1] <= ramp.macro_max

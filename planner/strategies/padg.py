"""PaDG: EcoServe's temporal disaggregation with rolling activation (docs/model.md §7.5).

A macro instance of N instances receives λ_m = λ / (macro instances). One instance at a time is
"active": it admits new requests until the predicted prefill work admitted since its switch
reaches the window budget P (admission check 1, TTFT), then the next instance in turn becomes
active. The window fills at λ_m·E[s] of predicted work per second (s: a prompt's prefill on its
own), so the rotation period is T = N·P/(λ_m·E[s]). The active instance prefills what it admits
at once (prefill priority), batching the prompts that wait at each iteration boundary: the
whole stream λ_m flows to it (factor φ: InstanceModel.prefill_batching, with the decode step
as the wait before a run of prefill batches), a window's work takes φ·P and the active
instance is busy ρ_w = φ·λ_m·E[s]. Per instance the
prefill share is f_p = ρ_w/N. A phase switch costs nothing beyond the iterations themselves:
the roofline already charges every prefill batch and decode step its per-iteration overhead,
as it does vLLM's, so a separate switch overhead would count it twice.

Admission check 2 (mean saved TPOT ≥ the prefill work admitted since the switch) bounds the
window given the decodes' mean saved TPOT at a switch, M = E[n²]/(2E[n])·(S_TPOT − TPOT), the
prompts the window already admitted (their stalls and their own empty savings count against
it: `window_prompts`), but never below one prefill: the
scheduler tries every instance in turn, and a request no instance accepts pends until some
instance's decodes have saved enough. When the slack is below one mean prefill the macro
instance is *slack-paced*: each instance can take a prefill p only after its decodes earn the
stall back at (S_TPOT − t_d)/t_d per second of decoding, so it is held p·S_TPOT/(S_TPOT − t_d)
per admitted prefill, and the pending queue is a G/G/N queue with that service (Allen–Cunneen;
it saturates exactly when the fluid TPOT t_d/(1 − f_p) reaches S_TPOT). Check 3 bounds the batch
by KV memory.

TTFT = W_pend + A_i + R. Admission bounds the admitted part A_i by the window's work P: a
request waits in an M/G/1 at ρ_w that starts empty each window, A_i = min((W_q + p_i)/(1 − ρ_w),
P) when ρ_w < 1, and U[P(1 − 1/ρ_w), P] when the active instance is overloaded during its window;
R, uniform on [0, t_d], is the decode step in progress when the instance turns to prefill; and
W_pend is the wait of a request that check 2 refuses everywhere: the slack-paced queue's wait,
after a head start of one window's earning time outside the paced regime. Slack-paced,
TTFT_i = W_pend + p_i + R.
TPOT: an instance is active for D = T/N of each rotation and prefills what it admits then.
A request starts decoding at a uniform point u of its own instance's activation and, over its
decode span L = n·t_d/(1 − f_p), overlaps O(u) seconds of activations: the rest of its own
(which brings the prompts admitted after it) and one D every T after that. Windows close on
admitted work, not time, so the count of prompts in an overlap has mean λ_m·O and a spread
that comes from the arrivals (variance c_a²/N × its mean: the instance takes about 1/N of the
macro instance's arrivals over the request's life; jobs φ·s); the interruption work given O is
moment-matched like vLLM's (docs/model.md §6.3), the decode step's own fluctuation (§6.8) added
to its variance, and averaged over u. The mean slowdown is 1/(1 − f_p), and the decode batch
follows from Little's law.
With N = 1 the model is exactly NoDG (vLLM): the single instance is always active.
"""

from __future__ import annotations

import numpy as np

from planner.deployment import Deployment
from planner.queueing import (
    CompoundGamma,
    ExpTailWait,
    compound_moments,
    count_cdf,
    delay_nodes,
    head_start_wait,
    mg1_wait,
    mgc_wait,
    routed_ca2,
    solve_decode_batch,
)
from planner.scenario import Scenario
from planner.strategies.base import Latencies, Unstable
from planner.strategies.decode_batch import step_fluctuation
from planner.strategies.nodg import kv_check, long_stall_share, vllm_instance


def ecoserve(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    im = scen.instance(dep.tp, dep.pp)
    ca2 = routed_ca2(scen.workload.arrivals.ca2, dep.instances // dep.macro_size)  # round-robin
    n_inst = dep.macro_size
    macros = dep.instances // n_inst
    rate_m = rate / macros
    if n_inst == 1:
        return vllm_instance(im, rate_m, ca2)
    slo = scen.slo
    budget = min(dep.window_s if dep.window_s is not None else slo.ttft_s, slo.ttft_s)
    s_mean = im.service_mean_s  # predicted prefill work per request (admission units)
    # check 1 admits whole prompts while their work fits the budget (always the first): by
    # renewal theory E[count] ≈ P/E[s] + (c_s² − 1)/2 for work s with squared CV c_s²
    cs2 = im.service_m2_s2 / max(s_mean, 1e-12) ** 2 - 1.0
    budget_prompts = max(budget / max(s_mean, 1e-12) + (cs2 - 1.0) / 2.0, 1.0)
    rho_pred = rate_m * s_mean  # predicted work admitted per second
    n = im.steps
    slack_factor = float((n**2).mean() / (2.0 * max(n.mean(), 1e-9)))

    def windows(tpot_guess: float, batch_i: float, t_d: float) -> tuple[float, float, float, bool]:
        """Mean saved TPOT at a switch (check 2), the window of prefill work (checks 1 and 2,
        at least one prefill: `window_prompts`), the rotation period, and whether the macro
        instance is slack-paced (not even one prefill fits the saved TPOT)."""
        slack = slack_factor * max(slo.tpot_s - tpot_guess, 0.0)
        gap_s = max(1.0 / rate_m - phi * s_mean, 0.0) if rate_m > 0 else 0.0
        earned = gap_s * max(slo.tpot_s - t_d, 0.0) / t_d
        prompts = window_prompts(batch_i, slack, s_mean, earned)
        window = min(budget_prompts, max(prompts, 1.0)) * s_mean
        period = n_inst * window / rho_pred if rho_pred > 0 else np.inf
        return slack, window, period, prompts < 1.0

    # TPOT = t_d(B)/(1 − f_p) and B from Little's law; batching depends on the decode step a
    # prompt waits on and on the window's prompts, so a second pass settles them
    t_d = im.step_at(1.0)
    window_prompts_cap = np.inf
    for _ in range(2):
        # a batch holds at most the prompts of one window (admission closes it)
        phi, extra_s = im.prefill_batching(rate_m, t_d, window_prompts_cap)
        rho_w = rho_pred * phi  # busy share of the active instance
        f_p = rho_w / n_inst
        if f_p >= 1.0:
            return Unstable(
                "prefill capacity", f"prefill share per instance {f_p:.2f} ≥ 1", {"prefill": f_p}
            )
        slowdown = 1.0 / (1.0 - f_p)
        batch = solve_decode_batch(rate_m / n_inst, im.mean_steps, im.step_s, slowdown)
        if batch is None:
            return Unstable("decode capacity", "decode cannot keep up", {"prefill": f_p})
        t_d = im.step_at(batch)
        slack, window, period, paced = windows(t_d * slowdown, batch, t_d)
        window_prompts_cap = window / s_mean
    assert batch is not None
    if (bad := kv_check(im, batch)) is not None:
        return bad
    fixed = im.prefill_s + extra_s
    if paced and slo.tpot_s <= t_d:
        return Unstable("TPOT slack", f"decode step {t_d * 1e3:.0f} ms ≥ the TPOT SLO")
    # check 2 refuses when no instance has saved enough: requests then pend until one has earned
    # a prefill back, each prompt holding an instance φ·s·S_TPOT/(S_TPOT − t_d): a G/G/N queue
    earn = slo.tpot_s / max(slo.tpot_s - t_d, 1e-12)
    pace = phi * earn
    paced_wait = mgc_wait(rate_m, n_inst, s_mean * pace, im.service_m2_s2 * pace**2, ca2)
    if paced and not np.isfinite(paced_wait.mean_s):
        return Unstable(
            "TPOT slack",
            f"decoding requests' saved TPOT ({slack * 1e3:.0f} ms) no longer covers one "
            f"prefill ({s_mean * 1e3:.0f} ms) and decodes earn it back slower than prompts "
            f"arrive: pending requests grow",
            {"prefill": f_p},
        )
    # outside the slack-paced regime the slack saved at a switch pays for a window of prefill,
    # which would take window·S_TPOT/(S_TPOT − t_d) of decoding to earn: a head start on the wait
    # (when even that queue has no steady state outside the paced regime, the banked slack is
    # what keeps admission going, and no pending is modelled)
    if paced:
        pending = paced_wait
    elif np.isfinite(paced_wait.mean_s):
        pending = head_start_wait(paced_wait, window * earn)
    else:
        pending = ExpTailWait(0.0, 0.0)
    delays, weights = delay_nodes(pending, t_d)
    wait = mg1_wait(rate_m, s_mean * phi, im.service_m2_s2 * phi**2, ca2) if rho_w < 1.0 else None

    def admitted_cdf(u: np.ndarray) -> np.ndarray:
        """P(an admitted request's first decode is ≤ u after admission), u of shape (k, 1):
        its window's queue, capped by the window's work (admission check 1) unless its own
        prefill is longer."""
        if paced:
            return np.where(fixed <= u, 1.0, 0.0)
        if wait is not None:
            inner = wait.cdf(u * (1.0 - rho_w) - fixed)
        else:
            lo = window * (1.0 - 1.0 / rho_w)
            inner = np.clip((u - lo) / max(window - lo, 1e-12), 0.0, 1.0) + 0.0 * fixed
        capped = np.where(u >= window, 1.0, inner)
        return np.where(fixed <= u, capped, 0.0)

    def ttft_cdf(t: float) -> np.ndarray:
        # TTFT = pending wait + the admitted part + the residual of the decode step in progress
        # when the request's instance turns to prefill (uniform on [0, t_d]), by quadrature
        u = (t - delays)[:, None]
        # the quadrature weights sum to 1 only up to rounding: keep the mixture a probability
        return np.minimum(np.asarray(weights @ admitted_cdf(u), dtype=float), 1.0)

    # TPOT depends on a request's decode steps alone: computed once per distinct count
    n_u, first, inverse = im.distinct_steps
    life_u = n_u * t_d * slowdown
    active_u = _active_overlap_s(life_u, period / n_inst, period, window / s_mean)
    active = active_u[inverse]
    work_mean, work_var = compound_moments(
        rate_m, active_u, s_mean * phi, im.service_m2_s2 * phi**2, ca2 / n_inst
    )
    # the step's own fluctuation with the batch and its contexts (§6.8), over the n steps
    fluct = step_fluctuation(im, batch, ca2).averaged_var_s2[first]
    work_var = work_var + (n_u**2 * fluct)[:, None]

    work = CompoundGamma(work_mean, work_var)  # evaluated at many t: moments prepared once

    def tpot_cdf(t: float) -> np.ndarray:
        room = (t - t_d) * n_u
        ok = work.cdf(room[:, None]).mean(axis=1)[inverse]
        return np.where(n > 0, ok, 1.0)

    def tbt_cdf(bound_s: float, allowed: np.ndarray) -> np.ndarray:
        # prefill runs stall decodes only while the instance is active: an overloaded window
        # (ρ_w ≥ 1) is one run of its whole work, else runs start λ_m(1 − ρ_w) times per
        # active second, each long with the vLLM share (§7.2)
        if t_d > bound_s:
            return np.where(allowed >= n, 1.0, 0.0)
        if rho_w >= 1.0:
            per_active_s = float(phi * window + t_d > bound_s) * n_inst / max(period, 1e-12)
        else:
            share = long_stall_share(im.service_s, rho_w, t_d, bound_s)
            per_active_s = rate_m * (1.0 - rho_w) * share
        ok = count_cdf(allowed[:, None], active * per_active_s, ca2)
        return np.asarray(ok.mean(axis=1), dtype=float)

    return Latencies(
        ttft_cdf=ttft_cdf,
        tpot_cdf=tpot_cdf,
        decode_batch=batch,
        utilisation={
            "prefill": f_p,
            "active_window": rho_w,
            "decode": 1.0 - f_p,
            "kv": batch / im.kv_batch_limit,
        },
        network_bytes_s=0.0,
        ttft_driver=(
            f"pending until an instance earns a prefill back (wait {pending.mean_s:.2f} s mean; "
            f"saved TPOT {slack * 1e3:.0f} ms < prefill {s_mean * 1e3:.0f} ms)"
            if paced
            else f"prefill window {window:.2f} s (active-instance load {rho_w:.2f}, "
            f"rotation {period:.1f} s)"
        ),
        tpot_driver=(
            f"decode step {t_d * 1e3:.0f} ms at batch {batch:.0f}; prefill windows of "
            f"{window:.2f} s every {period:.1f} s (prefill share {f_p:.2f})"
        ),
        tbt_cdf=tbt_cdf,
    )


def window_prompts(batch: float, saved_s: float, prefill_s: float, earned_s: float) -> float:
    """Mean prompts an activation admits under check 2 (continuous; < 1: even the first pends).

    At a switch the instance's B decodes have saved M each on average. When j prompts (work s
    each, one inter-arrival gap apart) have been admitted, the old decodes have lost j·s to
    their prefills and earned j·e back (e: saved TPOT earned over one gap's decoding), the j
    new ones joined with nothing saved and have earned e·j(j − 1)/2 between them, and the
    window's work is j·s; the next prompt (j + 1)·s is admitted while the mean saved covers
    it: [B(M − j·s + j·e) + e·j(j − 1)/2] / (B + j) ≥ (j + 1)·s, i.e. a·j² + b·j + c ≤ 0 with
    a = s − e/2, b = s(2B + 1) − B·e + e/2, c = B(s − M). Returns 1 + the largest such j
    (inf when earnings outpace the prefills), or M/s when c > 0."""
    a = prefill_s - earned_s / 2.0
    b = prefill_s * (2.0 * batch + 1.0) - batch * earned_s + earned_s / 2.0
    c = batch * (prefill_s - saved_s)
    if c > 0.0:
        return saved_s / prefill_s
    if a <= 0.0:
        return np.inf
    return 1.0 + (-b + np.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)


ACTIVE_PHASES = 8  # positions of a request within its instance's activation


def _active_overlap_s(
    life_s: np.ndarray, active_s: float, period_s: float, prompts: float
) -> np.ndarray:
    """Seconds of a request's decode span spent while its instance admits prefills, for its
    admission at the midpoints u of ACTIVE_PHASES equal slices of its instance's activation
    [0, D). Shape (requests, ACTIVE_PHASES).

    The rest of its own activation brings the (k − 1)·(1 − u) prompts admitted after it (k per
    activation), min(L, (1 − u)·D)·(k − 1)/k seconds' worth; later activations start at
    T − u·D. With A(x) = ⌊x/T⌋·D + min(x mod T, D), the active time in [0, x) from the start
    of its own activation, they add A(u·D + L) − D when u·D + L > T."""
    if not np.isfinite(period_s):
        return np.zeros((life_s.size, ACTIVE_PHASES))
    u = (np.arange(ACTIVE_PHASES) + 0.5) / ACTIVE_PHASES
    life = life_s[:, None]
    after = min(max((prompts - 1.0) / prompts, 0.0), 1.0) if prompts > 0 else 0.0
    own = np.minimum(life, (1.0 - u)[None, :] * active_s) * after
    end = u[None, :] * active_s + life
    later = np.floor(end / period_s) * active_s + np.minimum(np.mod(end, period_s), active_s)
    return own + np.maximum(later - active_s, 0.0)

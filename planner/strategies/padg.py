"""PaDG: EcoServe's temporal disaggregation with rolling activation (DESIGN.md §1, fluid model).

A macro instance of N instances receives λ_m = λ / (macro instances). One instance at a time is
"active": it admits new requests until the predicted prefill work admitted since its switch
reaches the window budget P (admission check 1, TTFT), then the next instance in turn becomes
active. The window fills at λ_m·E[s] of predicted work per second (s: a prompt's prefill on its
own), so the rotation period is T = N·P/(λ_m·E[s]). The active instance prefills what it admits
at once (prefill priority), batching the prompts that wait: the whole stream λ_m flows to it, so
its batches hold k = 1 + λ_m·T(k) prompts (factor φ: InstanceModel.prefill_batching), a
window's work takes φ·P and the active instance is busy ρ_w = φ·λ_m·E[s]. Per instance the
prefill share is f_p = ρ_w/N, plus 2δ/T of switching (δ: one iteration of overhead per phase
change).

Admission check 2 (mean saved TPOT ≥ admitted prefill work) shrinks the window to the mean slack
of the decoding requests, E[n²]/(2E[n])·(S_TPOT − TPOT); check 3 bounds the batch by KV memory.
When even one prefill no longer fits the slack, requests pend: the macro instance is saturated.

TTFT: admission caps it at the window P (plus the residual decode step when an instance
switches); below that, a request waits in an M/G/1 at ρ_w that starts empty each window:
TTFT_i = min((W_q + p_i)/(1 − ρ_w) + r, P) when ρ_w < 1, and min(U[P(1 − 1/ρ_w), P] + r, P)
when the active instance is overloaded during its window.
TPOT: windows hit a request periodically, not as a Poisson stream: with x_i = n_i·t_d / (T − P)
windows during its n_i decode steps, it meets ⌊x_i⌋ of them when the active instance is
saturated (its admitted requests start decoding together, aligned with the rotation) or
⌊x_i⌋ / ⌈x_i⌉ at random phase otherwise, each adding (φ·P + 2δ)/n_i to its TPOT; the decode
batch follows from Little's law with that mean TPOT.
With N = 1 the model is exactly NoDG (vLLM): the single instance is always active.
"""

from __future__ import annotations

import numpy as np

from planner.queueing import mg1_wait, solve_decode_batch
from planner.strategies.base import Deployment, Latencies, Scenario, Unstable
from planner.strategies.nodg import kv_check, vllm_instance


def ecoserve(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    im = scen.instance(dep.tp, dep.pp)
    ca2 = scen.workload.arrivals.ca2
    n_inst = dep.macro_size
    macros = dep.instances // n_inst
    rate_m = rate / macros
    if n_inst == 1:
        return vllm_instance(im, rate_m, ca2)
    slo = scen.slo
    budget = min(dep.window_s if dep.window_s is not None else slo.ttft_s, slo.ttft_s)
    s_mean = im.service_mean_s  # predicted prefill work per request (admission units)
    phi, extra_s = im.prefill_batching(rate_m)
    rho_pred = rate_m * s_mean  # predicted work admitted per second
    rho_w = rho_pred * phi  # busy share of the active instance
    f_p = rho_w / n_inst
    if f_p >= 1.0:
        return Unstable(
            "prefill capacity", f"prefill share per instance {f_p:.2f} ≥ 1", {"prefill": f_p}
        )
    delta = im.perf.gpu.iteration_overhead_s
    n = im.steps
    slack_factor = float((n**2).mean() / (2.0 * max(n.mean(), 1e-9)))

    def windows(tpot_guess: float) -> tuple[float, float]:
        """Window of prefill work (admission checks 1 and 2) and rotation period."""
        slack = slack_factor * max(slo.tpot_s - tpot_guess, 0.0)
        window = min(budget, max(slack, 0.0))
        period = n_inst * window / rho_pred if rho_pred > 0 else np.inf
        return window, period

    def hits(t_d: float, window: float, period: float) -> tuple[np.ndarray, float]:
        """Windows each request meets during its decode, and the time one window takes.

        A window takes hit = φ·P + 2δ and recurs every rotation T, leaving T − hit of decoding:
        a request decoding n·t_d meets x = n·t_d/(T − hit) windows. When the active instance
        is saturated (ρ_w ≥ 1) its window is one contiguous prefill phase and the requests it
        admitted start decoding together at its end, so each meets exactly ⌊x⌋ later windows
        (long rotations spare short requests: rolling activation's point); otherwise
        prefills interleave with decode steps at a random phase and x is the expected count."""
        hit = window * phi + 2.0 * delta
        x = n * t_d / max(period - hit, 1e-9)
        return (np.floor(x) if rho_w >= 1.0 else x), hit

    # fixed point: TPOT depends on the window (switch overhead), the window on TPOT (slack)
    t_d = im.step_at(1.0)
    tpot = t_d / (1.0 - f_p)
    batch: float | None = 0.0
    for _ in range(30):
        window, period = windows(tpot)
        if window < s_mean:
            return Unstable(
                "TPOT slack",
                f"decoding requests' saved TPOT ({window * 1e3:.0f} ms) no longer covers one "
                f"prefill ({s_mean * 1e3:.0f} ms): new requests pend",
                {"prefill": f_p},
            )
        share = f_p + (2.0 * delta / period if np.isfinite(period) else 0.0)
        if share >= 1.0:
            return Unstable("prefill capacity", f"prefill + switching share {share:.2f} ≥ 1")
        k, hit = hits(t_d, window, period)
        slowdown = 1.0 + hit * float(k.sum()) / (t_d * max(float(n.sum()), 1e-9))
        batch = solve_decode_batch(rate_m / n_inst, im.mean_steps, im.step_s, slowdown)
        if batch is None:
            return Unstable("decode capacity", "decode cannot keep up", {"prefill": f_p})
        t_d = im.step_at(batch)
        new = t_d * slowdown
        if abs(new - tpot) < 1e-6:
            tpot = new
            break
        tpot = new
    assert batch is not None
    if (bad := kv_check(im, batch)) is not None:
        return bad
    residual = t_d / 2.0 + delta
    wait = mg1_wait(rate_m, s_mean * phi, im.service_m2_s2 * phi**2, ca2) if rho_w < 1.0 else None
    fixed = im.prefill_s + extra_s
    x, hit = hits(t_d, window, period)
    k_lo = np.floor(x)
    frac = x - k_lo

    def ttft_cdf(t: float) -> np.ndarray:
        # admission check 1 bounds a window's prefill work, so TTFT ≤ window for any request
        # whose own prefill fits in one
        if t >= window:
            return np.where(fixed <= t, 1.0, 0.0)
        u = t - residual
        if wait is not None:
            inner = wait.cdf(u * (1.0 - rho_w) - fixed)
        else:
            lo = window * (1.0 - 1.0 / rho_w)
            inner = np.full(fixed.shape, np.clip((u - lo) / max(window - lo, 1e-12), 0.0, 1.0))
        return np.where(fixed <= u, inner, 0.0)

    def tpot_cdf(t: float) -> np.ndarray:
        k_max = np.floor((t - t_d) * n / hit)
        p = np.where(k_max >= k_lo + 1, 1.0, np.where(k_max >= k_lo, 1.0 - frac, 0.0))
        return np.where(n > 0, np.where(t >= t_d, p, 0.0), 1.0)

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
            f"prefill window {window:.2f} s (active-instance load {rho_w:.2f}, "
            f"rotation {period:.1f} s)"
        ),
        tpot_driver=(
            f"decode step {t_d * 1e3:.0f} ms at batch {batch:.0f}; prefill windows of "
            f"{window:.2f} s every {period:.1f} s (prefill share {f_p:.2f})"
        ),
    )

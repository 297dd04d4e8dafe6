"""NoDG: prefill and decode colocated in each instance (docs/model.md §7.2, §7.3).

vllm — separate batching, prefill priority. Per instance (rate λ/n), prefills form an M/G/1
  (G/G/1) queue with utilisation ρ_p = λ_i·E[s], s the per-prompt share of a prefill batch
  (waiting prompts are batched; see InstanceModel.prefill_batching). A request's first decode
  waits until the prefill queue empties, so TTFT = (W_q + p_i)/(1 − ρ_p) + r, with W_q
  exponential-tailed (Allen–Cunneen mean), p_i its prefill stretched by its batch, and r the
  residual of the decode step in progress (t_d/2). Decodes run only when no
  prefill waits: TPOT_i = t_d(B) + X_i/n_i, where X_i is the prefill work arriving during the
  request's n_i decode steps (compound renewal sum, Gamma moment match). Decode batch B from
  Little's law with TPOT = t_d(B)/(1 − ρ_p).

sarathi — chunked prefill under a per-iteration token budget C, decode priority (stall-free).
  Each iteration carries all B decodes plus up to C − B prefill tokens; its time comes from the
  roofline hybrid step, including the chunk's re-read of the prompt prefix KV (with pp stages,
  as pp micro-batches like a decode step). A full iteration sets the prefill capacity
  μ = (C − B)/t_full tokens/s: TTFT = W_q + I_i/μ + t_c, an M/G/1 in tokens. A typical hybrid
  iteration carries only what waits, c = min(C − B, max(E[I], λ·E[I]·t_c)) tokens (a whole
  short prompt, or the tokens arriving per iteration at high rates), and takes t_c; hybrid
  iterations fill a share min(1, λ·E[I]·t_c/c) of the time, and the mean iteration time is the
  harmonic mix of t_c and t_d. A request's TPOT rises by (t_c − t_d)/n_i for each hybrid
  iteration it shares, counted from the compound prefill work arriving during its life and its
  own wait and prefill (with decode priority, prompts queued behind it are chunked into its
  decode iterations).

Paged KV (every strategy, `base.predict`): by PASTA, the share of time the KV cache is full is
the share of requests that wait for memory or are preempted; they count as missing the SLO.
"""

from __future__ import annotations

import numpy as np

from planner.deployment import Deployment
from planner.queueing import (
    compound_cdf,
    compound_moments,
    mg1_wait,
    routed_ca2,
    solve_decode_batch,
)
from planner.scenario import InstanceModel, Scenario
from planner.strategies.base import Latencies, Unstable


def kv_check(im: InstanceModel, batch: float) -> Unstable | None:
    if batch > im.kv_batch_limit:
        return Unstable(
            "max_num_seqs" if im.seq_limited else "KV memory",
            f"decode batch {batch:.0f} exceeds what {im.batch_limit_reason} holds per instance",
            {"kv": batch / im.kv_batch_limit},
        )
    return None


def vllm_instance(im: InstanceModel, rate_i: float, ca2: float) -> Latencies | Unstable:
    """vLLM-style separate batching on one instance receiving `rate_i` requests/s; waiting
    prompts are prefilled together (`InstanceModel.batched_service`)."""
    t_d = im.step_at(1.0)
    for _ in range(2):  # batching depends on the decode step a prompt waits on, and back
        s_mean, s_m2, extra_s = im.batched_service(rate_i, t_d)
        rho = rate_i * s_mean
        if rho >= 1.0:
            return Unstable(
                "prefill capacity", f"prefill utilisation {rho:.2f} ≥ 1", {"prefill": rho}
            )
        slowdown = 1.0 / (1.0 - rho)
        batch = solve_decode_batch(rate_i, im.mean_steps, im.step_s, slowdown)
        if batch is None:
            return Unstable(
                "decode capacity",
                "decode cannot keep up at any batch the KV cache holds",
                {"prefill": rho},
            )
        t_d = im.step_at(batch)
    assert batch is not None
    if (bad := kv_check(im, batch)) is not None:
        return bad
    wait = mg1_wait(rate_i, s_mean, s_m2, ca2)
    residual = t_d / 2.0
    fixed = im.prefill_s + extra_s
    n = im.steps
    life = n * t_d * slowdown
    x_mean, x_var = compound_moments(rate_i, life, s_mean, s_m2, ca2)

    def ttft_cdf(t: float) -> np.ndarray:
        return wait.cdf((t - residual) * (1.0 - rho) - fixed)

    def tpot_cdf(t: float) -> np.ndarray:
        ok = compound_cdf((t - t_d) * n, x_mean, x_var)
        return np.where(n > 0, ok, 1.0)

    return Latencies(
        ttft_cdf=ttft_cdf,
        tpot_cdf=tpot_cdf,
        decode_batch=batch,
        utilisation={"prefill": rho, "decode": 1.0 - rho, "kv": batch / im.kv_batch_limit},
        network_bytes_s=0.0,
        ttft_driver=(
            f"prefill queue (utilisation {rho:.2f}, prefill {np.mean(fixed) * 1e3:.0f} ms mean)"
        ),
        tpot_driver=(
            f"decode step {t_d * 1e3:.0f} ms at batch {batch:.0f}, stretched by prefill "
            f"interruptions (prefill utilisation {rho:.2f})"
        ),
    )


def vllm(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    """NoDG with vLLM's separate batching; arrivals split evenly over the instances."""
    im = scen.instance(dep.tp, dep.pp)
    ca2 = routed_ca2(scen.workload.arrivals.ca2, dep.instances)  # round-robin over instances
    return vllm_instance(im, rate / dep.instances, ca2)


def _hybrid_iterations(
    im: InstanceModel, budget_tokens: int, token_rate: float
) -> tuple[np.ndarray, ...]:
    """(decode batches b = 0..C, prompt-token room C − b, time of a full hybrid iteration,
    prompt tokens c of a typical hybrid iteration and its time t_c) at each b.

    A full iteration fills the budget; it sets the chunked-prefill capacity μ = (C − b)/t_full.
    A typical iteration takes what waits: c = min(C − b, max(E[I], λ·E[I]·t_c)) tokens — long
    prompts fill the budget, short ones arrive one (E[I] tokens) or, at high rates,
    λ·E[I]·t_c tokens per iteration. With t_c linear in c between c = E[I] and the full chunk
    (t = t_0 + k·c), the fixed point is c = λ·E[I]·t_0 / (1 − λ·E[I]·k), clipped to
    [E[I], C − b] (the full chunk when λ·E[I]·k ≥ 1), then refined by two passes of the map
    itself, since t_c is convex rather than linear in c. A chunk re-reads its prompt's prefix KV:
    the token-weighted mean prefix E[I²]/(2E[I]) less c/2 (with a prefix cache, over the
    computed tokens: `InstanceModel.chunk_prefix_tokens`). The rate-independent parts are
    computed once per instance and budget.
    """
    mean_in = float(im.prefill_tokens.mean())
    half_prompt = im.chunk_prefix_tokens
    batch = np.arange(min(im.step_s.size, budget_tokens + 1), dtype=float)

    def step_s(chunk: np.ndarray) -> np.ndarray:
        prefix = np.maximum(half_prompt - chunk / 2.0, 0.0)
        t = im.perf.hybrid_step(batch, im.decode_context, chunk, prefix).total_s
        return np.asarray(t, dtype=float)

    if budget_tokens not in im.hybrid_tables:
        room = np.maximum(budget_tokens - batch, 0.0)
        one = np.minimum(room, mean_in)
        t_one, t_full = step_s(one), step_s(room)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(room > one, (t_full - t_one) / (room - one), 0.0)
        im.hybrid_tables[budget_tokens] = (room, one, t_one, t_full, slope)
    room, one, t_one, t_full, slope = im.hybrid_tables[budget_tokens]
    pull = token_rate * slope
    with np.errstate(divide="ignore", invalid="ignore"):
        fixed = token_rate * (t_one - slope * one) / (1.0 - pull)
    chunk = np.where(pull < 1.0, np.clip(fixed, one, room), room)
    for _ in range(2):  # the step time is convex in c, not linear: refine on the curve itself
        chunk = np.where(pull < 1.0, np.clip(token_rate * step_s(chunk), one, room), room)
    return batch, room, t_full, chunk, step_s(chunk)


def sarathi(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    """NoDG with Sarathi-style chunked prefill under a token budget of `chunk_tokens`."""
    im = scen.instance(dep.tp, dep.pp)
    ca2 = routed_ca2(scen.workload.arrivals.ca2, dep.instances)  # round-robin over instances
    rate_i = rate / dep.instances
    prompt = im.prefill_tokens  # tokens to compute: cached prefix tokens are not scheduled
    token_rate = rate_i * float(prompt.mean())
    b, room, t_full, chunk, t_c = _hybrid_iterations(im, dep.chunk_tokens, token_rate)
    t_d = im.step_s[: b.size]
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(room > 0, room / t_full, 0.0)  # prefill capacity, tokens/s
        rho = np.where(mu > 0, token_rate / mu, np.inf)
        # share of time in hybrid iterations of c tokens
        hyb = np.where(chunk > 0, np.minimum(token_rate * t_c / chunk, 1.0), 1.0)
        tpot_mean = np.where(rho < 1, 1.0 / (hyb / t_c + (1 - hyb) / t_d), np.inf)
        # single-token outputs (no decode steps) times an overloaded budget's inf is NaN,
        # which the test below rejects like the overload it is
        demand = rate_i * im.mean_steps * tpot_mean
    ok = np.nonzero((demand <= b) & (rho < 1))[0]
    ok = ok[ok >= 1]
    if ok.size == 0:
        r0 = float(rho[1])
        if r0 >= 1.0:
            return Unstable(
                "prefill capacity", f"chunked prefill utilisation {r0:.2f} ≥ 1", {"prefill": r0}
            )
        return Unstable(
            "decode capacity",
            f"decodes fill the {dep.chunk_tokens}-token budget before keeping up",
            {"prefill": r0},
        )
    i = int(ok[0])
    batch = float(max(demand[i], 1.0)) if i == 1 else float(i)
    if (bad := kv_check(im, batch)) is not None:
        return bad
    t_ci, t_di, mu_i, rho_i = float(t_c[i]), float(t_d[i]), float(mu[i]), float(rho[i])
    service = prompt / mu_i  # a prompt's chunked prefill when the queue is busy
    wait = mg1_wait(rate_i, float(service.mean()), float((service**2).mean()), ca2)
    active = prompt * t_ci / max(float(chunk[i]), 1.0)  # hybrid seconds a prompt adds
    n = im.steps
    life = n * float(tpot_mean[i])
    # decodes have priority, so a request decodes as soon as its own prefill ends, while the
    # prompts that arrived during its wait and prefill are still queued (FIFO): they are chunked
    # into its decode iterations too, so the horizon of interfering work includes its sojourn
    horizon = life + wait.mean_s + service
    x_mean, x_var = compound_moments(
        rate_i, horizon, float(active.mean()), float((active**2).mean()), ca2
    )
    gain = t_ci / max(t_ci - t_di, 1e-12)  # prefill-active seconds per second of TPOT excess·n

    def ttft_cdf(t: float) -> np.ndarray:
        return wait.cdf(t - service - t_ci)

    def tpot_cdf(t: float) -> np.ndarray:
        if t >= t_ci:
            return np.ones_like(n)
        ok_ = compound_cdf((t - t_di) * n * gain, x_mean, x_var)
        return np.where(n > 0, ok_, 1.0)

    return Latencies(
        ttft_cdf=ttft_cdf,
        tpot_cdf=tpot_cdf,
        decode_batch=batch,
        utilisation={"prefill": rho_i, "decode": 1.0, "kv": batch / im.kv_batch_limit},
        network_bytes_s=0.0,
        ttft_driver=(
            f"chunked prefill at {mu_i:,.0f} tokens/s (utilisation {rho_i:.2f}, "
            f"hybrid iteration {t_ci * 1e3:.0f} ms)"
        ),
        tpot_driver=(
            f"hybrid iterations of {t_ci * 1e3:.0f} ms (decode-only {t_di * 1e3:.0f} ms) at batch "
            f"{batch:.0f}"
        ),
    )

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
  harmonic mix of t_c and t_d. A request's TPOT follows from the compound prompt tokens
  arriving during its life and its own wait and prefill (with decode priority, prompts queued
  behind it are chunked into its decode iterations), spread over its n iterations on the
  piecewise-linear map of an iteration's time through t_d, t_c and t_full
  (`HybridIterations`): it reaches 1 only at t_full, the longest iteration.

Paged KV (every strategy, `base.predict`): by PASTA, the share of time the KV cache is full is
the share of requests that wait for memory or are preempted; they count as missing the SLO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.deployment import Deployment
from planner.queueing import (
    CompoundGamma,
    compound_moments,
    mg1_wait,
    renewal_compound_cdf,
    routed_ca2,
    solve_decode_batch,
)
from planner.scenario import InstanceModel, Scenario
from planner.strategies.base import Latencies, Unstable
from planner.strategies.decode_batch import step_fluctuation


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
    # the work arriving during its life stretches the life it arrives in: the life is a
    # first passage n·t_d + X(life), whose variance carries 1/(1 − ρ)³ (§6.3), so the variance
    # is counted over life·slowdown² while the mean is over life
    x_mean, _ = compound_moments(rate_i, life, s_mean, s_m2, ca2)
    _, x_var = compound_moments(rate_i, life * slowdown**2, s_mean, s_m2, ca2)

    def ttft_cdf(t: float) -> np.ndarray:
        return wait.cdf((t - residual) * (1.0 - rho) - fixed)

    # the step itself fluctuates with the batch and its contexts (§6.8): its spread over the
    # request's n steps joins the interruption work's in one Gamma above t_d
    x_var = x_var + n**2 * step_fluctuation(im, batch, ca2).averaged_var_s2

    work = CompoundGamma(x_mean, x_var)  # evaluated at many t: moments prepared once

    def tpot_cdf(t: float) -> np.ndarray:
        ok = work.cdf((t - t_d) * n)
        return np.where(n > 0, ok, 1.0)

    def tbt_cdf(bound_s: float, allowed: np.ndarray) -> np.ndarray:
        # a prefill run (busy period) starts λ_i(1 − ρ) times a second; over the request's life
        # n·t_d/(1 − ρ) that is λ_i·n·t_d runs, a share of which stall its decodes too long
        if t_d > bound_s:
            return np.where(allowed >= n, 1.0, 0.0)
        # counted from the request's own arrival, an arrival of its instance's stream: with a
        # round-robin router that stream is smooth (c² = c_a²/instances), and the next run
        # starts about one whole gap later (`renewal_compound_cdf`)
        share = long_stall_share(im.service_s, rho, t_d, bound_s)
        return renewal_compound_cdf(allowed, rate_i * n * t_d, ca2, share, 1.0)

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
        tbt_cdf=tbt_cdf,
    )


def long_stall_share(service_s: np.ndarray, rho: float, step_s: float, bound_s: float) -> float:
    """Share of prefill runs that make a decode gap longer than `bound_s` (docs/model.md §7.2):
    a run started by a prompt of queue service s (its prefill occupancy, latency/pp) lasts on
    average s/(1 − ρ) (the M/G/1 busy period it starts, ρ the prefill utilisation), and the
    decodes it stalls see a gap of that plus their step t_d; the share of sampled prompts with
    s/(1 − ρ) + t_d > bound."""
    run_s = np.asarray(service_s, dtype=float) / max(1.0 - rho, 1e-12)
    return float(np.mean(run_s + step_s > bound_s))


def vllm(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    """NoDG with vLLM's separate batching; arrivals split evenly over the instances."""
    im = scen.instance(dep.tp, dep.pp)
    ca2 = routed_ca2(scen.workload.arrivals.ca2, dep.instances)  # round-robin over instances
    return vllm_instance(im, rate / dep.instances, ca2)


# chunk sizes at which a Sarathi hybrid iteration is timed, per decode batch (one prompt to the
# full room): the typical chunk of each rate is interpolated on them (docs/model.md §7.3)
HYBRID_GRID = 17


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
    computed once per instance and budget, including the step time at HYBRID_GRID chunk sizes
    from one prompt to the full room, on which t_c is interpolated linearly (t_c is smooth and
    convex in c, so the chord error is a small fraction of a grid step's change).
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
    if token_rate <= 0.0:  # the search's bound needs only the end points
        return batch, room, t_full, one, t_one
    if budget_tokens not in im.hybrid_grids:
        # the step time at HYBRID_GRID chunk sizes from one prompt to the full room, per batch
        frac = np.linspace(0.0, 1.0, HYBRID_GRID)
        chunks = one[:, None] + frac[None, :] * (room - one)[:, None]
        inner = [step_s(chunks[:, j]) for j in range(1, HYBRID_GRID - 1)]
        im.hybrid_grids[budget_tokens] = np.stack([t_one, *inner, t_full], axis=1)
    times = im.hybrid_grids[budget_tokens]

    def step_at(chunk: np.ndarray) -> np.ndarray:
        """The tabulated step time at `chunk` prompt tokens (linear between grid points)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            pos = np.where(room > one, (chunk - one) / (room - one), 0.0) * (HYBRID_GRID - 1)
        j = np.clip(np.floor(pos).astype(int), 0, HYBRID_GRID - 2)
        w = np.clip(pos - j, 0.0, 1.0)
        rows = np.arange(times.shape[0])
        return np.asarray(times[rows, j] * (1.0 - w) + times[rows, j + 1] * w, dtype=float)

    pull = token_rate * slope
    with np.errstate(divide="ignore", invalid="ignore"):
        fixed = token_rate * (t_one - slope * one) / (1.0 - pull)
    chunk = np.where(pull < 1.0, np.clip(fixed, one, room), room)
    for _ in range(2):  # the step time is convex in c, not linear: refine on the curve itself
        chunk = np.where(pull < 1.0, np.clip(token_rate * step_at(chunk), one, room), room)
    return batch, room, t_full, chunk, step_at(chunk)


@dataclass(frozen=True)
class HybridIterations:
    """The iterations a Sarathi request decodes in (docs/model.md §7.3): decode-only (t_d),
    typical hybrid (c prompt tokens, t_c) and full hybrid (the budget's room C − B, t_full).
    Between them an iteration's time is taken linear in its prompt tokens: the piecewise-linear
    map through (0, t_d), (c, t_c), (C − B, t_full)."""

    t_decode_s: float
    t_typical_s: float
    t_full_s: float
    typical_tokens: float
    full_tokens: float

    def tokens_within(self, t: float, steps: np.ndarray) -> np.ndarray:
        """The most prompt tokens Y* that n decode iterations can carry with the request's TPOT
        still ≤ t. With Y tokens chunked into its n iterations, TPOT(Y) = t_d + Y·(t_c − t_d)/(c·n)
        while Y ≤ n·c (Y/c typical iterations), then every iteration carries Y/n tokens and
        TPOT = t_c + (Y/n − c)·(t_full − t_c)/(C − B − c) up to n·(C − B), and t_full beyond
        (the rest waits for later iterations). Inverting: Y* = (t − t_d)·n·c/(t_c − t_d) below t_c,
        n·(c + (t − t_c)·(C − B − c)/(t_full − t_c)) up to t_full, inf from t_full on (every
        iteration takes at most t_full) and −1 below t_d."""
        n = np.asarray(steps, dtype=float)
        t_d, t_c, t_f = self.t_decode_s, self.t_typical_s, self.t_full_s
        c, room = self.typical_tokens, self.full_tokens
        if t < t_d:
            return np.full(n.shape, -1.0)
        if t >= t_f:
            return np.full(n.shape, np.inf)
        if t < t_c:
            return (t - t_d) * n * c / max(t_c - t_d, 1e-12)
        return n * (c + (t - t_c) * max(room - c, 0.0) / max(t_f - t_c, 1e-12))

    def long_iterations(self, prompt_tokens: np.ndarray, bound_s: float) -> np.ndarray:
        """Iterations longer than `bound_s` that a prompt of I tokens causes: chunked alone, it
        fills ⌊I/(C − B)⌋ full iterations and one of the remaining I mod (C − B) tokens, and an
        iteration is long when its chunk exceeds c_b, the chunk whose time is the bound
        (`tokens_within` for one step)."""
        c_b = float(self.tokens_within(bound_s, np.ones(1))[0])
        room = max(self.full_tokens, 1.0)
        i = np.asarray(prompt_tokens, dtype=float)
        full = np.floor(i / room)
        rest = i - full * room
        return full * float(room > c_b) + (rest > c_b)


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
    iters = HybridIterations(
        t_decode_s=t_di,
        t_typical_s=t_ci,
        t_full_s=float(t_full[i]),
        typical_tokens=float(chunk[i]),
        full_tokens=float(room[i]),
    )
    n = im.steps
    life = n * float(tpot_mean[i])
    # decodes have priority, so a request decodes as soon as its own prefill ends, while the
    # prompts that arrived during its wait and prefill are still queued (FIFO): they are chunked
    # into its decode iterations too, so the horizon of interfering work includes its sojourn
    horizon = life + wait.mean_s + service
    mean_in, m2_in = float(prompt.mean()), float((prompt**2).mean())
    y_mean, _ = compound_moments(rate_i, horizon, mean_in, m2_in, ca2)
    # as for vLLM (first passage, §6.3): the hybrid iterations stretch the life they are
    # counted over, by TPOT/t_d on average, which multiplies the life's share of the variance
    # by that stretch squared
    stretch = float(tpot_mean[i]) / t_di
    _, y_var = compound_moments(rate_i, horizon + life * (stretch**2 - 1.0), mean_in, m2_in, ca2)
    # the step's own fluctuation (§6.8) in prompt-token equivalents: below t_c, Y tokens raise
    # a request's TPOT by Y·(t_c − t_d)/(c·n), so a TPOT deviation δ weighs n·δ·c/(t_c − t_d)
    if t_ci - t_di > 1e-6:
        per_token = float(chunk[i]) / (t_ci - t_di)
        y_var = y_var + (n * per_token) ** 2 * step_fluctuation(im, batch, ca2).averaged_var_s2

    def ttft_cdf(t: float) -> np.ndarray:
        return wait.cdf(t - service - t_ci)

    tokens = CompoundGamma(y_mean, y_var)  # evaluated at many t: moments prepared once

    def tpot_cdf(t: float) -> np.ndarray:
        ok_ = tokens.cdf(iters.tokens_within(t, n))
        return np.where(n > 0, ok_, 1.0)

    def tbt_cdf(bound_s: float, allowed: np.ndarray) -> np.ndarray:
        # long gaps: the iterations whose prompt chunk makes them longer than the bound, counted
        # per arriving prompt (`HybridIterations.long_iterations`) over the same horizon
        if t_di > bound_s:
            return np.where(allowed >= n, 1.0, 0.0)
        # counted from the request's own arrival, over its instance's stream of prompts (smooth
        # behind a round-robin router: `renewal_compound_cdf`, as for vLLM)
        h = iters.long_iterations(prompt, bound_s)
        positive = h[h > 0.0]
        if positive.size == 0:
            return np.ones_like(np.asarray(allowed, dtype=float))
        return renewal_compound_cdf(
            allowed,
            rate_i * horizon,
            ca2,
            positive.size / h.size,
            float(positive.mean()),
            float(positive.var()),
        )

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
        tbt_cdf=tbt_cdf,
    )

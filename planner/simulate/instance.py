"""One simulated serving instance, iteration by iteration (docs/model.md §10.2).

Modes:
  vllm     — separate batching with prefill priority: whenever prompts wait and their KV fits,
             the next iteration is a prefill batch (up to `max_batched_tokens` tokens); otherwise a
             decode step of every running request. EcoServe instances run the same way; what
             differs is which requests the macro-instance scheduler routes to them.
  sarathi  — every iteration carries all running decodes plus prompt chunks up to the token
             budget (stall-free chunked prefill).
  prefill  — FuDG prefill instance: prefill batches only; a prompt's KV stays held until the
             strategy releases it (after its transfer).
  decode   — FuDG decode instance: requests arrive with their KV and only decode.

Decode bookkeeping is O(1) per iteration: the instance counts its decode iterations k, a request
joining at k0 with n steps left finishes at k0 + n (a heap of finish counts), and the KV tokens
read per step are Σ prompt + Σ cached prefix + B·k − Σ k0. KV memory is paged (vLLM): a
prompt's KV is reserved when its prefill starts, each decode step adds one token per request,
and when the cache is full the most recently admitted request is preempted and later recomputed
(its prompt plus the tokens it had generated), as vLLM's recompute preemption does. A prompt's
tokens found in the shared prefix cache are neither prefilled nor held per request: the
instance's cache is smaller by the prefix (docs/model.md §10.2).

A request's first decode step starts its TPOT clock and ends its TTFT (EcoServe's measure).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from planner.perf.iteration import IterationTimer

Mode = Literal["vllm", "sarathi", "prefill", "decode"]


@dataclass
class RequestTable:
    """Per-request state shared by all instances of one simulation (plain lists: fast scalar
    access in the event loop)."""

    arrival_s: list[float]
    prompt: list[int]  # tokens to prefill (grows by the generated tokens after a preemption)
    remaining: list[int]  # decode steps still to run
    steps: list[int]  # decode steps after the first token: output − 1
    attention_s: list[float]  # attention time of the original prompt on its own
    first_decode_s: list[float]  # start of the first decode step (−1: not yet)
    finish_s: list[float]  # end of the last decode step (−1: not yet)
    reserve: list[int]  # KV tokens reserved beyond the prompt (KV policy; 0 under paged)
    preemptions: int = 0
    tbt_s: float = float("inf")  # per-token gap bound (the SLO's tbt_s; inf: none)
    long_gaps: list[int] = field(default_factory=list)  # gaps over tbt_s per request (if set)
    # prompt tokens found in the shared prefix cache: not prefilled, held once per instance
    # (not in `prompt`), read by every decode step; empty when no request reuses a prefix
    cached: list[int] = field(default_factory=list)

    def cached_at(self, rid: int) -> int:
        return self.cached[rid] if self.cached else 0


@dataclass
class InstanceStats:
    prefill_busy_s: float = 0.0
    decode_busy_s: float = 0.0
    hybrid_busy_s: float = 0.0
    iterations: int = 0
    batch_time_s: float = 0.0  # ∫ decode batch dt


# the running iteration's kind, the prompts it completes and its end; shared constants for the
# commonest cases (nothing to complete), never mutated
_NO_PROMPTS: list[int] = []
_IDLE: tuple[str, list[int], float] = ("idle", _NO_PROMPTS, 0.0)


@dataclass
class Instance:
    """Iteration-level state machine of one instance; the strategy's event loop calls
    `start(now)` when the instance is free and `complete(now)` when an iteration ends."""

    timer: IterationTimer
    kv_capacity_tokens: int
    requests: RequestTable
    mode: Mode = "vllm"
    max_batched_tokens: int = 8192
    max_num_seqs: int = 1 << 30  # the engine's cap on sequences decoding or being prefilled
    chunk_tokens: int = 512
    on_prefilled: Callable[[int, float], None] | None = None  # prefill mode: hand the KV on
    # called with (start time, tokens) when a prefill batch starts (DistServe: link traffic)
    on_prefill_batch: Callable[[float, int], None] | None = None
    waiting: deque[int] = field(default_factory=deque)
    ready: deque[tuple[float, int]] = field(default_factory=deque)
    stats: InstanceStats = field(default_factory=InstanceStats)
    busy: bool = False
    window_s: tuple[float, float] = (0.0, float("inf"))  # iterations starting here are counted
    # decode state
    k: int = 0
    n_run: int = 0
    sum_prompt_run: int = 0
    sum_cached_run: int = 0  # shared prefix tokens the running requests read (not held)
    sum_k0: int = 0
    sum_first_s: float = 0.0
    kv_static: int = 0  # KV tokens of requests prefilling, ready to join, or held for transfer
    kv_waiting: int = 0  # KV needs of requests queued for prefill (not yet reserved)
    lend_share: float = 0.0  # share of unused reservations lent to others (pipelining)
    reserve_extra: int = 0  # reserved but not yet used KV tokens of running requests
    n_within: int = 0  # running requests still inside their reservation
    _res_end: list[tuple[int, int]] = field(default_factory=list)
    _fin: list[tuple[int, int]] = field(default_factory=list)
    _k0: dict[int, int] = field(default_factory=dict)
    _order: list[int] = field(default_factory=list)
    _progress: dict[int, int] = field(default_factory=dict)  # sarathi: prompt tokens done
    _recomputed: set[int] = field(default_factory=set)  # preempted, KV rebuilt here
    _current: tuple[str, list[int], float] = ("idle", [], 0.0)
    # per-token gaps (TBT SLO): `gaps` counts the decode iterations whose gap since the previous
    # one exceeded the bound; a request's long gaps are the count's change while it ran
    gaps: int = 0
    _g0: dict[int, int] = field(default_factory=dict)
    _joined: list[int] = field(default_factory=list)  # joined at the running iteration
    _step_start_s: float = 0.0
    _last_step_end_s: float = 0.0
    last_end_s: float = 0.0  # where `decode_until` stopped
    # `decode_until`'s fixed inputs (set on its first call, once the run's window is known)
    _until_env: tuple[Any, ...] | None = None

    # ---- queries -----------------------------------------------------------------------------
    @property
    def kv_used(self) -> int:
        return self.sum_prompt_run + self.n_run * self.k - self.sum_k0 + self.kv_static

    def kv_committed(self) -> float:
        """KV tokens in use plus the reservations not lent out (the admission view)."""
        return self.kv_used + self.reserve_extra * (1.0 - self.lend_share)

    def kv_free_for_new(self) -> float:
        """KV tokens neither committed nor promised to queued requests."""
        return self.kv_capacity_tokens - self.kv_committed() - self.kv_waiting

    def need(self, rid: int) -> int:
        """KV tokens a request reserves when its prefill starts here: its prompt, plus its
        reservation under a reserving policy (not on a FuDG prefill instance)."""
        req = self.requests
        return req.prompt[rid] + (0 if self.mode == "prefill" else req.reserve[rid])

    def mean_saved_tpot_s(self, now: float, tpot_slo_s: float) -> float | None:
        """Mean over running decodes of L_q·S_TPOT − (now − first decode), L_q the steps done
        (EcoServe admission check 2); None when nothing decodes."""
        if self.n_run == 0:
            return None
        mean_done = self.k - self.sum_k0 / self.n_run
        return tpot_slo_s * mean_done - now + self.sum_first_s / self.n_run

    def next_ready_s(self) -> float | None:
        return self.ready[0][0] if self.ready else None

    def load(self) -> int:
        """Requests here: decoding, prefilled or arrived awaiting their first step, partly
        prefilled, and queued (what a least-loaded router compares)."""
        return self.n_run + len(self.ready) + len(self._progress) + len(self.waiting)

    # ---- arrivals ------------------------------------------------------------------------------
    def enqueue(self, rid: int) -> None:
        """A request to prefill here."""
        self.waiting.append(rid)
        self.kv_waiting += self.need(rid)

    def deliver(self, rid: int, now: float) -> None:
        """A request whose KV has arrived (decode mode)."""
        self.ready.append((now, rid))

    def release(self, rid: int) -> None:
        """Free the KV a prefill instance held for `rid` (its transfer has finished)."""
        self.kv_static -= self.requests.prompt[rid]

    # ---- iterations ----------------------------------------------------------------------------
    def start(self, now: float) -> float | None:
        """Begin the next iteration at `now`; returns its end time, or None when idle."""
        if self.mode == "sarathi":
            return self._start_hybrid(now)
        if self.waiting:  # decode instances prefill only to recompute preempted requests
            end = self._start_prefill(now)
            if end is not None:
                return end
        if self.mode == "prefill":
            return None
        ready = self.ready
        if ready and ready[0][0] <= now:
            self._join(now)
        n = self.n_run
        if n == 0:
            return None
        if self._overflows():
            self._make_room()
            n = self.n_run
        # `_kv_read()` inlined: every running request's whole context, its cached prefix included
        kv = float(self.sum_prompt_run + self.sum_cached_run + n * self.k - self.sum_k0)
        dt = self.timer.decode_s(n, kv)
        self._step_start_s = now
        self._current = ("decode", _NO_PROMPTS, now + dt)
        if self.window_s[0] <= now < self.window_s[1]:
            self.stats.decode_busy_s += dt
            self.stats.batch_time_s += self.n_run * dt
            self.stats.iterations += 1
        self.busy = True
        return now + dt

    def complete(self, now: float) -> None:
        """End the running iteration at `now`."""
        kind, batch, done_s = self._current
        self.busy = False
        self._current = _IDLE
        if kind == "decode":
            if self.n_run:
                self._advance(now)
        elif kind == "prefill":
            for rid in batch:
                self._prefilled(rid, done_s)
        elif kind == "hybrid":
            if self.n_run:
                self._advance(now)
            for rid in batch:  # sarathi prompts whose last chunk ran
                self._prefilled(rid, now)

    def decode_running(self) -> bool:
        """Is the running iteration one whose end only advances the decodes (a decode step, or
        a hybrid one that completes no prompt)?"""
        kind, prompts, _ = self._current
        return kind == "decode" or (kind == "hybrid" and not prompts)

    def decode_until(self, now: float, limit: float) -> float | None:
        """End the decode step finishing at `now` and run the next steps back to back while each
        is a plain decode step (no prompt queued or in progress, no prefilled request due, the
        next tokens fit) and the one before it ended by `limit`: exactly what `complete` then
        `start` do step by step (in sarathi mode such a step is its hybrid iteration without
        chunks), without returning to the event loop (`run._OwnClock`). Returns the end of the
        step left running (after `limit`), or None when the instance stopped at a step's end
        with something else to do: the caller then calls `start` at that time, which it reads
        from `last_end_s`.

        The simulator's hottest loop: the batch's sums are held in locals between the steps
        where a request finishes or leaves its reservation (those go through `_advance`), the
        KV read and held are kept as base + n·k (`_kv_read`, `kv_used`), `_overflows` is
        inlined, and the statistics are summed step by step in the same order as `start`
        does, so the results are the same to the bit."""
        env = self._until_env
        if env is None:  # what does not change during a run, gathered once
            env = self._until_env = (
                self.timer.decode_s,
                self.stats,
                *self.window_s,
                "hybrid" if self.mode == "sarathi" else "decode",
                self.ready,
                self.waiting,
                self._progress,
                self._fin,
                self._res_end,
                not self.requests.long_gaps,  # no per-token gaps to count
                self.kv_capacity_tokens,
                1.0 - self.lend_share,
            )
        (
            decode_s,
            stats,
            w0,
            w1,
            kind,
            ready,
            waiting,
            progress,
            fin,
            res,
            plain_ends,
            cap,
            unlent,
        ) = env
        decode_busy, batch_time, iterations = stats.decode_busy_s, stats.batch_time_s, 0
        start_s = self._step_start_s
        k, n = self.k, self.n_run
        held, read, reserved, n_within = self._batch_sums(unlent)
        end: float | None = None
        while True:
            # the step running until `now` ends (`complete`, `_advance`)
            if n:
                if (
                    plain_ends
                    and not n_within
                    and not (res and res[0][0] <= k + 1)
                    and not (fin and fin[0][0] <= k + 1)
                ):
                    k += 1  # nobody finishes or leaves a reservation at this step
                else:
                    self.k, self._step_start_s = k, start_s
                    self._advance(now)
                    k, n = self.k, self.n_run
                    held, read, reserved, n_within = self._batch_sums(unlent)
            if n == 0 or waiting or progress or (ready and ready[0][0] <= now):
                break
            used = held + n * k  # `kv_used`
            if used + n > cap or used + reserved + (n - n_within) > cap:
                break  # `_overflows`: `start` makes room first
            # `start`'s decode step
            dt = decode_s(n, float(read + n * k))
            start_s = now
            if w0 <= now < w1:
                decode_busy += dt
                batch_time += n * dt
                iterations += 1
            now += dt
            if now > limit:
                end = now
                break
        self.k, self._step_start_s, self.last_end_s = k, start_s, now
        stats.decode_busy_s, stats.batch_time_s = decode_busy, batch_time
        stats.iterations += iterations
        if end is None:
            self.busy = False
            self._current = _IDLE
            return None
        self.busy = True
        self._current = (kind, _NO_PROMPTS, end)
        return end

    def _batch_sums(self, unlent: float) -> tuple[int, int, float, int]:
        """(KV held less n·k, KV read less n·k, reservations not lent, requests inside their
        reservation): what `decode_until` keeps between changes of the batch."""
        held = self.sum_prompt_run - self.sum_k0 + self.kv_static
        read = self.sum_prompt_run + self.sum_cached_run - self.sum_k0
        return held, read, self.reserve_extra * unlent, self.n_within

    # ---- internals -----------------------------------------------------------------------------
    def _start_prefill(self, now: float) -> float | None:
        req = self.requests
        batch: list[int] = []
        tokens = 0
        attn = 0.0
        free = self.kv_capacity_tokens - self.kv_committed()
        while self.waiting:
            rid = self.waiting[0]
            p = req.prompt[rid]
            need = self.need(rid)
            if batch and tokens + p > self.max_batched_tokens:
                break
            if need > free:
                break
            if self.mode != "prefill" and self._admitted() + len(batch) >= self.max_num_seqs:
                break
            self.waiting.popleft()
            self.kv_waiting -= need
            free -= need
            self.kv_static += need
            batch.append(rid)
            tokens += p
            attn += self._prompt_attention_s(rid)
        if not batch:
            if self.kv_used == 0:
                rid = self.waiting.popleft()
                self.kv_waiting -= self.need(rid)
                self._reject(rid)
            return None
        latency = self.timer.prefill_s(tokens, len(batch), attn)
        if self.on_prefill_batch is not None:
            self.on_prefill_batch(now, tokens)
        occupied = latency / self.timer.perf.pp  # later stages overlap the next batch
        self._current = ("prefill", batch, now + latency)
        if self.window_s[0] <= now < self.window_s[1]:
            self.stats.prefill_busy_s += occupied
            self.stats.batch_time_s += self.n_run * occupied  # decodes wait in the batch
            self.stats.iterations += 1
        self.busy = True
        return now + occupied

    def _reject(self, rid: int) -> None:
        """A request whose KV can never fit this instance: it fails both SLOs."""
        req = self.requests
        req.first_decode_s[rid] = float("inf")
        req.finish_s[rid] = float("inf")

    def _prompt_attention_s(self, rid: int) -> float:
        req = self.requests
        if req.remaining[rid] == req.steps[rid]:
            return req.attention_s[rid]
        # recompute after preemption, after the prefix found in the cache again
        return self.timer.chunk_attention_s(req.prompt[rid], req.cached_at(rid))

    def _prefilled(self, rid: int, done_s: float) -> None:
        req = self.requests
        if req.remaining[rid] <= 0:  # single-token output: done at its prefill
            self.kv_static -= self.need(rid)
            if req.first_decode_s[rid] < 0:
                req.first_decode_s[rid] = done_s
            req.finish_s[rid] = done_s
            return
        if self.mode == "prefill":
            assert self.on_prefilled is not None
            self.on_prefilled(rid, done_s)
        else:
            self.ready.append((done_s, rid))

    def _join(self, now: float) -> None:
        """Requests whose prefill (or KV transfer) is done join the decode batch."""
        if not self.ready or self.ready[0][0] > now:
            return
        req = self.requests
        while self.ready and self.ready[0][0] <= now:
            _, rid = self.ready[0]
            p = req.prompt[rid]
            need = self.need(rid)
            if self.mode == "decode" and self.n_run >= self.max_num_seqs:
                break  # waits for a sequence slot
            if self.mode == "decode" and rid not in self._recomputed:
                if self.kv_committed() + need > self.kv_capacity_tokens:
                    if self.kv_used == 0:
                        self.ready.popleft()
                        self._reject(rid)
                        continue
                    break  # waits for memory
            else:
                self.kv_static -= need
                self._recomputed.discard(rid)
            self.ready.popleft()
            if req.first_decode_s[rid] < 0:
                req.first_decode_s[rid] = now
            self._k0[rid] = self.k
            if req.long_gaps:
                self._g0[rid] = self.gaps
                self._joined.append(rid)
            heapq.heappush(self._fin, (self.k + req.remaining[rid], rid))
            self._order.append(rid)
            self.n_run += 1
            self.sum_prompt_run += p
            self.sum_cached_run += req.cached_at(rid)
            self.sum_k0 += self.k
            self.sum_first_s += req.first_decode_s[rid]
            r = req.reserve[rid]
            if r > 0:
                self.reserve_extra += r
                self.n_within += 1
                heapq.heappush(self._res_end, (self.k + r, rid))

    def _admitted(self) -> int:
        """Sequences the engine holds: decoding, and prefilled awaiting their first step."""
        return self.n_run + len(self.ready)

    def _kv_read(self) -> float:
        """KV tokens a decode step reads: every running request's whole context, its cached
        prefix included."""
        return float(self.sum_prompt_run + self.sum_cached_run + self.n_run * self.k - self.sum_k0)

    def _leave(self, rid: int) -> int:
        """Take a running request out of the decode batch; returns the steps it did here."""
        req = self.requests
        k0 = self._k0.pop(rid)
        if req.long_gaps:
            req.long_gaps[rid] += self.gaps - self._g0.pop(rid)
        left = req.reserve[rid] - (self.k - k0)
        if req.reserve[rid] > 0 and left > 0:
            self.reserve_extra -= left
            self.n_within -= 1
        self.n_run -= 1
        self.sum_prompt_run -= req.prompt[rid]
        self.sum_cached_run -= req.cached_at(rid)
        self.sum_k0 -= k0
        self.sum_first_s -= req.first_decode_s[rid]
        return self.k - k0

    def _overflows(self) -> bool:
        """Would the next step's new tokens not fit? Requests inside their reservation use it;
        the others grow on demand; and every new token needs physical room."""
        cap = self.kv_capacity_tokens
        n = self.n_run
        used = self.sum_prompt_run + n * self.k - self.sum_k0 + self.kv_static  # `kv_used`
        if used + n > cap:
            return True
        committed = used + self.reserve_extra * (1.0 - self.lend_share)  # `kv_committed()`
        return committed + (n - self.n_within) > cap

    def _make_room(self) -> bool:
        """The next step adds a token per decoding request; while it would not fit, preempt
        the most recently admitted request (vLLM's recompute preemption: V1 pops the tail of
        its running list, which holds partly prefilled prompts after the decodes admitted
        before them). Returns whether anything was preempted."""
        req = self.requests
        preempted = False
        while self._overflows() and (self._progress or self.n_run > 1):
            preempted = True
            req.preemptions += 1
            if self._progress:  # a partly prefilled prompt: its chunks are redone later
                rid, _ = self._progress.popitem()
                self.kv_static -= self.need(rid)
            else:
                while self._order[-1] not in self._k0:
                    self._order.pop()
                rid = self._order.pop()
                done = self._leave(rid)
                req.reserve[rid] = max(req.reserve[rid] - done, 0)
                req.prompt[rid] += done
                req.remaining[rid] -= done
                self._recomputed.add(rid)
            self.waiting.appendleft(rid)
            self.kv_waiting += self.need(rid)
        return preempted

    def _advance(self, now: float) -> None:
        """One decode step done: requests that reached their last step finish."""
        req = self.requests
        self.k = k = self.k + 1
        if req.long_gaps:
            self._count_gaps(now)
        if self.n_within:
            self.reserve_extra -= self.n_within
        res = self._res_end
        while res and res[0][0] <= k:
            kr, rid = heapq.heappop(res)
            k0 = self._k0.get(rid)
            if k0 is not None and k0 + req.reserve[rid] == kr:
                self.n_within -= 1
        fin = self._fin
        if not fin or fin[0][0] > k:  # nobody finishes at this step (the common case)
            return
        while fin and fin[0][0] <= k:
            kf, rid = heapq.heappop(fin)
            k0 = self._k0.get(rid)
            if k0 is None or k0 + req.remaining[rid] != kf:
                continue  # stale entry of a preempted request
            self._leave(rid)
            req.remaining[rid] = 0
            req.finish_s[rid] = now
        if not self._k0:
            self._order.clear()

    def _chunk(self, rid: int, done: int, budget: int) -> tuple[int, float]:
        """Schedule the next chunk of an admitted prompt with `done` tokens prefilled: its
        tokens (up to the budget) and their attention time."""
        c = min(self.requests.prompt[rid] - done, budget)
        self._progress[rid] = done + c
        prefix = self.requests.cached_at(rid) + done  # cached prefix tokens, then chunks done
        return c, self.timer.chunk_attention_s(c, prefix, self.timer.hybrid_chunk_share)

    def _admit_chunks(self, budget: int, chunk_s: float, chunk_tokens: int) -> tuple[float, int]:
        """Admit waiting prompts in FIFO order while budget, sequence slots and KV allow: a
        prompt is admitted when the KV of its whole prompt (plus its reservation) is free, as
        V1's admission gate checks the full sequence, and its first chunk is scheduled."""
        free = self.kv_capacity_tokens - self.kv_committed() - (self.n_run - self.n_within)
        slots = self.max_num_seqs - self._admitted() - len(self._progress)
        while self.waiting and budget > 0 and slots > 0:
            rid = self.waiting[0]
            need = self.need(rid)
            if need > free:
                break
            self.waiting.popleft()
            slots -= 1
            free -= need
            self.kv_waiting -= need
            self.kv_static += need
            c, c_s = self._chunk(rid, 0, budget)
            chunk_s += c_s
            chunk_tokens += c
            budget -= c
        return chunk_s, chunk_tokens

    def _count_gaps(self, now: float) -> None:
        """A decode iteration ended at `now`: the requests that ran the previous one waited
        since its end (any prefill in between included), those that joined at this one since
        its start. O(1) per iteration plus O(1) per joining request."""
        bound = self.requests.tbt_s
        if now - self._last_step_end_s > bound:
            self.gaps += 1
            if now - self._step_start_s <= bound:
                for rid in self._joined:  # their own first gap was short
                    if rid in self._g0:  # (not preempted before its first step)
                        self._g0[rid] += 1
        self._joined.clear()
        self._last_step_end_s = now

    def _start_hybrid(self, now: float) -> float | None:
        """Sarathi / vLLM V1 chunked prefill: all running decodes plus prompt chunks up to the
        token budget. As V1's scheduler: running requests first (decodes, which may preempt the
        newest admitted request when their next token does not fit, then the continuing chunks
        of admitted prompts), and only in a step that preempted nothing are waiting prompts
        admitted, in FIFO order, each when the KV of its whole prompt is free and a sequence
        slot is open (docs/model.md §10.2)."""
        self._join(now)
        preempted = self._make_room() if self.n_run or self._progress else False
        budget = self.chunk_tokens - self.n_run
        chunk_s = 0.0
        chunk_tokens = 0
        finished: list[int] = []
        for rid, done in list(self._progress.items()):  # continuing prompts (V1: running)
            if budget <= 0:
                break
            c, c_s = self._chunk(rid, done, budget)
            chunk_s += c_s
            chunk_tokens += c
            budget -= c
        if not preempted:
            chunk_s, chunk_tokens = self._admit_chunks(budget, chunk_s, chunk_tokens)
        for rid, done in list(self._progress.items()):
            if done >= self.requests.prompt[rid]:
                finished.append(rid)
                del self._progress[rid]
        if chunk_tokens == 0 and self.n_run == 0:
            if self.waiting and self.kv_used == 0 and not self._progress:
                rid = self.waiting.popleft()
                self.kv_waiting -= self.need(rid)
                self._reject(rid)
            return None
        kv = self._kv_read()
        counted = self.window_s[0] <= now < self.window_s[1]
        if chunk_tokens:
            dt = self.timer.hybrid_s(self.n_run, kv, chunk_s, chunk_tokens)
            self.stats.hybrid_busy_s += dt if counted else 0.0
        else:
            dt = self.timer.decode_s(self.n_run, kv)
            self.stats.decode_busy_s += dt if counted else 0.0
        if counted:
            self.stats.batch_time_s += self.n_run * dt
            self.stats.iterations += 1
        self._step_start_s = now
        self._current = ("hybrid", finished, now + dt)
        self.busy = True
        return now + dt

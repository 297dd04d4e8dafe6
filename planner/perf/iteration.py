"""Fast iteration timing for the simulator: the phase model of `phases.py`, tabulated once.

A forward pass is additive in its parts (docs/model.md §2.9): token_time(tokens) (GEMMs,
element-wise kernels, TP all-reduces, PP sends, engine overhead) + head_time(logit rows) +
layers × the attention kernels. The first two depend on one integer each (and on whether the
iteration replays a CUDA graph — decode — or runs eagerly), and the decode attention's busy time
only on the KV tokens a micro-batch reads, so each becomes a table built with one vectorised
call; a simulated iteration is then a few table lookups instead of a model evaluation. Prompt
chunks (Sarathi) are timed directly from the same attention formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from planner.perf.phases import InstancePerf
from planner.perf.roofline import launch_floor_s

DENSE_TOKENS = 8192  # exact table entries for 0..8192 tokens; geometric grid beyond
MAX_TOKENS = 1 << 22
KV_GRID_POINTS = 4000  # geometric grid of decode KV tokens read per iteration


def _grid(dense: int, top: int, extra: int) -> np.ndarray:
    tail = np.geomspace(dense + 1, top, extra)
    return np.unique(np.concatenate([np.arange(dense + 1, dtype=float), np.rint(tail)]))


@dataclass
class _Table:
    """f(n) on the token grid: exact list lookups up to DENSE_TOKENS, interpolation above."""

    grid: np.ndarray
    values: np.ndarray
    dense: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.dense = self.values[: DENSE_TOKENS + 1].tolist()

    def __call__(self, n: float) -> float:
        if n <= DENSE_TOKENS:
            return self.dense[int(n)]
        return float(np.interp(n, self.grid, self.values))


@dataclass
class IterationTimer:
    """Iteration times of one instance, looked up from tables of its InstancePerf."""

    perf: InstancePerf
    _tokens: dict[bool, _Table] = field(init=False, repr=False)
    _head: dict[bool, _Table] = field(init=False, repr=False)
    _kv_log_step: float = field(init=False, repr=False)
    _kv_s: list[float] = field(init=False, repr=False)
    _kv_x: list[float] = field(init=False, repr=False)
    _decode_consts: dict[int, tuple[int, float, float, bool, float, int]] = field(
        init=False, repr=False
    )
    _sliding: bool = field(init=False, repr=False)
    _layers: int = field(init=False, repr=False)
    _launch: dict[bool, float] = field(init=False, repr=False)
    _kernel_fixed_s: float = field(init=False, repr=False)
    _fixed_per_seq_s: float = field(init=False, repr=False)
    _q_rank: float = field(init=False, repr=False)
    _q_bytes_rank: float = field(init=False, repr=False)
    _kv_rank: float = field(init=False, repr=False)
    _pair_rank: float = field(init=False, repr=False)
    _io_rank: float = field(init=False, repr=False)
    _peak: float = field(init=False, repr=False)
    _kv_bw: float = field(init=False, repr=False)
    _attn_plateau: float = field(init=False, repr=False)
    _attn_knee: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        p = self.perf
        grid = _grid(DENSE_TOKENS, MAX_TOKENS, 400)
        self._tokens = {
            g: _Table(grid, p.token_time(grid, g).total_s.astype(float)) for g in (False, True)
        }
        self._head = {
            g: _Table(grid, p.head_time(grid, g).total_s.astype(float)) for g in (False, True)
        }
        # decode attention busy time per layer as a function of x = micro·context KV tokens,
        # on x_k = exp(k·h)
        top = math.log(1e10)
        self._kv_log_step = top / (KV_GRID_POINTS - 1)
        x = np.exp(np.arange(KV_GRID_POINTS) * self._kv_log_step)
        self._kv_s = p.decode_attention_busy_s(x).total_s.astype(float).tolist()
        # the grid points as math.exp gives them (what `_kv_busy_s` computed per call)
        self._kv_x = [math.exp(i * self._kv_log_step) for i in range(KV_GRID_POINTS)]
        self._decode_consts = {}
        self._sliding = p.model.sliding_window is not None
        self._layers = p.model.num_layers
        g, m = p.gpu, p.model
        self._launch = {b: launch_floor_s(g, b) for b in (False, True)}
        self._kernel_fixed_s = g.kernel_fixed_s
        self._fixed_per_seq_s = float(p.decode_attention_fixed_s(1.0)) - g.kernel_fixed_s
        self._q_rank = m.q_dim / p.tp
        self._q_bytes_rank = 2 * m.q_dim / p.tp * m.kv_dtype_bytes
        self._kv_rank = p.kv_bytes_per_token_per_layer_rank
        # per query-key FLOPs and Q/K/V/O bytes per chunk token on a rank (MLA, sliding window)
        self._pair_rank = m.attention_flops_per_key / p.tp
        if m.is_mla:
            width = m.mla_qk_head_dim + (m.v_head_dim or 0)
            self._io_rank = 2 * (m.num_heads / p.tp) * width * m.kv_dtype_bytes
        else:
            self._io_rank = self._q_bytes_rank
        self._peak = g.peak_flops(p.dtype)
        self._kv_bw = g.memory_bandwidth_bytes_s * g.memory_efficiency["kv_cache"]
        self._attn_plateau = g.attention.prefill_plateau
        self._attn_knee = g.attention.prefill_knee_tokens

    def graphed(self, micro_batch: int) -> bool:
        """Whether a decode iteration of this micro-batch replays a CUDA graph."""
        e = self.perf.engine
        return e.cuda_graph_decode and micro_batch <= e.cuda_graph_max_batch

    def piecewise(self, tokens: float) -> bool:
        """Whether an iteration holding prompts replays piecewise CUDA graphs (all but
        attention), as `InstancePerf.piecewise_graphed`."""
        e = self.perf.engine
        return e.cuda_graph_decode and e.piecewise_cuda_graphs and tokens <= e.cuda_graph_max_batch

    def tokens_s(self, tokens: float, graphed: bool = False) -> float:
        """token_time(tokens): everything but attention and the LM head."""
        return self._tokens[graphed](tokens)

    def head_s(self, rows: float, graphed: bool = False) -> float:
        return self._head[graphed](rows)

    def _kv_busy_s(self, kv_tokens: float) -> float:
        if kv_tokens < 1.0:
            return 0.0
        u = math.log(kv_tokens) / self._kv_log_step
        i = min(int(u), KV_GRID_POINTS - 2)
        x0 = self._kv_x[i]
        w = (kv_tokens - x0) / (self._kv_x[i + 1] - x0)
        return self._kv_s[i] + w * (self._kv_s[i + 1] - self._kv_s[i])

    def decode_attention_s(self, kv_tokens: float, micro: int = 1, graphed: bool = True) -> float:
        """All layers' decode attention for a micro-batch of `micro` sequences reading
        `kv_tokens` KV tokens (as `InstancePerf.decode_attention`)."""
        m = self.perf.model
        if m.sliding_window is None:
            busy = self._kv_busy_s(kv_tokens) + self._kernel_fixed_s + micro * self._fixed_per_seq_s
            return max(busy, self._launch[graphed]) * m.num_layers
        # local layers read at most `window` tokens of each sequence (its mean context counted)
        fixed = self._kernel_fixed_s + micro * self._fixed_per_seq_s
        local_kv = micro * min(kv_tokens / max(micro, 1), m.sliding_window)
        glob = max(self._kv_busy_s(kv_tokens) + fixed, self._launch[graphed])
        local = max(self._kv_busy_s(local_kv) + fixed, self._launch[graphed])
        return glob * m.global_layers + local * m.local_layers

    def prompt_attention_s(self, prompt_tokens: np.ndarray) -> np.ndarray:
        """All layers' attention of each whole prompt on its own."""
        att = self.perf.chunk_attention(np.asarray(prompt_tokens, dtype=float), 0.0)
        return np.asarray(att.total_s, dtype=float) * self.perf.model.num_layers

    def chunk_attention_s(
        self, chunk_tokens: float, prefix_tokens: float, share: float = 1.0
    ) -> float:
        """All layers' attention of one prompt chunk after `prefix_tokens` cached tokens (or
        `share` of its FLOPs and bytes): the scalar form of `InstancePerf.chunk_attention` (same
        FLOPs, bytes, efficiency and fixed costs), since a numpy call per simulated iteration would
        dominate the run time."""
        c, pre = float(chunk_tokens), float(prefix_tokens)
        m = self.perf.model
        if m.is_mla or m.sliding_window is not None:
            glob = self._chunk_layer_s(c, pre, share, None)
            if m.sliding_window is None:
                return glob * m.num_layers
            local = self._chunk_layer_s(c, pre, share, m.sliding_window)
            return glob * m.global_layers + local * m.local_layers
        flops = share * 4.0 * c * (pre + c / 2.0) * self._q_rank
        bytes_ = share * (pre * self._kv_rank + c * (self._q_bytes_rank + self._kv_rank))
        keys = max(pre + c, 1.0)
        eff = self._attn_plateau * keys / (keys + self._attn_knee)
        busy = max(flops / (self._peak * eff), bytes_ / self._kv_bw) + self._kernel_fixed_s
        return max(busy, self._launch[False]) * self.perf.model.num_layers

    def _chunk_layer_s(self, c: float, pre: float, share: float, window: int | None) -> float:
        """One layer's chunk attention, the scalar form of `InstancePerf._chunk_attention_layer`
        (MLA, sliding window)."""
        if window is None:
            keys, reread, seen = c * (pre + c / 2.0), pre, pre + c
        else:
            inside = min(max(window - pre, 0.0), c)
            keys = inside * (pre + inside / 2.0) + (c - inside) * window
            reread, seen = min(pre, window), min(pre + c, window)
        flops = share * self._pair_rank * keys
        bytes_ = share * (reread * self._kv_rank + c * (self._io_rank + self._kv_rank))
        seen = max(seen, 1.0)
        eff = self._attn_plateau * seen / (seen + self._attn_knee)
        busy = max(flops / (self._peak * eff), bytes_ / self._kv_bw) + self._kernel_fixed_s
        return max(busy, self._launch[False])

    def prefill_s(self, total_tokens: float, prompts: int, attention_s: float) -> float:
        """A prefill batch of `prompts` prompts, `total_tokens` tokens in all, whose per-prompt
        attention times sum to `attention_s`: one attention kernel per layer for the batch, so
        one kernel's fixed time, not one per prompt."""
        extra = (prompts - 1) * self._kernel_fixed_s * self.perf.model.num_layers
        g = self.piecewise(total_tokens)
        return self.tokens_s(total_tokens, g) + self.head_s(prompts, g) + attention_s - extra

    def decode_s(self, batch: int, kv_tokens: float) -> float:
        """One decode iteration of `batch` requests reading `kv_tokens` KV tokens in all; with
        pp stages the batch runs as pp micro-batches (as `InstancePerf.decode_step`). The
        simulator's hottest call: the per-batch parts (micro-batch, its GEMM and head times,
        the per-sequence kernel time) are kept per batch size, and the attention is inlined
        with the same operations in the same order as `decode_attention_s`, so the result is
        the same to the bit."""
        c = self._decode_consts.get(batch)
        if c is None:
            micro = -(-max(batch, 1) // self.perf.pp)
            g = self.graphed(micro)
            fixed = micro * self._fixed_per_seq_s
            base = self.tokens_s(micro, g) + self.head_s(micro, g)
            c = (micro, base, self._launch[g], g, fixed, max(batch, 1))
            self._decode_consts[batch] = c
        micro, base_s, launch_s, graphed, fixed_s, sequences = c
        per_micro = kv_tokens * micro / sequences
        if self._sliding:
            return base_s + self.decode_attention_s(per_micro, micro, graphed)
        # `_kv_busy_s` inlined
        if per_micro < 1.0:
            kv_s = 0.0
        else:
            i = int(math.log(per_micro) / self._kv_log_step)
            if i > KV_GRID_POINTS - 2:
                i = KV_GRID_POINTS - 2
            x, y = self._kv_x, self._kv_s
            x0 = x[i]
            w = (per_micro - x0) / (x[i + 1] - x0)
            y0 = y[i]
            kv_s = y0 + w * (y[i + 1] - y0)
        busy = kv_s + self._kernel_fixed_s + fixed_s
        return base_s + (busy if busy >= launch_s else launch_s) * self._layers  # max(busy, launch)

    @property
    def hybrid_chunk_share(self) -> float:
        """Share of a prompt chunk's attention work in one hybrid micro-batch (1/pp)."""
        return 1.0 / self.perf.pp

    def hybrid_s(self, batch: int, kv_tokens: float, chunk_s: float, chunk_tokens: int) -> float:
        """A Sarathi iteration: `batch` decodes reading `kv_tokens` plus prompt chunks of
        `chunk_tokens` tokens whose attention (at `hybrid_chunk_share` of their work) takes
        `chunk_s`; with pp stages, pp micro-batches of ⌈batch/pp⌉ decodes and ⌈chunk/pp⌉
        chunk tokens (as `InstancePerf.hybrid_step`); eager."""
        pp = self.perf.pp
        micro = -(-batch // pp)
        micro_c = -(-chunk_tokens // pp)
        rows = micro + (1 if chunk_tokens > 0 else 0)
        if batch > 0:
            attn = self.decode_attention_s(kv_tokens * micro / batch, micro, False)
        else:
            attn = max(self._kernel_fixed_s, self._launch[False]) * self.perf.model.num_layers
        g = self.piecewise(micro + micro_c)
        return self.tokens_s(micro + micro_c, g) + self.head_s(rows, g) + attn + chunk_s

"""Fast iteration timing for the simulator: the roofline of `phases.py`, tabulated once.

A forward pass is additive in its parts (docs/model.md §2): token_time(tokens) (GEMMs, element-wise
kernels, TP all-reduces, PP sends, iteration overhead) + head_time(logit rows) + layers × the
attention kernels. The first two depend on one integer each and the decode attention only on the
KV tokens a micro-batch reads, so each becomes a table built with one vectorised call; a
simulated iteration is then a few table lookups instead of a roofline evaluation. Prompt chunks
(Sarathi) are timed directly from the same attention roofline.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from planner.perf.phases import InstancePerf

DENSE_TOKENS = 8192  # exact table entries for 0..8192 tokens; geometric grid beyond
MAX_TOKENS = 1 << 22
KV_GRID_POINTS = 4000  # geometric grid of decode KV tokens read per iteration


def _grid(dense: int, top: int, extra: int) -> np.ndarray:
    tail = np.geomspace(dense + 1, top, extra)
    return np.unique(np.concatenate([np.arange(dense + 1, dtype=float), np.rint(tail)]))


@dataclass
class IterationTimer:
    """Iteration times of one instance, looked up from tables of its InstancePerf."""

    perf: InstancePerf
    _tok_grid: np.ndarray = field(init=False, repr=False)
    _tok_s: np.ndarray = field(init=False, repr=False)
    _tok_dense: list[float] = field(init=False, repr=False)
    _head_dense: list[float] = field(init=False, repr=False)
    _head_s: np.ndarray = field(init=False, repr=False)
    _kv_log_step: float = field(init=False, repr=False)
    _kv_s: list[float] = field(init=False, repr=False)
    _attn_zero_s: float = field(init=False, repr=False)
    _q_rank: float = field(init=False, repr=False)
    _q_bytes_rank: float = field(init=False, repr=False)
    _kv_rank: float = field(init=False, repr=False)
    _head_dim: float = field(init=False, repr=False)
    _peak: float = field(init=False, repr=False)
    _kv_bw: float = field(init=False, repr=False)
    _eff_log_sizes: list[float] = field(init=False, repr=False)
    _eff_values: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        p = self.perf
        layers = p.model.num_layers
        self._tok_grid = _grid(DENSE_TOKENS, MAX_TOKENS, 400)
        self._tok_s = p.token_time(self._tok_grid).total_s.astype(float)
        self._tok_dense = self._tok_s[: DENSE_TOKENS + 1].tolist()
        self._head_s = p.head_time(self._tok_grid).total_s.astype(float)
        self._head_dense = self._head_s[: DENSE_TOKENS + 1].tolist()
        # decode attention as a function of x = micro·context KV tokens, on x_k = exp(k·h)
        top = math.log(1e10)
        self._kv_log_step = top / (KV_GRID_POINTS - 1)
        x = np.exp(np.arange(KV_GRID_POINTS) * self._kv_log_step)
        self._kv_s = (p.decode_attention(1.0, x).total_s * layers).tolist()
        self._attn_zero_s = float(p.decode_attention(0.0, 0.0).total_s) * layers
        m, g = p.model, p.gpu
        self._q_rank = m.q_dim / p.tp
        self._q_bytes_rank = 2 * m.q_dim / p.tp * m.kv_dtype_bytes
        self._kv_rank = p.kv_bytes_per_token_per_layer_rank
        self._head_dim = float(m.head_dim)
        self._peak = g.peak_flops(p.dtype)
        self._kv_bw = g.memory_bandwidth_bytes_s * g.memory_efficiency["kv_cache"]
        self._eff_log_sizes = [math.log(x) for x, _ in g.compute_efficiency]
        self._eff_values = [e for _, e in g.compute_efficiency]

    @property
    def launch_per_pass_s(self) -> float:
        """Launch overhead of one attention kernel in every layer."""
        return self.perf.gpu.kernel_launch_s * self.perf.model.num_layers

    def tokens_s(self, tokens: float) -> float:
        """token_time(tokens): everything but attention and the LM head."""
        if tokens <= DENSE_TOKENS:
            return self._tok_dense[int(tokens)]
        return float(np.interp(tokens, self._tok_grid, self._tok_s))

    def head_s(self, rows: float) -> float:
        if rows <= DENSE_TOKENS:
            return self._head_dense[int(rows)]
        return float(np.interp(rows, self._tok_grid, self._head_s))

    def decode_attention_s(self, kv_tokens: float) -> float:
        """All layers' decode attention for a micro-batch reading `kv_tokens` KV tokens."""
        if kv_tokens < 1.0:
            return self._attn_zero_s
        u = math.log(kv_tokens) / self._kv_log_step
        i = min(int(u), KV_GRID_POINTS - 2)
        x0 = math.exp(i * self._kv_log_step)
        x1 = math.exp((i + 1) * self._kv_log_step)
        w = (kv_tokens - x0) / (x1 - x0)
        return self._kv_s[i] + w * (self._kv_s[i + 1] - self._kv_s[i])

    def prompt_attention_s(self, prompt_tokens: np.ndarray) -> np.ndarray:
        """All layers' attention of each whole prompt on its own (launch included)."""
        att = self.perf.chunk_attention(np.asarray(prompt_tokens, dtype=float), 0.0)
        return np.asarray(att.total_s, dtype=float) * self.perf.model.num_layers

    def chunk_attention_s(
        self, chunk_tokens: float, prefix_tokens: float, share: float = 1.0
    ) -> float:
        """All layers' attention of one prompt chunk after `prefix_tokens` cached tokens (or
        `share` of its FLOPs and bytes): the scalar form of `InstancePerf.chunk_attention` (same
        FLOPs, bytes and tile size), since a numpy call per simulated iteration would dominate
        the run time."""
        c, pre = float(chunk_tokens), float(prefix_tokens)
        flops = share * 4.0 * c * (pre + c / 2.0) * self._q_rank
        bytes_ = share * (pre * self._kv_rank + c * (self._q_bytes_rank + self._kv_rank))
        size = math.log(max((max(c, 1.0) * max(pre + c, 1.0) * self._head_dim) ** (1 / 3), 1.0))
        xs, ys = self._eff_log_sizes, self._eff_values
        j = bisect.bisect_right(xs, size)
        if j == 0:
            eff = ys[0]
        elif j == len(xs):
            eff = ys[-1]
        else:
            w = (size - xs[j - 1]) / (xs[j] - xs[j - 1])
            eff = ys[j - 1] + w * (ys[j] - ys[j - 1])
        t = max(flops / (self._peak * eff), bytes_ / self._kv_bw) + self.perf.gpu.kernel_launch_s
        return t * self.perf.model.num_layers

    def prefill_s(self, total_tokens: float, prompts: int, attention_s: float) -> float:
        """A prefill batch of `prompts` prompts, `total_tokens` tokens in all, whose per-prompt
        attention times sum to `attention_s`: one attention launch per layer for the batch."""
        launches = (prompts - 1) * self.launch_per_pass_s
        return self.tokens_s(total_tokens) + self.head_s(prompts) + attention_s - launches

    def decode_s(self, batch: int, kv_tokens: float) -> float:
        """One decode iteration of `batch` requests reading `kv_tokens` KV tokens in all; with
        pp stages the batch runs as pp micro-batches (as `InstancePerf.decode_step`)."""
        pp = self.perf.pp
        micro = -(-max(batch, 1) // pp)
        per_micro = kv_tokens * micro / max(batch, 1)
        return self.tokens_s(micro) + self.head_s(micro) + self.decode_attention_s(per_micro)

    @property
    def hybrid_chunk_share(self) -> float:
        """Share of a prompt chunk's attention work in one hybrid micro-batch (1/pp)."""
        return 1.0 / self.perf.pp

    def hybrid_s(self, batch: int, kv_tokens: float, chunk_s: float, chunk_tokens: int) -> float:
        """A Sarathi iteration: `batch` decodes reading `kv_tokens` plus prompt chunks of
        `chunk_tokens` tokens whose attention (at `hybrid_chunk_share` of their work) takes
        `chunk_s`; with pp stages, pp micro-batches of ⌈batch/pp⌉ decodes and ⌈chunk/pp⌉
        chunk tokens (as `InstancePerf.hybrid_step`)."""
        pp = self.perf.pp
        micro = -(-batch // pp)
        micro_c = -(-chunk_tokens // pp)
        rows = micro + (1 if chunk_tokens > 0 else 0)
        if batch > 0:
            attn = self.decode_attention_s(kv_tokens * micro / batch)
        else:
            attn = self._attn_zero_s
        return self.tokens_s(micro + micro_c) + self.head_s(rows) + attn + chunk_s

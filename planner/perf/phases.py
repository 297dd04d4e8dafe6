"""Phase latencies of one serving instance (TP × PP GPUs): prefill, decode step, hybrid step.

docs/model.md §2.3. Per layer on one TP rank: QKV, attention, output projection, MLP (gated: gate+up
fused, down; MoE: active experts), norms/activations, and two TP all-reduces. A pipeline of `pp`
stages holds ceil(layers/pp) layers per stage and forwards activations between stages. Every
iteration pays the GPU's fixed iteration overhead (scheduler, sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from planner.hardware import GPU, IntraNodeLink
from planner.model import ModelSpec
from planner.perf.comm import allreduce_time_s, p2p_time_s
from planner.perf.roofline import OpTime, gemm, roofline

RESOURCES = ("compute", "memory", "communication", "overhead")


@dataclass(frozen=True)
class PhaseTime:
    """Wall time of one iteration, split by the resource that bounds each part."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    overhead_s: np.ndarray

    @property
    def total_s(self) -> np.ndarray:
        return self.compute_s + self.memory_s + self.comm_s + self.overhead_s

    def bound(self) -> str:
        """The resource with the largest share (scalar phases only)."""
        parts = [
            float(np.sum(x)) for x in (self.compute_s, self.memory_s, self.comm_s, self.overhead_s)
        ]
        return RESOURCES[int(np.argmax(parts))]


@dataclass(frozen=True)
class InstancePerf:
    """Roofline timing of one instance of `model` on `tp × pp` GPUs of type `gpu`."""

    model: ModelSpec
    gpu: GPU
    link: IntraNodeLink
    tp: int = 1
    pp: int = 1

    # ---- static shapes ---------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self.model.dtype

    @property
    def layers_per_stage(self) -> int:
        return math.ceil(self.model.num_layers / self.pp)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @cached_property
    def kv_heads_rank(self) -> int:
        return self.model.kv_heads_per_rank(self.tp)

    @property
    def kv_bytes_per_token_per_layer_rank(self) -> float:
        """KV bytes one TP rank stores per token per layer."""
        m = self.model
        return 2.0 * self.kv_heads_rank * m.head_dim * m.kv_dtype_bytes

    def _layer_linear(self, tokens: np.ndarray) -> tuple[OpTime, np.ndarray]:
        """One transformer layer on one TP rank without its attention kernel: the GEMMs, the
        streaming element-wise kernels and the two TP all-reduces (returned apart). Depends only
        on the number of tokens in the iteration."""
        m, g, tp = self.model, self.gpu, self.tp
        wb, ab = m.weight_dtype_bytes, m.weight_dtype_bytes
        qkv_out = m.q_dim / tp + 2 * self.kv_heads_rank * m.head_dim
        t = gemm(g, self.dtype, tokens, m.hidden_size, qkv_out, wb, ab)
        t = t + gemm(g, self.dtype, tokens, m.q_dim / tp, m.hidden_size, wb, ab)
        if m.is_moe:
            # Tokens spread over experts: each expert sees tokens·k/E rows; the expected number
            # of distinct experts touched by `tokens` tokens is E·(1 − (1 − k/E)^tokens).
            e, k = m.num_experts, m.experts_per_token
            rows = tokens * k / e
            active = e * (1.0 - (1.0 - k / e) ** np.asarray(tokens, dtype=float))
            mlp_up = 2 if m.mlp == "gated" else 1
            expert = gemm(
                g, self.dtype, rows, m.hidden_size, mlp_up * m.intermediate_size / tp, wb, ab
            )
            expert = expert + gemm(
                g, self.dtype, rows, m.intermediate_size / tp, m.hidden_size, wb, ab
            )
            t = t + expert.scale(active)
            t = t + gemm(g, self.dtype, tokens, m.hidden_size, e, wb, ab)  # router
        else:
            up = (2 if m.mlp == "gated" else 1) * m.intermediate_size / tp
            t = t + gemm(g, self.dtype, tokens, m.hidden_size, up, wb, ab)
            t = t + gemm(g, self.dtype, tokens, m.intermediate_size / tp, m.hidden_size, wb, ab)
        # Norms, rotary, activation and residual adds: streaming, memory bound (4 kernels).
        inter_rank = m.intermediate_size * m.experts_per_token / tp
        elem_bytes = np.asarray(tokens, dtype=float) * (6 * m.hidden_size + 3 * inter_rank) * ab
        t = t + roofline(
            np.zeros_like(elem_bytes),
            elem_bytes,
            g.peak_flops(self.dtype),
            np.ones_like(elem_bytes),
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["weights"],
            g.kernel_launch_s,
            n_kernels=4,
        )
        ar = 2.0 * allreduce_time_s(
            np.asarray(tokens, dtype=float) * m.hidden_size * ab, tp, self.link
        )
        return t, ar

    def attention(
        self, attn_flops: np.ndarray, attn_kv_bytes: np.ndarray, attn_size: np.ndarray
    ) -> OpTime:
        """One attention kernel of one layer on one TP rank: FLOPs at the efficiency of its tile
        size, bytes (the KV read in decode, Q/K/V/O traffic in prefill) at the KV-cache memory
        efficiency."""
        g = self.gpu
        return roofline(
            attn_flops,
            attn_kv_bytes,
            g.peak_flops(self.dtype),
            g.gemm_efficiency(attn_size),
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["kv_cache"],
            g.kernel_launch_s,
        )

    def token_time(self, tokens: np.ndarray | float) -> PhaseTime:
        """Everything in a forward pass of `tokens` tokens except attention and the LM head: all
        layers' GEMMs and element-wise kernels, TP all-reduces, PP sends and the iteration
        overhead. Additive with `head_time` and `attention`·layers (docs/model.md §2.7)."""
        m = self.model
        tok = np.asarray(tokens, dtype=float)
        layer, ar = self._layer_linear(tok)
        body = layer.scale(m.num_layers)
        comm = ar * m.num_layers
        if self.pp > 1:
            act_bytes = tok * m.hidden_size * m.weight_dtype_bytes
            comm = comm + (self.pp - 1) * p2p_time_s(act_bytes, self.link)
        return PhaseTime(
            compute_s=body.compute_s,
            memory_s=body.memory_s,
            comm_s=np.broadcast_to(comm, body.compute_s.shape).astype(float),
            overhead_s=body.launch_s + self.gpu.iteration_overhead_s,
        )

    def head_time(self, logit_rows: np.ndarray | float) -> OpTime:
        """The LM head GEMM for `logit_rows` rows (one per sequence that samples a token)."""
        m = self.model
        return gemm(
            self.gpu,
            self.dtype,
            np.asarray(logit_rows, dtype=float),
            m.hidden_size,
            m.vocab_size / self.tp,
            m.weight_dtype_bytes,
            m.weight_dtype_bytes,
        )

    def _forward(self, tokens: np.ndarray, attn: OpTime, logit_rows: np.ndarray) -> PhaseTime:
        """All layers for one micro-batch through every pipeline stage, plus LM head, plus the
        inter-stage sends: the latency of one forward pass."""
        base = self.token_time(tokens)
        rest = attn.scale(self.model.num_layers) + self.head_time(logit_rows)
        shape = np.broadcast_shapes(base.compute_s.shape, rest.compute_s.shape)
        return PhaseTime(
            compute_s=base.compute_s + rest.compute_s,
            memory_s=base.memory_s + rest.memory_s,
            comm_s=np.broadcast_to(base.comm_s, shape).astype(float),
            overhead_s=base.overhead_s + rest.launch_s,
        )

    # ---- attention kernels ------------------------------------------------------------------
    def chunk_attention(
        self,
        chunk_tokens: np.ndarray | float,
        prefix_tokens: np.ndarray | float = 0.0,
        count: np.ndarray | float = 1.0,
    ) -> OpTime:
        """Causal attention of `count` prompt chunks of c tokens whose request already has
        `prefix` tokens in the KV cache (a whole prompt when prefix = 0), one kernel per layer.

        FLOPs 4·c·(prefix + c/2)·q_dim/tp (2·L²·q_dim/tp for a whole prompt); bytes: the prefix KV
        re-read plus Q, K, V read and O written, prefix·kv_rank + c·(2·q_dim/tp + kv_rank);
        efficiency at the tile size (c·(prefix + c)·head_dim)^(1/3)."""
        m = self.model
        c = np.asarray(chunk_tokens, dtype=float)
        pre = np.asarray(prefix_tokens, dtype=float)
        k = np.asarray(count, dtype=float)
        kv_rank = self.kv_bytes_per_token_per_layer_rank
        flops = k * 4.0 * c * (pre + c / 2.0) * m.q_dim / self.tp
        bytes_ = k * (pre * kv_rank + c * (2 * m.q_dim / self.tp * m.kv_dtype_bytes + kv_rank))
        size = np.cbrt(np.maximum(c, 1.0) * np.maximum(pre + c, 1.0) * m.head_dim)
        return self.attention(flops, bytes_, size)

    def decode_attention(
        self, micro_batch: np.ndarray | float, context_tokens: np.ndarray | float
    ) -> OpTime:
        """Decode attention of a micro-batch with mean context `context_tokens`, one kernel per
        layer: it reads every request's whole KV, micro·context·kv_rank bytes (memory bound),
        and does 4·micro·context·q_dim/tp FLOPs."""
        m = self.model
        micro = np.asarray(micro_batch, dtype=float)
        ctx = np.asarray(context_tokens, dtype=float)
        flops = 4.0 * micro * ctx * m.q_dim / self.tp
        bytes_ = micro * ctx * self.kv_bytes_per_token_per_layer_rank
        size = np.cbrt(np.maximum(micro, 1.0) * m.head_dim * np.maximum(ctx, 1.0))
        return self.attention(flops, bytes_, size)

    # ---- phases ----------------------------------------------------------------------------
    def prefill(
        self, prompt_tokens: np.ndarray | float, batch: np.ndarray | float = 1.0
    ) -> PhaseTime:
        """A prefill batch of `batch` prompts of `prompt_tokens` tokens each (arrays broadcast);
        logits only for each prompt's last token."""
        length = np.asarray(prompt_tokens, dtype=float)
        b = np.asarray(batch, dtype=float)
        return self._forward(length * b, self.chunk_attention(length, 0.0, b), b)

    def decode_step(
        self, batch: np.ndarray | float, context_tokens: np.ndarray | float
    ) -> PhaseTime:
        """One decode iteration of `batch` requests with mean context `context_tokens`.

        With pp > 1 the batch is split in pp micro-batches that fill the pipe, so one token of a
        request takes all stages at micro-batch batch/pp."""
        b = np.maximum(np.asarray(batch, dtype=float), 1.0)
        micro = np.ceil(b / self.pp)
        return self._forward(micro, self.decode_attention(micro, context_tokens), micro)

    def hybrid_step(
        self,
        decode_batch: np.ndarray | float,
        decode_context: np.ndarray | float,
        chunk_tokens: np.ndarray | float,
        chunk_prefix: np.ndarray | float,
    ) -> PhaseTime:
        """A Sarathi hybrid iteration: `decode_batch` decodes plus a prefill chunk of
        `chunk_tokens` whose request already has `chunk_prefix` tokens in the KV cache: one
        forward of b + c tokens with a decode and a chunk attention kernel per layer. The
        chunk's re-read of the prefix KV is the extra cost of chunking.

        With pp > 1 the iteration runs, like a decode step, as pp micro-batches that fill the
        pipe (Sarathi-Serve's hybrid micro-batches): each carries ⌈b/pp⌉ decodes, ⌈c/pp⌉ chunk
        tokens and 1/pp of the chunk attention's FLOPs and bytes, and the iteration takes one
        micro-batch's pass through every stage."""
        pp = self.pp
        b = np.asarray(decode_batch, dtype=float)
        c = np.asarray(chunk_tokens, dtype=float)
        micro_b = np.ceil(b / pp)
        micro_c = np.ceil(c / pp)
        attn = self.decode_attention(micro_b, decode_context) + self.chunk_attention(
            c, chunk_prefix, 1.0 / pp
        )
        return self._forward(micro_b + micro_c, attn, micro_b + (c > 0))

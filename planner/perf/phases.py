"""Phase latencies of one serving instance (TP × PP GPUs): prefill, decode step, hybrid step.

DESIGN.md §2. Per layer on one TP rank: QKV, attention, output projection, MLP (gated: gate+up
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

    def _layer(
        self,
        tokens: np.ndarray,
        attn_flops: np.ndarray,
        attn_kv_bytes: np.ndarray,
        attn_size: np.ndarray,
    ) -> tuple[OpTime, np.ndarray]:
        """One transformer layer on one TP rank: (compute/memory/launch time, all-reduce time)."""
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
        # Attention kernel: FLOPs at the efficiency of its (L·L·head_dim) tile size; bytes are the
        # KV read (decode) or Q/K/V/O traffic (prefill), at the KV-cache memory efficiency.
        t = t + roofline(
            attn_flops,
            attn_kv_bytes,
            g.peak_flops(self.dtype),
            g.gemm_efficiency(attn_size),
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["kv_cache"],
            g.kernel_launch_s,
        )
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

    def _forward(
        self,
        tokens: np.ndarray,
        attn_flops: np.ndarray,
        attn_kv_bytes: np.ndarray,
        attn_size: np.ndarray,
        logit_rows: np.ndarray,
    ) -> PhaseTime:
        """All layers for one micro-batch through every pipeline stage, plus LM head, plus the
        inter-stage sends: the latency of one forward pass."""
        m = self.model
        layer, ar = self._layer(tokens, attn_flops, attn_kv_bytes, attn_size)
        body = layer.scale(m.num_layers)
        head = gemm(
            self.gpu,
            self.dtype,
            logit_rows,
            m.hidden_size,
            m.vocab_size / self.tp,
            m.weight_dtype_bytes,
            m.weight_dtype_bytes,
        )
        total = body + head
        comm = ar * m.num_layers
        if self.pp > 1:
            act_bytes = np.asarray(tokens, dtype=float) * m.hidden_size * m.weight_dtype_bytes
            comm = comm + (self.pp - 1) * p2p_time_s(act_bytes, self.link)
        return PhaseTime(
            compute_s=total.compute_s,
            memory_s=total.memory_s,
            comm_s=np.broadcast_to(comm, total.compute_s.shape).astype(float),
            overhead_s=total.launch_s + self.gpu.iteration_overhead_s,
        )

    # ---- phases ----------------------------------------------------------------------------
    def prefill(
        self, prompt_tokens: np.ndarray | float, batch: np.ndarray | float = 1.0
    ) -> PhaseTime:
        """A prefill batch of `batch` prompts of `prompt_tokens` tokens each (arrays broadcast).

        Attention FLOPs per layer per prompt (causal): 4·L²·q_dim/2 / tp; bytes: Q, K, V read and O
        written, L·(2·q_dim + 2·kv_dim)/tp; logits only for each prompt's last token.
        """
        m = self.model
        length = np.asarray(prompt_tokens, dtype=float)
        b = np.asarray(batch, dtype=float)
        tokens = length * b
        attn_flops = b * 2.0 * length**2 * m.q_dim / self.tp
        attn_bytes = (
            tokens
            * (2 * m.q_dim / self.tp + 2 * self.kv_heads_rank * m.head_dim)
            * m.kv_dtype_bytes
        )
        size = np.cbrt(np.maximum(length, 1.0) ** 2 * m.head_dim)
        return self._forward(tokens, attn_flops, attn_bytes, size, b)

    def decode_step(
        self, batch: np.ndarray | float, context_tokens: np.ndarray | float
    ) -> PhaseTime:
        """One decode iteration of `batch` requests with mean context `context_tokens`.

        Attention reads every request's whole KV: batch·context·kv_bytes_rank per layer (memory
        bound); FLOPs 4·batch·context·q_dim/tp. With pp > 1 the batch is split in pp micro-batches
        that fill the pipe, so one token of a request takes all stages at micro-batch batch/pp.
        """
        m = self.model
        b = np.maximum(np.asarray(batch, dtype=float), 1.0)
        ctx = np.asarray(context_tokens, dtype=float)
        micro = np.ceil(b / self.pp)
        attn_flops = 4.0 * micro * ctx * m.q_dim / self.tp
        attn_bytes = micro * ctx * self.kv_bytes_per_token_per_layer_rank
        size = np.cbrt(np.maximum(micro, 1.0) * m.head_dim * np.maximum(ctx, 1.0))
        return self._forward(micro, attn_flops, attn_bytes, size, micro)

    def hybrid_step(
        self,
        decode_batch: np.ndarray | float,
        decode_context: np.ndarray | float,
        chunk_tokens: np.ndarray | float,
        chunk_prefix: np.ndarray | float,
    ) -> PhaseTime:
        """A Sarathi hybrid iteration: `decode_batch` decodes plus a prefill chunk of
        `chunk_tokens` whose request already has `chunk_prefix` tokens in the KV cache.

        The chunk's attention re-reads the prefix KV (the extra cost of chunking) and does
        4·c·(prefix + c/2)·q_dim/tp FLOPs.
        """
        m = self.model
        b = np.asarray(decode_batch, dtype=float)
        ctx = np.asarray(decode_context, dtype=float)
        c = np.asarray(chunk_tokens, dtype=float)
        pre = np.asarray(chunk_prefix, dtype=float)
        tokens = b + c
        kv_rank = self.kv_bytes_per_token_per_layer_rank
        attn_flops = 4.0 * (b * ctx + c * (pre + c / 2.0)) * m.q_dim / self.tp
        attn_bytes = (b * ctx + pre) * kv_rank + c * (2 * m.q_dim / self.tp) * m.kv_dtype_bytes
        size = np.cbrt(np.maximum(c, 1.0) * np.maximum(pre + c, 1.0) * m.head_dim)
        return self._forward(tokens, attn_flops, attn_bytes, size, b + (c > 0))

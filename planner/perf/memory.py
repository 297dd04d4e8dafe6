"""Memory per GPU: weights, activations, runtime reserve and the KV cache (docs/model.md §2.8)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.hardware import GPU
from planner.model import ModelSpec
from planner.units import GIB

DEFAULT_GPU_MEMORY_UTILIZATION = 0.90  # vLLM's default share of GPU memory it may use
DEFAULT_MAX_BATCHED_TOKENS = 8192  # activation peak is sized for this many tokens per iteration


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU memory of one instance (the fullest pipeline stage) and its KV capacity."""

    gpu_memory_bytes: float
    usable_bytes: float
    weights_bytes: float
    activation_bytes: float
    reserve_bytes: float
    kv_cache_bytes: float
    kv_bytes_per_token_per_gpu: float
    kv_capacity_tokens: int
    fits: bool
    reason: str | None

    def max_decode_batch(self, tokens_per_request: float) -> int:
        """How many requests of `tokens_per_request` KV tokens fit at once."""
        return int(self.kv_capacity_tokens // max(tokens_per_request, 1.0))


def plan_memory(
    model: ModelSpec,
    gpu: GPU,
    tp: int,
    pp: int,
    *,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS,
    min_kv_tokens: int | None = None,
) -> MemoryPlan:
    """KV bytes = memory·utilisation − weights/(tp·pp) − activations − runtime reserve.

    Weights per GPU: ceil(layers/pp) layers / tp plus the embedding (first stage) and the LM head
    (last stage) — both on one stage when pp = 1, unless they are tied — the larger of the two
    when pp > 1 (the fullest stage). Activations: the peak working set of `max_batched_tokens`
    tokens (residual, QKV and the MLP intermediate, twice for in/out buffers). KV per token per GPU:
    ceil(layers/pp)·2·kv_heads_rank·head_dim·bytes. The plan does not fit when the weights leave
    no room or the KV cache cannot hold `min_kv_tokens` (default: the model's max context).
    """
    problem = model.tp_problem(tp)
    wb = model.weight_dtype_bytes
    layers_stage = math.ceil(model.num_layers / pp)
    if pp == 1:
        ends = model.embedding_params + model.lm_head_params  # lm_head_params is 0 when tied
    else:
        ends = max(model.embedding_params, model.lm_head_params)
    weights = (layers_stage * model.layer_params + ends) * wb / tp
    kv_heads_rank = model.kv_heads_per_rank(tp)
    inter_rank = model.intermediate_size * model.experts_per_token / tp
    qkv_rank = (model.q_dim + 2 * kv_heads_rank * model.head_dim * tp) / tp
    ab = model.activation_dtype_bytes
    activations = 2.0 * max_batched_tokens * (model.hidden_size + qkv_rank + 2 * inter_rank) * ab
    reserve = gpu.runtime_reserve_gib * GIB
    usable = gpu.memory_bytes * gpu_memory_utilization
    kv_bytes = usable - weights - activations - reserve
    per_token = layers_stage * 2.0 * kv_heads_rank * model.head_dim * model.kv_dtype_bytes
    capacity = max(int(kv_bytes // per_token), 0)
    need = model.max_context if min_kv_tokens is None else min_kv_tokens
    reason = problem
    if reason is None and kv_bytes <= 0:
        reason = (
            f"{model.name} at tp={tp} pp={pp} needs {(weights + activations + reserve) / GIB:.1f} "
            f"GiB per GPU for weights, activations and reserve; {gpu.name} offers "
            f"{usable / GIB:.1f} GiB at {gpu_memory_utilization:.0%} utilisation"
        )
    elif reason is None and capacity < need:
        reason = (
            f"{model.name} at tp={tp} pp={pp} leaves KV room for {capacity} tokens on {gpu.name}, "
            f"fewer than the {need} one request may need"
        )
    return MemoryPlan(
        gpu_memory_bytes=gpu.memory_bytes,
        usable_bytes=usable,
        weights_bytes=weights,
        activation_bytes=activations,
        reserve_bytes=reserve,
        kv_cache_bytes=max(kv_bytes, 0.0),
        kv_bytes_per_token_per_gpu=per_token,
        kv_capacity_tokens=capacity,
        fits=reason is None,
        reason=reason,
    )

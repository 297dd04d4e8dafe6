"""Memory per GPU: weights, activations, runtime reserve and the KV cache (docs/model.md §2.8)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.engine import EngineLimits, EngineProfile
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
    context_tokens: float | None = None,
) -> MemoryPlan:
    """KV bytes = memory·utilisation − weights/(tp·pp) − activations − runtime reserve.

    Weights per GPU: ceil(layers/pp) layers / tp plus the embedding (first stage) and the LM head
    (last stage) — both on one stage when pp = 1, unless they are tied — the larger of the two
    when pp > 1 (the fullest stage). Activations: the peak working set of `max_batched_tokens`
    tokens (residual, QKV and the MLP intermediate, twice for in/out buffers). KV per token per GPU:
    ceil(layers/pp)·2·kv_heads_rank·head_dim·bytes. The plan does not fit when the weights leave
    no room or the KV cache cannot hold `min_kv_tokens` (default: the model's max context).

    Architectures of docs/model.md §1.7–§1.10: stages of mixed dense and MoE layers are summed
    layer by layer and the fullest stage counts; MLA's down-projections are held whole on every
    rank and its latent KV (kv_lora_rank + rope) is not split by TP; weight matrices take
    `weight_bytes_per_param` (quantisation scales included), the rest 16-bit; a local
    (sliding-window) layer holds min(C, window) of a sequence's C tokens, so KV bytes per token
    are counted at C = `context_tokens` (default: `min_kv_tokens`, else the max context).
    """
    problem = model.tp_problem(tp)
    layers_stage = math.ceil(model.num_layers / pp)
    if pp == 1:
        ends = model.embedding_params + model.lm_head_params  # lm_head_params is 0 when tied
    else:
        ends = max(model.embedding_params, model.lm_head_params)
    weights = _weights_per_gpu(model, tp, pp, ends)
    kv_heads_rank = model.kv_heads_per_rank(tp)
    inter_rank = model.max_active_intermediate / tp
    if model.is_mla:  # Q, the decompressed K and V per rank, and the whole latent
        latent = (model.q_lora_rank or 0) + model.mla_latent_dim
        qkv_rank = (2 * model.q_dim + model.attn_out_dim) / tp + latent
    else:
        qkv_rank = (model.q_dim + 2 * kv_heads_rank * model.head_dim * tp) / tp
    ab = model.activation_dtype_bytes
    activations = 2.0 * max_batched_tokens * (model.hidden_size + qkv_rank + 2 * inter_rank) * ab
    reserve = gpu.runtime_reserve_gib * GIB
    usable = gpu.memory_bytes * gpu_memory_utilization
    kv_bytes = usable - weights - activations - reserve
    need = model.max_context if min_kv_tokens is None else min_kv_tokens
    if model.is_mla or model.sliding_window is not None:
        ctx = float(need if context_tokens is None else max(context_tokens, 1.0))
        per_token = _kv_per_token_per_gpu(model, tp, pp, ctx)
    else:
        per_token = layers_stage * 2.0 * kv_heads_rank * model.head_dim * model.kv_dtype_bytes
    capacity = max(int(kv_bytes // per_token), 0)
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


def _stages(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """Layer ranges [first, stop) of the pipeline stages: ⌈L/p⌉ layers each, the last fewer."""
    n = math.ceil(num_layers / pp)
    return [(s * n, min((s + 1) * n, num_layers)) for s in range(pp) if s * n < num_layers]


def _weights_per_gpu(model: ModelSpec, tp: int, pp: int, ends: int) -> float:
    """Weight bytes on one GPU of the fullest stage: its layers' weights / tp plus the
    embedding/LM head `ends` / tp, and the replicated MLA down-projections whole."""
    wpp, ob = model.weight_bytes_per_param, model.other_dtype_bytes
    rep = model.replicated_params_per_layer
    best = 0.0
    for first, stop in _stages(model.num_layers, pp):
        lin, other = model.layers_split(first, stop)
        held = (stop - first) * rep
        sharded = (lin - held) * wpp + other * ob + ends * ob
        best = max(best, sharded / tp + held * wpp)
    return best


def _kv_per_token_per_gpu(model: ModelSpec, tp: int, pp: int, context: float) -> float:
    """KV bytes per token on one GPU of the fullest stage for sequences of `context` tokens:
    a global layer holds every token, a local one min(context, window) of them; MLA's latent is
    held whole on every TP rank."""
    if model.is_mla:  # the latent is not divided by tp
        per_layer = model.kv_bytes_per_token_per_layer
    else:
        per_layer = 2.0 * model.kv_heads_per_rank(tp) * model.head_dim * model.kv_dtype_bytes
    window = model.sliding_window
    share = 1.0 if window is None else min(context, window) / context
    best = 0.0
    for first, stop in _stages(model.num_layers, pp):
        glob = sum(1 for i in range(first, stop) if model.is_global_layer(i))
        best = max(best, per_layer * (glob + (stop - first - glob) * share))
    return best


def plan_engine_memory(
    model: ModelSpec,
    gpu: GPU,
    tp: int,
    pp: int,
    engine: EngineProfile,
    *,
    max_model_len: int,
    context_tokens: float | None = None,
) -> tuple[MemoryPlan, EngineLimits]:
    """`plan_memory` as a serving engine sizes it: the engine's GPU-memory share, activations
    for the tokens of the engine's memory-profiling forward pass — its own default token budget
    (vLLM V1 always chunks, so 2048 or 8192 tokens; V0 without chunking at least
    `max_model_len`), docs/model.md §2.8, §10.6 — and room for one request of `max_model_len`
    tokens; returns the plan and the engine's limits without chunking (a whole prompt of up
    to `max_model_len` tokens in one iteration)."""
    limits = engine.limits(gpu.name, gpu.memory_gib, max_model_len, chunked=False)
    profiled = engine.limits(gpu.name, gpu.memory_gib, max_model_len).max_num_batched_tokens
    mem = plan_memory(
        model,
        gpu,
        tp,
        pp,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        max_batched_tokens=profiled,
        min_kv_tokens=max_model_len,
        context_tokens=context_tokens,
    )
    return mem, limits

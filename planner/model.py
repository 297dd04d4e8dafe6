"""Model architecture and the quantities derived from it (DESIGN.md §2, §6).

Everything here is computed from the architecture, never typed in: parameter count, weight bytes,
FLOPs per token and KV-cache bytes per token.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.units import DTYPE_BYTES

# Upper bounds of the architecture numbers (the largest published models are 10–100× below
# them): they keep every derived size a finite float and reject typos such as 1e30 layers.
LIMITS: dict[str, int] = {
    "num_layers": 10_000,
    "hidden_size": 1 << 20,
    "num_heads": 1 << 16,
    "num_kv_heads": 1 << 16,
    "head_dim": 1 << 16,
    "intermediate_size": 1 << 24,
    "vocab_size": 1 << 24,
    "num_experts": 1 << 16,
    "experts_per_token": 1 << 16,
    "max_context": 1 << 24,
    "moe_intermediate_size": 1 << 24,
    "num_shared_experts": 1 << 16,
    "shared_expert_intermediate_size": 1 << 24,
    "first_dense_layers": 10_000,
    "mtp_layers": 100,
    "q_lora_rank": 1 << 20,
    "kv_lora_rank": 1 << 20,
    "qk_rope_head_dim": 1 << 16,
    "qk_nope_head_dim": 1 << 16,
    "v_head_dim": 1 << 16,
    "sliding_window": 1 << 24,
    "sliding_window_pattern": 10_000,
    "quant_group_size": 1 << 24,
}
MIN_CONTEXT = 16
WeightDtype = Literal["bf16", "fp16", "fp8", "int8", "int4"]
KVDtype = Literal["bf16", "fp16", "fp8", "int8"]
# Bytes of the scale (and zero point) stored per quantisation group: FP8 block quantisation keeps
# one fp32 inverse scale per block (DeepSeek-V3); AWQ/GPTQ an fp16 scale and a packed zero point
# of the weight's width per group; INT8 per group as INT4.
QUANT_SCALE_BYTES: dict[str, float] = {"fp8": 4.0, "int8": 2.0 + 1.0, "int4": 2.0 + 0.5}


def _bounded(name: str, doc: str, default: int | None = None, low: int = 1) -> Any:
    desc = f"{doc} ({low}..{LIMITS[name]:,})"
    if default is None:
        return Field(ge=low, le=LIMITS[name], description=desc)
    return Field(default=default, ge=low, le=LIMITS[name], description=desc)


def _optional(name: str, doc: str, low: int = 1) -> Any:
    return Field(
        default=None, ge=low, le=LIMITS[name], description=f"{doc} ({low}..{LIMITS[name]:,})"
    )


class ModelSpec(BaseModel):
    """A decoder-only transformer: LLaMA/Qwen/Mistral/Mixtral, and with the optional fields
    DeepSeek (MLA, shared experts, dense first layers, MTP), Qwen-MoE and Gemma (sliding window)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(max_length=200, description="profile name (up to 200 characters)")
    description: str = Field(default="", description="free text about the model; default empty")
    num_layers: int = _bounded("num_layers", "transformer layers")
    hidden_size: int = _bounded("hidden_size", "model width")
    num_heads: int = _bounded("num_heads", "attention (query) heads")
    num_kv_heads: int = _bounded("num_kv_heads", "key/value heads (GQA; = num_heads for MHA)")
    head_dim: int = _bounded("head_dim", "width of one attention head")
    intermediate_size: int = _bounded("intermediate_size", "MLP width (per expert for MoE)")
    vocab_size: int = _bounded("vocab_size", "vocabulary size")
    mlp: Literal["gated", "standard"] = Field(
        default="gated",
        description="gated: gate, up and down projections (SwiGLU); standard: up and down; "
        "default gated",
    )
    qkv_bias: bool = Field(
        default=False, description="the QKV projections have biases (Qwen2); default false"
    )
    tie_embeddings: bool = Field(
        default=False, description="the LM head shares the embedding matrix; default false"
    )
    num_experts: int = _bounded("num_experts", "MLP experts (1: dense)", default=1)
    experts_per_token: int = _bounded("experts_per_token", "experts active per token", default=1)
    # ---- MoE layout beyond Mixtral (docs/model.md §1.8) ----
    moe_intermediate_size: int | None = _optional(
        "moe_intermediate_size",
        "width of one routed expert when it differs from the dense MLP's intermediate_size "
        "(DeepSeek, Qwen-MoE); default (null): intermediate_size",
    )
    num_shared_experts: int = _bounded(
        "num_shared_experts",
        "experts every token passes through besides its routed ones (DeepSeek, Qwen2-MoE); "
        "default 0",
        default=0,
        low=0,
    )
    shared_expert_intermediate_size: int | None = _optional(
        "shared_expert_intermediate_size",
        "width of one shared expert; default (null): the routed experts' width",
    )
    first_dense_layers: int = _bounded(
        "first_dense_layers",
        "leading layers with a dense MLP of intermediate_size instead of experts (DeepSeek "
        "first_k_dense_replace); default 0",
        default=0,
        low=0,
    )
    mlp_only_layers: list[int] = Field(
        default_factory=list,
        max_length=LIMITS["num_layers"],
        description="further layers (0-based indices) with a dense MLP instead of experts "
        "(Qwen-MoE mlp_only_layers, decoder_sparse_step); default none",
    )
    mtp_layers: int = _bounded(
        "mtp_layers",
        "multi-token-prediction modules (DeepSeek-V3 num_nextn_predict_layers): counted in the "
        "total parameters, not loaded or run for serving; default 0",
        default=0,
        low=0,
    )
    # ---- multi-head latent attention (DeepSeek-V2/V3, docs/model.md §1.7) ----
    q_lora_rank: int | None = _optional(
        "q_lora_rank", "MLA query compression rank; default (null): a full query projection"
    )
    kv_lora_rank: int | None = _optional(
        "kv_lora_rank",
        "MLA latent KV width; set, the layer uses multi-head latent attention and caches "
        "kv_lora_rank + qk_rope_head_dim values per token; default (null): no MLA",
    )
    qk_rope_head_dim: int | None = _optional(
        "qk_rope_head_dim", "MLA rotary part of a query/key head; default (null)"
    )
    qk_nope_head_dim: int | None = _optional(
        "qk_nope_head_dim", "MLA non-rotary part of a query/key head; default (null)"
    )
    v_head_dim: int | None = _optional("v_head_dim", "MLA value head width; default (null)")
    # ---- sliding-window attention (Mistral, Gemma 2/3, docs/model.md §1.9) ----
    sliding_window: int | None = _optional(
        "sliding_window",
        "tokens a local (sliding-window) layer attends to and keeps in its KV cache; default "
        "(null): every layer attends to the whole context",
    )
    sliding_window_pattern: int = _bounded(
        "sliding_window_pattern",
        "with sliding_window: every n-th layer (n-1, 2n-1, ...) is global, the others local "
        "(Gemma 3: 6, Gemma 2: 2); 0: every layer local (Mistral); default 0",
        default=0,
        low=0,
    )
    max_context: int = _bounded(
        "max_context", "longest sequence in tokens", default=4096, low=MIN_CONTEXT
    )
    dtype: WeightDtype = Field(
        default="bf16",
        description="dtype of the transformer layers' weight matrices (int4: AWQ/GPTQ 4-bit); "
        "embedding, LM head, norms and router stay 16-bit when it is 8- or 4-bit; default bf16",
    )
    kv_dtype: KVDtype | None = Field(
        default=None,
        description="KV-cache dtype; default (null): the weight dtype (bf16 for int4 weights)",
    )
    quant_group_size: int | None = _optional(
        "quant_group_size",
        "weights sharing one quantisation scale (AWQ/GPTQ group 128; FP8 128x128 block: 16384); "
        "default (null): per-channel or per-tensor scales, not counted",
    )
    source: str = Field(
        default="",
        description="where the architecture comes from (e.g. a config.json); default empty",
    )
    hf_id: str | None = Field(
        default=None,
        max_length=200,
        description="Hugging Face repository id of the weights (owner/name), used by launch "
        "files; default (null): unknown, the launch files use a placeholder",
    )

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})"
            )
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")
        moe_only = {
            "moe_intermediate_size": self.moe_intermediate_size is not None,
            "num_shared_experts": self.num_shared_experts > 0,
            "shared_expert_intermediate_size": self.shared_expert_intermediate_size is not None,
            "first_dense_layers": self.first_dense_layers > 0,
            "mlp_only_layers": bool(self.mlp_only_layers),
        }
        if not self.is_moe and any(moe_only.values()):
            names = ", ".join(k for k, v in moe_only.items() if v)
            raise ValueError(f"{names} need a mixture of experts (num_experts > 1)")
        if self.first_dense_layers > self.num_layers:
            raise ValueError("first_dense_layers cannot exceed num_layers")
        bad = [i for i in self.mlp_only_layers if not 0 <= i < self.num_layers]
        if bad:
            raise ValueError(f"mlp_only_layers {bad[:3]} are not layers 0..{self.num_layers - 1}")
        mla = (self.qk_rope_head_dim, self.qk_nope_head_dim, self.v_head_dim)
        if self.kv_lora_rank is None:
            if self.q_lora_rank is not None or any(x is not None for x in mla):
                raise ValueError("q_lora_rank and the MLA head dims need kv_lora_rank")
        else:
            if any(x is None for x in mla):
                raise ValueError(
                    "MLA (kv_lora_rank) needs qk_rope_head_dim, qk_nope_head_dim and v_head_dim"
                )
            if self.head_dim != self.mla_qk_head_dim:
                raise ValueError(
                    f"with MLA head_dim must be qk_nope_head_dim + qk_rope_head_dim "
                    f"({self.mla_qk_head_dim}), got {self.head_dim}"
                )
        if self.sliding_window is None and self.sliding_window_pattern:
            raise ValueError("sliding_window_pattern needs sliding_window")
        if self.sliding_window_pattern > self.num_layers:
            raise ValueError("sliding_window_pattern cannot exceed num_layers")
        if self.quant_group_size is not None and self.dtype not in QUANT_SCALE_BYTES:
            raise ValueError(
                f"quant_group_size needs quantised weights (fp8, int8 or int4), not {self.dtype}"
            )
        return self

    # ---- layer kinds ---------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention (DeepSeek-V2/V3): one latent KV vector per token."""
        return self.kv_lora_rank is not None

    def is_moe_layer(self, layer: int) -> bool:
        """Whether layer `layer` (0-based) routes its tokens to experts."""
        return (
            self.is_moe and layer >= self.first_dense_layers and layer not in self.mlp_only_layers
        )

    @property
    def moe_layers(self) -> int:
        """Layers with experts; the others have a dense MLP of intermediate_size."""
        if not self.is_moe:
            return 0
        dense = set(range(self.first_dense_layers)) | set(self.mlp_only_layers)
        return self.num_layers - len(dense)

    @property
    def dense_layers(self) -> int:
        return self.num_layers - self.moe_layers

    def is_global_layer(self, layer: int) -> bool:
        """Whether layer `layer` attends to the whole context (not a sliding window)."""
        if self.sliding_window is None:
            return True
        n = self.sliding_window_pattern
        return n > 0 and (layer + 1) % n == 0

    @property
    def global_layers(self) -> int:
        """Layers attending to the whole context; the rest attend to the last sliding_window."""
        if self.sliding_window is None:
            return self.num_layers
        n = self.sliding_window_pattern
        return self.num_layers // n if n else 0

    @property
    def local_layers(self) -> int:
        return self.num_layers - self.global_layers

    # ---- data types ----------------------------------------------------------------------------
    @property
    def is_quantised(self) -> bool:
        """Weight matrices narrower than 16 bits (FP8, INT8, INT4)."""
        return self.dtype in QUANT_SCALE_BYTES

    @property
    def weight_dtype_bytes(self) -> float:
        """Bytes per element of the layers' weight matrices as a GEMM streams them."""
        return DTYPE_BYTES[self.dtype]

    @property
    def weight_bytes_per_param(self) -> float:
        """Bytes stored per weight-matrix element, the quantisation scales included."""
        if self.quant_group_size is None or self.dtype not in QUANT_SCALE_BYTES:
            return self.weight_dtype_bytes  # (a plan file may override a quantised dtype)
        return self.weight_dtype_bytes + QUANT_SCALE_BYTES[self.dtype] / self.quant_group_size

    @property
    def other_dtype_bytes(self) -> float:
        """Bytes per element of the embedding, LM head, norms, router and biases: 16-bit when
        the weight matrices are quantised (FP8, AWQ and GPTQ checkpoints and vLLM's online
        quantisation leave them so), else the weight dtype."""
        return DTYPE_BYTES["bf16"] if self.is_quantised else self.weight_dtype_bytes

    @property
    def compute_dtype(self) -> str:
        """The dtype whose peak the GEMMs run at: INT4 weights are widened to 16-bit in the
        kernel (W4A16); FP8 and INT8 use the 8-bit peak."""
        return "bf16" if self.dtype == "int4" else self.dtype

    @property
    def activation_dtype_bytes(self) -> float:
        """Activations (and TP all-reduce messages) stay in 16-bit even when weights are FP8 or
        INT8 (W8A16 and W8A8 kernels alike return BF16/FP16 outputs)."""
        return DTYPE_BYTES["bf16"]

    @property
    def cache_dtype(self) -> str:
        """The KV cache's dtype: `kv_dtype`, else the weight dtype (bf16 for int4 weights)."""
        return self.kv_dtype or ("bf16" if self.dtype == "int4" else self.dtype)

    @property
    def kv_dtype_bytes(self) -> float:
        return DTYPE_BYTES[self.cache_dtype]

    # ---- attention -----------------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        """Query projection width heads·head_dim (≠ hidden for Qwen3; MLA: heads·(nope+rope))."""
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def mla_qk_head_dim(self) -> int:
        """MLA query/key head width qk_nope_head_dim + qk_rope_head_dim."""
        return (self.qk_nope_head_dim or 0) + (self.qk_rope_head_dim or 0)

    @property
    def mla_latent_dim(self) -> int:
        """Values MLA caches per token and layer: kv_lora_rank + qk_rope_head_dim."""
        return (self.kv_lora_rank or 0) + (self.qk_rope_head_dim or 0)

    @property
    def attn_out_dim(self) -> int:
        """Width entering the output projection: heads·v_head_dim with MLA, else q_dim."""
        return self.num_heads * (self.v_head_dim or 0) if self.is_mla else self.q_dim

    @property
    def attention_linear_params_per_layer(self) -> int:
        """Weight matrices of one attention block. Standard: QKV h·(q_dim + 2·kv_dim) and output
        q_dim·h. MLA: query h·q_lora + q_lora·H·(nope+rope) (h·H·(nope+rope) uncompressed),
        latent KV down-projection h·(kv_lora + rope), its up-projection kv_lora·H·(nope + v)
        and output H·v·h."""
        h = self.hidden_size
        if not self.is_mla:
            return h * (self.q_dim + 2 * self.kv_dim) + self.q_dim * h
        q = (
            h * self.q_lora_rank + self.q_lora_rank * self.q_dim
            if self.q_lora_rank
            else h * self.q_dim
        )
        kv_up = (
            (self.kv_lora_rank or 0)
            * self.num_heads
            * ((self.qk_nope_head_dim or 0) + (self.v_head_dim or 0))
        )
        return q + h * self.mla_latent_dim + kv_up + self.attn_out_dim * h

    @property
    def attention_params_per_layer(self) -> int:
        """The attention weight matrices plus QKV biases (Qwen2) or MLA's two latent norms."""
        if self.is_mla:
            norms = (self.kv_lora_rank or 0) + (self.q_lora_rank or 0)
            return self.attention_linear_params_per_layer + norms
        qkv = self.hidden_size * (self.q_dim + 2 * self.kv_dim)
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        return qkv + bias + self.q_dim * self.hidden_size

    @property
    def replicated_params_per_layer(self) -> int:
        """Attention weights every TP rank holds whole: MLA's query and latent-KV
        down-projections (replicated linear layers in vLLM); 0 without MLA."""
        if not self.is_mla:
            return 0
        return self.hidden_size * ((self.q_lora_rank or 0) + self.mla_latent_dim)

    @property
    def attention_flops_per_key(self) -> int:
        """FLOPs of one query attending to one key in one layer: QKᵀ 2·H·d_qk plus PV 2·H·d_v,
        i.e. 4·q_dim, or 2·H·(nope + rope + v) with MLA (its decompressed form)."""
        if self.is_mla:
            return 2 * self.num_heads * (self.mla_qk_head_dim + (self.v_head_dim or 0))
        return 4 * self.q_dim

    # ---- MLP -----------------------------------------------------------------------------------
    @property
    def expert_intermediate_size(self) -> int:
        """Width of one routed expert."""
        return self.moe_intermediate_size or self.intermediate_size

    @property
    def shared_intermediate_size(self) -> int:
        """Width of all shared experts together (vLLM runs them as one MLP)."""
        one = self.shared_expert_intermediate_size or self.expert_intermediate_size
        return self.num_shared_experts * one

    @property
    def _mlp_mats(self) -> int:
        return 3 if self.mlp == "gated" else 2

    @property
    def expert_params(self) -> int:
        """One MLP (expert): gated = 3·hidden·intermediate, standard = 2·hidden·intermediate."""
        return self._mlp_mats * self.hidden_size * self.expert_intermediate_size

    @property
    def dense_mlp_params(self) -> int:
        """The dense MLP of a dense model or of a MoE model's dense layers."""
        return self._mlp_mats * self.hidden_size * self.intermediate_size

    @property
    def shared_expert_params(self) -> int:
        return self._mlp_mats * self.hidden_size * self.shared_intermediate_size

    @property
    def router_params(self) -> int:
        return self.hidden_size * self.num_experts if self.is_moe else 0

    @property
    def mlp_params_per_layer(self) -> int:
        """MLP weights of a MoE layer (every expert, shared experts, router), or of a dense
        model's layer."""
        if not self.is_moe:
            return self.dense_mlp_params
        return (
            self.num_experts * self.expert_params + self.shared_expert_params + self.router_params
        )

    @property
    def active_mlp_params_per_layer(self) -> int:
        """MLP weights one token touches in a MoE layer (top-k and shared experts, router)."""
        if not self.is_moe:
            return self.dense_mlp_params
        return (
            self.experts_per_token * self.expert_params
            + self.shared_expert_params
            + self.router_params
        )

    @property
    def active_intermediate(self) -> float:
        """Mean MLP width a token passes through per layer (k routed plus shared experts in MoE
        layers, intermediate_size in dense ones)."""
        if not self.is_moe:
            return self.intermediate_size * self.experts_per_token
        moe = self.experts_per_token * self.expert_intermediate_size + self.shared_intermediate_size
        if self.dense_layers == 0:
            return moe
        return (
            self.moe_layers * moe + self.dense_layers * self.intermediate_size
        ) / self.num_layers

    @property
    def max_active_intermediate(self) -> int:
        """Widest MLP intermediate a token meets in any layer (activation memory)."""
        if not self.is_moe:
            return self.intermediate_size * self.experts_per_token
        moe = self.experts_per_token * self.expert_intermediate_size + self.shared_intermediate_size
        return max(moe, self.intermediate_size) if self.dense_layers else moe

    # ---- parameters ----------------------------------------------------------------------------
    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @property
    def layer_params(self) -> int:
        """Parameters of one layer (a MoE layer of a MoE model)."""
        return (
            self.attention_params_per_layer + self.mlp_params_per_layer + self.norm_params_per_layer
        )

    def _layer_split(self, moe: bool) -> tuple[int, int]:
        """(weight-matrix parameters, other parameters) of one layer with a MoE or dense MLP;
        'other' are norms, biases and the router, kept 16-bit under quantisation."""
        attn = self.attention_linear_params_per_layer
        other = self.attention_params_per_layer - attn + self.norm_params_per_layer
        if moe:
            mlp = self.num_experts * self.expert_params + self.shared_expert_params
            other += self.router_params
        else:
            mlp = self.dense_mlp_params
        return attn + mlp, other

    def layers_split(self, first: int, stop: int) -> tuple[int, int]:
        """(weight-matrix parameters, other parameters) of layers first..stop-1."""
        n = max(stop - first, 0)
        moe = sum(1 for i in range(first, stop) if self.is_moe_layer(i)) if self.is_moe else 0
        lin_m, oth_m = self._layer_split(True)
        lin_d, oth_d = self._layer_split(False)
        return moe * lin_m + (n - moe) * lin_d, moe * oth_m + (n - moe) * oth_d

    def _mtp_split(self) -> tuple[int, int]:
        """(weight-matrix, other) parameters of the multi-token-prediction modules: each one
        decoder layer, a 2h→h projection and three norms; embedding and head are shared."""
        lin, other = self._layer_split(self.is_moe)
        h = self.hidden_size
        return self.mtp_layers * (lin + 2 * h * h), self.mtp_layers * (other + 3 * h)

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    @property
    def mtp_params(self) -> int:
        """Parameters of the multi-token-prediction modules (not served, not in FLOPs)."""
        return sum(self._mtp_split())

    @property
    def param_count(self) -> int:
        """Total parameters = layers + embedding + LM head + final norm + MTP modules."""
        lin, other = self.layers_split(0, self.num_layers)
        return (
            lin
            + other
            + self.embedding_params
            + self.lm_head_params
            + self.hidden_size
            + self.mtp_params
        )

    @property
    def active_param_count(self) -> int:
        """Parameters touched per token (MoE: top-k and shared experts; no embedding lookup,
        no MTP module)."""
        per_layer = self.attention_params_per_layer + self.norm_params_per_layer
        mlp = self.moe_layers * self.active_mlp_params_per_layer
        mlp += self.dense_layers * self.dense_mlp_params
        return self.num_layers * per_layer + mlp + self.lm_head_params + self.hidden_size

    @property
    def weight_bytes(self) -> float:
        """Bytes of every parameter (MTP modules included): weight matrices at
        weight_bytes_per_param, the rest at other_dtype_bytes."""
        lin, other = self.layers_split(0, self.num_layers)
        mtp_lin, mtp_other = self._mtp_split()
        other += mtp_other + self.embedding_params + self.lm_head_params + self.hidden_size
        return (lin + mtp_lin) * self.weight_bytes_per_param + other * self.other_dtype_bytes

    # ---- KV cache and FLOPs --------------------------------------------------------------------
    @property
    def kv_bytes_per_token_per_layer(self) -> float:
        """K and V: 2·kv_heads·head_dim·bytes; MLA: the latent (kv_lora_rank + rope)·bytes."""
        if self.is_mla:
            return self.mla_latent_dim * self.kv_dtype_bytes
        return 2 * self.kv_dim * self.kv_dtype_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """KV cache per token over all layers while a sequence is within the sliding window (the
        whole context without one): layers·kv_bytes_per_token_per_layer."""
        return self.num_layers * self.kv_bytes_per_token_per_layer

    def kv_bytes_per_sequence(self, context: Any) -> Any:
        """KV bytes one sequence of `context` tokens holds (scalar or array): global layers keep
        every token, local ones the last sliding_window."""
        if self.sliding_window is None:
            return context * self.kv_bytes_per_token
        held = self.global_layers * context + self.local_layers * np.minimum(
            context, self.sliding_window
        )
        return held * self.kv_bytes_per_token_per_layer

    def flops_per_token(self, context: int = 0) -> float:
        """Forward FLOPs for one token: 2·active params (GEMMs) + attention 4·context·q_dim per
        layer (QK^T and PV), the standard decoder estimate (Kaplan et al. 2020); a local layer
        attends to at most sliding_window keys; MLA per key 2·H·(nope + rope + v)."""
        if self.sliding_window is None and not self.is_mla:
            return 2.0 * self.active_param_count + 4.0 * context * self.q_dim * self.num_layers
        keys = float(self.global_layers * context)
        if self.sliding_window is not None:
            keys += self.local_layers * min(context, self.sliding_window)
        return 2.0 * self.active_param_count + self.attention_flops_per_key * keys

    def tp_problem(self, tp: int) -> str | None:
        """Why tensor parallelism `tp` cannot shard this model, or None if it can."""
        if tp < 1:
            return "tp must be >= 1"
        if self.num_heads % tp:
            return f"tp={tp} does not divide num_heads={self.num_heads}"
        if self.is_mla:
            return None  # the latent KV is not split by heads: every rank holds all of it
        if self.num_kv_heads % tp and tp % self.num_kv_heads:
            return f"tp={tp} neither divides nor is a multiple of num_kv_heads={self.num_kv_heads}"
        return None

    def kv_heads_per_rank(self, tp: int) -> int:
        """KV heads stored per TP rank (replicated when tp > kv_heads); MLA: one latent 'head'
        on every rank (vLLM's MLA backends keep the whole latent cache on each rank)."""
        if self.is_mla:
            return 1
        return max(1, self.num_kv_heads // tp)

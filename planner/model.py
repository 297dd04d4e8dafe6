"""Model architecture and the quantities derived from it (DESIGN.md §2, §6).

Everything here is computed from the architecture, never typed in: parameter count, weight bytes,
FLOPs per token and KV-cache bytes per token.
"""

from __future__ import annotations

from typing import Any, Literal

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
}
MIN_CONTEXT = 16


def _bounded(name: str, doc: str, default: int | None = None, low: int = 1) -> Any:
    desc = f"{doc} ({low}..{LIMITS[name]:,})"
    if default is None:
        return Field(ge=low, le=LIMITS[name], description=desc)
    return Field(default=default, ge=low, le=LIMITS[name], description=desc)


class ModelSpec(BaseModel):
    """A decoder-only transformer (LLaMA/Qwen/Mixtral family)."""

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
    max_context: int = _bounded(
        "max_context", "longest sequence in tokens", default=4096, low=MIN_CONTEXT
    )
    dtype: Literal["bf16", "fp16", "fp8", "int8"] = Field(
        default="bf16", description="weight dtype; default bf16"
    )
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = Field(
        default=None, description="KV-cache dtype; default (null): the weight dtype"
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
        return self

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def weight_dtype_bytes(self) -> float:
        return DTYPE_BYTES[self.dtype]

    @property
    def activation_dtype_bytes(self) -> float:
        """Activations (and TP all-reduce messages) stay in 16-bit even when weights are FP8 or
        INT8 (W8A16 and W8A8 kernels alike return BF16/FP16 outputs)."""
        return DTYPE_BYTES["bf16"]

    @property
    def kv_dtype_bytes(self) -> float:
        return DTYPE_BYTES[self.kv_dtype or self.dtype]

    @property
    def q_dim(self) -> int:
        """Query projection width heads·head_dim (≠ hidden for Qwen3)."""
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def attention_params_per_layer(self) -> int:
        """QKV: hidden·(q_dim + 2·kv_dim) (+ bias) and output: q_dim·hidden."""
        qkv = self.hidden_size * (self.q_dim + 2 * self.kv_dim)
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        return qkv + bias + self.q_dim * self.hidden_size

    @property
    def expert_params(self) -> int:
        """One MLP (expert): gated = 3·hidden·intermediate, standard = 2·hidden·intermediate."""
        mats = 3 if self.mlp == "gated" else 2
        return mats * self.hidden_size * self.intermediate_size

    @property
    def mlp_params_per_layer(self) -> int:
        router = self.hidden_size * self.num_experts if self.is_moe else 0
        return self.num_experts * self.expert_params + router

    @property
    def active_mlp_params_per_layer(self) -> int:
        router = self.hidden_size * self.num_experts if self.is_moe else 0
        return self.experts_per_token * self.expert_params + router

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @property
    def layer_params(self) -> int:
        return (
            self.attention_params_per_layer + self.mlp_params_per_layer + self.norm_params_per_layer
        )

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    @property
    def param_count(self) -> int:
        """Total parameters = layers·layer + embedding + LM head + final norm."""
        return (
            self.num_layers * self.layer_params
            + self.embedding_params
            + self.lm_head_params
            + self.hidden_size
        )

    @property
    def active_param_count(self) -> int:
        """Parameters touched per token (MoE: top-k experts only)."""
        per_layer = (
            self.attention_params_per_layer
            + self.active_mlp_params_per_layer
            + self.norm_params_per_layer
        )
        return self.num_layers * per_layer + self.lm_head_params + self.hidden_size

    @property
    def weight_bytes(self) -> float:
        return self.param_count * self.weight_dtype_bytes

    @property
    def kv_bytes_per_token_per_layer(self) -> float:
        """K and V: 2·kv_heads·head_dim·bytes."""
        return 2 * self.kv_dim * self.kv_dtype_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """KV cache per token over all layers: 2·layers·kv_heads·head_dim·bytes."""
        return self.num_layers * self.kv_bytes_per_token_per_layer

    def flops_per_token(self, context: int = 0) -> float:
        """Forward FLOPs for one token: 2·active params (GEMMs) + attention 4·context·q_dim per
        layer (QK^T and PV), the standard decoder estimate (Kaplan et al. 2020)."""
        return 2.0 * self.active_param_count + 4.0 * context * self.q_dim * self.num_layers

    def tp_problem(self, tp: int) -> str | None:
        """Why tensor parallelism `tp` cannot shard this model, or None if it can."""
        if tp < 1:
            return "tp must be >= 1"
        if self.num_heads % tp:
            return f"tp={tp} does not divide num_heads={self.num_heads}"
        if self.num_kv_heads % tp and tp % self.num_kv_heads:
            return f"tp={tp} neither divides nor is a multiple of num_kv_heads={self.num_kv_heads}"
        return None

    def kv_heads_per_rank(self, tp: int) -> int:
        """KV heads stored per TP rank (replicated when tp > kv_heads)."""
        return max(1, self.num_kv_heads // tp)

"""Serving-engine semantics: what the software adds to the hardware's operator times
(docs/model.md §2.6, §2.10).

An engine profile says how an engine version runs a model — decode under CUDA graphs (no
per-kernel launch cost) or eagerly, custom all-reduce for small messages on NVLink / PCIe pairs —
what it costs per iteration on the CPU (scheduling, input preparation, sampling, output
processing), and which caps bind every batch: `max_num_seqs` sequences and
`max_num_batched_tokens` tokens per iteration. Defaults follow vLLM's own logic for the version
named (read from its source; figures and functions cited in `sources`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.units import MIB, MS, US

MAX_SEQS = 65536
MAX_BATCHED_TOKENS = 1 << 20


class EngineProfile(BaseModel):
    """A serving engine version's behaviour and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="profile name, e.g. vllm-v1")
    description: str = ""
    chunked_prefill_default: bool = Field(
        description="whether the engine chunks prefills into hybrid batches by default"
    )
    cuda_graph_decode: bool = Field(
        default=True, description="decode-only iterations replay CUDA graphs (no launch cost)"
    )
    cuda_graph_max_batch: int = Field(
        default=512, ge=0, le=MAX_SEQS, description="largest decode batch captured in a graph"
    )
    piecewise_cuda_graphs: bool = Field(
        default=False,
        description="iterations of up to cuda_graph_max_batch tokens that hold prompts (prefill, "
        "mixed) also replay CUDA graphs, except their attention kernels (vLLM V1)",
    )
    custom_allreduce: bool = Field(
        default=True,
        description="one-shot custom all-reduce for messages below custom_allreduce_max_mib on "
        "NVLink-connected groups of up to 8 GPUs, or any pair with P2P access",
    )
    custom_allreduce_max_mib: float = Field(default=8.0, gt=0, le=1024, allow_inf_nan=False)
    iteration_overhead_ms: float = Field(
        ge=0, le=1000, allow_inf_nan=False, description="CPU time per iteration, ms"
    )
    per_sequence_overhead_us: float = Field(
        default=0.0,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="CPU time per sequence in an iteration, µs",
    )
    max_num_seqs: int | None = Field(
        default=None, ge=1, le=MAX_SEQS, description="default: the engine's, by GPU memory"
    )
    max_num_batched_tokens: int | None = Field(
        default=None,
        ge=16,
        le=MAX_BATCHED_TOKENS,
        description="tokens per iteration; default: the engine's, by GPU memory",
    )
    gpu_memory_utilization: float = Field(default=0.90, gt=0, le=1, allow_inf_nan=False)
    prefix_caching: bool = Field(
        default=False,
        description="automatic prefix caching: a prompt that starts with cached KV blocks skips "
        "their prefill, and requests share those blocks (docs/model.md §7.1)",
    )
    kv_block_tokens: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="tokens per KV-cache block; prefix caching reuses whole blocks only",
    )
    large_gpu_gib: float = Field(
        default=70.0,
        description="GPUs with at least this much memory (A100 excepted) get the large defaults",
    )
    default_seqs: tuple[int, int] = Field(
        default=(256, 1024), description="max_num_seqs default: (smaller GPUs, large GPUs)"
    )
    default_batched_tokens: tuple[int, int] = Field(
        default=(2048, 8192),
        description="max_num_batched_tokens default with chunked prefill: (smaller, large)",
    )
    sources: dict[str, str] = Field(default_factory=dict)

    def limits(
        self,
        gpu_name: str,
        gpu_memory_gib: float,
        max_model_len: int,
        chunked: bool | None = None,
    ) -> EngineLimits:
        """The caps that bind on a GPU: user values, else the engine's defaults for that GPU
        (vLLM V1 `vllm serve`: 1024 sequences and 8192 tokens on GPUs of ≥ 70 GiB other than
        the A100, else 256 and 2048). Without chunked prefill (`chunked`, default: the engine's
        default) a prompt must fit one iteration whole, so the default token budget is at least
        the context, as vLLM sets it."""
        chunk = self.chunked_prefill_default if chunked is None else chunked
        large = gpu_memory_gib >= self.large_gpu_gib and "a100" not in gpu_name.lower()
        seqs = self.max_num_seqs or self.default_seqs[int(large)]
        tokens = self.max_num_batched_tokens or self.default_batched_tokens[int(large)]
        if not chunk and self.max_num_batched_tokens is None:
            tokens = max(tokens, max_model_len)
        return EngineLimits(max_num_seqs=seqs, max_num_batched_tokens=tokens)

    @property
    def iteration_overhead_s(self) -> float:
        return self.iteration_overhead_ms * MS

    @property
    def per_sequence_overhead_s(self) -> float:
        return self.per_sequence_overhead_us * US

    @property
    def custom_allreduce_max_bytes(self) -> float:
        return self.custom_allreduce_max_mib * MIB


class EngineLimits(BaseModel):
    """The batch caps of one engine on one GPU type."""

    model_config = ConfigDict(frozen=True)

    max_num_seqs: int
    max_num_batched_tokens: int


_VLLM_SOURCE = (
    "vLLM source, engine/arg_utils.py EngineArgs._set_default_args_v1 (v0.9.2) and "
    "get_batch_defaults (v0.34.0): 1024 seqs / 8192 tokens for `vllm serve` on GPUs of ≥ 70 GiB "
    "other than A100, else 256 / 2048"
)

_PREFIX_SOURCE = (
    "vLLM source, engine/arg_utils.py: --enable-prefix-caching is an argparse "
    "BooleanOptionalAction (so --no-enable-prefix-caching exists) whose default is unset;"
)
_BLOCK_SOURCE = (
    "vLLM source: an unset --block-size becomes 16 tokens on CUDA GPUs (platforms/cuda.py "
    "check_and_update_config); prefix caching hashes and reuses full blocks only "
    "(v1/core/kv_cache_utils.py hash_request_tokens, v0.9.x)"
)

ENGINES: dict[str, EngineProfile] = {
    "vllm-v1": EngineProfile(
        name="vllm-v1",
        description="vLLM V1 engine (v0.9–v0.34): chunked prefill, CUDA-graph decode, custom "
        "all-reduce",
        chunked_prefill_default=True,
        cuda_graph_max_batch=512,
        piecewise_cuda_graphs=True,
        iteration_overhead_ms=0.5,
        per_sequence_overhead_us=2.0,
        gpu_memory_utilization=0.90,
        prefix_caching=True,
        sources={
            "limits": _VLLM_SOURCE,
            "chunked_prefill_default": "always on for decoder LLMs in V1 (arg_utils.py)",
            "cuda_graph_max_batch": "V1 cuda_graph_sizes default [512] (v0.9.2 config.py); "
            "v0.34 max_cudagraph_capture_size 512",
            "piecewise_cuda_graphs": "V1 compiles the model piecewise: graphs cover mixed "
            "prefill/decode batches up to the capture size, attention runs outside them "
            "(v0.9.2 config.py CompilationConfig)",
            "custom_allreduce": "custom_all_reduce.py: world sizes 2,4,6,8; > 2 GPUs only when "
            "fully NVLink-connected; messages < 8 MiB",
            "iteration_overhead_ms": "assumption: V1 moves output processing and detokenisation "
            "off the model-runner loop; DESIGN range 0.5–3 ms per iteration, low end for V1 "
            "(docs/model.md §12.2)",
            "per_sequence_overhead_us": "assumption (docs/model.md §12.2)",
            "gpu_memory_utilization": "CacheConfig default 0.9 (v0.9.2)",
            "prefix_caching": _PREFIX_SOURCE + " V1 turns it on unless the user sets "
            "--no-enable-prefix-caching (_set_default_args_v1, v0.9.x)",
            "kv_block_tokens": _BLOCK_SOURCE,
        },
    ),
    "vllm-v0": EngineProfile(
        name="vllm-v0",
        description="vLLM V0 engine (≤ v0.9, VLLM_USE_V1=0): prefill-priority scheduler, no "
        "chunked prefill, CUDA-graph decode up to batch 256",
        chunked_prefill_default=False,
        cuda_graph_max_batch=256,
        iteration_overhead_ms=1.2,
        per_sequence_overhead_us=25.0,
        gpu_memory_utilization=0.90,
        default_seqs=(256, 256),
        default_batched_tokens=(2048, 2048),
        prefix_caching=False,
        sources={
            "limits": "vLLM v0.9.2 _set_default_args_v0: max_num_seqs 256; SchedulerConfig: "
            "max_num_batched_tokens = max(max_model_len, 2048) without chunked prefill",
            "cuda_graph_max_batch": "V0 _set_cudagraph_sizes: capture up to max_num_seqs (256)",
            "iteration_overhead_ms": "Vidur's published CPU-overhead profiles of a V0-style "
            "engine (A100, Llama-2-7B TP1, batch 8: schedule 0.17 + sampler 0.89 + prepare "
            "0.29 ms; microsoft/vidur data/profiling/a100/cpu_overheads.csv at 0633efa)",
            "per_sequence_overhead_us": "same profiles: schedule, prepare and output processing "
            "grow by ~25 µs per sequence without output processing's Ray-specific part; "
            "assumption (docs/model.md §12.2)",
            "prefix_caching": _PREFIX_SOURCE + " V0 leaves it off unless the user passes "
            "--enable-prefix-caching (EngineArgs.__post_init__ sets bool(VLLM_USE_V1), v0.7; "
            "_set_default_args_v0 never turns it on, v0.9.x)",
            "kv_block_tokens": _BLOCK_SOURCE,
        },
    ),
}
DEFAULT_ENGINE = "vllm-v1"


def load_engine(name: str) -> EngineProfile:
    """A shipped engine profile by name."""
    if name not in ENGINES:
        raise PlannerError(f"engine: unknown engine '{name}'; known: {', '.join(ENGINES)}")
    return ENGINES[name]


__all__ = ["DEFAULT_ENGINE", "ENGINES", "EngineLimits", "EngineProfile", "load_engine"]

"""Hardware description: GPU, intra-node link, inter-node network and cluster (DESIGN.md §2, §6)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.errors import PlannerError
from planner.units import GB, GBIT_BYTES, GIB, TERA, US
from planner.yamlio import clip


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Sane ranges, 100× or more beyond today's hardware both ways: they keep every derived time and
# size a finite float (no overflow to inf, no division by an underflowed zero).
MAX_BANDWIDTH_GB_S = 1e6  # 1 PB/s
MIN_BANDWIDTH_GB_S = 1e-3  # 1 MB/s
MAX_LATENCY_US = 1e6  # 1 s
MAX_GROUP = 4096  # GPUs in one collective
MAX_PRICE = 1e6  # per GPU-hour, any currency


class IntraNodeLink(_Frozen):
    """GPU-to-GPU path inside a node (PCIe through switches, or NVLink)."""

    kind: Literal["pcie_gen4", "pcie_gen5", "nvlink"] = Field(
        description="link type: pcie_gen4, pcie_gen5 or nvlink"
    )
    p2p_bandwidth_gb_s: float = Field(
        ge=MIN_BANDWIDTH_GB_S,
        le=MAX_BANDWIDTH_GB_S,
        allow_inf_nan=False,
        description="effective point-to-point GB/s per direction (0.001..1e6)",
    )
    latency_us: float = Field(
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="latency of a point-to-point transfer (µs, 0..1e6)",
    )
    allreduce_bus_bandwidth_gb_s: dict[int, float] = Field(
        max_length=64,
        description="NCCL all-reduce bus bandwidth (GB/s, 0.001..1e6) by group size (2..4096)",
    )
    allreduce_latency_us: dict[int, float] = Field(
        max_length=64,
        description="NCCL all-reduce latency of a small message (µs, 0..1e6) by group size: "
        "the one latency term α of a collective",
    )
    custom_allreduce_latency_us: float | None = Field(
        default=None,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="latency of an engine's one-shot custom all-reduce on this link (µs); "
        "null: the link does not support it (PCIe beyond 2 GPUs, no P2P)",
    )

    @field_validator("allreduce_bus_bandwidth_gb_s", "allreduce_latency_us")
    @classmethod
    def _by_group(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("needs at least one group size")
        for size, x in v.items():
            if not 2 <= size <= MAX_GROUP:
                raise ValueError(f"group size {size:g} must be 2..{MAX_GROUP}")
            if not (math.isfinite(x) and 0 <= x <= MAX_BANDWIDTH_GB_S):
                raise ValueError(f"group size {size}: value must be 0..1e6, got {x:g}")
        return v

    @model_validator(mode="after")
    def _bandwidths(self) -> IntraNodeLink:
        for size, bw in self.allreduce_bus_bandwidth_gb_s.items():
            if bw < MIN_BANDWIDTH_GB_S:
                raise ValueError(
                    f"allreduce_bus_bandwidth_gb_s: group size {size}: bandwidth must be "
                    f"{MIN_BANDWIDTH_GB_S:g}..{MAX_BANDWIDTH_GB_S:g} GB/s, got {bw:g}"
                )
        return self

    @staticmethod
    def _for_group(table: dict[int, float], group: int) -> float:
        """The entry for the smallest listed size >= group (figures worsen with group size on
        PCIe), else the largest listed."""
        sizes = sorted(table)
        for s in sizes:
            if s >= group:
                return table[s]
        return table[sizes[-1]]

    def bus_bandwidth_bytes_s(self, group: int) -> float:
        """All-reduce bus bandwidth over `group` GPUs (bytes/s)."""
        return self._for_group(self.allreduce_bus_bandwidth_gb_s, group) * GB

    def allreduce_latency_s(self, group: int) -> float:
        """All-reduce small-message latency over `group` GPUs (s)."""
        return self._for_group(self.allreduce_latency_us, group) * US

    def supports_custom_allreduce(self, group: int) -> bool:
        """An engine's custom all-reduce runs on NVLink-connected groups, or on a pair with P2P
        access (vLLM custom_all_reduce.py): the profile says so by giving its latency."""
        if self.custom_allreduce_latency_us is None:
            return False
        return self.kind == "nvlink" or group == 2

    @property
    def p2p_bandwidth_bytes_s(self) -> float:
        return self.p2p_bandwidth_gb_s * GB

    @property
    def latency_s(self) -> float:
        return self.latency_us * US


def _check_table(v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
    """A measured efficiency table: sizes positive and increasing, efficiencies in (0, 1]."""
    if v is None:
        return v
    if not v:
        raise ValueError("needs at least one [size, efficiency] point")
    sizes = [p[0] for p in v]
    if sizes != sorted(set(sizes)) or any(not (0 < x <= 1e9) for x in sizes):
        raise ValueError("sizes must be increasing, in (0, 1e9]")
    if any(not (0 < e <= 1) for _, e in v):
        raise ValueError("efficiencies must be in (0, 1]")
    return v


def _interpolate(table: list[tuple[float, float]], x: np.ndarray) -> np.ndarray:
    """Log-linear interpolation of a measured [[size, efficiency], ...] table, clamped."""
    xs = np.log([p[0] for p in table])
    ys = np.array([p[1] for p in table])
    return np.asarray(np.interp(np.log(x), xs, ys))


class GemmEfficiency(_Frozen):
    """Dense GEMM compute efficiency as a function of M (tokens in the batch)."""

    plateau: float = Field(
        gt=0, le=1, allow_inf_nan=False, description="share of dense peak at large M (0..1]"
    )
    knee_tokens: float = Field(
        gt=0, le=1e6, allow_inf_nan=False, description="M at half the plateau (tokens)"
    )
    measured: list[tuple[float, float]] | None = Field(
        default=None,
        max_length=1000,
        description="optional measured [[M tokens, efficiency], ...] (M increasing): when given, "
        "the efficiency is interpolated log-linearly in M between them (clamped at the ends) "
        "instead of the curve",
    )

    @field_validator("measured")
    @classmethod
    def _table(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        return _check_table(v)


class AttentionEfficiency(_Frozen):
    """FlashAttention-style prefill and paged decode attention."""

    prefill_plateau: float = Field(
        gt=0, le=1, allow_inf_nan=False, description="share of dense peak, long prompts (0..1]"
    )
    prefill_knee_tokens: float = Field(
        gt=0, le=1e7, allow_inf_nan=False, description="KV length at half the plateau (tokens)"
    )
    decode_per_sequence_head_us: float = Field(
        ge=0,
        le=1e4,
        allow_inf_nan=False,
        description="fixed cost per (sequence × KV head on the rank) of a decode attention "
        "kernel per layer (µs): dominates at short contexts",
    )


class GPU(_Frozen):
    """One GPU model with its performance parameters (docs/model.md §3.1)."""

    name: str = Field(max_length=200, description="profile name (up to 200 characters)")
    description: str = Field(default="", description="free text about the GPU; default empty")
    memory_gib: float = Field(
        ge=0.01,
        le=1e5,
        allow_inf_nan=False,
        description="memory per GPU as the CUDA runtime reports it, what the engine's "
        "gpu_memory_utilization multiplies (GiB, 0.01..1e5; a 48 GB GDDR6 board with ECC: ~44.5)",
    )
    memory_bandwidth_gb_s: float = Field(
        ge=MIN_BANDWIDTH_GB_S,
        le=MAX_BANDWIDTH_GB_S,
        allow_inf_nan=False,
        description="memory (HBM or GDDR) bandwidth (GB/s, 0.001..1e6)",
    )
    peak_tflops: dict[str, float] = Field(
        min_length=1,
        max_length=16,
        description="dense peak TFLOPS (no sparsity) by dtype: bf16, fp16, fp8, int8 (0.001..1e6)",
    )
    gemm: GemmEfficiency = Field(description="dense GEMM efficiency as a function of M")
    attention: AttentionEfficiency = Field(
        description="prefill (FlashAttention) and decode attention efficiency"
    )
    memory_efficiency: dict[Literal["weights", "kv_cache"], float] = Field(
        description="share of memory bandwidth reached streaming weights (GEMMs at small M) and "
        "reading the KV cache in long-context decode attention"
    )
    kernel_launch_us: float = Field(
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="CPU launch cost of one kernel run eagerly (µs): an eager kernel takes at "
        "least this long; nothing under CUDA graphs",
    )
    kernel_fixed_us: float = Field(
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="fixed GPU time of every kernel (µs): ramp-up, tail and synchronisation, "
        "added to its roofline time",
    )
    iteration_overhead_ms: float | None = Field(
        default=None,
        ge=0,
        le=1e4,
        allow_inf_nan=False,
        description="measured per-iteration CPU time of the serving engine on this host (ms); "
        "when set (e.g. by `ecoplan calibrate`) it replaces the engine profile's",
    )
    runtime_reserve_gib: float = Field(
        ge=0,
        le=1e5,
        allow_inf_nan=False,
        description="memory the runtime keeps per GPU: CUDA context, allocator, graphs "
        "(GiB, 0..1e5)",
    )
    intra_node: IntraNodeLink = Field(description="GPU-to-GPU link of a node of these GPUs")
    power_w: float = Field(
        gt=0, le=1e6, allow_inf_nan=False, description="board power (W, (0, 1e6])"
    )
    price_per_gpu_hour: float = Field(
        ge=0,
        le=MAX_PRICE,
        allow_inf_nan=False,
        description="estimated price of one GPU-hour (US$, 0..1e6); a plan's "
        "cluster.price_per_gpu_hour overrides it",
    )
    sources: dict[str, str] = Field(
        default_factory=dict,
        description="where the figures come from: field → source; default empty",
    )

    @model_validator(mode="after")
    def _check(self) -> GPU:
        for kind, e in self.memory_efficiency.items():
            if not (0 < e <= 1):
                raise ValueError(f"memory_efficiency.{kind} must be in (0, 1]")
        for k, t in self.peak_tflops.items():
            if not (math.isfinite(t) and 1e-3 <= t <= 1e6):
                raise ValueError(f"peak_tflops.{clip(k, 20)} must be 0.001..1e6, got {t:g}")
        return self

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB

    @property
    def memory_bandwidth_bytes_s(self) -> float:
        return self.memory_bandwidth_gb_s * GB

    @property
    def kernel_launch_s(self) -> float:
        return self.kernel_launch_us * US

    @property
    def kernel_fixed_s(self) -> float:
        return self.kernel_fixed_us * US

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for a dtype; fp16/bf16 share a figure when only one is listed."""
        if dtype in self.peak_tflops:
            return self.peak_tflops[dtype] * TERA
        alias = {"bf16": "fp16", "fp16": "bf16", "fp8": "int8", "int8": "fp8"}.get(dtype)
        if alias and alias in self.peak_tflops:
            return self.peak_tflops[alias] * TERA
        listed = ", ".join(clip(k, 20) for k in self.peak_tflops)
        raise PlannerError(
            f"gpu {clip(self.name, 40)}: peak_tflops has no entry for {dtype} (listed: {listed})"
        )

    def gemm_efficiency(self, m_tokens: np.ndarray | float) -> np.ndarray:
        """Share of peak FLOPs a GEMM of M rows reaches: plateau·M/(M + knee) (docs/model.md
        §2.2). M — the tokens of the batch — sets how many output tiles keep the SMs busy; K and
        N are model widths of thousands and matter far less (Vidur's A100/H100 profiles). A
        measured table in the profile replaces the curve."""
        m = np.maximum(np.asarray(m_tokens, dtype=float), 1.0)
        g = self.gemm
        if g.measured is not None:
            return _interpolate(g.measured, m)
        return g.plateau * m / (m + g.knee_tokens)

    def prefill_attention_efficiency(self, key_tokens: np.ndarray | float) -> np.ndarray:
        """Share of peak FLOPs of a FlashAttention prefill kernel whose sequences attend to
        `key_tokens` tokens (prefix + chunk): its own plateau·L/(L + knee), not the GEMM curve
        (docs/model.md §2.4; Vidur's A100 attention profiles rise with the KV length)."""
        q = np.maximum(np.asarray(key_tokens, dtype=float), 1.0)
        a = self.attention
        return a.prefill_plateau * q / (q + a.prefill_knee_tokens)


class Network(_Frozen):
    """Inter-node network: one NIC per node of `bandwidth_gbit` per direction."""

    bandwidth_gbit: float = Field(
        ge=MIN_BANDWIDTH_GB_S,
        le=MAX_BANDWIDTH_GB_S,
        allow_inf_nan=False,
        description="per-direction NIC bandwidth, Gb/s (0.001..1e6)",
    )
    latency_us: float = Field(
        default=10.0,
        ge=0,
        le=MAX_LATENCY_US,
        allow_inf_nan=False,
        description="latency between nodes (µs, 0..1e6); default 10",
    )
    efficiency: float = Field(
        default=0.95,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="achievable share of line rate for bulk KV transfer ((0, 1]); default 0.95",
    )
    nics_per_node: int = Field(
        default=1,
        ge=1,
        le=64,
        description="NICs per node, each `bandwidth_gbit` (1..64); default 1",
    )

    @property
    def node_bandwidth_bytes_s(self) -> float:
        """Effective bytes/s per node per direction (line rate × efficiency × NICs)."""
        return self.bandwidth_gbit * GBIT_BYTES * self.efficiency * self.nics_per_node

    @property
    def latency_s(self) -> float:
        return self.latency_us * US


class Cluster(_Frozen):
    """A homogeneous cluster: `nodes` nodes of `gpus_per_node` GPUs joined by `network`."""

    gpu: GPU
    nodes: int = Field(ge=1)
    gpus_per_node: int = Field(ge=1)
    network: Network
    intra_node: IntraNodeLink | None = Field(
        default=None, description="overrides the GPU profile's intra-node link"
    )
    price_per_gpu_hour: float | None = Field(default=None, ge=0, le=MAX_PRICE, allow_inf_nan=False)

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def link(self) -> IntraNodeLink:
        return self.intra_node or self.gpu.intra_node

    @property
    def gpu_hour_price(self) -> float:
        return (
            self.gpu.price_per_gpu_hour
            if self.price_per_gpu_hour is None
            else self.price_per_gpu_hour
        )

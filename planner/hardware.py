"""Hardware description: GPU, intra-node link, inter-node network and cluster (DESIGN.md §2, §6)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner.units import GB, GBIT_BYTES, GIB, MS, TERA, US
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

    kind: Literal["pcie_gen4", "pcie_gen5", "nvlink"]
    p2p_bandwidth_gb_s: float = Field(
        ge=MIN_BANDWIDTH_GB_S,
        le=MAX_BANDWIDTH_GB_S,
        allow_inf_nan=False,
        description="effective point-to-point GB/s per direction (0.001..1e6)",
    )
    latency_us: float = Field(
        ge=0, le=MAX_LATENCY_US, allow_inf_nan=False, description="µs (0..1e6)"
    )
    allreduce_bus_bandwidth_gb_s: dict[int, float] = Field(
        max_length=64,
        description="NCCL all-reduce bus bandwidth (GB/s, 0.001..1e6) by group size (2..4096)",
    )

    @field_validator("allreduce_bus_bandwidth_gb_s")
    @classmethod
    def _positive(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("needs at least one group size")
        for size, bw in v.items():
            if not 2 <= size <= MAX_GROUP:
                raise ValueError(f"group size {size:g} must be 2..{MAX_GROUP}")
            if not (math.isfinite(bw) and MIN_BANDWIDTH_GB_S <= bw <= MAX_BANDWIDTH_GB_S):
                raise ValueError(
                    f"group size {size}: bandwidth must be {MIN_BANDWIDTH_GB_S:g}.."
                    f"{MAX_BANDWIDTH_GB_S:g} GB/s, got {bw:g}"
                )
        return v

    def bus_bandwidth_bytes_s(self, group: int) -> float:
        """Bus bandwidth for a collective over `group` GPUs: the profile's entry for the smallest
        listed size >= group (bandwidth falls with group size on PCIe), else the largest listed."""
        sizes = sorted(self.allreduce_bus_bandwidth_gb_s)
        for s in sizes:
            if s >= group:
                return self.allreduce_bus_bandwidth_gb_s[s] * GB
        return self.allreduce_bus_bandwidth_gb_s[sizes[-1]] * GB

    @property
    def p2p_bandwidth_bytes_s(self) -> float:
        return self.p2p_bandwidth_gb_s * GB

    @property
    def latency_s(self) -> float:
        return self.latency_us * US


class GPU(_Frozen):
    """One GPU model with its roofline parameters."""

    name: str = Field(max_length=200)
    description: str = ""
    memory_gib: float = Field(
        ge=0.01, le=1e5, allow_inf_nan=False, description="GiB per GPU (0.01..1e5)"
    )
    memory_bandwidth_gb_s: float = Field(
        ge=MIN_BANDWIDTH_GB_S,
        le=MAX_BANDWIDTH_GB_S,
        allow_inf_nan=False,
        description="HBM/GDDR GB/s (0.001..1e6)",
    )
    peak_tflops: dict[str, float] = Field(
        min_length=1, max_length=16, description="dense TFLOPS by dtype (0.001..1e6)"
    )
    compute_efficiency: list[tuple[float, float]] = Field(
        min_length=1,
        max_length=1000,
        description="[[gemm_size, efficiency], ...]: efficiency (0..1] vs cube root of M*N*K "
        "(sizes increasing, 0..1e9)",
    )
    memory_efficiency: dict[Literal["weights", "kv_cache"], float]
    iteration_overhead_ms: float = Field(
        ge=0, le=1e4, allow_inf_nan=False, description="ms per iteration (0..1e4)"
    )
    kernel_launch_us: float = Field(
        ge=0, le=MAX_LATENCY_US, allow_inf_nan=False, description="µs (0..1e6)"
    )
    runtime_reserve_gib: float = Field(
        ge=0, le=1e5, allow_inf_nan=False, description="GiB per GPU (0..1e5)"
    )
    intra_node: IntraNodeLink
    power_w: float = Field(gt=0, le=1e6, allow_inf_nan=False, description="W (0..1e6]")
    price_per_gpu_hour: float = Field(
        ge=0, le=MAX_PRICE, allow_inf_nan=False, description="per GPU-hour (0..1e6)"
    )
    sources: dict[str, str] = Field(default_factory=dict)

    @field_validator("compute_efficiency")
    @classmethod
    def _curve(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if not v:
            raise ValueError("needs at least one [size, efficiency] point")
        sizes = [p[0] for p in v]
        if sizes != sorted(sizes) or any(not (0 < s <= 1e9) for s in sizes):
            raise ValueError("sizes must be increasing, in (0, 1e9]")
        if any(not (0 < e <= 1) for _, e in v):
            raise ValueError("efficiencies must be in (0, 1]")
        return v

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
    def iteration_overhead_s(self) -> float:
        return self.iteration_overhead_ms * MS

    @property
    def kernel_launch_s(self) -> float:
        return self.kernel_launch_us * US

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for a dtype; fp16/bf16 share a figure when only one is listed."""
        if dtype in self.peak_tflops:
            return self.peak_tflops[dtype] * TERA
        alias = {"bf16": "fp16", "fp16": "bf16", "fp8": "int8", "int8": "fp8"}.get(dtype)
        if alias and alias in self.peak_tflops:
            return self.peak_tflops[alias] * TERA
        raise KeyError(f"GPU {self.name} has no peak_tflops for dtype {dtype}")

    def gemm_efficiency(self, size: np.ndarray | float) -> np.ndarray:
        """Compute efficiency at GEMM size s = (M*N*K)^(1/3): log-linear interpolation of the
        profile's curve, clamped at both ends (DESIGN.md §2)."""
        xs = np.log([p[0] for p in self.compute_efficiency])
        ys = np.array([p[1] for p in self.compute_efficiency])
        s = np.maximum(np.asarray(size, dtype=float), 1.0)
        return np.interp(np.log(s), xs, ys)


class Network(_Frozen):
    """Inter-node network: one NIC per node of `bandwidth_gbit` per direction."""

    bandwidth_gbit: float = Field(
        ge=MIN_BANDWIDTH_GB_S,
        le=MAX_BANDWIDTH_GB_S,
        allow_inf_nan=False,
        description="per-direction NIC bandwidth, Gb/s (0.001..1e6)",
    )
    latency_us: float = Field(
        default=10.0, ge=0, le=MAX_LATENCY_US, allow_inf_nan=False, description="µs (0..1e6)"
    )
    efficiency: float = Field(
        default=0.95,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="achievable share of line rate for bulk KV transfer",
    )
    nics_per_node: int = Field(default=1, ge=1, le=64, description="1..64")

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

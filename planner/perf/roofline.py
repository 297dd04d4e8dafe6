"""Per-operator roofline: time = max(FLOPs / (peak · eff_compute), bytes / (bw · eff_mem)) + launch.

docs/model.md §2.1. Every function takes numpy arrays (broadcast together) so a whole grid of
batch sizes or prompt lengths is evaluated at once. Each returns the time split into the bound
that applied (compute or memory) plus launch overhead, so callers can say which resource binds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.hardware import GPU


@dataclass(frozen=True)
class OpTime:
    """Time of one operator (or a sum of operators), split by the bound that applied."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    launch_s: np.ndarray

    @property
    def total_s(self) -> np.ndarray:
        return self.compute_s + self.memory_s + self.launch_s

    def __add__(self, other: OpTime) -> OpTime:
        return OpTime(
            self.compute_s + other.compute_s,
            self.memory_s + other.memory_s,
            self.launch_s + other.launch_s,
        )

    def scale(self, k: float | np.ndarray) -> OpTime:
        return OpTime(self.compute_s * k, self.memory_s * k, self.launch_s * k)


def roofline(
    flops: np.ndarray,
    bytes_: np.ndarray,
    peak_flops: float,
    compute_eff: np.ndarray,
    bandwidth_bytes_s: float,
    mem_eff: float,
    launch_s: float,
    n_kernels: int = 1,
) -> OpTime:
    """max(flops/(peak·eff), bytes/(bw·eff_mem)), attributed to the larger side, + launches."""
    t_c = np.asarray(flops, dtype=float) / (peak_flops * np.asarray(compute_eff, dtype=float))
    t_m = np.asarray(bytes_, dtype=float) / (bandwidth_bytes_s * mem_eff)
    t_c, t_m = np.broadcast_arrays(t_c, t_m)
    compute_bound = t_c >= t_m
    return OpTime(
        compute_s=np.where(compute_bound, t_c, 0.0),
        memory_s=np.where(compute_bound, 0.0, t_m),
        launch_s=np.full(t_c.shape, launch_s * n_kernels),
    )


def gemm(
    gpu: GPU,
    dtype: str,
    m_tokens: np.ndarray,
    k_in: float,
    n_out: float,
    weight_bytes_per_elem: float,
    act_bytes_per_elem: float,
) -> OpTime:
    """Y[m×n] = X[m×k] · W[k×n]: FLOPs 2mkn; bytes = weights kn + activations m(k+n).

    Efficiency from the GPU's curve at (m·k·n)^(1/3) (docs/model.md §2.2)."""
    m = np.asarray(m_tokens, dtype=float)
    flops = 2.0 * m * k_in * n_out
    bytes_ = k_in * n_out * weight_bytes_per_elem + m * (k_in + n_out) * act_bytes_per_elem
    eff = gpu.gemm_efficiency(np.cbrt(np.maximum(m, 1.0) * k_in * n_out))
    return roofline(
        flops,
        bytes_,
        gpu.peak_flops(dtype),
        eff,
        gpu.memory_bandwidth_bytes_s,
        gpu.memory_efficiency["weights"],
        gpu.kernel_launch_s,
    )

"""Operator time: a roofline plus a fixed cost per kernel (docs/model.md §2.1).

time = fixed + max(FLOPs / (peak · eff_compute), bytes / (bandwidth · eff_memory)): every kernel
pays the GPU's fixed time (ramp-up, tail), and — when kernels are launched one by one from the
CPU (eager mode) — takes at least the CPU's launch cost, since the CPU cannot issue kernels
faster than that. Under CUDA graphs the launch cost disappears (vLLM decode). Every function
takes numpy arrays (broadcast together) so a whole grid of batch sizes or prompt lengths is
evaluated at once, and returns the time split by what bound it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.hardware import GPU


@dataclass(frozen=True)
class OpTime:
    """Time of one operator (or a sum of operators), split by the bound that applied; launch_s
    is the kernels' fixed time and any launch wait beyond it."""

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


def launch_floor_s(gpu: GPU, graphed: bool) -> float:
    """Shortest wall time of one kernel set by its launch: the CPU's launch cost in eager mode,
    nothing under CUDA graphs (docs/model.md §2.6)."""
    return 0.0 if graphed else gpu.kernel_launch_s


def roofline(
    flops: np.ndarray | float,
    bytes_: np.ndarray | float,
    peak_flops: float,
    compute_eff: np.ndarray | float,
    bandwidth_bytes_s: float,
    mem_eff: float,
    fixed_s: float,
    launch_s: float | np.ndarray,
    n_kernels: int = 1,
) -> OpTime:
    """max(flops/(peak·eff), bytes/(bw·eff_mem)), attributed to the larger side, plus
    n_kernels × fixed_s, raised to at least n_kernels × launch_s (the fixed time and any launch
    wait counted as overhead)."""
    t_c = np.asarray(flops, dtype=float) / (peak_flops * np.asarray(compute_eff, dtype=float))
    t_m = np.asarray(bytes_, dtype=float) / (bandwidth_bytes_s * mem_eff)
    t_c, t_m = np.broadcast_arrays(t_c, t_m)
    compute_bound = t_c >= t_m
    busy = np.maximum(t_c, t_m)
    return OpTime(
        compute_s=np.where(compute_bound, t_c, 0.0),
        memory_s=np.where(compute_bound, 0.0, t_m),
        launch_s=n_kernels * fixed_s + np.maximum(n_kernels * (launch_s - fixed_s) - busy, 0.0),
    )


def gemm(
    gpu: GPU,
    dtype: str,
    m_tokens: np.ndarray | float,
    k_in: float,
    n_out: float,
    weight_bytes_per_elem: float,
    act_bytes_per_elem: float,
    launch_s: float | np.ndarray,
) -> OpTime:
    """Y[m×n] = X[m×k] · W[k×n]: FLOPs 2mkn; bytes = weights kn + activations m(k+n); compute
    efficiency from the GPU's curve in M (docs/model.md §2.2), weight streaming at the GPU's
    weight-read efficiency."""
    m = np.asarray(m_tokens, dtype=float)
    flops = 2.0 * m * k_in * n_out
    bytes_ = k_in * n_out * weight_bytes_per_elem + m * (k_in + n_out) * act_bytes_per_elem
    return roofline(
        flops,
        bytes_,
        gpu.peak_flops(dtype),
        gpu.gemm_efficiency(m),
        gpu.memory_bandwidth_bytes_s,
        gpu.memory_efficiency["weights"],
        gpu.kernel_fixed_s,
        launch_s,
    )

"""Communication times: TP all-reduce and PP point-to-point inside a node (docs/model.md §2.5)
and across nodes (§2.7)."""

from __future__ import annotations

import numpy as np

from planner.engine import EngineProfile
from planner.hardware import IntraNodeLink, Network
from planner.units import GBIT_BYTES


def allreduce_time_s(
    message_bytes: np.ndarray | float,
    group: int,
    link: IntraNodeLink,
    engine: EngineProfile | None = None,
) -> np.ndarray:
    """All-reduce of M bytes over t GPUs: α + 2(t−1)/t · M / busbw (0 when t = 1).

    One latency term per collective (NCCL's low-latency protocols pipeline the ring's steps, so
    a small message costs α, not 2(t−1)·α). busbw is the nccl-tests bus bandwidth for the group
    size, so this is the time nccl-tests would report. When the engine uses a one-shot custom
    all-reduce and the link supports it (vLLM: NVLink-connected groups, or a P2P pair; messages
    below its size limit), α is that kernel's latency instead of NCCL's."""
    m = np.asarray(message_bytes, dtype=float)
    if group <= 1:
        return np.zeros_like(m)
    bw = link.bus_bandwidth_bytes_s(group)
    alpha = np.full_like(m, link.allreduce_latency_s(group))
    if (
        engine is not None
        and engine.custom_allreduce
        and group <= 8
        and link.supports_custom_allreduce(group)
        and link.custom_allreduce_latency_us is not None
    ):
        small = m < engine.custom_allreduce_max_bytes
        alpha = np.where(small, link.custom_allreduce_latency_us * 1e-6, alpha)
    return alpha + 2.0 * (group - 1) / group * m / bw


def p2p_time_s(message_bytes: np.ndarray | float, link: IntraNodeLink) -> np.ndarray:
    """Point-to-point send of M bytes over the intra-node link: M / p2p bandwidth + latency."""
    m = np.asarray(message_bytes, dtype=float)
    return m / link.p2p_bandwidth_bytes_s + link.latency_s


def network_p2p_time_s(message_bytes: np.ndarray | float, network: Network) -> np.ndarray:
    """Point-to-point send of M bytes between two nodes (docs/model.md §2.7): M / (one NIC's
    line rate × efficiency) + the network latency. A pipeline stage's activations go from one
    GPU to one GPU, so NCCL drives one NIC, not the node's `nics_per_node`."""
    m = np.asarray(message_bytes, dtype=float)
    nic_bytes_s = network.bandwidth_gbit * GBIT_BYTES * network.efficiency
    return m / nic_bytes_s + network.latency_s

"""Communication times: TP all-reduce (ring) and PP point-to-point (docs/model.md §2.5)."""

from __future__ import annotations

import numpy as np

from planner.hardware import IntraNodeLink


def allreduce_time_s(
    message_bytes: np.ndarray | float, group: int, link: IntraNodeLink
) -> np.ndarray:
    """Ring all-reduce of M bytes over t GPUs: 2(t−1)/t · M / busbw + latency (0 when t = 1).

    busbw is the NCCL bus bandwidth for the group size (nccl-tests convention), so this is the
    time nccl-tests would report for the same message.
    """
    m = np.asarray(message_bytes, dtype=float)
    if group <= 1:
        return np.zeros_like(m)
    bw = link.bus_bandwidth_bytes_s(group)
    return 2.0 * (group - 1) / group * m / bw + 2.0 * (group - 1) * link.latency_s


def p2p_time_s(message_bytes: np.ndarray | float, link: IntraNodeLink) -> np.ndarray:
    """Point-to-point send of M bytes over the intra-node link: M / p2p bandwidth + latency."""
    m = np.asarray(message_bytes, dtype=float)
    return m / link.p2p_bandwidth_bytes_s + link.latency_s

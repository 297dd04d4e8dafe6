"""FuDG: separate prefill and decode instances that ship the KV cache (docs/model.md §7.4).

Prefill pool: n_p instances, each an M/G/1 (G/G/1) prefill queue at λ/n_p (DistServe's model,
PP as a pipelined server of stage time latency/pp; waiting prompts batched as in NoDG). After
prefill the request's KV, input·kv_bytes_per_token (its computed tokens only when it reuses a
cached shared prefix, which decode instances cache too: docs/model.md §7.1), crosses a link
modelled as a queue whose service time is KV bytes / effective bandwidth:
  distserve — P and D instances share a node; KV goes over the intra-node path (PCIe/NVLink),
    whose bandwidth is shared with the TP all-reduces of the instances on it.
  mooncake — KV goes over the NICs; the busiest node NIC direction sets the queue.
TTFT = W_prefill + p_i + W_link + KV_i/bw + latency + t_d/2 (joining the next decode step).
Decode pool: n_d instances at λ/n_d, mean decode batch B̄ from Little's law (no interference);
the batch and its contexts fluctuate as a GI/G/∞ population and a request's TPOT is the step
time averaged over its own steps (`StepFluctuation`). The P:D ratio is integral, so one pool
usually has slack: load imbalance.
"""

from __future__ import annotations

import math

import numpy as np

from planner.deployment import Deployment, interleaved_groups, kv_node_shares
from planner.queueing import ExpTailWait, mg1_wait, routed_ca2, solve_decode_batch
from planner.scenario import InstanceModel, Scenario
from planner.strategies.base import Latencies, Unstable
from planner.strategies.decode_batch import step_fluctuation


def intra_node_free_share(pim: InstanceModel, rho_p: float, prefill_per_node: float) -> float:
    """Share of the intra-node path left for KV: it also carries the TP all-reduces of the
    node's prefill instances, busy ρ_p of the time with all-reduces taking their share of each
    prefill (floored at 5%)."""
    pre = pim.mean_prefill
    comm_share = float(pre.comm_s / pre.total_s) * rho_p * prefill_per_node
    return max(1.0 - comm_share, 0.05)


def pool_instances(dep: Deployment, scen: Scenario) -> tuple[InstanceModel, InstanceModel]:
    """The prefill and decode instance models of a FuDG deployment. DistServe's stage-aligned
    groups of g > 1 nodes split every instance's stages over the g nodes, so g − 1 of its
    stage boundaries cross nodes whatever its size (docs/model.md §7.4)."""
    c = scen.cluster
    crossing: int | None = None
    if dep.strategy == "distserve":
        inter = interleaved_groups(dep, c.gpus_per_node, c.nodes)
        if inter is not None and inter.nodes > 1:
            crossing = inter.nodes - 1
    return (
        scen.instance(dep.tp, dep.pp, crossing),
        scen.instance(dep.dtp, dep.dpp, crossing),
    )


def _fudg(dep: Deployment, scen: Scenario, rate: float, *, network: bool) -> Latencies | Unstable:
    pim, dim = pool_instances(dep, scen)
    ca2 = scen.workload.arrivals.ca2
    c = scen.cluster
    rate_p = rate / dep.instances
    s_mean, s_m2, extra_s = pim.batched_service(rate_p)
    rho_p = rate_p * s_mean
    if rho_p >= 1.0:
        return Unstable(
            "prefill capacity", f"prefill utilisation {rho_p:.2f} ≥ 1", {"prefill": rho_p}
        )

    # decode instances cache the shared prefix too: only the computed tokens' KV travels
    kv_bytes = scen.model.kv_bytes_per_sequence(pim.prefill_tokens)
    kv_mean, kv_m2 = float(kv_bytes.mean()), float((kv_bytes**2).mean())
    if network:
        layout = kv_node_shares(dep, c.gpus_per_node, c.nodes)  # instances spanning nodes
        bw = c.network.node_bandwidth_bytes_s
        latency = c.network.latency_s
        # a KV lands on a decode instance chosen uniformly; those in the sender's node stay local
        out_rates = [p * rate_p * (1.0 - d / dep.decode_instances) for p, d in layout]
        in_rates = [d * rate / dep.decode_instances * (1.0 - p / dep.instances) for p, d in layout]
        link_rate = max(max(out_rates), max(in_rates))
        link_name = f"{c.network.bandwidth_gbit:g} Gb/s NIC"
    else:
        inter = interleaved_groups(dep, c.gpus_per_node, c.nodes)
        if inter is None:
            return Unstable(
                "placement",
                "DistServe needs every node to hold both prefill and decode instances",
            )
        p_node = inter.prefill / inter.nodes  # a group's stages split over its nodes
        free_share = intra_node_free_share(pim, rho_p, p_node)
        bw = c.link.p2p_bandwidth_bytes_s * free_share
        latency = c.link.latency_s
        link_rate = p_node * rate_p
        link_name = f"intra-node {c.link.kind} ({free_share:.0%} free of TP traffic)"
    xfer = kv_bytes / bw
    rho_net = link_rate * kv_mean / bw
    if rho_net >= 1.0:
        return Unstable(
            "network",
            f"KV transfer over {link_name} at {rho_net:.2f} utilisation "
            f"({kv_mean / 1e9:.2f} GB per request)",
            {"prefill": rho_p, "network": rho_net},
        )
    net_wait = mg1_wait(link_rate, kv_mean / bw, kv_m2 / bw**2, ca2)
    # prefill instances hold each KV until it has left: the backlog must fit their KV cache
    held_tokens = rate_p * (net_wait.mean_s + float(xfer.mean())) * float(pim.prefill_tokens.mean())
    if held_tokens > pim.memory.kv_capacity_tokens:
        return Unstable(
            "KV memory",
            f"prefill instances must hold {held_tokens:,.0f} KV tokens awaiting transfer",
            {"prefill": rho_p, "network": rho_net},
        )

    rate_d = rate / dep.decode_instances
    batch = solve_decode_batch(rate_d, dim.mean_steps, dim.step_s)
    if batch is None or batch > dim.kv_batch_limit:
        b = dim.kv_batch_limit if batch is None else batch
        limit = "max_num_seqs" if dim.seq_limited else "KV memory"
        return Unstable(
            limit if batch is not None else "decode capacity",
            f"decode batch {b:.0f} per instance exceeds what {dim.batch_limit_reason} and step "
            "time allow",
            {"prefill": rho_p, "network": rho_net},
        )
    t_d = dim.step_at(batch)
    ca2_p = routed_ca2(ca2, dep.instances)  # round-robin over prefill instances
    wait: ExpTailWait = mg1_wait(rate_p, s_mean, s_m2, ca2_p).plus(net_wait)
    fixed = pim.prefill_s + extra_s + xfer + latency + t_d / 2.0
    n = dim.steps

    def ttft_cdf(t: float) -> np.ndarray:
        return wait.cdf(t - fixed)

    fluct = step_fluctuation(dim, batch, ca2)

    def tpot_cdf(t: float) -> np.ndarray:
        return np.where(n <= 0, 1.0, fluct.tpot_cdf(t))

    def tbt_cdf(bound_s: float, allowed: np.ndarray) -> np.ndarray:
        # long gaps are steps taken at a batch whose step exceeds the bound; the batch moves
        # slowly, so a request is taken to meet the bound when the batch it decodes at does
        return np.where(allowed >= n, 1.0, fluct.step_at_most_cdf(bound_s))

    net_bytes = rate * kv_mean if network else 0.0
    bottleneck = "network" if rho_net > rho_p else "prefill queue"
    return Latencies(
        ttft_cdf=ttft_cdf,
        tpot_cdf=tpot_cdf,
        decode_batch=batch,
        utilisation={
            "prefill": rho_p,
            "network": rho_net,
            "decode": batch / dim.kv_batch_limit,
            "kv": batch / dim.kv_batch_limit,
        },
        network_bytes_s=net_bytes,
        ttft_driver=(
            f"{bottleneck}: prefill utilisation {rho_p:.2f}, KV link {link_name} utilisation "
            f"{rho_net:.2f}, transfer {float(xfer.mean()) * 1e3:.0f} ms mean"
        ),
        tpot_driver=(
            f"decode step {t_d * 1e3:.0f} ms at mean batch {batch:.0f} (fluctuating by "
            f"{np.sqrt(fluct.point_var_s2) * 1e3:.1f} ms; batch variance {fluct.peakedness:.2f}× "
            "its mean)"
        ),
        tbt_cdf=tbt_cdf,
    )


def distserve(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    """FuDG with P and D instances in the same node (KV over PCIe/NVLink)."""
    return _fudg(dep, scen, rate, network=False)


def mooncake(dep: Deployment, scen: Scenario, rate: float) -> Latencies | Unstable:
    """FuDG with KV over the inter-node network (NIC)."""
    return _fudg(dep, scen, rate, network=True)


def nic_request_rate_limit(kv_bytes_per_request: float, nic_bytes_s: float) -> float:
    """Requests/s one NIC direction can carry: bandwidth / KV bytes per request."""
    return nic_bytes_s / kv_bytes_per_request if kv_bytes_per_request > 0 else math.inf

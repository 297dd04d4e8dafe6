"""A deployment: how a strategy lays the cluster's GPUs out in instances (docs/model.md §7.1).

Plain values and placement arithmetic shared by the analytical strategy models, the search, the
launch files and the simulator; nothing here predicts performance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

StrategyName = Literal["vllm", "sarathi", "distserve", "mooncake", "ecoserve"]
STRATEGIES: tuple[StrategyName, ...] = ("vllm", "sarathi", "distserve", "mooncake", "ecoserve")
FAMILY: dict[str, str] = {
    "vllm": "NoDG",
    "sarathi": "NoDG",
    "distserve": "FuDG",
    "mooncake": "FuDG",
    "ecoserve": "PaDG",
}
# What each strategy name means, for every place a user picks or reads one (docs/model.md §7.1).
# `vllm` is vLLM V0's prefill-priority scheduler; vLLM V1's default scheduler is chunked prefill,
# which the `sarathi` model covers.
MEANING: dict[str, str] = {
    "vllm": "NoDG, separate batching with prefill priority: vLLM V0's scheduler",
    "sarathi": "NoDG, chunked prefill under a token budget: vLLM V1's default scheduler",
    "distserve": "FuDG, prefill and decode instances in each node, KV over PCIe/NVLink",
    "mooncake": "FuDG, prefill and decode pools, KV over the inter-node network",
    "ecoserve": "PaDG, EcoServe's temporal disaggregation with rolling activation",
}


def strategy_help() -> str:
    """One line naming every strategy with its meaning (schema descriptions, CLI help)."""
    return "; ".join(f"{s}: {MEANING[s]}" for s in STRATEGIES)


def strategy_title(strategy: str) -> str:
    """`vllm (NoDG, vLLM V0 scheduler)`-style label for tables and reports."""
    short = {"vllm": "vLLM V0 scheduler", "sarathi": "vLLM V1 default"}.get(strategy)
    return f"{strategy} ({FAMILY[strategy]}" + (f", {short})" if short else ")")


@dataclass(frozen=True)
class Deployment:
    """How the cluster's GPUs serve the model under one strategy.

    NoDG/PaDG: `instances` instances of tp×pp GPUs. FuDG: `instances` prefill instances of tp×pp
    and `decode_instances` decode instances of decode_tp×decode_pp. Sarathi: token budget
    `chunk_tokens`. EcoServe: macro instances of `macro_size` instances, each admitting prefills
    for a window of at most `window_s` seconds of prefill work (default: the TTFT SLO).

    `replicas` identical units, each a complete deployment of the other fields on nodes of its
    own, share the requests round-robin (docs/model.md §8.5): GPUs = replicas × unit GPUs.
    """

    strategy: StrategyName
    tp: int = 1
    pp: int = 1
    instances: int = 1
    decode_instances: int = 0
    decode_tp: int | None = None
    decode_pp: int | None = None
    chunk_tokens: int = 512
    macro_size: int = 1
    window_s: float | None = None
    replicas: int = 1

    @property
    def unit(self) -> Deployment:
        """One replication unit: this deployment with replicas = 1."""
        return self if self.replicas == 1 else replace(self, replicas=1)

    @property
    def family(self) -> str:
        return FAMILY[self.strategy]

    @property
    def dtp(self) -> int:
        return self.decode_tp or self.tp

    @property
    def dpp(self) -> int:
        return self.decode_pp or self.pp

    @property
    def unit_gpus(self) -> int:
        """GPUs of one unit."""
        g = self.instances * self.tp * self.pp
        if self.family == "FuDG":
            g += self.decode_instances * self.dtp * self.dpp
        return g

    @property
    def gpus(self) -> int:
        return self.replicas * self.unit_gpus

    def label(self) -> str:
        if self.replicas > 1:
            return f"{self.replicas} × [{self.unit.label()}]"
        par = f"TP{self.tp}" + (f"·PP{self.pp}" if self.pp > 1 else "")
        if self.family == "FuDG":
            dpar = f"TP{self.dtp}" + (f"·PP{self.dpp}" if self.dpp > 1 else "")
            return f"{self.instances}P({par}) : {self.decode_instances}D({dpar})"
        if self.strategy == "sarathi":
            return f"{self.instances}× {par}, chunk {self.chunk_tokens}"
        if self.strategy == "ecoserve":
            macros = self.instances // max(self.macro_size, 1)
            win = f", window {self.window_s:g} s" if self.window_s is not None else ""
            return f"{macros} macro × {self.macro_size} inst ({par}){win}"
        return f"{self.instances}× {par}"


def instance_nodes(tp: int, pp: int, gpus_per_node: int) -> int:
    """Nodes one tp×pp instance spans: 1 when it fits a node (it may share the node), else
    ⌈tp·pp / G⌉ whole nodes of G GPUs (docs/model.md §2.7)."""
    return max(1, math.ceil(tp * pp / gpus_per_node))


def span_problem(tp: int, pp: int, gpus_per_node: int) -> str | None:
    """Why a tp×pp instance cannot be laid out on nodes of G GPUs, or None. An instance larger
    than a node puts whole pipeline stages on each node: TP stays inside a node (tp ≤ G) and G
    is a multiple of tp, so that no stage straddles two nodes (docs/model.md §2.7)."""
    if tp * pp <= gpus_per_node:
        return None
    if tp > gpus_per_node:
        return f"tp={tp} spans nodes (a node has {gpus_per_node} GPUs)"
    if gpus_per_node % tp:
        return (
            f"tp={tp}×pp={pp} spans nodes of {gpus_per_node} GPUs, which do not hold whole "
            f"pipeline stages of {tp} GPUs"
        )
    return None


def cross_node_boundaries(tp: int, pp: int, gpus_per_node: int) -> int:
    """Pipeline stage boundaries of a tp×pp instance that cross nodes (docs/model.md §2.7): the
    stages, tp GPUs each, fill the instance's nodes of G GPUs in order, so the boundary after
    stage i (i = 1..pp−1) sits at GPU i·tp and crosses a node edge when G divides i·tp; with
    G a multiple of tp that is ⌊(pp − 1)·tp / G⌋ boundaries. 0 for an instance inside a node."""
    if tp * pp <= gpus_per_node:
        return 0
    return (pp - 1) * tp // gpus_per_node


@dataclass(frozen=True)
class _Run:
    """`count` consecutive nodes on each of which `prefill` and `decode` instances start, those
    instances spanning `span` nodes (1: inside the node)."""

    count: int
    prefill: int
    decode: int
    span: int


@lru_cache(maxsize=4096)
def _pack(dep: Deployment, gpus_per_node: int) -> tuple[_Run, ...]:
    """Every instance of one unit on nodes, as runs of alike nodes: prefill instances first,
    then decode instances, node by node; instances inside a node fill its GPUs in order (decode
    instances take what the prefill instances leave), an instance larger than a node takes
    `instance_nodes` empty nodes of its own."""
    g = gpus_per_node
    sp, sd = dep.tp * dep.pp, dep.dtp * dep.dpp
    n_p, left = dep.instances, dep.decode_instances if dep.family == "FuDG" else 0
    runs: list[_Run] = []

    def put(count: int, p: int, d: int, span: int = 1) -> None:
        if count > 0:
            runs.append(_Run(count, p, d, span))

    def fits(free: int) -> int:  # decode instances that fit `free` GPUs of a node
        return free // sd if sd <= g else 0

    if sp > g:
        put(n_p, 1, 0, instance_nodes(sp, 1, g))
    elif n_p:
        per = g // sp
        full, rem = divmod(n_p, per)
        k = fits(g - per * sp)
        shared = min(full, left // k) if k else 0  # full nodes that also take k decode
        put(shared, per, k)
        left -= shared * k
        if shared < full and k and left:
            put(1, per, left)
            shared, left = shared + 1, 0
        put(full - shared, per, 0)
        if rem:
            k = min(left, fits(g - rem * sp))
            put(1, rem, k)
            left -= k
    if sd > g:
        put(left, 0, 1, instance_nodes(sd, 1, g))
    elif left:
        per = g // sd
        full, rem = divmod(left, per)
        put(full, 0, per)
        put(1 if rem else 0, 0, rem)
    return tuple(runs)


def placement(dep: Deployment, gpus_per_node: int, nodes: int) -> list[tuple[int, int]]:
    """(prefill, decode) instances starting on each node: prefill instances packed first, then
    decode instances, filling each node's GPUs in order; instances inside a node never straddle
    nodes, and one larger than a node takes whole nodes of its own (counted on its first node,
    (0, 0) on the others; docs/model.md §7.4)."""
    layout: list[tuple[int, int]] = []
    for r in _pack(dep.unit, gpus_per_node):
        layout += ([(r.prefill, r.decode)] + [(0, 0)] * (r.span - 1)) * r.count
    return (layout + [(0, 0)] * (nodes - len(layout)))[:nodes]


def nodes_needed(dep: Deployment, gpus_per_node: int) -> int:
    """Nodes one unit of `dep` occupies under `placement` (DistServe: its interleaved groups)."""
    if dep.strategy == "distserve":
        g = interleaved_groups(dep, gpus_per_node, dep.unit_gpus)
        if g is not None:
            return g.groups * g.nodes
    return sum(r.count * r.span for r in _pack(dep.unit, gpus_per_node))


@dataclass(frozen=True)
class Interleaved:
    """DistServe's placement: `groups` groups of `nodes` nodes, each holding `prefill` prefill
    and `decode` decode instances whose pipeline stages are split alike over the group's nodes."""

    groups: int
    nodes: int
    prefill: int
    decode: int


@lru_cache(maxsize=4096)
@lru_cache(maxsize=8192)
def interleaved_groups(dep: Deployment, gpus_per_node: int, nodes: int) -> Interleaved | None:
    """DistServe placement (docs/model.md §7.4): the pools split evenly over groups of g nodes,
    g dividing both pp and decode pp, node j of a group holding stages j·pp/g … of each of the
    group's prefill and decode instances, so that every stage's KV moves inside a node
    (DistServe's low node-affinity placement, OSDI '24 §4.2). g = 1 when both instance shapes
    fit a node: every node then hosts the same P and D instances. The fewest nodes win; None
    when no split fits."""
    sp, sd = dep.tp * dep.pp, dep.dtp * dep.dpp
    g_max = math.gcd(dep.pp, dep.dpp)
    for g in (g for g in range(1, g_max + 1) if g_max % g == 0):
        if max(dep.tp, dep.dtp) > gpus_per_node:
            break
        # the group counts that split both pools evenly, fewest first
        common = math.gcd(dep.instances, dep.decode_instances)
        for groups in (n for n in range(1, min(nodes // g, common) + 1) if common % n == 0):
            p, d = dep.instances // groups, dep.decode_instances // groups
            if p >= 1 and d >= 1 and (p * sp + d * sd) <= g * gpus_per_node:
                return Interleaved(groups, g, p, d)
    return None


def interleaved_placement(
    dep: Deployment, gpus_per_node: int, nodes: int
) -> list[tuple[int, int]] | None:
    """DistServe placement as (prefill, decode) instances per node (`interleaved_groups`): each
    group's instances counted on its first node, (0, 0) on its other nodes. None when the pools
    do not split evenly over the nodes used or one group cannot hold its share."""
    g = interleaved_groups(dep, gpus_per_node, nodes)
    if g is None:
        return None
    return ([(g.prefill, g.decode)] + [(0, 0)] * (g.nodes - 1)) * g.groups


@lru_cache(maxsize=4096)
def kv_node_shares(
    dep: Deployment, gpus_per_node: int, nodes: int
) -> tuple[tuple[float, float], ...]:
    """Share of a prefill and of a decode instance's KV on each node: an instance inside a node
    counts 1 on it, one spanning k nodes 1/k on each (its layers, hence its KV, split evenly;
    docs/model.md §7.4). DistServe: 1/g of each of a group's instances on each of its g nodes."""
    if dep.strategy == "distserve":
        g = interleaved_groups(dep, gpus_per_node, nodes)
        if g is None:
            return ()
        return ((g.prefill / g.nodes, g.decode / g.nodes),) * (g.nodes * g.groups)
    out: list[tuple[float, float]] = []
    for r in _pack(dep.unit, gpus_per_node):
        out += [(r.prefill / r.span, r.decode / r.span)] * (r.span * r.count)
    return tuple((out + [(0.0, 0.0)] * (nodes - len(out)))[:nodes])

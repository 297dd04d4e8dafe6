"""A deployment: how a strategy lays the cluster's GPUs out in instances (docs/model.md §7.1).

Plain values and placement arithmetic shared by the analytical strategy models, the search, the
launch files and the simulator; nothing here predicts performance.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    def gpus(self) -> int:
        g = self.instances * self.tp * self.pp
        if self.family == "FuDG":
            g += self.decode_instances * self.dtp * self.dpp
        return g

    def label(self) -> str:
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


def placement(dep: Deployment, gpus_per_node: int, nodes: int) -> list[tuple[int, int]]:
    """(prefill, decode) instances per node: prefill instances packed first, then decode
    instances, filling each node's GPUs in order (instances never straddle nodes)."""
    p_size, d_size = dep.tp * dep.pp, dep.dtp * dep.dpp
    layout: list[tuple[int, int]] = []
    p_left, d_left = dep.instances, dep.decode_instances
    for _ in range(nodes):
        free, p, d = gpus_per_node, 0, 0
        while p_left and free >= p_size:
            p, p_left, free = p + 1, p_left - 1, free - p_size
        while d_left and free >= d_size:
            d, d_left, free = d + 1, d_left - 1, free - d_size
        layout.append((p, d))
    return layout


def interleaved_placement(
    dep: Deployment, gpus_per_node: int, nodes: int
) -> list[tuple[int, int]] | None:
    """DistServe placement: every node hosts the same number of P and D instances, so each
    prefill instance has decode instances in its own node. None when the pools do not split
    evenly over the nodes used or one node cannot hold its share."""
    p_size, d_size = dep.tp * dep.pp, dep.dtp * dep.dpp
    for used in range(1, nodes + 1):
        if dep.instances % used or dep.decode_instances % used:
            continue
        p, d = dep.instances // used, dep.decode_instances // used
        if p * p_size + d * d_size <= gpus_per_node and p >= 1 and d >= 1:
            return [(p, d)] * used
    return None

"""Launch files: what starts a planned deployment on vLLM (`ecoplan plan --launch DIR`,
`ecoplan launch PLAN.json --out DIR`).

`launch_input` takes a plan result and `launch_input_from_doc` the JSON document that
`ecoplan plan --format json` prints; both read the same dictionaries (json_doc's `scenario`
and `deployment`), so the files come out identical. `launch_files` turns the input into
{relative path: text}: a script per node with exact `vllm serve` commands, the
disaggregated-prefill proxies (FuDG), a `vllm bench serve` script at the planned rate and
lengths, `instances.json` (instances, GPUs, ports, roles; EcoServe's macro instances,
activation order and window) and a README. Nothing here writes files.

What the files say about vLLM was read from its source: the PyPI wheels of v0.9.2 and v0.34.0
(`vllm/engine/arg_utils.py`, `vllm/config.py` / `vllm/config/scheduler.py`, the KV connectors
under `vllm/distributed/kv_transfer/`, `vllm/envs.py`, `vllm/benchmarks/`) and, for the proxies,
which are not in the wheel, the repository files named in `TOY_PROXY` and `MOONCAKE_PROXY`.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from planner.catalog import read_json_file
from planner.deployment import (
    STRATEGIES,
    Deployment,
    instance_nodes,
    interleaved_groups,
    nodes_needed,
    placement,
)
from planner.errors import PlannerError
from planner.search import PlanResult, Ranked
from planner.yamlio import clip

PLACEHOLDER = "<hf-model-id>"
SERVE_PORT = 8100  # the j-th instance on a node listens on SERVE_PORT + j
PROXY_PORT = 8000  # the g-th proxy (on node0) listens on PROXY_PORT + g
NIXL_SIDE_PORT = 5600  # VLLM_NIXL_SIDE_CHANNEL_PORT's default (vllm/envs.py)
MOONCAKE_BOOTSTRAP_PORT = 8998  # VLLM_MOONCAKE_BOOTSTRAP_PORT's default (vllm/envs.py)
BENCH_SECONDS = 600.0  # arrivals each benchmark client sends, in seconds at its rate
MIN_PROMPTS = 100
CONNECTOR = {"distserve": "NixlConnector", "mooncake": "MooncakeConnector"}
# the proxies ship in the vLLM repository, not in the wheel; arguments as read at these commits
TOY_PROXY = "tests/v1/kv_connector/nixl_integration/toy_proxy_server.py"
TOY_PROXY_COMMIT = "030ea52effcb05071543c8c42b8f0145e94cee43"
MOONCAKE_PROXY = (
    "examples/online_serving/disaggregated_serving/mooncake_connector/mooncake_connector_proxy.py"
)
MOONCAKE_PROXY_COMMIT = "8fc582da949c433175f06b0a474cd57e7c88d077"
SCHEMA_VERSION = 1
RAY_PORT = 6379  # `ray start --head`'s default GCS port (Ray's documentation, "ray start")


@dataclass(frozen=True)
class LaunchInput:
    """Everything the launch files depend on: one ranked deployment and its scenario."""

    deployment: Deployment
    goodput_rps: float
    model: str
    hf_id: str | None
    dtype: str
    kv_dtype: str
    gpu: str
    nodes: int
    gpus_per_node: int
    engine: str
    max_num_seqs: int
    max_num_batched_tokens_unchunked: int
    max_model_len: int
    gpu_memory_utilization: float
    enforce_eager: bool
    disable_custom_all_reduce: bool
    # the plan's prefix caching, when its workload declares a shared prefix (None: no prefix,
    # the engine's default stands)
    enable_prefix_caching: bool | None
    workload: str
    mean_input_tokens: float
    mean_output_tokens: float
    arrival_process: str
    arrival_cv: float
    ttft_s: float
    tpot_s: float
    attainment_pct: float
    joint: bool

    @property
    def model_id(self) -> str:
        return self.hf_id or PLACEHOLDER


def _positive_int(value: Any, key: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{key} must be positive, got {value!r}")
    return int(value)


def _positive(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if not (0.0 < float(value) < math.inf):
        raise ValueError(f"{key} must be a positive finite number, got {value!r}")
    return float(value)


def _deployment(d: dict[str, Any]) -> Deployment:
    """A Deployment from json_doc.deployment's dictionary."""
    strategy = d["strategy"]
    if strategy not in STRATEGIES:
        raise ValueError(f"deployment.strategy: unknown strategy {strategy!r}")
    fudg = strategy in CONNECTOR
    window = d["window_s"]
    return Deployment(
        strategy=strategy,
        tp=_positive_int(d["tp"], "deployment.tp"),
        pp=_positive_int(d["pp"], "deployment.pp"),
        instances=_positive_int(d["instances"], "deployment.instances"),
        decode_instances=_positive_int(d["decode_instances"], "deployment.decode_instances")
        if fudg
        else 0,
        decode_tp=_positive_int(d["decode_tp"], "deployment.decode_tp") if fudg else None,
        decode_pp=_positive_int(d["decode_pp"], "deployment.decode_pp") if fudg else None,
        chunk_tokens=_positive_int(d["chunk_tokens"], "deployment.chunk_tokens")
        if strategy == "sarathi"
        else 512,
        macro_size=_positive_int(d["macro_size"], "deployment.macro_size")
        if strategy == "ecoserve"
        else 1,
        window_s=_positive(window, "deployment.window_s")
        if strategy == "ecoserve" and window is not None
        else None,
        replicas=_positive_int(d.get("replicas", 1), "deployment.replicas"),
    )


def _check_replicas_fit(dep: Deployment, nodes: int, gpus_per_node: int) -> None:
    """A ValueError naming deployment.replicas when its units, each on nodes of its own
    (`nodes_needed`), need more nodes than the cluster has: the launch files describe one unit
    (`unit_input`), so an edited plan's replica count is checked nowhere else. (A single unit
    too large for the cluster is `layout`'s error.)"""
    if dep.replicas == 1:
        return
    unit = nodes_needed(dep, gpus_per_node)
    if dep.replicas * unit > nodes:
        raise ValueError(
            f"deployment.replicas: {dep.replicas} units of {unit} node{'s' if unit > 1 else ''} "
            f"need {dep.replicas * unit} nodes, the cluster has {nodes} (cluster.nodes)"
        )


def _from_dicts(scen: dict[str, Any], dep: dict[str, Any], rate: Any) -> LaunchInput:
    """A LaunchInput from json_doc's `scenario` and `deployment` dictionaries and a goodput."""
    c, m, e, w, s = (scen[k] for k in ("cluster", "model", "engine", "workload", "slo"))
    hf_id = m["hf_id"]
    if hf_id is not None and not isinstance(hf_id, str):
        raise ValueError(f"model.hf_id must be a string or null, got {hf_id!r}")
    arrivals = w["arrivals"]
    deployment = _deployment(dep)
    nodes = _positive_int(c["nodes"], "cluster.nodes")
    gpus_per_node = _positive_int(c["gpus_per_node"], "cluster.gpus_per_node")
    _check_replicas_fit(deployment, nodes, gpus_per_node)
    return LaunchInput(
        deployment=deployment,
        goodput_rps=_positive(rate, "goodput_rps"),
        model=str(m["name"]),
        hf_id=hf_id or None,
        dtype=str(m["dtype"]),
        kv_dtype=str(m["kv_dtype"]),
        gpu=str(c["gpu"]),
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        engine=str(e["name"]),
        max_num_seqs=_positive_int(e["max_num_seqs"], "engine.max_num_seqs"),
        max_num_batched_tokens_unchunked=_positive_int(
            e["max_num_batched_tokens_unchunked"], "engine.max_num_batched_tokens_unchunked"
        ),
        max_model_len=_positive_int(e["max_model_len"], "engine.max_model_len"),
        gpu_memory_utilization=_positive(e["gpu_memory_utilization"], "gpu_memory_utilization"),
        enforce_eager=bool(e["enforce_eager"]),
        disable_custom_all_reduce=bool(e["disable_custom_all_reduce"]),
        enable_prefix_caching=bool(e.get("enable_prefix_caching", True))
        if w.get("prefix") is not None
        else None,
        workload=str(w["name"]),
        mean_input_tokens=_positive(w["mean_input_tokens"], "workload.mean_input_tokens"),
        mean_output_tokens=_positive(w["mean_output_tokens"], "workload.mean_output_tokens"),
        arrival_process=str(arrivals["process"]),
        arrival_cv=_positive(arrivals["cv"], "workload.arrivals.cv"),
        ttft_s=_positive(s["ttft_s"], "slo.ttft_s"),
        tpot_s=_positive(s["tpot_s"], "slo.tpot_s"),
        attainment_pct=_positive(s["attainment_pct"], "slo.attainment_pct"),
        joint=bool(s["joint"]),
    )


def check_strategy(strategy: str | None, option: str = "--strategy") -> None:
    """A PlannerError naming `option` unless `strategy` is None or a strategy's name."""
    if strategy is not None and strategy not in STRATEGIES:
        raise PlannerError(
            f"{option}: unknown strategy '{clip(strategy, 40)}'; known: {', '.join(STRATEGIES)}"
        )


def launch_input(
    res: PlanResult, strategy: str | None = None, option: str = "--strategy"
) -> LaunchInput:
    """The winner of a plan, or with `strategy` that strategy's best deployment (`option`
    names the CLI option in errors)."""
    from planner.report import json_doc

    ranked: Ranked | None
    if strategy is None:
        ranked = res.winner
        if ranked is None:
            raise PlannerError("launch: no deployment meets the SLO, so there is nothing to launch")
    else:
        check_strategy(strategy, option)
        best = res.per_strategy.get(strategy) or []
        if not best or not best[0].goodput.feasible:
            why = res.infeasible.get(strategy, "it was not searched (search.strategies)")
            raise PlannerError(f"{option}: {strategy} has no deployment to launch: {why}")
        ranked = best[0]
    return _from_dicts(
        json_doc.scenario(res.scenario),
        json_doc.deployment(ranked.deployment),
        ranked.goodput.rate,
    )


def launch_input_from_doc(
    doc: Any, strategy: str | None = None, where: str = "plan"
) -> LaunchInput:
    """The same from `ecoplan plan --format json`'s document (`where` names it in errors)."""
    if not isinstance(doc, dict) or doc.get("command") != "plan":
        raise PlannerError(f"{where}: not the output of `ecoplan plan --format json`")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise PlannerError(
            f"{where}: schema_version {doc.get('schema_version')!r}, this ecoplan reads "
            f"{SCHEMA_VERSION}"
        )
    try:
        if strategy is None:
            ranked = doc["winner"]
            if ranked is None:
                raise PlannerError(
                    f"{where}: no deployment meets the SLO, so there is nothing to launch"
                )
        else:
            check_strategy(strategy)
            best = doc["per_strategy"].get(strategy) or []
            if not best:
                why = (doc.get("infeasible") or {}).get(strategy, "it was not searched")
                raise PlannerError(f"--strategy: {strategy} has no deployment to launch: {why}")
            ranked = best[0]
        return _from_dicts(doc["scenario"], ranked["deployment"], ranked["goodput_rps"])
    except KeyError as exc:
        raise PlannerError(
            f"{where}: lacks {exc.args[0]!r}; write the plan again with this ecoplan "
            "(`ecoplan plan --format json`)"
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise PlannerError(f"{where}: {exc}") from None


def read_plan_json(path: Path) -> Any:
    """The JSON document in `path`, e.g. a plan saved with `ecoplan plan --format json > FILE`
    (errors name the file, and the line and column of bad JSON)."""
    return read_json_file(path, "a JSON plan")


# ---- layout ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    """One vLLM instance: where it runs and what it does."""

    name: str
    role: str  # "serve" (NoDG, PaDG), "prefill" or "decode" (FuDG)
    node: int
    first_gpu: int
    tp: int
    pp: int
    slot: int  # position among its node's instances: sets the port
    macro: int | None = None  # EcoServe macro instance
    activation: int | None = None  # EcoServe: position in its macro instance's rotation
    span: int = 1  # nodes the instance occupies: > 1 spans whole nodes node … node + span − 1
    gpus_per_node: int = 0  # the node size, for an instance spanning nodes

    @property
    def gpus(self) -> tuple[int, ...]:
        """The GPUs it uses on its (first) node: all of them for an instance spanning nodes."""
        if self.span > 1:
            return tuple(range(self.gpus_per_node))
        return tuple(range(self.first_gpu, self.first_gpu + self.tp * self.pp))

    @property
    def nodes(self) -> tuple[int, ...]:
        return tuple(range(self.node, self.node + self.span))

    @property
    def host(self) -> str:
        return f"node{self.node}"

    @property
    def port(self) -> int:
        return SERVE_PORT + self.slot

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def unit_input(inp: LaunchInput) -> LaunchInput:
    """One unit of a replicated deployment on its own nodes at its share of the rate: the
    launch files describe it, and every unit runs the same files on its nodes."""
    dep = inp.deployment
    if dep.replicas == 1:
        return inp
    return replace(
        inp,
        deployment=dep.unit,
        goodput_rps=inp.goodput_rps / dep.replicas,
        nodes=nodes_needed(dep, inp.gpus_per_node),
    )


def layout(inp: LaunchInput) -> list[Instance]:
    """Instances on nodes, GPUs in order, never straddling a node unless larger than one (then
    on whole nodes of their own). NoDG/PaDG: filled node by node; EcoServe's macro instance m
    holds instances m·M … m·M + M − 1 and activates them in that order. FuDG: the strategy
    models' placements (`fudg.placement`, DistServe's `interleaved_placement`), prefill
    instances first on each node. A replicated deployment: one unit (`unit_input`)."""
    inp = unit_input(inp)
    dep, gpn, nodes = inp.deployment, inp.gpus_per_node, inp.nodes
    out: list[Instance] = []
    if dep.family == "FuDG":
        if dep.strategy == "distserve":
            groups = interleaved_groups(dep, gpn, nodes)
            if groups is None:
                raise PlannerError(
                    f"launch: {dep.label()} does not split into the same prefill and decode "
                    f"instances on each node of {gpn} GPUs, as DistServe's placement needs"
                )
            if groups.nodes > 1:
                raise PlannerError(
                    f"launch: {dep.label()} puts pipeline stages of prefill and decode instances "
                    "on shared nodes (DistServe's stage-aligned placement), which needs one Ray "
                    "cluster per instance on a share of each node's GPUs; this launcher does not "
                    "generate that (choose another strategy with --launch-strategy)"
                )
            per_node = [(groups.prefill, groups.decode)] * groups.groups
        else:
            per_node = placement(dep, gpn, nodes)
        if (
            sum(p for p, _ in per_node) != dep.instances
            or sum(d for _, d in per_node) != dep.decode_instances
        ):
            raise PlannerError(
                f"launch: {dep.label()} does not fit {nodes} nodes of {gpn} GPUs without an "
                "instance straddling two nodes"
            )
        counts = {"prefill": 0, "decode": 0}
        for node, (p, d) in enumerate(per_node):
            gpu = slot = 0
            for role, n, tp, pp in (
                ("prefill", p, dep.tp, dep.pp),
                ("decode", d, dep.dtp, dep.dpp),
            ):
                span = instance_nodes(tp, pp, gpn)
                for _ in range(n):
                    name = f"{role}{counts[role]}"
                    inst = Instance(
                        name, role, node, gpu, tp, pp, slot, span=span, gpus_per_node=gpn
                    )
                    out.append(inst)
                    counts[role] += 1
                    gpu, slot = gpu + tp * pp, slot + 1
        return out
    size = dep.tp * dep.pp
    span = instance_nodes(dep.tp, dep.pp, gpn)
    per = max(gpn // size, 1)
    if dep.instances > (per * nodes if span == 1 else nodes // span):
        raise PlannerError(
            f"launch: {dep.instances} instances of {size} GPUs do not fit {nodes} nodes of {gpn} "
            "GPUs without an instance straddling two nodes"
        )
    eco = dep.strategy == "ecoserve"
    for i in range(dep.instances):
        node, slot = divmod(i, per) if span == 1 else (i * span, 0)
        macro, pos = divmod(i, dep.macro_size) if eco else (None, None)
        out.append(
            Instance(
                f"inst{i}",
                "serve",
                node,
                slot * size if span == 1 else 0,
                dep.tp,
                dep.pp,
                slot,
                macro,
                pos,
                span=span,
                gpus_per_node=gpn,
            )
        )
    return out


# ---- commands -------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _quote(word: str) -> str:
    """A word quoted for the shell; `"$VAR/…"` words are kept, so that the variable expands."""
    if word.startswith('"$') and word.endswith('"'):
        return word
    return shlex.quote(word)


def _command(env: list[str], words: list[list[str]], tail: str = "") -> str:
    """A shell command: environment assignments, then groups of words (a flag and its values)
    one per line, each word quoted for the shell."""
    lines = [" ".join(_quote(w) for w in g) for g in words]
    head = " ".join([*env, lines[0]])
    body = " \\\n    ".join([head, *lines[1:]])
    return body + tail


def _limits(inp: LaunchInput, notes: list[str]) -> tuple[int, int, bool]:
    """(max_num_seqs, max_num_batched_tokens, chunked prefill) of an instance, as the plan
    models it: Sarathi's token budget is its chunk; every other strategy runs whole prompts
    (vLLM, EcoServe: chunked prefill off; FuDG: vLLM V1's default chunked prefill with a budget
    that holds the longest prompt whole). vLLM refuses a budget below max_model_len without
    chunked prefill, and one below max_num_seqs (SchedulerConfig checks, v0.9.2 and v0.34.0)."""
    dep = inp.deployment
    seqs = inp.max_num_seqs
    if dep.strategy == "sarathi":
        tokens, chunked = dep.chunk_tokens, True
    else:
        tokens, chunked = inp.max_num_batched_tokens_unchunked, dep.family == "FuDG"
        if not chunked and tokens < inp.max_model_len:
            notes.append(
                f"--max-num-batched-tokens raised from the plan's {tokens} to --max-model-len "
                f"({inp.max_model_len}): vLLM refuses a smaller budget without chunked prefill."
            )
            tokens = inp.max_model_len
    if seqs > tokens:
        notes.append(
            f"--max-num-seqs lowered from {seqs} to the token budget {tokens}: vLLM refuses a "
            "budget below max_num_seqs (and a batch cannot hold more sequences than tokens)."
        )
        seqs = tokens
    return seqs, tokens, chunked


def serve_command(inp: LaunchInput, inst: Instance, notes: list[str]) -> str:
    """The `vllm serve` command of one instance, with its environment."""
    dep = inp.deployment
    # an instance spanning nodes runs on the Ray cluster of its nodes, every GPU of each
    env = [] if inst.span > 1 else [f"CUDA_VISIBLE_DEVICES={','.join(str(g) for g in inst.gpus)}"]
    if inp.engine == "vllm-v0" and dep.family != "FuDG":
        env.append("VLLM_USE_V1=0")
    seqs, tokens, chunked = _limits(inp, notes)
    words = [
        ["vllm", "serve", inp.model_id],
        ["--tensor-parallel-size", str(inst.tp)],
        ["--pipeline-parallel-size", str(inst.pp)],
        ["--max-num-seqs", str(seqs)],
        ["--max-num-batched-tokens", str(tokens)],
        ["--enable-chunked-prefill" if chunked else "--no-enable-chunked-prefill"],
        ["--gpu-memory-utilization", f"{inp.gpu_memory_utilization:g}"],
        ["--max-model-len", str(inp.max_model_len)],
        ["--port", str(inst.port)],
    ]
    if inst.span > 1:
        words.append(["--distributed-executor-backend", "ray"])
    if inp.dtype == "fp8":
        words.append(["--quantization", "fp8"])
    elif inp.dtype not in ("bf16", "fp16"):
        notes.append(
            f"The plan counts {inp.dtype} weights: serve a checkpoint quantised so (vLLM reads "
            "the method from its quantization_config); the scripts pass no --quantization."
        )
    if inp.kv_dtype == "fp8":
        words.append(["--kv-cache-dtype", "fp8"])
    elif inp.kv_dtype not in ("bf16", "fp16"):
        notes.append(
            f"The plan counts a {inp.kv_dtype} KV cache, which vLLM's --kv-cache-dtype does "
            "not offer (auto and FP8 variants); the scripts keep the default, so the KV cache "
            "holds fewer tokens than planned."
        )
    if inp.enforce_eager:
        words.append(["--enforce-eager"])
    if inp.disable_custom_all_reduce:
        words.append(["--disable-custom-all-reduce"])
    if inp.enable_prefix_caching is not None:
        # a BooleanOptionalAction in vLLM (engine/arg_utils.py, V0 and V1): the plan's
        # shared-prefix reuse depends on it, so it is passed either way
        on = inp.enable_prefix_caching
        words.append(["--enable-prefix-caching" if on else "--no-enable-prefix-caching"])
    if inst.role in ("prefill", "decode"):
        connector = CONNECTOR[dep.strategy]
        if connector == "NixlConnector":
            env.append(f"VLLM_NIXL_SIDE_CHANNEL_PORT={_nixl_port(inst)}")
        elif inst.role == "prefill":
            env.append(f"VLLM_MOONCAKE_BOOTSTRAP_PORT={_bootstrap_port(inst)}")
        role = "kv_producer" if inst.role == "prefill" else "kv_consumer"
        config = {"kv_connector": connector, "kv_role": role}
        words.append(["--kv-transfer-config", json.dumps(config, separators=(",", ":"))])
    return _command(env, words, f" > logs/{inst.name}.log 2>&1 &")


def _bootstrap_port(inst: Instance) -> int:
    return MOONCAKE_BOOTSTRAP_PORT + inst.first_gpu


def _nixl_port(inst: Instance) -> int:
    return NIXL_SIDE_PORT + inst.first_gpu


@dataclass(frozen=True)
class Proxy:
    """A disaggregated-prefill proxy on node0 and the instances behind it."""

    index: int
    prefill: list[Instance]
    decode: list[Instance]

    @property
    def port(self) -> int:
        return PROXY_PORT + self.index

    @property
    def url(self) -> str:
        return f"http://node0:{self.port}"


def proxies(inp: LaunchInput, insts: list[Instance]) -> list[Proxy]:
    """FuDG: MoonCake, one proxy over every instance (KV crosses the NIC to any decode
    instance, as its model assumes); DistServe, one per node over that node's instances (its
    model keeps KV inside a node). Empty for the other strategies."""
    dep = inp.deployment
    if dep.family != "FuDG":
        return []
    groups = sorted({i.node for i in insts}) if dep.strategy == "distserve" else [None]
    out = []
    for g, node in enumerate(groups):
        members = [i for i in insts if node is None or i.node == node]
        out.append(
            Proxy(
                g,
                [i for i in members if i.role == "prefill"],
                [i for i in members if i.role == "decode"],
            )
        )
    return out


def proxy_command(inp: LaunchInput, proxy: Proxy) -> str:
    tail = f" > logs/proxy{proxy.index}.log 2>&1 &"
    common = [["--host", "0.0.0.0"], ["--port", str(proxy.port)]]
    if inp.deployment.strategy == "distserve":
        words = [
            ["python3", f'"$VLLM_SRC/{TOY_PROXY}"'],
            *common,
            ["--prefiller-hosts", *(i.host for i in proxy.prefill)],
            ["--prefiller-ports", *(str(i.port) for i in proxy.prefill)],
            ["--decoder-hosts", *(i.host for i in proxy.decode)],
            ["--decoder-ports", *(str(i.port) for i in proxy.decode)],
        ]
    else:
        words = [
            ["python3", f'"$VLLM_SRC/{MOONCAKE_PROXY}"'],
            *common,
            *(["--prefill", i.url, str(_bootstrap_port(i))] for i in proxy.prefill),
            *(["--decode", i.url] for i in proxy.decode),
        ]
    return _command([], words, tail)


@dataclass(frozen=True)
class BenchTarget:
    """One `vllm bench serve` client: an endpoint and its share of the plan's rate."""

    name: str
    url: str
    rate_rps: float


def bench_targets(inp: LaunchInput, insts: list[Instance]) -> list[BenchTarget]:
    """Each endpoint gets its share of the rate: every NoDG/PaDG instance rate/instances (a
    random split of a Poisson stream is Poisson at the share; the strategy models split the
    load evenly), each FuDG proxy its prefill instances' share."""
    rate = inp.goodput_rps
    pxs = proxies(inp, insts)
    if pxs:
        n_p = inp.deployment.instances
        return [BenchTarget(f"proxy{p.index}", p.url, rate * len(p.prefill) / n_p) for p in pxs]
    n = len(insts)
    return [BenchTarget(i.name, i.url, rate / n) for i in insts]


def bench_command(inp: LaunchInput, target: BenchTarget, seed: int) -> str:
    prompts = max(MIN_PROMPTS, math.ceil(target.rate_rps * BENCH_SECONDS))
    pct = sorted({50.0, 90.0, 99.0, inp.attainment_pct})
    words = [
        ["vllm", "bench", "serve"],
        ["--backend", "vllm"],
        ["--base-url", target.url],
        ["--model", inp.model_id],
        ["--dataset-name", "random"],
        ["--random-input-len", str(max(1, round(inp.mean_input_tokens)))],
        ["--random-output-len", str(max(1, round(inp.mean_output_tokens)))],
        ["--ignore-eos"],
        ["--num-prompts", str(prompts)],
        ["--request-rate", _fmt(target.rate_rps)],
    ]
    if inp.arrival_process == "gamma" and inp.arrival_cv != 1.0:
        words.append(["--burstiness", _fmt(1.0 / inp.arrival_cv**2)])
    words += [
        ["--goodput", f"ttft:{inp.ttft_s * 1e3:g}", f"tpot:{inp.tpot_s * 1e3:g}"],
        ["--percentile-metrics", "ttft,tpot,e2el"],
        ["--metric-percentiles", ",".join(f"{p:g}" for p in pct)],
        ["--seed", str(seed)],
        ["--save-result"],
        ["--result-dir", "results"],
        ["--result-filename", f"{target.name}.json"],
    ]
    return _command([], words, f" > results/{target.name}.txt 2>&1 &")


# ---- files ----------------------------------------------------------------------------------
def _wait_health(urls: list[str]) -> str:
    joined = " ".join(f"{u}/health" for u in urls)
    return (
        f'for url in {joined}; do\n    until curl -sf "$url" > /dev/null; do sleep 5; done\ndone\n'
    )


def _script(header: list[str], body: str) -> str:
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return "#!/usr/bin/env bash\n" + comments + 'set -euo pipefail\ncd "$(dirname "$0")"\n' + body


def _hosts(nodes: list[int]) -> str:
    names = [f"`node{n}`" for n in nodes]
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} … {names[-1]}"


def _gpu_span(gpus: tuple[int, ...]) -> str:
    return f"{gpus[0]}-{gpus[-1]}" if len(gpus) > 1 else str(gpus[0])


def _describe(inp: LaunchInput) -> str:
    dep = inp.deployment
    return (
        f"{dep.strategy} {dep.label()} of {inp.model} on {inp.nodes}×{inp.gpus_per_node} "
        f"{inp.gpu}, predicted goodput {_fmt(inp.goodput_rps)} req/s"
    )


def _instances_doc(inp: LaunchInput, insts: list[Instance], pxs: list[Proxy]) -> dict[str, Any]:
    dep = inp.deployment
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "ecoplan launch description",
        "strategy": dep.strategy,
        "label": dep.label(),
        "model": {"name": inp.model, "hf_id": inp.hf_id},
        "engine": inp.engine,
        "goodput_rps": inp.goodput_rps,
        "instances": [],
    }
    for i in insts:
        item: dict[str, Any] = {
            "name": i.name,
            "role": i.role,
            "node": i.node,
            "nodes": list(i.nodes),
            "host": i.host,
            "gpus": list(i.gpus),
            "tp": i.tp,
            "pp": i.pp,
            "port": i.port,
            "url": i.url,
        }
        if i.role != "serve":
            item["kv_connector"] = CONNECTOR[dep.strategy]
            item["kv_role"] = "kv_producer" if i.role == "prefill" else "kv_consumer"
            if dep.strategy == "distserve":
                item["nixl_side_channel_port"] = _nixl_port(i)
            elif i.role == "prefill":
                item["mooncake_bootstrap_port"] = _bootstrap_port(i)
        if i.macro is not None:
            item["macro_instance"] = i.macro
            item["activation_position"] = i.activation
        doc["instances"].append(item)
    if pxs:
        doc["proxies"] = [
            {
                "name": f"proxy{p.index}",
                "host": "node0",
                "port": p.port,
                "url": p.url,
                "prefill": [i.name for i in p.prefill],
                "decode": [i.name for i in p.decode],
            }
            for p in pxs
        ]
    if dep.strategy == "ecoserve":
        macros = dep.instances // dep.macro_size
        window = dep.window_s if dep.window_s is not None else inp.ttft_s
        doc["macro_instances"] = [
            {
                "macro_instance": m,
                "instances": [i.name for i in insts if i.macro == m],
                "activation_order": [
                    i.name for i in sorted(insts, key=lambda x: x.activation or 0) if i.macro == m
                ],
                "window_s": min(window, inp.ttft_s),
                "rate_rps": inp.goodput_rps / macros,
            }
            for m in range(macros)
        ]
    return doc


def _prefix_note(inp: LaunchInput) -> str:
    """The README's words on prefix caching, when the workload declares a shared prefix."""
    if inp.enable_prefix_caching is None:
        return ""
    if inp.enable_prefix_caching:
        return (
            ", `--enable-prefix-caching` (the plan counts on the shared prompt prefix being "
            "computed once per instance and reused)"
        )
    return ", `--no-enable-prefix-caching` (the plan assumes no prefix reuse)"


def _mapping(inp: LaunchInput) -> list[str]:
    """How the strategy maps onto vLLM: README paragraphs."""
    dep = inp.deployment
    if dep.strategy == "vllm":
        return [
            "**vLLM (V0-style prefill priority).** vLLM's V1 engine has no prefill-priority "
            "scheduler: it always mixes decodes and new prompts in one token budget. The closest "
            "on V1 is what the scripts pass, `--no-enable-chunked-prefill` with a token budget "
            "that holds the longest request whole, so prompts are never split. Checked in "
            "vLLM's source: v0.34.0 honours the flag (and logs that disabling chunked prefill "
            "is not officially supported); v0.9.2's V1 ignores it and turns chunked prefill "
            "on (`EngineArgs._set_default_args_v1`). For the V0 scheduler itself, run vLLM "
            "≤ v0.9.2 (the last release with V0) with `VLLM_USE_V1=0` in front of each command"
            + (
                " — the scripts already do, as the plan's engine is `vllm-v0`."
                if inp.engine == "vllm-v0"
                else "."
            )
        ]
    if dep.strategy == "sarathi":
        return [
            f"**Sarathi (chunked prefill).** This is vLLM V1's default scheduler: chunked "
            f"prefill on, and `--max-num-batched-tokens` set to the plan's chunk of "
            f"{dep.chunk_tokens} tokens, the budget of every hybrid iteration."
        ]
    if dep.family == "FuDG":
        connector = CONNECTOR[dep.strategy]
        where = (
            "Each node holds the same prefill and decode instances and has its own proxy, so "
            "KV moves inside a node, as DistServe's placement assumes."
            if dep.strategy == "distserve"
            else "One proxy spreads requests over every prefill and decode instance (round "
            "robin), so KV crosses the nodes' NICs, as MoonCake's model assumes."
        )
        text = [
            f"**{dep.strategy} (FuDG).** vLLM's disaggregated prefill: prefill instances run "
            f"with `--kv-transfer-config` `kv_role` `kv_producer`, decode instances with "
            f"`kv_consumer`, over the `{connector}` KV connector. A proxy sends each request "
            "to a prefill instance (for its first token), then to a decode instance, which "
            f"pulls the KV and streams the rest. {where} Prefill instances keep V1's chunked "
            "prefill with a token budget that holds the longest prompt whole.",
        ]
        if connector == "NixlConnector":
            text.append(
                "`NixlConnector` is a V1 connector in v0.9.2 and v0.34.0 and needs the NIXL "
                "library (`pip install nixl`, see vLLM's NixlConnector usage guide). Each "
                "instance on a node gets its own `VLLM_NIXL_SIDE_CHANNEL_PORT` (default 5600; in "
                "v0.9.2 each TP rank listens on that port plus its rank), here 5600 + its first "
                "GPU; `VLLM_NIXL_SIDE_CHANNEL_HOST` keeps its default, localhost, which is right "
                "because each decode instance pulls KV from prefill instances on its own node. "
                "v0.34.0 deprecates `kv_role` `kv_both` for this connector in favour of the "
                "producer/consumer roles used here. Pipeline parallelism: v0.34.0's connector "
                "exchanges metadata per pipeline rank; v0.9.2's has no pipeline-parallel "
                "handling, so use v0.34.0 when an instance has `--pipeline-parallel-size` > 1."
            )
        else:
            text.append(
                "`MooncakeConnector` is a V1 connector in v0.34.0 (in v0.9.2 the name belongs "
                "to a V0 connector only, so use a recent vLLM). It needs the Mooncake transfer "
                "engine (`pip install mooncake-transfer-engine`, see vLLM's MooncakeConnector "
                "usage guide). Each prefill instance starts a bootstrap server on "
                "`VLLM_MOONCAKE_BOOTSTRAP_PORT` (default 8998), which must differ between "
                "instances on one host: here 8998 + its first GPU, and the proxy is told each "
                "one; decode instances reach it at the host of the prefill instance's URL, so "
                "the node names must resolve on every node. The transfer protocol is RDMA "
                "unless `kv_connector_extra_config` sets "
                "`mooncake_protocol` (v0.34.0's `mooncake_connector.py`); on a cluster without "
                "RDMA NICs set it to a protocol the Mooncake transfer engine offers there "
                "(Mooncake documents TCP; not checked against vLLM here)."
            )
        if inp.engine == "vllm-v0":
            text.append(
                "The plan's engine is `vllm-v0`, but these commands use V1 connectors: V0's "
                "disaggregated prefill needs per-pair ranks and addresses that this file does "
                "not generate. Run them on V1."
            )
        return text
    return [
        "**EcoServe (PaDG) has no upstream release.** Rolling activation — one instance of each "
        "macro instance admits new prompts at a time, for a window of predicted prefill work, "
        "then hands over to the next, while the others only decode — needs EcoServe's "
        "scheduler, which vLLM does not have. The scripts start every instance as a plain "
        "vLLM instance (prefill priority: `--no-enable-chunked-prefill`, as for the `vllm` "
        "strategy), the closest upstream vLLM comes; `instances.json` lists the macro "
        "instances, their members, the activation order and the window, which an EcoServe "
        "scheduler (or your own router) needs. Without it the benchmark measures independent "
        "vLLM instances, i.e. the `vllm` strategy on this shape, not EcoServe's goodput."
    ]


def _readme(
    inp: LaunchInput,
    insts: list[Instance],
    pxs: list[Proxy],
    targets: list[BenchTarget],
    node_files: dict[int, str],
    notes: list[str],
) -> str:
    dep = inp.deployment
    lines = [
        "# Launch files",
        "",
        f"Generated by `ecoplan` for {_describe(inp)}. Workload {inp.workload}: mean prompt "
        f"{inp.mean_input_tokens:.0f} tokens, mean output {inp.mean_output_tokens:.0f} tokens; "
        f"SLO TTFT {inp.ttft_s:g} s, TPOT {inp.tpot_s * 1e3:g} ms, P{inp.attainment_pct:g}.",
        "",
        "The commands are for vLLM's `vllm serve` (V1 engine). Every flag they use exists in "
        "vLLM v0.9.2 and v0.34.0 (checked in `vllm/engine/arg_utils.py` and the OpenAI "
        "frontend's arguments).",
        "",
        "## What runs where",
        "",
        "| instance | role | node | GPUs | TP×PP | port |"
        + (" macro instance |" if dep.strategy == "ecoserve" else ""),
        "|---|---|---|---|---|---|" + ("---|" if dep.strategy == "ecoserve" else ""),
    ]
    for i in insts:
        row = f"| {i.name} | {i.role} | {i.host} | {_gpu_span(i.gpus)} | {i.tp}×{i.pp} | {i.port} |"
        if dep.strategy == "ecoserve":
            row += f" {i.macro} (position {i.activation}) |"
        lines.append(row)
    lines += [
        "",
        f"{_hosts(sorted({i.node for i in insts}))} stand for the cluster's hosts: make the names "
        "resolve (e.g. in /etc/hosts) or replace them in the scripts. Each script runs its "
        "node's instances in the background, logs to `logs/`, and waits.",
        "",
        "Settings common to every instance: "
        f"`--max-model-len {inp.max_model_len}` (the longest request the plan serves; vLLM "
        f"rejects longer ones), `--gpu-memory-utilization {inp.gpu_memory_utilization:g}` "
        f"(the share of GPU memory the plan's KV budget assumes), `--max-num-seqs "
        f"{inp.max_num_seqs}` (the plan's engine `{inp.engine}` on {inp.gpu}; vLLM needs it no "
        "larger than the token budget)"
        + (", `--enforce-eager`" if inp.enforce_eager else "")
        + (", `--disable-custom-all-reduce`" if inp.disable_custom_all_reduce else "")
        + _prefix_note(inp)
        + ".",
        "",
    ]
    if inp.hf_id is None:
        lines += [
            f"**The model's Hugging Face id is unknown**, so the commands use the placeholder "
            f"`{PLACEHOLDER}`: replace it (or set `hf_id` in the model profile and plan again).",
            "",
        ]
    lines += ["## How the plan maps onto vLLM", ""]
    for para in _mapping(inp):
        lines += [para, ""]
    lines += ["## Start", ""]
    step = 1
    for node, name in node_files.items():
        lines.append(f"{step}. On node{node}: `bash {name}`")
        step += 1
    health = "http://HOST:PORT/health"
    waiting = "`proxy.sh` and `bench.sh` wait" if pxs else "`bench.sh` waits"
    lines.append(
        f"{step}. Wait until every instance answers `curl -sf {health}` (loading the weights "
        f"takes minutes; {waiting} for it)."
    )
    step += 1
    if pxs:
        where = TOY_PROXY if dep.strategy == "distserve" else MOONCAKE_PROXY
        commit = TOY_PROXY_COMMIT if dep.strategy == "distserve" else MOONCAKE_PROXY_COMMIT
        lines.append(
            f"{step}. On node0: `VLLM_SRC=/path/to/vllm bash proxy.sh` — the proxy "
            f"`{where}` from a checkout of the vLLM repository (it is not in the wheel; take "
            f"the tag of your installed vLLM; its arguments here are those at commit "
            f"`{commit[:10]}`; run it with `--help` if your tree differs). It needs `fastapi`, "
            "`httpx` and `uvicorn`, which vLLM installs."
        )
        step += 1
        for p in pxs:
            lines.append(
                f"   - proxy{p.index} at {p.url}: prefill "
                + ", ".join(i.url for i in p.prefill)
                + "; decode "
                + ", ".join(i.url for i in p.decode)
            )
    lines.append(f"{step}. On node0 (or any host that reaches every endpoint): `bash bench.sh`.")
    total = sum(t.rate_rps for t in targets)
    lines += [
        "",
        "## Check the plan with vLLM's serving benchmark",
        "",
        f"`bench.sh` runs `vllm bench serve` against {len(targets)} endpoint(s) at the same "
        f"time, {_fmt(total)} req/s in all (the predicted goodput), each at its share: "
        + ", ".join(f"{t.name} {_fmt(t.rate_rps)} req/s" for t in targets)
        + ". "
        + (
            "vLLM has no load balancer in front of independent instances, so each instance "
            "gets its own client; a random split of Poisson arrivals is Poisson at each share, "
            "and the plan's model gives every instance an equal share. "
            if not pxs
            else ""
        )
        + f"Prompts of {max(1, round(inp.mean_input_tokens))} and outputs of "
        f"{max(1, round(inp.mean_output_tokens))} tokens (`--dataset-name random`, the "
        "workload's means; `--ignore-eos` makes every output that long), "
        + (
            "Poisson arrivals"
            if inp.arrival_process != "gamma" or inp.arrival_cv == 1.0
            else f"Gamma arrivals with CV {inp.arrival_cv:g} (`--burstiness` = 1/CV², the "
            "gamma shape vLLM's benchmark uses)"
        )
        + f", about {BENCH_SECONDS / 60:.0f} minutes of arrivals per client (at least "
        f"{MIN_PROMPTS} prompts). `--goodput ttft:{inp.ttft_s * 1e3:g} tpot:{inp.tpot_s * 1e3:g}` "
        "(milliseconds) counts the requests that meet both bounds; TPOT per request is (latency "
        "− TTFT)/(output tokens − 1), as in the plan.",
        "",
        "Every flag of `vllm bench serve` used exists in v0.9.2 and v0.34.0 "
        "(`vllm/benchmarks/serve.py`; the dataset flags in `vllm/benchmarks/datasets.py`, "
        "v0.34.0 `vllm/benchmarks/datasets/datasets.py`).",
        "",
        "Reading the results (`results/*.txt`, `results/*.json`): the plan holds when, for "
        f"each client, `Request goodput` ≥ {inp.attainment_pct:g}% of `Request throughput` "
        f"(SLO attainment), and P{inp.attainment_pct:g} TTFT and TPOT stay within "
        f"{inp.ttft_s:g} s and {inp.tpot_s * 1e3:g} ms."
        + (
            " The plan's SLO is not joint; vLLM's goodput counts a request only when it meets "
            "both bounds, which is stricter."
            if not inp.joint
            else ""
        )
        + " The random dataset uses fixed lengths at the means, so it checks the load, not the "
        "tail of the length distribution; to replay the real lengths use a dataset file "
        "(`--dataset-name sharegpt --dataset-path …`). At exactly the predicted goodput the "
        "attainment should land near the target; run again at a lower `--request-rate` to see "
        "the headroom.",
        "",
        "## Files",
        "",
    ]
    for node, name in node_files.items():
        lines.append(f"- `{name}`: the `vllm serve` commands of node{node}")
    if pxs:
        lines.append("- `proxy.sh`: the disaggregated-prefill proxy (run on node0)")
    lines += [
        "- `bench.sh`: the benchmark clients",
        "- `instances.json`: every instance (name, role, node, `nodes` — more than one for an "
        "instance spanning nodes, whose `gpus` are then every GPU of each —, host, GPUs, TP, "
        "PP, port, URL; FuDG: KV connector, `kv_role`, side-channel or bootstrap port), the "
        "proxies (FuDG), and for EcoServe the macro instances (`macro_instances`: members, "
        "`activation_order` — instances take turns admitting prompts in this order —, "
        "`window_s` — the prefill work, in seconds, an instance admits per activation — and "
        "`rate_rps` per macro instance); `replicas`, the units that each run these files; "
        "`schema_version` 1",
        "",
    ]
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {n}" for n in dict.fromkeys(notes)]
        lines.append("")
    return "\n".join(lines)


def launch_from_file(path: Path, strategy: str | None = None) -> tuple[LaunchInput, dict[str, str]]:
    """The launch input and files of a plan saved with `ecoplan plan --format json`."""
    inp = launch_input_from_doc(read_plan_json(path), strategy, where=clip(path, 120))
    return inp, launch_files(inp)


def _ray_head(inst: Instance) -> str:
    """Start the Ray cluster of an instance spanning nodes on its first node and wait until
    every node of it has joined (all their GPUs), as vLLM's multi-node serving needs
    (vLLM's docs, "Distributed inference and serving": `ray start --head` on the head node,
    `ray start --address=…` on the others, `vllm serve` on the head node)."""
    need = inst.tp * inst.pp
    check = (
        'import ray, sys; ray.init(address="auto"); '
        f'sys.exit(0 if ray.cluster_resources().get("GPU", 0) >= {need} else 1)'
    )
    return (
        f"ray start --head --port={RAY_PORT}\n"
        f"until python3 -c {shlex.quote(check)} > /dev/null 2>&1; do sleep 5; done\n"
    )


def _ray_worker(inst: Instance) -> str:
    return f"ray start --address={inst.host}:{RAY_PORT} --block > logs/ray-{inst.name}.log 2>&1 &\n"


def launch_files(inp: LaunchInput) -> dict[str, str]:
    """{relative path: text} of the launch files of `inp`'s deployment (of one unit when it is
    replicated: every unit runs the same files on its own nodes)."""
    whole = inp
    inp = unit_input(inp)
    dep = inp.deployment
    insts = layout(inp)
    notes: list[str] = []
    files: dict[str, str] = {}
    node_files: dict[int, str] = {}
    for node in sorted({n for i in insts for n in i.nodes}):
        mine = [i for i in insts if i.node == node]
        joins = [i for i in insts if node in i.nodes[1:]]
        header = [
            f"node{node}: {len(mine)} vLLM instance(s) of {_describe(inp)}."
            + (f" Ray worker of {', '.join(i.name for i in joins)}." if joins else ""),
            "Generated by ecoplan; see README.md. Run on this node; logs go to logs/.",
        ]
        body = "mkdir -p logs\n"
        for i in joins:
            body += f"# {i.name} spans nodes {_gpu_span(i.nodes)}: join its Ray cluster\n"
            body += _ray_worker(i)
        for i in mine:
            where = f"nodes {_gpu_span(i.nodes)}" if i.span > 1 else f"GPUs {_gpu_span(i.gpus)}"
            body += f"# {i.name}: {i.role}, {where}, port {i.port}\n"
            if i.span > 1:
                body += _ray_head(i)
                notes.append(
                    "Instances larger than a node run on Ray (`pip install ray` on every node): "
                    "the instance's first node starts the Ray head and `vllm serve` with "
                    "`--distributed-executor-backend ray` once every node of the instance has "
                    "joined; its other nodes' scripts join with `ray start --address`. vLLM "
                    "places the pipeline stages on the nodes (TP inside a node, PP across them, "
                    "as the plan's model assumes: docs/model.md §2.7). If NCCL picks the wrong "
                    "network interface, set NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME."
                )
            body += serve_command(inp, i, notes) + "\n"
        body += "wait\n"
        name = f"node{node}.sh"
        files[name] = _script(header, body)
        node_files[node] = name
    pxs = proxies(inp, insts)
    if pxs:
        header = [
            f"The disaggregated-prefill proxy of {dep.strategy} {dep.label()}.",
            "Run on node0 with VLLM_SRC set to a checkout of the vLLM repository at the installed",
            "version (the proxy is not in the wheel); see README.md.",
        ]
        body = (
            ': "${VLLM_SRC:?set VLLM_SRC to a checkout of the vLLM repository}"\n'
            "mkdir -p logs\n" + _wait_health([i.url for i in insts])
        )
        body += "".join(proxy_command(inp, p) + "\n" for p in pxs) + "wait\n"
        files["proxy.sh"] = _script(header, body)
    targets = bench_targets(inp, insts)
    header = [
        f"Checks the plan with vLLM's serving benchmark: {_fmt(inp.goodput_rps)} req/s in all,",
        "the workload's mean lengths, the SLO as --goodput; see README.md.",
    ]
    body = "mkdir -p results\n" + _wait_health([i.url for i in insts])
    body += "".join(bench_command(inp, t, k) + "\n" for k, t in enumerate(targets))
    body += 'wait\ngrep -H "Request throughput\\|Request goodput" results/*.txt || true\n'
    files["bench.sh"] = _script(header, body)
    doc = _instances_doc(inp, insts, pxs)
    doc["replicas"] = whole.deployment.replicas
    files["instances.json"] = json.dumps(doc, indent=2) + "\n"
    readme = _readme(inp, insts, pxs, targets, node_files, notes)
    files["README.md"] = _replicas_section(whole, inp) + readme if whole is not inp else readme
    return dict(sorted(files.items()))


def _replicas_section(whole: LaunchInput, unit: LaunchInput) -> str:
    """README preamble of a replicated deployment: what the files describe and how the units
    are combined."""
    dep, k = whole.deployment, unit.nodes
    entry = "proxies" if dep.family == "FuDG" else "instances"
    return "\n".join(
        [
            "# Replicated deployment",
            "",
            f"The plan is {dep.label()}: {dep.replicas} identical units of {k} node(s) each, "
            f"{_fmt(whole.goodput_rps)} req/s in all. The files below start **one unit** on "
            f"`node0` … `node{k - 1}`; run the same files on every unit's own {k} node(s) "
            "(`nodeJ` standing for the unit's J-th node). Put a round-robin load balancer in "
            f"front of the units' {entry} (e.g. nginx's `upstream`, whose default method is "
            "round robin), so that unit u gets requests u, u + R, u + 2R, … — the split the "
            "plan's model assumes (docs/model.md §8.5). `bench.sh` checks one unit at its share, "
            f"{_fmt(unit.goodput_rps)} req/s.",
            "",
            "",
        ]
    )


__all__ = [
    "PLACEHOLDER",
    "LaunchInput",
    "check_strategy",
    "launch_files",
    "launch_from_file",
    "launch_input",
    "launch_input_from_doc",
    "layout",
    "read_plan_json",
]

"""Property-based fuzz of the whole plan-file schema and of every command that reads input.

Hypothesis builds plan files of the right shape — every value drawn from ordinary and extreme
but valid choices — then applies up to three mutations anywhere in the tree: a hostile value
(extreme or non-finite float, huge or negative integer, wrong type), a removed key, an unknown
key, or a duplicate key in the YAML text. Inline model and GPU blocks are mutated the same way.
Each file runs through the CLI (plan, evaluate, simulate, scale); Hugging Face configs run
through `model import` and through plan files, and options through `estimate`. Every run must
end with exit code 0 or 2, no traceback, an error of at most three short lines on stderr, and
no temporary file left behind.

Deterministic (derandomized) with few examples in CI; ECOPLAN_FUZZ_EXAMPLES=N raises the
example count of the cheap commands to N (and of plan/scale to N/10) for a local run.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app

runner = CliRunner()
_ENV = os.environ.get("ECOPLAN_FUZZ_EXAMPLES")


def _settings(default: int, share: float = 1.0) -> settings:
    """`default` examples in CI; ECOPLAN_FUZZ_EXAMPLES × share (at least `default`) when set."""
    count = max(default, int(int(_ENV) * share)) if _ENV else default
    return settings(
        max_examples=count,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---- hostile values ---------------------------------------------------------------------------

EXTREME_FLOATS = [1e300, -1e300, 1e308, 1e-300, 5e-324, -5e-324, math.inf, -math.inf, math.nan]
HUGE_INTS = [10**20, 2**63, -(2**63), 2**64 + 1, 10**400, -(10**30)]
WRONG_TYPES: list[Any] = ["abc", "", "1e3x", [], {}, [1, 2], {"a": 1}, True, False, None, "nan"]
UNKNOWN_KEYS = ["nodez", "tpot", "x" * 300, "gpu_count", "1", "ttft"]

hostile: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(EXTREME_FLOATS),
    st.sampled_from(HUGE_INTS),
    st.sampled_from(WRONG_TYPES),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 0.0, -0.5, 1, 2, 3, 1e-9, 1e9]),
).map(copy.deepcopy)  # never hand out the shared [] and {} above: mutations would change them


def _slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a tree of dicts and lists that a mutation can hit."""
    out = [path]
    if isinstance(node, dict):
        for k, val in node.items():
            out += _slots(val, (*path, k))
    elif isinstance(node, list):
        for i, val in enumerate(node):
            out += _slots(val, (*path, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any], most: int = 3) -> Any:
    """A draw of `valid` with 0..`most` mutations (about a third of the draws stay valid)."""
    data = copy.deepcopy(draw(valid))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, most]))):
        slots = _slots(data)
        path = slots[draw(st.integers(0, len(slots) - 1))]
        op = draw(st.integers(0, 9))
        if not path:
            if op == 0:
                return draw(hostile)
            continue
        *head, last = path
        parent = data
        for p in head:
            parent = parent[p]
        if op <= 5:
            parent[last] = draw(hostile)
        elif op <= 7 and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(UNKNOWN_KEYS))] = draw(hostile)
        else:
            parent[last] = [parent[last]]  # a value where a list is not expected, or vice versa
    return data


def one(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def some(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping holding a random subset of `fields`."""
    return st.fixed_dictionaries({}, optional=fields)


def based(
    base: dict[str, Any], changes: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with a random subset of its fields replaced by draws from `changes`."""
    return some(changes).map(lambda d: {**base, **d})


# ---- valid plan files, ordinary and extreme values --------------------------------------------

L20 = catalog.load_gpu("l20").model_dump(mode="json")
TINY_MODEL = {
    "name": "tiny",
    "num_layers": 4,
    "hidden_size": 512,
    "num_heads": 8,
    "num_kv_heads": 8,
    "head_dim": 64,
    "intermediate_size": 1024,
    "vocab_size": 1000,
    "max_context": 4096,
}
HF_CONFIG = {
    "hidden_size": 512,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "num_hidden_layers": 4,
    "intermediate_size": 1024,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
    "model_type": "llama",
}

inline_gpu = based(
    L20,
    {
        "memory_gib": one([0.01, 24.0, 48.0, 1e5]),
        "memory_bandwidth_gb_s": one([0.001, 864.0, 1e6]),
        "peak_tflops": some({"bf16": one([0.001, 119.5, 1e6]), "fp8": one([239.0])}),
        "iteration_overhead_ms": one([0.0, 3.0, 1e4]),
        "kernel_launch_us": one([0.0, 4.0, 1e6]),
        "runtime_reserve_gib": one([0.0, 1.5, 1e5]),
        "price_per_gpu_hour": one([0.0, 1e6]),
        "compute_efficiency": one([[[1, 1.0]], [[128, 0.2], [1e9, 1.0]]]),
    },
)
inline_model = based(
    TINY_MODEL,
    {
        "num_layers": one([1, 4, 10_000]),
        "hidden_size": one([1, 512, 1 << 20]),
        "num_kv_heads": one([1, 2, 8]),
        "head_dim": one([1, 64, 1 << 16]),
        "intermediate_size": one([1, 1024, 1 << 24]),
        "vocab_size": one([1, 1000, 1 << 24]),
        "num_experts": one([1, 8, 1 << 16]),
        "experts_per_token": one([1, 2]),
        "max_context": one([16, 4096, 1 << 24]),
        "dtype": one(["bf16", "fp8"]),
        "kv_dtype": one(["fp8", "int8"]),
    },
)
network = some(
    {
        "bandwidth_gbit": one([0.001, 10.0, 25.0, 400.0, 1e6]),
        "latency_us": one([0.0, 10.0, 1e6]),
        "efficiency": one([1e-9, 0.5, 1.0]),
        "nics_per_node": one([1, 2, 64]),
    }
)
intra_node = st.fixed_dictionaries(
    {
        "kind": one(["pcie_gen4", "nvlink"]),
        "p2p_bandwidth_gb_s": one([0.001, 12.0, 300.0, 1e6]),
        "latency_us": one([0.0, 2.0, 1e6]),
        "allreduce_bus_bandwidth_gb_s": st.dictionaries(
            one([2, 4, 8, 4096]), one([0.001, 5.0, 100.0, 1e6]), min_size=1, max_size=3
        ),
    }
)


def cluster(small: bool) -> st.SearchStrategy[dict[str, Any]]:
    return some(
        {
            "gpu": st.one_of(one(["l20", "h100-sxm", "a100-80g-sxm"]), inline_gpu),
            "nodes": one([1] if small else [1, 2, 4096]),
            "gpus_per_node": one([1, 2] if small else [1, 2, 8, 64]),
            "network": network,
            "intra_node": intra_node,
            "price_per_gpu_hour": one([0.0, 0.45, 1e6]),
        }
    )


model = st.one_of(
    one(["llama-3.1-8b", "codellama-34b", "mixtral-8x7b"]),
    some({"dtype": one(["bf16", "fp8"]), "kv_dtype": one(["fp8", "int8"])}).map(
        lambda d: {"profile": "llama-3.1-8b", **d}
    ),
    one([{"hf_config": "cfg.json"}, {"hf_config": "cfg.json", "dtype": "fp8"}]),
    inline_model,
)
lengths = st.one_of(
    some({"mean": one([1.0, 20.0, 300.0, 16_777_216.0])}).map(lambda d: {"kind": "fixed", **d}),
    st.fixed_dictionaries(
        {
            "kind": st.just("lognormal"),
            "mean": one([1.0, 300.0, 16_777_216.0]),
            "sigma": one([1e-9, 0.5, 10.0]),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.just("lognormal"), "median": one([1.0, 200.0]), "cv": one([1e-9, 2.0, 100.0])}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("lognormal"), "median": one([1.0, 200.0]), "p90": one([400.0, 1.6e7])}
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("empirical"),
            "values": st.lists(one([1.0, 50.0, 700.0, 16_777_216.0]), min_size=1, max_size=4),
        }
    ),
    st.just({"kind": "empirical", "file": "lengths.txt"}),
).flatmap(
    lambda d: some({"min": one([1, 4, 16_777_216]), "max": one([16_777_216, 4000])}).map(
        lambda extra: {**d, **extra}
    )
)
workload = st.one_of(
    some(
        {"arrivals": some({"process": one(["poisson", "gamma"]), "cv": one([1e-9, 1.5, 10.0])})}
    ).map(lambda d: {"preset": "sharegpt", **d}),
    some({"preset": one(["alpaca", "longbench", "azure-code", "azure-conv"])}),
    st.fixed_dictionaries({"preset": st.none(), "input": lengths, "output": lengths}),
)
slo = some(
    {
        "ttft_s": one([1e-6, 0.5, 2.0, 10.0, 86_400.0]),
        "tpot_s": one([1e-6, 0.05, 0.1, 86_400.0]),
        "attainment": one([1e-9, 50.0, 90.0, 99.999]),
        "joint": st.booleans(),
    }
)
objective = some(
    {
        "kind": one(["max_goodput_per_gpu", "min_gpus", "min_cost"]),
        "target_rate": one([1e-9, 1.0, 50.0, 1e7]),
    }
)
kv = some(
    {
        "policy": one(["paged", "max", "predicted", "predicted+pipelining"]),
        "max_output_tokens": one([1, 64, 2048, 16_777_216]),
        "prediction_cv": one([0.0, 0.3, 5.0]),
    }
)
STRATS = ["vllm", "sarathi", "distserve", "mooncake", "ecoserve"]
search = some(
    {
        "strategies": st.lists(one(STRATS), min_size=1, max_size=2, unique=True),
        "tp": st.lists(one([1, 2, 1024]), min_size=1, max_size=2),
        "pp": st.lists(one([1, 2]), min_size=1, max_size=1),
        "chunk_tokens": st.lists(one([1, 256, 1 << 20]), min_size=1, max_size=1),
        "macro_sizes": st.lists(one([1, 2, 262_144]), min_size=1, max_size=1),
        "window_fractions": st.lists(one([1e-9, 0.25, 1.0]), min_size=1, max_size=1),
        "use_all_gpus": st.booleans(),
        "top": one([1, 100]),
    }
).map(lambda d: {"strategies": ["vllm", "ecoserve"], "tp": [1], "pp": [1], **d})
ramp = some(
    {
        "rates": st.lists(one([1e-9, 1.0, 5.0, 20.0, 1e7]), min_size=1, max_size=3),
        "step_hours": one([1e-9, 1.0, 8760.0]),
        "macro_min": one([1, 2, 6, 65_536]),
        "macro_max": one([1, 4, 11, 65_536]),
    }
)
deployment = st.fixed_dictionaries(
    {"strategy": one(STRATS)},
    optional={
        "tp": one([1, 2, 1024]),
        "pp": one([1, 1024]),
        "instances": one([1, 2, 262_144]),
        "decode_instances": one([0, 1, 262_144]),
        "decode_tp": one([1, 2]),
        "chunk_tokens": one([16, 512, 1 << 20]),
        "macro_size": one([1, 2, 262_144]),
        "window_s": one([1e-9, 0.5, 86_400.0]),
    },
)


def plan_file(small: bool) -> st.SearchStrategy[Any]:
    """Plan files, mutated; `small` keeps clusters to one node of at most two GPUs."""
    valid = some(
        {
            "cluster": cluster(small),
            "model": model,
            "workload": workload,
            "slo": slo,
            "objective": objective,
            "search": search,
            "kv": kv,
            "ramp": ramp,
            "deployments": st.lists(deployment, max_size=2),
            "rates": st.lists(one([1e-9, 0.5, 8.0, 1e7]), min_size=1, max_size=3),
        }
    ).map(lambda d: {"cluster": {"nodes": 1, "gpus_per_node": 2}, **d} if small else d)
    return mutated(valid)


hf_config = mutated(
    based(
        HF_CONFIG,
        {
            "head_dim": one([1, 64, 1 << 16]),
            "num_local_experts": one([1, 8]),
            "num_experts_per_tok": one([1, 2]),
            "moe_intermediate_size": one([256]),
            "torch_dtype": one(["float16", "bfloat16"]),
            "hidden_act": one(["gelu", "silu"]),
            "max_position_embeddings": one([16, 1 << 24]),
        },
    )
)

# ---- running ----------------------------------------------------------------------------------


def _yaml_text(data: Any, dup: int) -> str:
    """YAML of `data`; with `dup` > 0 a top-level key is repeated (a duplicate-key input)."""
    text = yaml.safe_dump(data, default_flow_style=False, allow_unicode=True, width=1000)
    if dup and isinstance(data, dict) and data:
        key = sorted(data)[dup % len(data)]
        text += yaml.safe_dump({key: data[key]}, default_flow_style=False, width=1000)
    return text


def _check(args: list[str], folder: Path) -> str:
    res = runner.invoke(app, args)
    event(f"{args[0]} exit {res.exit_code}")
    where = f"{args}: exit {res.exit_code}\n{res.output[-3000:]}"
    assert res.exit_code in (0, 2), where
    assert "Traceback" not in res.output, where
    if res.exit_code == 2:
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert 1 <= len(lines) <= 3, where
        assert all(len(line) <= 1000 for line in lines), where
    left = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert left == [], f"{where}\nleftover temporary files: {left}"
    return res.stderr


def _run_plan_file(
    data: Any, dup: int, cfg: Any, command: Callable[[Path, Path], list[str]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "lengths.txt").write_text("12 40 700\n")
        (folder / "cfg.json").write_text(json.dumps(cfg))
        path = folder / "plan.yaml"
        path.write_text(_yaml_text(data, dup))
        err = _check(command(path, folder), folder)
        if dup and isinstance(data, dict) and data:
            assert "duplicate key" in err, err


duplicate = st.integers(0, 12).map(lambda x: max(x - 10, 0))  # 0 (no duplicate) mostly


@_settings(40)
@given(data=plan_file(small=False), dup=duplicate)
def test_fuzz_evaluate(data: Any, dup: int) -> None:
    _run_plan_file(data, dup, HF_CONFIG, lambda p, _: ["evaluate", str(p)])


@_settings(15)
@given(data=plan_file(small=True), dup=duplicate)
def test_fuzz_simulate(data: Any, dup: int) -> None:
    args = ["--rate", "1", "--requests", "200", "--seeds", "1"]
    _run_plan_file(data, dup, HF_CONFIG, lambda p, _: ["simulate", str(p), *args])


@_settings(15, share=0.1)
@given(data=plan_file(small=True), dup=duplicate, sections=st.integers(0, 4))
def test_fuzz_plan(data: Any, dup: int, sections: int) -> None:
    """`plan --no-sensitivity`, and in one run of five with the sensitivity, KV-policy and
    ramp sections (they re-solve the goodput under changed inputs)."""
    flag = ["--sensitivity"] if sections == 0 else ["--no-sensitivity"]
    _run_plan_file(
        data,
        dup,
        HF_CONFIG,
        lambda p, folder: ["plan", str(p), *flag, "--out", str(folder / "r.md")],
    )


@_settings(8, share=0.1)
@given(data=plan_file(small=True))
def test_fuzz_scale(data: Any) -> None:
    _run_plan_file(data, 0, HF_CONFIG, lambda p, _: ["scale", str(p)])


@_settings(20)
@given(cfg=hf_config, inline=st.booleans())
def test_fuzz_hf_config_in_plan_file(cfg: Any, inline: bool) -> None:
    """A fuzzed HF config behind `model: {hf_config: ...}`, or its numbers in an inline model."""
    data: dict[str, Any] = {"cluster": {"nodes": 1, "gpus_per_node": 2}}
    data["model"] = {"hf_config": "cfg.json"}
    if inline and isinstance(cfg, dict):
        data["model"] = {**TINY_MODEL, **{k: x for k, x in cfg.items() if k in TINY_MODEL}}
    _run_plan_file(data, 0, cfg, lambda p, _: ["evaluate", str(p)])


@_settings(60)
@given(cfg=hf_config, raw=one(["", "", "1e400", "-1e400", "NaN", "Infinity", "1" * 5000]))
def test_fuzz_model_import(cfg: Any, raw: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = json.dumps(cfg)
        if raw and isinstance(cfg, dict):  # numbers JSON has but Python's json cannot write
            text = json.dumps({**cfg, "hidden_size": "@@"}).replace('"@@"', raw)
        (folder / "config.json").write_text(text)
        args = ["model", "import", str(folder / "config.json"), "--out", str(folder / "m.yaml")]
        _check(args, folder)


option_value = st.one_of(
    one(["1", "2", "4", "8", "1,2", "0", "-1", "3", "1e3", "abc", "", ",", "1,,2", " 4"]),
    one([str(10**20), str(2**63), "9" * 30, "nan", "inf", "2.5", "10000000", "1" * 5000]),
    st.integers(-(2**70), 2**70).map(str),
)


@_settings(60)
@given(
    gpu=one(["l20", "h100-sxm", "gpu.yaml", "bad-gpu.yaml", "nope", "", "x" * 500]),
    model_name=one(["llama-3.1-8b", "mixtral-8x7b", "model.yaml", "bad-model.yaml", "nope"]),
    opts=st.dictionaries(
        one(["--tp", "--pp", "--input", "--batch", "--context"]), option_value, max_size=5
    ),
)
def test_fuzz_estimate(gpu: str, model_name: str, opts: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "gpu.yaml").write_text(yaml.safe_dump({**L20, "memory_gib": 1e5}))
        (folder / "bad-gpu.yaml").write_text(yaml.safe_dump({**L20, "memory_gib": 1e300}))
        (folder / "model.yaml").write_text(yaml.safe_dump(TINY_MODEL))
        (folder / "bad-model.yaml").write_text(yaml.safe_dump({**TINY_MODEL, "num_heads": 0}))

        def ref(name: str) -> str:
            return str(folder / name) if name.endswith(".yaml") else name

        args = ["estimate", "--gpu", ref(gpu), "--model", ref(model_name)]
        for key, value in opts.items():
            args += [key, value]
        _check(args, folder)

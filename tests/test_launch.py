"""Launch files (`ecoplan plan --launch DIR`, `ecoplan launch PLAN.json`): every strategy's set
is produced, every flag is a real vLLM flag, GPUs and ports never collide on a node and cover
the deployment, and the JSON round trip gives the same files."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.catalog import hf_repo_id
from planner.cli import app
from planner.errors import PlannerError
from planner.report.launch import PLACEHOLDER, launch_files, launch_input_from_doc

from .test_json import _undocumented

runner = CliRunner()

# `vllm serve` flags the launch files may use, copied from vLLM's source: the literal "--…"
# strings of vllm/engine/arg_utils.py and the OpenAI frontend arguments
# (vllm/entrypoints/common/cli_args.py FrontendArgs in v0.34.0,
# vllm/entrypoints/openai/cli_args.py in v0.9.2); each is in both v0.9.2 and v0.34.0.
# `--no-enable-chunked-prefill` is not a literal: `EngineArgs.add_cli_args` gives every bool
# field argparse.BooleanOptionalAction (`get_kwargs` in arg_utils.py, both versions), which
# adds the `--no-` form of `--enable-chunked-prefill`.
VLLM_SERVE_FLAGS = {
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--enable-chunked-prefill",
    "--no-enable-chunked-prefill",
    "--gpu-memory-utilization",
    "--max-model-len",
    "--port",
    "--enforce-eager",
    "--disable-custom-all-reduce",
    "--kv-transfer-config",
    "--quantization",
    "--kv-cache-dtype",
    # a BooleanOptionalAction in both versions (and since v0.7: its help names the `--no-` form)
    "--enable-prefix-caching",
    "--no-enable-prefix-caching",
    # ParallelConfig.distributed_executor_backend ("ray" for instances spanning nodes; vLLM's
    # arg_utils.py add_cli_args, from v0.5 on)
    "--distributed-executor-backend",
}
# `vllm bench serve` flags, from vllm/benchmarks/serve.py (add_cli_args) and the dataset
# arguments (vllm/benchmarks/datasets.py in v0.9.2, vllm/benchmarks/datasets/datasets.py in
# v0.34.0); each is in both versions.
VLLM_BENCH_FLAGS = {
    "--backend",
    "--base-url",
    "--model",
    "--dataset-name",
    "--random-input-len",
    "--random-output-len",
    "--ignore-eos",
    "--num-prompts",
    "--request-rate",
    "--burstiness",
    "--goodput",
    "--percentile-metrics",
    "--metric-percentiles",
    "--seed",
    "--save-result",
    "--result-dir",
    "--result-filename",
}
# the proxies' argparse flags, from the vLLM repository:
# tests/v1/kv_connector/nixl_integration/toy_proxy_server.py (commit 030ea52e) and
# examples/online_serving/disaggregated_serving/mooncake_connector/mooncake_connector_proxy.py
# (commit 8fc582da)
PROXY_FLAGS = {
    "toy_proxy_server.py": {
        "--host",
        "--port",
        "--prefiller-hosts",
        "--prefiller-ports",
        "--decoder-hosts",
        "--decoder-ports",
    },
    "mooncake_connector_proxy.py": {"--host", "--port", "--prefill", "--decode"},
}
CONNECTORS = {"distserve": "NixlConnector", "mooncake": "MooncakeConnector"}

SEARCH = "search: {strategies: [%s], tp: %s, pp: %s, chunk_tokens: [256, 512]}\n"
SCENARIO = (
    "cluster: {gpu: l20, nodes: 2, gpus_per_node: 4, network: {bandwidth_gbit: 10}}\n"
    "model: llama-3.1-8b\n"
    "workload: {preset: alpaca}\n"
    "slo: {attainment: 90}\n"
)
CASES = {
    "vllm": ("vllm", "[1, 2]", "[1, 2]"),
    "sarathi": ("sarathi", "[1, 2]", "[1, 2]"),
    "distserve": ("distserve", "[1, 2]", "[1, 2]"),
    "mooncake": ("mooncake", "[1, 2]", "[1, 2]"),
    "ecoserve": ("ecoserve", "[1, 2]", "[1, 2]"),
    "vllm-tp2pp2": ("vllm", "[2]", "[2]"),
}


def _commands(text: str) -> list[list[str]]:
    """Each command of a script, continuation lines joined, as shell words."""
    joined = text.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line and line[0] not in "#"]


def _flags(words: list[str]) -> set[str]:
    return {w for w in words if w.startswith("--")}


def _serve_commands(files: dict[str, str]) -> dict[int, list[list[str]]]:
    """node → its `vllm serve` commands."""
    out: dict[int, list[list[str]]] = {}
    for name, text in files.items():
        found = re.fullmatch(r"node(\d+)\.sh", name)
        if found:
            cmds = [w for w in _commands(text) if "vllm" in w and "serve" in w]
            out[int(found.group(1))] = cmds
    return out


def _env(words: list[str], key: str) -> str | None:
    for w in words[: words.index("vllm")]:
        if w.startswith(f"{key}="):
            return w.split("=", 1)[1]
    return None


def _value(words: list[str], flag: str) -> str:
    return words[words.index(flag) + 1]


@dataclasses.dataclass
class Planned:
    doc: dict[str, Any]  # `plan --format json`
    files: dict[str, str]  # the --launch folder
    folder: Path
    plan_json: Path


def _read(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def _plan(
    tmp: Path, case: str, extra: str = "", args: tuple[str, ...] = (), scenario: str = SCENARIO
) -> Planned:
    strategy, tp, pp = CASES[case]
    path = tmp / f"{case}.yaml"
    path.write_text(scenario + SEARCH % (strategy, tp, pp) + extra)
    folder = tmp / f"launch-{case}"
    res = runner.invoke(
        app,
        [
            "plan",
            str(path),
            "--no-sensitivity",
            "--out",
            str(tmp / f"{case}.md"),
            "--format",
            "json",
            "--launch",
            str(folder),
            *args,
        ],
    )
    assert res.exit_code == 0, res.output
    plan_json = tmp / f"{case}.json"
    plan_json.write_text(res.stdout)
    return Planned(json.loads(res.stdout), _read(folder), folder, plan_json)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Planned]:
    tmp = tmp_path_factory.mktemp("launch")
    return {case: _plan(tmp, case) for case in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_each_strategy_gets_its_launch_set(planned: dict[str, Planned], case: str) -> None:
    p = planned[case]
    dep = p.doc["winner"]["deployment"]
    assert dep["strategy"] == CASES[case][0]
    fudg = dep["family"] == "FuDG"
    nodes = _serve_commands(p.files)
    expected = {"README.md", "bench.sh", "instances.json", *(f"node{n}.sh" for n in nodes)}
    assert set(p.files) == expected | ({"proxy.sh"} if fudg else set())
    assert all(p.files[n].startswith("#!/usr/bin/env bash\n") for n in p.files if ".sh" in n)
    assert all((p.folder / n).stat().st_mode & 0o100 for n in p.files if n.endswith(".sh"))
    assert not [f for f in p.folder.iterdir() if f.name.startswith(".")], "temporary file left"
    described = json.loads(p.files["instances.json"])
    assert described["strategy"] == dep["strategy"]
    assert len(described["instances"]) == sum(len(c) for c in nodes.values())


@pytest.mark.parametrize("case", list(CASES))
def test_every_flag_is_a_real_vllm_flag(planned: dict[str, Planned], case: str) -> None:
    files = planned[case].files
    serve = [c for cmds in _serve_commands(files).values() for c in cmds]
    assert serve
    for words in serve:
        assert words[words.index("vllm") + 1] == "serve"
        assert _flags(words) <= VLLM_SERVE_FLAGS, _flags(words) - VLLM_SERVE_FLAGS
    bench = [w for w in _commands(files["bench.sh"]) if w[:3] == ["vllm", "bench", "serve"]]
    assert bench
    for words in bench:
        assert _flags(words) <= VLLM_BENCH_FLAGS, _flags(words) - VLLM_BENCH_FLAGS
    for words in _commands(files.get("proxy.sh", "")):
        if words[0] == "python3":
            script = Path(words[1]).name
            assert _flags(words) <= PROXY_FLAGS[script], _flags(words) - PROXY_FLAGS[script]


@pytest.mark.parametrize("case", list(CASES))
def test_gpus_and_ports_never_collide_and_cover_the_deployment(
    planned: dict[str, Planned], case: str
) -> None:
    p = planned[case]
    dep = p.doc["winner"]["deployment"]
    gpn = p.doc["scenario"]["cluster"]["gpus_per_node"]
    total = 0
    for cmds in _serve_commands(p.files).values():
        used: list[int] = []
        ports: list[str] = []
        side_ports: list[str] = []
        for words in cmds:
            gpus = [int(g) for g in str(_env(words, "CUDA_VISIBLE_DEVICES")).split(",")]
            tp = int(_value(words, "--tensor-parallel-size"))
            pp = int(_value(words, "--pipeline-parallel-size"))
            assert len(gpus) == tp * pp
            used += gpus
            ports.append(_value(words, "--port"))
            for key in ("VLLM_NIXL_SIDE_CHANNEL_PORT", "VLLM_MOONCAKE_BOOTSTRAP_PORT"):
                if _env(words, key) is not None:
                    side_ports.append(str(_env(words, key)))
        assert len(used) == len(set(used)), f"a GPU is assigned twice: {used}"
        assert all(0 <= g < gpn for g in used)
        assert len(ports) == len(set(ports)), f"a port is used twice: {ports}"
        assert len(side_ports) == len(set(side_ports))
        total += len(used)
    # the files start one unit of a replicated deployment (every unit runs them)
    assert total == dep["gpus"] // dep["replicas"]
    if dep["replicas"] > 1:
        assert p.files["README.md"].startswith("# Replicated deployment")
        assert json.loads(p.files["instances.json"])["replicas"] == dep["replicas"]


@pytest.mark.parametrize("case", list(CASES))
def test_commands_carry_the_plan(planned: dict[str, Planned], case: str) -> None:
    p = planned[case]
    scen, winner = p.doc["scenario"], p.doc["winner"]
    dep, engine = winner["deployment"], scen["engine"]
    strategy = dep["strategy"]
    described = {i["name"]: i for i in json.loads(p.files["instances.json"])["instances"]}
    for node, cmds in _serve_commands(p.files).items():
        assert len(cmds) == len([i for i in described.values() if i["node"] == node])
        for words in cmds:
            assert (
                words[words.index("serve") + 1]
                == scen["model"]["hf_id"]
                == "meta-llama/Llama-3.1-8B-Instruct"
            )
            assert _value(words, "--max-model-len") == str(engine["max_model_len"])
            assert _value(words, "--gpu-memory-utilization") == "0.9"
            seqs = int(_value(words, "--max-num-seqs"))
            tokens = int(_value(words, "--max-num-batched-tokens"))
            assert seqs == min(engine["max_num_seqs"], tokens)
            if strategy == "sarathi":
                assert tokens == dep["chunk_tokens"] and "--enable-chunked-prefill" in words
            else:
                assert tokens == engine["max_num_batched_tokens_unchunked"]
                assert tokens >= engine["max_model_len"]
            if strategy in ("vllm", "ecoserve"):
                assert "--no-enable-chunked-prefill" in words
            if strategy in CONNECTORS:
                config = json.loads(_value(words, "--kv-transfer-config"))
                assert config["kv_connector"] == CONNECTORS[strategy]
                port = _value(words, "--port")
                inst = next(
                    i for i in described.values() if i["node"] == node and str(i["port"]) == port
                )
                role = {"prefill": "kv_producer", "decode": "kv_consumer"}[inst["role"]]
                assert config["kv_role"] == role == inst["kv_role"]
            else:
                assert "--kv-transfer-config" not in words
            assert "--enforce-eager" not in words and "--disable-custom-all-reduce" not in words
    rates = [
        float(_value(w, "--request-rate"))
        for w in _commands(p.files["bench.sh"])
        if "--request-rate" in w
    ]
    # one unit's share of the rate
    assert sum(rates) == pytest.approx(winner["goodput_rps"] / dep["replicas"], rel=1e-3)
    assert "ttft:" in p.files["bench.sh"] and "tpot:" in p.files["bench.sh"]
    readme = p.files["README.md"]
    assert "vllm bench serve" in readme and "node0.sh" in readme


def test_fudg_proxies(planned: dict[str, Planned]) -> None:
    mooncake = _commands(planned["mooncake"].files["proxy.sh"])
    [proxy] = [w for w in mooncake if w[0] == "python3"]
    dep = planned["mooncake"].doc["winner"]["deployment"]
    assert proxy.count("--prefill") == dep["instances"]
    assert proxy.count("--decode") == dep["decode_instances"]
    distserve = planned["distserve"]
    proxies = [w for w in _commands(distserve.files["proxy.sh"]) if w[0] == "python3"]
    assert len(proxies) == len(_serve_commands(distserve.files))  # one per node
    for words in proxies:  # a node's proxy sends to that node's instances only
        hosts = words[words.index("--prefiller-hosts") + 1 : words.index("--prefiller-ports")]
        hosts += words[words.index("--decoder-hosts") + 1 : words.index("--decoder-ports")]
        assert len(set(hosts)) == 1


def test_ecoserve_description(planned: dict[str, Planned]) -> None:
    p = planned["ecoserve"]
    dep = p.doc["winner"]["deployment"]
    described = json.loads(p.files["instances.json"])
    macros = described["macro_instances"]
    assert len(macros) == dep["instances"] // dep["macro_size"]
    members = [name for m in macros for name in m["instances"]]
    assert sorted(members) == sorted(i["name"] for i in described["instances"])
    for m in macros:
        assert len(m["instances"]) == dep["macro_size"]
        assert sorted(m["activation_order"]) == sorted(m["instances"])
        assert m["window_s"] == pytest.approx(dep["window_s"])
    assert "EcoServe's" in p.files["README.md"] and "scheduler" in p.files["README.md"]
    assert "no upstream release" in p.files["README.md"]


def test_vllm_strategy_says_v1_has_no_prefill_priority(planned: dict[str, Planned]) -> None:
    readme = planned["vllm"].files["README.md"]
    assert "VLLM_USE_V1=0" in readme and "--no-enable-chunked-prefill" in readme


@pytest.mark.parametrize("case", ["mooncake", "ecoserve"])
def test_json_round_trip_gives_the_same_files(
    planned: dict[str, Planned], case: str, tmp_path: Path
) -> None:
    p = planned[case]
    res = runner.invoke(app, ["launch", str(p.plan_json), "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    assert _read(tmp_path / "again") == p.files


def test_strategy_option_round_trip(tmp_path: Path) -> None:
    """--launch-strategy on `plan` and --strategy on `launch` pick the same runner-up."""
    p = _plan(tmp_path, "sarathi", args=("--launch-strategy", "sarathi"))
    res = runner.invoke(
        app,
        ["launch", str(p.plan_json), "--out", str(tmp_path / "b"), "--strategy", "sarathi"],
    )
    assert res.exit_code == 0, res.output
    assert _read(tmp_path / "b") == p.files
    res = runner.invoke(app, ["launch", str(p.plan_json), "--strategy", "mooncake"])
    assert res.exit_code == 2 and "mooncake has no deployment" in res.output


def test_launch_json_is_documented(planned: dict[str, Planned], tmp_path: Path) -> None:
    p = planned["vllm"]
    res = runner.invoke(
        app, ["launch", str(p.plan_json), "--out", str(tmp_path / "l"), "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == "launch" and doc["hf_id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert not _undocumented(doc), _undocumented(doc)
    assert not _undocumented(p.doc), _undocumented(p.doc)
    assert [Path(f).name for f in doc["files"]] == sorted(p.files)


def test_engine_settings_become_flags(tmp_path: Path) -> None:
    extra = "engine: {name: vllm-v0, enforce_eager: true, disable_custom_all_reduce: true}\n"
    p = _plan(tmp_path, "vllm", extra)
    for cmds in _serve_commands(p.files).values():
        for words in cmds:
            assert "--enforce-eager" in words and "--disable-custom-all-reduce" in words
            assert _env(words, "VLLM_USE_V1") == "0"


@pytest.mark.parametrize("on", [True, False])
def test_prefix_caching_becomes_a_flag_with_a_shared_prefix(tmp_path: Path, on: bool) -> None:
    prefix = "workload: {preset: alpaca, prefix: {tokens: 16, share: 0.5}}"
    scen = SCENARIO.replace("workload: {preset: alpaca}", prefix)
    extra = f"engine: {{name: vllm-v1, enable_prefix_caching: {str(on).lower()}}}\n"
    p = _plan(tmp_path, "sarathi", extra, scenario=scen)
    flag = "--enable-prefix-caching" if on else "--no-enable-prefix-caching"
    for cmds in _serve_commands(p.files).values():
        for words in cmds:
            assert flag in words
            assert _flags(words) <= VLLM_SERVE_FLAGS
    assert flag in p.files["README.md"]


def test_no_prefix_caching_flag_without_a_shared_prefix(planned: dict[str, Planned]) -> None:
    for p in planned.values():
        for cmds in _serve_commands(p.files).values():
            for words in cmds:
                assert not _flags(words) & {"--enable-prefix-caching", "--no-enable-prefix-caching"}


def test_fp8_weights_and_kv_become_flags(planned: dict[str, Planned]) -> None:
    inp = launch_input_from_doc(planned["sarathi"].doc)
    files = launch_files(dataclasses.replace(inp, dtype="fp8", kv_dtype="fp8"))
    for cmds in _serve_commands(files).values():
        for words in cmds:
            assert _value(words, "--quantization") == "fp8"
            assert _value(words, "--kv-cache-dtype") == "fp8"


def test_missing_hf_id_uses_a_placeholder(planned: dict[str, Planned]) -> None:
    inp = launch_input_from_doc(planned["distserve"].doc)
    files = launch_files(dataclasses.replace(inp, hf_id=None))
    for cmds in _serve_commands(files).values():
        for words in cmds:
            assert words[words.index("serve") + 1] == PLACEHOLDER
    assert f"'{PLACEHOLDER}'" in files["node0.sh"]  # quoted: < is a shell redirection
    assert "placeholder" in files["README.md"]


def test_bad_inputs_are_one_line(planned: dict[str, Planned], tmp_path: Path) -> None:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    plan_json = str(planned["vllm"].plan_json)
    cases = [
        (["launch", plan_json, "--out", str(a_file)], "--out"),
        (["launch", str(a_file)], "not valid JSON"),
        (["launch", str(tmp_path / "none.json")], "not found"),
        (["launch", plan_json, "--strategy", "nope"], "unknown strategy"),
        (["plan", "--launch-strategy", "vllm"], "needs --launch"),
        (["plan", "--launch", str(a_file), "--out", str(tmp_path / "r.md")], "--launch"),
    ]
    for args, needle in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.strip().splitlines()[-1].startswith("error:"), res.output
        assert needle in res.output, (needle, res.output)
    old = dict(planned["vllm"].doc)
    old["scenario"] = {**old["scenario"], "engine": {"name": "vllm-v1"}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    res = runner.invoke(app, ["launch", str(tmp_path / "old.json")])
    assert res.exit_code == 2 and "write the plan again" in res.output


def test_edited_replicas_must_fit_the_cluster(planned: dict[str, Planned], tmp_path: Path) -> None:
    """An edited plan whose replicas × nodes per unit exceed the cluster's nodes is refused in
    one line naming deployment.replicas and both node counts, before any file is written; as
    many units as the cluster holds are accepted."""
    doc = json.loads(json.dumps(planned["vllm"].doc))
    dep, cluster = doc["winner"]["deployment"], doc["scenario"]["cluster"]
    dep["instances"] = cluster["gpus_per_node"] // (dep["tp"] * dep["pp"])  # a unit of 1 node
    for replicas, ok in ((cluster["nodes"], True), (cluster["nodes"] + 1, False)):
        dep["replicas"] = replicas
        path, out = tmp_path / f"r{replicas}.json", tmp_path / f"launch-r{replicas}"
        path.write_text(json.dumps(doc))
        res = runner.invoke(app, ["launch", str(path), "--out", str(out)])
        if ok:
            assert res.exit_code == 0, res.output
            assert json.loads((out / "instances.json").read_text())["replicas"] == replicas
            continue
        assert res.exit_code == 2, res.output
        assert res.stdout == "" and "Traceback" not in res.output
        assert res.stderr.strip() == (
            f"error: {path}: deployment.replicas: {replicas} units of 1 node need {replicas} "
            f"nodes, the cluster has {cluster['nodes']} (cluster.nodes)"
        )
        assert not out.exists()
        with pytest.raises(PlannerError, match=r"deployment\.replicas: "):
            launch_input_from_doc(doc)


def test_help_example_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = runner.invoke(app, ["launch", "--help"], env={"COLUMNS": "200"})
    found = re.search(r"Example: (ecoplan [^\n]+)", res.output)
    assert found
    plan_part, launch_part = found.group(1).split("&&")
    args, target = plan_part.split(">")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, shlex.split(args)[1:])
    assert res.exit_code == 0, res.output
    Path(target.strip()).write_text(res.stdout)
    res = runner.invoke(app, shlex.split(launch_part)[1:])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "launch" / "README.md").exists()


def test_hf_id_from_name_or_path(tmp_path: Path) -> None:
    assert hf_repo_id("meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"
    for local in ("/models/llama", "./llama", "~/m/llama", "llama", "a/b/c", "../x", None, 3):
        assert hf_repo_id(local) is None, local
    cfg = json.loads((Path(__file__).parent / "data" / "llama-3.1-8b" / "config.json").read_text())
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(
        json.dumps({**cfg, "_name_or_path": "meta-llama/Llama-3.1-8B"})
    )
    assert catalog.load_hf_config(tmp_path / "m" / "config.json").hf_id == "meta-llama/Llama-3.1-8B"
    shipped = ["codellama-34b", "llama-2-70b", "llama-3.1-70b", "llama-3.1-8b", "llama-30b"]
    shipped += ["mixtral-8x7b", "qwen2-72b", "qwen2.5-32b", "qwen3-32b"]
    for name in shipped:  # the profiles name their weights
        assert hf_repo_id(catalog.load_model(name).hf_id), name


def test_instances_spanning_nodes_run_on_ray(tmp_path: Path) -> None:
    """TP2·PP2 on 2-GPU nodes: each instance spans two nodes; the first node starts a Ray head
    and `vllm serve` on the Ray backend once the cluster has its 4 GPUs, the second joins."""
    path = tmp_path / "span.yaml"
    path.write_text(
        "cluster: {gpu: l20, nodes: 2, gpus_per_node: 2, network: {bandwidth_gbit: 25}}\n"
        "model: llama-3.1-8b\nworkload: {preset: alpaca}\n"
        "search: {strategies: [vllm], tp: [2], pp: [2]}\n"
    )
    folder = tmp_path / "launch"
    args = ["plan", str(path), "--no-sensitivity", "--out", str(tmp_path / "r.md")]
    res = runner.invoke(app, [*args, "--format", "json", "--launch", str(folder)])
    assert res.exit_code == 0, res.output
    dep = json.loads(res.stdout)["winner"]["deployment"]
    assert (dep["tp"], dep["pp"], dep["replicas"], dep["instances"]) == (2, 2, 1, 1)
    files = _read(folder)
    assert sorted(n for n in files if n.startswith("node")) == ["node0.sh", "node1.sh"]
    [serve] = _serve_commands(files)[0]
    assert _value(serve, "--distributed-executor-backend") == "ray"
    assert _value(serve, "--pipeline-parallel-size") == "2"
    assert _env(serve, "CUDA_VISIBLE_DEVICES") is None  # Ray owns both nodes' GPUs
    assert _flags(serve) <= VLLM_SERVE_FLAGS
    head = _commands(files["node0.sh"])
    assert ["ray", "start", "--head", "--port=6379"] in head
    assert head.index(["ray", "start", "--head", "--port=6379"]) < head.index(serve)
    assert any(
        w[:3] == ["ray", "start", "--address=node0:6379"] for w in _commands(files["node1.sh"])
    )
    assert _serve_commands(files)[1] == []
    inst = json.loads(files["instances.json"])
    assert inst["replicas"] == 1 and len(inst["instances"]) == 1

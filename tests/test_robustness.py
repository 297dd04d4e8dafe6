"""Bad input never produces a traceback or a partial file; every --help example works."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli import app
from planner.config import load_plan
from planner.errors import PlannerError

from .conftest import EXAMPLES, REPO

runner = CliRunner()

BASE = (EXAMPLES / "small-model-llama-3.1-8b-alpaca.yaml").read_text()
MINIMAL = """cluster: {gpu: l20, nodes: 1, gpus_per_node: 2, network: {bandwidth_gbit: 25}}
model: llama-3.1-8b
workload:
  input: {kind: lognormal, mean: 300, sigma: 0.8}
  output: {kind: fixed, mean: 64}
  arrivals: {process: gamma, cv: 1.5}
slo: {ttft_s: 2, tpot_s: 0.08, attainment: 90}
search: {tp: [1], pp: [1], strategies: [vllm, ecoserve]}
"""
NASTY = [
    "-1",
    "0",
    ".nan",
    ".inf",
    "-.inf",
    "1e300",
    "abc",
    "[]",
    "{}",
    "null",
    "true",
    "101",
    "3.5",
    "",
    "{mean: -5}",
]


def _mutations() -> st.SearchStrategy[str]:
    """Plan-file text with one mutation: a number replaced by a nasty value, a character
    deleted or inserted, an unknown key added, or a line dropped."""
    base = st.sampled_from([BASE, MINIMAL])

    def replace_number(text: str, data: st.DataObject) -> str:
        spots = [m.span() for m in re.finditer(r"(?<![\w.])\d+(\.\d+)?", text)]
        a, b = data.draw(st.sampled_from(spots))
        return text[:a] + data.draw(st.sampled_from(NASTY)) + text[b:]

    def edit_char(text: str, data: st.DataObject) -> str:
        i = data.draw(st.integers(0, len(text) - 1))
        if data.draw(st.booleans()):
            return text[:i] + text[i + 1 :]
        return text[:i] + data.draw(st.sampled_from(list(":{}[],-'\"\t#&*!|>"))) + text[i:]

    def add_key(text: str, data: st.DataObject) -> str:
        key = data.draw(st.sampled_from(["clustr", "slo_target", "modle", "nodes", "rate"]))
        return text + f"{key}: 3\n"

    def drop_line(text: str, data: st.DataObject) -> str:
        lines = text.splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        return "\n".join(lines[:i] + lines[i + 1 :]) + "\n"

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        text = draw(base)
        op = draw(st.sampled_from([replace_number, edit_char, add_key, drop_line]))
        return op(text, draw(st.data()))

    return mutate()


def _tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mutations())
def test_loader_fuzz_only_planner_errors(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The loader either returns a plan or raises a one-line PlannerError."""
    path = tmp_path_factory.mktemp("fuzz") / "plan.yaml"
    path.write_text(text)
    try:
        plan = load_plan(path)
        plan.scenario(path.parent)
    except PlannerError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.strip() and "Traceback" not in msg


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mutations())
def test_cli_fuzz_no_traceback_no_partial_file(
    text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "plan.yaml"
    path.write_text(text)
    out = folder / "report.md"
    res = runner.invoke(app, ["plan", str(path), "--out", str(out), "--format", "json"])
    assert res.exit_code in (0, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    if res.exit_code == 2 and not out.exists():
        assert res.output.strip().splitlines()[-1].startswith("error:")
    if res.exit_code == 0:
        json.loads(res.stdout)
        assert out.read_text().startswith("# ecoplan capacity report")
    assert _tmp_files(folder) == []  # no leftover temp files from the atomic write


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "cluster: {gpu: l20, nodes: 1, gpus_per_node: 8, network: {bandwidth_gbit: .nan}}",
            "cluster.network.bandwidth_gbit",
        ),
        ("slo: {attainment: 100}", "slo.attainment"),
        ("ramp: {rates: [20, -5]}", "ramp.rates"),
        ("kv: {policy: lazy}", "kv.policy"),
        ("slo: {attainment: 0}", "slo.attainment"),
        ("search: {tp: [3]}\nmodel: llama-3.1-8b", "tp"),
        (
            "cluster: {gpu: l20, nodes: 1, gpus_per_node: 1, network: {bandwidth_gbit: 10}}\n"
            "model: qwen2-72b\nsearch: {tp: [1]}",
            "qwen2-72b",
        ),
        (
            "workload: {input: {kind: empirical, file: missing.txt}, "
            "output: {kind: fixed, mean: 5}}",
            "missing.txt",
        ),
    ],
)
def test_bad_values_one_line(text: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    res = runner.invoke(app, ["plan", str(path), "--out", str(tmp_path / "r.md")])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert any(needle in line for line in lines), res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r.md").exists()


def test_empty_length_file_is_clear(tmp_path: Path) -> None:
    (tmp_path / "lens.txt").write_text("")
    path = tmp_path / "plan.yaml"
    path.write_text(
        "workload: {input: {kind: empirical, file: lens.txt}, output: {kind: fixed, mean: 5}}"
    )
    res = runner.invoke(app, ["evaluate", str(path)])
    assert res.exit_code == 2 and "empty" in res.output


def _help_examples() -> list[tuple[str, str]]:
    cmds = [["estimate"], ["profiles", "list"], ["profiles", "show"], ["evaluate"], ["plan"]]
    cmds += [["simulate"], ["scale"], ["schema"], ["model", "import"], ["compare"]]
    cmds += [["launch"]]
    out = []
    for cmd in cmds:
        res = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0
        found = re.search(r"Example: (ecoplan [^\n]+)", res.output)
        assert found, f"{' '.join(cmd)} --help has no example"
        out.append((" ".join(cmd), found.group(1).strip()))
    return out


@pytest.mark.parametrize(("cmd", "example"), _help_examples(), ids=lambda x: str(x))
def test_help_example_runs(
    cmd: str, example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command's --help shows an example, and the example works as written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    qwen = tmp_path / "Qwen3-32B"
    qwen.mkdir()
    (qwen / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": 5120,
                "num_attention_heads": 64,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "num_hidden_layers": 64,
                "intermediate_size": 25600,
                "vocab_size": 151936,
                "max_position_embeddings": 40960,
                "model_type": "qwen3",
            }
        )
    )
    args = shlex.split(example.split(">")[0])[1:]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, f"{example}: {res.output}"


def test_readme_plan_file_example_is_valid(tmp_path: Path) -> None:
    """The README's annotated plan file loads and builds a scenario."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Plan file.*?```yaml\n(.*?)```", text, re.S)
    assert block, "README has no plan-file example"
    path = tmp_path / "plan.yaml"
    path.write_text(block.group(1))
    plan = load_plan(path)
    scen = plan.scenario(tmp_path)
    assert scen.cluster.total_gpus == 32 and len(plan.deployments) == 4


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"12 0 7", ">= 1"), (b"12 abc", "numbers only"), (b"\xff\xfe\x00", "cannot read")],
)
def test_bad_length_file_is_clear(content: bytes, needle: str, tmp_path: Path) -> None:
    (tmp_path / "lens.txt").write_bytes(content)
    path = tmp_path / "plan.yaml"
    path.write_text(
        "workload: {input: {kind: empirical, file: lens.txt}, output: {kind: fixed, mean: 5}}"
    )
    res = runner.invoke(app, ["evaluate", str(path)])
    assert res.exit_code == 2 and needle in res.output, res.output
    assert "Traceback" not in res.output


def test_huge_length_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner import workload

    monkeypatch.setattr(workload, "MAX_LENGTH_FILE_BYTES", 1000)
    (tmp_path / "lens.txt").write_text(
        " ".join(["512"] * 400)
    )  # 400 × 3 digits + 399 spaces = 1,599 bytes
    path = tmp_path / "plan.yaml"
    path.write_text(
        "workload: {input: {kind: empirical, file: lens.txt}, output: {kind: fixed, mean: 5}}"
    )
    res = runner.invoke(app, ["evaluate", str(path)])
    assert res.exit_code == 2
    assert "1,599 bytes, over the 1,000-byte limit" in res.output, res.output


# ---- issue 14.4: hostile values that once crashed ----------------------------------------------

TINY = "cluster: {gpu: l20, nodes: 1, gpus_per_node: 2}\nmodel: llama-3.1-8b\n"
INLINE_MODEL = (
    "model: {name: m, num_layers: 2, hidden_size: 64, num_kv_heads: 1, "
    "head_dim: 8, intermediate_size: 128, vocab_size: 100%s}\n"
)


@pytest.mark.parametrize(
    ("text", "command", "needle"),
    [
        (
            "cluster: {network: {bandwidth_gbit: 1e300}}",
            "plan",
            "cluster.network.bandwidth_gbit: must be at most 1000000, got 1e300",
        ),
        ("slo: {ttft_s: 1e308}", "evaluate", "slo.ttft_s: must be at most 86400"),
        ("slo: {ttft_s: 1.0e+308, tpot_s: 1.0e+308}", "evaluate", "slo.ttft_s"),
        ("cluster: {price_per_gpu_hour: 1e308}", "plan", "cluster.price_per_gpu_hour"),
        ("slo: {tpot_s: 1e-300}", "evaluate", "slo.tpot_s: must be at least 1e-06"),
        ("search: {tp: [100000000000000000000]}", "plan", "search.tp[0]: must be at most 1024"),
        ("search: {chunk_tokens: [1e30]}", "plan", "search.chunk_tokens[0]"),
        ("search: {macro_sizes: [0]}", "plan", "search.macro_sizes[0]: must be at least 1"),
        ("search: {window_fractions: [.inf]}", "plan", "search.window_fractions"),
        ("deployments: [{strategy: vllm, instances: 1e30}]", "evaluate", "deployments[0]"),
        ("ramp: {rates: [1.0e+300]}", "scale", "ramp.rates"),
        ("ramp: {macro_max: 100000000000000000000}", "scale", "ramp.macro_max"),
        ("kv: {max_output_tokens: 100000000000000000000}", "evaluate", "kv.max_output_tokens"),
        (
            "workload: {input: {kind: lognormal, mean: 1.0e+300, sigma: 1}, "
            "output: {kind: fixed, mean: 9}}",
            "evaluate",
            "workload.input.mean: must be at most 16777216",
        ),
        (
            "workload: {input: {kind: lognormal, median: 1, p90: 16000000}, "
            "output: {kind: fixed, mean: 9, min: 100000000000000000000}}",
            "evaluate",
            "workload.output.min",
        ),
        ("rates: [1, .nan]", "evaluate", "rates"),
        (INLINE_MODEL % ", num_heads: 0", "evaluate", "model.num_heads: must be at least 1"),
        (INLINE_MODEL % ", num_heads: 8, max_context: zero", "evaluate", "model.max_context"),
        (
            INLINE_MODEL % ", num_heads: 8, num_layrs: 3",
            "evaluate",
            "model.num_layrs: unknown key (did you mean 'num_layers'?)",
        ),
        ("model: {profile: 3}", "evaluate", "model.profile: Input should be a valid string"),
        ("model: {hf_config: cfg.json, dtype: fp4}", "evaluate", "model.dtype"),
        ("model: [1, 2]", "evaluate", "model: expected a model profile name"),
        ("cluster: {gpu: {name: g, memory_gib: 0}}", "evaluate", "cluster.gpu.memory_gib"),
        (
            "cluster: {gpu: {nam: g}}",
            "evaluate",
            "cluster.gpu.nam: unknown key (did you mean 'name'?)",
        ),
        ("cluster: {gpu: 7}", "evaluate", "cluster.gpu: expected a GPU profile name"),
    ],
)
def test_hostile_values_are_one_line_errors(
    text: str, command: str, needle: str, tmp_path: Path
) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    args = [command, str(path)]
    if command == "plan":
        args += ["--no-sensitivity", "--out", str(tmp_path / "r.md")]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and len(res.stderr) < 300, res.stderr
    assert needle in res.stderr, res.stderr


def test_duplicate_yaml_keys_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("cluster:\n  nodes: 1\n  gpus_per_node: 2\n  nodes: 4\n")
    res = runner.invoke(app, ["evaluate", str(path)])
    assert res.exit_code == 2
    assert "plan.yaml:4:3: duplicate key 'nodes' (first given on line 2)" in res.stderr


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "base: &b {nodes: 1, gpus_per_node: 2, network: {bandwidth_gbit: 25}}\n"
        "cluster: {<<: *b, nodes: 2}\n".replace("base:", "x-base:")
    )
    with pytest.raises(PlannerError, match="x-base: unknown key"):
        load_plan(path)  # the merge itself is accepted; only the extra top-level key is not


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ('"num_attention_heads": 0', "num_attention_heads must be an integer 1..65,536, got 0"),
        ('"hidden_size": 1e400', "hidden_size must be an integer 1..1,048,576, got inf"),
        ('"hidden_size": NaN', "hidden_size must be an integer"),
        ('"num_hidden_layers": 1e30', "num_hidden_layers must be an integer 1..10,000"),
        ('"vocab_size": "many"', "vocab_size must be an integer"),
        ('"num_key_value_heads": 3', "must be a multiple of num_key_value_heads (3)"),
        ('"max_position_embeddings": 99999999999', "max_position_embeddings"),
    ],
)
def test_hostile_hf_config(config: str, needle: str, tmp_path: Path) -> None:
    base = {
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "intermediate_size": 11008,
        "vocab_size": 32000,
    }
    key = config.split(":")[0].strip('"')
    text = json.dumps({k: x for k, x in base.items() if k != key})[:-1] + ", " + config + "}"
    cfg = tmp_path / "config.json"
    cfg.write_text(text)
    res = runner.invoke(app, ["model", "import", str(cfg), "--out", str(tmp_path / "m.yaml")])
    assert res.exit_code == 2 and needle in res.stderr, res.output
    plan = tmp_path / "plan.yaml"
    plan.write_text("model: {hf_config: config.json}\n")
    res = runner.invoke(app, ["evaluate", str(plan)])
    assert res.exit_code == 2 and "model.hf_config: " in res.stderr and needle in res.stderr


def test_simulation_memory_is_bounded_before_allocating() -> None:
    res = runner.invoke(app, ["simulate", "--rate", "1e9"])
    assert res.exit_code == 2
    assert "--rate" in res.stderr and "--requests" in res.stderr and "MiB limit" in res.stderr
    assert len(res.stderr) < 400, res.stderr


def test_tiny_slo_message_is_short(tmp_path: Path) -> None:
    """An SLO no deployment can meet is reported in a short line (numbers %g-style)."""
    path = tmp_path / "plan.yaml"
    path.write_text(TINY + "slo: {ttft_s: 1.0e-6, tpot_s: 1.0e-6}\nsearch: {tp: [1], pp: [1]}\n")
    res = runner.invoke(
        app, ["plan", str(path), "--no-sensitivity", "--out", str(tmp_path / "r.md")]
    )
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: no deployment meets the SLO")
    assert len(res.stderr) < 600, res.stderr


def test_goodput_search_treats_nan_attainment_as_failing() -> None:
    from planner.rootfind import highest_passing_rate

    rate = highest_passing_rate(lambda r: 0.5 if r < 7.0 else math.nan, floor=1.0, guess=2.0)
    assert 6.9 < rate < 7.0
    assert highest_passing_rate(lambda r: math.nan, floor=1.0) == 0.0

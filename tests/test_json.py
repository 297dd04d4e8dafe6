"""`--format json` of every command: one versioned object, the fields other tools rely on,
values equal to the library's, and every key documented in docs/json.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app
from planner.perf import InstancePerf
from planner.report.json_doc import SCHEMA_VERSION

from .conftest import EXAMPLES, REPO

runner = CliRunner()
SMALL = str(EXAMPLES / "small-model-llama-3.1-8b-alpaca.yaml")
HF_CONFIG = REPO / "tests" / "data" / "llama-3.1-8b" / "config.json"
DOCUMENTED = set(re.findall(r"`([a-z0-9_]+)`", (REPO / "docs" / "json.md").read_text()))
# dicts whose keys are data (strategy names, resources, profile fields), not schema
DATA_KEYED = {"per_strategy", "infeasible", "utilisation", "profile", "peak_tflops", "derived"}


def _run(args: list[str]) -> dict[str, Any]:
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == SCHEMA_VERSION
    return doc


def _undocumented(o: Any, parent: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(o, dict):
        for k, v in o.items():
            if parent in DATA_KEYED or (parent == "rows" and isinstance(v, list)):
                continue
            if k not in DOCUMENTED:
                out.add(k)
            out |= _undocumented(v, k)
    elif isinstance(o, list):
        for v in o:
            out |= _undocumented(v, parent)
    return out


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("json")
    return {
        "plan": _run(["plan", SMALL, "--out", str(tmp / "r.md")]),
        "evaluate": _run(["evaluate", SMALL]),
        "simulate": _run(["simulate", SMALL, "--rate", "5", "--requests", "200"]),
        "scale": _run(["scale", SMALL]),
        "estimate": _run(["estimate", "--tp", "1,2", "--batch", "1,16", "--context", "4096"]),
        "profiles list": _run(["profiles", "list"]),
        "profiles show": _run(["profiles", "show", "l20"]),
        "profiles show model": _run(["profiles", "show", "llama-3.1-8b"]),
        "model import": _run(["model", "import", str(HF_CONFIG), "--out", str(tmp / "m.yaml")]),
    }


def test_every_command_is_versioned_and_documented(docs: dict[str, dict[str, Any]]) -> None:
    for name, doc in docs.items():
        assert doc["command"] == name.removesuffix(" model")
        assert not _undocumented(doc), (name, _undocumented(doc))


def test_plan_json(docs: dict[str, dict[str, Any]]) -> None:
    d = docs["plan"]
    assert d["winner"]["goodput_per_gpu_rps"] > 0
    assert d["winner"]["deployment"]["gpus"] <= d["scenario"]["cluster"]["total_gpus"]
    assert {t["title"] for t in d["sensitivity"]} and d["scaling"]["strategies"]
    assert d["files"][0].endswith("r.md")
    assert d["simulation_check"] is None  # no --confirm
    paper = d["ecoserve_paper"]
    assert paper["winner"] == d["winner"]["deployment"]["strategy"]
    assert set(paper["strategies"]) == set(d["per_strategy"])


def test_simulate_json_has_latency_summaries(docs: dict[str, dict[str, Any]]) -> None:
    runs = docs["simulate"]["runs"]
    assert len(runs) == 5  # one per strategy at one rate
    for r in runs:
        for metric in ("ttft_s", "tpot_s", "e2e_s"):
            s = r[metric]
            assert set(s) == {"mean", "p50", "p90", "p99"}
            assert s["p50"] <= s["p90"] <= s["p99"]
        assert r["e2e_s"]["p50"] >= r["ttft_s"]["p50"]
        assert 0 <= r["attainment"] <= 1 and r["preemptions"] >= 0
        assert r["mean_decode_batch"] > 0


def test_estimate_json_rows_match_the_roofline(docs: dict[str, dict[str, Any]]) -> None:
    d = docs["estimate"]
    rows = d["rows"]
    assert [(r["tp"], r["batch"]) for r in rows] == [(1, 1), (1, 16), (2, 1), (2, 16)]
    model, gpu = catalog.load_model("codellama-34b"), catalog.load_gpu("l20")
    for r in rows:
        assert r["input_tokens"] == 2048 and r["context_tokens"] == 4096
        if r["tp"] == 1:  # 34B in BF16 does not fit one 48 GB GPU
            assert r["prefill_ms"] is None and "fit" in r["error"]
            continue
        perf = InstancePerf(model, gpu, gpu.intra_node, r["tp"], 1)
        prefill = float(perf.prefill(2048, r["batch"]).total_s) * 1e3
        decode = float(perf.decode_step(r["batch"], 4096).total_s) * 1e3
        assert r["prefill_ms"] == pytest.approx(prefill, rel=1e-12)
        assert r["decode_step_ms"] == pytest.approx(decode, rel=1e-12)
        b = r["decode_breakdown"]
        assert sum(b.values()) == pytest.approx(r["decode_step_ms"])


def test_model_import_json(docs: dict[str, dict[str, Any]]) -> None:
    d = docs["model import"]
    # Llama-3.1-8B: 8.03 B parameters (its model card), GQA 8 KV heads × 128 × 32 layers × 2
    # (K and V) × 2 bytes = 128 KiB per token
    assert d["params_total"] == pytest.approx(8.03e9, rel=2e-3)
    assert d["kv_bytes_per_token"] == 32 * 2 * 8 * 128 * 2
    assert d["weight_bytes"] == 2 * d["params_total"]
    assert d["params_active"] < d["params_total"]
    assert Path(d["path"]).exists()


def test_estimate_grid_needs_one_runnable_row() -> None:
    res = runner.invoke(app, ["estimate", "--model", "qwen2-72b", "--tp", "1,2"])
    assert res.exit_code == 2 and "no combination runs" in res.output


@pytest.mark.parametrize("bad", ["0", "1,,2", "x", "-4"])
def test_estimate_list_options_are_validated(bad: str) -> None:
    res = runner.invoke(app, ["estimate", "--batch", bad])
    assert res.exit_code == 2 and "--batch" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_estimate_takes_profile_files(tmp_path: Path) -> None:
    gpu = tmp_path / "my-gpu.yaml"
    faster = catalog.load_gpu("l20").model_copy(update={"name": "l20-2x"})
    faster = faster.model_copy(update={"memory_bandwidth_gb_s": 2 * 864.0})
    gpu.write_text(json.dumps(faster.model_dump(mode="json")))  # JSON is YAML
    base = _run(["estimate", "--batch", "1"])["rows"][0]
    fast = _run(["estimate", "--batch", "1", "--gpu", str(gpu)])["rows"][0]
    assert fast["decode_step_ms"] < base["decode_step_ms"]  # decode at batch 1 is memory bound


def test_tables_do_not_wrap_when_piped() -> None:
    """CliRunner's stdout is not a terminal: every table row is one line (a wrapped row would
    leave a continuation line whose first cell is blank)."""
    res = runner.invoke(app, ["evaluate", SMALL])
    assert res.exit_code == 0
    rows = [ln for ln in res.output.splitlines() if ln.startswith("│")]
    assert rows and all(ln.split("│")[1].strip() for ln in rows)

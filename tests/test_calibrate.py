"""`ecoplan calibrate`: a profile with every fittable parameter changed is recovered from its own
predictions, the written profile loads and estimates, bad CSVs are refused in one line naming
the row and column, and parameters the rows cannot identify keep their base values."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app
from planner.config import load_plan
from planner.engine import load_engine
from planner.errors import PlannerError
from planner.hardware import GPU
from planner.perf import calibrate as cal_lib
from planner.perf.calibrate import COLUMNS, Calibration, calibrate, parse_measurements

from .conftest import REPO
from .test_json import _undocumented

runner = CliRunner()
BASE = "a100-80g-sxm"
SAMPLE = REPO / "tests" / "data" / "calibration" / "a100.csv"
HEADER = ",".join(COLUMNS)
ENGINE = load_engine("vllm-v1")
Row = tuple[str, str, int, int, int, str, str]


def _design() -> list[Row]:
    """Two models (different widths and depths), TP 1/2/4, both phases: prefill batches of 1–64
    prompts of 128–4096 tokens, decode steps of 1–64 sequences at 128–4096 tokens of context."""
    rows: list[Row] = []
    for model in ("llama-3.1-8b", "qwen2.5-32b"):
        for tp in (1, 2, 4):
            for b, i in [(1, 128), (1, 1024), (1, 4096), (4, 512), (8, 2048), (16, 256)]:
                rows.append((model, "prefill", tp, 1, b, str(i), ""))
            for b, i in [(32, 128), (64, 1024)]:
                rows.append((model, "prefill", tp, 1, b, str(i), ""))
            for b, c in [(1, 128), (1, 4096), (8, 1024), (16, 4096), (32, 128), (64, 512)]:
                rows.append((model, "decode", tp, 1, b, "", str(c)))
            rows.append((model, "decode", tp, 1, 64, "", "4096"))
    return rows


def _truth(base: GPU) -> dict[str, float]:
    """Every fittable parameter of `base`, changed by a known factor (or set: the overhead)."""
    link = base.intra_node
    assert link.custom_allreduce_latency_us is not None
    truth = {
        "gemm.plateau": base.gemm.plateau * 0.8,
        "gemm.knee_tokens": base.gemm.knee_tokens * 1.5,
        "attention.prefill_plateau": base.attention.prefill_plateau * 0.9,
        "attention.prefill_knee_tokens": base.attention.prefill_knee_tokens * 1.3,
        "memory_efficiency.weights": base.memory_efficiency["weights"] * 0.9,
        "memory_efficiency.kv_cache": base.memory_efficiency["kv_cache"] * 0.9,
        "kernel_fixed_us": base.kernel_fixed_us * 0.7,
        "iteration_overhead_ms": 1.3,
        "intra_node.custom_allreduce_latency_us": link.custom_allreduce_latency_us * 2,
    }
    for g in (2, 4):
        truth[f"intra_node.allreduce_latency_us.{g}"] = link.allreduce_latency_us[g] * 2
        bw = link.allreduce_bus_bandwidth_gb_s[g] * 0.7
        truth[f"intra_node.allreduce_bus_bandwidth_gb_s.{g}"] = bw
    return truth


def _csv(rows: list[Row], latency_ms: list[float] | None = None) -> str:
    times = latency_ms or [1.0] * len(rows)
    lines = [HEADER] + [
        ",".join([*map(str, r), f"{t:.9g}"]) for r, t in zip(rows, times, strict=True)
    ]
    return "\n".join(lines) + "\n"


def _measured(gpu: GPU, rows: list[Row]) -> str:
    """The CSV of `rows` with the latencies the phase model predicts on `gpu`."""
    times = cal_lib.predict(gpu, ENGINE, parse_measurements(_csv(rows)))
    return _csv(rows, [t * 1e3 for t in times])


@pytest.fixture(scope="module")
def base() -> GPU:
    return catalog.load_gpu(BASE)


@pytest.fixture(scope="module")
def synthetic_csv(base: GPU) -> str:
    return _measured(cal_lib.with_parameters(base, _truth(base)), _design())


@pytest.fixture(scope="module")
def round_trip(base: GPU, synthetic_csv: str) -> Calibration:
    return calibrate(parse_measurements(synthetic_csv), base, ENGINE, source="synthetic.csv")


def test_round_trip_recovers_every_parameter(base: GPU, round_trip: Calibration) -> None:
    truth = _truth(base)
    assert {p.name for p in round_trip.fitted} == set(truth), [
        (p.name, p.reason) for p in round_trip.kept
    ]
    for name, true in truth.items():
        p = round_trip.parameter(name)
        assert p.value == pytest.approx(true, rel=0.02), (name, p.value, true)
        assert p.base == pytest.approx(cal_lib.parameter_value(base, ENGINE, name))
        assert not p.at_bound
    assert round_trip.overall.max_abs < 1e-3  # 4-digit rounding of the written values
    assert round_trip.overall.base_median_abs > 0.1  # the changes were not small
    assert [s.key for s in round_trip.by_phase] == ["prefill", "decode"]
    assert [s.key for s in round_trip.by_tp] == [1, 2, 4]
    assert len(round_trip.rows) == len(_design())


def test_profile_sources_and_yaml(round_trip: Calibration, tmp_path: Path) -> None:
    gpu = round_trip.gpu
    assert gpu.name == f"{BASE}-calibrated"
    note = gpu.sources["gemm.plateau"]
    assert re.fullmatch(
        r"calibrated by ecoplan calibrate from synthetic\.csv, \d+ rows, median \|error\| "
        r"\d+\.\d%",
        note,
    )
    assert all(gpu.sources[p.name] == note for p in round_trip.fitted)
    assert "gemm" not in gpu.sources  # the base's note on the GEMM curve no longer applies
    assert "attention" in gpu.sources  # decode_per_sequence_head_us is still the base's
    path = tmp_path / "gpu.yaml"
    path.write_text(cal_lib.profile_yaml(gpu))
    assert catalog.gpu_ref(str(path)) == gpu
    assert "gemm: {plateau:" in path.read_text()  # the shipped profiles' flow style


def test_cli_writes_a_usable_profile(synthetic_csv: str, tmp_path: Path) -> None:
    csv = tmp_path / "measured.csv"
    csv.write_text(synthetic_csv)
    out = tmp_path / "my-a100.yaml"
    args = ["calibrate", str(csv), "--gpu", BASE, "--out", str(out), "--name", "my-a100"]
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    assert doc["command"] == "calibrate" and doc["gpu"] == "my-a100"
    assert not _undocumented(doc), _undocumented(doc)
    assert doc["fit_error"]["median_abs_error"] < 1e-3
    assert {e["tp"] for e in doc["by_tp"]} == {1, 2, 4}
    assert len(doc["predictions"]) == len(_design())
    gpu = catalog.gpu_ref(str(out))
    assert gpu.name == "my-a100"
    assert "from measured.csv" in gpu.sources["kernel_fixed_us"]
    est = runner.invoke(app, ["estimate", "--gpu", str(out), "--model", "llama-3.1-8b"])
    assert est.exit_code == 0, est.output
    plan = tmp_path / "plan.yaml"
    plan.write_text("cluster: {gpu: my-a100.yaml, nodes: 1, gpus_per_node: 8}\n")
    assert load_plan(plan).scenario(tmp_path).cluster.gpu == gpu
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "median calibrated" in table.output


def test_decode_only_keeps_gemm_compute_parameters(base: GPU, synthetic_csv: str) -> None:
    lines = synthetic_csv.splitlines()
    decode = "\n".join([lines[0], *(ln for ln in lines[1:] if ",decode," in ln)])
    cal = calibrate(parse_measurements(decode), base, ENGINE)
    for name in ("gemm.plateau", "gemm.knee_tokens", "attention.prefill_plateau"):
        p = cal.parameter(name)
        assert p.kept and p.value == p.base and "decode-only" in p.reason
    assert cal.gpu.gemm == base.gemm
    assert "gemm.plateau" not in cal.gpu.sources
    assert cal.parameter("memory_efficiency.kv_cache").fitted
    for g in (2, 4):  # decode all-reduces are far too small to show the bus bandwidth
        p = cal.parameter(f"intra_node.allreduce_bus_bandwidth_gb_s.{g}")
        assert p.kept and "MiB" in p.reason


def test_decode_only_cli_says_what_was_kept(synthetic_csv: str, tmp_path: Path) -> None:
    lines = synthetic_csv.splitlines()
    csv = tmp_path / "decode.csv"
    csv.write_text("\n".join([lines[0], *(ln for ln in lines[1:] if ",decode," in ln)]))
    res = runner.invoke(
        app, ["calibrate", str(csv), "--gpu", BASE, "--out", str(tmp_path / "o.yaml")]
    )
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.output.splitlines() if "gemm.plateau" in ln)
    assert "kept: decode-only" in row


def test_tp1_rows_leave_the_all_reduce_figures_alone(base: GPU) -> None:
    rows = [r for r in _design() if r[2] == 1]
    specs, kept = cal_lib.candidate_parameters(base, ENGINE, parse_measurements(_csv(rows)))
    assert not [s for s in specs if s.name.startswith("intra_node")]
    assert kept["intra_node.allreduce_*"] == "no rows with TP > 1"


def _edit(text: str, row: int, column: str, value: str) -> str:
    lines = text.splitlines()
    names = lines[0].split(",")
    cells = lines[row].split(",")
    cells[names.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _duplicate(text: str) -> str:
    lines = text.splitlines()
    cells = lines[1].split(",")
    cells[-1] = f"{float(cells[-1]) * 3:g}"
    return "\n".join([*lines, ",".join(cells)]) + "\n"


ROWS = len(_design())
BAD = [
    (lambda t: t.replace("pp,", "", 1), "missing column(s) pp"),
    (lambda t: t.replace("latency_ms", "latency_ms,gpu_temp", 1), "unknown column(s) 'gpu_temp'"),
    (lambda t: _edit(t, 3, "latency_ms", "abc"), "row 3 (line 4), column latency_ms"),
    (lambda t: _edit(t, 2, "latency_ms", "-4"), "row 2 (line 3), column latency_ms"),
    (lambda t: _edit(t, 2, "batch", "0"), "row 2 (line 3), column batch: must be positive"),
    (lambda t: _edit(t, 4, "tp", "1.5"), "row 4 (line 5), column tp: must be a whole number"),
    (lambda t: _edit(t, 5, "tp", "3"), "row 5 (line 6), column tp: tp=3 does not divide"),
    (lambda t: _edit(t, 6, "input_tokens", "x"), "row 6 (line 7), column input_tokens"),
    (lambda t: _edit(t, 7, "phase", "warmup"), "row 7 (line 8), column phase: unknown phase"),
    (lambda t: _edit(t, 8, "model", "gpt-9"), "row 8 (line 9), column model"),
    (lambda t: _edit(t, 9, "latency_ms", "nan"), "row 9 (line 10), column latency_ms"),
    (_duplicate, f"row {ROWS + 1} (line {ROWS + 2}), column latency_ms … conflicts with row 1"),
    (lambda t: "\n".join(t.splitlines()[:6]), "5 rows; calibration needs at least 8"),
    (lambda t: t + "llama-3.1-8b,decode,1\n", "fields, the header has 8"),
]


@pytest.mark.parametrize(("edit", "needle"), BAD, ids=[n for _, n in BAD])
def test_bad_csv_is_refused_in_one_line(
    edit: Any, needle: str, synthetic_csv: str, tmp_path: Path
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(edit(synthetic_csv))
    out = tmp_path / "out.yaml"
    res = runner.invoke(app, ["calibrate", str(csv), "--gpu", BASE, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert all(part in res.output for part in needle.split(" … ")), res.output
    assert "bad.csv" in res.output
    assert not out.exists()


def test_duplicate_rows_within_2x_are_averaged(base: GPU, synthetic_csv: str) -> None:
    lines = synthetic_csv.splitlines()
    cells = lines[1].split(",")
    cells[-1] = f"{float(cells[-1]) * 1.05:g}"
    rows = parse_measurements("\n".join([*lines, ",".join(cells)]))
    assert len(rows) == len(_design()) + 1


def test_fewer_rows_than_parameters_is_refused(base: GPU, synthetic_csv: str) -> None:
    lines = synthetic_csv.splitlines()
    picked = [lines[0], *lines[4::10]]  # 9 rows over both models, phases and TP degrees
    rows = parse_measurements("\n".join(picked))
    with pytest.raises(PlannerError, match=r"9 rows cannot determine the 9 parameters"):
        calibrate(rows, base, ENGINE)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["missing.csv", "--gpu", BASE, "--out", "o.yaml"], "missing.csv: file not found"),
        ([str(SAMPLE), "--gpu", BASE, "--out", "nowhere/o.yaml"], "--out: folder nowhere"),
        ([str(SAMPLE), "--gpu", "a100", "--out", "o.yaml"], "gpu: unknown profile"),
        ([str(SAMPLE), "--gpu", BASE, "--out", "o.yaml", "--engine", "x"], "engine: unknown"),
        ([str(SAMPLE), "--gpu", BASE, "--out", "o.yaml", "--name", " "], "name: must be 1..200"),
    ],
)
def test_bad_arguments(
    args: list[str], needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["calibrate", *args])
    assert res.exit_code == 2 and needle in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1


def test_help_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = runner.invoke(app, ["calibrate", "--help"], env={"COLUMNS": "200"})
    found = re.search(r"Example: (ecoplan [^\n]+)", res.output)
    assert found, res.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tests").symlink_to(REPO / "tests")
    example = runner.invoke(app, shlex.split(found.group(1))[1:])
    assert example.exit_code == 0, example.output
    gpu = catalog.gpu_ref("a100.yaml")
    assert gpu.name == f"{BASE}-calibrated" and gpu.iteration_overhead_ms is not None


def test_a_measured_gemm_table_is_kept(base: GPU, tmp_path: Path) -> None:
    """A base profile whose GEMM efficiency is a measured table: the curve's plateau and knee
    do nothing, so they are kept, and the table survives in the written YAML."""
    table = [(1.0, 0.01), (64.0, 0.3), (4096.0, 0.7)]
    gemm = base.gemm.model_copy(update={"measured": table})
    measured = base.model_copy(update={"gemm": gemm})
    rows = parse_measurements(_csv(_design()))
    _, kept = cal_lib.candidate_parameters(measured, ENGINE, rows)
    assert "measured GEMM table" in kept["gemm.plateau"]
    assert "measured GEMM table" in kept["gemm.knee_tokens"]
    path = tmp_path / "gpu.yaml"
    path.write_text(cal_lib.profile_yaml(measured))
    assert catalog.gpu_ref(str(path)).gemm.measured == table

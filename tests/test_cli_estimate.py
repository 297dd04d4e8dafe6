"""End-to-end: `ecoplan estimate` and `ecoplan profiles` through the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app
from planner.errors import PlannerError
from planner.estimate import estimate_instance
from planner.perf import plan_memory

runner = CliRunner()


def test_estimate_default_table() -> None:
    res = runner.invoke(
        app,
        [
            "estimate",
            "--gpu",
            "l20",
            "--model",
            "codellama-34b",
            "--tp",
            "4",
            "--input",
            "2048",
            "--batch",
            "32",
        ],
    )
    assert res.exit_code == 0, res.output
    for text in ("prefill 1×2048", "decode B=32", "KV capacity", "weights", "bound by"):
        assert text in res.output


def test_estimate_rejects_bad_tp_with_one_line() -> None:
    res = runner.invoke(app, ["estimate", "--tp", "3"])
    assert res.exit_code == 2
    assert "does not divide num_heads" in res.output
    assert "Traceback" not in res.output


def test_estimate_rejects_model_that_does_not_fit() -> None:
    res = runner.invoke(app, ["estimate", "--model", "qwen2-72b", "--tp", "1"])
    assert res.exit_code == 2
    assert "GiB" in res.output


def test_unknown_profile_suggests_close_name() -> None:
    res = runner.invoke(app, ["estimate", "--model", "codellama-43b"])
    assert res.exit_code == 2
    assert "did you mean 'codellama-34b'" in res.output


def test_profiles_list_and_show() -> None:
    res = runner.invoke(app, ["profiles", "list"])
    assert res.exit_code == 0
    for name in catalog.gpu_names() + catalog.model_names():
        assert name in res.output
    res = runner.invoke(app, ["profiles", "show", "llama-30b"])
    assert res.exit_code == 0 and "kv_bytes_per_token" in res.output


@pytest.mark.parametrize("gpu", catalog.gpu_names())
def test_every_fitting_pair_estimates(gpu: str) -> None:
    """Every shipped GPU × model pair that fits at some TP ≤ 8 gives a full estimate."""
    g = catalog.load_gpu(gpu)
    for name in catalog.model_names():
        m = catalog.load_model(name)
        fitting = [tp for tp in (1, 2, 4, 8) if plan_memory(m, g, tp, 1, min_kv_tokens=2049).fits]
        for tp in (1, 2, 4, 8):
            if tp in fitting:
                est = estimate_instance(m, g, tp, 1, 2048, 32)
                assert all(p.latency_s > 0 for p in est.phases)
                assert est.memory.kv_capacity_tokens > 2048
            else:
                with pytest.raises(PlannerError):
                    estimate_instance(m, g, tp, 1, 2048, 32)
        too_big = ("qwen2-72b", "llama-2-70b", "llama-3.1-70b", "llama-3.3-70b")
        too_big += ("qwen3-235b-a22b", "deepseek-v3")  # 470 GB BF16, 685 GB FP8
        assert fitting or name in too_big, (gpu, name)

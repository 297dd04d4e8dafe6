"""Model-derived quantities against hand-computed values (DESIGN.md §6)."""

from __future__ import annotations

import pytest

from planner import catalog
from planner.units import KIB, MIB


@pytest.mark.parametrize(
    ("name", "expected_bytes"),
    [
        # 2 (K,V) · layers · kv_heads · head_dim · 2 bytes
        ("llama-30b", 2 * 60 * 52 * 128 * 2),
        ("codellama-34b", 2 * 48 * 8 * 128 * 2),
        ("qwen2-72b", 2 * 80 * 8 * 128 * 2),
    ],
)
def test_kv_bytes_per_token_paper_models(name: str, expected_bytes: int) -> None:
    assert catalog.load_model(name).kv_bytes_per_token == expected_bytes


def test_kv_bytes_match_design_figures() -> None:
    assert catalog.load_model("llama-30b").kv_bytes_per_token / MIB == pytest.approx(1.52, abs=0.01)
    assert catalog.load_model("codellama-34b").kv_bytes_per_token == 192 * KIB
    assert catalog.load_model("qwen2-72b").kv_bytes_per_token == 320 * KIB


def test_llama30b_param_count_by_hand() -> None:
    h, inter, layers, vocab = 6656, 17920, 60, 32000
    per_layer = 4 * h * h + 3 * h * inter + 2 * h
    expected = layers * per_layer + 2 * vocab * h + h
    assert catalog.load_model("llama-30b").param_count == expected
    assert expected == 32_528_943_616


def test_qwen3_head_dim_differs_from_hidden_over_heads() -> None:
    m = catalog.load_model("qwen3-32b")
    assert m.q_dim == 64 * 128 != m.hidden_size
    # QKV: hidden·(q + 2kv) ; out: q·hidden
    assert m.attention_params_per_layer == 5120 * (8192 + 2 * 1024) + 8192 * 5120


def test_moe_active_params_smaller_than_total() -> None:
    m = catalog.load_model("mixtral-8x7b")
    assert m.param_count == pytest.approx(46.7e9, rel=0.01)
    assert m.active_param_count == pytest.approx(12.9e9, rel=0.02)
    assert m.flops_per_token(0) == 2 * m.active_param_count


def test_qkv_bias_counted() -> None:
    m = catalog.load_model("qwen2-72b")
    plain = m.model_copy(update={"qkv_bias": False})
    assert m.layer_params - plain.layer_params == 8192 + 2 * 1024


def test_tp_must_divide_heads() -> None:
    m = catalog.load_model("codellama-34b")
    assert m.tp_problem(4) is None
    assert "does not divide num_heads" in (m.tp_problem(3) or "")
    # tp larger than kv heads replicates KV heads: 64 heads, 8 kv heads, tp 16 is allowed
    assert m.tp_problem(16) is None
    assert m.kv_heads_per_rank(16) == 1


def test_all_shipped_profiles_load() -> None:
    assert len(catalog.gpu_names()) == 7
    assert len(catalog.model_names()) == 14
    for name in catalog.gpu_names():
        g = catalog.load_gpu(name)
        assert g.sources, f"{name} lacks source notes"
    for name in catalog.model_names():
        assert catalog.load_model(name).param_count > 1e9

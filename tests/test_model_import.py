"""Model import of current architectures (docs/model.md §1.7–§1.11): DeepSeek-V3 (MLA, shared
expert, dense first layers, FP8 blocks, MTP), Qwen3-MoE, Gemma 3 (sliding window, nested
text_config), quantised checkpoints, warnings for keys not understood, and the performance
layer's handling of them. The configs under tests/data/hf/ hold the published config.json
facts of each Hugging Face repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from planner import catalog
from planner.cli import app
from planner.errors import PlannerError
from planner.model import ModelSpec
from planner.perf import InstancePerf, plan_memory
from planner.perf.iteration import IterationTimer

from .conftest import REPO

HF = REPO / "tests" / "data" / "hf"
runner = CliRunner()


def _cfg(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HF / name / "config.json").read_text())
    return data


def _import(name: str, warnings: list[str] | None = None) -> ModelSpec:
    return catalog.load_hf_config(HF / name / "config.json", warnings)


# ---- DeepSeek-V3 ------------------------------------------------------------------------------
def test_deepseek_v3_parameters() -> None:
    """Convention: params_total counts the main model and the MTP module's unique parameters
    (DeepSeek's README_WEIGHTS.md: 671 B + 11.5 B); active parameters leave out the embedding
    lookup and the MTP module (36.7 B in the README counts the 0.9 B embedding; the model
    card's 37 B)."""
    warnings: list[str] = []
    m = _import("deepseek-v3", warnings)
    assert warnings == []  # every key is read or known to be harmless
    assert m.is_mla and m.is_moe and m.moe_layers == 58 and m.dense_layers == 3
    h, heads = 7168, 128
    attn = (
        h * 1536
        + 1536
        + 1536 * heads * 192  # query down, norm, up
        + h * (512 + 64)
        + 512
        + 512 * heads * (128 + 128)  # latent KV down, norm, up
        + heads * 128 * h  # output
    )
    assert m.attention_params_per_layer == attn == 187_107_328
    expert = 3 * h * 2048
    moe_layer = attn + 256 * expert + expert + h * 256 + 2 * h  # routed, shared, router, norms
    dense_layer = attn + 3 * h * 18432 + 2 * h
    main = 58 * moe_layer + 3 * dense_layer + 2 * 129280 * h + h
    assert m.param_count - m.mtp_params == main
    assert main == pytest.approx(671e9, rel=0.01)
    assert m.mtp_params == moe_layer + 2 * h * h + 3 * h
    assert m.mtp_params == pytest.approx(11.5e9, rel=0.02)
    assert m.param_count == pytest.approx(682.5e9, rel=0.01)
    active = 61 * (attn + 2 * h) + 58 * (9 * expert + h * 256) + 3 * 3 * h * 18432
    assert m.active_param_count == active + 129280 * h + h
    assert m.active_param_count + m.embedding_params == pytest.approx(37e9, rel=0.02)
    assert m.flops_per_token(0) == 2 * m.active_param_count


def test_deepseek_v3_kv_cache_is_the_latent() -> None:
    """MLA caches kv_lora_rank + qk_rope_head_dim values per token and layer: at BF16 (vLLM's
    default cache type for this FP8 checkpoint) (512 + 64)·61·2 B; TP does not divide it."""
    m = _import("deepseek-v3")
    assert (m.dtype, m.kv_dtype, m.quant_group_size) == ("fp8", "bf16", 128 * 128)
    assert m.kv_bytes_per_token == (512 + 64) * 61 * 2 == 70_272
    assert m.kv_bytes_per_token < 2 * 128 * 56 * 2 * 61 / 24  # the old reading was 25× larger
    g = catalog.load_gpu("h200")
    per_gpu = [plan_memory(m, g, tp, 1).kv_bytes_per_token_per_gpu for tp in (1, 8)]
    assert per_gpu == [70_272, 70_272]
    assert [m.kv_heads_per_rank(t) for t in (1, 8)] == [1, 1] and m.tp_problem(8) is None


def test_deepseek_v3_fp8_weight_bytes() -> None:
    """Weight matrices at 1 B plus one fp32 scale per 128×128 block; embedding, LM head, norms
    and router at 2 B; the MTP module is counted in weight_bytes but not loaded."""
    m = _import("deepseek-v3")
    lin, other = m.layers_split(0, 61)
    mtp_lin, mtp_other = m._mtp_split()
    ends = 2 * 129280 * 7168 + 7168
    expected = (lin + mtp_lin) * (1 + 4 / 16384) + (other + mtp_other + ends) * 2
    assert m.weight_bytes == pytest.approx(expected, rel=1e-12)
    assert m.weight_bytes == pytest.approx(685e9, rel=0.01)  # the checkpoint's size
    g = catalog.load_gpu("h200")
    mem = plan_memory(m, g, 8, 1, min_kv_tokens=8192)
    replicated = 61 * m.replicated_params_per_layer * (1 + 4 / 16384)
    served = lin * (1 + 4 / 16384) + (other + 2 * 129280 * 7168) * 2
    assert mem.weights_bytes == pytest.approx((served - replicated) / 8 + replicated, rel=1e-12)
    assert mem.fits  # 8× H200 holds it; 8× H100 does not
    assert not plan_memory(m, catalog.load_gpu("h100-sxm"), 8, 1, min_kv_tokens=8192).fits


def test_deepseek_v3_layer_costs_dense_and_moe_layers_by_count() -> None:
    """The mean layer of a model with 3 dense and 58 MoE layers: the all-MoE layer plus 3/61 of
    (dense MLP − MoE MLP); the shared expert runs for every token."""
    m = _import("deepseek-v3")
    g = catalog.load_gpu("h200")
    tokens = np.array([1.0, 64.0, 4096.0])
    perf = InstancePerf(m, g, g.intra_node, 8, 1)
    mixed, _ = perf._layer_linear(tokens, False)
    all_moe = m.model_copy(update={"first_dense_layers": 0})
    moe_only, _ = InstancePerf(all_moe, g, g.intra_node, 8, 1)._layer_linear(tokens, False)
    dense = perf._dense_mlp(None, tokens, False).total_s
    moe = perf._moe_mlp(None, tokens, False).total_s
    expected = moe_only.total_s + 3 / 61 * (dense - moe)
    np.testing.assert_allclose(mixed.total_s, expected, rtol=1e-9)
    no_shared = m.model_copy(update={"num_shared_experts": 0})
    p0 = InstancePerf(no_shared, g, g.intra_node, 8, 1)
    assert np.all(p0._moe_mlp(None, tokens, False).total_s < moe)


def test_mla_attention_kernels() -> None:
    """Decode reads the whole latent on every rank and runs the absorbed form; the simulator's
    tables agree with the phase model."""
    m = _import("deepseek-v3")
    g = catalog.load_gpu("h200")
    p1, p8 = (InstancePerf(m, g, g.intra_node, tp, 1) for tp in (1, 8))
    assert p1.kv_bytes_per_token_per_layer_rank == p8.kv_bytes_per_token_per_layer_rank == 1152
    busy1, busy8 = p1.decode_attention_busy_s(1e6), p8.decode_attention_busy_s(1e6)
    assert float(busy8.memory_s + busy8.compute_s) <= float(busy1.memory_s + busy1.compute_s)
    timer = IterationTimer(p8)
    step = float(p8.decode_step(32, 3000).total_s)
    assert timer.decode_s(32, 32 * 3000) == pytest.approx(step, rel=1e-6)
    chunk = float(p8.chunk_attention(512, 4000).total_s) * 61
    assert timer.chunk_attention_s(512, 4000) == pytest.approx(chunk, rel=1e-12)


# ---- Qwen3 MoE ---------------------------------------------------------------------------------
def test_qwen3_30b_a3b() -> None:
    """30.5 B total, 3.3 B active as the model card counts them (with the embedding)."""
    warnings: list[str] = []
    m = _import("qwen3-30b-a3b", warnings)
    assert warnings == []
    assert (m.num_experts, m.experts_per_token, m.moe_intermediate_size) == (128, 8, 768)
    assert m.intermediate_size == 6144 and m.moe_layers == 48 and not m.num_shared_experts
    assert m.param_count == pytest.approx(30.5e9, rel=0.01)
    assert m.active_param_count + m.embedding_params == pytest.approx(3.3e9, rel=0.02)
    attn = 2048 * (32 * 128 + 2 * 4 * 128) + 32 * 128 * 2048
    layer = attn + 8 * 3 * 2048 * 768 + 2048 * 128 + 2 * 2048
    assert m.active_param_count == 48 * layer + 151936 * 2048 + 2048
    assert m.kv_bytes_per_token == 48 * 2 * 4 * 128 * 2


def test_qwen3_235b_a22b() -> None:
    m = _import("qwen3-235b-a22b")
    assert m.param_count == pytest.approx(235e9, rel=0.01)
    assert m.active_param_count + m.embedding_params == pytest.approx(22e9, rel=0.02)
    assert m.kv_bytes_per_token == 94 * 2 * 4 * 128 * 2


def test_qwen_mlp_only_layers_and_sparse_step() -> None:
    cfg = {**_cfg("qwen3-30b-a3b"), "mlp_only_layers": [0, 47], "decoder_sparse_step": 2}
    m = catalog.model_from_hf_config(cfg, "q")
    # MoE where (i + 1) % 2 == 0 and i not listed: layers 1, 3, ..., 45
    assert m.dense_layers == 25 and m.moe_layers == 23
    assert [i for i in range(48) if m.is_moe_layer(i)] == list(range(1, 47, 2))


def test_qwen2_moe_shared_expert() -> None:
    """Qwen2-MoE's shared_expert_intermediate_size is one shared expert of that width."""
    cfg = {
        "model_type": "qwen2_moe",
        "hidden_size": 2048,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "num_hidden_layers": 24,
        "intermediate_size": 5632,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "vocab_size": 151936,
    }
    m = catalog.model_from_hf_config(cfg, "qwen2-moe")
    assert (m.num_shared_experts, m.shared_intermediate_size) == (1, 5632)
    assert m.qkv_bias  # Qwen2 family
    assert m.active_mlp_params_per_layer == 3 * 2048 * (4 * 1408 + 5632) + 2048 * 60


# ---- Gemma 3 and sliding windows ---------------------------------------------------------------
def test_gemma3_nested_text_config_and_window() -> None:
    warnings: list[str] = []
    m = _import("gemma-3-27b", warnings)
    assert len(warnings) == 1 and warnings[0].startswith("vision_config")
    assert (m.sliding_window, m.sliding_window_pattern) == (1024, 6)
    assert (m.global_layers, m.local_layers) == (10, 52)
    assert [i for i in range(62) if m.is_global_layer(i)] == list(range(5, 62, 6))
    assert m.tie_embeddings and m.vocab_size == 262_208 and m.mlp == "gated"
    assert m.max_context == 131_072 and m.q_dim == 4096 != m.hidden_size
    assert m.param_count == pytest.approx(27.0e9, rel=0.01)
    per_layer = 2 * 16 * 128 * 2
    assert m.kv_bytes_per_token == 62 * per_layer
    # within the window every layer holds every token; beyond it the local layers stop growing
    assert m.kv_bytes_per_sequence(1000) == 1000 * m.kv_bytes_per_token
    assert m.kv_bytes_per_sequence(131_072) == per_layer * (10 * 131_072 + 52 * 1024)
    assert m.kv_bytes_per_sequence(131_072) < 0.2 * 131_072 * m.kv_bytes_per_token


def test_sliding_window_reduces_kv_at_long_context() -> None:
    m = _import("gemma-3-27b")
    full = m.model_copy(update={"sliding_window": None, "sliding_window_pattern": 0})
    g = catalog.load_gpu("h100-sxm")
    short = plan_memory(m, g, 2, 1, min_kv_tokens=1024)
    assert (
        short.kv_capacity_tokens
        == plan_memory(full, g, 2, 1, min_kv_tokens=1024).kv_capacity_tokens
    )
    long = plan_memory(m, g, 2, 1, min_kv_tokens=65536, context_tokens=32768)
    long_full = plan_memory(full, g, 2, 1, min_kv_tokens=65536, context_tokens=32768)
    assert long.kv_bytes_per_token_per_gpu == pytest.approx(
        (10 + 52 * 1024 / 32768) * 2 * 8 * 128 * 2
    )
    assert long.kv_capacity_tokens > 4 * long_full.kv_capacity_tokens
    # decode at 32K reads 10 global layers' whole context but only 1024 tokens of the others
    p, pf = (InstancePerf(x, g, g.intra_node, 2, 1) for x in (m, full))
    assert float(p.decode_step(16, 32768).total_s) < 0.5 * float(pf.decode_step(16, 32768).total_s)
    assert float(p.decode_step(16, 512).total_s) == pytest.approx(
        float(pf.decode_step(16, 512).total_s), rel=1e-12
    )
    assert float(p.prefill(32768).total_s) < float(pf.prefill(32768).total_s)
    timer = IterationTimer(p)
    assert timer.decode_s(16, 16 * 32768.0) == pytest.approx(
        float(p.decode_step(16, 32768).total_s), rel=1e-6
    )
    for c, pre in ((512, 0.0), (512, 700.0), (2048, 30000.0)):
        attn = float(p.chunk_attention(c, pre).total_s) * 62
        assert timer.chunk_attention_s(c, pre) == pytest.approx(attn, rel=1e-12)
    assert m.flops_per_token(32768) < full.flops_per_token(32768)


def test_mistral_all_layers_sliding_and_qwen_window_off() -> None:
    base = {
        "model_type": "mistral",
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 32,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "sliding_window": 4096,
    }
    m = catalog.model_from_hf_config(base, "mistral-7b-v0.1")
    assert (m.sliding_window, m.global_layers, m.local_layers) == (4096, 0, 32)
    qwen = {**base, "model_type": "qwen2", "use_sliding_window": False, "sliding_window": 4096}
    assert catalog.model_from_hf_config(qwen, "q").sliding_window is None
    types = ["sliding_attention", "full_attention"] * 16
    gemma2 = {**base, "model_type": "gemma2", "layer_types": types}
    m2 = catalog.model_from_hf_config(gemma2, "g2")
    assert (m2.sliding_window_pattern, m2.global_layers) == (2, 16)


# ---- Mixtral and the shipped profiles ----------------------------------------------------------
def test_mixtral_import_unchanged() -> None:
    """Mixtral's config imports to the shipped profile's architecture and its numbers, which
    are those of the planner before these architecture fields existed."""
    warnings: list[str] = []
    m = _import("mixtral-8x7b", warnings)
    shipped = catalog.load_model("mixtral-8x7b")
    assert warnings == []
    assert m.moe_intermediate_size is None and m.moe_layers == 32 and not m.is_mla
    assert m.param_count == shipped.param_count == 46_702_792_704
    assert m.active_param_count == shipped.active_param_count == 12_748_853_248
    assert m.weight_bytes == shipped.weight_bytes == 2 * 46_702_792_704
    assert m.kv_bytes_per_token == shipped.kv_bytes_per_token == 131_072
    g = catalog.load_gpu("a100-80g-sxm")
    a, b = (InstancePerf(x, g, g.intra_node, 2, 1) for x in (m, shipped))
    assert float(a.decode_step(8, 2000).total_s) == float(b.decode_step(8, 2000).total_s)


@pytest.mark.parametrize(
    ("profile", "config"),
    [
        ("llama-3.3-70b", "llama-3.3-70b"),
        ("qwen3-30b-a3b", "qwen3-30b-a3b"),
        ("qwen3-235b-a22b", "qwen3-235b-a22b"),
        ("deepseek-v3", "deepseek-v3"),
        ("gemma-3-27b", "gemma-3-27b"),
    ],
)
def test_shipped_profile_matches_its_config(profile: str, config: str) -> None:
    shipped, imported = catalog.load_model(profile), _import(config)
    skip = {"name", "description", "source", "max_context", "hf_id"}
    a = {k: v for k, v in shipped.model_dump().items() if k not in skip}
    b = {k: v for k, v in imported.model_dump().items() if k not in skip}
    assert a == b
    assert "Hugging Face config.json of" in shipped.source


def test_profile_yaml_round_trip(tmp_path: Path) -> None:
    for name in ("deepseek-v3", "gemma-3-27b", "llama-3.3-70b"):
        spec = _import(name)
        text = catalog.model_profile_yaml(spec)
        (tmp_path / f"{name}.yaml").write_text(text)
        assert catalog.load_model_file(tmp_path / f"{name}.yaml") == spec
    plain = catalog.model_profile_yaml(_import("llama-3.3-70b"))
    for key in ("mtp_layers", "first_dense_layers", "sliding_window", "mlp_only_layers"):
        assert key not in plain


# ---- quantisation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("qc", "dtype", "group"),
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}, "int4", 128),
        ({"quant_method": "gptq", "bits": 4, "group_size": -1, "desc_act": False}, "int4", None),
        ({"quant_method": "gptq", "bits": 8, "group_size": 64}, "int8", 64),
        ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8", None),
        (
            {
                "quant_method": "compressed-tensors",
                "config_groups": {
                    "group_0": {"weights": {"num_bits": 4, "type": "int", "group_size": 128}}
                },
            },
            "int4",
            128,
        ),
    ],
)
def test_quantization_config(qc: dict[str, Any], dtype: str, group: int | None) -> None:
    cfg = {**_cfg("llama-3.3-70b"), "quantization_config": qc}
    m = catalog.model_from_hf_config(cfg, "q")
    assert (m.dtype, m.quant_group_size, m.kv_dtype) == (dtype, group, "bf16")
    assert m.kv_bytes_per_token == 80 * 2 * 8 * 128 * 2  # the cache stays 16-bit
    lin, other = m.layers_split(0, 80)
    ends = 2 * 128256 * 8192 + 8192
    assert m.weight_bytes == pytest.approx(lin * m.weight_bytes_per_param + (other + ends) * 2)
    if dtype == "int4":
        assert m.compute_dtype == "bf16"  # W4A16 runs at the 16-bit peak
        assert m.weight_bytes == pytest.approx(0.5 * 70.6e9 + 2 * 2.1e9, rel=0.03)
        g = catalog.load_gpu("l40s")
        # 37 GiB of weights on a 44.5 GiB card: room for a short cache only above vLLM's
        # default 0.90 utilisation, at the 0.95 such deployments set
        assert not plan_memory(m, g, 1, 1, min_kv_tokens=4096).fits
        assert plan_memory(m, g, 1, 1, min_kv_tokens=4096, gpu_memory_utilization=0.95).fits
        assert float(InstancePerf(m, g, g.intra_node, 1, 1).decode_step(1, 1000).total_s) > 0


def test_unknown_quantization_method_warns() -> None:
    warnings: list[str] = []
    cfg = {**_cfg("llama-3.3-70b"), "quantization_config": {"quant_method": "bitsandbytes"}}
    m = catalog.model_from_hf_config(cfg, "q", warnings)
    assert m.dtype == "bf16" and len(warnings) == 1 and "bitsandbytes" in warnings[0]


# ---- warnings and hostile input ----------------------------------------------------------------
def test_one_warning_per_unknown_key() -> None:
    warnings: list[str] = []
    cfg = {**_cfg("qwen3-30b-a3b"), "frobnicate": 3, "attention_sink_size": 4}
    catalog.model_from_hf_config(cfg, "q", warnings)
    assert warnings == [
        "frobnicate: unknown config key, ignored",
        "attention_sink_size: unknown config key, ignored",
    ]
    nested = _cfg("gemma-3-27b")
    nested["text_config"] = {**nested["text_config"], "zzz_new_feature": True}
    warnings = []
    catalog.model_from_hf_config(nested, "g", warnings)
    assert any(w.startswith("zzz_new_feature") for w in warnings)
    many = {**_cfg("qwen3-30b-a3b"), **{f"k{i}": i for i in range(100)}}
    warnings = []
    catalog.model_from_hf_config(many, "q", warnings)
    assert len(warnings) == catalog.MAX_HF_WARNINGS + 1 and "80 more" in warnings[-1]


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"mlp_only_layers": [3, 48]}, "mlp_only_layers"),
        ({"mlp_only_layers": "all"}, "mlp_only_layers"),
        ({"first_k_dense_replace": 49}, "first_k_dense_replace"),
        ({"kv_lora_rank": 512}, "qk_rope_head_dim"),
        ({"quantization_config": [1]}, "quantization_config"),
        ({"quantization_config": {"quant_method": "awq", "group_size": 1e30}}, "group_size"),
        (
            {"use_sliding_window": None, "sliding_window": 1024, "layer_types": ["full_attention"]},
            "layer_types",
        ),
        ({"use_sliding_window": None, "sliding_window": -5}, "sliding_window"),
        ({"num_nextn_predict_layers": 10**9}, "num_nextn_predict_layers"),
    ],
)
def test_hostile_config_values_are_clear_errors(patch: dict[str, Any], needle: str) -> None:
    cfg = {**_cfg("qwen3-30b-a3b"), **patch}
    with pytest.raises(PlannerError, match=needle):
        catalog.model_from_hf_config(cfg, "q")


# ---- the command -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("deepseek-v3", ["682.6 B parameters", "36.6 B active", "MLA latent 512+64", "69 KiB"]),
        ("qwen3-30b-a3b", ["30.5 B parameters", "3.0 B active", "MoE 128×top-8", "96 KiB"]),
        ("qwen3-235b-a22b", ["235.1 B parameters", "21.6 B active", "188 KiB"]),
        ("gemma-3-27b", ["27.0 B parameters", "sliding window 1,024 tokens on 52 of 62"]),
        ("llama-3.3-70b", ["70.6 B parameters", "320 KiB KV per token"]),
        ("mixtral-8x7b", ["46.7 B parameters", "MoE 8×top-2", "128 KiB"]),
    ],
)
def test_model_import_command(name: str, facts: list[str], tmp_path: Path) -> None:
    config = HF / name / "config.json"
    res = runner.invoke(app, ["model", "import", str(config), "--out", str(tmp_path / "m.yaml")])
    assert res.exit_code == 0, res.output
    for fact in facts:
        assert fact in res.stdout, (fact, res.stdout)
    res = runner.invoke(
        app, ["model", "import", str(config), "--out", str(tmp_path / "m.yaml"), "--format", "json"]
    )
    doc = json.loads(res.stdout)
    spec = _import(name)
    assert doc["params_total"] == spec.param_count
    assert doc["params_active"] == spec.active_param_count
    assert doc["kv_bytes_per_token"] == spec.kv_bytes_per_token
    assert doc["weight_bytes"] == spec.weight_bytes
    assert doc["kv_bytes_per_token_at_max_context"] <= doc["kv_bytes_per_token"]
    assert catalog.load_model_file(tmp_path / "m.yaml") == spec


def test_model_import_prints_warnings_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps({**_cfg("qwen3-30b-a3b"), "zz": 1}))
    args = [
        "model",
        "import",
        str(tmp_path / "x" / "config.json"),
        "--out",
        str(tmp_path / "o.yaml"),
    ]
    res = runner.invoke(app, [*args, "--format", "json"])
    assert res.exit_code == 0
    assert res.stderr.strip() == "warning: zz: unknown config key, ignored"
    assert json.loads(res.stdout)["warnings"] == ["zz: unknown config key, ignored"]

"""Shipped and user profiles: GPUs (hardware_profiles/) and models (model_profiles/).

The YAML folders live at the repository top level and are installed as the packages
`planner.hardware_profiles` and `planner.model_profiles`, read with importlib.resources.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from planner.errors import PlannerError
from planner.hardware import GPU
from planner.model import LIMITS, MIN_CONTEXT, ModelSpec
from planner.yamlio import (
    clip,
    fmt_value,
    parse_yaml_text,
    read_text_file,
    read_yaml_file,
    validate,
)

_GPU_PKG = "planner.hardware_profiles"
_MODEL_PKG = "planner.model_profiles"


def _names(package: str) -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(package).iterdir()
        if p.name.endswith(".yaml")
    )


def gpu_names() -> list[str]:
    return _names(_GPU_PKG)


def model_names() -> list[str]:
    return _names(_MODEL_PKG)


def _unknown(kind: str, name: str, known: list[str]) -> PlannerError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return PlannerError(
        f"{kind}: unknown profile {clip(name, 60)!r}{hint}; known: {', '.join(known)}"
    )


def _shipped_text(package: str, name: str) -> str:
    return resources.files(package).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


@cache
def load_gpu(name: str) -> GPU:
    """A shipped GPU profile by name."""
    if name not in gpu_names():
        raise _unknown("gpu", name, gpu_names())
    data = parse_yaml_text(_shipped_text(_GPU_PKG, name), f"hardware_profiles/{name}.yaml")
    return validate(GPU, data, f"hardware_profiles/{name}.yaml")


@cache
def load_model(name: str) -> ModelSpec:
    """A shipped model profile by name."""
    if name not in model_names():
        raise _unknown("model", name, model_names())
    data = parse_yaml_text(_shipped_text(_MODEL_PKG, name), f"model_profiles/{name}.yaml")
    return validate(ModelSpec, data, f"model_profiles/{name}.yaml")


def _hf_get(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def _hf_int(
    cfg: dict[str, Any],
    where: str,
    keys: tuple[str, ...],
    limit: str,
    *,
    default: int | None = None,
    low: int = 1,
) -> int:
    """The first of `keys` present in the config as an integer in [low, LIMITS[limit]] (an
    integral float such as 4096.0 or a decimal string is accepted), or `default` when none
    is present; anything else is a PlannerError naming the key."""
    key = next((k for k in keys if cfg.get(k) is not None), None)
    if key is None:
        if default is None:
            raise PlannerError(f"{where}: lacks required key {keys[0]}")
        return default
    raw = cfg[key]
    top = LIMITS[limit]
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and raw.strip().isdecimal() and len(raw.strip()) < 20:
        value = int(raw.strip())
    if value is None or not low <= value <= top:
        raise PlannerError(
            f"{where}: {key} must be an integer {low}..{top:,}, got {fmt_value(raw)}"
        )
    return value


_HF_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def hf_repo_id(value: Any) -> str | None:
    """A Hugging Face repository id (owner/name) from a config's `_name_or_path`, or None when
    it is absent or a local path (absolute, starting with `.` or `~`, not exactly one `/`)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if _HF_REPO_ID.fullmatch(text) and ".." not in text else None


# Config keys that change nothing the planner models: token ids, initialisation and training
# settings, rotary and norm details, logit soft-capping, multimodal token ids.
_HF_IGNORED = frozenset(
    [
        "architectures",
        "auto_map",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "initializer_range",
        "initializer_factor",
        "rms_norm_eps",
        "layer_norm_eps",
        "layer_norm_epsilon",
        "rope_theta",
        "rope_scaling",
        "rope_local_base_freq",
        "rope_parameters",
        "rope_interleave",
        "partial_rotary_factor",
        "use_cache",
        "transformers_version",
        "attention_dropout",
        "hidden_dropout",
        "output_router_logits",
        "router_aux_loss_coef",
        "router_z_loss_coef",
        "router_jitter_noise",
        "aux_loss_alpha",
        "seq_aux",
        "norm_topk_prob",
        "routed_scaling_factor",
        "scoring_func",
        "topk_method",
        "n_group",
        "topk_group",
        "ep_size",
        "pretraining_tp",
        "query_pre_attn_scalar",
        "attn_logit_softcapping",
        "final_logit_softcapping",
        "cache_implementation",
        "sliding_window_size",
        "tokenizer_class",
        "max_window_layers",
        "image_token_index",
        "image_token_id",
        "boi_token_index",
        "eoi_token_index",
        "mm_tokens_per_image",
        "video_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
    ]
)
# Config keys read (in `text_config` when the config nests one, else at the top).
_HF_READ = frozenset(
    [
        "hidden_size",
        "num_attention_heads",
        "num_hidden_layers",
        "intermediate_size",
        "moe_intermediate_size",
        "vocab_size",
        "num_local_experts",
        "num_experts",
        "n_routed_experts",
        "num_key_value_heads",
        "head_dim",
        "num_experts_per_tok",
        "moe_topk",
        "max_position_embeddings",
        "torch_dtype",
        "dtype",
        "model_type",
        "hidden_act",
        "hidden_activation",
        "attention_bias",
        "mlp_bias",
        "tie_word_embeddings",
        "kv_lora_rank",
        "q_lora_rank",
        "qk_rope_head_dim",
        "qk_nope_head_dim",
        "v_head_dim",
        "n_shared_experts",
        "num_shared_experts",
        "shared_expert_intermediate_size",
        "first_k_dense_replace",
        "moe_layer_freq",
        "decoder_sparse_step",
        "mlp_only_layers",
        "num_nextn_predict_layers",
        "sliding_window",
        "sliding_window_pattern",
        "layer_types",
        "use_sliding_window",
        "quantization_config",
        "text_config",
        "vision_config",
        "_name_or_path",
    ]
)
# Values transformers' config classes give keys a config file may omit (Gemma 3's config.json
# nests a sparse text_config; Gemma 2 alternates local and global layers without saying so).
_HF_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "vocab_size": 262_208,
        "max_position_embeddings": 131_072,
        "head_dim": 256,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
    "gemma2": {"sliding_window_pattern": 2, "tie_word_embeddings": True},
    "gemma": {"tie_word_embeddings": True},
}
# Families whose MLP is gated (gate, up, down) whatever the activation's name (Gemma: GeGLU).
_GATED_FAMILIES = frozenset(
    [
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "deepseek_v2",
        "deepseek_v3",
    ]
)
MAX_HF_WARNINGS = 20


def _hf_layers(cfg: dict[str, Any], where: str, key: str, layers: int) -> list[int]:
    """A list of 0-based layer indices (Qwen's mlp_only_layers), each below `layers`."""
    raw = cfg.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > layers:
        raise PlannerError(f"{where}: {key} must be a list of at most {layers} layer indices")
    found = sorted({_hf_int({key: x}, where, (key,), "num_layers", low=0) for x in raw})
    if found and found[-1] >= layers:
        raise PlannerError(
            f"{where}: config.json {key} names layer {found[-1]}; the model has {layers} layers"
        )
    return found


def _hf_window(
    cfg: dict[str, Any], where: str, layers: int, notes: list[str]
) -> tuple[int | None, int]:
    """(sliding_window, sliding_window_pattern) from sliding_window and either layer_types or
    sliding_window_pattern; Qwen's use_sliding_window = false switches the window off."""
    use = cfg.get("use_sliding_window")
    if use is not None and not use:
        return None, 0
    if use:
        notes.append(
            "use_sliding_window: Qwen's window on the layers from max_window_layers on is not "
            "modelled; every layer is counted as attending to the whole context"
        )
        return None, 0
    if cfg.get("sliding_window") is None:
        return None, 0
    window = _hf_int(cfg, where, ("sliding_window",), "sliding_window")
    kinds = cfg.get("layer_types")
    if kinds is None:
        pattern = _hf_int(
            cfg, where, ("sliding_window_pattern",), "sliding_window_pattern", default=0, low=0
        )
        if pattern > layers:
            raise PlannerError(
                f"{where}: config.json sliding_window_pattern ({pattern}) exceeds the "
                f"{layers} layers"
            )
        return (None, 0) if pattern == 1 else (window, pattern)
    if not isinstance(kinds, list) or len(kinds) != layers:
        raise PlannerError(f"{where}: layer_types must list one kind per layer ({layers})")
    other = sorted({clip(k, 30) for k in kinds} - {"sliding_attention", "full_attention"})
    if other:
        notes.append(
            f"layer_types: layer kinds {', '.join(other)} are not modelled; counted as full "
            "attention"
        )
    full = [i for i, k in enumerate(kinds) if k != "sliding_attention"]
    if len(full) == layers:
        return None, 0
    if not full:
        return window, 0
    n = round(layers / len(full))
    if full != [i for i in range(layers) if (i + 1) % n == 0]:
        notes.append(
            f"layer_types: the {len(full)} global layers are not every n-th layer; counted as "
            f"every {n}th ({layers // n} global layers)"
        )
    return window, n


def _hf_quant(qc: Any, where: str, notes: list[str]) -> tuple[str | None, int | None]:
    """(weight dtype, elements per quantisation scale) from a quantization_config: FP8 (block
    size from weight_block_size), AWQ/GPTQ (bits, group_size; -1: per channel) and
    compressed-tensors (the first config group's weights); None for another method."""
    if not isinstance(qc, dict):
        raise PlannerError(f"{where}: quantization_config must be an object")
    method = clip(str(qc.get("quant_method", "")).lower(), 40)
    if method == "fp8":
        return "fp8", _hf_block(qc.get("weight_block_size"), where)
    if method in ("awq", "gptq"):
        bits = _hf_int(qc, where, ("bits", "w_bit"), "num_layers", default=4)
        group = _hf_group(qc.get("group_size", qc.get("q_group_size")), where)
        if bits in (4, 8):
            return ("int4" if bits == 4 else "int8"), group
        notes.append(f"quantization_config: {bits}-bit {method} weights are not modelled")
        return None, None
    if method == "compressed-tensors":
        groups = qc.get("config_groups")
        first = next(iter(groups.values()), None) if isinstance(groups, dict) else None
        weights = first.get("weights") if isinstance(first, dict) else None
        if isinstance(weights, dict):
            bits = _hf_int(weights, where, ("num_bits",), "num_layers", default=8)
            floating = weights.get("type") == "float"
            kind = {(8, True): "fp8", (8, False): "int8", (4, False): "int4"}.get((bits, floating))
            if kind is not None:
                block = weights.get("block_structure")
                if block is not None:
                    return kind, _hf_block(block, where)
                return kind, _hf_group(weights.get("group_size"), where)
    notes.append(
        f"quantization_config: method {method or '(none)'!r} is not understood; weights are "
        "counted at torch_dtype"
    )
    return None, None


def _hf_group(raw: Any, where: str) -> int | None:
    """A quantisation group size; None for absent or -1 (one scale per output channel)."""
    if raw is None or raw == -1:
        return None
    return _hf_int({"group_size": raw}, where, ("group_size",), "quant_group_size")


def _hf_block(raw: Any, where: str) -> int | None:
    """Elements per FP8 block scale from a [rows, columns] block shape."""
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 2:
        raise PlannerError(f"{where}: config.json weight block size must be [rows, columns]")
    rows, cols = (_hf_int({"block": x}, where, ("block",), "quant_group_size") for x in raw)
    return _hf_int({"block": rows * cols}, where, ("block",), "quant_group_size")


def _hf_unread(cfg: dict[str, Any], top: dict[str, Any], notes: list[str]) -> None:
    """One note per config key the importer neither reads nor knows to be harmless."""
    keys = [k for k in cfg if k not in _HF_READ and k not in _HF_IGNORED]
    if top is not cfg:
        keys += [k for k in top if k not in _HF_READ and k not in _HF_IGNORED and k not in cfg]
        if isinstance(top.get("vision_config"), dict):
            notes.append(
                "vision_config: the vision encoder is not modelled; the profile is the text "
                "decoder only"
            )
    shown = keys[:MAX_HF_WARNINGS]
    notes.extend(f"{clip(k, 60)}: unknown config key, ignored" for k in shown)
    if len(keys) > len(shown):
        notes.append(f"... and {len(keys) - len(shown)} more unknown config keys, ignored")


def model_from_hf_config(
    cfg: dict[str, Any], name: str, warnings: list[str] | None = None, where: str | None = None
) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json: LLaMA, Qwen2/3 (dense and MoE),
    Mistral, Mixtral, DeepSeek-V2/V3 (MLA, shared experts, leading dense layers, FP8 blocks,
    MTP), Gemma 2/3 (sliding window, nested text_config), AWQ/GPTQ/FP8 quantization_config.

    head_dim is taken from the config when present (Qwen3: heads·head_dim ≠ hidden), else
    hidden/heads; kv heads default to heads (MHA); MoE from num_local_experts/num_experts/
    n_routed_experts. Every number read must be an integer within ModelSpec's ranges
    (`model.LIMITS`); a bad one is a PlannerError naming its config key (after `where`, e.g.
    the file; default: the name). `_name_or_path`, when
    it is a repository id rather than a local path, becomes `hf_id` (for launch files). One
    line per config key that is neither read nor known to be harmless, and per feature read
    but not modelled, is appended to `warnings` (the library prints nothing).
    """
    repo = hf_repo_id(cfg.get("_name_or_path"))
    notes: list[str] = []
    top = cfg
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):
        cfg = cfg["text_config"]
    _hf_unread(cfg, top, notes)
    kind = clip(str(cfg.get("model_type") or top.get("model_type") or "unknown"), 40)
    given = {k: v for k, v in cfg.items() if v is not None}
    cfg = {**_HF_DEFAULTS.get(kind, {}), **given}
    where = clip(where or name, 120)
    hidden = _hf_int(cfg, where, ("hidden_size",), "hidden_size")
    heads = _hf_int(cfg, where, ("num_attention_heads",), "num_heads")
    layers = _hf_int(cfg, where, ("num_hidden_layers",), "num_layers")
    inter = _hf_int(cfg, where, ("intermediate_size", "moe_intermediate_size"), "intermediate_size")
    vocab = _hf_int(cfg, where, ("vocab_size",), "vocab_size")
    experts = _hf_int(
        cfg,
        where,
        ("num_local_experts", "num_experts", "n_routed_experts"),
        "num_experts",
        default=1,
    )
    kv_heads = _hf_int(cfg, where, ("num_key_value_heads",), "num_kv_heads", default=heads)
    kv_lora = _hf_int(cfg, where, ("kv_lora_rank",), "kv_lora_rank", default=0)
    mla: dict[str, Any] = {}
    if kv_lora:  # DeepSeek MLA: the latent replaces per-head K and V
        rope = _hf_int(cfg, where, ("qk_rope_head_dim",), "qk_rope_head_dim")
        nope = _hf_int(cfg, where, ("qk_nope_head_dim",), "qk_nope_head_dim")
        mla = {
            "kv_lora_rank": kv_lora,
            "q_lora_rank": _hf_int(cfg, where, ("q_lora_rank",), "q_lora_rank", default=0) or None,
            "qk_rope_head_dim": rope,
            "qk_nope_head_dim": nope,
            "v_head_dim": _hf_int(cfg, where, ("v_head_dim",), "v_head_dim"),
        }
        kv_heads = heads
    if heads % kv_heads:
        raise PlannerError(
            f"{where}: num_attention_heads ({heads}) must be a multiple of "
            f"num_key_value_heads ({kv_heads})"
        )
    if hidden // heads < 1 and cfg.get("head_dim") is None and not mla:
        raise PlannerError(
            f"{where}: hidden_size ({hidden}) is smaller than num_attention_heads "
            f"({heads}) and there is no head_dim"
        )
    if mla:
        head_dim = mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]
    else:
        head_dim = _hf_int(cfg, where, ("head_dim",), "head_dim", default=hidden // heads)
    per_token = _hf_int(
        cfg,
        where,
        ("num_experts_per_tok", "moe_topk"),
        "experts_per_token",
        default=1 if experts == 1 else min(2, experts),
    )
    if per_token > experts:
        raise PlannerError(
            f"{where}: experts per token ({per_token}) exceed the experts ({experts})"
        )
    moe = _hf_moe(cfg, where, layers, inter, experts) if experts > 1 else {}
    context = _hf_int(
        cfg,
        where,
        ("max_position_embeddings",),
        "max_context",
        default=4096,
        low=MIN_CONTEXT,
    )
    window, pattern = _hf_window(cfg, where, layers, notes)
    if window is not None and window >= context:
        window, pattern = None, 0  # never binds
    dtype = str(
        _hf_get(cfg, "torch_dtype", "dtype")
        or _hf_get(top, "torch_dtype", "dtype", default="bfloat16")
    )
    base = "fp16" if dtype == "float16" else "bf16"
    weights: str | None = None
    group: int | None = None
    qc = cfg.get("quantization_config", top.get("quantization_config"))
    if qc is not None:
        weights, group = _hf_quant(qc, where, notes)
    if cfg.get("mlp_bias") is True:
        notes.append("mlp_bias: MLP biases are not counted")
    act = str(cfg.get("hidden_act", cfg.get("hidden_activation", "silu")))
    tied = cfg.get("tie_word_embeddings", top.get("tie_word_embeddings", False))
    data = {
        "name": name,
        "description": f"imported from Hugging Face config ({kind})",
        "num_layers": layers,
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "mlp": "gated" if kind in _GATED_FAMILIES or act in ("silu", "swiglu") else "standard",
        "qkv_bias": not mla
        and bool(cfg.get("attention_bias", cfg.get("model_type") in ("qwen2", "qwen2_moe"))),
        "tie_embeddings": bool(tied),
        "num_experts": experts,
        "experts_per_token": per_token,
        **moe,
        "mtp_layers": _hf_int(
            cfg, where, ("num_nextn_predict_layers",), "mtp_layers", default=0, low=0
        ),
        **mla,
        "sliding_window": window,
        "sliding_window_pattern": pattern,
        "max_context": context,
        "dtype": weights or base,
        "kv_dtype": base if weights else None,
        "quant_group_size": group if weights else None,
        "source": "Hugging Face config.json",
        "hf_id": repo,
    }
    spec = validate(ModelSpec, data, where)
    if warnings is not None:
        warnings.extend(notes)
    return spec


def _hf_moe(
    cfg: dict[str, Any], where: str, layers: int, inter: int, experts: int
) -> dict[str, Any]:
    """The MoE layout beyond Mixtral: routed expert width, shared experts (DeepSeek
    n_shared_experts × moe_intermediate_size; Qwen2-MoE one of shared_expert_intermediate_size)
    and the dense layers (DeepSeek first_k_dense_replace and moe_layer_freq: MoE where
    i ≥ k and i % freq = 0; Qwen decoder_sparse_step and mlp_only_layers: MoE where
    (i + 1) % step = 0 and i is not listed)."""
    width = _hf_int(cfg, where, ("moe_intermediate_size",), "moe_intermediate_size", default=0)
    shared = _hf_int(
        cfg,
        where,
        ("n_shared_experts", "num_shared_experts"),
        "num_shared_experts",
        default=0,
        low=0,
    )
    shared_width = _hf_int(
        cfg,
        where,
        ("shared_expert_intermediate_size", "moe_shared_expert_intermediate_size"),
        "shared_expert_intermediate_size",
        default=0,
    )
    if shared_width and not shared:
        shared = 1  # Qwen2-MoE: one shared expert of that width
    first = _hf_int(cfg, where, ("first_k_dense_replace",), "first_dense_layers", default=0, low=0)
    if first > layers:
        raise PlannerError(
            f"{where}: config.json first_k_dense_replace ({first}) exceeds the {layers} layers"
        )
    freq = _hf_int(cfg, where, ("moe_layer_freq",), "num_layers", default=1)
    step = _hf_int(cfg, where, ("decoder_sparse_step",), "num_layers", default=1)
    dense = set(_hf_layers(cfg, where, "mlp_only_layers", layers))
    dense |= {i for i in range(first, layers) if i % freq or (i + 1) % step}
    return {
        "moe_intermediate_size": width if width and width != inter else None,
        "num_shared_experts": shared,
        "shared_expert_intermediate_size": shared_width or None,
        "first_dense_layers": first,
        "mlp_only_layers": sorted(i for i in dense if i >= first),
    }


def read_json_file(path: Path, kind: str) -> Any:
    """The JSON document in `path`; a PlannerError naming the file (and the line and column of
    bad JSON) when it is missing, a folder (`kind` says what was expected), unreadable or not
    JSON."""
    where = clip(path, 120)
    text = read_text_file(path, kind.removeprefix("a "))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlannerError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise PlannerError(f"{where}: cannot read: {clip(exc, 120)}") from None
    except RecursionError:
        raise PlannerError(f"{where}: JSON nested too deeply") from None


def load_hf_config(path: Path, warnings: list[str] | None = None) -> ModelSpec:
    """Read a Hugging Face config.json file into a ModelSpec named after its folder; notes on
    keys not understood go to `warnings` (`model_from_hf_config`)."""
    where = clip(path, 120)
    cfg = read_json_file(path, "a config.json")
    if not isinstance(cfg, dict):
        raise PlannerError(f"{where}: expected a JSON object")
    name = path.parent.name if path.name == "config.json" else path.stem
    return model_from_hf_config(cfg, clip(name, 100) or "imported", warnings, where)


def load_model_file(path: Path) -> ModelSpec:
    """A model profile YAML file (the format of `model_profiles/`, e.g. from `model import`)."""
    return validate(ModelSpec, read_yaml_file(path), str(path))


def load_gpu_file(path: Path) -> GPU:
    """A GPU profile YAML file (the format of `hardware_profiles/`, e.g. from `calibrate`)."""
    return validate(GPU, read_yaml_file(path), str(path))


def is_profile_path(ref: str) -> bool:
    """Whether a profile reference names a YAML file rather than a shipped profile."""
    return ref.endswith((".yaml", ".yml"))


def _resolve(ref: str, base_dir: Path) -> Path:
    path = Path(ref)
    return path if path.is_absolute() else base_dir / path


def gpu_ref(ref: str, base_dir: Path = Path(".")) -> GPU:
    """A GPU by shipped profile name, or from a YAML file path (relative to `base_dir`)."""
    return load_gpu_file(_resolve(ref, base_dir)) if is_profile_path(ref) else load_gpu(ref)


def model_ref(ref: str, base_dir: Path = Path(".")) -> ModelSpec:
    """A model by shipped profile name, or from a YAML file path (relative to `base_dir`)."""
    return load_model_file(_resolve(ref, base_dir)) if is_profile_path(ref) else load_model(ref)


def profile_ref(ref: str) -> GPU | ModelSpec:
    """A shipped GPU or model profile by name, or a profile YAML file of either kind (a GPU
    profile is recognised by its `peak_tflops`)."""
    if ref in gpu_names():
        return load_gpu(ref)
    if not is_profile_path(ref):
        if ref not in model_names():
            raise _unknown("profile", ref, gpu_names() + model_names())
        return load_model(ref)
    data = read_yaml_file(Path(ref))
    kind: type[GPU] | type[ModelSpec] = (
        GPU if isinstance(data, dict) and "peak_tflops" in data else ModelSpec
    )
    return validate(kind, data, ref)


# ModelSpec fields written to a profile only when they differ from their defaults
_OPTIONAL_ARCHITECTURE = (
    "num_shared_experts",
    "first_dense_layers",
    "mlp_only_layers",
    "mtp_layers",
    "sliding_window_pattern",
)


def model_profile_yaml(spec: ModelSpec) -> str:
    """A model profile as YAML in the shipped profiles' format (fields in schema order); the
    optional architecture fields of docs/model.md §1.7–§1.10 only when they are set."""
    data = spec.model_dump(mode="json", exclude_none=True)
    for key in _OPTIONAL_ARCHITECTURE:
        if key in data and data[key] == ModelSpec.model_fields[key].get_default(
            call_default_factory=True
        ):
            del data[key]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

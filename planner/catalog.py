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
from planner.yamlio import clip, fmt_value, parse_yaml_text, read_yaml_file, validate

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
            raise PlannerError(f"{where}: config.json lacks required key {keys[0]}")
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
            f"{where}: config.json key {key} must be an integer {low}..{top:,}, "
            f"got {fmt_value(raw)}"
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


def model_from_hf_config(cfg: dict[str, Any], name: str) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json (LLaMA, Qwen2/3, Mistral, Mixtral).

    head_dim is taken from the config when present (Qwen3: heads·head_dim ≠ hidden), else
    hidden/heads; kv heads default to heads (MHA); MoE from num_local_experts/num_experts.
    Every number read must be an integer within ModelSpec's ranges (`model.LIMITS`); a bad
    one is a PlannerError naming its config key. `_name_or_path`, when it is a repository id
    rather than a local path, becomes `hf_id` (for launch files).
    """
    repo = hf_repo_id(cfg.get("_name_or_path"))
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):
        cfg = cfg["text_config"]
    where = clip(name, 80)
    hidden = _hf_int(cfg, where, ("hidden_size",), "hidden_size")
    heads = _hf_int(cfg, where, ("num_attention_heads",), "num_heads")
    layers = _hf_int(cfg, where, ("num_hidden_layers",), "num_layers")
    inter = _hf_int(cfg, where, ("moe_intermediate_size", "intermediate_size"), "intermediate_size")
    vocab = _hf_int(cfg, where, ("vocab_size",), "vocab_size")
    experts = _hf_int(
        cfg,
        where,
        ("num_local_experts", "num_experts", "n_routed_experts"),
        "num_experts",
        default=1,
    )
    kv_heads = _hf_int(cfg, where, ("num_key_value_heads",), "num_kv_heads", default=heads)
    if heads % kv_heads:
        raise PlannerError(
            f"{where}: config.json num_attention_heads ({heads}) must be a multiple of "
            f"num_key_value_heads ({kv_heads})"
        )
    if hidden // heads < 1 and cfg.get("head_dim") is None:
        raise PlannerError(
            f"{where}: config.json hidden_size ({hidden}) is smaller than num_attention_heads "
            f"({heads}) and there is no head_dim"
        )
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
            f"{where}: config.json experts per token ({per_token}) exceed the experts ({experts})"
        )
    context = _hf_int(
        cfg,
        where,
        ("max_position_embeddings",),
        "max_context",
        default=4096,
        low=MIN_CONTEXT,
    )
    dtype = str(_hf_get(cfg, "torch_dtype", default="bfloat16"))
    kind = clip(cfg.get("model_type", "unknown"), 40)
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
        "mlp": "gated" if str(cfg.get("hidden_act", "silu")) in ("silu", "swiglu") else "standard",
        "qkv_bias": bool(
            cfg.get("attention_bias", cfg.get("model_type") in ("qwen2", "qwen2_moe"))
        ),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "num_experts": experts,
        "experts_per_token": per_token,
        "max_context": context,
        "dtype": "fp16" if dtype == "float16" else "bf16",
        "source": "Hugging Face config.json",
        "hf_id": repo,
    }
    return validate(ModelSpec, data, where)


def load_hf_config(path: Path) -> ModelSpec:
    """Read a Hugging Face config.json file into a ModelSpec named after its folder."""
    where = clip(path, 120)
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError(f"{where}: file not found") from None
    except IsADirectoryError:
        raise PlannerError(f"{where}: is a folder, not a config.json") from None
    except json.JSONDecodeError as exc:
        raise PlannerError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise PlannerError(f"{where}: cannot read: {clip(reason, 120)}") from None
    except RecursionError:
        raise PlannerError(f"{where}: JSON nested too deeply") from None
    if not isinstance(cfg, dict):
        raise PlannerError(f"{where}: expected a JSON object")
    name = path.parent.name if path.name == "config.json" else path.stem
    return model_from_hf_config(cfg, clip(name, 100) or "imported")


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


def model_profile_yaml(spec: ModelSpec) -> str:
    """A model profile as YAML in the shipped profiles' format (fields in schema order)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

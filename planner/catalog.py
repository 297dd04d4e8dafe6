"""Shipped and user profiles: GPUs (hardware_profiles/) and models (model_profiles/).

The YAML folders live at the repository top level and are installed as the packages
`planner.hardware_profiles` and `planner.model_profiles`, read with importlib.resources.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from planner.errors import PlannerError
from planner.hardware import GPU
from planner.model import ModelSpec
from planner.yamlio import clip, parse_yaml_text, read_yaml_file, validate

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


def model_from_hf_config(cfg: dict[str, Any], name: str) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json (LLaMA, Qwen2/3, Mistral, Mixtral).

    head_dim is taken from the config when present (Qwen3: heads·head_dim ≠ hidden), else
    hidden/heads; kv heads default to heads (MHA); MoE from num_local_experts/num_experts.
    """
    if "text_config" in cfg and isinstance(cfg["text_config"], dict):
        cfg = cfg["text_config"]
    try:
        hidden = int(cfg["hidden_size"])
        heads = int(cfg["num_attention_heads"])
        layers = int(cfg["num_hidden_layers"])
        inter = int(_hf_get(cfg, "moe_intermediate_size", "intermediate_size"))
        vocab = int(cfg["vocab_size"])
    except KeyError as exc:
        raise PlannerError(f"{name}: config.json lacks required key {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise PlannerError(f"{name}: config.json has a non-integer size: {exc}") from None
    experts = int(_hf_get(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=1))
    dtype = str(_hf_get(cfg, "torch_dtype", default="bfloat16"))
    data = {
        "name": name,
        "description": f"imported from Hugging Face config ({cfg.get('model_type', 'unknown')})",
        "num_layers": layers,
        "hidden_size": hidden,
        "num_heads": heads,
        "num_kv_heads": int(_hf_get(cfg, "num_key_value_heads", default=heads)),
        "head_dim": int(_hf_get(cfg, "head_dim", default=hidden // heads)),
        "intermediate_size": inter,
        "vocab_size": vocab,
        "mlp": "gated" if str(cfg.get("hidden_act", "silu")) in ("silu", "swiglu") else "standard",
        "qkv_bias": bool(
            cfg.get("attention_bias", cfg.get("model_type") in ("qwen2", "qwen2_moe"))
        ),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "num_experts": experts,
        "experts_per_token": int(
            _hf_get(cfg, "num_experts_per_tok", "moe_topk", default=1 if experts == 1 else 2)
        ),
        "max_context": int(_hf_get(cfg, "max_position_embeddings", default=4096)),
        "dtype": "fp16" if dtype == "float16" else "bf16",
        "source": "Hugging Face config.json",
    }
    return validate(ModelSpec, data, name)


def load_hf_config(path: Path) -> ModelSpec:
    """Read a Hugging Face config.json file into a ModelSpec named after its folder."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlannerError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlannerError(f"{path}: not a readable JSON config: {exc}") from None
    if not isinstance(cfg, dict):
        raise PlannerError(f"{path}: expected a JSON object")
    name = path.parent.name if path.name == "config.json" else path.stem
    return model_from_hf_config(cfg, name or "imported")


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

"""The plan file (YAML) schema and its conversion into a Scenario (DESIGN.md §3, §4).

`ecoplan schema` prints the JSON Schema of `PlanFile`. Every section but `cluster` and `model`
has defaults; the default plan is EcoServe's setup (32×L20, 10 GbE, CodeLlama-34B, ShareGPT).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from planner import catalog
from planner.errors import PlannerError
from planner.hardware import GPU, MAX_PRICE, Cluster, IntraNodeLink, Network
from planner.kv_policy import KVPolicy
from planner.model import LIMITS, ModelSpec
from planner.strategies import STRATEGIES, Deployment, Scenario
from planner.strategies.base import StrategyName
from planner.workload import PRESETS, SLO, Arrivals, LengthDist, Workload, preset
from planner.yamlio import clip, read_yaml_file, validate

# Sane ranges of the plan file's numbers (each field's description repeats its own): far beyond
# any real deployment, they keep the models' arithmetic finite and the search bounded.
MAX_NODES = 4096
MAX_GPUS_PER_NODE = 64
MAX_GPUS = MAX_NODES * MAX_GPUS_PER_NODE  # instances of one GPU each
MAX_PARALLEL = 1024  # TP or PP degree
MAX_TOKENS = LIMITS["max_context"]  # any length in tokens
MAX_CHUNK = 1 << 20  # Sarathi token budget
MAX_RATE = 1e7  # requests/s (the goodput root finder's ceiling)
MAX_SLO_S = 86_400.0  # one day
MIN_SLO_S = 1e-6  # one microsecond, below any GPU iteration
MAX_LIST = 64  # entries of a search list


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


T = TypeVar("T")


def _profile_file(field: str, ref: str, load: Callable[[], T]) -> T:
    """`load()`, with the errors of a profile read from a YAML file led by the field naming it
    (shipped profiles name their kind already: `model: unknown profile ...`)."""
    try:
        return load()
    except PlannerError as exc:
        if catalog.is_profile_path(ref):
            raise PlannerError(f"{field}: {exc}") from None
        raise


def _union_member(names: dict[str, str]) -> Any:
    """A discriminator for `name | mapping` unions: a string is a profile name; a mapping is
    the member whose marker key it holds (e.g. `hf_config`), else the inline spec. Errors then
    name the nested field of the member meant, not every member's complaint."""

    def pick(value: Any) -> str | None:
        if isinstance(value, str):
            return "name"
        if isinstance(value, dict):
            return next((tag for key, tag in names.items() if key in value), "spec")
        if isinstance(value, BaseModel):
            return next(
                (tag for key, tag in names.items() if key in type(value).model_fields), "spec"
            )
        return None

    return pick


GpuRef = Annotated[
    Annotated[str, Tag("name")] | Annotated[GPU, Tag("spec")],
    Discriminator(
        _union_member({}),
        custom_error_type="gpu_ref",
        custom_error_message="expected a GPU profile name, a .yaml path or an inline GPU mapping",
    ),
]


class ClusterSpec(_Strict):
    """GPU type (profile name, .yaml path or inline spec), node count and shape, links, price."""

    gpu: GpuRef = "l20"
    nodes: int = Field(default=4, ge=1, le=MAX_NODES, description=f"1..{MAX_NODES}")
    gpus_per_node: int = Field(
        default=8, ge=1, le=MAX_GPUS_PER_NODE, description=f"1..{MAX_GPUS_PER_NODE}"
    )
    network: Network = Network(bandwidth_gbit=10.0)
    intra_node: IntraNodeLink | None = None
    price_per_gpu_hour: float | None = Field(
        default=None,
        ge=0,
        le=MAX_PRICE,
        allow_inf_nan=False,
        description="overrides the GPU profile's price (0..1e6 per GPU-hour)",
    )

    def build(self, base_dir: Path = Path(".")) -> Cluster:
        ref = self.gpu
        gpu = (
            _profile_file("cluster.gpu", ref, lambda: catalog.gpu_ref(ref, base_dir))
            if isinstance(ref, str)
            else ref
        )
        return Cluster(
            gpu=gpu,
            nodes=self.nodes,
            gpus_per_node=self.gpus_per_node,
            network=self.network,
            intra_node=self.intra_node,
            price_per_gpu_hour=self.price_per_gpu_hour,
        )


class HFModelRef(_Strict):
    """A model read from a Hugging Face config.json (path relative to the plan file)."""

    hf_config: Path = Field(description="path to a config.json")
    dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = None


class ProfileModelRef(_Strict):
    """A shipped model profile by name, or a profile YAML file (a path ending in .yaml, relative
    to the plan file, e.g. written by `ecoplan model import`), optionally with another weight
    or KV dtype."""

    profile: str = Field(min_length=1, max_length=4096)
    dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = None
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = None


class LengthSpec(LengthDist):
    """A length distribution with the plan file's ranges: every length 1..16,777,216 tokens,
    sigma ≤ 10 and cv ≤ 100 (so the lognormal's moments stay finite)."""

    mean: float | None = Field(
        default=None, ge=1, le=MAX_TOKENS, allow_inf_nan=False, description="tokens"
    )
    median: float | None = Field(
        default=None, ge=1, le=MAX_TOKENS, allow_inf_nan=False, description="tokens"
    )
    p90: float | None = Field(
        default=None, ge=1, le=MAX_TOKENS, allow_inf_nan=False, description="tokens"
    )
    sigma: float | None = Field(
        default=None, gt=0, le=10, allow_inf_nan=False, description="of log length (0..10]"
    )
    cv: float | None = Field(default=None, gt=0, le=100, allow_inf_nan=False, description="0..100")
    values: list[float] | None = Field(
        default=None, max_length=1_000_000, description="token counts (1..16,777,216)"
    )
    file: Path | None = Field(default=None, description="a file of token counts")
    min: int = Field(default=1, ge=1, le=MAX_TOKENS, description="tokens")
    max: int | None = Field(default=None, ge=1, le=MAX_TOKENS, description="tokens")

    @model_validator(mode="after")
    def _ranges(self) -> LengthSpec:
        if self.values is not None and any(v > MAX_TOKENS for v in self.values):
            raise ValueError(f"values must be at most {MAX_TOKENS:,} tokens")
        mean, median = self.mean, self.median
        if self.kind == "lognormal" and mean is not None and median is not None and mean <= median:
            raise ValueError(f"mean ({self.mean:g}) must exceed median ({self.median:g})")
        return self


class WorkloadSpec(_Strict):
    """A dataset preset, or explicit input/output length distributions, plus arrivals."""

    preset: str | None = Field(default="sharegpt", description=f"one of {', '.join(PRESETS)}")
    input: LengthSpec | None = None
    output: LengthSpec | None = None
    arrivals: Arrivals | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown preset {clip(v, 40)!r}; known: {', '.join(PRESETS)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> WorkloadSpec:
        if self.preset is None and (self.input is None or self.output is None):
            raise ValueError("give a preset or both input and output length distributions")
        return self


class SLOSpec(_Strict):
    """SLO; any field left out comes from the workload preset."""

    ttft_s: float | None = Field(
        default=None,
        ge=MIN_SLO_S,
        le=MAX_SLO_S,
        allow_inf_nan=False,
        description="seconds (1e-6..86400)",
    )
    tpot_s: float | None = Field(
        default=None,
        ge=MIN_SLO_S,
        le=MAX_SLO_S,
        allow_inf_nan=False,
        description="seconds (1e-6..86400)",
    )
    attainment: float = Field(default=90.0, gt=0, lt=100, allow_inf_nan=False)
    joint: bool = True


class Objective(_Strict):
    """What to optimise: goodput per GPU, or the fewest GPUs / lowest cost for a target rate."""

    kind: Literal["max_goodput_per_gpu", "min_gpus", "min_cost"] = "max_goodput_per_gpu"
    target_rate: float | None = Field(
        default=None, gt=0, le=MAX_RATE, allow_inf_nan=False, description="req/s (0..1e7]"
    )


class SearchSpec(_Strict):
    """Which deployments the search enumerates (DESIGN.md §4)."""

    strategies: list[StrategyName] = Field(
        default_factory=lambda: list(STRATEGIES), max_length=MAX_LIST
    )
    tp: list[Annotated[int, Field(ge=1, le=MAX_PARALLEL)]] = Field(
        default_factory=lambda: [1, 2, 4, 8], max_length=MAX_LIST, description="1..1024 each"
    )
    pp: list[Annotated[int, Field(ge=1, le=MAX_PARALLEL)]] = Field(
        default_factory=lambda: [1, 2], max_length=MAX_LIST, description="1..1024 each"
    )
    chunk_tokens: list[Annotated[int, Field(ge=1, le=MAX_CHUNK)]] = Field(
        default_factory=lambda: [256, 512, 1024, 2048],
        max_length=MAX_LIST,
        description="Sarathi token budgets (16..1,048,576 each)",
    )
    macro_sizes: list[Annotated[int, Field(ge=1, le=MAX_GPUS)]] | None = Field(
        default=None, max_length=MAX_LIST, description="default: 2..all instances"
    )
    window_fractions: list[float] = Field(
        default_factory=lambda: [0.1, 0.25, 0.5, 1.0],
        max_length=MAX_LIST,
        description="EcoServe prefill window as fractions of the TTFT SLO",
    )
    use_all_gpus: bool = Field(default=True, description="deployments use the whole cluster")
    exhaustive: bool = Field(
        default=False,
        description="evaluate every candidate: no pruning by the capacity upper bound",
    )
    top: int = Field(default=3, ge=1, le=100, description="runner-up plans kept per strategy")

    @field_validator("tp", "pp", "chunk_tokens")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(x < 1 for x in v):
            raise ValueError("needs positive integers")
        return v

    @field_validator("window_fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not (0 < x <= 1) for x in v):
            raise ValueError("fractions must be in (0, 1]")
        return v


class DeploymentSpec(_Strict):
    """A fixed deployment for `ecoplan evaluate`."""

    strategy: StrategyName
    tp: int = Field(default=1, ge=1, le=MAX_PARALLEL, description="1..1024")
    pp: int = Field(default=1, ge=1, le=MAX_PARALLEL, description="1..1024")
    instances: int = Field(
        default=1,
        ge=1,
        le=MAX_GPUS,
        description="NoDG/PaDG instances; FuDG prefill ones (1..262,144)",
    )
    decode_instances: int = Field(default=0, ge=0, le=MAX_GPUS, description="0..262,144")
    decode_tp: int | None = Field(default=None, ge=1, le=MAX_PARALLEL, description="1..1024")
    decode_pp: int | None = Field(default=None, ge=1, le=MAX_PARALLEL, description="1..1024")
    chunk_tokens: int = Field(default=512, ge=16, le=MAX_CHUNK, description="16..1,048,576")
    macro_size: int = Field(default=1, ge=1, le=MAX_GPUS, description="1..262,144")
    window_s: float | None = Field(
        default=None, gt=0, le=MAX_SLO_S, allow_inf_nan=False, description="seconds (0..86400]"
    )

    def build(self) -> Deployment:
        return Deployment(**self.model_dump())


DEFAULT_RAMP = (20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)


def _positive_rates(v: list[float] | None) -> list[float] | None:
    """Request rates (req/s) must be positive, finite and at most MAX_RATE."""
    if v is not None and any(not (math.isfinite(r) and 0 < r <= MAX_RATE) for r in v):
        raise ValueError(f"rates must be positive numbers up to {MAX_RATE:g} req/s")
    return v


MAX_MACRO = 1 << 16  # the scaling search's largest instance count


class RampSpec(_Strict):
    """A request-rate ramp or daily profile: one rate per step of `step_hours`."""

    rates: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RAMP),
        min_length=1,
        max_length=1000,
        description="req/s per step (0..1e7]",
    )
    step_hours: float = Field(
        default=1.0, gt=0, le=8760, allow_inf_nan=False, description="hours (0..8760]"
    )
    macro_min: int = Field(
        default=6, ge=1, le=MAX_MACRO, description="N_l: EcoServe's lower bound (paper: 6)"
    )
    macro_max: int = Field(
        default=11, ge=1, le=MAX_MACRO, description="N_u: upper bound (paper: 11)"
    )

    _rates = field_validator("rates")(_positive_rates)


ModelRef = Annotated[
    Annotated[str, Tag("name")]
    | Annotated[ProfileModelRef, Tag("profile")]
    | Annotated[HFModelRef, Tag("hf")]
    | Annotated[ModelSpec, Tag("spec")],
    Discriminator(
        _union_member({"hf_config": "hf", "profile": "profile"}),
        custom_error_type="model_ref",
        custom_error_message="expected a model profile name, a .yaml path, or a mapping with "
        "`profile`, `hf_config` or an inline model",
    ),
]


class PlanFile(_Strict):
    """A plan file: scenario, objective, search space and optional fixed deployments."""

    cluster: ClusterSpec = ClusterSpec()
    model: ModelRef = "codellama-34b"
    workload: WorkloadSpec = WorkloadSpec()
    slo: SLOSpec = SLOSpec()
    objective: Objective = Objective()
    search: SearchSpec = SearchSpec()
    kv: KVPolicy = KVPolicy()
    ramp: RampSpec = Field(
        default_factory=RampSpec, description="rate ramp for `ecoplan scale` and the report"
    )
    deployments: list[DeploymentSpec] = Field(default_factory=list, max_length=100)
    rates: list[float] | None = Field(
        default=None, max_length=1000, description="rates for `evaluate`'s table (0..1e7]"
    )

    _rates = field_validator("rates")(_positive_rates)

    # ---- conversion -------------------------------------------------------------------------
    def build_model(self, base_dir: Path) -> ModelSpec:
        m = self.model
        if isinstance(m, str):
            return _profile_file("model", m, lambda: catalog.model_ref(m, base_dir))
        if isinstance(m, ProfileModelRef):
            ref = m.profile
            spec = _profile_file("model.profile", ref, lambda: catalog.model_ref(ref, base_dir))
            upd: dict[str, Any] = {}
            if m.dtype:
                upd["dtype"] = m.dtype
            if m.kv_dtype:
                upd["kv_dtype"] = m.kv_dtype
            return spec.model_copy(update=upd)
        if isinstance(m, HFModelRef):
            path = m.hf_config if m.hf_config.is_absolute() else base_dir / m.hf_config
            try:
                spec = catalog.load_hf_config(path)
            except PlannerError as exc:
                raise PlannerError(f"model.hf_config: {exc}") from None
            return spec.model_copy(update={"dtype": m.dtype}) if m.dtype else spec
        return m

    def build_workload(self, base_dir: Path) -> tuple[Workload, SLO]:
        w = self.workload
        pre = preset(w.preset) if w.preset else None

        def fix(d: LengthDist | None, which: str) -> LengthDist | None:
            if d is None or d.file is None:
                return d
            path = d.file if d.file.is_absolute() else base_dir / d.file
            try:
                found = path.is_file()
            except (OSError, ValueError):
                found = False
            if not found:
                raise PlannerError(f"workload.{which}.file: {clip(path, 120)}: file not found")
            return d.model_copy(update={"file": path})

        inp = fix(w.input, "input") or (pre.workload.input if pre else None)
        out = fix(w.output, "output") or (pre.workload.output if pre else None)
        assert inp is not None and out is not None
        arrivals = w.arrivals or (pre.workload.arrivals if pre else Arrivals())
        name = w.preset or "custom"
        if w.preset and (w.input or w.output or w.arrivals):
            name += " (modified)"
        workload = Workload(name=name, input=inp, output=out, arrivals=arrivals)
        ttft = self.slo.ttft_s or (pre.slo.ttft_s if pre else None)
        tpot = self.slo.tpot_s or (pre.slo.tpot_s if pre else None)
        if ttft is None or tpot is None:
            raise PlannerError(
                "slo: ttft_s and tpot_s are required when no workload preset is used"
            )
        slo = SLO(ttft_s=ttft, tpot_s=tpot, attainment=self.slo.attainment, joint=self.slo.joint)
        return workload, slo

    def scenario(self, base_dir: Path = Path(".")) -> Scenario:
        workload, slo = self.build_workload(base_dir)
        return Scenario(
            cluster=self.cluster.build(base_dir),
            model=self.build_model(base_dir),
            workload=workload,
            slo=slo,
            kv=self.kv,
        )


def load_plan(path: Path | None) -> PlanFile:
    """Read and validate a plan file; None gives the built-in default scenario."""
    if path is None:
        return PlanFile()
    data = read_yaml_file(path)
    if data is None:
        raise PlannerError(f"{path}: file is empty")
    return validate(PlanFile, data, str(path))

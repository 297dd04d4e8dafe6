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
from planner.deployment import STRATEGIES, Deployment, StrategyName, strategy_help
from planner.engine import EngineProfile, load_engine
from planner.errors import PlannerError
from planner.hardware import GPU, MAX_PRICE, Cluster, IntraNodeLink, Network
from planner.kv_policy import KVPolicy
from planner.model import LIMITS, ModelSpec
from planner.scenario import Scenario
from planner.workload import PRESETS, SLO, Arrivals, LengthDist, SharedPrefix, Workload, preset
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

    gpu: GpuRef = Field(
        default="l20",
        description="GPU type: a shipped profile name (`ecoplan profiles list`), a GPU profile "
        ".yaml path (relative to the plan file) or an inline GPU mapping; default l20",
    )
    nodes: int = Field(
        default=4,
        ge=1,
        le=MAX_NODES,
        description=f"nodes in the cluster (1..{MAX_NODES}); default 4",
    )
    gpus_per_node: int = Field(
        default=8,
        ge=1,
        le=MAX_GPUS_PER_NODE,
        description=f"GPUs per node (1..{MAX_GPUS_PER_NODE}); an instance (TP×PP GPUs) stays "
        "inside one node; default 8",
    )
    network: Network = Field(
        default=Network(bandwidth_gbit=10.0),
        description="inter-node network, one NIC per node; default 10 Gb/s, 10 µs, 95% efficiency",
    )
    intra_node: IntraNodeLink | None = Field(
        default=None,
        description="GPU-to-GPU link inside a node; default (null): the GPU profile's link",
    )
    price_per_gpu_hour: float | None = Field(
        default=None,
        ge=0,
        le=MAX_PRICE,
        allow_inf_nan=False,
        description="price of one GPU-hour (US$, 0..1e6); default (null): the GPU profile's "
        "estimate",
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

    hf_config: Path = Field(
        description="path to a Hugging Face config.json (relative to the plan file)"
    )
    dtype: Literal["bf16", "fp16", "fp8", "int8", "int4"] | None = Field(
        default=None,
        description="weight dtype; default (null): the config's quantization_config (FP8, AWQ, "
        "GPTQ), else float16 if its torch_dtype says so, else bf16",
    )


class ProfileModelRef(_Strict):
    """A shipped model profile by name, or a profile YAML file (a path ending in .yaml, relative
    to the plan file, e.g. written by `ecoplan model import`), optionally with another weight
    or KV dtype."""

    profile: str = Field(
        min_length=1,
        max_length=4096,
        description="a shipped model profile name (`ecoplan profiles list`) or a model profile "
        ".yaml path (relative to the plan file)",
    )
    dtype: Literal["bf16", "fp16", "fp8", "int8", "int4"] | None = Field(
        default=None, description="weight dtype; default (null): the profile's"
    )
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = Field(
        default=None, description="KV-cache dtype; default (null): the profile's"
    )


class LengthSpec(LengthDist):
    """A length distribution with the plan file's ranges: every length 1..16,777,216 tokens,
    sigma ≤ 10 and cv ≤ 100 (so the lognormal's moments stay finite)."""

    mean: float | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        allow_inf_nan=False,
        description="mean length (tokens, 1..16,777,216); `fixed`: the length itself",
    )
    median: float | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        allow_inf_nan=False,
        description="median length (tokens, 1..16,777,216; lognormal)",
    )
    p90: float | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        allow_inf_nan=False,
        description="90th-percentile length (tokens, 1..16,777,216; lognormal)",
    )
    sigma: float | None = Field(
        default=None,
        gt=0,
        le=10,
        allow_inf_nan=False,
        description="standard deviation of the natural log of the length ((0, 10]; lognormal)",
    )
    cv: float | None = Field(
        default=None,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="coefficient of variation, standard deviation / mean ((0, 100]; lognormal)",
    )
    values: list[float] | None = Field(
        default=None,
        max_length=1_000_000,
        description="`empirical`: the token counts themselves (1..16,777,216 each)",
    )
    file: Path | None = Field(
        default=None,
        description="`empirical`: a text file of token counts separated by whitespace or commas "
        "(relative to the plan file)",
    )
    min: int = Field(
        default=1,
        ge=1,
        le=MAX_TOKENS,
        description="shortest length: samples are clipped up to it (tokens); default 1",
    )
    max: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        description="longest length: samples are clipped down to it (tokens); default (null): "
        "no clip",
    )

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

    preset: str | None = Field(
        default="sharegpt",
        description=f"dataset preset giving lengths, arrivals and SLO bounds: one of "
        f"{', '.join(PRESETS)}; null: give input and output; default sharegpt",
    )
    input: LengthSpec | None = Field(
        default=None, description="prompt length distribution (tokens); default: the preset's"
    )
    output: LengthSpec | None = Field(
        default=None,
        description="output length distribution (tokens generated per request); default: the "
        "preset's",
    )
    arrivals: Arrivals | None = Field(
        default=None, description="request arrival process; default: the preset's (Poisson)"
    )
    prefix: SharedPrefix | None = Field(
        default=None,
        description="a shared prompt prefix (system prompt): {tokens, share}, counted in the "
        "input lengths; reused when the engine caches prefixes; default (null): none",
    )

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
        description="time-to-first-token bound (seconds, 1e-6..86400); default: the preset's",
    )
    tpot_s: float | None = Field(
        default=None,
        ge=MIN_SLO_S,
        le=MAX_SLO_S,
        allow_inf_nan=False,
        description="time-per-output-token bound, a request's mean decode time per token "
        "(seconds, 1e-6..86400); default: the preset's",
    )
    attainment: float = Field(
        default=90.0,
        gt=0,
        lt=100,
        allow_inf_nan=False,
        description="share of requests that must meet the SLO (percent, (0, 100)); default 90",
    )
    joint: bool = Field(
        default=True,
        description="true: a request counts only if it meets both bounds; false: each bound's "
        "share must reach `attainment` on its own; default true",
    )
    tbt_s: float | None = Field(
        default=None,
        ge=MIN_SLO_S,
        le=MAX_SLO_S,
        allow_inf_nan=False,
        description="optional per-token gap bound (seconds, 1e-6..86400): a request meets it "
        "when the `tbt_percentile`-th percentile of its own gaps between consecutive output "
        "tokens is at most this; default: none",
    )
    tbt_percentile: float = Field(
        default=99.0,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="which percentile of a request's own inter-token gaps `tbt_s` bounds "
        "(percent, (0, 100]); default 99",
    )


class Objective(_Strict):
    """What to optimise: goodput per GPU, or the fewest GPUs / lowest cost for a target rate."""

    kind: Literal["max_goodput_per_gpu", "min_gpus", "min_cost"] = Field(
        default="max_goodput_per_gpu",
        description="max_goodput_per_gpu: most goodput per GPU on the cluster; min_gpus / "
        "min_cost: fewest GPUs / lowest cost per hour serving `target_rate`; default "
        "max_goodput_per_gpu",
    )
    target_rate: float | None = Field(
        default=None,
        gt=0,
        le=MAX_RATE,
        allow_inf_nan=False,
        description="request rate to serve (req/s, (0, 1e7]); min_gpus and min_cost rank by "
        "it, and the report's GPUs and $/h for the target need it; default (null): none",
    )


class SearchSpec(_Strict):
    """Which deployments the search enumerates (DESIGN.md §4)."""

    strategies: list[StrategyName] = Field(
        default_factory=lambda: list(STRATEGIES),
        max_length=MAX_LIST,
        description="strategies to search (default: all five). " + strategy_help(),
    )
    tp: list[Annotated[int, Field(ge=1, le=MAX_PARALLEL)]] = Field(
        default_factory=lambda: [1, 2, 4, 8],
        max_length=MAX_LIST,
        description="tensor-parallel degrees to try (1..1024 each); default [1, 2, 4, 8]",
    )
    pp: list[Annotated[int, Field(ge=1, le=MAX_PARALLEL)]] = Field(
        default_factory=lambda: [1, 2],
        max_length=MAX_LIST,
        description="pipeline-parallel degrees to try (1..1024 each); default [1, 2]",
    )
    chunk_tokens: list[Annotated[int, Field(ge=1, le=MAX_CHUNK)]] = Field(
        default_factory=lambda: [256, 512, 1024, 2048],
        max_length=MAX_LIST,
        description="Sarathi per-iteration token budgets to try (tokens, 1..1,048,576 each); "
        "default [256, 512, 1024, 2048]",
    )
    macro_sizes: list[Annotated[int, Field(ge=1, le=MAX_GPUS)]] | None = Field(
        default=None,
        max_length=MAX_LIST,
        description="EcoServe instances per macro instance to try (1..262,144 each); default "
        "(null): every divisor of the instance count from 2 to 16 (EcoServe's mitosis splits "
        "macro instances past 11)",
    )
    window_fractions: list[float] = Field(
        default_factory=lambda: [0.1, 0.25, 0.5, 1.0],
        max_length=MAX_LIST,
        description="EcoServe prefill window budgets to try, as fractions of the TTFT SLO "
        "((0, 1] each); default [0.1, 0.25, 0.5, 1.0]",
    )
    use_all_gpus: bool = Field(
        default=True,
        description="true: deployments use the whole cluster; false: smaller ones too; "
        "default true",
    )
    exhaustive: bool = Field(
        default=False,
        description="evaluate every candidate: no pruning by the capacity upper bound; "
        "default false",
    )
    top: int = Field(
        default=3, ge=1, le=100, description="plans kept per strategy (1..100); default 3"
    )

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

    strategy: StrategyName = Field(description=strategy_help())
    tp: int = Field(
        default=1,
        ge=1,
        le=MAX_PARALLEL,
        description="tensor-parallel degree of an instance (FuDG: a prefill instance) (1..1024); "
        "default 1",
    )
    pp: int = Field(
        default=1,
        ge=1,
        le=MAX_PARALLEL,
        description="pipeline-parallel degree of an instance (FuDG: a prefill instance) "
        "(1..1024); default 1",
    )
    instances: int = Field(
        default=1,
        ge=1,
        le=MAX_GPUS,
        description="NoDG/PaDG instances; FuDG prefill ones (1..262,144); default 1",
    )
    decode_instances: int = Field(
        default=0,
        ge=0,
        le=MAX_GPUS,
        description="FuDG decode instances (0..262,144; 0 for other strategies); default 0",
    )
    decode_tp: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARALLEL,
        description="FuDG decode instances' tensor-parallel degree (1..1024); default (null): tp",
    )
    decode_pp: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PARALLEL,
        description="FuDG decode instances' pipeline-parallel degree (1..1024); default (null): pp",
    )
    chunk_tokens: int = Field(
        default=512,
        ge=16,
        le=MAX_CHUNK,
        description="Sarathi per-iteration token budget (tokens, 16..1,048,576); default 512",
    )
    macro_size: int = Field(
        default=1,
        ge=1,
        le=MAX_GPUS,
        description="EcoServe instances per macro instance (1..262,144); default 1",
    )
    window_s: float | None = Field(
        default=None,
        gt=0,
        le=MAX_SLO_S,
        allow_inf_nan=False,
        description="EcoServe prefill window budget (seconds of prefill work, (0, 86400]); "
        "default (null): the TTFT SLO",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        le=MAX_GPUS,
        description="identical units of the fields above, each on nodes of its own, behind a "
        "round-robin load balancer (1..262,144); default 1",
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
        description="request rate of each step (req/s, (0, 1e7] each; 1..1000 steps); default "
        "20, 25, …, 50",
    )
    step_hours: float = Field(
        default=1.0,
        gt=0,
        le=8760,
        allow_inf_nan=False,
        description="length of each step (hours, (0, 8760]); default 1",
    )
    macro_min: int = Field(
        default=6,
        ge=1,
        le=MAX_MACRO,
        description="N_l: fewest instances of an EcoServe macro instance while scaling "
        "(1..65,536); default 6 (the paper's)",
    )
    macro_max: int = Field(
        default=11,
        ge=1,
        le=MAX_MACRO,
        description="N_u: most instances of a macro instance; past it, it splits in two "
        "(1..65,536); default 11 (the paper's)",
    )

    _rates = field_validator("rates")(_positive_rates)

    @model_validator(mode="after")
    def _macro_bounds_ordered(self) -> RampSpec:
        if self.macro_min > self.macro_max:
            raise ValueError(
                f"macro_min ({self.macro_min}) must not exceed macro_max ({self.macro_max})"
            )
        return self


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


class EngineSpec(_Strict):
    """The serving engine (a shipped engine profile) and the settings a deployment passes it;
    each setting has the meaning of the vLLM flag of the same name."""

    name: Literal["vllm-v1", "vllm-v0"] = Field(
        default="vllm-v1",
        description="vllm-v1: vLLM's V1 engine (chunked prefill, v0.9+); vllm-v0: the V0 engine",
    )
    max_num_seqs: int | None = Field(
        default=None,
        ge=1,
        le=65536,
        description="most sequences per iteration (1..65,536); default (null): the engine "
        "profile's",
    )
    max_num_batched_tokens: int | None = Field(
        default=None,
        ge=16,
        le=1 << 20,
        description="most tokens per iteration (16..1,048,576); default (null): the engine "
        "profile's",
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="share of GPU memory the engine may use ((0, 1]); default (null): the "
        "engine profile's",
    )
    enforce_eager: bool = Field(
        default=False, description="no CUDA graphs (--enforce-eager); default false"
    )
    disable_custom_all_reduce: bool = Field(
        default=False,
        description="NCCL for every all-reduce (--disable-custom-all-reduce); default false",
    )
    enable_prefix_caching: bool | None = Field(
        default=None,
        description="automatic prefix caching (--enable-prefix-caching / "
        "--no-enable-prefix-caching); default (null): the engine's, on for vllm-v1, off for "
        "vllm-v0",
    )

    @model_validator(mode="before")
    @classmethod
    def _name_only(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    def build(self) -> EngineProfile:
        upd: dict[str, Any] = {
            "cuda_graph_decode": not self.enforce_eager,
            "custom_allreduce": not self.disable_custom_all_reduce,
        }
        for key in ("max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization"):
            if getattr(self, key) is not None:
                upd[key] = getattr(self, key)
        if self.enable_prefix_caching is not None:
            upd["prefix_caching"] = self.enable_prefix_caching
        return load_engine(self.name).model_copy(update=upd)


class PlanFile(_Strict):
    """A plan file: scenario, objective, search space and optional fixed deployments."""

    cluster: ClusterSpec = Field(
        default=ClusterSpec(),
        description="GPU type, node count and shape, links and price; default 4 nodes × 8 L20, "
        "10 GbE",
    )
    model: ModelRef = Field(
        default="codellama-34b",
        description="a model profile name or .yaml path, {profile, dtype, kv_dtype}, "
        "{hf_config, dtype} or an inline model; default codellama-34b",
    )
    workload: WorkloadSpec = Field(
        default=WorkloadSpec(),
        description="request lengths and arrivals; default: the sharegpt preset",
    )
    slo: SLOSpec = Field(
        default=SLOSpec(),
        description="latency SLO; default: the preset's bounds, 90% of requests, joint",
    )
    objective: Objective = Field(
        default=Objective(),
        description="what the search optimises; default: goodput per GPU",
    )
    search: SearchSpec = Field(
        default=SearchSpec(), description="the deployments the search enumerates"
    )
    kv: KVPolicy = Field(
        default=KVPolicy(),
        description="KV-cache allocation policy (analytical model and simulator); default paged",
    )
    engine: EngineSpec = Field(
        default_factory=EngineSpec,
        description="serving engine: a name or a mapping; default vllm-v1",
    )
    ramp: RampSpec = Field(
        default_factory=RampSpec, description="rate ramp for `ecoplan scale` and the report"
    )
    deployments: list[DeploymentSpec] = Field(
        default_factory=list,
        max_length=100,
        description="fixed deployments for `ecoplan evaluate` and `simulate` (up to 100); "
        "default: none, one per strategy on the whole cluster",
    )
    rates: list[float] | None = Field(
        default=None,
        max_length=1000,
        description="request rates for the `evaluate` and `simulate` tables (req/s, (0, 1e7] "
        "each); default (null): evaluate spreads six rates around the best goodput, simulate "
        "finds goodput",
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
                exists, regular = path.exists(), path.is_file()
            except (OSError, ValueError):
                exists = regular = False
            if not regular:
                why = "not a regular file" if exists else "file not found"
                raise PlannerError(f"workload.{which}.file: {clip(path, 120)}: {why}")
            return d.model_copy(update={"file": path})

        inp = fix(w.input, "input") or (pre.workload.input if pre else None)
        out = fix(w.output, "output") or (pre.workload.output if pre else None)
        assert inp is not None and out is not None
        arrivals = w.arrivals or (pre.workload.arrivals if pre else Arrivals())
        name = w.preset or "custom"
        if w.preset and (w.input or w.output or w.arrivals):
            name += " (modified)"
        workload = Workload(name=name, input=inp, output=out, arrivals=arrivals, prefix=w.prefix)
        ttft = self.slo.ttft_s or (pre.slo.ttft_s if pre else None)
        tpot = self.slo.tpot_s or (pre.slo.tpot_s if pre else None)
        if ttft is None or tpot is None:
            raise PlannerError(
                "slo: ttft_s and tpot_s are required when no workload preset is used"
            )
        slo = SLO(
            ttft_s=ttft,
            tpot_s=tpot,
            attainment=self.slo.attainment,
            joint=self.slo.joint,
            tbt_s=self.slo.tbt_s,
            tbt_percentile=self.slo.tbt_percentile,
        )
        return workload, slo

    def scenario(self, base_dir: Path = Path(".")) -> Scenario:
        workload, slo = self.build_workload(base_dir)
        cluster = self.cluster.build(base_dir)
        model = self.build_model(base_dir)
        try:
            cluster.gpu.peak_flops(model.compute_dtype)
        except PlannerError:
            listed = ", ".join(clip(k, 20) for k in cluster.gpu.peak_tflops)
            raise PlannerError(
                f"cluster.gpu.peak_tflops: no entry for {model.compute_dtype}, the model's "
                f"compute dtype (listed: {listed})"
            ) from None
        return Scenario(
            cluster=cluster,
            model=model,
            workload=workload,
            slo=slo,
            kv=self.kv,
            engine=self.engine.build(),
        )


def load_plan(path: Path | None) -> PlanFile:
    """Read and validate a plan file; None gives the built-in default scenario."""
    if path is None:
        return PlanFile()
    data = read_yaml_file(path)
    if data is None:
        raise PlannerError(f"{path}: file is empty")
    return validate(PlanFile, data, str(path))


# The schema's identity: an absolute URI in the reserved `.invalid` domain (RFC 2606), so no
# tool ever tries to fetch it, versioned with the plan-file format (`plan-v1`: a field removed,
# renamed or changed in meaning makes it v2). Editors load the schema from a local file.
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://ecoplan.invalid/schema/plan-v1.json"


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the plan file, as `ecoplan schema` prints it: every
    property has a description (meaning, unit or range, default)."""
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        **PlanFile.model_json_schema(),
    }

"""The plan file (YAML) schema and its conversion into a Scenario (DESIGN.md §3, §4).

`ecoplan schema` prints the JSON Schema of `PlanFile`. Every section but `cluster` and `model`
has defaults; the default plan is EcoServe's setup (32×L20, 10 GbE, CodeLlama-34B, ShareGPT).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from planner import catalog
from planner.errors import PlannerError
from planner.hardware import GPU, Cluster, IntraNodeLink, Network
from planner.kv_policy import KVPolicy
from planner.model import ModelSpec
from planner.strategies import STRATEGIES, Deployment, Scenario
from planner.strategies.base import StrategyName
from planner.workload import SLO, Arrivals, LengthDist, Workload, preset
from planner.yamlio import read_yaml_file, validate


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClusterSpec(_Strict):
    """GPU type (profile name or inline spec), node count and shape, links, price."""

    gpu: str | GPU = "l20"
    nodes: int = Field(default=4, ge=1, le=4096)
    gpus_per_node: int = Field(default=8, ge=1, le=64)
    network: Network = Network(bandwidth_gbit=10.0)
    intra_node: IntraNodeLink | None = None
    price_per_gpu_hour: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    def build(self, base_dir: Path = Path(".")) -> Cluster:
        gpu = catalog.gpu_ref(self.gpu, base_dir) if isinstance(self.gpu, str) else self.gpu
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

    hf_config: Path
    dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = None


class ProfileModelRef(_Strict):
    """A shipped model profile by name, or a profile YAML file (a path ending in .yaml, relative
    to the plan file, e.g. written by `ecoplan model import`), optionally with another weight
    or KV dtype."""

    profile: str
    dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = None
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = None


class WorkloadSpec(_Strict):
    """A dataset preset, or explicit input/output length distributions, plus arrivals."""

    preset: str | None = "sharegpt"
    input: LengthDist | None = None
    output: LengthDist | None = None
    arrivals: Arrivals | None = None

    @model_validator(mode="after")
    def _check(self) -> WorkloadSpec:
        if self.preset is None and (self.input is None or self.output is None):
            raise ValueError("give a preset or both input and output length distributions")
        return self


class SLOSpec(_Strict):
    """SLO; any field left out comes from the workload preset."""

    ttft_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    tpot_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    attainment: float = Field(default=90.0, gt=0, lt=100, allow_inf_nan=False)
    joint: bool = True


class Objective(_Strict):
    """What to optimise: goodput per GPU, or the fewest GPUs / lowest cost for a target rate."""

    kind: Literal["max_goodput_per_gpu", "min_gpus", "min_cost"] = "max_goodput_per_gpu"
    target_rate: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="req/s")


class SearchSpec(_Strict):
    """Which deployments the search enumerates (DESIGN.md §4)."""

    strategies: list[StrategyName] = Field(default_factory=lambda: list(STRATEGIES))
    tp: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    pp: list[int] = Field(default_factory=lambda: [1, 2])
    chunk_tokens: list[int] = Field(default_factory=lambda: [256, 512, 1024, 2048])
    macro_sizes: list[int] | None = Field(default=None, description="default: 2..all instances")
    window_fractions: list[float] = Field(
        default_factory=lambda: [0.1, 0.25, 0.5, 1.0],
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
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    instances: int = Field(default=1, ge=1, description="NoDG/PaDG instances; FuDG prefill ones")
    decode_instances: int = Field(default=0, ge=0)
    decode_tp: int | None = Field(default=None, ge=1)
    decode_pp: int | None = Field(default=None, ge=1)
    chunk_tokens: int = Field(default=512, ge=16)
    macro_size: int = Field(default=1, ge=1)
    window_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    def build(self) -> Deployment:
        return Deployment(**self.model_dump())


DEFAULT_RAMP = (20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)


def _positive_rates(v: list[float] | None) -> list[float] | None:
    """Request rates (req/s) must be positive and finite."""
    if v is not None and any(not (math.isfinite(r) and r > 0) for r in v):
        raise ValueError("rates must be positive finite numbers")
    return v


class RampSpec(_Strict):
    """A request-rate ramp or daily profile: one rate per step of `step_hours`."""

    rates: list[float] = Field(default_factory=lambda: list(DEFAULT_RAMP), min_length=1)
    step_hours: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    macro_min: int = Field(default=6, ge=1, description="N_l: EcoServe's lower bound (paper: 6)")
    macro_max: int = Field(default=11, ge=1, description="N_u: upper bound (paper: 11)")

    _rates = field_validator("rates")(_positive_rates)


class PlanFile(_Strict):
    """A plan file: scenario, objective, search space and optional fixed deployments."""

    cluster: ClusterSpec = ClusterSpec()
    model: str | ProfileModelRef | HFModelRef | ModelSpec = "codellama-34b"
    workload: WorkloadSpec = WorkloadSpec()
    slo: SLOSpec = SLOSpec()
    objective: Objective = Objective()
    search: SearchSpec = SearchSpec()
    kv: KVPolicy = KVPolicy()
    ramp: RampSpec = Field(
        default_factory=RampSpec, description="rate ramp for `ecoplan scale` and the report"
    )
    deployments: list[DeploymentSpec] = Field(default_factory=list)
    rates: list[float] | None = Field(default=None, description="rates for `evaluate`'s table")

    _rates = field_validator("rates")(_positive_rates)

    # ---- conversion -------------------------------------------------------------------------
    def build_model(self, base_dir: Path) -> ModelSpec:
        m = self.model
        if isinstance(m, str):
            return catalog.model_ref(m, base_dir)
        if isinstance(m, ProfileModelRef):
            spec = catalog.model_ref(m.profile, base_dir)
            upd: dict[str, Any] = {}
            if m.dtype:
                upd["dtype"] = m.dtype
            if m.kv_dtype:
                upd["kv_dtype"] = m.kv_dtype
            return spec.model_copy(update=upd)
        if isinstance(m, HFModelRef):
            path = m.hf_config if m.hf_config.is_absolute() else base_dir / m.hf_config
            spec = catalog.load_hf_config(path)
            return spec.model_copy(update={"dtype": m.dtype}) if m.dtype else spec
        return m

    def build_workload(self, base_dir: Path) -> tuple[Workload, SLO]:
        w = self.workload
        pre = preset(w.preset) if w.preset else None

        def fix(d: LengthDist | None) -> LengthDist | None:
            if d is not None and d.file is not None and not d.file.is_absolute():
                return d.model_copy(update={"file": base_dir / d.file})
            return d

        inp = fix(w.input) or (pre.workload.input if pre else None)
        out = fix(w.output) or (pre.workload.output if pre else None)
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

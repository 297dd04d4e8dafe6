"""Workload: length distributions, arrival process, SLO and dataset presets (docs/model.md §4)."""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special

from planner.errors import PlannerError

PERCENTILES = (50, 90, 99)  # latency percentiles every command reports
Z90 = float(special.ndtri(0.9))  # standard normal 90th percentile


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LengthDist(_Frozen):
    """Token-length distribution: fixed, lognormal (from any two of mean / median / p90 /
    sigma / cv) or empirical (values inline or a file of integers), clipped to [min, max]."""

    kind: Literal["fixed", "lognormal", "empirical"] = Field(
        default="lognormal",
        description="fixed: every request `mean` tokens; lognormal: from two of mean, median, "
        "p90, sigma, cv; empirical: `values` or `file`; default lognormal",
    )
    mean: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    median: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    p90: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    sigma: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    cv: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    values: list[float] | None = None
    file: Path | None = None
    min: int = Field(default=1, ge=1)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> LengthDist:
        if self.kind == "fixed" and self.mean is None:
            raise ValueError("a fixed length needs 'mean'")
        if self.kind == "lognormal":
            given = [
                k for k in ("mean", "median", "p90", "sigma", "cv") if getattr(self, k) is not None
            ]
            if len(given) != 2 or given == ["sigma", "cv"]:
                raise ValueError(
                    "a lognormal length needs exactly two of mean, median, p90, sigma, cv "
                    f"(got {', '.join(given) or 'none'})"
                )
            if self.p90 is not None and self.median is not None and self.p90 <= self.median:
                raise ValueError("p90 must exceed median")
            if self.p90 is not None and self.mean is not None:
                raise ValueError("give median or sigma with p90, not mean")
        if self.kind == "empirical" and (self.values is None) == (self.file is None):
            raise ValueError("an empirical length needs exactly one of 'values' or 'file'")
        if self.values is not None:
            if len(self.values) == 0:
                raise ValueError("values is empty")
            if any(not (math.isfinite(v) and v >= 1) for v in self.values):
                raise ValueError("values must be finite token counts >= 1")
        if self.max is not None and self.max < self.min:
            raise ValueError("max must be >= min")
        return self

    @cached_property
    def _lognormal(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal from the two given statistics."""
        mean, med, p90, sig, cv = self.mean, self.median, self.p90, self.sigma, self.cv
        if cv is not None:
            sig = math.sqrt(math.log1p(cv * cv))
        if med is not None and p90 is not None:
            sig = math.log(p90 / med) / Z90
        if sig is not None:
            if mean is not None:
                return math.log(mean) - sig * sig / 2, sig
            if med is not None:
                return math.log(med), sig
            assert p90 is not None
            return math.log(p90) - Z90 * sig, sig
        assert mean is not None and med is not None
        if mean <= med:
            raise PlannerError(f"lognormal length: mean ({mean}) must exceed median ({med})")
        return math.log(med), math.sqrt(2 * math.log(mean / med))

    def _empirical_values(self) -> np.ndarray:
        if self.values is not None:
            return np.asarray(self.values, dtype=float)
        assert self.file is not None
        return read_length_file(self.file)

    def quantiles(self, u: np.ndarray, cap: int | None = None) -> np.ndarray:
        """Inverse CDF at probabilities u, rounded to tokens, clipped to [min, max, cap]."""
        u = np.clip(np.asarray(u, dtype=float), 1e-9, 1 - 1e-9)
        if self.kind == "fixed":
            assert self.mean is not None
            x = np.full(u.shape, self.mean)
        elif self.kind == "lognormal":
            mu, sig = self._lognormal
            x = np.exp(mu + sig * special.ndtri(u))
        else:
            x = np.quantile(self._empirical_values(), u, method="inverted_cdf")
        hi = min(v for v in (self.max, cap) if v is not None) if (self.max or cap) else None
        return np.clip(np.rint(x), self.min, hi if hi is not None else np.inf)

    def nominal_mean(self) -> float:
        """Mean before clipping (the documented figure)."""
        if self.kind == "fixed":
            assert self.mean is not None
            return self.mean
        if self.kind == "lognormal":
            mu, sig = self._lognormal
            return math.exp(mu + sig * sig / 2)
        return float(self._empirical_values().mean())


MAX_LENGTH_FILE_BYTES = 50_000_000  # ~5 M token counts; larger traces should be sampled first


def read_length_file(path: Path) -> np.ndarray:
    """Token counts from a text file (numbers separated by whitespace or commas)."""
    try:
        size_bytes = path.stat().st_size
        if size_bytes > MAX_LENGTH_FILE_BYTES:
            raise PlannerError(
                f"{path}: length file is {size_bytes:,} bytes, over the "
                f"{MAX_LENGTH_FILE_BYTES:,}-byte limit; sample it first"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlannerError(f"{path}: cannot read length file: {exc}") from None
    try:
        vals = np.array([float(t) for t in text.replace(",", " ").split()], dtype=float)
    except ValueError as exc:
        raise PlannerError(f"{path}: length file must hold numbers only ({exc})") from None
    if vals.size == 0:
        raise PlannerError(f"{path}: length file is empty")
    if not np.all(np.isfinite(vals)) or vals.min() < 1:
        raise PlannerError(f"{path}: lengths must be finite token counts >= 1")
    return vals


class Arrivals(_Frozen):
    """Arrival process: Poisson, or Gamma inter-arrival times with coefficient of variation cv."""

    process: Literal["poisson", "gamma"] = Field(
        default="poisson",
        description="poisson, or gamma inter-arrival times (burstier than Poisson when cv > 1); "
        "default poisson",
    )
    cv: float = Field(
        default=1.0,
        gt=0,
        le=10,
        allow_inf_nan=False,
        description="coefficient of variation of gamma inter-arrival times ((0, 10]; ignored "
        "for poisson); default 1",
    )

    @property
    def ca2(self) -> float:
        """Squared coefficient of variation of inter-arrival times (1 for Poisson)."""
        return 1.0 if self.process == "poisson" else self.cv**2


class SLO(_Frozen):
    """Latency SLO: TTFT and TPOT bounds and the share of requests that must meet them."""

    ttft_s: float = Field(gt=0, allow_inf_nan=False)
    tpot_s: float = Field(gt=0, allow_inf_nan=False)
    attainment: float = Field(
        default=90.0, gt=0, lt=100, allow_inf_nan=False, description="percent"
    )
    joint: bool = Field(default=True, description="a request must meet both TTFT and TPOT")
    tbt_s: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="per-token gap bound (seconds)"
    )
    tbt_percentile: float = Field(
        default=99.0, gt=0, le=100, allow_inf_nan=False, description="percent"
    )

    @property
    def target(self) -> float:
        return self.attainment / 100.0

    @property
    def tbt_text(self) -> str:
        """The per-token gap bound for reports ("" when none): e.g. ", P99 token gap ≤ 200 ms"."""
        if self.tbt_s is None:
            return ""
        return f", P{self.tbt_percentile:g} token gap ≤ {self.tbt_s * 1e3:g} ms"

    def allowed_long_gaps(self, steps: np.ndarray) -> np.ndarray:
        """Inter-token gaps longer than `tbt_s` a request with n decode steps may have and still
        meet the TBT SLO (docs/model.md §4.3): its n gaps' `tbt_percentile`-th percentile
        (nearest rank, the ⌈p·n/100⌉-th smallest) is ≤ the bound iff at most
        n − ⌈p·n/100⌉ gaps exceed it. Every n when no TBT bound is set."""
        n = np.asarray(steps, dtype=float)
        if self.tbt_s is None:
            return n
        # the rounding guard keeps p·n/100 = 99.0000000001 from asking one gap more
        need = np.ceil(self.tbt_percentile * n / 100.0 - 1e-9)
        return np.maximum(n - need, 0.0)

    def scaled(self, k: float) -> SLO:
        tbt = None if self.tbt_s is None else self.tbt_s * k
        return self.model_copy(
            update={"ttft_s": self.ttft_s * k, "tpot_s": self.tpot_s * k, "tbt_s": tbt}
        )


class SharedPrefix(_Frozen):
    """A prompt prefix (e.g. a system prompt) that a share of the requests start with, which an
    engine with prefix caching computes once and reuses (docs/model.md §4.6). The input length
    distribution counts it: a request that has it has it inside its prompt."""

    tokens: int = Field(
        ge=1,
        le=1 << 24,
        description="length of the shared prefix (tokens, 1..16,777,216), part of the prompt",
    )
    share: float = Field(
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="share of requests whose prompt starts with the prefix ([0, 1]; 0: none)",
    )


class Workload(_Frozen):
    """Request lengths and arrivals (the rate is what the planner solves for)."""

    name: str = "custom"
    input: LengthDist
    output: LengthDist
    arrivals: Arrivals = Arrivals()
    prefix: SharedPrefix | None = None

    @model_validator(mode="after")
    def _prefix_fits(self) -> Workload:
        if self.prefix is None:  # a length file is read only when there is a prefix to check
            return self
        longest = longest_prompt_tokens(self.input)
        if longest is not None and self.prefix.tokens >= longest:
            where = f" in {self.input.file}" if self.input.file is not None else ""
            raise PlannerError(
                f"workload.prefix.tokens: {self.prefix.tokens:,} tokens is not shorter than the "
                f"longest prompt{where} ({longest:,} tokens), so no prompt can start with it"
            )
        return self


def longest_prompt_tokens(dist: LengthDist) -> int | None:
    """The longest length a distribution yields when it is bounded: its `max`, a fixed
    length, the largest empirical value (inline or read from its file, as `quantiles` draws
    them); None when unbounded."""
    tops = [dist.max] if dist.max is not None else []
    if dist.kind == "fixed" and dist.mean is not None:
        tops.append(max(round(dist.mean), dist.min))
    if dist.values is not None:
        tops.append(max(round(max(dist.values)), dist.min))
    elif dist.kind == "empirical" and dist.file is not None:
        tops.append(max(round(float(read_length_file(dist.file).max())), dist.min))
    return min(tops) if tops else None


class Preset(_Frozen):
    workload: Workload
    slo: SLO
    source: str


def _ln(mean: float, **kw: float) -> LengthDist:
    return LengthDist(kind="lognormal", mean=mean, **kw)


# Means and SLOs: EcoServe's evaluation (docs/model.md §4.4). Only the means of Alpaca, ShareGPT and
# LongBench are documented; their spread (sigma) is our assumption, stated in `source`.
PRESETS: dict[str, Preset] = {
    "alpaca": Preset(
        workload=Workload(
            name="alpaca", input=_ln(20.63, sigma=0.6), output=_ln(163.80, sigma=0.7)
        ),
        slo=SLO(ttft_s=1.0, tpot_s=0.1),
        source="Alpaca-GPT4 (arXiv 2304.03277): means 20.63/163.80 and SLO 1 s/100 ms from "
        "EcoServe, arXiv 2504.18154; lognormal sigma 0.6/0.7 assumed (docs/model.md §4.4, §12.3)",
    ),
    "sharegpt": Preset(
        workload=Workload(
            name="sharegpt", input=_ln(343.76, sigma=1.0), output=_ln(237.20, sigma=0.9)
        ),
        slo=SLO(ttft_s=5.0, tpot_s=0.1),
        source="ShareGPT: means 343.76/237.20 and SLO 5 s/100 ms from EcoServe, "
        "arXiv 2504.18154; lognormal sigma 1.0/0.9 assumed (docs/model.md §4.4, §12.3)",
    ),
    "longbench": Preset(
        workload=Workload(
            name="longbench", input=_ln(2686.89, sigma=0.6), output=_ln(101.78, sigma=0.8)
        ),
        slo=SLO(ttft_s=15.0, tpot_s=0.1),
        source="LongBench (arXiv 2308.14508): means 2686.89/101.78 and SLO 15 s/100 ms from "
        "EcoServe, arXiv 2504.18154; lognormal sigma 0.6/0.8 assumed (docs/model.md §4.4, §12.3)",
    ),
    "azure-conv": Preset(
        workload=Workload(
            name="azure-conv",
            input=_ln(1155, median=1020),
            output=_ln(211, median=129),
            arrivals=Arrivals(process="gamma", cv=1.1),
        ),
        slo=SLO(ttft_s=5.0, tpot_s=0.1),
        source="Azure LLM inference trace 2023, conversation (AzurePublicDataset; Splitwise, "
        "arXiv 2311.18677): lognormal fitted to mean and median (its p90 is then lower than the "
        "trace's), arrivals CV 1.1; SLO 5 s/100 ms assumed, as ShareGPT "
        "(docs/model.md §4.4, §12.3)",
    ),
    "azure-code": Preset(
        workload=Workload(
            name="azure-code",
            input=_ln(2048, median=1469),
            output=_ln(27.9, median=13),
            arrivals=Arrivals(process="gamma", cv=2.0),
        ),
        slo=SLO(ttft_s=10.0, tpot_s=0.1),
        source="Azure LLM inference trace 2023, code (AzurePublicDataset; Splitwise, "
        "arXiv 2311.18677): lognormal fitted to mean and median; 'very bursty' arrivals taken as "
        "CV 2.0 (EcoServe's largest); SLO 10 s/100 ms assumed (docs/model.md §4.4, §12.3)",
    ),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise PlannerError(f"workload: unknown preset '{name}'; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def request_sample(
    workload: Workload, max_context: int, n: int = 1024, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, stratified sample of (input, output) lengths: each marginal at the n quantiles
    (k + 0.5)/n, paired by a seeded permutation (lengths assumed independent); inputs are cut so
    that input + output fits the model's context."""
    u = (np.arange(n) + 0.5) / n
    rng = np.random.default_rng(seed)
    out = workload.output.quantiles(rng.permutation(u), cap=max_context - 1)
    inp = workload.input.quantiles(rng.permutation(u), cap=max_context - 1)
    inp = np.minimum(inp, max_context - out)
    return inp, out


def radical_inverse(k: np.ndarray) -> np.ndarray:
    """The base-2 radical inverse (van der Corput sequence) of non-negative integers k: the
    binary digits of k mirrored after the point, 0, 1/2, 1/4, 3/4, 1/8, … — any 2^m
    consecutive k take the values j/2^m once each."""
    k = np.asarray(k, dtype=np.int64).copy()
    out = np.zeros(k.shape)
    weight = 0.5
    while np.any(k):
        out += weight * (k & 1)
        k >>= 1
        weight /= 2.0
    return out


def stratified_prefix_hits(inp: np.ndarray, share: float) -> np.ndarray:
    """Which sampled requests start with the shared prefix (docs/model.md §4.6): the request
    of input-length rank r (ties in sample order) is a hit when the radical inverse of r is
    below `share`. Hits are spread evenly over the prompt lengths, their count is ⌈share·n⌉
    when n is a power of two (within a few of it otherwise), and a larger share only adds hits
    (the hit sets are nested), so nothing but the share moves when the share moves."""
    rank = np.empty(inp.size, dtype=np.int64)
    rank[np.argsort(inp, kind="stable")] = np.arange(inp.size)
    return radical_inverse(rank) < share


def cached_prefix_tokens(
    input_tokens: np.ndarray, hit: np.ndarray, prefix_tokens: int, block_tokens: int
) -> np.ndarray:
    """Prompt tokens a request finds in the prefix cache (docs/model.md §4.6): for a hit,
    ⌊min(P, I − 1)/b⌋·b with P the prefix, I its prompt and b the KV block size — engines reuse
    whole blocks only, and compute at least the prompt's last token (vLLM recomputes it when
    the whole prompt is cached); 0 for a miss. A prompt shorter than the prefix (the input
    distribution does not know which requests are hits) reuses what it holds of it."""
    inp = np.asarray(input_tokens)
    usable = np.minimum(prefix_tokens, np.maximum(inp - 1, 0))
    blocks = np.floor_divide(usable, block_tokens) * block_tokens
    return np.where(hit, blocks, 0).astype(inp.dtype)

"""`ecoplan calibrate`: fit a GPU profile's performance parameters to measured latencies.

A measurement is one iteration timed on real hardware: a prefill batch of `batch` prompts of
`input_tokens` tokens, or a decode step of `batch` sequences each holding `context_tokens` KV
tokens, of a model on `tp × pp` GPUs. Each is predicted by the phase model itself
(`InstancePerf.prefill` / `decode_step`) with the GPU profile rebuilt from a parameter vector p,
and p is the bounded least-squares solution of

    min_p  Σ_i (log t_i(p) − log m_i)²        (m_i measured, t_i predicted)

in log-parameter space (scipy.optimize.least_squares, trust-region reflective, bounds below).
Log time makes every row count by its relative error, whatever its size.

Only parameters the rows identify are fitted; the others keep the base profile's value, with
the reason. The rules, applied in order:

1. candidates: the GEMM curve (plateau, knee) and the prefill-attention curve (plateau, knee)
   only with prefill rows — a decode step's GEMMs have M = batch rows, where the compute curve
   plateau·M/(M + knee) gives a time almost constant in M, like weight streaming, so
   decode-only data cannot pin the compute curves; all-reduce latency and bus bandwidth only
   for the TP group sizes > 1 present, the bus bandwidth only when some row of that TP
   all-reduces BULK_MESSAGE_BYTES or more (tokens × hidden × activation bytes; small messages
   measure latency); the custom all-reduce latency only when the engine uses it on the link
   for one of those group sizes.
2. sensitivity: the Jacobian S_ij = ∂ log t_i / ∂ log p_j at the base profile; a parameter no
   row depends on (max_i |S_ij| < MIN_SENSITIVITY: a 10% change moves no row by 0.2%) is kept.
3. separability: a pivoted QR of S's unit-normalised columns; a parameter whose column is
   within MIN_INDEPENDENCE of the span of the stronger ones (|R_kk| below it) cannot be told
   apart from them and is kept.
4. precision: after the fit, the standard error of each log-parameter,
   σ·√((JᵀJ)⁻¹)_jj with σ² = Σ r² / (N − k); while the largest exceeds MAX_LOG_SE (±25%),
   that parameter goes back to its base value and the rest are refitted. Noise-free rows
   (σ = 0) keep every parameter rules 1–3 chose.

Bounds: efficiencies (shares of a peak) in [MIN_EFFICIENCY, 1]; times, token counts and
bandwidths within an absolute physical range and within a factor BOUND_FACTOR of the base
value — a calibration corrects a profile, it does not replace the hardware. A fitted value
on its bound is flagged (`ParameterFit.at_bound`).

Fitted values are rounded to 4 significant digits; the errors reported are those of the
rounded profile, i.e. of the file written.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.linalg import qr
from scipy.optimize import OptimizeResult, least_squares

from planner import catalog
from planner.engine import EngineProfile
from planner.errors import PlannerError
from planner.hardware import GPU
from planner.model import ModelSpec
from planner.perf.phases import InstancePerf
from planner.yamlio import clip

COLUMNS = (
    "model",
    "phase",
    "tp",
    "pp",
    "batch",
    "input_tokens",
    "context_tokens",
    "latency_ms",
)
PHASES = ("prefill", "decode")
BOUND_FACTOR = 10.0  # scale parameters stay within ×/÷ this of the base value
BULK_MESSAGE_BYTES = 4 * 2**20  # all-reduces this large measure the bus bandwidth
MIN_ROWS = 8  # fewer rows than this never calibrate anything
CONFLICT_RATIO = 2.0  # duplicate rows whose latencies differ by more are refused
MIN_SENSITIVITY = 0.02  # max |∂ log t / ∂ log p| below which a parameter is not identified
MAX_LOG_SE = 0.25  # standard error of a fitted log-parameter above which it is set back
MIN_INDEPENDENCE = 0.02  # |R_kk| of the normalised pivoted QR below which it is not separable
SIGNIFICANT_DIGITS = 4
MAX_EVALUATIONS = 60  # least-squares steps per fit (exact data converges in ~10)
MAX_FILE_BYTES = 20_000_000
MAX_NAME = 200  # characters of a profile name
_INT_LIMITS = {
    "tp": 4096,
    "pp": 4096,
    "batch": 1_000_000,
    "input_tokens": 10_000_000,
    "context_tokens": 10_000_000,
}
MAX_LATENCY_MS = 1e7


# ---- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One measured iteration (a CSV row). `row` counts data rows from 1; `line` is its line
    in the file. Prefill ignores `context_tokens`, decode ignores `input_tokens` (either may
    be left empty in the CSV, then it is 0 here)."""

    row: int
    line: int
    model_ref: str
    model: ModelSpec
    phase: str
    tp: int
    pp: int
    batch: int
    input_tokens: int
    context_tokens: int
    latency_s: float

    @property
    def key(self) -> tuple[str, str, int, int, int, int]:
        """The inputs that determine the iteration (the ignored token column left out)."""
        tokens = self.input_tokens if self.phase == "prefill" else self.context_tokens
        return (self.model_ref, self.phase, self.tp, self.pp, self.batch, tokens)


def _cell_int(text: str, where: str, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise PlannerError(
            f"{where}, column {column}: expected a number, got {clip(text, 30)!r}"
        ) from None
    top = _INT_LIMITS[column]
    if not (math.isfinite(value) and value > 0):
        raise PlannerError(f"{where}, column {column}: must be positive, got {clip(text, 30)}")
    if not value.is_integer() or value > top:
        raise PlannerError(
            f"{where}, column {column}: must be a whole number 1..{top:,}, got {clip(text, 30)}"
        )
    return int(value)


def _cell_latency(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PlannerError(
            f"{where}, column latency_ms: expected a number, got {clip(text, 30)!r}"
        ) from None
    if not (math.isfinite(value) and 0 < value <= MAX_LATENCY_MS):
        raise PlannerError(
            f"{where}, column latency_ms: must be a positive number of ms up to "
            f"{MAX_LATENCY_MS:g}, got {clip(text, 30)}"
        )
    return value * 1e-3


def _header(fields: list[str], where: str) -> list[str]:
    names = [f.strip() for f in fields]
    missing = [c for c in COLUMNS if c not in names]
    extra = [n for n in names if n not in COLUMNS]
    if missing:
        raise PlannerError(f"{where} header: missing column(s) {', '.join(missing)}")
    if extra:
        shown = ", ".join(repr(clip(e, 30)) for e in extra[:3])
        raise PlannerError(
            f"{where} header: unknown column(s) {shown}; expected exactly {','.join(COLUMNS)}"
        )
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise PlannerError(f"{where} header: column {twice} appears twice")
    return names


def parse_measurements(
    text: str, where: str = "measurements", base_dir: Path = Path(".")
) -> list[Measurement]:
    """Parse and check a measurements CSV (columns COLUMNS, in any order; blank lines and
    lines starting with `#` are skipped). `model` is a shipped model profile name or a model
    YAML file relative to `base_dir`. Any problem is a one-line PlannerError naming the row
    (data rows count from 1; the file line is given too) and the column."""
    lines = [
        (n, ln)
        for n, ln in enumerate(text.splitlines(), start=1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise PlannerError(f"{where}: no header and no rows")
    try:
        parsed = list(csv.reader(io.StringIO("\n".join(ln for _, ln in lines))))
    except csv.Error as exc:
        raise PlannerError(f"{where}: not valid CSV: {clip(exc, 80)}") from None
    if len(parsed) != len(lines):  # a quoted field spanning lines
        raise PlannerError(f"{where}: a quoted field spans several lines")
    names = _header(parsed[0], f"{where} line {lines[0][0]}")
    models: dict[str, ModelSpec] = {}
    out: list[Measurement] = []
    for row_no, ((line_no, _), fields) in enumerate(zip(lines[1:], parsed[1:], strict=True), 1):
        at = f"{where} row {row_no} (line {line_no})"
        if len(fields) != len(names):
            raise PlannerError(f"{at}: {len(fields)} fields, the header has {len(names)}")
        cell = {n: f.strip() for n, f in zip(names, fields, strict=True)}
        phase = cell["phase"].lower()
        if phase not in PHASES:
            raise PlannerError(
                f"{at}, column phase: unknown phase {clip(cell['phase'], 30)!r}; "
                "expected prefill or decode"
            )
        ref = cell["model"]
        if not ref:
            raise PlannerError(f"{at}, column model: empty")
        if ref not in models:
            try:
                models[ref] = catalog.model_ref(ref, base_dir)
            except PlannerError as exc:
                why = str(exc).removeprefix("model: ")
                raise PlannerError(f"{at}, column model: {why}") from None
        model = models[ref]
        ignored = "context_tokens" if phase == "prefill" else "input_tokens"
        ints = {
            c: 0 if c == ignored and not cell[c] else _cell_int(cell[c], at, c) for c in _INT_LIMITS
        }
        problem = model.tp_problem(ints["tp"])
        if problem:
            raise PlannerError(f"{at}, column tp: {problem} of {clip(model.name, 40)}")
        if ints["pp"] > model.num_layers:
            raise PlannerError(
                f"{at}, column pp: pp={ints['pp']} exceeds the {model.num_layers} layers of "
                f"{clip(model.name, 40)}"
            )
        out.append(
            Measurement(
                row=row_no,
                line=line_no,
                model_ref=ref,
                model=model,
                phase=phase,
                tp=ints["tp"],
                pp=ints["pp"],
                batch=ints["batch"],
                input_tokens=ints["input_tokens"],
                context_tokens=ints["context_tokens"],
                latency_s=_cell_latency(cell["latency_ms"], at),
            )
        )
    _check_duplicates(out, where)
    if len(out) < MIN_ROWS:
        raise PlannerError(f"{where}: {len(out)} rows; calibration needs at least {MIN_ROWS}")
    return out


def _check_duplicates(rows: Sequence[Measurement], where: str) -> None:
    """Rows with the same inputs must agree within CONFLICT_RATIO (repeats are averaged by the
    fit; a larger spread is a mislabelled row, not noise)."""
    first: dict[tuple[str, str, int, int, int, int], Measurement] = {}
    for m in rows:
        seen = first.setdefault(m.key, m)
        if seen is m:
            continue
        lo, hi = sorted((seen.latency_s, m.latency_s))
        if hi > CONFLICT_RATIO * lo:
            raise PlannerError(
                f"{where} row {m.row} (line {m.line}), column latency_ms: "
                f"{m.latency_s * 1e3:g} ms conflicts with row {seen.row} (same inputs, "
                f"{seen.latency_s * 1e3:g} ms): they differ by more than {CONFLICT_RATIO:g}×"
            )


def read_measurements(path: Path) -> list[Measurement]:
    """Read and check a measurements CSV file (see `parse_measurements`); model YAML paths
    are relative to the file's folder."""
    where = clip(path.name, 80)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PlannerError(f"{where}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlannerError(f"{clip(path, 120)}: file not found") from None
    except IsADirectoryError:
        raise PlannerError(f"{clip(path, 120)}: is a folder, not a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise PlannerError(f"{clip(path, 120)}: cannot read: {clip(reason, 100)}") from None
    return parse_measurements(text, where, path.parent)


# ---- parameters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterSpec:
    """A fittable parameter: its path in the GPU profile (`intra_node.allreduce_latency_us.2`
    is the entry for group size 2), physical bounds and unit."""

    name: str
    lower: float
    upper: float
    unit: str = ""


_EFFICIENCIES = (
    "gemm.plateau",
    "attention.prefill_plateau",
    "memory_efficiency.weights",
    "memory_efficiency.kv_cache",
)
PREFILL_ONLY = (
    "gemm.plateau",
    "gemm.knee_tokens",
    "attention.prefill_plateau",
    "attention.prefill_knee_tokens",
)
_UNITS = {
    "gemm.knee_tokens": "tokens",
    "attention.prefill_knee_tokens": "tokens",
    "kernel_fixed_us": "µs",
    "iteration_overhead_ms": "ms",
    "allreduce_latency_us": "µs",
    "allreduce_bus_bandwidth_gb_s": "GB/s",
    "custom_allreduce_latency_us": "µs",
}
# absolute physical ranges; scale parameters also stay within BOUND_FACTOR of the base value
_RANGES = {
    "gemm.knee_tokens": (1.0, 1e5),
    "attention.prefill_knee_tokens": (1.0, 1e6),
    "kernel_fixed_us": (0.01, 1000.0),
    "iteration_overhead_ms": (0.001, 1000.0),
    "allreduce_latency_us": (0.1, 5000.0),
    "allreduce_bus_bandwidth_gb_s": (0.1, 1e4),
    "custom_allreduce_latency_us": (0.1, 5000.0),
}
MIN_EFFICIENCY = 0.02


def parameter_spec(name: str, base_value: float) -> ParameterSpec:
    """Bounds of a parameter: efficiencies (shares of a peak) in [MIN_EFFICIENCY, 1]; times,
    sizes and bandwidths within their absolute physical range and within a factor
    BOUND_FACTOR of the base value either way (a calibration corrects a profile; it does not
    replace the hardware)."""
    if name in _EFFICIENCIES:
        return ParameterSpec(name, MIN_EFFICIENCY, 1.0)
    key = name if name in _RANGES else name.split(".")[1]
    lo, hi = _RANGES[key]
    if base_value > 0:
        lo, hi = max(lo, base_value / BOUND_FACTOR), min(hi, base_value * BOUND_FACTOR)
    return ParameterSpec(name, lo, hi, _UNITS[key])


def parameter_value(gpu: GPU, engine: EngineProfile, name: str) -> float:
    """The value the phase model uses for parameter `name` on `gpu` under `engine` (a group
    size absent from a table takes the entry the model would use; no profile overhead means
    the engine's)."""
    link = gpu.intra_node
    parts = name.split(".")
    if name == "iteration_overhead_ms":
        g = gpu.iteration_overhead_ms
        return engine.iteration_overhead_ms if g is None else g
    if name == "intra_node.custom_allreduce_latency_us":
        return link.custom_allreduce_latency_us or 0.0
    if parts[0] == "intra_node":
        table = getattr(link, parts[1])
        return float(link._for_group(table, int(parts[2])))
    value: Any = gpu.model_dump()
    for p in parts:
        value = value[p]
    return float(value)


def with_parameters(gpu: GPU, values: dict[str, float]) -> GPU:
    """`gpu` with the named parameters set (validated as a GPU profile)."""
    data = gpu.model_dump()
    for name, v in values.items():
        parts = name.split(".")
        node: dict[Any, Any] = data
        for p in parts[:-1]:
            node = node[p]
        key: str | int = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
        node[key] = float(v)
    return GPU.model_validate(data)


def allreduce_message_bytes(m: Measurement) -> float:
    """Bytes of each TP all-reduce in the row's iteration: tokens × hidden × activation bytes
    (a decode step with pp stages runs micro-batches of ⌈batch/pp⌉)."""
    tokens = m.batch * m.input_tokens if m.phase == "prefill" else -(-m.batch // m.pp)
    return tokens * m.model.hidden_size * m.model.activation_dtype_bytes


def candidate_parameters(
    gpu: GPU, engine: EngineProfile, rows: Sequence[Measurement]
) -> tuple[list[ParameterSpec], dict[str, str]]:
    """Rule 1: the parameters these rows could bear on, and those kept by rule with why (a
    note on a name that is no spec, such as `intra_node.allreduce_*`, covers a family)."""
    kept: dict[str, str] = {}
    names = [
        "gemm.plateau",
        "gemm.knee_tokens",
        "attention.prefill_plateau",
        "attention.prefill_knee_tokens",
        "memory_efficiency.weights",
        "memory_efficiency.kv_cache",
        "kernel_fixed_us",
        "iteration_overhead_ms",
    ]
    if not any(m.phase == "prefill" for m in rows):
        for name in PREFILL_ONLY:
            kept[name] = (
                "decode-only data: the compute curves show in prefill rows (decode GEMMs, at "
                "M = batch, look like weight streaming)"
            )
    if gpu.gemm.measured is not None:
        for name in ("gemm.plateau", "gemm.knee_tokens"):
            kept.setdefault(name, "the base profile's measured GEMM table replaces the curve")
    groups = sorted({m.tp for m in rows if m.tp > 1})
    link = gpu.intra_node
    for g in groups:
        names += [
            f"intra_node.allreduce_latency_us.{g}",
            f"intra_node.allreduce_bus_bandwidth_gb_s.{g}",
        ]
        largest = max(allreduce_message_bytes(m) for m in rows if m.tp == g)
        if largest < BULK_MESSAGE_BYTES:
            kept[names[-1]] = (
                f"no TP={g} row all-reduces {BULK_MESSAGE_BYTES / 2**20:g} MiB or more (largest "
                f"{largest / 2**20:.2g} MiB): small messages measure latency, not bandwidth"
            )
    if engine.custom_allreduce and any(
        g <= 8 and link.supports_custom_allreduce(g) for g in groups
    ):
        names.append("intra_node.custom_allreduce_latency_us")
    if not groups:
        kept["intra_node.allreduce_*"] = "no rows with TP > 1"
    return [parameter_spec(n, parameter_value(gpu, engine, n)) for n in names], kept


# ---- prediction -----------------------------------------------------------------------------


def predict(gpu: GPU, engine: EngineProfile, rows: Sequence[Measurement]) -> np.ndarray:
    """Each row's iteration time (s) by the phase model: `InstancePerf(model, gpu, gpu's link,
    tp, pp, engine).prefill(input_tokens, batch)` or `.decode_step(batch, context_tokens)`,
    evaluated once per (model, tp, pp, phase) group with arrays."""
    out = np.empty(len(rows))
    groups: dict[tuple[str, int, int, str], list[int]] = {}
    for i, m in enumerate(rows):
        groups.setdefault((m.model_ref, m.tp, m.pp, m.phase), []).append(i)
    for (_, tp, pp, phase), idx in groups.items():
        first = rows[idx[0]]
        perf = InstancePerf(first.model, gpu, gpu.intra_node, tp, pp, engine)
        batch = np.array([rows[i].batch for i in idx], dtype=float)
        if phase == "prefill":
            tokens = np.array([rows[i].input_tokens for i in idx], dtype=float)
            t = perf.prefill(tokens, batch).total_s
        else:
            tokens = np.array([rows[i].context_tokens for i in idx], dtype=float)
            t = perf.decode_step(batch, tokens).total_s
        out[idx] = np.broadcast_to(t, batch.shape)
    return out


# ---- identification -------------------------------------------------------------------------


def _model_fn(
    base: GPU, engine: EngineProfile, rows: Sequence[Measurement], specs: Sequence[ParameterSpec]
) -> Callable[[np.ndarray], np.ndarray]:
    """log t(x) for x = log p of the specs' parameters."""
    names = [s.name for s in specs]

    def log_times(x: np.ndarray) -> np.ndarray:
        gpu = with_parameters(base, dict(zip(names, np.exp(x).tolist(), strict=True)))
        return np.log(predict(gpu, engine, rows))

    return log_times


def sensitivities(
    base: GPU, engine: EngineProfile, rows: Sequence[Measurement], specs: Sequence[ParameterSpec]
) -> np.ndarray:
    """S_ij = ∂ log t_i / ∂ log p_j at the base values, by central differences of step 1e-3
    (one-sided at a bound): S_ij = 0.2 means a 10% change of p_j changes row i's time by 2%."""
    x0 = _start(base, engine, specs)
    f = _model_fn(base, engine, rows, specs)
    lo, hi = _log_bounds(specs)
    h = 1e-3
    cols = []
    for j in range(len(specs)):
        up, down = x0.copy(), x0.copy()
        up[j] = min(x0[j] + h, hi[j])
        down[j] = max(x0[j] - h, lo[j])
        cols.append((f(up) - f(down)) / (up[j] - down[j]))
    return np.column_stack(cols) if cols else np.zeros((len(rows), 0))


def identify(
    specs: Sequence[ParameterSpec], s: np.ndarray
) -> tuple[list[ParameterSpec], dict[str, str]]:
    """Rules 2 and 3 (module docstring) on the sensitivity matrix `s` (one column per spec):
    the specs to fit, and the kept ones with why."""
    kept: dict[str, str] = {}
    strong = []
    for j, spec in enumerate(specs):
        top = float(np.max(np.abs(s[:, j]))) if s.shape[0] else 0.0
        if top < MIN_SENSITIVITY:
            kept[spec.name] = (
                f"the rows hardly depend on it (largest ∂ log t / ∂ log p {top:.3f} < "
                f"{MIN_SENSITIVITY:g})"
            )
        else:
            strong.append(j)
    if not strong:
        return [], kept
    unit = s[:, strong] / np.linalg.norm(s[:, strong], axis=0)
    _, r, perm = qr(unit, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    names = [specs[j].name for j in strong]
    chosen: list[int] = []
    for k, col in enumerate(perm):
        if k < len(diag) and diag[k] >= MIN_INDEPENDENCE:
            chosen.append(int(col))
            continue
        kept[names[col]] = f"not separable from {_partners(unit, col, chosen, names)} in these rows"
    return [specs[strong[c]] for c in sorted(chosen)], kept


def _partners(unit: np.ndarray, col: int, chosen: list[int], names: list[str]) -> str:
    """The chosen parameters whose columns make up most of column `col` (least squares)."""
    if not chosen:
        return "the others"
    coef, *_ = np.linalg.lstsq(unit[:, chosen], unit[:, col], rcond=None)
    weight = np.abs(coef)
    order = [int(i) for i in np.argsort(-weight) if weight[i] >= 0.25 * weight.max()][:3]
    return " and ".join(names[chosen[i]] for i in order)


# ---- fitting --------------------------------------------------------------------------------


def _log_bounds(specs: Sequence[ParameterSpec]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.log([s.lower for s in specs]),
        np.log([s.upper for s in specs]),
    )


def _start(base: GPU, engine: EngineProfile, specs: Sequence[ParameterSpec]) -> np.ndarray:
    """log of the base values, moved inside the bounds."""
    x = [math.log(min(max(parameter_value(base, engine, s.name), s.lower), s.upper)) for s in specs]
    return np.array(x, dtype=float)


def _round(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    return float(f"{x:.{digits}g}")


def _solve(
    base: GPU,
    engine: EngineProfile,
    rows: Sequence[Measurement],
    specs: Sequence[ParameterSpec],
    measured_log: np.ndarray,
    x0: np.ndarray,
) -> OptimizeResult:
    """min_x Σ_i (log t_i(exp x) − log m_i)², x = log p within the specs' bounds (trust-region
    reflective, finite-difference Jacobian)."""
    f = _model_fn(base, engine, rows, specs)
    lo, hi = _log_bounds(specs)
    return least_squares(
        lambda x: f(x) - measured_log,
        np.clip(x0, lo, hi),
        bounds=(lo, hi),
        method="trf",
        diff_step=1e-6,
        ftol=1e-12,
        xtol=1e-12,
        gtol=1e-12,
        max_nfev=MAX_EVALUATIONS,
    )


def log_standard_errors(jac: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Standard error of each fitted log-parameter (≈ its relative uncertainty):
    se_j = σ·√((JᵀJ)⁻¹)_jj with σ² = Σ r² / (N − k), from the Jacobian J (N × k) and the
    residuals r at the fit; 0 when N ≤ k (σ cannot be estimated), inf along a direction the
    rows do not constrain at all."""
    n, k = jac.shape
    if n <= k or k == 0:
        return np.zeros(k)
    sigma2 = float(residuals @ residuals) / (n - k)
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    tiny = sv <= 1e-12 * sv[0] if sv[0] > 0 else np.ones_like(sv, dtype=bool)
    inv2 = np.where(tiny, 0.0, 1.0 / np.where(tiny, 1.0, sv) ** 2)
    var = (vt.T**2) @ inv2 * sigma2
    free = (np.abs(vt[tiny]) > 1e-6).any(axis=0) if tiny.any() else np.zeros(k, dtype=bool)
    return np.where(free, math.inf, np.sqrt(var))


def _pct(x: float) -> str:
    return "∞%" if not math.isfinite(x) else f"{x * 100:.0f}%"


@dataclass(frozen=True)
class ParameterFit:
    """One candidate parameter: base and calibrated value (equal when kept), the fit's
    standard error of its log (≈ relative uncertainty; None when kept) and, when kept,
    why (`reason`)."""

    name: str
    unit: str
    base: float
    value: float
    fitted: bool
    reason: str = ""
    uncertainty: float | None = None
    lower: float = 0.0
    upper: float = math.inf

    @property
    def kept(self) -> bool:
        return not self.fitted

    @property
    def at_bound(self) -> bool:
        """A fitted value on its bound: the rows push it further, so something else in the
        model or the measurements is off."""
        return self.fitted and not self.lower * 1.001 < self.value < self.upper / 1.001


@dataclass(frozen=True)
class RowFit:
    """One measurement, its prediction by the calibrated profile and the relative error
    predicted / measured − 1 (also by the base profile)."""

    measurement: Measurement
    predicted_s: float
    error: float
    base_predicted_s: float
    base_error: float


@dataclass(frozen=True)
class ErrorSummary:
    """|error| over a group of rows — a phase (`key` "prefill" or "decode"), a TP degree (`key`
    the degree) or all rows (`key` "all") — by the calibrated and by the base profile."""

    key: str | int
    rows: int
    median_abs: float
    max_abs: float
    base_median_abs: float
    base_max_abs: float


@dataclass(frozen=True)
class Calibration:
    """The result of `calibrate`: the fitted GPU profile, every candidate parameter (fitted or
    kept), notes on parameter families kept by rule, and each row's prediction and error."""

    gpu: GPU
    base: GPU
    engine: str
    source: str
    parameters: tuple[ParameterFit, ...]
    notes: tuple[str, ...]
    rows: tuple[RowFit, ...]
    by_phase: tuple[ErrorSummary, ...]
    by_tp: tuple[ErrorSummary, ...]
    overall: ErrorSummary

    @property
    def fitted(self) -> tuple[ParameterFit, ...]:
        return tuple(p for p in self.parameters if p.fitted)

    @property
    def kept(self) -> tuple[ParameterFit, ...]:
        return tuple(p for p in self.parameters if p.kept)

    def parameter(self, name: str) -> ParameterFit:
        return next(p for p in self.parameters if p.name == name)


def summary_label(e: ErrorSummary) -> str:
    """`prefill`, `TP 2`, `all`: how tables name a group of rows."""
    return f"TP {e.key}" if isinstance(e.key, int) else e.key


def _summary(key: str | int, fits: Iterable[RowFit]) -> ErrorSummary:
    rows = list(fits)
    err = np.abs([r.error for r in rows])
    base = np.abs([r.base_error for r in rows])
    return ErrorSummary(
        key,
        len(rows),
        float(np.median(err)),
        float(np.max(err)),
        float(np.median(base)),
        float(np.max(base)),
    )


def _sources(base: GPU, fitted: Sequence[str], note: str) -> dict[str, str]:
    """The base profile's source notes, minus those whose every field was refitted, plus the
    note for each fitted parameter."""
    names = set(fitted)
    dump = base.model_dump()

    def leaves(prefix: str, value: Any) -> set[str]:
        """The set fields under `prefix` (unset optional ones describe nothing)."""
        if isinstance(value, dict):
            return {leaf for k, v in value.items() for leaf in leaves(f"{prefix}.{k}", v)}
        return set() if value is None else {prefix}

    out = {}
    for key, text in base.sources.items():
        covered = leaves(key, dump[key]) if key in dump else set()
        if not (covered and covered <= names):
            out[key] = text
    return {**out, **dict.fromkeys(fitted, note)}


def calibrate(
    rows: Sequence[Measurement],
    base: GPU,
    engine: EngineProfile,
    *,
    name: str | None = None,
    source: str = "measurements",
) -> Calibration:
    """Fit `base`'s identifiable parameters to `rows` (module docstring): least squares on
    log time, bounded, in log-parameter space, from the base values. After each fit, the
    parameter with the largest standard error (`log_standard_errors`) above MAX_LOG_SE is
    set back to its base value and the rest refitted. Raises a PlannerError when there are
    no more rows than the parameters the rows identify."""
    if len(rows) < MIN_ROWS:
        raise PlannerError(f"{source}: {len(rows)} rows; calibration needs at least {MIN_ROWS}")
    if name is not None and not 0 < len(name.strip()) <= MAX_NAME:
        raise PlannerError(f"name: must be 1..{MAX_NAME} characters, got {len(name.strip())}")
    specs, kept = candidate_parameters(base, engine, rows)
    open_specs = [sp for sp in specs if sp.name not in kept]
    chosen, weak = identify(open_specs, sensitivities(base, engine, rows, open_specs))
    kept.update(weak)
    if not chosen:
        raise PlannerError(f"{source}: the rows identify no parameter of the GPU profile")
    if len(rows) <= len(chosen):
        raise PlannerError(
            f"{source}: {len(rows)} rows cannot determine the {len(chosen)} parameters they "
            "bear on (a fit needs more rows than parameters); add rows: more batch sizes, "
            "lengths, TP degrees"
        )
    measured = np.log([m.latency_s for m in rows])
    x = _start(base, engine, chosen)
    while True:
        sol = _solve(base, engine, rows, chosen, measured, x)
        se = log_standard_errors(sol.jac, sol.fun)
        worst = int(np.argmax(se))
        if se[worst] <= MAX_LOG_SE:
            break
        kept[chosen[worst].name] = f"poorly determined by these rows (±{_pct(se[worst])})"
        x = np.delete(sol.x, worst)
        chosen = [c for i, c in enumerate(chosen) if i != worst]
        if not chosen:
            raise PlannerError(
                f"{source}: the rows determine no parameter of the GPU profile to ±"
                f"{_pct(MAX_LOG_SE)} (too few rows or too much scatter)"
            )
    values = {c.name: _round(float(np.exp(v))) for c, v in zip(chosen, sol.x, strict=True)}
    spread = {c.name: float(u) for c, u in zip(chosen, se, strict=True)}
    gpu = with_parameters(base, values)
    meas = np.array([m.latency_s for m in rows])
    pred, base_pred = predict(gpu, engine, rows), predict(base, engine, rows)
    fits = tuple(
        RowFit(m, float(p), float(p / t - 1.0), float(b), float(b / t - 1.0))
        for m, p, b, t in zip(rows, pred, base_pred, meas, strict=True)
    )
    overall = _summary("all", fits)
    params = tuple(
        ParameterFit(
            name=sp.name,
            unit=sp.unit,
            base=parameter_value(base, engine, sp.name),
            value=values.get(sp.name, parameter_value(base, engine, sp.name)),
            fitted=sp.name in values,
            reason=kept.get(sp.name, ""),
            uncertainty=spread.get(sp.name),
            lower=sp.lower,
            upper=sp.upper,
        )
        for sp in specs
    )
    names = {sp.name for sp in specs}
    note = (
        f"calibrated by ecoplan calibrate from {source}, {len(rows)} rows, median |error| "
        f"{overall.median_abs * 100:.1f}%"
    )
    described = f"{base.description}; calibrated from {source}" if base.description else note
    gpu = GPU.model_validate(
        {
            **gpu.model_dump(),
            "name": name or f"{base.name}-calibrated",
            "description": described,
            "sources": _sources(base, list(values), note),
        }
    )
    phases = [p for p in PHASES if any(r.measurement.phase == p for r in fits)]
    tps = sorted({r.measurement.tp for r in fits})
    return Calibration(
        gpu=gpu,
        base=base,
        engine=engine.name,
        source=source,
        parameters=params,
        notes=tuple(f"{k}: kept, {v}" for k, v in kept.items() if k not in names),
        rows=fits,
        by_phase=tuple(_summary(p, (r for r in fits if r.measurement.phase == p)) for p in phases),
        by_tp=tuple(_summary(t, (r for r in fits if r.measurement.tp == t)) for t in tps),
        overall=overall,
    )


def calibrate_file(
    path: Path, base: GPU, engine: EngineProfile, name: str | None = None
) -> Calibration:
    """`calibrate` on a measurements CSV file (`read_measurements`)."""
    return calibrate(read_measurements(path), base, engine, name=name, source=path.name)


# ---- output ---------------------------------------------------------------------------------


def profile_yaml(gpu: GPU) -> str:
    """A GPU profile as YAML in the shipped profiles' format: fields in schema order, small
    tables in flow style, one source note per line."""
    data = _plain(gpu.model_dump(exclude_none=True))
    sources = data.pop("sources", {})
    body = yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000
    )
    if not sources:
        return body
    notes = yaml.safe_dump({"sources": sources}, sort_keys=False, allow_unicode=True, width=1000)
    return body + notes


def _plain(o: Any) -> Any:
    """Tuples (measured tables) as lists, which YAML's safe dumper writes."""
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain(v) for v in o]
    return o

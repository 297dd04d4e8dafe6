"""`--format json` of every command: one JSON object per command, versioned by SCHEMA_VERSION
and documented field by field (with units) in docs/json.md. Each function renders a library
result object; none computes anything the table or markdown renderings do not also show."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.hardware import GPU
from planner.units import GIB

if TYPE_CHECKING:
    from planner.compare import Comparison
    from planner.crosscheck.evaluate import SimComparison, SimReport, SimRun
    from planner.deployment import Deployment
    from planner.ecoserve_paper import PaperComparison
    from planner.estimate import EstimateGrid, EstimateRow
    from planner.evaluate import Evaluation
    from planner.model import ModelSpec
    from planner.perf import PhaseTime
    from planner.perf.calibrate import Calibration, ErrorSummary
    from planner.pipeline import PlanOutcome, ScaleOutcome
    from planner.report.launch import LaunchInput
    from planner.scenario import Scenario
    from planner.search import Ranked
    from planner.sensitivity import SensitivityTable
    from planner.simulate.results import SimResult
    from planner.strategies import Prediction

SCHEMA_VERSION = 1


def dumps(doc: dict[str, Any]) -> str:
    """The document as JSON text; inf and NaN (JSON has neither) become null."""
    return json.dumps(_finite(doc), indent=2, allow_nan=False)


def _finite(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def _doc(command: str, **fields: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": command, **fields}


def _percentiles(values: Mapping[int, float], mean: float | None = None) -> dict[str, float]:
    out = {f"p{q}": v for q, v in sorted(values.items())}
    return {"mean": mean, **out} if mean is not None else out


def deployment(d: Deployment) -> dict[str, Any]:
    fudg = d.family == "FuDG"
    return {
        "strategy": d.strategy,
        "family": d.family,
        "label": d.label(),
        "gpus": d.gpus,
        "replicas": d.replicas,
        "tp": d.tp,
        "pp": d.pp,
        "instances": d.instances,
        "decode_instances": d.decode_instances if fudg else None,
        "decode_tp": d.dtp if fudg else None,
        "decode_pp": d.dpp if fudg else None,
        "chunk_tokens": d.chunk_tokens if d.strategy == "sarathi" else None,
        "macro_size": d.macro_size if d.strategy == "ecoserve" else None,
        "window_s": d.window_s if d.strategy == "ecoserve" else None,
    }


def scenario(s: Scenario) -> dict[str, Any]:
    c = s.cluster
    inp, out = s.sample()
    arr = s.workload.arrivals
    limits = s.engine.limits(c.gpu.name, c.gpu.memory_gib, int(max(inp + out)))
    # the longest request the plan serves, as the instance models size it (max_model_len)
    longest = int(min(float((inp + out).max()), s.model.max_context))
    whole = s.engine.limits(c.gpu.name, c.gpu.memory_gib, longest, chunked=False)
    return {
        "cluster": {
            "gpu": c.gpu.name,
            "nodes": c.nodes,
            "gpus_per_node": c.gpus_per_node,
            "total_gpus": c.total_gpus,
            "intra_node": c.link.kind,
            "network_gbit": c.network.bandwidth_gbit,
            "price_per_gpu_hour": c.gpu_hour_price,
        },
        "model": {
            "name": s.model.name,
            "dtype": s.model.dtype,
            "kv_dtype": s.model.cache_dtype,
            "hf_id": s.model.hf_id,
            "params_total": s.model.param_count,
            "params_active": s.model.active_param_count,
            "kv_bytes_per_token": s.model.kv_bytes_per_token,
        },
        "workload": {
            "name": s.workload.name,
            "mean_input_tokens": float(inp.mean()),
            "mean_output_tokens": float(out.mean()),
            "arrivals": {"process": arr.process, "cv": arr.cv if arr.process == "gamma" else 1.0},
            "prefix": _prefix(s),
        },
        "slo": {
            "ttft_s": s.slo.ttft_s,
            "tpot_s": s.slo.tpot_s,
            "attainment_pct": s.slo.attainment,
            "joint": s.slo.joint,
            "tbt_s": s.slo.tbt_s,
            "tbt_percentile": s.slo.tbt_percentile,
        },
        "kv_policy": s.kv.policy,
        "engine": {
            "name": s.engine.name,
            "max_num_seqs": limits.max_num_seqs,
            "max_num_batched_tokens": limits.max_num_batched_tokens,
            "max_num_batched_tokens_unchunked": whole.max_num_batched_tokens,
            "max_model_len": longest,
            "gpu_memory_utilization": s.engine.gpu_memory_utilization,
            "enforce_eager": not s.engine.cuda_graph_decode,
            "disable_custom_all_reduce": not s.engine.custom_allreduce,
            "enable_prefix_caching": s.engine.prefix_caching,
        },
    }


def _prefix(s: Scenario) -> dict[str, Any] | None:
    """The workload's shared prefix and what the request sample reuses of it."""
    pre = s.workload.prefix
    if pre is None:
        return None
    cached = s.cached_tokens()
    return {
        "tokens": pre.tokens,
        "share": pre.share,
        "mean_cached_tokens": 0.0 if cached is None else float(cached.mean()),
    }


def prediction(p: Prediction | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "rate_rps": p.rate,
        "stable": p.stable,
        "attainment": p.attainment,
        "ttft_attainment": p.ttft_attainment,
        "tpot_attainment": p.tpot_attainment,
        "tbt_attainment": p.tbt_attainment,
        "ttft_s": _percentiles(p.ttft_s) if p.ttft_s else None,
        "tpot_s": _percentiles(p.tpot_s) if p.tpot_s else None,
        "decode_batch": p.decode_batch,
        "utilisation": p.utilisation,
        "network_bytes_per_s": p.network_bytes_s,
        "binding": p.binding,
        "detail": p.detail,
    }


def _ranked(r: Ranked) -> dict[str, Any]:
    g = r.goodput
    return {
        "deployment": deployment(g.deployment),
        "goodput_rps": g.rate,
        "goodput_per_gpu_rps": g.per_gpu,
        "at_goodput": prediction(g.prediction),
        "gpus_for_target": r.gpus_needed,
        "cost_per_hour_for_target": r.cost_per_hour,
        "cost_per_million_output_tokens": r.cost_per_million_tokens,
        "binding": g.binding,
        "detail": g.detail,
    }


def _table(t: SensitivityTable) -> dict[str, Any]:
    return {"title": t.title, "columns": t.column_labels, "rows": t.rows}


def _paper(c: PaperComparison) -> dict[str, Any]:
    return {
        "paper_tp": c.tp,
        "winner": c.winner,
        "ecoserve_rank": c.ecoserve_rank,
        "ecoserve_vs_winner": c.ecoserve_vs_winner,
        "paper_shape_winner": c.paper_shape_winner,
        "ecoserve_margin_at_paper_shape": c.ecoserve_margin_at_paper_shape,
        "ecoserve_at_winner_rate": (
            dict(zip(("attainment", "binding", "detail"), c.ecoserve_at_winner_rate, strict=True))
            if c.ecoserve_at_winner_rate
            else None
        ),
        "allreduce_share_prefill": c.allreduce_share_prefill,
        "allreduce_share_decode": c.allreduce_share_decode,
        "strategies": {
            s: {
                "best_per_gpu_rps": v.best.per_gpu if v.best else None,
                "at_paper_shape": {
                    "deployment": deployment(v.at_paper_shape.deployment),
                    "goodput_per_gpu_rps": v.at_paper_shape.per_gpu,
                    "binding": v.at_paper_shape.binding,
                }
                if v.at_paper_shape
                else None,
                "kv_bytes_per_request": v.kv_bytes_per_request,
                "kv_transfer_s": v.kv_transfer_s,
                "link_utilisation": v.link_utilisation,
                "prefill_utilisation": v.prefill_utilisation,
            }
            for s, v in c.views.items()
        },
    }


def plan_doc(o: PlanOutcome, files: list[Path]) -> dict[str, Any]:
    """`ecoplan plan`: the ranked search and every report section that was computed."""
    res = o.plan
    w = res.winner
    return _doc(
        "plan",
        scenario=scenario(res.scenario),
        objective={"kind": res.objective.kind, "target_rate_rps": res.objective.target_rate},
        search={"evaluated": res.evaluated, "pruned": res.pruned},
        winner=_ranked(w) if w else None,
        per_strategy={k: [_ranked(r) for r in v] for k, v in res.per_strategy.items()},
        infeasible=res.infeasible,
        frontier=[_ranked(r) for r in res.frontier],
        sensitivity=[_table(t) for t in o.sensitivity] if o.sensitivity else None,
        kv_policies=[_table(t) for t in o.kv_tables] if o.kv_tables else None,
        scaling=_scaling(o.scaling) if o.scaling else None,
        ecoserve_paper=_paper(o.paper) if o.paper else None,
        simulation_check=[
            {
                "deployment": deployment(c.ranked.deployment),
                "analytical_per_gpu_rps": c.ranked.goodput.per_gpu,
                "simulated_per_gpu_rps": c.sim.per_gpu,
                "simulated_ci95_per_gpu_rps": list(c.sim.ci_per_gpu),
                "seed_rates_rps": list(c.sim.seed_rates),
                "gap": c.gap,
            }
            for c in o.confirmed
        ]
        if o.confirmed is not None
        else None,
        files=[str(f) for f in files],
    )


def evaluate_doc(scen: Scenario, ev: Evaluation) -> dict[str, Any]:
    """`ecoplan evaluate`: goodput of each deployment and its predictions at each rate."""
    return _doc(
        "evaluate",
        scenario=scenario(scen),
        rates_rps=list(ev.rates),
        deployments=[
            {
                "deployment": deployment(g.deployment),
                "goodput_rps": g.rate,
                "goodput_per_gpu_rps": g.per_gpu,
                "binding": g.binding,
                "detail": g.detail,
                "at_goodput": prediction(g.prediction),
                "at_rates": [prediction(p) for p in row],
            }
            for g, row in zip(ev.results, ev.table, strict=True)
        ],
    )


# the keys of `_sim_result`, null in the row of a run the simulator could not do
_SIM_RESULT_KEYS = (
    "rate_rps",
    "requests",
    "attainment",
    "ttft_attainment",
    "tpot_attainment",
    "tbt_attainment",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "mean_decode_batch",
    "preemptions",
    "utilisation",
    "littles_law",
)


def _sim_run(run: SimRun) -> dict[str, Any]:
    """A run's deployment and measurements and `error` null; a run the simulator could not do
    has the same keys, its rate, `error` (why) and every measurement null."""
    head = {"deployment": deployment(run.deployment)}
    if run.result is None:
        empty = dict.fromkeys(_SIM_RESULT_KEYS, None)
        return {**head, **empty, "rate_rps": run.rate, "error": run.problem}
    return {**head, **_sim_result(run.result), "error": None}


def _sim_result(r: SimResult) -> dict[str, Any]:
    return {
        "rate_rps": r.rate,
        "requests": r.requests,
        "attainment": r.attainment,
        "ttft_attainment": r.ttft_attainment,
        "tpot_attainment": r.tpot_attainment,
        "tbt_attainment": r.tbt_attainment,
        "ttft_s": _percentiles(r.ttft_s, r.mean_ttft_s),
        "tpot_s": _percentiles(r.tpot_s, r.mean_tpot_s),
        "e2e_s": _percentiles(r.e2e_s, r.mean_e2e_s),
        "mean_decode_batch": r.mean_decode_batch,
        "preemptions": r.preemptions,
        "utilisation": r.utilisation,
        "littles_law": {
            "in_system_mean": r.in_system_mean,
            "rate_x_sojourn": r.little_rate_x_sojourn,
        },
    }


def _sim_goodput(c: SimComparison) -> dict[str, Any]:
    """A deployment's analytical and simulated goodput and `error` null; one that cannot run
    has the same keys, `error` (why) and the goodputs and gap null."""
    head = {"deployment": deployment(c.analytical.deployment)}
    if c.problem is not None:
        keys = ("analytical_per_gpu_rps", "simulated_per_gpu_rps", "simulated_ci95_per_gpu_rps")
        return {**head, **dict.fromkeys((*keys, "seed_rates_rps", "gap")), "error": c.problem}
    return {
        **head,
        "analytical_per_gpu_rps": c.analytical.per_gpu,
        "simulated_per_gpu_rps": c.simulated.per_gpu,
        "simulated_ci95_per_gpu_rps": list(c.simulated.ci_per_gpu),
        "seed_rates_rps": list(c.simulated.seed_rates),
        "gap": c.simulated.gap(c.analytical.per_gpu),
        "error": None,
    }


def simulate_doc(scen: Scenario, rep: SimReport, seeds: list[int]) -> dict[str, Any]:
    """`ecoplan simulate`: each deployment at each rate (or at its simulated goodput)."""
    return _doc(
        "simulate",
        scenario=scenario(scen),
        seeds=seeds,
        runs=[_sim_run(r) for r in rep.runs],
        goodput=[_sim_goodput(c) for c in rep.goodputs],
    )


def _scaling(o: ScaleOutcome) -> dict[str, Any]:
    return {
        "ramp": {
            "rates_rps": list(o.ramp.rates),
            "step_hours": o.ramp.step_hours,
            "macro_min": o.ramp.macro_min,
            "macro_max": o.ramp.macro_max,
        },
        "strategies": [
            {
                "strategy": p.strategy,
                "gpu_hours": p.gpu_hours,
                "peak_gpus": max(s.gpus for s in p.steps),
                "min_attainment": p.min_attainment,
                "steps": [
                    {
                        "rate_rps": s.rate,
                        "gpus": s.gpus,
                        "attainment": s.attainment,
                        "deployment": deployment(s.deployment),
                        "macro_sizes": list(s.macro_sizes) or None,
                        "event": s.event or None,
                    }
                    for s in p.steps
                ],
            }
            for p in o.plans
            if p.steps
        ],
    }


def scale_doc(scen: Scenario, o: ScaleOutcome) -> dict[str, Any]:
    """`ecoplan scale`: GPUs per ramp step and per strategy."""
    return _doc("scale", scenario=scenario(scen), **_scaling(o))


def _phase(t: PhaseTime) -> dict[str, float]:
    return {
        "compute_ms": float(t.compute_s) * 1e3,
        "memory_ms": float(t.memory_s) * 1e3,
        "communication_ms": float(t.comm_s) * 1e3,
        "overhead_ms": float(t.overhead_s) * 1e3,
    }


def _estimate_row(r: EstimateRow) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tp": r.tp,
        "pp": r.pp,
        "batch": r.batch,
        "input_tokens": r.input_tokens,
        "context_tokens": r.context_tokens,
    }
    e = r.estimate
    if e is None:
        return {**row, "prefill_ms": None, "decode_step_ms": None, "error": r.problem}
    m = e.memory
    return {
        **row,
        "prefill_ms": e.prefill.latency_s * 1e3,
        "decode_step_ms": e.decode_step.latency_s * 1e3,
        "prefill_tokens_per_s": e.prefill.tokens_per_s,
        "decode_tokens_per_s": e.decode_step.tokens_per_s,
        "prefill_bound": e.prefill.bound,
        "decode_bound": e.decode_step.bound,
        "prefill_breakdown": _phase(e.prefill.breakdown),
        "decode_breakdown": _phase(e.decode_step.breakdown),
        "memory": {
            "weights_gib_per_gpu": m.weights_bytes / GIB,
            "activations_gib_per_gpu": m.activation_bytes / GIB,
            "kv_cache_gib_per_gpu": m.kv_cache_bytes / GIB,
            "kv_capacity_tokens": m.kv_capacity_tokens,
            "max_decode_batch": e.max_decode_batch,
        },
        "error": None,
    }


def estimate_doc(grid: EstimateGrid) -> dict[str, Any]:
    """`ecoplan estimate`: one row per combination of the listed options."""
    return _doc(
        "estimate",
        gpu=grid.gpu.name,
        model=grid.model.name,
        dtype=grid.model.dtype,
        engine=grid.engine,
        rows=[_estimate_row(r) for r in grid.rows],
    )


def _model_facts(s: ModelSpec) -> dict[str, Any]:
    return {
        "params_total": s.param_count,
        "params_active": s.active_param_count,
        "kv_bytes_per_token": s.kv_bytes_per_token,
        "weight_bytes": s.weight_bytes,
    }


def profiles_doc(gpus: list[GPU], models: list[ModelSpec]) -> dict[str, Any]:
    """`ecoplan profiles list`: the shipped GPU and model profiles."""
    return _doc(
        "profiles list",
        gpus=[
            {
                "name": g.name,
                "memory_gib": g.memory_gib,
                "memory_bandwidth_gb_s": g.memory_bandwidth_gb_s,
                "peak_tflops": g.peak_tflops,
                "intra_node": g.intra_node.kind,
                "price_per_gpu_hour": g.price_per_gpu_hour,
            }
            for g in gpus
        ],
        models=[
            {
                "name": m.name,
                "num_layers": m.num_layers,
                "num_heads": m.num_heads,
                "num_kv_heads": m.num_kv_heads,
                "max_context": m.max_context,
                "dtype": m.dtype,
                **_model_facts(m),
            }
            for m in models
        ],
    )


def profile_doc(profile: GPU | ModelSpec) -> dict[str, Any]:
    """`ecoplan profiles show`: one profile as stored, plus derived facts for models."""
    if isinstance(profile, GPU):
        return _doc("profiles show", kind="gpu", profile=profile.model_dump(mode="json"))
    return _doc(
        "profiles show",
        kind="model",
        profile=profile.model_dump(mode="json"),
        derived={**_model_facts(profile), "flops_per_token": profile.flops_per_token(0)},
    )


def model_import_doc(
    spec: ModelSpec, path: Path, warnings: list[str] | None = None
) -> dict[str, Any]:
    """`ecoplan model import`: the imported model's facts, where its profile went and the
    config keys it did not understand."""
    longest = spec.max_context
    return _doc(
        "model import",
        name=spec.name,
        path=str(path),
        **_model_facts(spec),
        kv_bytes_per_token_at_max_context=float(spec.kv_bytes_per_sequence(longest)) / longest,
        warnings=list(warnings or []),
        profile=spec.model_dump(mode="json", exclude_none=True),
    )


def _fit_error(e: ErrorSummary) -> dict[str, Any]:
    return {
        "row_count": e.rows,
        "median_abs_error": e.median_abs,
        "max_abs_error": e.max_abs,
        "base_median_abs_error": e.base_median_abs,
        "base_max_abs_error": e.base_max_abs,
    }


def calibrate_doc(cal: Calibration, path: Path) -> dict[str, Any]:
    """`ecoplan calibrate`: each candidate parameter, the fit error overall, per phase and per
    TP degree, every row's prediction, and the profile written."""
    return _doc(
        "calibrate",
        gpu=cal.gpu.name,
        base_gpu=cal.base.name,
        engine=cal.engine,
        measurements=cal.source,
        path=str(path),
        parameters=[
            {
                "parameter": f.name,
                "unit": f.unit or None,
                "base_value": f.base,
                "value": f.value,
                "fitted": f.fitted,
                "uncertainty": f.uncertainty,
                "at_bound": f.at_bound,
                "lower": f.lower,
                "upper": f.upper,
                "kept_reason": f.reason or None,
            }
            for f in cal.parameters
        ],
        notes=list(cal.notes),
        fit_error=_fit_error(cal.overall),
        by_phase=[{"phase": e.key, **_fit_error(e)} for e in cal.by_phase],
        by_tp=[{"tp": e.key, **_fit_error(e)} for e in cal.by_tp],
        predictions=[
            {
                "row": r.measurement.row,
                "model": r.measurement.model.name,
                "phase": r.measurement.phase,
                "tp": r.measurement.tp,
                "pp": r.measurement.pp,
                "batch": r.measurement.batch,
                "input_tokens": r.measurement.input_tokens or None,
                "context_tokens": r.measurement.context_tokens or None,
                "measured_ms": r.measurement.latency_s * 1e3,
                "predicted_ms": r.predicted_s * 1e3,
                "error": r.error,
                "base_predicted_ms": r.base_predicted_s * 1e3,
            }
            for r in cal.rows
        ],
    )


def compare_doc(cmp: Comparison, files: list[Path]) -> dict[str, Any]:
    """`ecoplan compare`: the plan on each GPU type, cheapest for the target rate first."""
    cheapest = cmp.cheapest
    return _doc(
        "compare",
        scenario=scenario(cmp.scenario),
        target_rate_rps=cmp.target_rate,
        target_source=cmp.target_source,
        cheapest=cheapest.gpu if cheapest is not None else None,
        options=[
            {
                "gpu": o.gpu,
                "nodes": o.nodes,
                "gpus_per_node": o.gpus_per_node,
                "total_gpus": o.total_gpus,
                "price_per_gpu_hour": o.price_per_gpu_hour,
                "cluster_cost_per_hour": o.cluster_cost_per_hour,
                "best": _ranked(o.best) if o.best is not None else None,
                "skipped": o.skipped,
            }
            for o in cmp.options
        ],
        files=[str(f) for f in files],
    )


def launch_doc(inp: LaunchInput, directory: Path, files: list[Path]) -> dict[str, Any]:
    """`ecoplan launch`: the deployment launched and the files written."""
    return _doc(
        "launch",
        deployment=deployment(inp.deployment),
        goodput_rps=inp.goodput_rps,
        hf_id=inp.hf_id,
        directory=str(directory),
        files=[str(f) for f in files],
    )

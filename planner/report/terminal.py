"""Terminal renderings (rich tables) of each command's result object. The CLI prints what
these return; the same objects also render as JSON (json_doc.py) and markdown (markdown.py)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from planner.deployment import strategy_title
from planner.report.markdown import MITOSIS_COLUMNS, mitosis_cells
from planner.units import GIB

if TYPE_CHECKING:
    from planner.compare import Comparison
    from planner.crosscheck.evaluate import SimReport
    from planner.estimate import Estimate, EstimateGrid
    from planner.evaluate import Evaluation
    from planner.hardware import GPU
    from planner.model import ModelSpec
    from planner.perf.calibrate import Calibration, ErrorSummary
    from planner.pipeline import PlanOutcome, ScaleOutcome
    from planner.report.launch import LaunchInput
    from planner.scenario import Scenario


def _table(title: str, columns: list[str], right_from: int = 99) -> Table:
    """A table whose columns from index `right_from` on are right-aligned."""
    t = Table(title=title)
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if i >= right_from else "left")
    return t


def estimate_detail(est: Estimate) -> list[RenderableType]:
    """One combination: its four phases (batch of one and of `batch`) and the memory plan."""
    table = _table(
        f"{est.model.name} on {est.tp * est.pp}× {est.gpu.name} (TP={est.tp}, PP={est.pp}), "
        f"{est.model.dtype}",
        ["phase", "latency ms", "tok/s", "compute", "memory", "comm", "overhead", "bound by"],
        right_from=1,
    )
    for p in est.phases:
        b = p.breakdown
        table.add_row(
            p.label,
            f"{p.latency_s * 1e3:.1f}",
            f"{p.tokens_per_s:,.0f}",
            *(f"{float(x) * 1e3:.1f}" for x in (b.compute_s, b.memory_s, b.comm_s, b.overhead_s)),
            p.bound,
        )
    mem = est.memory
    mt = _table("memory per GPU (fullest pipeline stage)", ["item", "value"], right_from=1)
    mt.add_row("GPU memory", f"{mem.gpu_memory_bytes / GIB:.1f} GiB")
    mt.add_row("usable (utilisation)", f"{mem.usable_bytes / GIB:.1f} GiB")
    mt.add_row("weights", f"{mem.weights_bytes / GIB:.2f} GiB")
    mt.add_row("activations", f"{mem.activation_bytes / GIB:.2f} GiB")
    mt.add_row("runtime reserve", f"{mem.reserve_bytes / GIB:.2f} GiB")
    mt.add_row("KV cache", f"{mem.kv_cache_bytes / GIB:.2f} GiB")
    mt.add_row("KV per token per GPU", f"{mem.kv_bytes_per_token_per_gpu / 1024:.1f} KiB")
    mt.add_row("KV capacity (instance)", f"{mem.kv_capacity_tokens:,} tokens")
    mt.add_row(f"max decode batch at {est.context_tokens} tokens", f"{est.max_decode_batch:,}")
    return [table, mt]


def estimate_grid(grid: EstimateGrid) -> list[RenderableType]:
    """A single combination in detail; several as one row each."""
    if len(grid.rows) == 1 and grid.rows[0].estimate is not None:
        return estimate_detail(grid.rows[0].estimate)
    t = _table(
        f"{grid.model.name} on {grid.gpu.name}, {grid.model.dtype}",
        [
            "TP",
            "PP",
            "batch",
            "input",
            "context",
            "prefill ms",
            "decode step ms",
            "decode tok/s",
            "max batch",
            "note",
        ],
        right_from=0,
    )
    for r in grid.rows:
        e = r.estimate
        head = [str(x) for x in (r.tp, r.pp, r.batch, r.input_tokens, r.context_tokens)]
        if e is None:
            t.add_row(*head, "–", "–", "–", "–", r.problem or "")
            continue
        t.add_row(
            *head,
            f"{e.prefill.latency_s * 1e3:.1f}",
            f"{e.decode_step.latency_s * 1e3:.1f}",
            f"{e.decode_step.tokens_per_s:,.0f}",
            f"{e.max_decode_batch:,}",
            "",
        )
    return [t]


def profiles(gpus: list[GPU], models: list[ModelSpec]) -> list[RenderableType]:
    t = _table(
        "GPU profiles", ["name", "memory", "bandwidth", "BF16 TFLOPS", "intra-node", "$/GPU-h"]
    )
    for g in gpus:
        t.add_row(
            g.name,
            f"{g.memory_gib:g} GiB",
            f"{g.memory_bandwidth_gb_s:g} GB/s",
            f"{g.peak_flops('bf16') / 1e12:g}",
            g.intra_node.kind,
            f"{g.price_per_gpu_hour:.2f}",
        )
    m = _table(
        "model profiles", ["name", "params", "active", "layers", "heads/kv", "KV/token", "context"]
    )
    for s in models:
        m.add_row(
            s.name,
            f"{s.param_count / 1e9:.1f} B",
            f"{s.active_param_count / 1e9:.1f} B",
            str(s.num_layers),
            f"{s.num_heads}/{s.num_kv_heads}",
            f"{s.kv_bytes_per_token / 1024:.0f} KiB",
            f"{s.max_context:,}",
        )
    return [t, m]


def profile(name: str, spec: dict[str, object]) -> list[RenderableType]:
    t = Table(title=name, show_header=False)
    t.add_column("key")
    t.add_column("value")
    for key, value in spec.items():
        t.add_row(key, str(value))
    return [t]


def model_imported(spec: ModelSpec, target: str) -> list[RenderableType]:
    moe = f", MoE {spec.num_experts}×top-{spec.experts_per_token}" if spec.is_moe else ""
    if spec.num_shared_experts:
        moe += f" + {spec.num_shared_experts} shared"
    if spec.is_moe and spec.dense_layers:
        moe += f", {spec.dense_layers} dense layers"
    if spec.is_mla:
        attn = f"{spec.num_heads} heads, MLA latent {spec.kv_lora_rank}+{spec.qk_rope_head_dim}"
    else:
        attn = f"{spec.num_heads} heads / {spec.num_kv_heads} KV heads × {spec.head_dim}"
    lines: list[RenderableType] = [
        Text(
            f"{spec.name}: {spec.param_count / 1e9:.1f} B parameters "
            f"({spec.active_param_count / 1e9:.1f} B active), {spec.num_layers} layers, "
            f"{attn}{moe}, {spec.kv_bytes_per_token / 1024:.0f} KiB KV per token"
        )
    ]
    extra = [f"weights {spec.dtype}, {spec.weight_bytes / 1e9:.1f} GB"]
    if spec.quant_group_size:
        extra[0] += f" (one scale per {spec.quant_group_size} weights)"
    if spec.mtp_layers:
        extra.append(f"{spec.mtp_layers} MTP module(s), {spec.mtp_params / 1e9:.1f} B, not served")
    if spec.sliding_window is not None:
        at_max = spec.kv_bytes_per_sequence(spec.max_context) / spec.max_context
        extra.append(
            f"sliding window {spec.sliding_window:,} tokens on {spec.local_layers} of "
            f"{spec.num_layers} layers: {at_max / 1024:.0f} KiB KV per token at "
            f"{spec.max_context:,} tokens"
        )
    lines.append(Text("; ".join(extra)))
    lines.append(Text(f"profile written to {target}; use it as  model: {{profile: {target}}}"))
    return lines


def scenario_line(s: Scenario) -> Text:
    return Text.from_markup(
        f"[bold]{s.model.name}[/] on {s.cluster.total_gpus}× {s.cluster.gpu.name} "
        f"({s.cluster.nodes} nodes, {s.cluster.network.bandwidth_gbit:g} Gb/s), workload "
        f"{s.workload.name}, SLO TTFT {s.slo.ttft_s:g} s / TPOT {s.slo.tpot_s * 1e3:g} ms"
        f"{s.slo.tbt_text} at "
        f"P{s.slo.attainment:g} ({'joint' if s.slo.joint else 'per metric'})"
    )


def evaluation(scen: Scenario, ev: Evaluation) -> list[RenderableType]:
    g = _table(
        "goodput per strategy",
        ["strategy", "deployment", "GPUs", "goodput req/s", "per GPU", "binding", "why"],
    )
    for r in ev.results:
        d = r.deployment
        g.add_row(
            f"{d.strategy} ({d.family})",
            d.label(),
            str(d.gpus),
            f"{r.rate:.3g}",
            f"{r.per_gpu:.3f}",
            r.binding,
            r.detail,
        )
    t = _table(
        "joint SLO attainment vs request rate",
        ["strategy", *(f"{rate:.3g}/s" for rate in ev.rates)],
        right_from=1,
    )
    for r, row in zip(ev.results, ev.table, strict=True):
        t.add_row(r.deployment.strategy, *(f"{p.attainment:.0%}" for p in row))
    return [scenario_line(scen), g, t]


def plan(o: PlanOutcome, out: str) -> list[RenderableType]:
    res = o.plan
    t = _table(
        "best deployment per strategy",
        [
            "strategy",
            "deployment",
            "GPUs",
            "goodput/GPU",
            "req/s",
            "P90 TTFT",
            "P90 TPOT",
            "binding",
        ],
    )
    for items in res.per_strategy.values():
        if not items:
            continue
        g = items[0].goodput
        p = g.prediction
        t.add_row(
            strategy_title(g.deployment.strategy),
            g.deployment.label(),
            str(g.deployment.gpus),
            f"{g.per_gpu:.3f}",
            f"{g.rate:.2f}",
            f"{p.ttft_s[90]:.2f} s" if p else "–",
            f"{p.tpot_s[90] * 1e3:.0f} ms" if p else "–",
            f"{g.binding}: {g.detail}",
        )
    for strategy, why in res.infeasible.items():
        t.add_row(strategy, "–", "–", "0", "0", "–", "–", why)
    lines: list[RenderableType] = [t]
    w = res.winner
    if w is not None:
        need = (
            f"; {w.gpus_needed} GPUs for {res.objective.target_rate:g} req/s"
            if w.gpus_needed
            else ""
        )
        lines.append(
            Text.from_markup(
                f"[bold green]winner:[/] {w.deployment.strategy} {w.deployment.label()} — "
                f"{w.goodput.per_gpu:.3f} req/s per GPU{need}"
            )
        )
    if o.confirmed:
        c = _table(
            "simulation check (goodput per GPU)",
            ["strategy", "deployment", "analytical", "simulated (95% CI)", "gap"],
        )
        for x in o.confirmed:
            c.add_row(
                x.ranked.deployment.strategy,
                x.ranked.deployment.label(),
                f"{x.ranked.goodput.per_gpu:.3f}",
                x.sim.ci_text(),
                f"{x.gap:+.1%}",
            )
        lines.append(c)
    lines.append(Text(f"report written to {out}"))
    return lines


def simulation(scen: Scenario, rep: SimReport) -> list[RenderableType]:
    out: list[RenderableType] = []
    if rep.goodputs:
        header = ["strategy", "deployment", "GPUs", "analytical", "simulated (95% CI)", "gap"]
        # a deployment that cannot run is a row of dashes whose last column says why
        infeasible = any(c.problem is not None for c in rep.goodputs)
        g = _table(
            "goodput per GPU: analytical vs simulated",
            [*header, "note"] if infeasible else header,
        )
        for c in rep.goodputs:
            dep = c.analytical.deployment
            head = [dep.strategy, dep.label(), str(dep.gpus)]
            if c.problem is not None:
                g.add_row(*head, "–", "–", "–", f"infeasible: {c.problem}")
                continue
            cells = [
                f"{c.analytical.per_gpu:.3f}",
                c.simulated.ci_text(),
                f"{c.simulated.gap(c.analytical.per_gpu):+.1%}",
            ]
            g.add_row(*head, *cells, *([""] if infeasible else []))
        out.append(g)
    columns = [
        "strategy",
        "deployment",
        "req/s",
        "attain",
        "TTFT P50/90/99 s",
        "TPOT P50/90/99 ms",
        "E2E P50/90/99 s",
        "prefill",
        "decode",
        "batch",
        "preempt",
    ]
    # a run the simulator could not do is a row of dashes whose last column says why
    noted = any(run.result is None for run in rep.runs)
    t = _table(
        f"simulated service at each rate (SLO attainment target {scen.slo.target:.0%})",
        [*columns, "note"] if noted else columns,
    )
    for run in rep.runs:
        head = [run.deployment.strategy, run.deployment.label(), f"{run.rate:.3g}"]
        r = run.result
        if r is None:
            t.add_row(*head, *["–"] * (len(columns) - len(head)), run.problem or "")
            continue
        u = r.utilisation
        t.add_row(
            *head,
            f"{r.attainment:.0%}",
            "/".join(f"{r.ttft_s[q]:.2f}" for q in (50, 90, 99)),
            "/".join(f"{r.tpot_s[q] * 1e3:.0f}" for q in (50, 90, 99)),
            "/".join(f"{r.e2e_s[q]:.1f}" for q in (50, 90, 99)),
            f"{u.get('prefill', u.get('hybrid', 0.0)):.0%}",
            f"{u.get('decode', 0.0):.0%}",
            f"{r.mean_decode_batch:.1f}",
            str(r.preemptions),
            *([""] if noted else []),
        )
    out.append(t)
    return out


def scaling(o: ScaleOutcome) -> list[RenderableType]:
    ramp = o.ramp
    t = _table(
        f"GPUs per step of the rate ramp ({ramp.step_hours:g} h per step)",
        ["strategy", *(f"{r:g}/s" for r in ramp.rates), "GPU-hours", "lowest attainment"],
        right_from=1,
    )
    for p in o.plans:
        t.add_row(
            p.strategy,
            *(str(s.gpus) for s in p.steps),
            f"{p.gpu_hours:,.0f}",
            f"{p.min_attainment:.1%}",
        )
    out: list[RenderableType] = [t]
    for p in o.plans:
        if p.steps and p.steps[0].macro_sizes:
            m = _table(f"mitosis schedule ({p.strategy})", list(MITOSIS_COLUMNS))
            for s in p.steps:
                m.add_row(*mitosis_cells(s))
            out.append(m)
    return out


def _error_row(t: Table, e: ErrorSummary) -> None:
    from planner.perf.calibrate import summary_label

    t.add_row(
        summary_label(e),
        str(e.rows),
        f"{e.base_median_abs:.1%}",
        f"{e.median_abs:.1%}",
        f"{e.base_max_abs:.1%}",
        f"{e.max_abs:.1%}",
    )


def calibration(cal: Calibration, out: str) -> list[RenderableType]:
    """`ecoplan calibrate`: each candidate parameter (fitted, or kept and why), the fit error
    per phase and per TP degree, and where the profile went."""

    p = _table(
        f"{cal.gpu.name}: {cal.base.name} calibrated to {len(cal.rows)} rows of {cal.source} "
        f"(engine {cal.engine})",
        ["parameter", "base", "calibrated", "±", "status"],
    )
    for f in cal.parameters:
        unit = f" {f.unit}" if f.unit else ""
        spread = "" if f.uncertainty is None else f"{f.uncertainty:.1%}"
        if f.fitted:
            status = "fitted, at its bound" if f.at_bound else "fitted"
        else:
            status = f"kept: {f.reason}"
        p.add_row(f.name, f"{f.base:.4g}{unit}", f"{f.value:.4g}{unit}", spread, status)
    e = _table(
        "|error| of predicted vs measured latency",
        ["rows", "n", "median base", "median calibrated", "max base", "max calibrated"],
        right_from=1,
    )
    for s in (*cal.by_phase, *cal.by_tp, cal.overall):
        _error_row(e, s)
    out_lines: list[RenderableType] = [p, e]
    out_lines += [Text(n) for n in cal.notes]
    out_lines.append(
        Text(f"profile written to {out}; use it as  --gpu {out}  or  cluster.gpu: {out}")
    )
    return out_lines


def _money(x: float | None, places: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"${x:,.{places}f}"


def comparison(cmp: Comparison, chart: str | None = None) -> list[RenderableType]:
    """`ecoplan compare`: one row per GPU type (and cluster shape), cheapest for the target
    rate first; then why any GPU was skipped, and the verdict."""
    s = cmp.scenario
    rate = f"{cmp.target_rate:g}/s"
    t = _table(
        f"which GPU is cheapest: {s.model.name}, workload {s.workload.name}, SLO TTFT "
        f"{s.slo.ttft_s:g} s / TPOT {s.slo.tpot_s * 1e3:g} ms at P{s.slo.attainment:g}; "
        f"target {cmp.target_rate:g} req/s ({cmp.target_source})",
        [
            "GPU",
            "nodes×GPUs",
            "$/GPU-h",
            "best strategy",
            "deployment",
            "goodput/GPU",
            "cluster $/h",
            "$/M output tokens",
            f"GPUs for {rate}",
            f"$/h for {rate}",
        ],
        right_from=5,
    )
    t.columns[2].justify = "right"
    for o in cmp.options:
        b = o.best
        head = [o.gpu, o.shape, f"${o.price_per_gpu_hour:.2f}"]
        cost = _money(o.cluster_cost_per_hour)
        if b is None:
            t.add_row(*head, "–", "skipped (below)", "–", cost, "–", "–", "–")
            continue
        d = b.deployment
        t.add_row(
            *head,
            f"{d.strategy} ({d.family})",
            d.label(),
            f"{b.goodput.per_gpu:.3f}",
            cost,
            _money(b.cost_per_million_tokens, 3),
            str(b.gpus_needed) if b.gpus_needed is not None else "–",
            _money(b.cost_per_hour),
        )
    out: list[RenderableType] = [t]
    for o in cmp.options:
        if o.skipped is not None:
            out.append(Text(f"{o.gpu} ({o.shape}) skipped: {o.skipped}"))
    best = cmp.cheapest
    if best is None or best.best is None:
        out.append(Text("no GPU type meets the SLO"))
    else:
        b = best.best
        per_m = min(
            (o for o in cmp.options if o.best is not None),
            key=lambda o: o.best.cost_per_million_tokens if o.best else math.inf,
        )
        tail = (
            ""
            if per_m is best or per_m.best is None
            else f"; lowest $/M output tokens at goodput: {per_m.gpu} "
            f"({_money(per_m.best.cost_per_million_tokens, 3)})"
        )
        out.append(
            Text.from_markup(
                f"[bold green]cheapest for {cmp.target_rate:g} req/s:[/] {best.gpu} — "
                f"{b.gpus_needed} GPUs, {_money(b.cost_per_hour)} per hour "
                f"({b.deployment.strategy} {b.deployment.label()}){tail}"
            )
        )
    if chart is not None:
        out.append(Text(f"chart written to {chart}"))
    return out


def launch(inp: LaunchInput, directory: str, files: list[str]) -> list[RenderableType]:
    """The launch files written, and what to read next."""
    from planner.report.launch import PLACEHOLDER

    dep = inp.deployment
    lines = [
        f"launch files for {dep.strategy} {dep.label()} of {inp.model} "
        f"(predicted goodput {inp.goodput_rps:.3g} req/s) in {directory}:",
        *(f"  {f}" for f in files),
        f"start with {directory}/README.md",
    ]
    if inp.hf_id is None:
        lines.append(
            f"note: the model's Hugging Face id is unknown; the commands use {PLACEHOLDER}"
        )
    return [Text("\n".join(lines))]

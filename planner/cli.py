"""Command-line interface (typer): parses arguments, calls the library, renders the result."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from planner import catalog, report, search
from planner.config import PlanFile, load_plan
from planner.errors import PlannerError
from planner.estimate import Estimate, estimate_instance
from planner.evaluate import Evaluation, default_deployments, evaluate
from planner.scaling import RampSpec, ScalePlan, scale
from planner.search import PlanResult
from planner.sensitivity import kv_policy_tables, sensitivity
from planner.simulate.confirm import Confirmation, to_confirm
from planner.simulate.confirm import confirm as simulate_confirm
from planner.simulate.evaluate import SimReport, simulate_deployments
from planner.simulate.goodput import DEFAULT_SEEDS
from planner.strategies import Scenario
from planner.units import GIB

app = typer.Typer(
    name="ecoplan",
    help="Capacity planner for LLM serving: NoDG (vLLM, Sarathi), FuDG (DistServe, MoonCake) "
    "and PaDG (EcoServe) on commodity GPU clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
profiles_app = typer.Typer(
    help="List and show the shipped GPU and model profiles.", no_args_is_help=True
)
app.add_typer(profiles_app, name="profiles")
model_app = typer.Typer(
    help="Turn a Hugging Face config.json into a model profile.", no_args_is_help=True
)
app.add_typer(model_app, name="model")

console = Console(width=max(Console().width, 110))
err_console = Console(stderr=True)


def fail(exc: PlannerError) -> typer.Exit:
    """Print a user error as one line and return the exit (code 2) to raise."""
    err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _render_estimate(est: Estimate) -> None:
    table = Table(
        title=f"{est.model.name} on {est.tp * est.pp}× {est.gpu.name} (TP={est.tp}, PP={est.pp}), "
        f"{est.model.dtype}"
    )
    table.add_column("phase")
    for col in ("latency ms", "tok/s", "compute", "memory", "comm", "overhead"):
        table.add_column(col, justify="right")
    table.add_column("bound by")
    for p in est.phases:
        b = p.breakdown
        table.add_row(
            p.label,
            f"{p.latency_s * 1e3:.1f}",
            f"{p.tokens_per_s:,.0f}",
            *(f"{float(x) * 1e3:.1f}" for x in (b.compute_s, b.memory_s, b.comm_s, b.overhead_s)),
            p.bound,
        )
    console.print(table)
    mem = est.memory
    mt = Table(title="memory per GPU (fullest pipeline stage)")
    mt.add_column("item")
    mt.add_column("value", justify="right")
    mt.add_row("GPU memory", f"{mem.gpu_memory_bytes / GIB:.1f} GiB")
    mt.add_row("usable (utilisation)", f"{mem.usable_bytes / GIB:.1f} GiB")
    mt.add_row("weights", f"{mem.weights_bytes / GIB:.2f} GiB")
    mt.add_row("activations", f"{mem.activation_bytes / GIB:.2f} GiB")
    mt.add_row("runtime reserve", f"{mem.reserve_bytes / GIB:.2f} GiB")
    mt.add_row("KV cache", f"{mem.kv_cache_bytes / GIB:.2f} GiB")
    mt.add_row("KV per token per GPU", f"{mem.kv_bytes_per_token_per_gpu / 1024:.1f} KiB")
    mt.add_row("KV capacity (instance)", f"{mem.kv_capacity_tokens:,} tokens")
    mt.add_row(f"max decode batch at {est.input_tokens} tokens", f"{est.max_decode_batch:,}")
    console.print(mt)


@app.command()
def estimate(
    gpu: Annotated[
        str, typer.Option(help="GPU profile name (see `ecoplan profiles list`)")
    ] = "l20",
    model: Annotated[str, typer.Option(help="model profile name")] = "codellama-34b",
    tp: Annotated[int, typer.Option(help="tensor-parallel degree", min=1)] = 4,
    pp: Annotated[int, typer.Option(help="pipeline-parallel degree", min=1)] = 1,
    input: Annotated[int, typer.Option("--input", help="prompt length in tokens", min=1)] = 2048,
    batch: Annotated[
        int, typer.Option(help="batch size (prompts or decoding requests)", min=1)
    ] = 32,
) -> None:
    """Roofline latencies and memory of one instance.

    Example: ecoplan estimate --gpu l20 --model codellama-34b --tp 4 --input 2048 --batch 32
    """
    try:
        est = estimate_instance(
            catalog.load_model(model), catalog.load_gpu(gpu), tp, pp, input, batch
        )
    except PlannerError as exc:
        raise fail(exc) from None
    _render_estimate(est)


@profiles_app.command("list")
def profiles_list() -> None:
    """List shipped GPU and model profiles.

    Example: ecoplan profiles list
    """
    t = Table(title="GPU profiles")
    for col in ("name", "memory", "bandwidth", "BF16 TFLOPS", "intra-node", "$/GPU-h"):
        t.add_column(col)
    for name in catalog.gpu_names():
        g = catalog.load_gpu(name)
        t.add_row(
            name,
            f"{g.memory_gib:g} GiB",
            f"{g.memory_bandwidth_gb_s:g} GB/s",
            f"{g.peak_flops('bf16') / 1e12:g}",
            g.intra_node.kind,
            f"{g.price_per_gpu_hour:.2f}",
        )
    console.print(t)
    m = Table(title="model profiles")
    for col in ("name", "params", "layers", "heads/kv", "KV/token", "max context"):
        m.add_column(col)
    for name in catalog.model_names():
        s = catalog.load_model(name)
        m.add_row(
            name,
            f"{s.param_count / 1e9:.1f} B",
            str(s.num_layers),
            f"{s.num_heads}/{s.num_kv_heads}",
            f"{s.kv_bytes_per_token / 1024:.0f} KiB",
            f"{s.max_context:,}",
        )
    console.print(m)


@profiles_app.command("show")
def profiles_show(name: Annotated[str, typer.Argument(help="a GPU or model profile name")]) -> None:
    """Show one profile with its derived quantities.

    Example: ecoplan profiles show codellama-34b
    """
    try:
        if name in catalog.gpu_names():
            spec = catalog.load_gpu(name).model_dump()
        else:
            s = catalog.load_model(name)
            spec = s.model_dump()
            spec["derived"] = {
                "param_count": s.param_count,
                "weight_bytes": s.weight_bytes,
                "kv_bytes_per_token": s.kv_bytes_per_token,
                "flops_per_token_at_zero_context": s.flops_per_token(0),
            }
    except PlannerError as exc:
        raise fail(exc) from None
    t = Table(title=name, show_header=False)
    t.add_column("key")
    t.add_column("value")
    for key, value in spec.items():
        t.add_row(key, str(value))
    console.print(t)


@model_app.command("import")
def model_import(
    config_json: Annotated[Path, typer.Argument(help="a Hugging Face config.json")],
    name: Annotated[
        str | None, typer.Option("--name", help="profile name (default: the config's folder)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="profile file to write (default: NAME.yaml)")
    ] = None,
) -> None:
    """Write a model profile from a Hugging Face config.json.

    Handles dense, GQA and MoE models; head_dim is taken from the config when
    heads·head_dim ≠ hidden (Qwen3). Use the profile in a plan file as
    `model: {profile: NAME.yaml}`.

    Example: ecoplan model import ./Qwen3-32B/config.json --out qwen3-32b.yaml
    """
    try:
        spec = catalog.load_hf_config(config_json)
        if name:
            spec = spec.model_copy(update={"name": name})
        target = out or Path(f"{spec.name}.yaml")
        report.write_text_atomic(target, catalog.model_profile_yaml(spec))
    except PlannerError as exc:
        raise fail(exc) from None
    moe = f", MoE {spec.num_experts}×top-{spec.experts_per_token}" if spec.is_moe else ""
    console.print(
        f"{spec.name}: {spec.param_count / 1e9:.1f} B parameters, {spec.num_layers} layers, "
        f"{spec.num_heads} heads / {spec.num_kv_heads} KV heads × {spec.head_dim}{moe}, "
        f"{spec.kv_bytes_per_token / 1024:.0f} KiB KV per token",
        highlight=False,
    )
    console.print(f"profile written to {target}; use it as  model: {{profile: {target}}}")


def _scenario(config: Path | None) -> tuple[PlanFile, Scenario]:
    plan = load_plan(config)
    base = config.parent if config is not None else Path(".")
    return plan, plan.scenario(base)


def _fmt_rate(x: float) -> str:
    return f"{x:.3g}"


def _render_evaluation(scen: Scenario, ev: Evaluation) -> None:
    s = scen
    console.print(
        f"[bold]{s.model.name}[/] on {s.cluster.total_gpus}× {s.cluster.gpu.name} "
        f"({s.cluster.nodes} nodes, {s.cluster.network.bandwidth_gbit:g} Gb/s), workload "
        f"{s.workload.name}, SLO TTFT {s.slo.ttft_s:g} s / TPOT {s.slo.tpot_s * 1e3:g} ms at "
        f"P{s.slo.attainment:g} ({'joint' if s.slo.joint else 'per metric'})"
    )
    g = Table(title="goodput per strategy")
    for col in ("strategy", "deployment", "GPUs", "goodput req/s", "per GPU", "binding", "why"):
        g.add_column(col, overflow="fold")
    for r in ev.results:
        d = r.deployment
        g.add_row(
            f"{d.strategy} ({d.family})",
            d.label(),
            str(d.gpus),
            _fmt_rate(r.rate),
            f"{r.per_gpu:.3f}",
            r.binding,
            r.detail,
        )
    console.print(g)
    t = Table(title="joint SLO attainment vs request rate")
    t.add_column("strategy")
    for rate in ev.rates:
        t.add_column(f"{rate:.3g}/s", justify="right")
    for r, row in zip(ev.results, ev.table, strict=True):
        t.add_row(r.deployment.strategy, *(f"{p.attainment:.0%}" for p in row))
    console.print(t)


@app.command("evaluate")
def evaluate_cmd(
    config: Annotated[
        Path | None, typer.Argument(help="plan file (YAML); default scenario if omitted")
    ] = None,
) -> None:
    """Goodput and attainment vs rate of a plan file's deployments.

    Evaluates the deployments the plan file lists, or, if it lists none, one per strategy on
    the whole cluster.

    Example: ecoplan evaluate examples/ecoserve-codellama-34b-sharegpt.yaml
    """
    try:
        plan, scen = _scenario(config)
        deps = [d.build() for d in plan.deployments] or default_deployments(scen)
        ev = evaluate(scen, deps, plan.rates)
    except PlannerError as exc:
        raise fail(exc) from None
    _render_evaluation(scen, ev)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def _render_plan(res: PlanResult) -> None:
    t = Table(title="best deployment per strategy")
    for col in (
        "strategy",
        "deployment",
        "GPUs",
        "goodput/GPU",
        "req/s",
        "P90 TTFT",
        "P90 TPOT",
        "binding",
    ):
        t.add_column(col, overflow="fold")
    for items in res.per_strategy.values():
        if not items:
            continue
        g = items[0].goodput
        p = g.prediction
        t.add_row(
            f"{g.deployment.strategy} ({g.deployment.family})",
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
    console.print(t)
    w = res.winner
    if w is not None:
        console.print(
            f"[bold green]winner:[/] {w.deployment.strategy} {w.deployment.label()} — "
            f"{w.goodput.per_gpu:.3f} req/s per GPU"
            + (
                f"; {w.gpus_needed} GPUs for {res.objective.target_rate:g} req/s"
                if w.gpus_needed
                else ""
            )
        )


def _render_confirmation(confirmed: list[Confirmation]) -> None:
    t = Table(title="simulation check (goodput per GPU)")
    for col in ("strategy", "deployment", "analytical", "simulated (95% CI)", "gap"):
        t.add_column(col, overflow="fold")
    for c in confirmed:
        t.add_row(
            c.ranked.deployment.strategy,
            c.ranked.deployment.label(),
            f"{c.ranked.goodput.per_gpu:.3f}",
            c.sim.ci_text(),
            f"{c.gap:+.1%}",
        )
    console.print(t)


@app.command("plan")
def plan_cmd(
    config: Annotated[
        Path | None,
        typer.Argument(help="plan file (YAML); the built-in default scenario if omitted"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="where to write the markdown report")] = Path(
        "report.md"
    ),
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="terminal output: table or json")
    ] = OutputFormat.table,
    confirm: Annotated[
        bool,
        typer.Option("--confirm", help="re-measure the top candidates' goodput with the simulator"),
    ] = False,
    confirm_top: Annotated[
        int, typer.Option("--confirm-top", min=1, help="candidates per strategy to confirm")
    ] = 1,
    with_sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity/--no-sensitivity",
            help="add the sensitivity, KV-policy and rate-ramp sections (~1.5 s)",
        ),
    ] = True,
) -> None:
    """Search every strategy's deployments, print the best per strategy and write the report.

    With --confirm, the top candidates are re-measured by the simulator and the report gains a
    simulation check section.

    Example: ecoplan plan examples/ecoserve-llama-30b-sharegpt.yaml --out report.md
    """
    try:
        plan_file, scen = _scenario(config)
        report.check_out_folder(out)
        with Progress(transient=True, console=err_console) as bar:
            task = bar.add_task("searching deployments", total=None)

            def tick(i: int, n: int) -> None:
                bar.update(task, completed=i, total=n)

            res = search.plan(scen, plan_file.search, plan_file.objective, progress=tick)
            confirmed = None
            if confirm:
                todo = to_confirm(res, confirm_top)
                sim_task = bar.add_task(
                    "simulating top candidates", total=len(todo) * len(DEFAULT_SEEDS)
                )
                confirmed = simulate_confirm(
                    res, confirm_top, progress=lambda: bar.advance(sim_task)
                )
        tables = sensitivity(res) if with_sensitivity else None
        kv_tables = kv_policy_tables(res) if with_sensitivity else None
        ramp = plan_file.ramp
        scaling = (scale(res, ramp), ramp) if with_sensitivity and res.winner else None
        png = report.plot_frontier_png(res)
        png_path = out.with_suffix(".png")
        if png is not None:
            report.write_text_atomic(png_path, png)
        sens_png = report.plot_sensitivity_png(tables) if tables else None
        sens_path = out.with_name(f"{out.stem}-sensitivity.png")
        if sens_png is not None:
            report.write_text_atomic(sens_path, sens_png)
        text = report.render_markdown(
            res,
            png_path.name if png else None,
            confirmed,
            tables,
            sens_path.name if sens_png else None,
            kv_tables,
            scaling,
        )
        report.write_text_atomic(out, text)
    except PlannerError as exc:
        raise fail(exc) from None
    if fmt is OutputFormat.json:
        typer.echo(report.dumps(res, confirmed))
    else:
        _render_plan(res)
        if confirmed:
            _render_confirmation(confirmed)
        console.print(f"report written to {out}")
    if res.winner is None:
        first = next(iter(res.infeasible.items()), None)
        closest = f"; {first[0]}: {first[1]}" if first else ""
        err_console.print(
            f"error: no deployment meets the SLO{closest} (all strategies: see {out})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=2)


def _render_simulation(scen: Scenario, rep: SimReport) -> None:
    if rep.goodputs:
        g = Table(title="goodput per GPU: analytical vs simulated")
        for col in ("strategy", "deployment", "GPUs", "analytical", "simulated (95% CI)", "gap"):
            g.add_column(col, overflow="fold")
        for c in rep.goodputs:
            g.add_row(
                c.analytical.deployment.strategy,
                c.analytical.deployment.label(),
                str(c.analytical.deployment.gpus),
                f"{c.analytical.per_gpu:.3f}",
                c.simulated.ci_text(),
                f"{c.simulated.gap(c.analytical.per_gpu):+.1%}",
            )
        console.print(g)
    t = Table(title=f"simulated service at each rate (SLO attainment target {scen.slo.target:.0%})")
    for col in (
        "strategy",
        "deployment",
        "req/s",
        "attain",
        "TTFT P50/90/99 s",
        "TPOT P50/90/99 ms",
        "prefill",
        "decode",
        "batch",
        "preempt",
    ):
        t.add_column(col, overflow="fold")
    for run in rep.runs:
        r = run.result
        u = r.utilisation
        t.add_row(
            run.deployment.strategy,
            run.deployment.label(),
            f"{r.rate:.3g}",
            f"{r.attainment:.0%}",
            "/".join(f"{r.ttft_s[q]:.2f}" for q in (50, 90, 99)),
            "/".join(f"{r.tpot_s[q] * 1e3:.0f}" for q in (50, 90, 99)),
            f"{u.get('prefill', u.get('hybrid', 0.0)):.0%}",
            f"{u.get('decode', 0.0):.0%}",
            f"{r.mean_decode_batch:.1f}",
            str(r.preemptions),
        )
    console.print(t)


@app.command("simulate")
def simulate_cmd(
    config: Annotated[
        Path | None, typer.Argument(help="plan file (YAML); default scenario if omitted")
    ] = None,
    rate: Annotated[
        list[float] | None,
        typer.Option("--rate", help="request rate to simulate (repeatable); default: find goodput"),
    ] = None,
    requests: Annotated[
        int | None, typer.Option("--requests", min=100, help="requests per simulation")
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="seeds for goodput")] = 3,
    seed: Annotated[int, typer.Option("--seed", min=0, help="first seed")] = 0,
) -> None:
    """Check deployments with the discrete-event simulator.

    Simulates the plan file's deployments (or one per strategy): attainment, TTFT/TPOT
    percentiles and utilisation at each --rate, or without --rate the simulated goodput (over
    --seeds seeds) next to the analytical one.

    Example: ecoplan simulate examples/ecoserve-codellama-34b-sharegpt.yaml --rate 20
    """
    try:
        plan, scen = _scenario(config)
        deps = [d.build() for d in plan.deployments] or default_deployments(scen)
        rates = rate or plan.rates
        if rates and any(not (r > 0 and math.isfinite(r)) for r in rates):
            raise PlannerError("--rate: rates must be positive numbers")
        seed_list = list(range(seed, seed + seeds))
        with Progress(transient=True, console=err_console) as bar:
            total = len(deps) * (len(rates) if rates else len(seed_list))
            task = bar.add_task("simulating", total=total)
            rep = simulate_deployments(
                scen,
                deps,
                rates,
                seeds=seed_list,
                requests=requests,
                progress=lambda: bar.advance(task),
            )
    except PlannerError as exc:
        raise fail(exc) from None
    _render_simulation(scen, rep)


def _render_scaling(plans: list[ScalePlan], ramp: RampSpec) -> None:
    t = Table(title=f"GPUs per step of the rate ramp ({ramp.step_hours:g} h per step)")
    t.add_column("strategy")
    for r in ramp.rates:
        t.add_column(f"{r:g}/s", justify="right")
    t.add_column("GPU-hours", justify="right")
    t.add_column("lowest attainment", justify="right")
    for p in plans:
        t.add_row(
            p.strategy,
            *(str(s.gpus) for s in p.steps),
            f"{p.gpu_hours:,.0f}",
            f"{p.min_attainment:.1%}",
        )
    console.print(t)
    for p in plans:
        if p.steps and p.steps[0].macro_sizes:
            m = Table(title=f"mitosis schedule ({p.strategy})")
            for col in report.MITOSIS_COLUMNS:
                m.add_column(col)
            for s in p.steps:
                m.add_row(*report.mitosis_cells(s))
            console.print(m)


@app.command("scale")
def scale_cmd(
    config: Annotated[
        Path | None, typer.Argument(help="plan file (YAML) with a `ramp`; default scenario")
    ] = None,
) -> None:
    """GPUs per step of a rate ramp: EcoServe mitosis vs NoDG instances vs FuDG pools.

    Plans the scenario, then scales each strategy's best deployment over the plan file's
    `ramp` (default: 20 → 50 req/s in steps of 5, one hour each): GPUs, macro-instance
    splits and merges, GPU-hours and SLO attainment per step.

    Example: ecoplan scale examples/ecoserve-codellama-34b-sharegpt.yaml
    """
    try:
        plan_file, scen = _scenario(config)
        with Progress(transient=True, console=err_console) as bar:
            task = bar.add_task("searching deployments", total=None)
            res = search.plan(
                scen,
                plan_file.search,
                plan_file.objective,
                progress=lambda i, n: bar.update(task, completed=i, total=n),
            )
            plans = scale(res, plan_file.ramp)
    except PlannerError as exc:
        raise fail(exc) from None
    _render_scaling(plans, plan_file.ramp)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the plan file.

    Example: ecoplan schema > plan.schema.json
    """
    import json

    typer.echo(json.dumps(PlanFile.model_json_schema(), indent=2))

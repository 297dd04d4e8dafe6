"""Command-line interface (typer): parses arguments, calls one library function, renders its
result as a terminal table (report/terminal.py) or versioned JSON (report/json_doc.py)."""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, RenderableType
from typer.core import TyperGroup

from planner import catalog
from planner.config import PlanFile, load_plan
from planner.engine import load_engine
from planner.errors import PlannerError
from planner.outputs import check_output_dir, check_output_path, write_atomic, write_tree
from planner.report import terminal
from planner.scenario import Scenario

if TYPE_CHECKING:
    from rich.progress import TaskID

    from planner import pipeline


class _OneLineErrors(TyperGroup):
    """Every failure ends as one line on stderr: usage errors (exit 2), Ctrl-C (exit 130), and
    unexpected exceptions (exit 1, named as a bug; ECOPLAN_DEBUG=1 shows the traceback)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rc = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rc if isinstance(rc, int) else 0
            if code == 130:  # typer turns KeyboardInterrupt into Exit(130) silently
                _error("interrupted")
        except (KeyboardInterrupt, typer.Abort):
            _error("interrupted")
            code = 130
        except Exception as exc:
            message, exit_code = getattr(exc, "format_message", None), getattr(exc, "exit_code", 1)
            if message is not None:  # a click usage error (bad option, missing argument)
                _error(f"{message()} (see --help)")
                code = int(exit_code)
            elif os.environ.get("ECOPLAN_DEBUG"):
                raise
            else:
                _error(f"internal error, please report it: {type(exc).__name__}: {exc}"[:500])
                code = 1
        if standalone_mode:
            sys.exit(code)
        return code


# vllm/sarathi naming, said wherever a user picks a strategy (planner.deployment.MEANING)
_STRATEGY_NOTE = (
    "(vllm: vLLM V0's prefill-priority scheduler; sarathi: chunked prefill, V1's default)"
)

app = typer.Typer(
    name="ecoplan",
    cls=_OneLineErrors,
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


def _console(stderr: bool = False) -> Console:
    """A console for stdout (or stderr). When it is not a terminal (a pipe, a file, a test),
    lines are never wrapped and tables are as wide as their content."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, width=max(probe.width, 110))
    return Console(stderr=stderr, width=10_000, soft_wrap=True)


def _error(message: str) -> None:
    # only the first line: a message never spills over several lines
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if len(first) > 500:  # a safety net: a message never floods the terminal
        first = first[:497] + "..."
    print(f"error: {first}", file=sys.stderr)


def fail(exc: PlannerError) -> typer.Exit:
    """Print a user error as one line and return the exit (code 2) to raise."""
    _error(str(exc))
    return typer.Exit(code=2)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", help="output: a table, or versioned JSON (docs/json.md)"),
]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        max=1024,
        help="processes for the search, report sections and simulations (same results for "
        "any); default: CPU count",
    ),
]
ConfigArgument = Annotated[
    Path | None,
    typer.Argument(help="plan file (YAML); the built-in default scenario if omitted"),
]


def _json() -> ModuleType:
    """report/json_doc.py, imported when a command builds its JSON document (not for tables)."""
    from planner.report import json_doc

    return json_doc


def _show(
    fmt: OutputFormat, doc: Callable[[], dict[str, Any]], renderables: list[RenderableType]
) -> None:
    """Print the command's JSON document (built only when asked for: `doc` is called then)
    or its tables."""
    if fmt is OutputFormat.json:
        typer.echo(_json().dumps(doc()))
        return
    out = _console()
    for r in renderables:
        out.print(r, highlight=False)


@contextmanager
def _progress(total: int | None = None, label: str = "working") -> Iterator[pipeline.Progress]:
    """A transient progress bar on stderr, fed by the library's progress(task, done, total);
    nothing at all when stderr is not a terminal (a pipe, a file, a test)."""
    console = _console(stderr=True)
    if not console.is_terminal:

        def ignore(task: str, done: int, n: int | None) -> None:
            pass

        yield ignore
        return
    from rich.progress import Progress

    # redrawn on each update rather than by rich's refresh thread: the planner forks worker
    # processes (--jobs), and a fork while another thread holds the terminal stream's lock
    # could leave a worker unable to flush it when it exits
    with Progress(transient=True, console=console, auto_refresh=False) as bar:
        tasks: dict[str, TaskID] = {}

        def update(task: str, done: int, n: int | None) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=n)
            bar.update(tasks[task], completed=done, total=n)
            bar.refresh()

        if total is not None:
            update(label, 0, total)
        yield update


def _scenario(config: Path | None) -> tuple[PlanFile, Scenario]:
    plan = load_plan(config)
    base = config.parent if config is not None else Path(".")
    return plan, plan.scenario(base)


def _int_list(text: str, option: str) -> list[int]:
    """A comma-separated list of positive integers, e.g. `1,2,4`."""
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise PlannerError(
            f"{option}: expected positive integers separated by commas, got '{text[:40]}'"
        ) from None
    if not values or any(v < 1 or v > 10**7 for v in values):
        raise PlannerError(f"{option}: values must be integers from 1 to 10,000,000")
    return list(dict.fromkeys(values))


@app.command()
def estimate(
    gpu: Annotated[
        str, typer.Option(help="GPU profile name (`ecoplan profiles list`) or a YAML file")
    ] = "l20",
    model: Annotated[str, typer.Option(help="model profile name or a YAML file")] = (
        "codellama-34b"
    ),
    tp: Annotated[str, typer.Option(help="tensor-parallel degree(s), e.g. 4 or 1,2,4,8")] = "4",
    pp: Annotated[str, typer.Option(help="pipeline-parallel degree(s)")] = "1",
    input: Annotated[
        str, typer.Option("--input", help="prompt length(s) in tokens (prefill)")
    ] = "2048",
    batch: Annotated[
        str, typer.Option(help="batch size(s): prompts per prefill, sequences per decode step")
    ] = "32",
    context: Annotated[
        str | None,
        typer.Option(help="KV tokens each decoding sequence holds (default: --input)"),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="serving engine profile: vllm-v1 or vllm-v0")
    ] = "vllm-v1",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Roofline latencies and memory of one instance shape, or a grid of them.

    Prefill: one batch of --batch prompts of --input tokens. Decode step: one iteration of
    --batch sequences each holding --context KV tokens. Comma-separated lists give one row per
    combination.

    Example: ecoplan estimate --gpu l20 --model codellama-34b --tp 2,4 --input 2048 --batch 32
    """
    from planner.estimate import estimate_grid

    try:
        grid = estimate_grid(
            catalog.model_ref(model),
            catalog.gpu_ref(gpu),
            tps=_int_list(tp, "--tp"),
            pps=_int_list(pp, "--pp"),
            batches=_int_list(batch, "--batch"),
            inputs=_int_list(input, "--input"),
            contexts=_int_list(context, "--context") if context is not None else None,
            engine=load_engine(engine),
        )
    except PlannerError as exc:
        raise fail(exc) from None
    _show(fmt, lambda: _json().estimate_doc(grid), terminal.estimate_grid(grid))


@profiles_app.command("list")
def profiles_list(fmt: FormatOption = OutputFormat.table) -> None:
    """List shipped GPU and model profiles.

    Example: ecoplan profiles list
    """
    gpus = [catalog.load_gpu(n) for n in catalog.gpu_names()]
    models = [catalog.load_model(n) for n in catalog.model_names()]
    _show(fmt, lambda: _json().profiles_doc(gpus, models), terminal.profiles(gpus, models))


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="a GPU or model profile name, or a YAML file")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show one profile with its derived quantities.

    Example: ecoplan profiles show codellama-34b
    """
    try:
        profile = catalog.profile_ref(name)
    except PlannerError as exc:
        raise fail(exc) from None
    doc = _json().profile_doc(profile)
    flat = {**doc["profile"], **doc.get("derived", {})}
    _show(fmt, lambda: doc, terminal.profile(name, flat))


@model_app.command("import")
def model_import(
    config_json: Annotated[Path, typer.Argument(help="a Hugging Face config.json")],
    name: Annotated[
        str | None, typer.Option("--name", help="profile name (default: the config's folder)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="profile file to write (default: NAME.yaml)")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write a model profile from a Hugging Face config.json.

    Handles dense, GQA and MoE models; head_dim is taken from the config when
    heads·head_dim ≠ hidden (Qwen3); DeepSeek's MLA, shared experts, dense
    first layers and MTP module; Gemma's sliding window; FP8, AWQ and GPTQ
    quantization_config. Each config key not understood is one warning on
    stderr. Use the profile in a plan file as `model: {profile: NAME.yaml}`.

    Example: ecoplan model import ./Qwen3-32B/config.json --out qwen3-32b.yaml
    """
    try:
        if out is not None:
            check_output_path(out, "--out")
        warnings: list[str] = []
        spec = catalog.load_hf_config(config_json, warnings)
        if name:
            spec = spec.model_copy(update={"name": name})
        target = out or Path(f"{spec.name}.yaml")
        check_output_path(target, "--out")
        write_atomic(target, catalog.model_profile_yaml(spec))
    except PlannerError as exc:
        raise fail(exc) from None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    doc = _json().model_import_doc(spec, target, warnings)
    _show(fmt, lambda: doc, terminal.model_imported(spec, str(target)))


@app.command("evaluate")
def evaluate_cmd(config: ConfigArgument = None, fmt: FormatOption = OutputFormat.table) -> None:
    """Goodput and attainment vs rate of a plan file's deployments.

    Evaluates the deployments the plan file lists, or, if it lists none, one per strategy on
    the whole cluster.

    Example: ecoplan evaluate examples/ecoserve-codellama-34b-sharegpt.yaml
    """
    from planner.evaluate import default_deployments, evaluate

    try:
        plan, scen = _scenario(config)
        deps = [d.build() for d in plan.deployments] or default_deployments(scen)
        ev = evaluate(scen, deps, plan.rates)
    except PlannerError as exc:
        raise fail(exc) from None
    _show(fmt, lambda: _json().evaluate_doc(scen, ev), terminal.evaluation(scen, ev))


@app.command("plan")
def plan_cmd(
    config: ConfigArgument = None,
    out: Annotated[Path, typer.Option("--out", help="where to write the markdown report")] = Path(
        "report.md"
    ),
    fmt: FormatOption = OutputFormat.table,
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
            help="add the sensitivity, KV-policy and rate-ramp sections",
        ),
    ] = True,
    launch: Annotated[
        Path | None,
        typer.Option("--launch", help="also write the files that start the winner on vLLM here"),
    ] = None,
    launch_strategy: Annotated[
        str | None,
        typer.Option(
            "--launch-strategy",
            help="with --launch: this strategy's best instead " + _STRATEGY_NOTE,
        ),
    ] = None,
    jobs: JobsOption = None,
) -> None:
    """Search every strategy's deployments, print the best per strategy and write the report.

    With --confirm, the top candidates are re-measured by the simulator and the report gains a
    simulation check section. With --launch DIR, DIR also gets the files that start the winner
    (or --launch-strategy's best deployment) on vLLM: per-node `vllm serve` scripts, the
    disaggregated-prefill proxy, a `vllm bench serve` script and a README (`ecoplan launch`
    writes the same from a saved JSON plan).

    Example: ecoplan plan examples/ecoserve-llama-30b-sharegpt.yaml --out report.md
    """
    from planner import pipeline
    from planner.report import write_plan_files

    try:
        check_output_path(out, "--out")
        if launch is not None or launch_strategy is not None:
            from planner.report.launch import check_strategy, launch_files, launch_input

            check_strategy(launch_strategy, "--launch-strategy")
        if launch is not None:
            check_output_dir(launch, "--launch")
        elif launch_strategy is not None:
            raise PlannerError("--launch-strategy: needs --launch DIR")
        plan_file, scen = _scenario(config)
        with _progress() as progress:
            outcome = pipeline.run_plan(
                plan_file,
                scen,
                confirm_top=confirm_top if confirm else None,
                sections=with_sensitivity,
                progress=progress,
                jobs=jobs,
            )
        files = write_plan_files(outcome, out)
        shown = terminal.plan(outcome, str(out))
        if launch is not None and (outcome.plan.winner is not None or launch_strategy):
            inp = launch_input(outcome.plan, launch_strategy, "--launch-strategy")
            written = write_tree(launch, launch_files(inp))
            files += written
            shown += terminal.launch(inp, str(launch), [str(p) for p in written])
    except PlannerError as exc:
        raise fail(exc) from None
    _show(fmt, lambda: _json().plan_doc(outcome, files), shown)
    res = outcome.plan
    if res.winner is None:
        first = next(iter(res.infeasible.items()), None)
        closest = f"; {first[0]}: {first[1]}" if first else ""
        _error(f"no deployment meets the SLO{closest} (all strategies: see {out})")
        raise typer.Exit(code=2)


@app.command("simulate")
def simulate_cmd(
    config: ConfigArgument = None,
    rate: Annotated[
        list[float] | None,
        typer.Option("--rate", help="request rate to simulate (repeatable); default: find goodput"),
    ] = None,
    requests: Annotated[
        int | None, typer.Option("--requests", min=100, help="requests per simulation")
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=64, help="seeds for goodput")] = 3,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**31, help="first seed")] = 0,
    fmt: FormatOption = OutputFormat.table,
    jobs: JobsOption = None,
) -> None:
    """Check deployments with the discrete-event simulator.

    Simulates the plan file's deployments (or one per strategy): attainment, TTFT/TPOT/E2E
    percentiles and utilisation at each --rate, or without --rate the simulated goodput (over
    --seeds seeds) next to the analytical one. A --rate run the simulator cannot do (the
    deployment does not fit, the run is too large) is a row that says why; the command fails
    only when no run can be done.

    Example: ecoplan simulate examples/ecoserve-codellama-34b-sharegpt.yaml --rate 20
    """
    from planner.crosscheck.evaluate import simulate_deployments
    from planner.evaluate import default_deployments

    try:
        plan, scen = _scenario(config)
        deps = [d.build() for d in plan.deployments] or default_deployments(scen)
        rates = rate or plan.rates
        if rates and any(not (0 < r < float("inf")) for r in rates):
            raise PlannerError("--rate: rates must be positive finite numbers")
        seed_list = list(range(seed, seed + seeds))
        total = len(deps) * (len(rates) if rates else len(seed_list))
        with _progress(total, "simulating") as progress:
            done = [0]

            def tick() -> None:
                done[0] += 1
                progress("simulating", done[0], total)

            rep = simulate_deployments(
                scen,
                deps,
                rates,
                seeds=seed_list,
                requests=requests,
                progress=tick,
                jobs=jobs,
            )
    except PlannerError as exc:
        raise fail(exc) from None
    _show(fmt, lambda: _json().simulate_doc(scen, rep, seed_list), terminal.simulation(scen, rep))


@app.command("scale")
def scale_cmd(config: ConfigArgument = None, fmt: FormatOption = OutputFormat.table) -> None:
    """GPUs per step of a rate ramp: EcoServe mitosis vs NoDG instances vs FuDG pools.

    Plans the scenario, then scales each strategy's best deployment over the plan file's
    `ramp` (default: 20 → 50 req/s in steps of 5, one hour each): GPUs, macro-instance
    splits and merges, GPU-hours and SLO attainment per step.

    Example: ecoplan scale examples/ecoserve-codellama-34b-sharegpt.yaml
    """
    from planner import pipeline

    try:
        plan_file, scen = _scenario(config)
        with _progress() as progress:
            outcome = pipeline.run_scale(plan_file, scen, progress)
    except PlannerError as exc:
        raise fail(exc) from None
    _show(fmt, lambda: _json().scale_doc(scen, outcome), terminal.scaling(outcome))


@app.command("schema")
def schema(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write the schema to this file instead of printing it"),
    ] = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) of the plan file, or write it with --out.

    Every field has a description (meaning, unit, default). A plan file whose first line is
    `# yaml-language-server: $schema=./plan.schema.json` is then checked and completed by
    editors with a YAML language server.

    Example: ecoplan schema --out plan.schema.json
    """
    from planner.config import plan_json_schema

    text = json.dumps(plan_json_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        check_output_path(out, "--out")
        write_atomic(out, text)
    except PlannerError as exc:
        raise fail(exc) from None
    typer.echo(f"schema written to {out}")


@app.command("calibrate")
def calibrate_cmd(
    measurements: Annotated[
        Path,
        typer.Argument(
            help="measured latencies, CSV with columns model,phase,tp,pp,batch,input_tokens,"
            "context_tokens,latency_ms"
        ),
    ],
    gpu: Annotated[
        str, typer.Option("--gpu", help="base GPU profile name or YAML file to start from")
    ],
    out: Annotated[Path, typer.Option("--out", help="calibrated GPU profile to write (YAML)")],
    name: Annotated[
        str | None, typer.Option("--name", help="profile name (default: BASE-calibrated)")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="serving engine the latencies were measured with")
    ] = "vllm-v1",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fit a GPU profile's performance parameters to measured prefill and decode latencies.

    Each CSV row is one iteration: phase prefill, one batch of `batch` prompts of
    `input_tokens` tokens; decode, one step of `batch` sequences each holding `context_tokens`
    KV tokens; `model` is a profile name or a model YAML file. Starting from --gpu, the GEMM
    and prefill-attention curves, the weight and KV read efficiencies, the per-kernel fixed
    time, all-reduce latency and bus bandwidth per TP size and the per-iteration overhead are
    fitted by least squares on log time, each only when the rows identify it; the rest keep
    the base values, and the table says why. Use the file as --gpu FILE or cluster.gpu: FILE.

    Example: ecoplan calibrate tests/data/calibration/a100.csv --gpu a100-80g-sxm --out a100.yaml
    """
    from planner.perf.calibrate import calibrate_file, profile_yaml

    try:
        check_output_path(out, "--out")
        cal = calibrate_file(measurements, catalog.gpu_ref(gpu), load_engine(engine), name)
        write_atomic(out, profile_yaml(cal.gpu))
    except PlannerError as exc:
        raise fail(exc) from None
    _show(fmt, lambda: _json().calibrate_doc(cal, out), terminal.calibration(cal, str(out)))


@app.command("compare")
def compare_cmd(
    config: ConfigArgument = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus",
            help="GPU profiles or YAML files to compare, comma-separated (default: every "
            "shipped profile)",
        ),
    ] = None,
    nodes: Annotated[
        str | None,
        typer.Option("--nodes", help="node counts to try, e.g. 2,4 (default: the plan's)"),
    ] = None,
    gpus_per_node: Annotated[
        str | None,
        typer.Option(
            "--gpus-per-node", help="GPUs per node to try, e.g. 4,8 (default: the plan's)"
        ),
    ] = None,
    target_rate: Annotated[
        float | None,
        typer.Option(
            "--target-rate",
            help="req/s to size for (default: objective.target_rate, else the ramp's peak)",
        ),
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="also write a PNG chart here (needs the plot extra)"),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Which GPU is cheapest for this workload: plan it on a cluster of each GPU type.

    Plans the plan file's model, workload, SLO and search space on each GPU type with the
    plan's node shape and network (or each --nodes × --gpus-per-node shape), the deployment
    search only, and ranks the GPUs by the cost per hour of the GPUs the target rate needs.
    Per GPU: best strategy and deployment, goodput per GPU, the cluster's $/hour, $ per
    million output tokens, GPUs and $/hour for the target rate. GPUs on which the model fits
    no instance shape, or no deployment meets the SLO, are listed with the reason.

    Example: ecoplan compare examples/small-model-llama-3.1-8b-alpaca.yaml --gpus l20,l40s
    """
    from planner.compare import compare
    from planner.report import charts

    try:
        if chart is not None:
            check_output_path(chart, "--chart")
            if not charts.plot_available():
                raise PlannerError("--chart: needs the plot extra (pip install 'ecoplan[plot]')")
        plan_file = load_plan(config)
        base = config.parent if config is not None else Path(".")
        refs = [g.strip() for g in gpus.split(",") if g.strip()] if gpus is not None else None
        with _progress() as progress:
            cmp = compare(
                plan_file,
                base,
                gpus=refs,
                nodes=_int_list(nodes, "--nodes") if nodes is not None else None,
                gpus_per_node=(
                    _int_list(gpus_per_node, "--gpus-per-node")
                    if gpus_per_node is not None
                    else None
                ),
                target_rate=target_rate,
                progress=progress,
            )
        files: list[Path] = []
        if chart is not None:
            png = charts.compare_png(cmp)
            if png is not None:
                write_atomic(chart, png)
                files.append(chart)
    except PlannerError as exc:
        raise fail(exc) from None
    _show(
        fmt,
        lambda: _json().compare_doc(cmp, files),
        terminal.comparison(cmp, str(files[0]) if files else None),
    )


@app.command("launch")
def launch_cmd(
    plan_json: Annotated[
        Path, typer.Argument(help="a plan saved with `ecoplan plan --format json > PLAN.json`")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="folder for the launch files (created if missing)")
    ] = Path("launch"),
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="this strategy's best deployment instead of the winner " + _STRATEGY_NOTE,
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Write the files that start a planned deployment on vLLM, from a saved JSON plan.

    The winner (or --strategy's best deployment) becomes one script of exact `vllm serve`
    commands per node (GPUs, ports, parallelism, batch limits, KV connector and role for
    FuDG), proxy.sh with vLLM's disaggregated-prefill proxy (FuDG), bench.sh with `vllm bench
    serve` at the planned rate and lengths, instances.json (instances, EcoServe's macro
    instances and activation order) and a README on the order to start them. The same as
    `ecoplan plan --launch DIR`.

    Example: ecoplan plan --no-sensitivity --format json > p.json && ecoplan launch p.json
    """
    from planner.report.launch import check_strategy, launch_from_file

    try:
        check_strategy(strategy)
        check_output_dir(out, "--out")
        inp, files = launch_from_file(plan_json, strategy)
        paths = write_tree(out, files)
    except PlannerError as exc:
        raise fail(exc) from None
    names = [str(p) for p in paths]
    _show(fmt, lambda: _json().launch_doc(inp, out, paths), terminal.launch(inp, str(out), names))


def main() -> None:
    """The `ecoplan` executable and `python -m planner`: run the CLI, then end the process at
    once with its exit code. Everything the command makes is finished by then (files written
    atomically and closed, worker processes joined); the output streams are flushed and the
    exit handlers run, and what is left out is only the interpreter tearing down every object
    one by one (~0.05 s after a plan), which the operating system's release of the process
    makes moot. ECOPLAN_DEBUG=1 keeps the ordinary exit (for leak checkers and the like)."""
    code = app(prog_name="ecoplan", standalone_mode=False)
    code = code if isinstance(code, int) else 0
    if os.environ.get("ECOPLAN_DEBUG"):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing more can be said there
            stream.flush()
    atexit._run_exitfuncs()
    os._exit(code)

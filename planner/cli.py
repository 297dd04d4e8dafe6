"""Command-line interface (typer): parses arguments, calls the library, renders the result."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from planner import catalog
from planner.errors import PlannerError
from planner.estimate import Estimate, estimate_instance
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


def main() -> None:  # pragma: no cover - console entry for `python -m planner`
    app(prog_name="ecoplan")
    sys.exit(0)

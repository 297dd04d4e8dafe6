"""`ecoplan estimate`: phase latencies and memory of one instance shape, or of every combination
of several shapes, batches and lengths (a grid of rows)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from planner.engine import DEFAULT_ENGINE, EngineProfile, load_engine
from planner.errors import PlannerError
from planner.hardware import GPU, IntraNodeLink
from planner.model import ModelSpec
from planner.perf import InstancePerf, MemoryPlan, PhaseTime
from planner.perf.memory import plan_engine_memory


@dataclass(frozen=True)
class PhaseRow:
    label: str
    latency_s: float
    tokens_per_s: float
    bound: str
    breakdown: PhaseTime


@dataclass(frozen=True)
class Estimate:
    """One instance shape at one (batch, input, context) point.

    `prefill_s`: one prefill batch of `batch` prompts of `input_tokens` tokens each.
    `decode_step_s`: one decode iteration of `batch` sequences each holding `context_tokens`
    KV tokens. `phases` also holds the batch-of-one cases for the terminal table."""

    model: ModelSpec
    gpu: GPU
    tp: int
    pp: int
    input_tokens: int
    context_tokens: int
    batch: int
    phases: list[PhaseRow]
    memory: MemoryPlan
    max_decode_batch: int  # sequences of `context_tokens` that fit the KV cache at once

    @property
    def prefill(self) -> PhaseRow:
        return self.phases[1]

    @property
    def decode_step(self) -> PhaseRow:
        return self.phases[3]


@dataclass(frozen=True)
class EstimateRow:
    """One combination of an estimate grid: its inputs, and the estimate or why it fails."""

    tp: int
    pp: int
    batch: int
    input_tokens: int
    context_tokens: int
    estimate: Estimate | None
    problem: str | None


@dataclass(frozen=True)
class EstimateGrid:
    """`ecoplan estimate`'s result: one row per combination of the listed values."""

    model: ModelSpec
    gpu: GPU
    rows: list[EstimateRow]
    engine: str = DEFAULT_ENGINE


def estimate_instance(
    model: ModelSpec,
    gpu: GPU,
    tp: int,
    pp: int,
    input_tokens: int,
    batch: int,
    link: IntraNodeLink | None = None,
    context_tokens: int | None = None,
    engine: EngineProfile | None = None,
) -> Estimate:
    """Prefill and decode-step latencies (roofline, docs/model.md §2) and the memory plan of one
    instance. Decode sequences hold `context_tokens` KV tokens (default: `input_tokens`).
    Raises PlannerError when the parallelism cannot shard the model or it does not fit."""
    ctx = input_tokens if context_tokens is None else context_tokens
    if input_tokens < 1 or batch < 1 or ctx < 1:
        raise PlannerError("input, context and batch must be >= 1")
    longest = max(input_tokens, ctx)
    if longest > model.max_context:
        raise PlannerError(
            f"input/context: {longest} tokens exceed {model.name}'s context of {model.max_context}"
        )
    if pp > model.num_layers:
        raise PlannerError(f"--pp: {pp} exceeds {model.name}'s {model.num_layers} layers")
    eng = engine or load_engine(DEFAULT_ENGINE)
    need = min(longest + 1, model.max_context)  # the max_model_len this estimate needs
    mem, _ = plan_engine_memory(model, gpu, tp, pp, eng, max_model_len=need, context_tokens=ctx)
    if not mem.fits:
        raise PlannerError(f"does not fit: {mem.reason}")
    perf = InstancePerf(model, gpu, link or gpu.intra_node, tp, pp, eng)

    def row(label: str, t: PhaseTime, tokens: float) -> PhaseRow:
        total = float(t.total_s)
        return PhaseRow(label, total, tokens / total, t.bound(), t)

    phases = [
        row(f"prefill 1×{input_tokens}", perf.prefill(input_tokens), input_tokens),
        row(
            f"prefill {batch}×{input_tokens}",
            perf.prefill(input_tokens, batch),
            input_tokens * batch,
        ),
        row(f"decode B=1 ctx={ctx}", perf.decode_step(1, ctx), 1),
        row(f"decode B={batch} ctx={ctx}", perf.decode_step(batch, ctx), batch),
    ]
    return Estimate(
        model=model,
        gpu=gpu,
        tp=tp,
        pp=pp,
        input_tokens=input_tokens,
        context_tokens=ctx,
        batch=batch,
        phases=phases,
        memory=mem,
        max_decode_batch=mem.max_decode_batch(ctx),
    )


def estimate_grid(
    model: ModelSpec,
    gpu: GPU,
    *,
    tps: Sequence[int],
    pps: Sequence[int],
    batches: Sequence[int],
    inputs: Sequence[int],
    contexts: Sequence[int] | None = None,
    engine: EngineProfile | None = None,
) -> EstimateGrid:
    """Every combination of tp × pp × batch × input × context (context defaults to each input)
    as one row. A single combination that cannot run raises its PlannerError; in a grid such a
    row carries its problem, and only a grid where nothing runs raises."""
    ctx_values: Sequence[int | None] = contexts if contexts else [None]
    rows: list[EstimateRow] = []
    combos = list(itertools.product(tps, pps, batches, inputs, ctx_values))
    for tp, pp, b, i, c in combos:
        context = i if c is None else c
        try:
            est: Estimate | None = estimate_instance(
                model, gpu, tp, pp, i, b, context_tokens=c, engine=engine
            )
            problem = None
        except PlannerError as exc:
            if len(combos) == 1:
                raise
            est, problem = None, str(exc)
        rows.append(EstimateRow(tp, pp, b, i, context, est, problem))
    if all(r.estimate is None for r in rows):
        raise PlannerError(f"no combination runs; first: {rows[0].problem}")
    return EstimateGrid(
        model=model, gpu=gpu, rows=rows, engine=(engine or load_engine(DEFAULT_ENGINE)).name
    )

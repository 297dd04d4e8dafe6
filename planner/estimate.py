"""Single-instance estimate: phase latencies and memory for one model on one GPU type."""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import PlannerError
from planner.hardware import GPU, IntraNodeLink
from planner.model import ModelSpec
from planner.perf import InstancePerf, MemoryPlan, PhaseTime, plan_memory


@dataclass(frozen=True)
class PhaseRow:
    label: str
    latency_s: float
    tokens_per_s: float
    bound: str
    breakdown: PhaseTime


@dataclass(frozen=True)
class Estimate:
    model: ModelSpec
    gpu: GPU
    tp: int
    pp: int
    input_tokens: int
    batch: int
    phases: list[PhaseRow]
    memory: MemoryPlan
    max_decode_batch: int


def estimate_instance(
    model: ModelSpec,
    gpu: GPU,
    tp: int,
    pp: int,
    input_tokens: int,
    batch: int,
    link: IntraNodeLink | None = None,
) -> Estimate:
    """Prefill and decode-step latencies (roofline, DESIGN.md §2) and the memory plan of one
    instance. Raises PlannerError when the parallelism cannot shard the model or it does not fit."""
    if input_tokens < 1 or batch < 1:
        raise PlannerError("input and batch must be >= 1")
    mem = plan_memory(model, gpu, tp, pp, min_kv_tokens=min(input_tokens + 1, model.max_context))
    if not mem.fits:
        raise PlannerError(f"does not fit: {mem.reason}")
    perf = InstancePerf(model, gpu, link or gpu.intra_node, tp, pp)

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
        row(f"decode B=1 ctx={input_tokens}", perf.decode_step(1, input_tokens), 1),
        row(
            f"decode B={batch} ctx={input_tokens}",
            perf.decode_step(batch, input_tokens),
            batch,
        ),
    ]
    return Estimate(
        model=model,
        gpu=gpu,
        tp=tp,
        pp=pp,
        input_tokens=input_tokens,
        batch=batch,
        phases=phases,
        memory=mem,
        max_decode_batch=mem.max_decode_batch(input_tokens),
    )

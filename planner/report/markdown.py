"""The markdown cost report of `ecoplan plan`: a rendering of `pipeline.PlanOutcome`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from planner.deployment import FAMILY, MEANING, STRATEGIES, strategy_title
from planner.ecoserve_paper import PAPER, PAPER_RATIO

if TYPE_CHECKING:
    from planner.crosscheck.confirm import Confirmation
    from planner.ecoserve_paper import PaperComparison
    from planner.hardware import Cluster
    from planner.pipeline import PlanOutcome, ScaleOutcome
    from planner.scaling import ScaleStep
    from planner.scenario import Scenario
    from planner.search import Ranked
    from planner.sensitivity import SensitivityTable


def _ms(x: float) -> str:
    return "∞" if not math.isfinite(x) else f"{x * 1e3:.0f} ms"


def _s(x: float) -> str:
    return "∞" if not math.isfinite(x) else f"{x:.2f} s"


def _money(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"${x:,.2f}"


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, … 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _row(r: Ranked, target: float | None) -> list[str]:
    """A ranked candidate's cells in `_head(target)` order."""
    g = r.goodput
    d = g.deployment
    p = g.prediction
    tps = (1.0 / p.tpot_s[50]) if p and p.tpot_s.get(50, 0) > 0 else 0.0
    cells = [
        strategy_title(d.strategy),
        d.label(),
        str(d.gpus),
        f"{g.rate:.2f}",
        f"{g.per_gpu:.3f}",
        _s(p.ttft_s[90]) if p else "–",
        _ms(p.tpot_s[90]) if p else "–",
        f"{tps:.1f}",
        str(r.gpus_needed) if target is not None and r.gpus_needed is not None else "–",
        _money(r.cost_per_hour if target is not None else None),
        _money(r.cost_per_million_tokens),
        f"{g.binding}: {g.detail}",
    ]
    return cells if target is not None else [c for i, c in enumerate(cells) if i not in _TARGET]


HEAD = [
    "strategy",
    "deployment",
    "GPUs",
    "goodput req/s",
    "goodput/GPU",
    "P90 TTFT",
    "P90 TPOT",
    "tokens/s per user",
    "GPUs for target",
    "$/h for target",
    "$/M output tokens",
    "binding constraint",
]
_TARGET = {HEAD.index("GPUs for target"), HEAD.index("$/h for target")}


def _head(target: float | None) -> list[str]:
    """HEAD without the target-rate columns when there is no target rate to fill them."""
    return HEAD if target is not None else [h for i, h in enumerate(HEAD) if i not in _TARGET]


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(out)


def _confirmation_section(confirmed: list[Confirmation]) -> list[str]:
    rows = []
    for c in confirmed:
        d = c.ranked.deployment
        at = c.sim.at_rate
        rows.append(
            [
                d.strategy,
                d.label(),
                f"{c.ranked.goodput.per_gpu:.3f}",
                c.sim.ci_text(),
                f"{c.gap:+.1%}",
                _s(at.ttft_s[90]) if at else "–",
                _ms(at.tpot_s[90]) if at else "–",
                f"{at.mean_decode_batch:.1f}" if at else "–",
            ]
        )
    best_sim = max(confirmed, key=lambda c: c.sim.per_gpu)
    best_ana = max(confirmed, key=lambda c: c.ranked.goodput.per_gpu)
    agree = (
        "The simulator agrees on the best candidate."
        if best_sim is best_ana
        else f"The simulator ranks **{best_sim.ranked.deployment.strategy} "
        f"{best_sim.ranked.deployment.label()}** first ({best_sim.sim.per_gpu:.3f} req/s per GPU)."
    )
    seeds = len(confirmed[0].sim.seed_rates)
    return [
        "## Simulation check",
        "",
        f"Goodput re-measured by the discrete-event simulator (iteration level, "
        f"{confirmed[0].sim.requests:,}+ requests per run, {seeds} seeds; 95% interval over "
        "seeds). Gap = (analytical − simulated) / simulated. P90 latencies and mean decode batch "
        "are the simulation's at its goodput.",
        "",
        _table(
            [
                "strategy",
                "deployment",
                "analytical/GPU",
                "simulated/GPU (95% CI)",
                "gap",
                "P90 TTFT",
                "P90 TPOT",
                "decode batch",
            ],
            rows,
        ),
        "",
        agree,
        "",
    ]


def _sensitivity_section(tables: list[SensitivityTable], png_name: str | None) -> list[str]:
    lines = [
        "## Sensitivity",
        "",
        "Goodput per GPU (req/s) of each strategy's best deployment above, re-solved with one "
        "input changed (the deployment itself is kept).",
        "",
    ]
    lines += _tables(tables)
    if png_name:
        lines += [f"![Sensitivity]({png_name})", ""]
    return lines


def _tables(tables: list[SensitivityTable]) -> list[str]:
    lines: list[str] = []
    for t in tables:
        lines += [f"**{t.title}**", ""]
        rows = [[k, *(t.fmt.format(v) for v in vals)] for k, vals in t.rows.items()]
        lines += [_table(["strategy", *t.column_labels], rows), ""]
    return lines


def _kv_section(tables: list[SensitivityTable], scen_policy: str) -> list[str]:
    return [
        "## KV-cache policies",
        "",
        "How each strategy's best deployment fares when requests reserve KV memory differently "
        "(the plan above uses "
        f"`{scen_policy}`): `paged` allocates on demand and preempts when full, `max` reserves "
        "prompt + max output, `predicted` reserves prompt + a predicted output (lognormal "
        "error), `predicted+pipelining` also lends unused reservation tails to short requests.",
        "",
        *_tables(tables),
    ]


MITOSIS_COLUMNS = ("rate", "instances", "event", "GPUs", "attainment")


def _paper_margin(winner: str | None, margin: float | None) -> str:
    """EcoServe against the others at the paper's shape, next to the paper's 2–2.5×."""
    paper = f"{PAPER_RATIO[0]:g}–{PAPER_RATIO[1]:g}×"
    if margin is None:
        return " (no other strategy meets the SLO at that shape)"
    if winner == "ecoserve":
        return f", {margin:.2f}× the best other strategy (the paper: {paper})"
    return f", with EcoServe at {margin:.2f}× its goodput per GPU (the paper: {paper} ahead)"


def _kv_verdict(binding: str, link_u: float, prefill_u: float, winner: str) -> str:
    """Whether the KV link limits a FuDG plan, in the paper's terms."""
    if binding == "network":
        return "The link limits FuDG here, as the paper argues."
    if link_u >= max(prefill_u, 0.8):
        lead = (
            "; FuDG still leads because each pool runs its own shape and batch"
            if FAMILY[winner] == "FuDG"
            else ""
        )
        return (
            "The link is the busiest resource and its queue sets much of the TTFT, as the "
            f"paper argues{lead}."
        )
    return (
        "The planner does not see the link as FuDG's limit at this load, which is where it "
        "parts from the paper's argument."
    )


def _paper_section(cmp: PaperComparison) -> list[str]:
    """Where the plan agrees or disagrees with the EcoServe paper, and through which mechanism
    (docs/model.md §9.4); every figure comes from the plan's models."""
    v = cmp.views
    eco = v.get("ecoserve")
    rank = _ordinal(cmp.ecoserve_rank) if cmp.ecoserve_rank else "last"
    agree = cmp.winner == "ecoserve"
    lines = [
        "## Against the EcoServe paper",
        "",
        f"The {PAPER} reports EcoServe ahead of vLLM, Sarathi, DistServe and MoonCake on 32 L20 "
        f"GPUs with 10 GbE, by about {PAPER_RATIO[0]:g}–{PAPER_RATIO[1]:g}× in goodput. "
        + (
            "The planner agrees on the winner here"
            if agree
            else f"The planner ranks EcoServe {rank} of "
            f"{len(v)} strategies, at {cmp.ecoserve_vs_winner:.2f}× the goodput per GPU of the "
            f"winner ({cmp.winner})"
        )
        + ". The mechanisms behind the difference, as the planner's models see them:",
        "",
    ]
    rows = []
    for s, view in v.items():
        best, shaped = view.best, view.at_paper_shape
        rows.append(
            [
                s,
                f"{best.per_gpu:.3f}" if best else "–",
                best.deployment.label() if best else "–",
                f"{shaped.per_gpu:.3f}" if shaped else "cannot run",
                shaped.deployment.label() if shaped else "–",
                f"{shaped.binding}" if shaped else "–",
            ]
        )
    lines += [
        f"- **Parallelism.** The paper runs every system at TP {cmp.tp} (PP 1); the planner "
        "lets each strategy choose its shape. "
        + (
            f"At the paper's shape the planner's winner is **{cmp.paper_shape_winner}**"
            + _paper_margin(cmp.paper_shape_winner, cmp.ecoserve_margin_at_paper_shape)
            + (
                f"; the shapes the planner picks (the best deployments below) move EcoServe from "
                f"first to {rank}."
                if cmp.paper_shape_winner == "ecoserve" and not agree
                else "."
            )
            if cmp.paper_shape_winner
            else "No strategy meets the SLO at the paper's shape."
        ),
        "",
        _table(
            [
                "strategy",
                "best goodput/GPU",
                "best deployment",
                f"at TP {cmp.tp}: goodput/GPU",
                f"at TP {cmp.tp}: deployment",
                "binds",
            ],
            rows,
        ),
        "",
    ]
    lines.append(
        f"- **TP all-reduce.** At TP {cmp.tp} over the node's link the all-reduces take "
        f"{cmp.allreduce_share_prefill:.0%} of a mean prefill and "
        f"{cmp.allreduce_share_decode:.0%} of a decode step of 32 requests (GPU profile's "
        "bus bandwidth by group size, docs/model.md §2.5); smaller TP groups avoid most of it, "
        "which is why the planner's shapes differ from the paper's."
        if cmp.allreduce_share_prefill >= 0.2
        else f"- **TP all-reduce.** At TP {cmp.tp} the all-reduces take "
        f"{cmp.allreduce_share_prefill:.0%} of a mean prefill and "
        f"{cmp.allreduce_share_decode:.0%} of a decode step of 32 requests."
    )
    for s in ("distserve", "mooncake"):
        f = v.get(s)
        if f is None or f.best is None or f.kv_bytes_per_request <= 0:
            continue
        lines.append(
            f"- **KV transfer ({s}).** {f.kv_bytes_per_request / 1e6:.0f} MB of KV per request "
            f"takes {f.kv_transfer_s * 1e3:.0f} ms on an idle link; at its goodput the link is "
            f"{f.link_utilisation:.0%} busy and the prefill instances {f.prefill_utilisation:.0%}; "
            f"what binds is {f.best.binding}. "
            + _kv_verdict(f.best.binding, f.link_utilisation, f.prefill_utilisation, cmp.winner)
        )
    for s in ("vllm", "sarathi"):
        f = v.get(s)
        if f is None or f.best is None:
            continue
        lines.append(
            f"- **Interference ({s}).** At its goodput prefill takes {f.prefill_utilisation:.0%} "
            f"of each instance; what binds is {f.best.binding}: {f.best.detail}."
        )
    if eco is not None and eco.best is not None:
        line = (
            f"- **EcoServe's own limit.** At its goodput EcoServe is bound by "
            f"{eco.best.binding}: {eco.best.detail}."
        )
        if cmp.ecoserve_at_winner_rate is not None:
            att, binding, detail = cmp.ecoserve_at_winner_rate
            line += (
                f" At the winner's goodput per GPU its attainment would be {att:.0%} "
                f"({binding}: {detail})."
            )
        lines.append(line)
    lines += [
        "",
        "The paper measured its own implementations of the baselines; the planner models each "
        "strategy's mechanism from the same performance layer, so a gap here is a difference in "
        "mechanism, not an error to tune away (docs/model.md §9.4).",
        "",
    ]
    return lines


def mitosis_cells(step: ScaleStep) -> list[str]:
    """One row of a mitosis schedule, in MITOSIS_COLUMNS order."""
    return [f"{step.rate:g}/s", step.label(), step.event, str(step.gpus), f"{step.attainment:.1%}"]


def _scaling_section(
    scaling: ScaleOutcome, cluster: Cluster, png_name: str | None = None
) -> list[str]:
    plans, ramp = scaling.plans, scaling.ramp
    rates = ", ".join(f"{r:g}" for r in ramp.rates)
    total = cluster.total_gpus

    def gpus(n: int) -> str:
        return f"{n} †" if n > total else str(n)

    over = [s.gpus for p in plans for s in p.steps if s.gpus > total]
    lines = [
        "## Scaling over a rate ramp",
        "",
        f"Rates {rates} req/s, {ramp.step_hours:g} h per step. Each strategy scales its best "
        "deployment above: NoDG adds instances, FuDG adds P/D pool pairs at the same ratio, "
        f"EcoServe grows macro instances of {ramp.macro_min}–{ramp.macro_max} instances and "
        "splits or merges them (mitosis). GPUs are the fewest whose analytical goodput covers "
        "the step's rate; attainment is the analytical SLO attainment at that rate.",
        "",
        _table(
            ["strategy", "GPU-hours", "peak GPUs", "lowest attainment"],
            [
                [
                    p.strategy,
                    f"{p.gpu_hours:,.0f}",
                    gpus(max(s.gpus for s in p.steps)),
                    f"{p.min_attainment:.1%}",
                ]
                for p in plans
            ],
        ),
        "",
        "**GPUs per step**",
        "",
        _table(
            ["strategy", *(f"{r:g}/s" for r in ramp.rates)],
            [[p.strategy, *(gpus(s.gpus) for s in p.steps)] for p in plans],
        ),
        "",
    ]
    if over:
        per_node = cluster.gpus_per_node
        nodes = math.ceil(max(over) / per_node)
        lines += [
            f"† More GPUs than the cluster's {total}: these steps assume the cluster grows by "
            f"whole nodes of {per_node} GPUs (up to {nodes} nodes, {nodes * per_node} GPUs), so "
            "the ramp is a capacity plan, not a fit into the current cluster.",
            "",
        ]
    if png_name:
        lines += [f"![GPUs per ramp step]({png_name})", ""]
    for p in plans:
        if p.steps and p.steps[0].macro_sizes:
            lines += [
                f"**Mitosis schedule ({p.strategy})**",
                "",
                _table(list(MITOSIS_COLUMNS), [mitosis_cells(s) for s in p.steps]),
                "",
            ]
    return lines


def render_markdown(
    outcome: PlanOutcome,
    png_name: str | None = None,
    sensitivity_png: str | None = None,
    scaling_png: str | None = None,
) -> str:
    """The report; `png_name`, `sensitivity_png` and `scaling_png` are chart files written
    beside it."""
    res = outcome.plan
    s = res.scenario
    c = s.cluster
    target = res.objective.target_rate
    inp, out = s.sample()
    lines = ["# ecoplan capacity report", ""]
    lines += [
        "## Scenario",
        "",
        f"- **Cluster**: {c.nodes} nodes × {c.gpus_per_node} {c.gpu.name} = {c.total_gpus} GPUs; "
        f"intra-node {c.link.kind}; inter-node {c.network.bandwidth_gbit:g} Gb/s per node; "
        f"${c.gpu_hour_price:.2f} per GPU-hour.",
        f"- **Model**: {s.model.name} ({s.model.param_count / 1e9:.1f} B parameters, "
        f"{s.model.dtype}, {s.model.kv_bytes_per_token / 1024:.0f} KiB KV per token).",
        f"- **Workload**: {s.workload.name}; mean input {inp.mean():.0f} tokens, mean output "
        f"{out.mean():.0f} tokens; arrivals {s.workload.arrivals.process}"
        + (f" (CV {s.workload.arrivals.cv:g})" if s.workload.arrivals.process == "gamma" else "")
        + _prefix_words(s)
        + ".",
        f"- **SLO**: TTFT ≤ {s.slo.ttft_s:g} s and TPOT ≤ {s.slo.tpot_s * 1e3:g} ms"
        f"{s.slo.tbt_text} for "
        f"{s.slo.attainment:g}% of requests ({'joint' if s.slo.joint else 'per metric'}).",
        f"- **Objective**: {res.objective.kind.replace('_', ' ')}"
        + (f", target {target:g} req/s" if target else "")
        + f". {res.evaluated} deployments evaluated, {res.pruned} pruned by an upper bound on "
        "their goodput (search.py).",
        "",
    ]
    w = res.winner
    lines += ["## Recommendation", ""]
    if w is None:
        lines += ["No deployment meets the SLO. Why each strategy fails:", ""]
        lines += [f"- **{k}**: {v}" for k, v in res.infeasible.items()]
    else:
        g = w.goodput
        lines += [
            f"**{strategy_title(g.deployment.strategy)}**, "
            f"{g.deployment.label()}: **{g.per_gpu:.3f} req/s per GPU** "
            f"({g.rate:.2f} req/s on {g.deployment.gpus} GPUs) at the SLO; binding constraint: "
            f"{g.binding} — {g.detail}.",
        ]
        if target is not None and w.gpus_needed is not None:
            lines.append(
                f"For {target:g} req/s it needs **{w.gpus_needed} GPUs** "
                f"({_money(w.cost_per_hour)} per hour)."
            )
        d = g.deployment
        if d.replicas > 1:
            lines.append(
                f"It is {d.replicas} identical units of {d.unit.label()} ({d.unit_gpus} GPUs "
                "each, on nodes of their own) behind a round-robin load balancer: each unit "
                f"serves every {_ordinal(d.replicas)} request, {g.rate / d.replicas:.2f} req/s "
                "(docs/model.md §8.5)."
            )
    lines += ["", "## Best deployment per strategy", ""]
    best_rows = [v[0] for v in res.per_strategy.values() if v]
    lines += [_table(_head(target), [_row(r, target) for r in best_rows]), ""]
    if target is None:
        lines += [
            "GPUs and cost per hour for a target rate are shown when the plan's objective sets "
            "`target_rate` (req/s).",
            "",
        ]
    if res.infeasible:
        lines += ["Strategies with no deployment meeting the SLO:", ""]
        lines += [f"- **{k}**: {v}" for k, v in res.infeasible.items()]
        lines.append("")
    lines += ["## Runner-up plans", ""]
    runners = [r for v in res.per_strategy.values() for r in v[1:]]
    lines += [_table(_head(target), [_row(r, target) for r in runners]) if runners else "None.", ""]
    lines += [
        "## Pareto frontier: goodput per GPU vs per-user tokens/s",
        "",
        "Deployments no other beats on both throughput per GPU and per-user decode speed "
        "(1 / median TPOT at the goodput rate).",
        "",
        _table(
            ["strategy", "deployment", "goodput/GPU", "tokens/s per user"],
            [
                [
                    r.deployment.strategy,
                    r.deployment.label(),
                    f"{r.goodput.per_gpu:.3f}",
                    f"{1.0 / r.goodput.prediction.tpot_s[50]:.1f}" if r.goodput.prediction else "–",
                ]
                for r in res.frontier
            ],
        ),
        "",
    ]
    if png_name:
        lines += [f"![Pareto frontier]({png_name})", ""]
    if outcome.sensitivity:
        lines += _sensitivity_section(outcome.sensitivity, sensitivity_png)
    if outcome.kv_tables:
        lines += _kv_section(outcome.kv_tables, s.kv.policy)
    if outcome.scaling:
        lines += _scaling_section(outcome.scaling, c, scaling_png)
    if outcome.confirmed:
        lines += _confirmation_section(outcome.confirmed)
    if outcome.paper:
        lines += _paper_section(outcome.paper)
    g0 = c.gpu
    eng = s.engine
    limits = eng.limits(g0.name, g0.memory_gib, int(max(inp + out)))
    graphs = (
        f"CUDA-graph decode up to batch {eng.cuda_graph_max_batch}"
        if eng.cuda_graph_decode
        else "eager decode"
    )
    allreduce = (
        "custom all-reduce where the link allows" if eng.custom_allreduce else "NCCL all-reduce"
    )
    lines += [
        "## Assumptions",
        "",
        f"- Performance model (docs/model.md §2): a list of operations per phase, each timed "
        f"by {g0.name}'s predictors — GEMMs at up to {g0.gemm.plateau:.0%} of "
        f"{g0.peak_flops(s.model.compute_dtype) / 1e12:g} dense TFLOPS (half that at "
        f"{g0.gemm.knee_tokens:g} tokens), weights streamed at "
        f"{g0.memory_efficiency['weights']:.0%} and KV read at "
        f"{g0.memory_efficiency['kv_cache']:.0%} of {g0.memory_bandwidth_gb_s:g} GB/s, "
        f"attention at up to {g0.attention.prefill_plateau:.0%} of peak, "
        f"{g0.kernel_fixed_us:g} µs per kernel; TP all-reduce over {c.link.kind}.",
        f"- Serving engine `{eng.name}` ({eng.description}): max_num_seqs "
        f"{limits.max_num_seqs}, max_num_batched_tokens {limits.max_num_batched_tokens}; "
        f"{graphs}; {allreduce}; {eng.iteration_overhead_ms:g} ms + "
        f"{eng.per_sequence_overhead_us:g} µs per sequence of CPU time per iteration.",
        f"- Memory: {g0.memory_gib:g} GiB per GPU at {eng.gpu_memory_utilization:.0%} utilisation, "
        f"{g0.runtime_reserve_gib:g} GiB runtime reserve; KV policy `{s.kv.policy}`.",
        "- Queueing (docs/model.md §6): prefill queues as G/G/1 (Allen–Cunneen mean, exponential "
        "tail); NoDG decode interruptions as compound renewal sums; FuDG KV transfer as a queue "
        "on the link; PaDG windows and rolling activation per EcoServe's admission checks.",
        f"- Request lengths: {s.samples} stratified samples; {s.workload.input.kind} input and "
        f"{s.workload.output.kind} output distributions, independent.",
        "- Waiting prompts are prefilled together at each iteration boundary, up to the "
        "engine's token budget: a run of back-to-back prefill batches starts with the prompts that "
        "arrived during the decode step before it, and each batch holds those that arrived "
        "during the one before.",
        "- PaDG: a window closes when admission check 2 (the decodes' mean saved TPOT, diluted "
        "by the requests the window admitted) no longer covers its work; below one prefill, "
        "requests pend until an instance's decodes earn the stall back.",
        "- Prices are estimates unless set in the plan file; see the GPU profile's sources.",
        "- Strategies: "
        + "; ".join(f"`{name}` — {MEANING[name]}" for name in STRATEGIES)
        + ". vLLM V1 has no prefill-priority scheduler: `vllm` plans V0's behaviour, and "
        "a V1 server with default settings runs the `sarathi` plan.",
        "",
    ]
    return "\n".join(lines)


def _prefix_words(s: Scenario) -> str:
    """The workload's shared prefix and what prefix caching reuses of it (docs/model.md §4.6)."""
    pre = s.workload.prefix
    if pre is None:
        return ""
    words = f"; a {pre.tokens:,}-token shared prefix starts {pre.share:.0%} of prompts"
    cached = s.cached_tokens()
    if not s.engine.prefix_caching:
        return words + " (not reused: the engine's prefix caching is off)"
    mean = 0.0 if cached is None else float(cached.mean())
    return words + f" (prefix caching reuses {mean:,.0f} prompt tokens per request on average)"

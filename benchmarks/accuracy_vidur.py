"""Compare the planner's operator predictors, as shipped in hardware_profiles/, with Microsoft
Vidur's published operator and collective profiles; print markdown tables (docs/accuracy.md).

Usage: python benchmarks/accuracy_vidur.py VIDUR_CHECKOUT [ATTENTION_SAMPLES_CSV]

VIDUR_CHECKOUT is a clone of github.com/microsoft/vidur (docs/accuracy.md used commit 7d47513),
or any directory holding its data/profiling tree:
  - compute/{a100,h100,a40}/<org>/<model>/mlp.csv: median time (ms) of each linear and
    element-wise op of one transformer block, fp16, sharded per TP degree, 1..4096 tokens;
  - network/{a100_dgx,h100_dgx,a100_pairwise_nvlink}/all_reduce.csv: NCCL all-reduce kernel
    time (ms) by group size and message bytes.
ATTENTION_SAMPLES_CSV holds per-layer attention kernel times (A100) with columns source_repo,
source_commit, model, n_q_head, n_kv_head, head_dim, tp, backend, phase, batch_size,
prefill_chunk, kv_cache_size, median_ms, or is one of Vidur's own attention.csv files. Vidur's
attention.csv files are Git LFS objects: without the argument, the A100 ones in the checkout are
used when their content has been pulled; docs/accuracy.md used samples taken from a public fork
that committed two of them as text, each row naming its source repository and commit.

Every prediction comes from the planner's own functions with the shipped profiles: the GEMM
roofline (planner.perf.roofline.gemm), InstancePerf's layer, element-wise and attention models,
and planner.perf.comm.allreduce_time_s; nothing is refitted here. Vidur times GPU kernels only
(no CPU launch gaps, no CUDA graphs), so the like-for-like prediction uses a launch floor of 0
(graphed) and NCCL all-reduce (no custom all-reduce). Error = predicted / measured - 1.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner import catalog
from planner.engine import ENGINES, EngineProfile
from planner.hardware import GPU
from planner.model import ModelSpec
from planner.perf.comm import allreduce_time_s
from planner.perf.phases import InstancePerf
from planner.perf.roofline import gemm

MS = 1e-3
DTYPE = "fp16"  # Vidur profiles fp16
ACT_BYTES = 2.0

GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
GEMM_NAMES = {
    "attn_pre_proj": "QKV",
    "attn_post_proj": "O",
    "mlp_up_proj": "MLP up",
    "mlp_down_proj": "MLP down",
}
ELEMENTWISE_OPS = ("input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act", "add")
M_RANGES = ((1, 63), (64, 511), (512, 4096))
PREFILL_TOKENS = (512, 4096)
DECODE_TOKENS = (1, 256)
TP_DEGREES = (1, 2, 4, 8)

# Vidur's transformer depth per model (vidur/config/model_config.py); the per-layer results do not
# depend on it (token_time / num_layers), it only makes the ModelSpec complete.
LAYERS = {
    "Llama-2-7b-hf": 32,
    "Meta-Llama-3-8B": 32,
    "CodeLlama-34b-Instruct-hf": 48,
    "Llama-2-70b-hf": 80,
    "Meta-Llama-3-70B": 80,
    "Qwen-72B": 80,
    "internlm-20b": 60,
    "phi-2": 32,
    "Llama-2-7b": 32,
}

# Vidur network profile -> the shipped GPU profile whose intra-node link describes that topology
NETWORKS = {
    "a100_dgx": ("a100-80g-sxm", "8× A100 SXM, NVSwitch"),
    "h100_dgx": ("h100-sxm", "8× H100 SXM, NVSwitch"),
    "a100_pairwise_nvlink": ("a800-80g-pcie", "4× A100 PCIe, NVLink-bridged pairs"),
}
SIZE_RANGES = (
    (0, 64 * 1024, "< 64 KiB"),
    (64 * 1024, 1 << 20, "64 KiB – 1 MiB"),
    (1 << 20, 8 << 20, "1 – 8 MiB"),
    (8 << 20, (64 << 20) + 1, "8 – 64 MiB"),
    ((64 << 20) + 1, 1 << 40, "> 64 MiB"),
)


def a40_check_gpu() -> GPU:
    """A40 has no shipped profile: the l20 profile (whose GEMM, weight-streaming and fixed-time
    figures were borrowed from Vidur's A40 fit) with the A40's datasheet peak and bandwidth, to
    check the Ada/GDDR shape the L20 and L40S profiles borrow."""
    base = catalog.load_gpu("l20").model_dump()
    base.update(
        name="a40-check",
        description="l20 profile with the NVIDIA A40 datasheet's 149.7 TFLOPS and 696 GB/s",
        peak_tflops={"fp16": 149.7, "bf16": 149.7},
        memory_bandwidth_gb_s=696.0,
    )
    return GPU.model_validate(base)


def gpus() -> dict[str, tuple[GPU, str]]:
    """Vidur GPU directory -> (planner GPU, label)."""
    return {
        "a100": (catalog.load_gpu("a100-80g-sxm"), "A100 (a100-80g-sxm)"),
        "h100": (catalog.load_gpu("h100-sxm"), "H100 (h100-sxm)"),
        "a40": (a40_check_gpu(), "A40 (l20 shape, A40 peaks)"),
    }


def kernel_engine(custom_allreduce: bool = False) -> EngineProfile:
    """vLLM V1 with the CPU overheads set to 0 (Vidur times kernels only) and, by default, NCCL
    for every all-reduce (Vidur's collectives are NCCL)."""
    return ENGINES["vllm-v1"].model_copy(
        update={
            "custom_allreduce": custom_allreduce,
            "iteration_overhead_ms": 0.0,
            "per_sequence_overhead_us": 0.0,
        }
    )


# ---- statistics and tables ------------------------------------------------------------------
@dataclass(frozen=True)
class Err:
    """Relative errors predicted/measured - 1 of one group of rows."""

    values: np.ndarray

    @property
    def n(self) -> int:
        return int(self.values.size)

    def cells(self) -> list[str]:
        if self.n == 0:
            return ["–", "–", "–", "0"]
        a = np.abs(self.values)
        return [
            f"{np.median(a):.1%}",
            f"{np.percentile(a, 90):.1%}",
            f"{np.median(self.values):+.1%}",
            f"{self.n}",
        ]


STAT_HEAD = ["median \\|error\\|", "p90 \\|error\\|", "median bias", "count"]


def table(head: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def err(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return np.asarray(pred, dtype=float) / np.asarray(meas, dtype=float) - 1.0


# ---- Vidur operator profiles ----------------------------------------------------------------
@dataclass
class MlpProfile:
    """One mlp.csv: a model on one GPU at every (TP, tokens) point."""

    gpu: str
    model: ModelSpec
    tp: np.ndarray
    tokens: np.ndarray
    times: dict[str, np.ndarray]  # op -> median seconds


def model_spec(name: str, r: dict[str, str]) -> ModelSpec:
    h, nq = int(r["n_embd"]), int(r["n_head"])
    return ModelSpec(
        name=name,
        num_layers=LAYERS.get(name, 32),
        hidden_size=h,
        num_heads=nq,
        num_kv_heads=int(r["n_kv_head"]),
        head_dim=h // nq,
        intermediate_size=int(r["n_expanded_embd"]),
        vocab_size=int(r["vocab_size"]),
        mlp="gated" if r["use_gated_mlp"].lower() == "true" else "standard",
        dtype=DTYPE,
    )


def read_mlp(root: Path, gpu: str) -> list[MlpProfile]:
    out = []
    for path in sorted((root / "data/profiling/compute" / gpu).glob("*/*/mlp.csv")):
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        spec = model_spec(path.parent.name, rows[0])
        out.append(
            MlpProfile(
                gpu=gpu,
                model=spec,
                tp=np.array([int(r["num_tensor_parallel_workers"]) for r in rows]),
                tokens=np.array([float(r["num_tokens"]) for r in rows]),
                # phi-2 (parallel attention and MLP) has no post-attention norm: 0
                times={
                    op: np.array([float(r.get(f"time_stats.{op}.median", 0.0)) * MS for r in rows])
                    for op in GEMM_OPS + ELEMENTWISE_OPS
                },
            )
        )
    return out


def gemm_shapes(m: ModelSpec, tp: int) -> dict[str, tuple[float, float]]:
    """(K, N) per rank of each linear op, as InstancePerf._layer_linear shards them."""
    kv_rank = m.kv_heads_per_rank(tp)
    up = (2 if m.mlp == "gated" else 1) * m.intermediate_size / tp
    return {
        "attn_pre_proj": (m.hidden_size, m.q_dim / tp + 2 * kv_rank * m.head_dim),
        "attn_post_proj": (m.q_dim / tp, m.hidden_size),
        "mlp_up_proj": (m.hidden_size, up),
        "mlp_down_proj": (m.intermediate_size / tp, m.hidden_size),
    }


@dataclass
class OpRows:
    """Flat rows of one comparison: labels and (predicted, measured) seconds."""

    cols: dict[str, list]

    @classmethod
    def empty(cls, *names: str) -> OpRows:
        return cls({k: [] for k in (*names, "pred", "meas")})

    def add(self, pred: np.ndarray, meas: np.ndarray, **labels: object) -> None:
        n = np.size(meas)
        self.cols["pred"].extend(np.broadcast_to(pred, (n,)).tolist())
        self.cols["meas"].extend(np.broadcast_to(meas, (n,)).tolist())
        for k, v in labels.items():
            self.cols[k].extend(np.broadcast_to(np.asarray(v), (n,)).tolist())

    def arr(self, key: str) -> np.ndarray:
        return np.asarray(self.cols[key])

    def select(self, **conds: Callable[[np.ndarray], np.ndarray] | object) -> Err:
        keep = np.ones(len(self.cols["meas"]), dtype=bool)
        for k, c in conds.items():
            keep &= c(self.arr(k)) if callable(c) else self.arr(k) == c
        return Err(err(self.arr("pred")[keep], self.arr("meas")[keep]))


def in_range(lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: (x >= lo) & (x <= hi)


def half_open(lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: (x >= lo) & (x < hi)


def gemm_rows(profiles: list[MlpProfile], gpu: GPU) -> OpRows:
    rows = OpRows.empty("tp", "m", "op")
    for p in profiles:
        for tp in TP_DEGREES:
            sel = p.tp == tp
            if not sel.any():
                continue
            m = p.tokens[sel]
            for op, (k, n) in gemm_shapes(p.model, tp).items():
                pred = gemm(gpu, DTYPE, m, k, n, 2.0, ACT_BYTES, 0.0).total_s
                rows.add(pred, p.times[op][sel], tp=tp, m=m, op=op)
    return rows


def elementwise_rows(profiles: list[MlpProfile], gpu: GPU) -> OpRows:
    """The planner's element-wise kernels of a layer (its layer time without the four GEMMs and
    the all-reduces, graphed) against the sum of Vidur's five element-wise ops."""
    rows = OpRows.empty("tp", "m")
    for p in profiles:
        for tp in TP_DEGREES:
            sel = p.tp == tp
            if not sel.any():
                continue
            perf = InstancePerf(p.model, gpu, gpu.intra_node, tp, 1, kernel_engine())
            m = p.tokens[sel]
            layer, _ = perf._layer_linear(m, True)
            gemms = sum(
                perf._gemm(m, k, n, True).total_s for k, n in gemm_shapes(p.model, tp).values()
            )
            meas = sum(p.times[op][sel] for op in ELEMENTWISE_OPS)
            rows.add(layer.total_s - gemms, meas, tp=tp, m=m)
    return rows


# ---- collectives ------------------------------------------------------------------------------
@dataclass
class AllReduceProfile:
    """Vidur NCCL all-reduce kernel times of one topology: group -> (bytes, seconds) sorted."""

    network: str
    by_group: dict[int, tuple[np.ndarray, np.ndarray]]

    def time_s(self, group: int, message_bytes: np.ndarray) -> np.ndarray:
        """Measured time at `message_bytes`, interpolated linearly between profiled sizes."""
        size, t = self.by_group[group]
        return np.interp(message_bytes, size, t)


def read_allreduce(root: Path, network: str) -> AllReduceProfile:
    data: dict[int, list[tuple[float, float]]] = {}
    with (root / "data/profiling/network" / network / "all_reduce.csv").open() as fh:
        for r in csv.DictReader(fh):
            n = int(r["num_workers"])
            if int(r["devices_per_node"]) != n:
                continue  # groups spanning nodes: not an intra-node link
            data.setdefault(n, []).append(
                (float(r["size"]), float(r["time_stats.all_reduce.median"]) * MS)
            )
    by_group = {}
    for n, pts in data.items():
        a = np.array(sorted(pts))
        by_group[n] = (a[:, 0], a[:, 1])
    return AllReduceProfile(network, by_group)


def allreduce_rows(profile: AllReduceProfile, gpu: GPU) -> OpRows:
    rows = OpRows.empty("group", "size")
    for n, (size, t) in sorted(profile.by_group.items()):
        rows.add(allreduce_time_s(size, n, gpu.intra_node, None), t, group=n, size=size)
    return rows


# ---- attention -------------------------------------------------------------------------------
def attention_model(r: dict[str, str]) -> ModelSpec:
    nq, d = int(r["n_q_head"]), int(r["head_dim"])
    return ModelSpec(
        name=r["model"],
        num_layers=LAYERS.get(r["model"], 32),
        hidden_size=nq * d,
        num_heads=nq,
        num_kv_heads=int(r["n_kv_head"]),
        head_dim=d,
        intermediate_size=11008,  # not used by the attention kernels
        vocab_size=32000,
        dtype=DTYPE,
    )


def read_attention(path: Path) -> list[dict[str, str]]:
    """Attention rows from a samples CSV (one row per sample, with its source), or from one of
    Vidur's own attention.csv files (Git LFS: `git lfs pull` in the checkout), converted to the
    samples' columns."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "median_ms" in rows[0]:
        return rows
    out = []
    for r in rows:
        prefill = r["is_prefill"].lower() == "true"
        nq = int(r["n_q_head"])
        out.append(
            {
                "source_repo": "",
                "source_commit": "",
                "path": str(path),
                "model": path.parent.name,
                "n_q_head": r["n_q_head"],
                "n_kv_head": r["n_kv_head"],
                "head_dim": str(int(r["n_embd"]) // nq),
                "tp": r["num_tensor_parallel_workers"],
                "backend": r["attention_backend"].removeprefix("AttentionBackend."),
                "phase": "prefill" if prefill else "decode",
                "batch_size": r["batch_size"],
                "prefill_chunk": r["prefill_chunk_size"],
                "kv_cache_size": r["kv_cache_size"],
                "median_ms": r[f"time_stats.attn_{'prefill' if prefill else 'decode'}.median"],
            }
        )
    return out


def attention_files(root: Path) -> list[Path]:
    """Vidur's A100 attention profiles in the checkout, when their LFS content is present."""
    found = sorted((root / "data/profiling/compute/a100").glob("*/*/attention.csv"))
    return [p for p in found if not p.read_bytes()[:200].startswith(b"version https://git-lfs")]


def attention_pred_s(r: dict[str, str], gpu: GPU) -> float:
    perf = InstancePerf(attention_model(r), gpu, gpu.intra_node, int(r["tp"]), 1, kernel_engine())
    if r["phase"] == "decode":
        att = perf.decode_attention(float(r["batch_size"]), float(r["kv_cache_size"]), True)
    else:
        att = perf.chunk_attention(float(r["prefill_chunk"]), float(r["kv_cache_size"]))
    return float(att.total_s)


def attention_group(r: dict[str, str]) -> str:
    tp, heads = int(r["tp"]), int(r["n_kv_head"])
    kind = "MHA" if heads == int(r["n_q_head"]) else "GQA"
    what = f"{r['model']} ({kind}, {r['backend']}) TP{tp}"
    if r["phase"] == "decode":
        b = int(r["batch_size"])
        return f"decode, {what}, batch {'1–8' if b <= 8 else '9–128'}"
    whole = float(r["kv_cache_size"]) == 0
    return f"prefill, {what}, {'whole prompt' if whole else 'chunk after a cached prefix'}"


# ---- composed layer ----------------------------------------------------------------------------
LINK_NETWORK = {"a100": "a100_dgx", "h100": "h100_dgx"}


def planner_layer_s(
    model: ModelSpec,
    gpu: GPU,
    tp: int,
    tokens: np.ndarray,
    with_allreduce: bool,
    engine: EngineProfile,
    graphed: bool | np.ndarray,
) -> np.ndarray:
    """The planner's time of one layer without attention: token_time / num_layers (the engine's
    CPU overheads set to 0), or the layer's kernels alone when no measured all-reduce exists to
    compare with."""
    perf = InstancePerf(model, gpu, gpu.intra_node, tp, 1, engine)
    if with_allreduce:
        return perf.token_time(tokens, graphed).total_s / model.num_layers
    layer, _ = perf._layer_linear(tokens, graphed)
    return layer.total_s


def composed_rows(profiles: list[MlpProfile], gpu: GPU, network: AllReduceProfile | None) -> OpRows:
    """One transformer layer without attention: Vidur's four GEMMs + five element-wise ops + two
    all-reduces of tokens·hidden·2 bytes from its network profile, against the planner's layer
    time (token_time / num_layers) kernel-only with NCCL (`pred`), and as vLLM V1 would run it:
    custom all-reduce, CUDA graphs for decode-sized batches, eager otherwise (`served`)."""
    rows = OpRows.empty("tp", "m", "served", "eager", "pred_core", "meas_core")
    kernel, served_engine = kernel_engine(False), kernel_engine(True)
    for p in profiles:
        for tp in TP_DEGREES:
            sel = p.tp == tp
            if not sel.any():
                continue
            with_ar = tp > 1 and network is not None
            m = p.tokens[sel]
            meas = core = sum(p.times[op][sel] for op in GEMM_OPS + ELEMENTWISE_OPS)
            if with_ar:
                assert network is not None
                meas = meas + 2.0 * network.time_s(tp, m * p.model.hidden_size * ACT_BYTES)
            args = (p.model, gpu, tp, m, with_ar or tp == 1)
            pred = planner_layer_s(*args, kernel, True)
            served = planner_layer_s(*args, served_engine, m <= DECODE_TOKENS[1])
            eager = planner_layer_s(*args, kernel, False)
            pred_core = planner_layer_s(p.model, gpu, tp, m, False, kernel, True)
            rows.add(
                pred,
                meas,
                tp=tp,
                m=m,
                served=served,
                eager=eager,
                pred_core=pred_core,
                meas_core=core,
            )
    return rows


def composed_attention_rows(
    profiles: list[MlpProfile], samples: list[dict[str, str]], gpu: GPU, net: AllReduceProfile
) -> OpRows:
    """A100 layers with attention: for each attention sample whose token count (prompt chunk
    without prefix, or decode batch) is on Vidur's mlp grid of the same model, the measured
    layer (mlp ops + attention + all-reduces) against the planner's."""
    by_model = {p.model.name: p for p in profiles}
    rows = OpRows.empty("regime", "tp", "m")
    kernel = kernel_engine(False)
    for r in samples:
        name = {"Llama-2-7b": "Llama-2-7b-hf"}.get(r["model"], r["model"])
        prof = by_model.get(name)
        tp = int(r["tp"])
        decode = r["phase"] == "decode"
        if prof is None or (not decode and float(r["kv_cache_size"]) > 0):
            continue
        tokens = float(r["batch_size"] if decode else r["prefill_chunk"])
        hit = np.flatnonzero((prof.tp == tp) & (prof.tokens == tokens))
        if hit.size == 0:
            continue
        i = hit[0]
        meas = sum(prof.times[op][i] for op in GEMM_OPS + ELEMENTWISE_OPS)
        meas += float(r["median_ms"]) * MS
        if tp > 1:
            meas += 2.0 * float(net.time_s(tp, np.array([tokens * prof.model.hidden_size * 2]))[0])
        perf = InstancePerf(prof.model, gpu, gpu.intra_node, tp, 1, kernel)
        pred = float(perf.token_time(tokens, True).total_s) / prof.model.num_layers
        pred += attention_pred_s(r, gpu)
        rows.add(np.array([pred]), np.array([meas]), regime=r["phase"], tp=tp, m=tokens)
    return rows


# ---- report ------------------------------------------------------------------------------------
@dataclass
class Report:
    """Sections of markdown plus one summary row per comparison."""

    summary: list[list[str]]
    sections: list[str]

    def section(self, title: str, body: str) -> None:
        self.sections.append(f"### {title}\n\n{body}")

    def headline(self, what: str, fitted: str, e: Err) -> None:
        self.summary.append([what, fitted, *e.cells()])

    def render(self) -> str:
        head = table(["comparison", "parameters fitted to these data?", *STAT_HEAD], self.summary)
        return "\n\n".join([f"### Summary\n\n{head}", *self.sections]) + "\n"


def gemm_section(rep: Report, gpu_map: dict[str, tuple[GPU, str]], profiles: dict) -> None:
    all_gemm = {g: gemm_rows(profiles[g], gpu) for g, (gpu, _) in gpu_map.items()}
    out = []
    for g, (_, label) in gpu_map.items():
        rows = all_gemm[g]
        fitted = "yes (A40 fit, carried by the l20 profile)" if g == "a40" else "yes"
        rep.headline(f"GEMM, {label}", fitted, rows.select())
        out.append([f"**{label}**", "all", "all", *rows.select().cells()])
        for tp in TP_DEGREES:
            for lo, hi in M_RANGES:
                e = rows.select(tp=tp, m=in_range(lo, hi))
                if e.n:
                    out.append([label, f"{tp}", f"{lo}–{hi}", *e.cells()])
    body = table(["GPU (profile)", "TP", "M (tokens)", *STAT_HEAD], out)
    out = []
    for g, (_, label) in gpu_map.items():
        for op in GEMM_OPS:
            for lo, hi in M_RANGES:
                e = all_gemm[g].select(op=op, m=in_range(lo, hi))
                out.append([label, GEMM_NAMES[op], f"{lo}–{hi}", *e.cells()])
    body += "\n\nBy operator, all TP degrees:\n\n"
    body += table(["GPU (profile)", "op", "M (tokens)", *STAT_HEAD], out)
    rep.section("GEMM: Vidur's four linear ops vs `planner.perf.roofline.gemm`", body)


def elementwise_section(rep: Report, gpu_map: dict[str, tuple[GPU, str]], profiles: dict) -> None:
    out = []
    for g, (gpu, label) in gpu_map.items():
        rows = elementwise_rows(profiles[g], gpu)
        rep.headline(f"element-wise, {label}", "no", rows.select())
        out.append([f"**{label}**", "all", *rows.select().cells()])
        for lo, hi in M_RANGES:
            out.append([label, f"{lo}–{hi}", *rows.select(m=in_range(lo, hi)).cells()])
    rep.section(
        "Element-wise ops: Vidur's norms + rope + act + add vs the planner's four kernels",
        table(["GPU (profile)", "M (tokens)", *STAT_HEAD], out),
    )


def attention_section(rep: Report, samples: list[dict[str, str]], gpu: GPU) -> None:
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for r in samples:
        pm = groups.setdefault(attention_group(r), ([], []))
        pm[0].append(attention_pred_s(r, gpu))
        pm[1].append(float(r["median_ms"]) * MS)
    out = []
    for phase in ("decode", "prefill"):
        pred = [x for k, (p, _) in groups.items() if k.startswith(phase) for x in p]
        meas = [x for k, (_, m) in groups.items() if k.startswith(phase) for x in m]
        e = Err(err(np.array(pred), np.array(meas)))
        rep.headline(f"{phase} attention, A100 (a100-80g-sxm)", "yes", e)
        out.append([f"**{phase}, all**", *e.cells()])
        for k, (p, m) in groups.items():
            if k.startswith(phase):
                out.append([k, *Err(err(np.array(p), np.array(m))).cells()])
    srcs = sorted(
        {
            f"{r['source_repo']} @ {r['source_commit'][:7]}" if r["source_repo"] else r["path"]
            for r in samples
        }
    )
    body = table(["samples", *STAT_HEAD], out)
    body += f"\n\nSamples: {len(samples)} rows from {', '.join(srcs)}."
    rep.section(
        "Attention (A100, per layer) vs `InstancePerf.decode_attention` / `chunk_attention`", body
    )


def allreduce_section(rep: Report, nets: dict[str, AllReduceProfile]) -> None:
    out = []
    for name, (prof_name, label) in NETWORKS.items():
        gpu = catalog.load_gpu(prof_name)
        rows = allreduce_rows(nets[name], gpu)
        rep.headline(f"all-reduce, {name} ({prof_name})", "bus bandwidth only", rows.select())
        for n in sorted(nets[name].by_group):
            for lo, hi, rlabel in SIZE_RANGES:
                e = rows.select(group=n, size=half_open(lo, hi))
                if e.n:
                    out.append([f"{name}: {label} ({prof_name})", f"{n}", rlabel, *e.cells()])
    rep.section(
        "All-reduce: Vidur's NCCL kernel times vs `planner.perf.comm.allreduce_time_s`",
        table(["Vidur topology (planner link)", "GPUs", "message", *STAT_HEAD], out),
    )


def composed_section(
    rep: Report,
    gpu_map: dict[str, tuple[GPU, str]],
    profiles: dict,
    nets: dict[str, AllReduceProfile],
) -> None:
    out, notes = [], []
    for g, (gpu, label) in gpu_map.items():
        net = nets[LINK_NETWORK[g]] if g in LINK_NETWORK else None
        rows = composed_rows(profiles[g], gpu, net)
        rep.headline(f"layer without attention, {label}", "partly", rows.select())
        for tp in TP_DEGREES:
            for regime, (lo, hi) in (
                ("decode-like", DECODE_TOKENS),
                ("prefill-like", PREFILL_TOKENS),
            ):
                e = rows.select(tp=tp, m=in_range(lo, hi))
                if not e.n:
                    continue
                keep = (rows.arr("tp") == tp) & in_range(lo, hi)(rows.arr("m"))
                meas = rows.arr("meas")[keep]
                served = err(rows.arr("served")[keep], meas)
                core = err(rows.arr("pred_core")[keep], rows.arr("meas_core")[keep])
                share = 1.0 - rows.arr("meas_core")[keep] / meas
                ar = "none" if tp == 1 else ("Vidur " + LINK_NETWORK[g] if net else "left out")
                out.append(
                    [
                        label,
                        f"{tp}",
                        f"{regime} ({lo}–{hi})",
                        ar,
                        *e.cells(),
                        f"{np.median(core):+.1%}",
                        f"{np.median(share):.0%}" if tp > 1 and net else "–",
                        f"{np.median(served):+.1%}",
                    ]
                )
        gap = np.max(np.abs(rows.arr("eager") / rows.arr("pred") - 1.0))
        notes.append(f"{label} {gap:.2%}")
    head = [
        "GPU (profile)",
        "TP",
        "tokens",
        "all-reduce measured",
        *STAT_HEAD,
        "bias without all-reduce",
        "all-reduce share",
        "bias as served",
    ]
    body = table(head, out)
    body += (
        "\n\nLargest difference between the planner's eager and graphed layer times over these "
        "rows: " + "; ".join(notes) + "."
    )
    rep.section("One transformer layer without attention (kernel time, NCCL)", body)


def composed_attention_section(
    rep: Report,
    profiles: list[MlpProfile],
    samples: list[dict[str, str]],
    gpu: GPU,
    net: AllReduceProfile,
) -> None:
    rows = composed_attention_rows(profiles, samples, gpu, net)
    rep.headline("layer with attention, A100 (a100-80g-sxm)", "partly", rows.select())
    out = []
    for regime in ("decode", "prefill"):
        for tp in (1, 2):
            e = rows.select(regime=regime, tp=tp)
            if e.n:
                ms = rows.arr("m")[(rows.arr("regime") == regime) & (rows.arr("tp") == tp)]
                out.append([regime, f"{tp}", f"{ms.min():.0f}–{ms.max():.0f}", *e.cells()])
    rep.section(
        "One A100 transformer layer with attention (kernel time, NCCL)",
        table(["phase", "TP", "tokens", *STAT_HEAD], out),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("vidur", type=Path, help="Vidur checkout (holds data/profiling)")
    ap.add_argument("attention", type=Path, nargs="?", help="A100 attention samples CSV")
    args = ap.parse_args()

    gpu_map = gpus()
    profiles = {g: read_mlp(args.vidur, g) for g in gpu_map}
    nets = {n: read_allreduce(args.vidur, n) for n in NETWORKS}
    files = [args.attention] if args.attention is not None else attention_files(args.vidur)
    samples = [r for f in files for r in read_attention(f)]
    a100 = gpu_map["a100"][0]

    rep = Report([], [])
    gemm_section(rep, gpu_map, profiles)
    elementwise_section(rep, gpu_map, profiles)
    if samples:
        attention_section(rep, samples, a100)
    allreduce_section(rep, nets)
    composed_section(rep, gpu_map, profiles, nets)
    if samples:
        composed_attention_section(rep, profiles["a100"], samples, a100, nets["a100_dgx"])
    print(rep.render(), end="")


if __name__ == "__main__":
    main()

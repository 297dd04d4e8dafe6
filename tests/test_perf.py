"""Roofline performance model: formulas by hand, monotonicity, memory feasibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner import catalog
from planner.engine import load_engine
from planner.hardware import GPU
from planner.model import ModelSpec
from planner.perf import InstancePerf, plan_memory
from planner.perf.comm import allreduce_time_s, p2p_time_s
from planner.perf.roofline import gemm
from planner.units import GIB


def test_allreduce_has_one_latency_term(l20: GPU) -> None:
    # α + 2(t−1)/t · M / busbw: L20 profile, 4 GPUs: busbw 21.7 GB/s, NCCL latency 31 µs
    t = allreduce_time_s(1e6, 4, l20.intra_node)
    assert float(t) == pytest.approx(31e-6 + 1.5e6 / 21.7e9)
    assert float(allreduce_time_s(1e6, 1, l20.intra_node)) == 0.0
    # one latency per collective: a tiny message costs α, not 2(t−1)·α
    assert float(allreduce_time_s(16.0, 8, l20.intra_node)) == pytest.approx(50e-6, rel=1e-3)


def test_custom_allreduce_where_the_engine_and_link_allow_it(l20: GPU) -> None:
    h100 = catalog.load_gpu("h100-sxm")
    v1 = load_engine("vllm-v1")
    nccl = v1.model_copy(update={"custom_allreduce": False})
    small, big = 64e3, 16 * 2**20  # custom all-reduce only below 8 MiB
    link = h100.intra_node
    assert float(allreduce_time_s(small, 8, link, v1)) == pytest.approx(9e-6 + 1.75 * small / 361e9)
    assert float(allreduce_time_s(small, 8, link, nccl)) == pytest.approx(
        29e-6 + 1.75 * small / 361e9
    )
    assert float(allreduce_time_s(big, 8, link, v1)) == float(allreduce_time_s(big, 8, link, nccl))
    # PCIe: only a P2P pair, never 4 GPUs
    pcie = l20.intra_node
    assert float(allreduce_time_s(small, 2, pcie, v1)) < float(allreduce_time_s(small, 2, pcie))
    assert float(allreduce_time_s(small, 4, pcie, v1)) == float(allreduce_time_s(small, 4, pcie))


def test_p2p_formula(l20: GPU) -> None:
    assert float(p2p_time_s(22e6, l20.intra_node)) == pytest.approx(1e-3 + 15e-6)  # 22 GB/s


def test_gemv_is_memory_bound_by_hand(l20: GPU) -> None:
    # one token through an 8192×8192 bf16 matrix: bytes = 8192²·2 + 1·(8192+8192)·2 at 77% of
    # 864 GB/s, plus the kernel's fixed 7 µs; graphed (no launch floor)
    t = gemm(l20, "bf16", np.array(1.0), 8192, 8192, 2, 2, 0.0)
    bytes_ = 8192 * 8192 * 2 + 16384 * 2
    assert float(t.memory_s) == pytest.approx(bytes_ / (864e9 * 0.77))
    assert float(t.compute_s) == 0.0
    assert float(t.launch_s) == pytest.approx(7e-6)


def test_eager_launch_floor_binds_only_tiny_kernels(l20: GPU) -> None:
    tiny = gemm(l20, "bf16", np.array(1.0), 64, 64, 2, 2, 20e-6)
    assert float(tiny.total_s) == pytest.approx(20e-6)  # the CPU cannot launch it faster
    big = gemm(l20, "bf16", np.array(1.0), 8192, 8192, 2, 2, 20e-6)
    graphed = gemm(l20, "bf16", np.array(1.0), 8192, 8192, 2, 2, 0.0)
    assert float(big.total_s) == float(graphed.total_s)


def test_big_gemm_is_compute_bound_at_curve_efficiency(l20: GPU) -> None:
    t = gemm(l20, "bf16", np.array(4096.0), 4096, 4096, 2, 2, 0.0)
    eff = 0.79 * 4096 / (4096 + 117)
    assert float(t.compute_s) == pytest.approx(2 * 4096**3 / (119.5e12 * eff))
    assert float(t.memory_s) == 0.0


def test_gemm_efficiency_is_a_saturating_curve_in_tokens(l20: GPU) -> None:
    # plateau·M/(M + knee): half the plateau at the knee, the plateau at large M
    assert float(l20.gemm_efficiency(117)) == pytest.approx(0.79 / 2)
    assert float(l20.gemm_efficiency(1e9)) == pytest.approx(0.79, rel=1e-6)
    effs = l20.gemm_efficiency(np.array([1, 16, 128, 1024, 8192]))
    assert np.all(np.diff(effs) > 0)


def test_attention_has_its_own_efficiency(l20: GPU, codellama: ModelSpec) -> None:
    """Prefill attention: 2·L²·q_dim/tp FLOPs at the attention curve for L keys, not the GEMM's;
    one eager kernel (fixed 7 µs, at least a 5 µs launch)."""
    p = InstancePerf(codellama, l20, l20.intra_node, tp=4)
    t = p.chunk_attention(2048.0)
    eff = 0.37 * 2048 / (2048 + 1900)
    assert float(t.compute_s) == pytest.approx(2 * 2048**2 * 8192 / 4 / (119.5e12 * eff))
    assert float(t.launch_s) == pytest.approx(7e-6)


def test_decode_attention_reads_kv_plus_fixed_costs(l20: GPU, codellama: ModelSpec) -> None:
    p = InstancePerf(codellama, l20, l20.intra_node, tp=4)
    t = p.decode_attention(8.0, 1000.0)
    kv = 8 * 1000 * 2 * 2 * 128 * 2  # 2 KV heads per rank at TP4, K and V, bf16
    assert float(t.memory_s) == pytest.approx(kv / (864e9 * 0.77))
    assert float(t.launch_s) == pytest.approx(7e-6 + 8 * 2 * 0.02e-6)


@pytest.fixture
def perf(l20: GPU, codellama: ModelSpec) -> InstancePerf:
    return InstancePerf(codellama, l20, l20.intra_node, tp=4)


def test_decode_grows_with_batch_and_context(perf: InstancePerf) -> None:
    batches = np.array([1, 8, 32, 128, 256])
    t = perf.decode_step(batches, 1024).total_s
    assert np.all(np.diff(t) > 0)
    ctx = np.array([128, 512, 2048, 8192])
    t2 = perf.decode_step(32, ctx).total_s
    assert np.all(np.diff(t2) > 0)


def test_prefill_grows_with_prompt(perf: InstancePerf) -> None:
    lengths = np.array([16, 128, 512, 2048, 8192])
    t = perf.prefill(lengths).total_s
    assert np.all(np.diff(t) > 0)
    # long prompts are superlinear (attention is quadratic)
    assert t[-1] / t[-2] > 8192 / 2048 * 0.99


def test_decode_batch1_dominated_by_weight_reads(perf: InstancePerf, codellama: ModelSpec) -> None:
    t = perf.decode_step(1, 16)
    weights_per_gpu = codellama.weight_bytes / 4
    floor = weights_per_gpu / (864e9 * 0.77)
    assert float(t.total_s) > floor
    assert float(t.memory_s) == pytest.approx(floor, rel=0.05)
    assert t.bound() == "memory"


def test_decode_runs_under_cuda_graphs_prefill_eagerly(l20: GPU, codellama: ModelSpec) -> None:
    """Decode replays CUDA graphs (no launch floor) up to the engine's capture size; eager
    decode (--enforce-eager) is never faster; overheads are counted once per iteration."""
    v1 = load_engine("vllm-v1")
    graphed = InstancePerf(codellama, l20, l20.intra_node, tp=4, engine=v1)
    eager = InstancePerf(
        codellama,
        l20,
        l20.intra_node,
        tp=4,
        engine=v1.model_copy(update={"cuda_graph_decode": False}),
    )
    assert bool(graphed.decode_graphed(512)) and not bool(graphed.decode_graphed(513))
    assert float(eager.decode_step(1, 100).total_s) >= float(graphed.decode_step(1, 100).total_s)
    # the engine's iteration overhead appears once: 0.5 ms + 2 µs per sampled sequence
    o = graphed.decode_step(1, 100).overhead_s
    fixed_kernels = float(o) - 0.5e-3 - 2e-6
    assert 0 < fixed_kernels < 48 * 12 * 10e-6


def test_decode_flops_match_model_flops(perf: InstancePerf, codellama: ModelSpec) -> None:
    # compute part of a large-batch hybrid step ≈ flops_per_token / tp / (peak·eff)
    t = perf.prefill(4096)
    flops = 4096 * 2 * codellama.active_param_count / 4
    assert float(t.compute_s) > flops / 119.5e12


def test_pipeline_parallel_splits_layers(l20: GPU) -> None:
    m = catalog.load_model("llama-2-70b")
    pp2 = InstancePerf(m, l20, l20.intra_node, tp=4, pp=2)
    assert pp2.layers_per_stage == 40
    # decode batch is split into pp micro-batches: batch 2 on pp=2 runs micro-batches of 1
    one = InstancePerf(m, l20, l20.intra_node, tp=4, pp=1)
    assert float(pp2.decode_step(2, 100).total_s) < float(one.decode_step(2, 100).total_s) + 0.01


def test_memory_plan_by_hand(l20: GPU, codellama: ModelSpec) -> None:
    mem = plan_memory(codellama, l20, 4, 1)
    # pp = 1: the embedding and the (untied) LM head both sit on every TP rank's stage
    weights = (48 * codellama.layer_params + 2 * 32000 * 8192) * 2 / 4
    assert mem.weights_bytes == pytest.approx(weights)
    assert mem.kv_bytes_per_token_per_gpu == 48 * 2 * 2 * 128 * 2
    kv = 44.5 * GIB * 0.9 - weights - mem.activation_bytes - 1.5 * GIB  # l20: 44.5 GiB
    assert mem.kv_capacity_tokens == math.floor(kv / mem.kv_bytes_per_token_per_gpu)
    assert mem.fits and mem.reason is None


def test_weights_that_do_not_fit_are_rejected_with_reason(l20: GPU) -> None:
    mem = plan_memory(catalog.load_model("qwen2-72b"), l20, 1, 1)
    assert not mem.fits
    assert mem.reason is not None and "GiB" in mem.reason


def test_tp_not_dividing_heads_is_rejected(l20: GPU, codellama: ModelSpec) -> None:
    mem = plan_memory(codellama, l20, 3, 1)
    assert not mem.fits
    assert "does not divide num_heads" in (mem.reason or "")


def test_kv_too_small_for_context_is_rejected(l20: GPU) -> None:
    m = catalog.load_model("llama-30b")
    mem = plan_memory(m, l20, 2, 1, min_kv_tokens=10**6)
    assert not mem.fits and "KV room" in (mem.reason or "")


def test_moe_decode_touches_fewer_expert_weights_at_batch_one(l20: GPU) -> None:
    m = catalog.load_model("mixtral-8x7b")
    p = InstancePerf(m, l20, l20.intra_node, tp=4)
    t1 = float(p.decode_step(1, 100).memory_s)
    t64 = float(p.decode_step(64, 100).memory_s)
    assert t64 > 2 * t1  # batch 64 touches all 8 experts, batch 1 only 2


@pytest.mark.parametrize("pp", [1, 2])
def test_hybrid_step_is_continuous_with_decode_step(l20: GPU, pp: int) -> None:
    """A hybrid step with a vanishing chunk costs a decode step plus an eager launch and the
    chunk kernel per layer, for every pp: hybrid iterations pipeline their micro-batches like
    decode steps do."""
    m = catalog.load_model("llama-30b")
    perf = InstancePerf(m, l20, l20.intra_node, tp=2, pp=pp)
    for b in (16, 150):
        decode = float(perf.decode_step(b, 500).total_s)
        hybrid = float(perf.hybrid_step(b, 500, 1, 0).total_s)
        assert decode < hybrid < decode + 0.005  # eager, one token, one more kernel per layer


def test_measured_gemm_table_replaces_the_curve(l20: GPU) -> None:
    """A profile may carry measured efficiencies; they are interpolated log-linearly in M."""
    table = [(16.0, 0.1), (256.0, 0.5), (4096.0, 0.8)]
    g = l20.model_copy(update={"gemm": l20.gemm.model_copy(update={"measured": table})})
    assert float(g.gemm_efficiency(64.0)) == pytest.approx(0.3)  # halfway in log between 16, 256
    assert float(g.gemm_efficiency(1.0)) == 0.1 and float(g.gemm_efficiency(1e6)) == 0.8


def test_piecewise_cuda_graphs_cover_small_mixed_iterations(l20: GPU, codellama: ModelSpec) -> None:
    """vLLM V1 replays piecewise CUDA graphs (all but attention) for iterations of up to its
    capture size that hold prompts; V0 captures decode only."""
    v1 = InstancePerf(codellama, l20, l20.intra_node, tp=4, engine=load_engine("vllm-v1"))
    v0 = InstancePerf(codellama, l20, l20.intra_node, tp=4, engine=load_engine("vllm-v0"))
    assert bool(v1.piecewise_graphed(512)) and not bool(v1.piecewise_graphed(513))
    assert not bool(v0.piecewise_graphed(16))
    # a short prompt: the graphed V1 forward is no slower than the same work launched eagerly
    eager = v1.token_time(16.0, False).total_s
    assert float(v1.prefill(16).total_s) <= float(
        eager + v1.chunk_attention(16.0).total_s * 48 + v1.head_time(1.0).total_s
    )

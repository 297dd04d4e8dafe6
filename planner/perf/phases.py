"""Phase latencies of one serving instance (TP × PP GPUs): prefill, decode step, hybrid step
(docs/model.md §2.3–§2.7).

A phase is a list of operations derived from the model and the parallelism — per layer on one TP
rank: the QKV, output-projection and MLP GEMMs (MoE: the active experts), the norms and
element-wise kernels, an attention kernel, two TP all-reduces; then the LM head; the p2p sends
between pipeline stages — each timed by the GPU profile's predictor for its kind
(roofline.py, comm.py), plus the serving engine's per-iteration CPU overhead (engine.py). Decode
iterations run under CUDA graphs when the engine captures them (no launch cost); prefill and
hybrid iterations run eagerly (each kernel at least a CPU launch long).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from planner.engine import DEFAULT_ENGINE, ENGINES, EngineProfile
from planner.hardware import GPU, IntraNodeLink, Network
from planner.model import ModelSpec
from planner.perf.comm import allreduce_time_s, network_p2p_time_s, p2p_time_s
from planner.perf.roofline import OpTime, gemm, launch_floor_s, roofline

RESOURCES = ("compute", "memory", "communication", "overhead")
Graphed = bool | np.ndarray


@dataclass(frozen=True)
class PhaseTime:
    """Wall time of one iteration, split by the resource that bounds each part."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    overhead_s: np.ndarray

    @property
    def total_s(self) -> np.ndarray:
        return self.compute_s + self.memory_s + self.comm_s + self.overhead_s

    def bound(self) -> str:
        """The resource with the largest share (scalar phases only)."""
        parts = [
            float(np.sum(x)) for x in (self.compute_s, self.memory_s, self.comm_s, self.overhead_s)
        ]
        return RESOURCES[int(np.argmax(parts))]


def _launch(gpu: GPU, graphed: Graphed) -> float | np.ndarray:
    """The launch floor per kernel: none under CUDA graphs, the CPU launch cost eagerly."""
    if isinstance(graphed, np.ndarray):
        return np.where(graphed, launch_floor_s(gpu, True), launch_floor_s(gpu, False))
    return launch_floor_s(gpu, graphed)


@dataclass(frozen=True)
class InstancePerf:
    """Timing of one instance of `model` on `tp × pp` GPUs of type `gpu` under `engine`.

    An instance larger than a node has `cross_node_boundaries` of its pp − 1 stage boundaries
    between nodes (`deployment.cross_node_boundaries`), whose sends go over `network`
    (docs/model.md §2.7); the others go over the intra-node `link`."""

    model: ModelSpec
    gpu: GPU
    link: IntraNodeLink
    tp: int = 1
    pp: int = 1
    engine: EngineProfile = field(default_factory=lambda: ENGINES[DEFAULT_ENGINE])
    network: Network | None = None
    cross_node_boundaries: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.cross_node_boundaries <= max(self.pp - 1, 0):
            raise ValueError(
                f"cross_node_boundaries must be in 0..pp−1 = {self.pp - 1}, "
                f"got {self.cross_node_boundaries}"
            )
        if self.cross_node_boundaries and self.network is None:
            raise ValueError("stage boundaries across nodes need the cluster's network")

    # ---- static shapes ---------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """The dtype whose peak the kernels run at (`ModelSpec.compute_dtype`)."""
        return self.model.compute_dtype

    @property
    def layers_per_stage(self) -> int:
        return math.ceil(self.model.num_layers / self.pp)

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @cached_property
    def kv_heads_rank(self) -> int:
        return self.model.kv_heads_per_rank(self.tp)

    @property
    def kv_bytes_per_token_per_layer_rank(self) -> float:
        """KV bytes one TP rank stores per token per layer (MLA: the whole latent)."""
        m = self.model
        if m.is_mla:
            return m.kv_bytes_per_token_per_layer
        return 2.0 * self.kv_heads_rank * m.head_dim * m.kv_dtype_bytes

    @property
    def iteration_overhead_s(self) -> float:
        """The engine's CPU time per iteration, or the GPU profile's measured value."""
        g = self.gpu.iteration_overhead_ms
        return self.engine.iteration_overhead_s if g is None else g * 1e-3

    def piecewise_graphed(self, tokens: np.ndarray | float) -> np.ndarray:
        """Whether an iteration holding prompts, of `tokens` tokens, replays (piecewise) CUDA
        graphs for everything but attention (vLLM V1, up to its capture size)."""
        e = self.engine
        ok = e.cuda_graph_decode and e.piecewise_cuda_graphs
        return np.asarray(ok & (np.asarray(tokens) <= e.cuda_graph_max_batch))

    def decode_graphed(self, micro_batch: np.ndarray | float) -> np.ndarray:
        """Whether a decode iteration of this micro-batch replays a CUDA graph."""
        e = self.engine
        return np.asarray(e.cuda_graph_decode & (np.asarray(micro_batch) <= e.cuda_graph_max_batch))

    # ---- operations --------------------------------------------------------------------------
    def _gemm(
        self, tokens: np.ndarray, k: float, n: float, graphed: Graphed, sixteen_bit: bool = False
    ) -> OpTime:
        """A GEMM of the layers' weight dtype, or (`sixteen_bit`) of a weight left 16-bit by
        quantisation (LM head)."""
        m = self.model
        wb, ab = m.weight_dtype_bytes, m.activation_dtype_bytes
        dtype = self.dtype
        if sixteen_bit and m.is_quantised:
            wb, dtype = m.other_dtype_bytes, "bf16"
        return gemm(self.gpu, dtype, tokens, k, n, wb, ab, _launch(self.gpu, graphed))

    def _mla_projections(self, tokens: np.ndarray, graphed: Graphed) -> OpTime:
        """MLA's GEMMs on one rank (vLLM's layout, docs/model.md §1.7): the fused query and
        latent-KV down-projection h → q_lora + kv_lora + rope, replicated on every rank; the
        query up-projection q_lora → H·(nope+rope)/t (or h → H·(nope+rope)/t uncompressed); the
        latent up-projection kv_lora → H·(nope + v)/t (absorbed into the query and output in
        decode, same weights and FLOPs per token); the output H·v/t → h."""
        m, tp, h = self.model, self.tp, self.model.hidden_size
        kv_lora, heads = m.kv_lora_rank or 0, m.num_heads
        q_lora = m.q_lora_rank or 0
        t = self._gemm(tokens, h, q_lora + m.mla_latent_dim, graphed)
        t = t + self._gemm(tokens, q_lora or h, m.q_dim / tp, graphed)
        kv_up = heads * ((m.qk_nope_head_dim or 0) + (m.v_head_dim or 0)) / tp
        t = t + self._gemm(tokens, kv_lora, kv_up, graphed)
        return t + self._gemm(tokens, m.attn_out_dim / tp, h, graphed)

    def _moe_mlp(self, t: OpTime | None, tokens: np.ndarray, graphed: Graphed) -> OpTime:
        """`t` plus one MoE layer's MLP on one rank: the touched routed experts (two fused
        kernels), the shared experts (every token, as one fused MLP) and the router."""
        m, tp = self.model, self.tp
        up_factor = 2 if m.mlp == "gated" else 1
        # Tokens spread over experts: each expert sees tokens·k/E rows; the expected number
        # of distinct experts touched by `tokens` tokens is E·(1 − (1 − k/E)^tokens).
        e, k = m.num_experts, m.experts_per_token
        inter = m.expert_intermediate_size
        rows = tokens * k / e
        active = e * (1.0 - (1.0 - k / e) ** np.asarray(tokens, dtype=float))
        expert = self._gemm(rows, m.hidden_size, up_factor * inter / tp, graphed)
        expert = expert + self._gemm(rows, inter / tp, m.hidden_size, graphed)
        # vLLM runs all routed experts in two fused kernels (up and down): the touched experts'
        # weight reads and FLOPs add up, the kernels' fixed time is paid twice, not per expert
        routed = OpTime(expert.compute_s * active, expert.memory_s * active, expert.launch_s)
        t = routed if t is None else t + routed
        if m.num_shared_experts:
            shared = m.shared_intermediate_size
            t = t + self._gemm(tokens, m.hidden_size, up_factor * shared / tp, graphed)
            t = t + self._gemm(tokens, shared / tp, m.hidden_size, graphed)
        return t + self._gemm(tokens, m.hidden_size, e, graphed)  # router

    def _dense_mlp(self, t: OpTime | None, tokens: np.ndarray, graphed: Graphed) -> OpTime:
        """`t` plus a dense MLP of intermediate_size on one rank."""
        m, tp = self.model, self.tp
        up = (2 if m.mlp == "gated" else 1) * m.intermediate_size / tp
        d = self._gemm(tokens, m.hidden_size, up, graphed)
        t = d if t is None else t + d
        return t + self._gemm(tokens, m.intermediate_size / tp, m.hidden_size, graphed)

    def _layer_linear(self, tokens: np.ndarray, graphed: Graphed) -> tuple[OpTime, np.ndarray]:
        """One transformer layer on one TP rank without its attention kernel: the GEMMs, the
        streaming element-wise kernels and the two TP all-reduces (returned apart). Depends only
        on the number of tokens in the iteration."""
        m, g, tp = self.model, self.gpu, self.tp
        ab = m.activation_dtype_bytes
        if m.is_mla:
            t = self._mla_projections(tokens, graphed)
        else:
            qkv_out = m.q_dim / tp + 2 * self.kv_heads_rank * m.head_dim
            t = self._gemm(tokens, m.hidden_size, qkv_out, graphed)
            t = t + self._gemm(tokens, m.q_dim / tp, m.hidden_size, graphed)
        moe_layers = m.moe_layers
        if moe_layers == m.num_layers:
            t = self._moe_mlp(t, tokens, graphed)
        elif moe_layers == 0:
            t = self._dense_mlp(t, tokens, graphed)
        else:
            # the mean layer: MoE and dense MLPs weighted by their layer counts (DeepSeek's
            # first_k_dense_replace, Qwen's mlp_only_layers)
            share = moe_layers / m.num_layers
            t = t + self._moe_mlp(None, tokens, graphed).scale(share)
            t = t + self._dense_mlp(None, tokens, graphed).scale(1.0 - share)
        # Element-wise kernels, memory bound: two fused residual-add + RMSNorm (each reads the
        # residual and the input and writes both: 4h), rotary embedding (reads and writes Q and
        # K on the rank) and the gated activation (reads 2I/t, writes I/t): 4 kernels.
        inter_rank = m.active_intermediate / tp
        if m.is_mla:  # Q on the rank and the latent (norm, rotary)
            qk_rank = m.q_dim / tp + m.mla_latent_dim
        else:
            qk_rank = m.q_dim / tp + self.kv_heads_rank * m.head_dim
        per_token = 8 * m.hidden_size + 2 * qk_rank + 3 * inter_rank
        elem_bytes = np.asarray(tokens, dtype=float) * per_token * ab
        t = t + roofline(
            0.0,
            elem_bytes,
            g.peak_flops(self.dtype),
            1.0,
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["weights"],
            g.kernel_fixed_s,
            _launch(g, graphed),
            n_kernels=4,
        )
        message = np.asarray(tokens, dtype=float) * m.hidden_size * ab
        ar = 2.0 * allreduce_time_s(message, tp, self.link, self.engine)
        return t, ar

    def token_time(self, tokens: np.ndarray | float, graphed: Graphed = False) -> PhaseTime:
        """Everything in a forward pass of `tokens` tokens except attention and the LM head: all
        layers' GEMMs and element-wise kernels, TP all-reduces, PP sends and the engine's
        per-iteration overhead. Additive with `head_time` and `attention`·layers."""
        m = self.model
        tok = np.asarray(tokens, dtype=float)
        layer, ar = self._layer_linear(tok, graphed)
        body = layer.scale(m.num_layers)
        comm = ar * m.num_layers
        if self.pp > 1:
            comm = comm + self.stage_sends_s(tok)
        return PhaseTime(
            compute_s=body.compute_s,
            memory_s=body.memory_s,
            comm_s=np.broadcast_to(comm, body.compute_s.shape).astype(float),
            overhead_s=body.launch_s + self.iteration_overhead_s,
        )

    def stage_sends_s(self, tokens: np.ndarray | float) -> np.ndarray:
        """The pipeline's activation sends for a forward pass of `tokens` tokens (docs/model.md
        §2.5, §2.7): each of the pp − 1 stage boundaries sends tokens × hidden × activation
        bytes, over the intra-node link, or over the network for the `cross_node_boundaries`
        between nodes."""
        m = self.model
        act_bytes = np.asarray(tokens, dtype=float) * m.hidden_size * m.activation_dtype_bytes
        x = self.cross_node_boundaries
        inside = (self.pp - 1 - x) * p2p_time_s(act_bytes, self.link)
        if x and self.network is not None:
            return inside + x * network_p2p_time_s(act_bytes, self.network)
        return inside

    def head_time(self, logit_rows: np.ndarray | float, graphed: Graphed = False) -> OpTime:
        """The LM head GEMM for `logit_rows` rows (one per sequence that samples a token), and
        the engine's per-sequence CPU cost (sampling, output processing)."""
        m = self.model
        rows = np.asarray(logit_rows, dtype=float)
        t = self._gemm(rows, m.hidden_size, m.vocab_size / self.tp, graphed, sixteen_bit=True)
        return OpTime(
            t.compute_s, t.memory_s, t.launch_s + rows * self.engine.per_sequence_overhead_s
        )

    def _forward(
        self, tokens: np.ndarray, attn: OpTime, logit_rows: np.ndarray, graphed: Graphed
    ) -> PhaseTime:
        """All layers for one micro-batch through every pipeline stage, plus LM head, plus the
        inter-stage sends: the latency of one forward pass."""
        base = self.token_time(tokens, graphed)
        rest = attn.scale(self.model.num_layers) + self.head_time(logit_rows, graphed)
        shape = np.broadcast_shapes(base.compute_s.shape, rest.compute_s.shape)
        return PhaseTime(
            compute_s=base.compute_s + rest.compute_s,
            memory_s=base.memory_s + rest.memory_s,
            comm_s=np.broadcast_to(base.comm_s, shape).astype(float),
            overhead_s=base.overhead_s + rest.launch_s,
        )

    # ---- attention kernels ------------------------------------------------------------------
    def chunk_attention(
        self,
        chunk_tokens: np.ndarray | float,
        prefix_tokens: np.ndarray | float = 0.0,
        count: np.ndarray | float = 1.0,
    ) -> OpTime:
        """Causal attention of `count` prompt chunks of c tokens whose request already has
        `prefix` tokens in the KV cache (a whole prompt when prefix = 0), one eager kernel per
        layer (docs/model.md §2.4).

        FLOPs 4·c·(prefix + c/2)·q_dim/tp (2·L²·q_dim/tp for a whole prompt) at the GPU's
        prefill-attention efficiency for prefix + c keys; bytes: the prefix KV re-read plus Q, K, V
        read and O written, prefix·kv_rank + c·(2·q_dim/tp + kv_rank).

        MLA (prefill runs the decompressed form): FLOPs per query-key pair
        2·(H/tp)·(nope + rope + v), Q, K, V, O per chunk token 2·(H/tp)·(nope + rope + v)
        elements. A local (sliding-window) layer attends to at most `window` keys and re-reads
        at most `window` prefix tokens; the result is then the mean over global and local
        layers (docs/model.md §1.9)."""
        m, g = self.model, self.gpu
        c = np.asarray(chunk_tokens, dtype=float)
        pre = np.asarray(prefix_tokens, dtype=float)
        k = np.asarray(count, dtype=float)
        if m.is_mla or m.sliding_window is not None:
            glob = self._chunk_attention_layer(c, pre, k, None)
            if m.sliding_window is None:
                return glob
            return self._mean_layer(glob, self._chunk_attention_layer(c, pre, k, m.sliding_window))
        kv_rank = self.kv_bytes_per_token_per_layer_rank
        flops = k * 4.0 * c * (pre + c / 2.0) * m.q_dim / self.tp
        bytes_ = k * (pre * kv_rank + c * (2 * m.q_dim / self.tp * m.kv_dtype_bytes + kv_rank))
        return roofline(
            flops,
            bytes_,
            g.peak_flops(self.dtype),
            g.prefill_attention_efficiency(pre + c),
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["kv_cache"],
            g.kernel_fixed_s,
            launch_floor_s(g, False),
        )

    def _chunk_attention_layer(
        self, c: np.ndarray, pre: np.ndarray, k: np.ndarray, window: int | None
    ) -> OpTime:
        """One layer's chunk attention (the general form of `chunk_attention`), attending to at
        most `window` keys when given."""
        m, g = self.model, self.gpu
        kv_rank = self.kv_bytes_per_token_per_layer_rank
        pair = m.attention_flops_per_key / self.tp
        if m.is_mla:
            heads = m.num_heads / self.tp
            io = 2 * heads * (m.mla_qk_head_dim + (m.v_head_dim or 0)) * m.kv_dtype_bytes
        else:
            io = 2 * m.q_dim / self.tp * m.kv_dtype_bytes
        if window is None:
            keys, reread, seen = c * (pre + c / 2.0), pre, pre + c
        else:
            # Σ over the chunk's queries at positions pre+1..pre+c of min(position, window)
            inside = np.clip(window - pre, 0.0, c)
            keys = inside * (pre + inside / 2.0) + (c - inside) * window
            reread, seen = np.minimum(pre, window), np.minimum(pre + c, window)
        return roofline(
            k * pair * keys,
            k * (reread * kv_rank + c * (io + kv_rank)),
            g.peak_flops(self.dtype),
            g.prefill_attention_efficiency(seen),
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["kv_cache"],
            g.kernel_fixed_s,
            launch_floor_s(g, False),
        )

    def _mean_layer(self, glob: OpTime, local: OpTime) -> OpTime:
        """The mean layer of a model whose global and local layers take `glob` and `local`."""
        m = self.model
        return glob.scale(m.global_layers / m.num_layers) + local.scale(
            m.local_layers / m.num_layers
        )

    def decode_attention_busy_s(self, kv_tokens: np.ndarray | float) -> OpTime:
        """Busy time of one layer's paged decode attention reading `kv_tokens` KV tokens in all
        (micro-batch × context): kv_tokens·kv_rank bytes at the GPU's KV-read efficiency, and
        4·kv_tokens·q_dim/tp FLOPs at the attention plateau; no per-kernel cost. Linear in
        kv_tokens: how they split into sequences only matters through the fixed costs."""
        m, g = self.model, self.gpu
        x = np.asarray(kv_tokens, dtype=float)
        if m.is_mla:
            # vLLM's MLA decode (weights absorbed): every head of the rank scores the latent
            # (kv_lora + rope) and sums it (kv_lora); the rank reads the whole latent once.
            heads = m.num_heads / self.tp
            flops = 2.0 * x * heads * (m.mla_latent_dim + (m.kv_lora_rank or 0))
        else:
            flops = 4.0 * x * m.q_dim / self.tp
        return roofline(
            flops,
            x * self.kv_bytes_per_token_per_layer_rank,
            g.peak_flops(self.dtype),
            g.attention.prefill_plateau,
            g.memory_bandwidth_bytes_s,
            g.memory_efficiency["kv_cache"],
            0.0,
            0.0,
        )

    def decode_attention_fixed_s(self, micro_batch: np.ndarray | float) -> np.ndarray:
        """The fixed part of one layer's decode attention: the kernel's fixed time and a cost per
        (sequence × KV head on the rank), which dominate at short contexts."""
        per = self.gpu.attention.decode_per_sequence_head_us * 1e-6
        micro = np.asarray(micro_batch, dtype=float)
        return self.gpu.kernel_fixed_s + micro * self.kv_heads_rank * per

    def decode_attention(
        self,
        micro_batch: np.ndarray | float,
        context_tokens: np.ndarray | float,
        graphed: Graphed = True,
    ) -> OpTime:
        """Paged decode attention of a micro-batch with mean context `context_tokens`, one kernel
        per layer (docs/model.md §2.4): the busy time of reading every request's whole KV plus
        the fixed costs, at least a launch when eager. A local (sliding-window) layer reads at
        most `window` tokens per sequence: the mean over global and local layers."""
        micro = np.asarray(micro_batch, dtype=float)
        ctx = np.asarray(context_tokens, dtype=float)
        glob = self._decode_attention_layer(micro, ctx, graphed)
        window = self.model.sliding_window
        if window is None:
            return glob
        local = self._decode_attention_layer(micro, np.minimum(ctx, window), graphed)
        return self._mean_layer(glob, local)

    def _decode_attention_layer(
        self, micro: np.ndarray, ctx: np.ndarray, graphed: Graphed
    ) -> OpTime:
        busy = self.decode_attention_busy_s(micro * ctx)
        fixed = self.decode_attention_fixed_s(micro)
        wait = np.maximum(_launch(self.gpu, graphed) - busy.total_s - fixed, 0.0)
        return OpTime(busy.compute_s, busy.memory_s, fixed + wait)

    # ---- phases ----------------------------------------------------------------------------
    def prefill(
        self,
        prompt_tokens: np.ndarray | float,
        batch: np.ndarray | float = 1.0,
        cached_tokens: np.ndarray | float = 0.0,
    ) -> PhaseTime:
        """A prefill batch of `batch` prompts of `prompt_tokens` tokens each to compute, each
        after `cached_tokens` tokens found in the prefix cache (arrays broadcast): only the
        computed tokens pass the layers, and their attention also reads the cached KV (a chunk
        with a prefix, docs/model.md §7.1); logits only for each prompt's last token; eager."""
        length = np.asarray(prompt_tokens, dtype=float)
        b = np.asarray(batch, dtype=float)
        tokens = length * b
        graphed = self.piecewise_graphed(tokens)
        attn = self.chunk_attention(length, cached_tokens, b)
        return self._forward(tokens, attn, b, graphed)

    def decode_step(
        self, batch: np.ndarray | float, context_tokens: np.ndarray | float
    ) -> PhaseTime:
        """One decode iteration of `batch` requests with mean context `context_tokens`, under
        CUDA graphs when the engine captured that batch size.

        With pp > 1 the batch is split in pp micro-batches that fill the pipe, so one token of a
        request takes all stages at micro-batch batch/pp."""
        b = np.maximum(np.asarray(batch, dtype=float), 1.0)
        micro = np.ceil(b / self.pp)
        graphed = self.decode_graphed(micro)
        attn = self.decode_attention(micro, context_tokens, graphed)
        return self._forward(micro, attn, micro, graphed)

    def hybrid_step(
        self,
        decode_batch: np.ndarray | float,
        decode_context: np.ndarray | float,
        chunk_tokens: np.ndarray | float,
        chunk_prefix: np.ndarray | float,
    ) -> PhaseTime:
        """A Sarathi hybrid iteration: `decode_batch` decodes plus a prefill chunk of
        `chunk_tokens` whose request already has `chunk_prefix` tokens in the KV cache: one eager
        forward of b + c tokens with a decode and a chunk attention kernel per layer. The
        chunk's re-read of the prefix KV is the extra cost of chunking.

        With pp > 1 the iteration runs, like a decode step, as pp micro-batches that fill the
        pipe (Sarathi-Serve's hybrid micro-batches): each carries ⌈b/pp⌉ decodes, ⌈c/pp⌉ chunk
        tokens and 1/pp of the chunk attention's FLOPs and bytes, and the iteration takes one
        micro-batch's pass through every stage."""
        pp = self.pp
        b = np.asarray(decode_batch, dtype=float)
        c = np.asarray(chunk_tokens, dtype=float)
        micro_b = np.ceil(b / pp)
        micro_c = np.ceil(c / pp)
        attn = self.decode_attention(micro_b, decode_context, False) + self.chunk_attention(
            c, chunk_prefix, 1.0 / pp
        )
        graphed = self.piecewise_graphed(micro_b + micro_c)
        return self._forward(micro_b + micro_c, attn, micro_b + (c > 0), graphed)

"""The discrete-event loop and the five strategies' routing (docs/model.md §10.3).

Events are iteration ends of instances, KV transfer completions and request arrivals, taken in
time order. Strategies differ only in where a request goes and what happens between prefill and
decode:
  vllm / sarathi — a stateless load balancer sends each request to a uniformly random instance
                   (the even Poisson split the analytical model assumes).
  distserve / mooncake — a random prefill instance; after prefill the KV crosses a link to a
                   random decode instance (distserve: one in the same node, over the node's
                   intra-node path at the bandwidth left by TP traffic; mooncake: any, over the
                   sender's then the receiver's NIC, two FIFO queues in tandem; same-node KV
                   goes over PCIe/NVLink). The prefill instance holds the KV until its transfer
                   ends.
  ecoserve       — a random macro instance; its scheduler applies EcoServe's admission check on
                   the active instance (1: prefill work admitted since the switch ≤ window,
                   2: mean saved TPOT of its decodes ≥ that work, 3: KV fits) and otherwise
                   rolls activation to the next instance; when no instance accepts, the request
                   pends and is retried whenever an instance of the macro instance ends an
                   iteration.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import numpy as np

from planner.deployment import Deployment, interleaved_placement, placement
from planner.errors import PlannerError
from planner.kv_policy import LEND_SHARE, KVPolicy, predicted_outputs, reserved_output_tokens
from planner.scenario import InstanceModel, Scenario, deployment_problem
from planner.simulate.instance import Instance, Mode, RequestTable
from planner.simulate.requests import RequestStream, draw_requests
from planner.simulate.results import (
    SimResult,
    attainment,
    check_simulation_size,
    latencies,
    little_check,
    measured_window,
)
from planner.strategies.fudg import intra_node_free_share
from planner.workload import PERCENTILES

_END, _WAKE, _XFER = 0, 1, 2


class _Loop:
    """Event heap plus the instances; strategies plug in `route` and transfer handling."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.after_iteration: Callable[[int, float], None] | None = None
        self.on_transfer: Callable[[int, int, int, float], None] | None = None

    def push(self, t: float, kind: int, a: int, b: int = 0, c: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b * 65536 + c))

    def kick(self, i: int, now: float) -> None:
        """Start instance i's next iteration if it is free (or wake it when work becomes due)."""
        inst = self.instances[i]
        if inst.busy:
            return
        end = inst.start(now)
        if end is not None:
            self.push(end, _END, i)
            return
        due = inst.next_ready_s()
        if due is not None and due > now:
            self.push(due, _WAKE, i)

    def run(self, stream: RequestStream, route: Callable[[int, float], None], win: slice) -> None:
        arrivals = stream.arrival_s.tolist()
        for inst in self.instances:
            inst.window_s = (arrivals[win.start], arrivals[win.stop - 1])
        n = len(arrivals)
        nxt = 0
        heap = self.heap
        while True:
            t_arr = arrivals[nxt] if nxt < n else math.inf
            if heap and heap[0][0] <= t_arr:
                t, _, kind, a, bc = heapq.heappop(heap)
                if kind == _END:
                    self.instances[a].complete(t)
                    if self.after_iteration is not None:
                        self.after_iteration(a, t)
                    self.kick(a, t)
                elif kind == _WAKE:
                    self.kick(a, t)
                else:
                    assert self.on_transfer is not None
                    self.on_transfer(a, bc // 65536, bc % 65536, t)
            elif nxt < n:
                route(nxt, t_arr)
                nxt += 1
            else:
                break


def _reservations(scen: Scenario, stream: RequestStream, seed: int) -> list[int]:
    """KV tokens each request reserves beyond its prompt under the scenario's KV policy."""
    u = np.random.default_rng([seed, 4]).random(stream.size)
    pred = predicted_outputs(stream.output_tokens, scen.kv.prediction_cv, u)
    reserved = reserved_output_tokens(scen.kv, scen.max_output_tokens, pred)
    return reserved.astype(int).tolist()


def _table(stream: RequestStream, im: InstanceModel, scen: Scenario, seed: int) -> RequestTable:
    out = stream.output_tokens
    if scen.kv.policy == "max":  # generation stops at max_tokens
        out = np.minimum(out, int(scen.max_output_tokens))
    steps = np.maximum(out - 1, 0)
    return RequestTable(
        reserve=_reservations(scen, stream, seed),
        arrival_s=stream.arrival_s.tolist(),
        prompt=stream.input_tokens.tolist(),
        remaining=steps.tolist(),
        steps=steps.tolist(),
        attention_s=im.timer.prompt_attention_s(stream.input_tokens).tolist(),
        first_decode_s=[-1.0] * stream.size,
        finish_s=[-1.0] * stream.size,
        tbt_s=scen.slo.tbt_s if scen.slo.tbt_s is not None else float("inf"),
        long_gaps=[0] * stream.size if scen.slo.tbt_s is not None else [],
    )


def _instances(
    im: InstanceModel, count: int, table: RequestTable, mode: Mode, dep: Deployment, kv: KVPolicy
) -> list[Instance]:
    lend = LEND_SHARE if kv.policy == "predicted+pipelining" else 0.0
    return [
        Instance(
            lend_share=lend,
            timer=im.timer,
            kv_capacity_tokens=im.memory.kv_capacity_tokens,
            requests=table,
            mode=mode,
            max_batched_tokens=im.max_batched_tokens,
            max_num_seqs=int(im.kv_batch_limit) if im.seq_limited else 1 << 30,
            chunk_tokens=dep.chunk_tokens,
        )
        for _ in range(count)
    ]


def _nodg(dep: Deployment, scen: Scenario, stream: RequestStream, seed: int, win: slice) -> _Loop:
    im = scen.instance(dep.tp, dep.pp)
    table = _table(stream, im, scen, seed)
    mode: Mode = "sarathi" if dep.strategy == "sarathi" else "vllm"
    loop = _Loop(_instances(im, dep.instances, table, mode, dep, scen.kv))
    target = np.random.default_rng([seed, 3]).integers(0, dep.instances, stream.size).tolist()

    def route(rid: int, now: float) -> None:
        i = target[rid]
        loop.instances[i].enqueue(rid)
        loop.kick(i, now)

    loop.run(stream, route, win)
    return loop


def _fudg(
    dep: Deployment, scen: Scenario, stream: RequestStream, seed: int, rate: float, win: slice
) -> _Loop:
    pim = scen.instance(dep.tp, dep.pp)
    dim = scen.instance(dep.dtp, dep.dpp)
    table = _table(stream, pim, scen, seed)
    n_p, n_d = dep.instances, dep.decode_instances
    insts = _instances(pim, n_p, table, "prefill", dep, scen.kv) + _instances(
        dim, n_d, table, "decode", dep, scen.kv
    )
    loop = _Loop(insts)
    c = scen.cluster
    kv_bytes = scen.model.kv_bytes_per_sequence  # of a prompt (sliding window: capped)
    rng = np.random.default_rng([seed, 3])
    first = rng.integers(0, n_p, stream.size).tolist()
    pick = rng.random(stream.size).tolist()
    network = dep.strategy == "mooncake"
    if network:
        layout = placement(dep, c.gpus_per_node, c.nodes)
        bw = c.network.node_bandwidth_bytes_s
        latency = c.network.latency_s
    else:
        inter = interleaved_placement(dep, c.gpus_per_node, c.nodes)
        if inter is None:
            raise PlannerError("distserve: every node must hold both prefill and decode instances")
        layout = inter
        rho_p = rate / n_p * pim.service_mean_s
        bw = c.link.p2p_bandwidth_bytes_s * intra_node_free_share(pim, rho_p, inter[0][0])
        latency = c.link.latency_s
    p_node = [n for n, (p, _) in enumerate(layout) for _ in range(p)]
    d_node = [n for n, (_, d) in enumerate(layout) for _ in range(d)]
    d_by_node = [[j for j in range(n_d) if d_node[j] == n] for n in range(len(layout))]
    out_free = [0.0] * len(layout)  # NIC send side (mooncake) or the node's link (distserve)
    in_free = [0.0] * len(layout)
    local_bw = c.link.p2p_bandwidth_bytes_s

    def prefilled(src: int) -> Callable[[int, float], None]:
        def hand_on(rid: int, done_s: float) -> None:
            node = p_node[src]
            size = kv_bytes(table.prompt[rid])
            if network:
                dst = min(int(pick[rid] * n_d), n_d - 1)
                dn = d_node[dst]
                if dn == node:
                    end = done_s + size / local_bw + c.link.latency_s
                else:  # sender NIC, then receiver NIC: two FIFO queues in tandem
                    start = max(done_s, out_free[node])
                    out_free[node] = start + size / bw
                    in_free[dn] = max(out_free[node], in_free[dn] + size / bw)
                    end = in_free[dn] + latency
            else:
                local = d_by_node[node]
                dst = local[min(int(pick[rid] * len(local)), len(local) - 1)]
                start = max(done_s, out_free[node])
                out_free[node] = start + size / bw
                end = start + size / bw + latency
            loop.push(end, _XFER, rid, src, n_p + dst)

        return hand_on

    for i in range(n_p):
        insts[i].on_prefilled = prefilled(i)

    def transferred(rid: int, src: int, dst: int, now: float) -> None:
        insts[src].release(rid)
        insts[dst].deliver(rid, now)
        loop.kick(src, now)
        loop.kick(dst, now)

    loop.on_transfer = transferred

    def route(rid: int, now: float) -> None:
        i = first[rid]
        insts[i].enqueue(rid)
        loop.kick(i, now)

    loop.run(stream, route, win)
    return loop


def _ecoserve(
    dep: Deployment, scen: Scenario, stream: RequestStream, seed: int, win: slice
) -> _Loop:
    im = scen.instance(dep.tp, dep.pp)
    table = _table(stream, im, scen, seed)
    n_inst = dep.macro_size
    macros = dep.instances // n_inst
    loop = _Loop(_instances(im, dep.instances, table, "vllm", dep, scen.kv))
    slo = scen.slo
    budget = min(dep.window_s if dep.window_s is not None else slo.ttft_s, slo.ttft_s)
    predicted = im.timer.prompt_attention_s(stream.input_tokens)
    predicted_s = [
        im.timer.prefill_s(float(p), 1, float(a)) / dep.pp
        for p, a in zip(stream.input_tokens, predicted, strict=True)
    ]
    target = np.random.default_rng([seed, 3]).integers(0, macros, stream.size).tolist()
    active = [0] * macros
    window_s = [0.0] * dep.instances
    pending: list[deque[int]] = [deque() for _ in range(macros)]

    def admits(i: int, rid: int, now: float) -> bool:
        inst = loop.instances[i]
        work = window_s[i] + predicted_s[rid]
        if work > budget and window_s[i] > 0.0:
            return False  # check 1: the window's prefill work would exceed the TTFT budget
        saved = inst.mean_saved_tpot_s(now, slo.tpot_s)
        if saved is not None and saved < work:
            return False  # check 2: decodes have not saved enough TPOT to absorb the work
        return table.prompt[rid] <= inst.kv_free_for_new()  # check 3: KV memory

    def dispatch(m: int, now: float) -> None:
        queue = pending[m]
        base = m * n_inst
        while queue:
            rid = queue[0]
            for _ in range(n_inst):
                i = base + active[m]
                if admits(i, rid, now):
                    window_s[i] += predicted_s[rid]
                    queue.popleft()
                    loop.instances[i].enqueue(rid)
                    loop.kick(i, now)
                    break
                active[m] = (active[m] + 1) % n_inst  # rolling activation
                window_s[base + active[m]] = 0.0
            else:
                return  # no instance accepts: the request pends

    def route(rid: int, now: float) -> None:
        m = target[rid]
        pending[m].append(rid)
        dispatch(m, now)

    def after_iteration(i: int, now: float) -> None:
        m = i // n_inst
        if pending[m]:
            dispatch(m, now)

    loop.after_iteration = after_iteration
    loop.run(stream, route, win)
    return loop


def request_lifetime_s(dep: Deployment, scen: Scenario) -> float:
    """A request's typical lifetime, S_TTFT + E[decode steps]·S_TPOT: the unit of the
    simulation's warm-up and cool-down (`measured_window`)."""
    im = scen.instance(dep.dtp, dep.dpp)
    return scen.slo.ttft_s + im.mean_steps * scen.slo.tpot_s


def _instance_count(dep: Deployment) -> int:
    return dep.instances + (dep.decode_instances if dep.family == "FuDG" else 0)


def simulate(
    dep: Deployment, scen: Scenario, rate: float, *, requests: int = 4000, seed: int = 0
) -> SimResult:
    """Simulate `dep` at `rate` requests/s and measure `requests` requests after a warm-up
    (`measured_window`; a request's typical lifetime is S_TTFT + E[steps]·S_TPOT); the result
    is deterministic per seed."""
    problem = deployment_problem(dep, scen)
    if problem is not None:
        raise PlannerError(f"{dep.strategy} {dep.label()}: {problem}")
    if not (rate > 0 and math.isfinite(rate)):
        raise PlannerError(f"--rate: must be a positive number, got {rate:g}")
    if requests < 1:
        raise PlannerError(f"--requests: must be at least 1, got {requests}")
    lifetime = request_lifetime_s(dep, scen)
    check_simulation_size(requests, rate, lifetime, _instance_count(dep))
    total, win = measured_window(requests, rate, lifetime)
    stream = draw_requests(scen.workload, scen.model.max_context, total, rate, seed)
    if dep.family == "NoDG":
        loop = _nodg(dep, scen, stream, seed, win)
    elif dep.family == "FuDG":
        loop = _fudg(dep, scen, stream, seed, rate, win)
    else:
        loop = _ecoserve(dep, scen, stream, seed, win)
    return _measure(scen, stream, loop, rate, win)


def _measure(
    scen: Scenario, stream: RequestStream, loop: _Loop, rate: float, win: slice
) -> SimResult:
    table = loop.instances[0].requests
    first = np.asarray(table.first_decode_s)
    finish = np.asarray(table.finish_s)
    first[first < 0] = np.inf  # never served (cannot happen unless the loop stalls)
    finish[finish < 0] = np.inf
    steps = np.asarray(table.steps)
    ttft_all, tpot_all = latencies(stream.arrival_s, first, finish, steps)
    ttft, tpot = ttft_all[win], tpot_all[win]
    e2e = (finish - stream.arrival_s)[win]
    gaps_ok = None
    if table.long_gaps:
        long_gaps = np.asarray(table.long_gaps, dtype=float)[win]
        gaps_ok = long_gaps <= scen.slo.allowed_long_gaps(steps[win])
    joint, a_t, a_p = attainment(ttft, tpot, scen.slo, gaps_ok)
    makespan = float(np.max(finish[np.isfinite(finish)], initial=0.0)) or 1e-9
    t0, t1 = loop.instances[0].window_s
    span = max(t1 - t0, 1e-9)
    util: dict[str, float] = {}
    insts = loop.instances
    for key, pick in (
        ("prefill", lambda s: s.prefill_busy_s),
        ("decode", lambda s: s.decode_busy_s),
        ("hybrid", lambda s: s.hybrid_busy_s),
    ):
        busy = [pick(x.stats) for x in insts]
        if any(busy):
            util[key] = float(np.mean(busy)) / span
    decoding = [x for x in insts if x.mode != "prefill"]
    batch = float(np.mean([x.stats.batch_time_s for x in decoding])) / span
    in_system, little = little_check(stream.arrival_s, finish, win)
    return SimResult(
        rate=rate,
        requests=win.stop - win.start,
        attainment=joint,
        ttft_attainment=a_t,
        tpot_attainment=a_p,
        tbt_attainment=None if gaps_ok is None else float(gaps_ok.mean()),
        ttft_s={q: _quantile(ttft, q) for q in PERCENTILES},
        tpot_s={q: _quantile(tpot, q) for q in PERCENTILES},
        mean_ttft_s=_mean(ttft),
        mean_tpot_s=_mean(tpot),
        e2e_s={q: _quantile(e2e, q) for q in PERCENTILES},
        mean_e2e_s=_mean(e2e),
        utilisation=util,
        mean_decode_batch=batch,
        preemptions=table.preemptions,
        in_system_mean=in_system,
        little_rate_x_sojourn=little,
        makespan_s=makespan,
    )


def _quantile(x: np.ndarray, q: int) -> float:
    """Empirical percentile without interpolation (a never-served request is +inf)."""
    return float(np.percentile(x, q, method="inverted_cdf"))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if np.all(np.isfinite(x)) else math.inf

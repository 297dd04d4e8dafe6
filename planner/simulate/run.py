"""The discrete-event loop and the five strategies' routing (docs/model.md §10.3).

Events are iteration ends of instances, KV transfer completions and request arrivals, taken in
time order. Strategies differ only in where a request goes and what happens between prefill and
decode. Arrivals are routed round-robin (`routing.py`; `random` for comparison):
  vllm / sarathi — over the instances, as a stateless load balancer does.
  distserve / mooncake — over the prefill instances; after prefill the KV crosses a link to the
                   least-loaded decode instance (distserve: one in the same node, over the
                   node's intra-node path, a FIFO link that every prefill iteration of the node
                   also occupies for its TP communication time; mooncake: any, over the
                   sender's then the receiver's NIC, two FIFO queues in tandem; same-node KV
                   goes over PCIe/NVLink). The prefill instance holds the KV until its transfer
                   ends.
  ecoserve       — over the macro instances; its scheduler applies EcoServe's admission check
                   on the active instance (1: prefill work admitted since the switch ≤ window,
                   2: mean saved TPOT of its decodes ≥ that work, 3: KV fits) and otherwise
                   rolls activation to the next instance; when no instance accepts, the request
                   pends and is retried whenever an instance of the macro instance ends an
                   iteration.
Nothing here reads the analytical models (planner.strategies, planner.queueing): only the
performance layer's times, the deployment's placement and the scenario's instance model.
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
from planner.perf.phases import InstancePerf
from planner.scenario import InstanceModel, Scenario, deployment_problem, unit_scenario
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
from planner.simulate.routing import ROUTINGS, Routing, first_targets, least_loaded
from planner.workload import PERCENTILES

_END, _WAKE, _XFER = 0, 1, 2


class _Loop:
    """Event heap plus the instances; strategies plug in `route` and transfer handling. FuDG's
    prefill side runs on it; instances that only their owner touches run on their own clocks
    (`_OwnClock`: NoDG, FuDG decode, EcoServe)."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.on_transfer: Callable[[int, int, int, float], None] | None = None
        self.now = 0.0  # the time of the event being handled

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
            self.seq += 1
            heapq.heappush(self.heap, (end, self.seq, _END, i, 0))  # `push(end, _END, i)`
            return
        due = inst.next_ready_s()
        if due is not None and due > now:
            self.push(due, _WAKE, i)

    def run(self, stream: RequestStream, route: Callable[[int, float], None], win: slice) -> None:
        arrivals = stream.arrival_s.tolist()
        _open_window(self.instances, arrivals, win)
        n = len(arrivals)
        nxt = 0
        heap, pop, insts, kick = self.heap, heapq.heappop, self.instances, self.kick
        while True:
            t_arr = arrivals[nxt] if nxt < n else math.inf
            if heap and heap[0][0] <= t_arr:
                t, _, kind, a, bc = pop(heap)
                self.now = t
                if kind == _END:
                    insts[a].complete(t)
                    kick(a, t)
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

    def run_apart(self, stream: RequestStream, targets: list[int], win: slice) -> None:
        """The same simulation as `run` for instances that share nothing and are routed to by a
        rule that reads none of their state (NoDG behind a round-robin or random balancer): the
        global event order, restricted to one instance, is that instance's own iteration ends
        and wake-ups interleaved with its own arrivals, so each instance runs on its own, one
        after the other, with no shared event heap (docs/model.md §10.7). An iteration ending
        at an arrival's instant goes first, as in `run`."""
        arrivals = stream.arrival_s.tolist()
        _open_window(self.instances, arrivals, win)
        for inst, rids in zip(
            self.instances, _by_target(targets, len(self.instances)), strict=True
        ):
            clock = _OwnClock(inst)
            for rid in rids:
                t = arrivals[rid]
                clock.advance_to(t)
                inst.enqueue(rid)
                clock.kick(t)
            clock.advance_to(math.inf)


def _open_window(instances: list[Instance], arrivals: list[float], win: slice) -> None:
    """Count the iterations starting between the first and the last measured arrival."""
    for inst in instances:
        inst.window_s = (arrivals[win.start], arrivals[win.stop - 1])


def _by_target(targets: list[int], count: int) -> list[list[int]]:
    """The requests routed to each of `count` targets, in arrival order."""
    out: list[list[int]] = [[] for _ in range(count)]
    for rid, i in enumerate(targets):
        out[i].append(rid)
    return out


class _OwnClock:
    """One instance's iteration ends and wake-ups (when a prefilled request becomes due) kept
    out of the shared event heap, for an instance that nothing else reads or changes between
    the moments its owner syncs it (`advance_to`) and hands it work (`kick`) (docs/model.md
    §10.7). Whoever touches the instance at time t first advances it to t, so it has done
    exactly what the shared heap would have made it do by then; an iteration ending at t goes
    before the touch, as `_Loop.run` takes an iteration end before an event at the same
    instant. Between touches, plain decode steps run back to back (`Instance.decode_until`)."""

    __slots__ = ("end", "inst", "wakes")

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.end = math.inf  # the running iteration's end (inf: idle)
        self.wakes: list[float] = []  # times to try starting again

    def kick(self, now: float) -> None:
        """`_Loop.kick`: start the next iteration if the instance is free (or wake it when
        work becomes due)."""
        inst = self.inst
        if inst.busy:
            return
        nxt = inst.start(now)
        if nxt is None:
            self.end = math.inf
            due = inst.next_ready_s()
            if due is not None and due > now:
                heapq.heappush(self.wakes, due)
        else:
            self.end = nxt

    def next_s(self) -> float:
        """When the instance's next event (iteration end or wake-up) happens (inf: none)."""
        wake = self.wakes[0] if self.wakes else math.inf
        return self.end if self.end <= wake else wake

    def take_next(self) -> bool:
        """Handle the next event alone: an iteration end is completed and True returned (the
        caller then kicks the instance, after whatever it does at that moment); a wake-up
        kicks the instance and returns False."""
        wake = self.wakes[0] if self.wakes else math.inf
        if self.end <= wake:
            self.inst.complete(self.end)
            self.end = math.inf
            return True
        self.kick(heapq.heappop(self.wakes))
        return False

    def advance_to(self, t: float) -> None:
        """Run the instance's own events up to time t (all of them for t = inf)."""
        inst, wakes = self.inst, self.wakes
        while True:
            wake = wakes[0] if wakes else math.inf
            end = self.end
            if end <= wake:
                if end > t or end == math.inf:
                    return
                if inst.decode_running():
                    # plain decode steps back to back up to t or the next wake-up
                    nxt = inst.decode_until(end, t if t < wake else wake)
                    if nxt is not None:
                        self.end = nxt
                        continue
                    now = inst.last_end_s
                else:
                    now = end
                    inst.complete(now)
            else:
                if wake > t:
                    return
                now = heapq.heappop(wakes)
            self.kick(now)


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
    prompt, cached, attention_s = _prompts(stream, im)
    return RequestTable(
        reserve=_reservations(scen, stream, seed),
        arrival_s=stream.arrival_s.tolist(),
        prompt=prompt,
        remaining=steps.tolist(),
        steps=steps.tolist(),
        attention_s=attention_s,
        first_decode_s=[-1.0] * stream.size,
        finish_s=[-1.0] * stream.size,
        cached=cached,
        tbt_s=scen.slo.tbt_s if scen.slo.tbt_s is not None else float("inf"),
        long_gaps=[0] * stream.size if scen.slo.tbt_s is not None else [],
    )


def _prompts(stream: RequestStream, im: InstanceModel) -> tuple[list[int], list[int], list[float]]:
    """(tokens each request prefills, tokens it finds in the prefix cache, its prompt's
    attention time): a request with c cached tokens of its I prefills I − c, whose attention
    reads the cached KV too (a chunk after a prefix of c, docs/model.md §10.2)."""
    inp = stream.input_tokens
    cached = stream.cached_tokens
    if cached is None:
        return inp.tolist(), [], im.timer.prompt_attention_s(inp).tolist()
    new = (inp - cached).tolist()
    done = cached.tolist()
    attention_s = [im.timer.chunk_attention_s(n, c) for n, c in zip(new, done, strict=True)]
    return new, done, attention_s


def _request_kv_tokens(im: InstanceModel) -> int:
    """KV tokens an instance has for requests: its cache less the shared prefix's blocks,
    held once per instance whenever prefixes are reused (docs/model.md §10.2)."""
    return max(im.memory.kv_capacity_tokens - int(im.prefix_tokens), 0)


def _instances(
    im: InstanceModel, count: int, table: RequestTable, mode: Mode, dep: Deployment, kv: KVPolicy
) -> list[Instance]:
    lend = LEND_SHARE if kv.policy == "predicted+pipelining" else 0.0
    return [
        Instance(
            lend_share=lend,
            timer=im.timer,
            kv_capacity_tokens=_request_kv_tokens(im),
            requests=table,
            mode=mode,
            max_batched_tokens=im.max_batched_tokens,
            max_num_seqs=int(im.kv_batch_limit) if im.seq_limited else 1 << 30,
            chunk_tokens=dep.chunk_tokens,
        )
        for _ in range(count)
    ]


def _nodg(
    dep: Deployment, scen: Scenario, stream: RequestStream, seed: int, win: slice, routing: Routing
) -> _Loop:
    im = scen.instance(dep.tp, dep.pp)
    table = _table(stream, im, scen, seed)
    mode: Mode = "sarathi" if dep.strategy == "sarathi" else "vllm"
    loop = _Loop(_instances(im, dep.instances, table, mode, dep, scen.kv))
    loop.run_apart(stream, first_targets(routing, stream.size, dep.instances, seed), win)
    return loop


def prefill_comm_s(perf: InstancePerf, top_tokens: int) -> list[float]:
    """Intra-node link time of a prefill iteration of 0..`top_tokens` tokens (a list indexed
    by tokens): the communication part (TP all-reduces, PP sends) of the performance layer's
    token time (docs/model.md §2.5, §10.3)."""
    tokens = np.arange(top_tokens + 1, dtype=float)
    return np.asarray(perf.token_time(tokens).comm_s, dtype=float).tolist()


class Link:
    """A FIFO link: work (transfers, all-reduce traffic) is served in submission order at
    one transfer at a time; `submit` returns when the work ends."""

    def __init__(self) -> None:
        self.free_s = 0.0

    def submit(self, now: float, busy_s: float) -> float:
        self.free_s = max(self.free_s, now) + busy_s
        return self.free_s


def _fudg(
    dep: Deployment,
    scen: Scenario,
    stream: RequestStream,
    seed: int,
    win: slice,
    routing: Routing,
) -> _Loop:
    pim = scen.instance(dep.tp, dep.pp)
    dim = scen.instance(dep.dtp, dep.dpp)
    table = _table(stream, pim, scen, seed)
    n_p, n_d = dep.instances, dep.decode_instances
    insts = _instances(pim, n_p, table, "prefill", dep, scen.kv) + _instances(
        dim, n_d, table, "decode", dep, scen.kv
    )
    loop = _Loop(insts)
    # decode instances run on their own clocks: only the KV handoff reads (load) or changes
    # (deliver) them, and it advances them to its time first (`_OwnClock`)
    clocks = [_OwnClock(inst) for inst in insts[n_p:]]
    c = scen.cluster
    kv_bytes = scen.model.kv_bytes_per_sequence  # of a prompt (sliding window: capped)
    first = first_targets(routing, stream.size, n_p, seed)
    pick = np.random.default_rng([seed, 5]).random(stream.size).tolist()
    network = dep.strategy == "mooncake"
    if network:
        layout = placement(dep, c.gpus_per_node, c.nodes)
    else:
        inter = interleaved_placement(dep, c.gpus_per_node, c.nodes)
        if inter is None:
            raise PlannerError("distserve: every node must hold both prefill and decode instances")
        layout = inter
    p_node = [n for n, (p, _) in enumerate(layout) for _ in range(p)]
    d_node = [n for n, (_, d) in enumerate(layout) for _ in range(d)]
    d_by_node = [[j for j in range(n_d) if d_node[j] == n] for n in range(len(layout))]
    nic_out = [Link() for _ in layout]  # mooncake: NIC send and receive sides
    nic_in = [Link() for _ in layout]
    node_link = [Link() for _ in layout]  # the node's intra-node path (distserve)
    local_bw = c.link.p2p_bandwidth_bytes_s
    inbound = [0] * n_d  # KV transfers on their way to each decode instance

    def decode_target(rid: int, candidates: list[int]) -> int:
        if routing == "random":
            return candidates[min(int(pick[rid] * len(candidates)), len(candidates) - 1)]
        loads = [0] * n_d
        now = loop.now
        for j in candidates:
            clocks[j].advance_to(now)
            loads[j] = insts[n_p + j].load() + inbound[j]
        return least_loaded(loads, candidates)

    def prefilled(src: int) -> Callable[[int, float], None]:
        def hand_on(rid: int, done_s: float) -> None:
            node = p_node[src]
            size = kv_bytes(table.prompt[rid])
            if network:
                dst = decode_target(rid, list(range(n_d)))
                dn = d_node[dst]
                if dn == node:
                    end = done_s + size / local_bw + c.link.latency_s
                else:  # sender NIC, then receiver NIC: two FIFO queues in tandem
                    bw = c.network.node_bandwidth_bytes_s
                    sent = nic_out[node].submit(done_s, size / bw)
                    end = max(sent, nic_in[dn].submit(sent - size / bw, size / bw))
                    end += c.network.latency_s
            else:
                dst = decode_target(rid, d_by_node[node])
                end = node_link[node].submit(done_s, size / local_bw) + c.link.latency_s
            inbound[dst] += 1
            loop.push(end, _XFER, rid, src, n_p + dst)

        return hand_on

    # a prefill batch holds at most the token budget, or one longer prompt
    top = max(pim.max_batched_tokens, int(stream.input_tokens.max(initial=0)))
    comm_s = [] if network else prefill_comm_s(pim.perf, top)

    def link_traffic(node: int) -> Callable[[float, int], None]:
        def occupy(now: float, tokens: int) -> None:
            node_link[node].submit(now, comm_s[tokens])

        return occupy

    for i in range(n_p):
        insts[i].on_prefilled = prefilled(i)
        if not network:
            insts[i].on_prefill_batch = link_traffic(p_node[i])

    def transferred(rid: int, src: int, dst: int, now: float) -> None:
        clock = clocks[dst - n_p]
        clock.advance_to(now)
        inbound[dst - n_p] -= 1
        insts[src].release(rid)
        insts[dst].deliver(rid, now)
        loop.kick(src, now)
        clock.kick(now)

    loop.on_transfer = transferred

    def route(rid: int, now: float) -> None:
        i = first[rid]
        insts[i].enqueue(rid)
        loop.kick(i, now)

    loop.run(stream, route, win)
    for clock in clocks:
        clock.advance_to(math.inf)
    return loop


def _ecoserve(
    dep: Deployment, scen: Scenario, stream: RequestStream, seed: int, win: slice, routing: Routing
) -> _Loop:
    im = scen.instance(dep.tp, dep.pp)
    table = _table(stream, im, scen, seed)
    n_inst = dep.macro_size
    macros = dep.instances // n_inst
    loop = _Loop(_instances(im, dep.instances, table, "vllm", dep, scen.kv))
    slo = scen.slo
    budget = min(dep.window_s if dep.window_s is not None else slo.ttft_s, slo.ttft_s)
    predicted_s = [
        im.timer.prefill_s(float(p), 1, float(a)) / dep.pp
        for p, a in zip(table.prompt, table.attention_s, strict=True)
    ]
    target = first_targets(routing, stream.size, macros, seed)
    active = [0] * macros
    window_s = [0.0] * dep.instances
    pending: list[deque[int]] = [deque() for _ in range(macros)]

    def admits(i: int, rid: int, now: float) -> bool:
        clocks[i].advance_to(now)  # the scheduler reads this instance: bring it to now
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
                    clocks[i].kick(now)
                    break
                active[m] = (active[m] + 1) % n_inst  # rolling activation
                window_s[base + active[m]] = 0.0
            else:
                return  # no instance accepts: the request pends

    # Macro instances share nothing and arrivals are routed to them without reading their
    # state, so each runs on its own; its instances keep their own clocks (`_OwnClock`): the
    # scheduler reads an instance only when it dispatches (`admits` advances that one to the
    # moment first), at an arrival or, while requests pend, at each iteration end of the macro
    # instance, taken one event at a time in time order (the earliest clock first) between
    # completing that iteration and starting the next, so the scheduler sees that instance
    # free. For that, whenever a request is left pending every clock is advanced to the moment
    # (docs/model.md §10.7).
    clocks = [_OwnClock(inst) for inst in loop.instances]
    arrivals = stream.arrival_s.tolist()
    _open_window(loop.instances, arrivals, win)
    for m, rids in enumerate(_by_target(target, macros)):
        mine = clocks[m * n_inst : (m + 1) * n_inst]
        queue = pending[m]
        for rid in [*rids, -1]:
            t = arrivals[rid] if rid >= 0 else math.inf
            while queue:  # pending requests: every iteration end may admit one
                first = min(mine, key=_OwnClock.next_s)
                e = first.next_s()
                if e > t or e == math.inf:
                    break
                if first.take_next():
                    dispatch(m, e)
                    first.kick(e)
            if rid < 0:
                break
            queue.append(rid)
            dispatch(m, t)
            if queue:  # pending: from now on every iteration end matters
                for clock in mine:
                    clock.advance_to(t)
        for clock in mine:
            clock.advance_to(math.inf)
    return loop


def request_lifetime_s(dep: Deployment, scen: Scenario) -> float:
    """A request's typical lifetime, S_TTFT + E[decode steps]·S_TPOT: the unit of the
    simulation's warm-up and cool-down (`measured_window`)."""
    im = scen.instance(dep.dtp, dep.dpp)
    return scen.slo.ttft_s + im.mean_steps * scen.slo.tpot_s


def _instance_count(dep: Deployment) -> int:
    return dep.instances + (dep.decode_instances if dep.family == "FuDG" else 0)


def simulate(
    dep: Deployment,
    scen: Scenario,
    rate: float,
    *,
    requests: int = 4000,
    seed: int = 0,
    routing: Routing = "round-robin",
) -> SimResult:
    """Simulate `dep` at `rate` requests/s and measure `requests` requests after a warm-up
    (`measured_window`; a request's typical lifetime is S_TTFT + E[steps]·S_TPOT); the result
    is deterministic per seed. `routing`: how arrivals are spread over instances (prefill
    instances, macro instances): round-robin, as load balancers do, or uniformly at random.

    A replicated deployment (docs/model.md §10.3): one stream at `rate` is split round-robin,
    arrival j to unit j mod r; each unit, which shares nothing with the others, is simulated on
    its own sub-stream on its share of the nodes, measuring ⌈requests/r⌉ of its requests, and
    the measured requests of every unit are pooled."""
    if routing not in ROUTINGS:
        raise PlannerError(f"routing: must be one of {', '.join(ROUTINGS)}, got {routing!r}")
    problem = deployment_problem(dep, scen)
    if problem is not None:
        raise PlannerError(f"{dep.strategy} {dep.label()}: {problem}")
    if not (rate > 0 and math.isfinite(rate)):
        raise PlannerError(f"--rate: must be a positive number, got {rate:g}")
    if requests < 1:
        raise PlannerError(f"--requests: must be at least 1, got {requests}")
    r = dep.replicas
    unit, unit_rate, per_unit = dep.unit, rate / r, math.ceil(requests / r)
    lifetime = request_lifetime_s(dep, scen)
    check_simulation_size(per_unit * r, rate, lifetime, _instance_count(dep) * r)
    total, win = measured_window(per_unit, unit_rate, lifetime)
    whole = draw_requests(
        scen.workload,
        scen.model.max_context,
        total * r,
        rate,
        seed,
        scen.prefix_cache_block_tokens,
    )
    unit_scen = unit_scenario(dep, scen)  # its share of the nodes (arrivals: the sub-stream)
    parts = []
    for k in range(r):
        stream = _every(whole, k, r)
        unit_seed = seed * r + k  # the unit's own routing and KV draws (seed itself when r = 1)
        parts.append((stream, _run_unit(unit, unit_scen, stream, unit_seed, win, routing), win))
    return _measure(scen, parts, rate)


def _every(stream: RequestStream, k: int, r: int) -> RequestStream:
    """Requests k, k + r, k + 2r, … of `stream`: what a round-robin balancer sends to unit k."""
    if r == 1:
        return stream
    return RequestStream(
        arrival_s=stream.arrival_s[k::r],
        input_tokens=stream.input_tokens[k::r],
        output_tokens=stream.output_tokens[k::r],
        cached_tokens=None if stream.cached_tokens is None else stream.cached_tokens[k::r],
    )


def _run_unit(
    dep: Deployment, scen: Scenario, stream: RequestStream, seed: int, win: slice, routing: Routing
) -> _Loop:
    """One unit's event loop over its stream."""
    if dep.family == "NoDG":
        return _nodg(dep, scen, stream, seed, win, routing)
    if dep.family == "FuDG":
        return _fudg(dep, scen, stream, seed, win, routing)
    return _ecoserve(dep, scen, stream, seed, win, routing)


def _measure(
    scen: Scenario, parts: list[tuple[RequestStream, _Loop, slice]], rate: float
) -> SimResult:
    """The measured requests of one or more independent units (stream, loop, window each),
    pooled: latencies over all of them; utilisation and decode batch averaged over the units'
    instances; preemptions, requests in system and Little's λ·W summed."""
    ttft_l, tpot_l, e2e_l, gaps_l = [], [], [], []
    util_l: dict[str, list[float]] = {}
    batch_l: list[float] = []
    preemptions, in_system, little, makespan, measured = 0, 0.0, 0.0, 0.0, 0
    for stream, loop, win in parts:
        table = loop.instances[0].requests
        first = np.asarray(table.first_decode_s)
        finish = np.asarray(table.finish_s)
        first[first < 0] = np.inf  # never served (cannot happen unless the loop stalls)
        finish[finish < 0] = np.inf
        steps = np.asarray(table.steps)
        ttft_all, tpot_all = latencies(stream.arrival_s, first, finish, steps)
        ttft_l.append(ttft_all[win])
        tpot_l.append(tpot_all[win])
        e2e_l.append((finish - stream.arrival_s)[win])
        if table.long_gaps:  # requests whose long inter-token gaps stay within the TBT SLO
            long_gaps = np.asarray(table.long_gaps, dtype=float)[win]
            gaps_l.append(long_gaps <= scen.slo.allowed_long_gaps(steps[win]))
        makespan = max(makespan, float(np.max(finish[np.isfinite(finish)], initial=0.0)))
        t0, t1 = loop.instances[0].window_s
        span = max(t1 - t0, 1e-9)
        insts = loop.instances
        for key, pick in (
            ("prefill", lambda s: s.prefill_busy_s),
            ("decode", lambda s: s.decode_busy_s),
            ("hybrid", lambda s: s.hybrid_busy_s),
        ):
            busy = [pick(x.stats) for x in insts]
            if any(busy):
                util_l.setdefault(key, []).extend(b / span for b in busy)
        decoding = [x for x in insts if x.mode != "prefill"]
        batch_l.extend(x.stats.batch_time_s / span for x in decoding)
        n, lw = little_check(stream.arrival_s, finish, win)
        in_system, little = in_system + n, little + lw
        preemptions += table.preemptions
        measured += win.stop - win.start
    ttft, tpot, e2e = (np.concatenate(x) for x in (ttft_l, tpot_l, e2e_l))
    gaps_ok = np.concatenate(gaps_l) if gaps_l else None
    joint, a_t, a_p = attainment(ttft, tpot, scen.slo, gaps_ok)
    return SimResult(
        rate=rate,
        requests=measured,
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
        utilisation={k: float(np.mean(v)) for k, v in util_l.items()},
        mean_decode_batch=float(np.mean(batch_l)),
        preemptions=preemptions,
        in_system_mean=in_system,
        little_rate_x_sojourn=little,
        makespan_s=makespan or 1e-9,
    )


def _quantile(x: np.ndarray, q: int) -> float:
    """Empirical percentile without interpolation (a never-served request is +inf)."""
    return float(np.percentile(x, q, method="inverted_cdf"))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if np.all(np.isfinite(x)) else math.inf

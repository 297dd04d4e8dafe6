"""Independent pieces of work in forked worker processes (docs/model.md §9.5, §10.7).

`fork_map` runs zero-argument callables in this process and in workers forked from it, so the
callables and everything they close over (a scenario with its instance tables, a search result
with its predictions) reach the workers without pickling; only the results travel back. The
results are returned in the callables' order, so the outcome is the same for any number of
workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# the callables of the running `fork_map`, its `portable` conversion and the index of the next
# callable to run (shared memory), read by the forked workers
_THUNKS: Sequence[Callable[[], Any]] = ()
_PORTABLE: Callable[[Any], Any] | None = None
_NEXT: Any = None


def _drain(in_worker: bool) -> dict[int, Any]:
    """Run callables, taking the next one not yet taken by any process, until none is left;
    a worker's results go through `_PORTABLE`."""
    out: dict[int, Any] = {}
    while True:
        with _NEXT.get_lock():
            i = _NEXT.value
            _NEXT.value = i + 1
        if i >= len(_THUNKS):
            return out
        result = _THUNKS[i]()
        out[i] = _PORTABLE(result) if in_worker and _PORTABLE is not None else result


def default_jobs() -> int:
    """Worker processes when not told: the CPU count (`os.cpu_count()`, 1 if unknown)."""
    return os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def fork_map(
    thunks: Sequence[Callable[[], T]],
    jobs: int | None = None,
    portable: Callable[[T], Any] | None = None,
) -> list[Any]:
    """[f() for f in thunks] over `jobs` processes (None: `default_jobs()`): this one and
    jobs − 1 forked workers, each taking the next callable not yet taken (in list order, so put
    the costliest first) until none is left. A result computed in a worker goes through
    `portable` (when given) before it is pickled back, e.g. to drop what cannot be pickled; a
    result computed here is returned as it is. Everything runs here when one job is asked for,
    there is at most one callable, or the platform cannot fork (the callables' closures cannot
    be handed over otherwise)."""
    global _THUNKS, _PORTABLE, _NEXT
    n = min(default_jobs() if jobs is None else jobs, len(thunks))
    if n <= 1 or not can_fork():
        return [f() for f in thunks]
    ctx = multiprocessing.get_context("fork")
    _THUNKS, _PORTABLE, _NEXT = thunks, portable, ctx.Value("i", 0)
    try:
        with ProcessPoolExecutor(max_workers=n - 1, mp_context=ctx) as pool:
            workers = [pool.submit(_drain, True) for _ in range(n - 1)]
            done = _drain(False)
            for fut in workers:
                done.update(fut.result())
        return [done[i] for i in range(len(thunks))]
    finally:
        _THUNKS, _PORTABLE, _NEXT = (), None, None

"""Independent pieces of work in forked worker processes (docs/model.md §9.4, §10.6).

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

# the callables of the running `fork_map` and its `portable` conversion, read by the forked
# workers
_THUNKS: Sequence[Callable[[], Any]] = ()
_PORTABLE: Callable[[Any], Any] | None = None


def _run(i: int) -> Any:
    result = _THUNKS[i]()
    return result if _PORTABLE is None else _PORTABLE(result)


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
    jobs − 1 forked workers. The workers take the callables from the front; this process,
    instead of waiting, runs those no worker has started yet, from the back. A result computed
    in a worker goes through `portable` (when given) before it is pickled back, e.g. to drop
    what cannot be pickled; a result computed here is returned as it is. Everything runs here
    when one job is asked for, there is at most one callable, or the platform cannot fork (the
    callables' closures cannot be handed over otherwise)."""
    global _THUNKS, _PORTABLE
    n = min(default_jobs() if jobs is None else jobs, len(thunks))
    if n <= 1 or not can_fork():
        return [f() for f in thunks]
    _THUNKS, _PORTABLE = thunks, portable
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n - 1, mp_context=ctx) as pool:
            futures = [pool.submit(_run, i) for i in range(len(thunks))]
            results: list[Any] = [None] * len(thunks)
            here = [False] * len(thunks)
            for i in reversed(range(len(thunks))):
                if futures[i].cancel():  # not handed to a worker yet: run it here
                    results[i], here[i] = thunks[i](), True
            for i, fut in enumerate(futures):
                if not here[i]:
                    results[i] = fut.result()
            return results
    finally:
        _THUNKS, _PORTABLE = (), None

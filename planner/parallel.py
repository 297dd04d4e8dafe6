"""Independent pieces of work in forked worker processes (docs/model.md §9.4, §10.6).

`fork_map` runs zero-argument callables in a process pool whose workers are forked from this
process, so the callables and everything they close over (a scenario with its instance
tables, a search result with its predictions) reach the workers without pickling; only the
results travel back. The results are returned in the callables' order, so the outcome is the
same for any number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# the callables of the running `fork_map`, read by the forked workers by index
_THUNKS: Sequence[Callable[[], Any]] = ()


def _run(i: int) -> Any:
    return _THUNKS[i]()


def default_jobs() -> int:
    """Worker processes when not told: the CPU count (`os.cpu_count()`, 1 if unknown)."""
    return os.cpu_count() or 1


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def fork_map(thunks: Sequence[Callable[[], T]], jobs: int | None = None) -> list[T]:
    """[f() for f in thunks], in up to `jobs` forked processes (None: `default_jobs()`); in
    this process when one job is asked for, there is at most one callable, or the platform
    cannot fork (the callables' closures cannot be handed over otherwise)."""
    global _THUNKS
    n = min(default_jobs() if jobs is None else jobs, len(thunks))
    if n <= 1 or not can_fork():
        return [f() for f in thunks]
    _THUNKS = thunks
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            return list(pool.map(_run, range(len(thunks))))
    finally:
        _THUNKS = ()

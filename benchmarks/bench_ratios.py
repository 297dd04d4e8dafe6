"""Issue 18's speed targets as ratios to the import floor: `python benchmarks/bench_ratios.py`.

One run measures, as subprocesses (process start included):

- the import floor: `python -c "import numpy, scipy.optimize, scipy.stats, rich, pydantic, typer,
  yaml"` — what any command of this stack pays before it does anything;
- the default `ecoplan plan` (all sections);
- a 1024-GPU plan (`benchmarks/l20-1024.yaml`: the default scenario on 128 nodes × 8 L20);
- goodput-mode `ecoplan simulate` of the default scenario with the default `--jobs` (the CPU
  count), once (it takes tens of seconds).

The first three are the best of three runs taken in turns.

It prints each wall time and its ratio to the floor; with `--out FILE --label NAME` it also
records them as the row NAME of the table in FILE (benchmarks/RESULTS.md), replacing a row of the
same name. Targets (issue 18): default plan ≤ 1.5×, 1024-GPU plan ≤ 2.5×, simulate ≤ 10×.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIG_PLAN = HERE / "l20-1024.yaml"
FLOOR_IMPORTS = "import numpy, scipy.optimize, scipy.stats, rich, pydantic, typer, yaml"
TABLE_START = "<!-- bench_ratios table -->"
HEADER = (
    "| run | floor | default plan | 1024-GPU plan | simulate (goodput) | cores |\n"
    "|---|---|---|---|---|---|"
)
TARGETS = {"default plan": 1.5, "1024-GPU plan": 2.5, "simulate (goodput)": 10.0}


def wall_s(args: list[str], cwd: Path) -> float:
    """Wall time of one subprocess run (it must succeed)."""
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=cwd)
    return time.perf_counter() - t0


def measure(repeats: int, simulate: bool, jobs: int | None) -> dict[str, float]:
    """Wall times (s) of the floor and the three cases, the best of `repeats` runs taken in
    turns (floor, plan, 1024-GPU plan, floor, …) so that a slow spell of a shared host weighs
    on all of them; simulate runs once, and is skipped when asked; `jobs` is passed as --jobs
    (None: the commands' default, the CPU count)."""
    py = sys.executable
    ecoplan = [py, "-m", "planner"]
    opt = [] if jobs is None else ["--jobs", str(jobs)]
    cases = {
        "floor": [py, "-c", FLOOR_IMPORTS],
        "default plan": [*ecoplan, "plan", "--out", "a.md", *opt],
        "1024-GPU plan": [*ecoplan, "plan", str(BIG_PLAN), "--out", "b.md", *opt],
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        times = {case: math.inf for case in cases}
        for _ in range(repeats):
            for case, args in cases.items():
                times[case] = min(times[case], wall_s(args, tmp))
        if simulate:
            sim = [*ecoplan, "simulate", "--format", "json", *opt]
            times["simulate (goodput)"] = wall_s(sim, tmp)
    return times


def row(label: str, times: dict[str, float]) -> str:
    floor = times["floor"]
    cells = [label, f"{floor:.2f} s"]
    for case in TARGETS:
        t = times.get(case)
        cells.append("—" if t is None else f"{t:.2f} s ({t / floor:.1f}×)")
    cells.append(str(os.cpu_count()))
    return "| " + " | ".join(cells) + " |"


def record(path: Path, label: str, line: str) -> None:
    """Put `line` as the row `label` of the table after TABLE_START in `path` (created at the end
    of the file when missing)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if TABLE_START not in text:
        text = text.rstrip("\n") + f"\n\n{TABLE_START}\n{HEADER}\n"
    head, tail = text.split(TABLE_START, 1)
    lines = tail.split("\n")
    end = 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    rows = [r for r in lines[3:end] if not r.startswith(f"| {label} |")]
    table = [lines[0], *HEADER.split("\n"), *rows, line]
    path.write_text(head + TABLE_START + "\n".join(table) + "\n" + "\n".join(lines[end:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="record the row in this markdown file")
    ap.add_argument("--label", default="run", help="the row's name in the table")
    ap.add_argument("--repeats", type=int, default=3, help="runs per plan case (best is kept)")
    ap.add_argument("--no-simulate", action="store_true", help="skip the simulate case")
    ap.add_argument("--jobs", type=int, help="--jobs for every command (default: theirs)")
    args = ap.parse_args()
    times = measure(args.repeats, not args.no_simulate, args.jobs)
    floor = times["floor"]
    print(f"import floor: {floor:.2f} s")
    for case, target in TARGETS.items():
        if case in times:
            ratio = times[case] / floor
            verdict = "ok" if ratio <= target else "over"
            print(f"{case}: {times[case]:.2f} s = {ratio:.2f}× (target ≤ {target}×: {verdict})")
    if args.out is not None:
        record(args.out, args.label, row(args.label, times))


if __name__ == "__main__":
    main()

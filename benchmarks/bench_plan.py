"""Wall time of `ecoplan plan` (process start included): `python benchmarks/bench_plan.py`.

Runs the default scenario (32×L20, with and without the sensitivity, KV-policy and ramp
sections) and a 256-GPU cluster (32 nodes × 8 L20) as subprocesses, three times each, and prints
the best and median wall time.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIG = """cluster: {gpu: l20, nodes: 32, gpus_per_node: 8, network: {bandwidth_gbit: 10}}
model: codellama-34b
workload: {preset: sharegpt}
"""


def wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    exe = [sys.executable, "-m", "planner"]
    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "big.yaml"
        big.write_text(BIG)
        cases = {
            "default (32 GPUs)": [*exe, "plan", "--out", f"{d}/a.md"],
            "default, --no-sensitivity": [*exe, "plan", "--no-sensitivity", "--out", f"{d}/c.md"],
            "256 GPUs": [*exe, "plan", str(big), "--out", f"{d}/b.md"],
        }
        for name, args in cases.items():
            times = [wall(args) for _ in range(3)]
            print(f"{name}: best {min(times):.2f} s, median {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()

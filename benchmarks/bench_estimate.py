"""Time the roofline model: `python benchmarks/bench_estimate.py`."""

from __future__ import annotations

import time

import numpy as np

from planner import catalog
from planner.perf import InstancePerf


def main() -> None:
    gpu = catalog.load_gpu("l20")
    perf = InstancePerf(catalog.load_model("codellama-34b"), gpu, gpu.intra_node, tp=4)
    batches = np.arange(1, 513)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        perf.decode_step(batches, 1024)
    dt = (time.perf_counter() - t0) / n
    print(f"decode_step over 512 batch sizes: {dt * 1e3:.2f} ms per call")


if __name__ == "__main__":
    main()

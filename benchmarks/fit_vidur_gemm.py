"""Fit the GEMM predictor's parameters (docs/model.md §2.2) to Microsoft Vidur's published
operator profiles, and report the fit error.

Usage: python benchmarks/fit_vidur_gemm.py VIDUR_CHECKOUT [GPU ...]

VIDUR_CHECKOUT is a clone of github.com/microsoft/vidur (the shipped figures used commit
7d47513); its data/profiling/compute/<gpu>/<org>/<model>/mlp.csv files hold the median time of
each linear layer of one transformer block (fp16, sharded per TP degree) for 1..4096 tokens.
The fit is least squares on log time of the QKV, output, MLP-up and MLP-down GEMMs over every
model, TP degree and token count, with the GPU's datasheet peak and bandwidth; the model is
time = max(2MKN / (peak · plateau · M/(M + knee)), bytes / (bandwidth · weight_efficiency),
floor). Nothing from Vidur is shipped: only the fitted numbers, cited in the GPU profiles.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

PEAK_TFLOPS = {"a100": 312.0, "h100": 989.0, "a40": 149.7}  # dense FP16 tensor, datasheets
BANDWIDTH_GB_S = {"a100": 2039.0, "h100": 3350.0, "a40": 696.0}
OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")


def gemm_rows(root: Path, gpu: str) -> np.ndarray:
    """(M, K, N, seconds) of every profiled GEMM."""
    rows = []
    for path in sorted((root / "data/profiling/compute" / gpu).glob("*/*/mlp.csv")):
        with path.open() as fh:
            for r in csv.DictReader(fh):
                tp = int(r["num_tensor_parallel_workers"])
                h, f = int(r["n_embd"]), int(r["n_expanded_embd"])
                nq, nkv = int(r["n_head"]), int(r["n_kv_head"])
                d = h // nq
                gated = r["use_gated_mlp"].lower() == "true"
                shapes = {
                    "attn_pre_proj": (h, (nq + 2 * nkv) * d / tp),
                    "attn_post_proj": (nq * d / tp, h),
                    "mlp_up_proj": (h, (2 if gated else 1) * f / tp),
                    "mlp_down_proj": (f / tp, h),
                }
                m = float(r["num_tokens"])
                for op in OPS:
                    k, n = shapes[op]
                    rows.append((m, k, n, float(r[f"time_stats.{op}.median"]) * 1e-3))
    return np.array(rows)


def predict(params: np.ndarray, data: np.ndarray, gpu: str) -> np.ndarray:
    plateau, knee, weights_eff, floor_us = params
    m, k, n = data[:, 0], data[:, 1], data[:, 2]
    eff = plateau * m / (m + knee)
    t_c = 2 * m * k * n / (PEAK_TFLOPS[gpu] * 1e12 * eff)
    t_m = (k * n + m * (k + n)) * 2 / (BANDWIDTH_GB_S[gpu] * 1e9 * weights_eff)
    return np.maximum(t_c, t_m) + floor_us * 1e-6


def fit(root: Path, gpu: str) -> None:
    data = gemm_rows(root, gpu)
    t = data[:, 3]
    res = least_squares(
        lambda p: np.log(predict(p, data, gpu)) - np.log(t),
        x0=[0.75, 64.0, 0.8, 5.0],
        bounds=([0.2, 1.0, 0.3, 0.0], [1.0, 4096.0, 1.0, 50.0]),
    )
    err = predict(res.x, data, gpu) / t - 1
    plateau, knee, weights_eff, floor_us = res.x
    print(
        f"{gpu}: plateau {plateau:.3f}, knee {knee:.0f} tokens, weight efficiency "
        f"{weights_eff:.3f}, floor {floor_us:.1f} µs over {len(t)} GEMMs; |error| median "
        f"{np.median(np.abs(err)):.1%}, p90 {np.percentile(np.abs(err), 90):.1%}"
    )
    for lo, hi in ((1, 64), (64, 512), (512, 4097)):
        sel = (data[:, 0] >= lo) & (data[:, 0] < hi)
        print(f"   M in [{lo}, {hi}): median |error| {np.median(np.abs(err[sel])):.1%}")


if __name__ == "__main__":
    checkout = Path(sys.argv[1])
    for g in sys.argv[2:] or ["a100", "h100", "a40"]:
        fit(checkout, g)

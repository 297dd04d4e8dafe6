"""KV-cache allocation policies (DESIGN.md §1; EcoServe multi-resource, arXiv 2411.06364).

What a decoding request holds in the KV cache, on average over its decode life:
  paged      — on demand (vLLM): its context, prompt + tokens generated so far; when the cache
               is full the newest request is preempted and later recomputed.
  max        — prompt + the maximum output (max_tokens, at which outputs stop), reserved at
               admission: no preemption, but the reservation is held for the whole life.
  predicted  — prompt + a predicted output length (the true length times a lognormal error of
               the given CV), reserved at admission; a request that outgrows its prediction
               grows on demand (and may be preempted), so it holds max(prediction, context).
  predicted+pipelining — as predicted, but the reserved-but-unused tail of a reservation is
               lent to short requests that finish before the lender needs it. We take the
               lendable part as half of the unused tail (the half the lender reaches last):
               the request holds its context plus half its unused reservation.
The decode batch the cache holds is KV tokens ÷ the mean held tokens per request, weighted by
decode length (requests that decode longer are in the batch longer).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import special

from planner.model import LIMITS

KVPolicyName = Literal["paged", "max", "predicted", "predicted+pipelining"]
KV_POLICIES: tuple[KVPolicyName, ...] = ("paged", "max", "predicted", "predicted+pipelining")
LEND_SHARE = 0.5  # share of an unused reservation tail that pipelining can lend


class KVPolicy(BaseModel):
    """How requests reserve KV-cache memory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: KVPolicyName = Field(
        default="paged",
        description="how a request reserves KV memory: paged (on demand, preempted when the "
        "cache is full), max (prompt + max_output_tokens at admission), predicted (prompt + a "
        "predicted output), predicted+pipelining (predicted, lending unused reservation tails); "
        "default paged",
    )
    max_output_tokens: int | None = Field(
        default=None,
        ge=1,
        le=LIMITS["max_context"],
        description="max_tokens for `max` (1..16,777,216, the longest model context); default: "
        "the output p99.9",
    )
    prediction_cv: float = Field(
        default=0.3,
        ge=0,
        le=5,
        allow_inf_nan=False,
        description="coefficient of variation of the output-length predictor's lognormal error "
        "(0..5; `predicted` policies); default 0.3",
    )

    @property
    def reserves(self) -> bool:
        return self.policy != "paged"


def predicted_outputs(out: np.ndarray, cv: float, u: np.ndarray) -> np.ndarray:
    """Predicted output lengths: out·exp(σ·z − σ²/2) with σ² = ln(1 + cv²), z = Φ⁻¹(u) (mean-
    unbiased lognormal error)."""
    if cv <= 0:
        return out.astype(float)
    sig = float(np.sqrt(np.log1p(cv * cv)))
    z = special.ndtri(np.clip(u, 1e-9, 1 - 1e-9))
    return np.maximum(np.rint(out * np.exp(sig * z - sig * sig / 2.0)), 1.0)


def reserved_output_tokens(policy: KVPolicy, max_out: float, pred: np.ndarray) -> np.ndarray:
    """Output tokens each request reserves at admission beyond its prompt: none under paged,
    max_tokens under max, its predicted output under the predicted policies."""
    if policy.policy == "paged":
        return np.zeros(pred.shape)
    if policy.policy == "max":
        return np.full(pred.shape, float(max_out))
    return pred.astype(float)


def held_tokens(
    policy: KVPolicy,
    inp: np.ndarray,
    out: np.ndarray,
    max_out: float,
    pred: np.ndarray,
    cached: np.ndarray | None = None,
) -> np.ndarray:
    """Time-average KV tokens each request holds while decoding (see the module docstring),
    less the `cached` prompt tokens it shares from the prefix cache (held once per instance,
    not per request: docs/model.md §7.1)."""
    if cached is not None:
        return held_tokens(policy, inp, out, max_out, pred) - cached
    inp = inp.astype(float)
    out = out.astype(float)
    context = inp + out / 2.0
    if policy.policy == "paged":
        return context
    if policy.policy == "max":
        return inp + max_out  # outputs stop at max_tokens, so the reservation always suffices
    res = reserved_output_tokens(policy, max_out, pred)
    # max(res, g) averaged over g uniform in [0, out]: res when res ≥ out, else (res² + out²)/2out
    over = np.where(res >= out, res, (res**2 + out**2) / (2.0 * np.maximum(out, 1.0)))
    held = inp + over
    if policy.policy == "predicted+pipelining":
        held = held - LEND_SHARE * (held - context)
    return held

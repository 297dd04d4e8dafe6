"""Which model predicts which strategy (the only module that imports every strategy model)."""

from __future__ import annotations

from planner.strategies import fudg, nodg, padg
from planner.strategies.base import Model

MODELS: dict[str, Model] = {
    "vllm": nodg.vllm,
    "sarathi": nodg.sarathi,
    "distserve": fudg.distserve,
    "mooncake": fudg.mooncake,
    "ecoserve": padg.ecoserve,
}

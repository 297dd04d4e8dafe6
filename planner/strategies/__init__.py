"""Strategy models behind one interface: predict latencies at a rate, and find goodput."""

from planner.strategies.base import (
    FAMILY,
    STRATEGIES,
    Deployment,
    Goodput,
    Prediction,
    Scenario,
    goodput,
    predict,
)

__all__ = [
    "FAMILY",
    "STRATEGIES",
    "Deployment",
    "Goodput",
    "Prediction",
    "Scenario",
    "goodput",
    "predict",
]

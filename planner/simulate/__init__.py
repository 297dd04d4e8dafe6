"""Discrete-event reference simulator of the five strategies (docs/model.md §10)."""

from planner.simulate.results import SimResult
from planner.simulate.run import simulate

__all__ = ["SimResult", "simulate"]

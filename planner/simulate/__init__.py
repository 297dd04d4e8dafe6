"""Discrete-event reference simulator of the five strategies (DESIGN.md §3)."""

from planner.simulate.results import SimResult
from planner.simulate.run import simulate

__all__ = ["SimResult", "simulate"]

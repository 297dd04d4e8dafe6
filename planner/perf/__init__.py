"""Roofline performance model: operator times, communication, memory, phase latencies."""

from planner.perf.memory import MemoryPlan, plan_memory
from planner.perf.phases import InstancePerf, PhaseTime

__all__ = ["InstancePerf", "MemoryPlan", "PhaseTime", "plan_memory"]

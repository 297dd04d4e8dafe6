"""Lazy imports (issue 18): the plan and simulate paths load none of the heavy modules they do
not use, so every command starts in about the stack's import floor."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy.optimize", "scipy.stats", "scipy.integrate", "matplotlib")


def test_plan_and_simulate_paths_skip_heavy_modules() -> None:
    """scipy.optimize (0.15 s: our own Brent's method replaces brentq), scipy.stats and the
    plotting library stay unloaded by the CLI and the plan, search and simulation modules."""
    code = (
        "import sys\n"
        "import planner.cli, planner.pipeline, planner.search, planner.sensitivity\n"
        "import planner.simulate.goodput, planner.crosscheck.evaluate, planner.report.markdown\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_plan_path_loads_no_simulator_and_no_json_writer() -> None:
    """`ecoplan plan` (tables) loads neither the simulator nor the JSON document builder: each
    module loaded is also compiled where PYTHONDONTWRITEBYTECODE keeps no bytecode."""
    code = (
        "import sys\n"
        "import planner.cli, planner.pipeline, planner.report\n"
        "mods = ('planner.simulate', 'planner.report.json_doc', 'planner.crosscheck')\n"
        "print(','.join(m for m in mods if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

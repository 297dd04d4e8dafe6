"""The executable's quick exit (`cli.main`): whole output, the right exit codes, exit handlers
run, with and without ECOPLAN_DEBUG (which keeps the ordinary interpreter exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], debug: bool, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ECOPLAN_DEBUG", None)
    if debug:
        env["ECOPLAN_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


@pytest.mark.parametrize("debug", [False, True])
def test_output_is_whole_and_exit_codes_hold(debug: bool, tmp_path: Path) -> None:
    ok = _run(["profiles", "list", "--format", "json"], debug, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["schema_version"] >= 1  # flushed to the last byte
    bad = _run(["plan", "missing.yaml"], debug, tmp_path)
    assert bad.returncode == 2
    assert bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1


def test_exit_handlers_still_run(tmp_path: Path) -> None:
    """Handlers registered with atexit (coverage tools, logging) run before the quick exit."""
    mark = tmp_path / "ran"
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(lambda: pathlib.Path({str(mark)!r}).write_text('yes'))\n"
        "sys.argv = ['ecoplan', 'profiles', 'list']\n"
        "from planner.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ECOPLAN_DEBUG"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert mark.read_text() == "yes"

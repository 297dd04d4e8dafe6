from __future__ import annotations

from pathlib import Path

import pytest

from planner import catalog
from planner.hardware import GPU
from planner.model import ModelSpec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def l20() -> GPU:
    return catalog.load_gpu("l20")


@pytest.fixture(scope="session")
def codellama() -> ModelSpec:
    return catalog.load_model("codellama-34b")

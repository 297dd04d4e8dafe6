"""`ecoplan schema`: a JSON Schema (draft 2020-12) with an identity, in which every property
of every model says what it is, written atomically with --out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from planner.cli import app
from planner.config import SCHEMA_DIALECT, SCHEMA_ID, plan_json_schema

from .conftest import EXAMPLES, REPO

runner = CliRunner()


def _properties(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) under `node`, nested inline objects included."""
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            if key != "properties":
                yield from _properties(value, f"{where}/{key}")
            else:
                for name, prop in value.items():
                    yield from _properties(prop, f"{where}.{name}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{where}[{i}]")


def test_every_property_is_described() -> None:
    schema = plan_json_schema()
    found = dict(_properties(schema, "#"))
    defs = schema["$defs"]
    # every model of the plan file, nested ones included, is in $defs
    for model in ("ClusterSpec", "Network", "IntraNodeLink", "GPU", "GemmEfficiency"):
        assert model in defs
    for model in ("ModelSpec", "LengthSpec", "Arrivals", "SLOSpec", "Objective", "SearchSpec"):
        assert model in defs
    for model in ("DeploymentSpec", "KVPolicy", "RampSpec", "EngineSpec", "ProfileModelRef"):
        assert model in defs
    assert len(found) > 100
    missing = [path for path, prop in found.items() if not str(prop.get("description", "")).strip()]
    assert not missing, missing


def test_schema_has_dialect_and_id() -> None:
    res = runner.invoke(app, ["schema"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["$schema"] == SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == SCHEMA_ID and SCHEMA_ID.startswith("https://")
    assert list(doc)[:2] == ["$schema", "$id"]


def test_schema_out_writes_valid_json(tmp_path: Path) -> None:
    out = tmp_path / "plan.schema.json"
    res = runner.invoke(app, ["schema", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text()) == plan_json_schema()
    assert str(out) in res.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left"


def test_schema_out_bad_path_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["schema", "--out", str(tmp_path / "missing" / "s.json")])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: --out")


def test_schema_is_a_valid_2020_12_schema_for_every_example() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = plan_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message)
    bad = validator.iter_errors({"cluster": {"nodes": 0}})
    assert any("nodes" in str(e.path) or e.validator == "minimum" for e in bad)


def test_readme_shows_the_language_server_line() -> None:
    readme = (REPO / "README.md").read_text()
    assert "# yaml-language-server: $schema=./plan.schema.json" in readme
    assert "ecoplan schema --out plan.schema.json" in readme

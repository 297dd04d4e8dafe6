"""Reading YAML safely and turning validation failures into one clear line."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import PlannerError

M = TypeVar("M", bound=BaseModel)


def parse_yaml_text(text: str, where: str) -> Any:
    """yaml.safe_load with syntax errors reported as `where:line:col: reason`."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise PlannerError(f"{where}{pos}: YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise PlannerError(f"{where}: YAML error: {exc}") from None


def read_yaml_file(path: Path) -> Any:
    """Read and parse a YAML file; missing or unreadable files are a PlannerError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlannerError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlannerError(f"{path}: cannot read: {exc}") from None
    return parse_yaml_text(text, str(path))


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _known_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names valid at `loc` (the parent of an unknown key), walking nested models."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (
            isinstance(current, type) and issubclass(current, BaseModel)
        ):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def describe_validation_error(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    """The first validation problem as one line: `where: field.path: reason`."""
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        valid = _known_fields(model, loc[:-1])
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{where}: {_loc(loc)}: unknown key{hint}"
    msg = str(err.get("msg", "invalid value"))
    value = err.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        msg = f"must be a finite number, got {value}"
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {_loc(loc)}: {msg}"


def validate(model: type[M], data: Any, where: str) -> M:
    """model.model_validate with errors turned into a PlannerError of one line."""
    if data is None:
        raise PlannerError(f"{where}: file is empty")
    if not isinstance(data, dict):
        raise PlannerError(f"{where}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PlannerError(describe_validation_error(exc, model, where)) from None

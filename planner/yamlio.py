"""Reading YAML safely and turning validation failures into one clear line.

Every message built here is one short line: user text (keys, values, paths) is clipped and
numbers are printed %g-style, so a hostile input cannot produce a screenful of error.
"""

from __future__ import annotations

import difflib
import math
import types
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Tag, ValidationError

from planner.errors import PlannerError

M = TypeVar("M", bound=BaseModel)

MAX_TEXT = 80  # longest piece of user text (a key, a value, a path) quoted in a message
MAX_MESSAGE = 300  # longest message


def clip(text: object, limit: int = MAX_TEXT) -> str:
    """`text` as a string of at most `limit` characters (an ellipsis marks a cut), one line."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def fmt_value(value: object) -> str:
    """A user value for an error message: numbers %g-style, everything else clipped."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, int):
        if abs(value) < 10**12:
            return str(value)
        if abs(value) < 10**300:
            return f"{float(value):g}"
        return f"{'-' if value < 0 else ''}10^{int(abs(value).bit_length() * math.log10(2))}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    text = clip(value, 40)
    try:
        float(text)
    except ValueError:
        return repr(text)
    return text  # a number YAML read as a string (e.g. 1e300, which has no dot)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that repeats a key (plain YAML would silently keep the last value)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader whose mappings reject repeated keys; merge keys (`<<`) may still be
    overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it below
                    continue
                if first is not None:
                    raise DuplicateKeyError(
                        None,
                        None,
                        f"duplicate key {fmt_value(key)} (first given on line {first + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml_text(text: str, where: str) -> Any:
    """yaml.safe_load, except that repeated keys are an error, with syntax errors reported as
    `where:line:col: reason`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise PlannerError(f"{where}{pos}: {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        pos = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise PlannerError(f"{where}{pos}: YAML syntax error: {clip(exc.problem, 120)}") from None
    except yaml.YAMLError as exc:
        raise PlannerError(f"{where}: YAML error: {clip(exc, 120)}") from None
    except RecursionError:
        raise PlannerError(f"{where}: YAML nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise PlannerError(f"{where}: YAML value error: {clip(exc, 120)}") from None


MAX_INPUT_BYTES = 64 << 20  # plan files, profiles and configs are small; /dev/zero is not


def read_text_file(path: Path, what: str = "file") -> str:
    """The UTF-8 text of a plan, profile or config file, read up to MAX_INPUT_BYTES (so a device
    or an endless pipe cannot exhaust memory; /dev/stdin still works); missing, unreadable or
    oversized files are a PlannerError."""
    where = clip(path, 120)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise PlannerError(f"{where}: {what} not found") from None
    except IsADirectoryError:
        raise PlannerError(f"{where}: is a folder, not a {what}") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise PlannerError(f"{where}: cannot read: {clip(reason, 120)}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise PlannerError(f"{where}: larger than the {MAX_INPUT_BYTES >> 20} MiB input limit")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlannerError(f"{where}: cannot read: not UTF-8 text ({exc.reason})") from None


def read_yaml_file(path: Path) -> Any:
    """Read and parse a YAML file; missing, unreadable or oversized files are a PlannerError."""
    return parse_yaml_text(read_text_file(path), clip(path, 120))


# ---- validation errors ----------------------------------------------------------------------


def _strip_annotated(tp: Any) -> tuple[Any, list[Any]]:
    meta: list[Any] = []
    while get_origin(tp) is Annotated:
        args = get_args(tp)
        tp, meta = args[0], meta + list(args[1:])
    return tp, meta


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _step(tp: Any, part: int | str) -> tuple[Any, bool]:
    """The type found at `part` inside `tp`, and whether `part` is a location the user wrote
    (a union's tag, added by pydantic, is not)."""
    tp, _ = _strip_annotated(tp)
    if _is_union(tp):
        members = [_strip_annotated(m) for m in get_args(tp)]
        for inner, meta in members:  # a tagged union: pydantic puts the tag in the location
            if any(isinstance(x, Tag) and x.tag == part for x in meta):
                return inner, False
        for inner, _ in members:
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                if isinstance(part, str) and part in inner.model_fields:
                    return _step(inner, part)
            elif inner is not type(None) and get_origin(inner) is not None:
                return _step(inner, part)
        return None, True
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part)) if isinstance(part, str) else None
        return (field.annotation if field is not None else None), True
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return (args[0] if args else None), True
    if origin is dict and args:
        return args[1], True
    return None, True


def _resolve(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[list[int | str], Any]:
    """The location as the user wrote it (union tags dropped) and the type at its end."""
    current: Any = model
    clean: list[int | str] = []
    for part in loc:
        if current is None:
            clean.append(part)
            continue
        current, written = _step(current, part)
        if written:
            clean.append(part)
    return clean, current


def _loc(loc: list[int | str] | tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + clip(part, 40)
    return out or "(top level)"


def _known_fields(tp: Any) -> list[str]:
    """Field names of the model type `tp` (or of the models in a union)."""
    tp, _ = _strip_annotated(tp)
    members = [_strip_annotated(m)[0] for m in get_args(tp)] if _is_union(tp) else [tp]
    names: list[str] = []
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel):
            names += [n for n in m.model_fields if n not in names]
    return names


_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}


def _message(err: Any) -> str:
    """A short reason for one pydantic error."""
    kind = err.get("type", "")
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {fmt_value(value)}"
    if kind in ("finite_number",):
        return f"must be a finite number, got {fmt_value(value)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{words} {fmt_value(ctx.get(key))}, got {fmt_value(value)}"
    if kind in ("too_long", "too_short"):
        what = "at most" if kind == "too_long" else "at least"
        n = ctx.get("max_length" if kind == "too_long" else "min_length")
        return f"needs {what} {n} items"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind in ("int_parsing", "float_parsing", "bool_parsing", "int_from_float") or (
        kind.endswith("_type") and value is not None
    ):
        msg += f", got {fmt_value(value)}"
    return clip(msg, MAX_MESSAGE - 40)


def describe_validation_error(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    """The first validation problem as one line: `where: field.path: reason`."""
    where = clip(where, 120)
    errors = exc.errors()
    err = errors[0]
    if err.get("type") == "missing":  # a misspelt key shows as missing + unknown: name the typo
        parent = tuple(err.get("loc", ()))[:-1]
        err = next(
            (
                e
                for e in errors
                if e.get("type") == "extra_forbidden" and tuple(e.get("loc", ()))[:-1] == parent
            ),
            err,
        )
    raw = tuple(err.get("loc", ()))
    loc, _ = _resolve(model, raw)
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        _, parent = _resolve(model, raw[:-1])
        valid = _known_fields(parent) if raw[:-1] else list(model.model_fields)
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{where}: {_loc(loc)}: unknown key{hint}"
    return clip(f"{where}: {_loc(loc)}: {_message(err)}", MAX_MESSAGE)


def validate(model: type[M], data: Any, where: str) -> M:
    """model.model_validate with errors turned into a PlannerError of one line."""
    where = clip(where, 120)
    if data is None:
        raise PlannerError(f"{where}: file is empty")
    if not isinstance(data, dict):
        raise PlannerError(f"{where}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PlannerError(describe_validation_error(exc, model, where)) from None
    except RecursionError:
        raise PlannerError(f"{where}: nested too deeply") from None


__all__ = [
    "DuplicateKeyError",
    "clip",
    "describe_validation_error",
    "fmt_value",
    "parse_yaml_text",
    "read_text_file",
    "read_yaml_file",
    "validate",
]

"""Reading a scenario: TOML file, `--set` overrides, schema validation, trace rows, checks.

`load_scenario` reads a file; `parse_scenario` validates a mapping. Both raise
`ScenarioError` naming the file, the field path and what was expected.
"""
from __future__ import annotations

import csv
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from .checks import coherence_problems
from .cost import CostError, read_price_table
from .operations import Demand
from .overrides import apply_overrides, check_depth, too_deep
from .schema import Scenario, ScenarioError, SetCapacityAction, Trace, clip

_ABSENT = object()  # a key the input does not have


def _data_path(data: Any, loc: tuple) -> list[str]:
    """The error's location as a path through the input: drops the elements pydantic adds
    for tagged unions and validators (they name no key of the input), and stops at a value
    that stands for a table (a number written for a fixed duration)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else _ABSENT
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, str) and (
                part.startswith("function-") or part in node.values()):
            continue  # a union tag (e.g. the action's value) or a validator wrapper
        elif node is not _ABSENT and not isinstance(node, Mapping):
            break
        else:
            node = _ABSENT
        path.append(str(part))
    return path


def _problems(err: ValidationError, data: Any) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        loc = _data_path(data, e["loc"])
        msg = e["msg"]
        ctx = e.get("ctx", {})
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the scenario format; see README 'Scenario format')"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown {ctx.get('discriminator', '').strip(chr(39))} " \
                  f"{clip(repr(ctx.get('tag')), 60)}; " \
                  f"expected one of {ctx.get('expected_tags')}"
        elif e["type"] == "string_pattern_mismatch":
            msg = "expected letters, digits, '.', '_' or '-', starting with a letter or digit"
        elif e["type"] == "union_tag_not_found":
            msg = (f"expected a table with {ctx.get('discriminator', '').strip(chr(39))} = ..."
                   if "action" in ctx.get("discriminator", "") else
                   "expected a number of minutes (fixed) or a table with kind = "
                   "'fixed' | 'exponential' | 'lognormal' | 'empirical'")
        elif e["type"] in ("model_attributes_type", "model_type", "dict_type"):
            msg = "expected a table"
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        got = e.get("input")
        if e["type"] not in ("extra_forbidden", "missing", "value_error", "union_tag_invalid",
                             "union_tag_not_found") \
                and not isinstance(got, (dict, list)):
            msg = f"{msg} (got {clip(repr(got), 60)})"
        out.append((".".join(loc), msg))
    return out


def parse_scenario(data: Mapping[str, Any] | Scenario, source: str = "<scenario>",
                   base_dir: Path | None = None) -> Scenario:
    """Validate a mapping (or pass a Scenario through); raise ScenarioError on any problem."""
    if isinstance(data, Scenario):
        return data
    check_depth(data, source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(source, _problems(err, data)) from None
    if scenario.trace is not None or any(m.trace for m in scenario.fleet):
        base_dir = base_dir or Path(".")
        update: dict[str, Any] = {}
        if scenario.trace is not None:
            update["timeline"] = list(scenario.timeline) + _read_trace(
                scenario.trace, "trace.file", source, base_dir)
            update["trace"] = None
        update["fleet"] = [m.model_copy(update={
            "timeline": list(m.timeline) + _read_trace(m.trace, f"fleet.{i}.trace.file", source,
                                                       base_dir), "trace": None})
            if m.trace else m for i, m in enumerate(scenario.fleet)]
        scenario = scenario.model_copy(update=update)
    if scenario.cost is not None and scenario.cost.price_table is not None:
        try:
            cost = read_price_table(scenario.cost, base_dir or Path("."))
        except CostError as err:
            raise ScenarioError(source, [(err.field, str(err))]) from None
        scenario = scenario.model_copy(update={"cost": cost})
    if scenario.demand is not None and scenario.demand.file is not None:
        scenario = scenario.model_copy(update={"demand": _read_demand(
            scenario.demand, source, base_dir or Path("."))})
    problems = coherence_problems(scenario)
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _read_trace(t: Trace, where: str, source: str, base_dir: Path) -> list[SetCapacityAction]:
    """The trace's rows as set_capacity actions; a bad file is a ScenarioError at `where`."""
    rows = _read_columns(t.file, (t.time_column, t.capacity_column), int, "a whole capacity",
                         where, source, base_dir, "CSV trace")
    return [SetCapacityAction(at_min=at, action="set_capacity", capacity=cap) for at, cap in rows]


def _read_demand(d: Demand, source: str, base_dir: Path) -> Demand:
    """The demand trace with its file read into `points`."""
    rows = _read_columns(d.file, (d.time_column, d.demand_column), float, "a demand",
                         "demand.file", source, base_dir, "CSV demand trace")
    return d.model_copy(update={"file": None, "points": rows})


def _read_columns(file: str, columns: tuple[str, str], value: type, what: str, where: str,
                  source: str, base_dir: Path, kind: str) -> list[tuple[float, Any]]:
    """(time, value) rows of a CSV's two named columns, each >= 0 and finite; a bad file is a
    ScenarioError at `where`.

    Messages quote the column names expected and found and the offending values of those
    columns, never other content: a trace may point at a file that is not a trace at all."""
    path = base_dir / file
    text = read_text(path, source, where, kind)
    rows: list[tuple[float, Any]] = []
    reader = csv.DictReader(text.splitlines())
    time_col, value_col = columns
    try:
        cols = reader.fieldnames or []
        for col in columns:
            if col not in cols:
                raise ScenarioError(source, [(where, f"{path}: expected a column {col!r}; found "
                                                     f"{_column_names(cols)}")])
        for line, row in enumerate(reader, start=2):
            raw_at, raw_v = row[time_col], row[value_col]
            try:
                at, v = float(raw_at), value(raw_v)
                if at < 0 or v < 0 or not (math.isfinite(at) and math.isfinite(v)):
                    raise ValueError
            except (TypeError, ValueError):
                raise ScenarioError(source, [(where, (
                    f"{path}, line {line}: expected a time >= 0 in {time_col!r} and {what} >= 0 "
                    f"in {value_col!r}, got {clip(repr(raw_at), 40)} and "
                    f"{clip(repr(raw_v), 40)}"))]) from None
            rows.append((at, v))
    except csv.Error as err:  # a field past the csv module's limit, a NUL byte, ...
        raise ScenarioError(source, [(where, f"{path}, line {reader.line_num + 1}: not a CSV line "
                                             f"({type(err).__name__}: {clip(str(err), 60)})")]
                            ) from None
    if not rows:
        raise ScenarioError(source, [(where, f"{path}: no rows")])
    return rows


def _column_names(cols: list[str]) -> str:
    """The header's names, if it is a header: a file that is not a CSV is not quoted back."""
    names = [c for c in cols if isinstance(c, str) and _COLUMN_NAME.fullmatch(c)]
    if not names or len(names) < len(cols):
        return "no such column (the first line is not a header of column names)"
    return ", ".join(repr(c) for c in names[:10]) + (", ..." if len(names) > 10 else "")


_COLUMN_NAME = re.compile(r"[A-Za-z_][\w .()%-]{0,39}")

#: Largest scenario or trace file read (a resource bound; both are text a person edits).
MAX_INPUT_BYTES = 10_000_000


def read_text(path: Path, source: str, where: str, kind: str) -> str:
    """A UTF-8 text file (a byte-order mark is allowed), or a ScenarioError at `where`."""
    if not path.is_file():
        raise ScenarioError(source, [(where, f"{kind} file {str(path)!r} not found")])
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise ScenarioError(source, [(where, f"{path}: {size:,} bytes; expected a {kind} file "
                                             f"of at most {MAX_INPUT_BYTES:,} bytes")])
    try:
        return path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as err:
        raise ScenarioError(source, [(where, f"{path}: unreadable ({err}); expected a UTF-8 "
                                             f"{kind} file")]) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = read_text(path, str(path), "", "TOML scenario")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), [("", f"not valid TOML: {err}")]) from None
    except RecursionError:  # nested past the parser's stack, so past MAX_DEPTH too
        raise too_deep(str(path)) from None
    check_depth(data, str(path))
    return data


def load_scenario(path: str | Path, overrides: list[str] | None = None,
                  assignments: list[tuple[str, Any]] = ()) -> Scenario:
    """Read, override and validate a scenario file; the name defaults to the file's stem.

    `overrides` are `--set` texts; `assignments` are (dotted path, value) pairs (a sweep's cell).
    """
    path = Path(path)
    data = read_toml(path)
    data = apply_overrides(data, overrides or [], assignments)
    data.setdefault("name", path.stem)
    return parse_scenario(data, source=str(path), base_dir=path.parent)

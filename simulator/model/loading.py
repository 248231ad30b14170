"""Reading a scenario: TOML file, `--set` overrides, schema validation, trace rows, checks.

`load_scenario` reads a file; `parse_scenario` validates a mapping. Both raise
`ScenarioError` naming the file, the field path and what was expected.
"""
from __future__ import annotations

import csv
import math
import tomllib
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from .checks import coherence_problems
from .cost import CostError, read_price_table
from .overrides import apply_overrides
from .schema import Scenario, ScenarioError, SetCapacityAction, Trace


def _data_path(data: Any, loc: tuple) -> list[str]:
    """The error's location as a path through the input: drops the elements pydantic adds
    for tagged unions and validators (they name no key of the input)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, str) and (
                part.startswith("function-") or part in node.values()):
            continue  # a union tag (e.g. the action's value) or a validator wrapper
        else:
            node = None
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
            msg = f"unknown {ctx.get('discriminator', '').strip(chr(39))} {ctx.get('tag')!r}; " \
                  f"expected one of {ctx.get('expected_tags')}"
        elif e["type"] == "string_pattern_mismatch":
            msg = "expected letters, digits, '.', '_' or '-', starting with a letter or digit"
        elif e["type"] == "union_tag_not_found":
            msg = (f"expected a table with {ctx.get('discriminator', '').strip(chr(39))} = ..."
                   if "action" in ctx.get("discriminator", "") else
                   "expected a number of minutes (fixed) or a table with kind = "
                   "'fixed' | 'exponential' | 'lognormal' | 'empirical'")
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        got = e.get("input")
        if e["type"] not in ("extra_forbidden", "missing", "value_error", "union_tag_invalid",
                             "union_tag_not_found") \
                and not isinstance(got, (dict, list)):
            msg = f"{msg} (got {got!r})"
        out.append((".".join(loc), msg))
    return out


def parse_scenario(data: Mapping[str, Any] | Scenario, source: str = "<scenario>",
                   base_dir: Path | None = None) -> Scenario:
    """Validate a mapping (or pass a Scenario through); raise ScenarioError on any problem."""
    if isinstance(data, Scenario):
        return data
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
    problems = coherence_problems(scenario)
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _read_trace(t: Trace, where: str, source: str, base_dir: Path) -> list[SetCapacityAction]:
    """The trace's rows as set_capacity actions; a bad file is a ScenarioError at `where`."""
    path = base_dir / t.file
    if not path.is_file():
        raise ScenarioError(source, [(where, f"trace file {str(path)!r} not found")])
    rows: list[SetCapacityAction] = []
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's export may start with a BOM
    except (UnicodeDecodeError, OSError) as err:
        raise ScenarioError(source, [(where, f"{path}: unreadable ({err}); expected a UTF-8 CSV")]
                            ) from None
    reader = csv.DictReader(text.splitlines())
    cols = reader.fieldnames or []
    for col in (t.time_column, t.capacity_column):
        if col not in cols:
            raise ScenarioError(source, [(where, f"{path}: expected a column {col!r}; "
                                                 f"found {cols}")])
    for line, row in enumerate(reader, start=2):
        try:
            at = float(row[t.time_column])
            cap = int(row[t.capacity_column])
            if at < 0 or cap < 0 or not math.isfinite(at):
                raise ValueError
        except (TypeError, ValueError):
            raise ScenarioError(source, [(where, f"{path}, line {line}: expected a time >= 0 "
                                                 f"and a whole capacity >= 0, got {dict(row)}")]) from None
        rows.append(SetCapacityAction(at_min=at, action="set_capacity", capacity=cap))
    if not rows:
        raise ScenarioError(source, [(where, f"{path}: no rows")])
    return rows


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(str(path), [("", "file not found")])
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), [("", f"not valid TOML: {err}")]) from None
    except (UnicodeDecodeError, OSError) as err:
        raise ScenarioError(str(path), [("", f"unreadable ({err}); expected a UTF-8 TOML file")]
                            ) from None


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

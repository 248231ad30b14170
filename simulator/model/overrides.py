"""`--set path=value` overrides, and the two arms of `compare` written as overrides.

Overrides edit the raw mapping before validation, so an override is checked exactly as the
same value written in the file would be.
"""
from __future__ import annotations

import copy
import tomllib
from typing import Any

from .schema import Scenario, ScenarioError

POLICY_KEYS = ("scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled",
               "scale_set.resiliencyPolicy.resilientVMDeletionPolicy.enabled")


def compare_arms(scenario: Scenario) -> tuple[list[str], list[str], tuple[str, str]]:
    """The two arms of `compare`: the scenario's [compare] table, else Resilient create and
    delete on versus off (in every scale set of a fleet)."""
    if scenario.compare is not None:
        return list(scenario.compare.a), list(scenario.compare.b), scenario.compare.labels
    prefixes = [f"fleet.{i}." for i in range(len(scenario.fleet))] or [""]
    return ([f"{p}{k}=true" for p in prefixes for k in POLICY_KEYS],
            [f"{p}{k}=false" for p in prefixes for k in POLICY_KEYS],
            ("resilient on", "resilient off"))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a","b","c"], value), the value read as a TOML value if it is one."""
    if "=" not in text:
        raise ScenarioError("--set", [(text, "expected path.to.key=value")])
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ScenarioError("--set", [(key, "expected a dotted path such as faults.create.VMStartTimedOut")])
    return path, toml_value(raw, "--set", key)


def toml_value(text: str, source: str, where: str) -> Any:
    """A value given on the command line, read as a TOML value if it is one (`0.2`, `true`,
    `"text"`, `[1, 2]`), else the text itself."""
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()
    except RecursionError:  # nested past the parser's stack, so past MAX_DEPTH too
        raise too_deep(source, where) from None
    check_depth(value, source, where)
    return value


#: How deep tables and arrays may nest in a scenario (its format needs 8 levels).
MAX_DEPTH = 32


def check_depth(data: Any, source: str, where: str = "") -> None:
    """Refuse tables and arrays nested deeper than MAX_DEPTH (checked level by level, without
    recursion, before anything recursive, such as validation or a deep copy, sees them)."""
    level, depth = [data], 0
    while level := [c for v in level for c in
                    (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())]:
        depth += 1
        if depth > MAX_DEPTH:
            raise too_deep(source, where)


def too_deep(source: str, where: str = "") -> ScenarioError:
    return ScenarioError(source, [(where, f"tables and arrays nested more than {MAX_DEPTH} "
                                          "levels deep; expected the scenario format (README "
                                          "'Scenario format')")])


def apply_overrides(data: dict[str, Any], overrides: list[str],
                    assignments: list[tuple[str, Any]] = ()) -> dict[str, Any]:
    """A copy of the raw mapping with each `path=value` text and each (path, value) set.

    List items are addressed by index; tables on the way are created as needed."""
    data = copy.deepcopy(data)
    for path, value in [parse_override(t) for t in overrides] + [
            (p.split("."), v) for p, v in assignments]:
        _assign(data, path, copy.deepcopy(value))
    return data


def _assign(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for i, part in enumerate(path):
        where = ".".join(path[:i + 1])
        last = i == len(path) - 1
        if isinstance(node, list):
            try:
                index = int(part)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            except (ValueError, IndexError):
                raise ScenarioError("--set", [(where, f"no such list item (the list has "
                                                      f"{len(node)})")]) from None
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ScenarioError("--set", [(".".join(path[:i]), "is a value, not a table or list")])

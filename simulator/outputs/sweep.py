"""Sweeps: every cell of a grid of `--set` overrides, run on shared workers, resumable.

Every cell uses the same seed, so replication r of any two cells sees the same random
numbers: a cell rerun alone (`vmss-sim run FILE --set ...` with that seed) gives the same
figures, and cells that differ only in policy are compared under common random numbers.
Each cell is saved (atomically) as soon as its last replication finishes; running the same
command again skips saved cells whose fingerprint (values, seed, replications, resolved
scenario) matches, so a killed sweep resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..engine.runner import Collector, chunks, execute
from ..model.loading import load_scenario
from ..model.schema import Scenario, ScenarioError
from .folders import atomic_dir, check_output_dir, scenario_record

Grid = dict[str, list[Any]]


@dataclass(frozen=True, eq=False)
class Cell:
    """One point of the grid: a value for each swept key, and how each shows in a column
    (a table value, e.g. a duration distribution, shows as its JSON text)."""

    values: tuple[tuple[str, Any], ...]
    labels: tuple[Any, ...]

    @property
    def key(self) -> str:
        text = json.dumps(self.values, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def scenario(self, file: str | Path, overrides: list[str]) -> Scenario:
        """The cell's scenario: the file, the common overrides, then the cell's values."""
        return load_scenario(file, overrides, list(self.values))


def parse_grid(specs: list[str]) -> Grid:
    """`path=v1,v2,...` (each value a TOML literal, else a string, or a range
    `start:stop:step`) -> {path: [values]}."""
    grid: Grid = {}
    for spec in specs:
        if "=" not in spec or not spec.split("=", 1)[1]:
            raise ScenarioError("--grid", [(spec, "expected path.to.key=v1,v2,...")])
        path, raw = (part.strip() for part in spec.split("=", 1))
        if path in grid:
            raise ScenarioError("--grid", [(path, "given twice; expected each key once, with "
                                                  "all its values")])
        values = []
        for item in (part.strip() for part in raw.split(",")):
            expanded = _grid_range(path, item)
            values += [_grid_value(item)] if expanded is None else expanded
        grid[path] = values
    return check_grid(grid, "--grid")


MAX_RANGE_VALUES = 1000


def _grid_value(item: str) -> Any:
    try:
        return tomllib.loads(f"v = {item}")["v"]
    except tomllib.TOMLDecodeError:
        return item


def _grid_range(path: str, item: str) -> list[Any] | None:
    """`start:stop:step` -> start, start + step, ... up to stop, stop included when it falls on
    the step. Counted in decimals, so 0:0.3:0.1 gives 0, 0.1, 0.2, 0.3 (not 0.30000000000000004);
    whole numbers stay whole. None when the item is not three numbers."""
    parts = item.split(":")
    if len(parts) != 3:
        return None
    try:
        start, stop, step = (Decimal(p.strip()) for p in parts)
    except InvalidOperation:
        return None
    if not all(v.is_finite() for v in (start, stop, step)) or step <= 0 or stop < start:
        raise ScenarioError("--grid", [(path, f"{item!r}: expected start:stop:step with "
                                              "step > 0 and stop >= start")])
    count = int((stop - start) / step) + 1
    if count > MAX_RANGE_VALUES:
        raise ScenarioError("--grid", [(path, f"{item!r} gives {count:,} values; expected at "
                                              f"most {MAX_RANGE_VALUES:,}")])
    whole = all(v == v.to_integral_value() and "." not in p and "e" not in p.lower()
                for v, p in zip((start, stop, step), parts))
    return [int(start + k * step) if whole else float(start + k * step) for k in range(count)]


def check_grid(grid: Grid, source: str) -> Grid:
    """Each key's values must differ: two equal cells would be one cell run twice."""
    for path, values in grid.items():
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen):
            raise ScenarioError(source, [(path, f"repeats a value in {values}; expected distinct "
                                                "values")])
    return grid


def resolve_grid(file: str | Path, overrides: list[str], specs: list[str]) -> Grid:
    """The grid to sweep: `--grid` specs, else the scenario's `[sweep.grid]` table."""
    grid = parse_grid(specs)
    if not grid:
        scenario = load_scenario(file, overrides)
        grid = check_grid(dict(scenario.sweep.grid), str(file)) if scenario.sweep else {}
    if not grid:
        raise ScenarioError(str(file), [("sweep.grid", "nothing to sweep: give --grid "
                                                       "path=v1,v2 or a [sweep.grid] table")])
    return grid


def grid_cells(grid: Grid) -> list[Cell]:
    keys = list(grid)
    textual = {k for k, values in grid.items()
               if any(isinstance(v, (dict, list)) for v in values)}  # one type per column
    return [Cell(tuple(zip(keys, combo)),
                 tuple(json.dumps(v, sort_keys=True) if k in textual else v
                       for k, v in zip(keys, combo)))
            for combo in itertools.product(*grid.values())]


def fingerprint(cell: Cell, scenario: Scenario, seed: int, replications: int,
                keep_events: bool, keep_timeseries: bool = False) -> dict[str, Any]:
    return {"values": [list(v) for v in cell.values], "seed": seed, "replications": replications,
            "events": keep_events, "scenario": scenario_record(scenario),
            **({"timeseries": True} if keep_timeseries else {})}


def run_sweep(file: str | Path, grid: Grid, *, overrides: list[str] | None = None,
              replications: int = 100, seed: int = 0, out: Path, workers: int = 1,
              scheduler: str | None = None, keep_events: bool = False,
              keep_timeseries: bool = False, progress: Callable[[int], None] | None = None,
              on_skip: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Run (or resume) a sweep; return one summary row per replication of every cell.

    Every cell's scenario is validated before anything runs or is written.
    `keep_timeseries` saves each cell's capacity samples too (what `--at` reads).
    """
    overrides = overrides or []
    cells = grid_cells(check_grid(grid, "--grid"))
    scenarios = {cell: cell.scenario(file, overrides) for cell in cells}
    prints = {cell: fingerprint(cell, scenarios[cell], seed, replications, keep_events,
                                keep_timeseries) for cell in cells}
    cells_dir = check_output_dir(Path(out)) / "cells"  # made by the first saved cell
    pending = [c for c in cells if _saved_fingerprint(cells_dir / c.key) != prints[c]]
    if on_skip is not None:
        on_skip((len(cells) - len(pending)) * replications)
    parts = chunks(range(replications), max(workers, 1))
    jobs = [(cell, scenarios[cell], seed, part) for cell in pending for part in parts]
    collectors = {cell: Collector(scenarios[cell], seed, replications) for cell in pending}
    for cell, part, chunk in execute(jobs, keep_events=keep_events,
                                     keep_timeseries=keep_timeseries,
                                     workers=workers, scheduler=scheduler):
        collectors[cell].add(part, chunk)
        if progress is not None:
            progress(len(part))
        if len(collectors[cell].chunks) == len(parts):
            _save_cell(cells_dir / cell.key, collectors.pop(cell).result(), prints[cell])
    return sweep_table(out, cells)


def sweep_table(out: Path, cells: list[Cell], table: str = "summary") -> pd.DataFrame:
    """A table of every saved cell (`summary` fleet-wide, or `scale_sets`), grid values first."""
    return pd.concat([read_cell(Path(out) / "cells" / c.key, c, table) for c in cells],
                     ignore_index=True)


def _saved_fingerprint(folder: Path) -> dict[str, Any] | None:
    path = folder / "cell.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _save_cell(folder: Path, result, print_: dict[str, Any]) -> None:
    with atomic_dir(folder) as tmp:
        result.summary.to_parquet(tmp / "summary.parquet", index=False)
        result.scale_sets.to_parquet(tmp / "scale_sets.parquet", index=False)
        result.bands.to_parquet(tmp / "bands.parquet", index=False)
        if len(result.events):
            result.events.to_parquet(tmp / "events.parquet", index=False)
        if len(result.timeseries):
            result.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
        (tmp / "cell.json").write_text(json.dumps(print_, indent=1, default=str))


def read_cell(folder: Path, cell: Cell, table: str = "summary") -> pd.DataFrame:
    """A saved cell's table with the grid values as leading columns."""
    frame = pd.read_parquet(folder / f"{table}.parquet")
    for i, ((path, _), label) in enumerate(zip(cell.values, cell.labels)):
        frame.insert(i, path, label)
    frame.insert(len(cell.values), "cell", cell.key)
    return frame


def cell_count(grid: Grid) -> int:
    return math.prod(len(v) for v in grid.values())

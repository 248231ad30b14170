"""Sweeps: every cell of a grid of `--set` overrides, run on shared workers, resumable.

Every cell uses the same seed, so replication r of any two cells sees the same random
numbers: a cell rerun alone (`vmss-sim run FILE --set ...` with that seed) gives the same
figures, and cells that differ only in policy are compared under common random numbers.
Each cell is saved (atomically) as soon as its last replication finishes; running the same
command again skips saved cells whose fingerprint (values, seed, replications, resolved
scenario) matches, so a killed sweep resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import math
import os
import shutil
import warnings
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from ..engine.runner import SCHEDULER_TIMEOUT_S, Collector, cap_workers, chunks, execute
from ..model.loading import load_scenario
from ..model.overrides import toml_value
from ..model.schema import Scenario, ScenarioError, clip
from .folders import (
    OutputError,
    atomic_dir,
    check_output_dir,
    is_own_cell,
    read_manifest,
    read_table,
    remove_stale_temporaries,
    scenario_record,
)

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
            values += [toml_value(item, "--grid", path)] if expanded is None else expanded
        grid[path] = values
    return check_grid(grid, "--grid")


MAX_RANGE_VALUES = 1000


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


#: The columns of a sweep's tables besides the swept keys (a swept key cannot be one).
TABLE_COLUMNS = ("cell", "replication", "scale_set")


def check_grid(grid: Grid, source: str) -> Grid:
    """Each key's values must differ: two equal cells would be one cell run twice."""
    for path, values in grid.items():
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        if len(set(seen)) != len(seen):
            raise ScenarioError(source, [(path, f"repeats a value in {clip(str(values))}; "
                                                "expected distinct values")])
        if path in TABLE_COLUMNS:
            raise ScenarioError(source, [(path, "names a whole table that is also a column of "
                                                "the sweep's tables; expected a key inside it, "
                                                f"e.g. {path}.name")])
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
    textual = {k for k, values in grid.items()  # one type per column, one a column can hold
               if any(isinstance(v, (dict, list)) or isinstance(v, int) and not -2**63 <= v < 2**63
                      for v in values)}
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
              scheduler: str | None = None, scheduler_timeout: float = SCHEDULER_TIMEOUT_S,
              keep_events: bool = False, keep_timeseries: bool = False,
              progress: Callable[[int], None] | None = None,
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
    with hold_sweep_folder(out) as out:
        _claim(out, cells)
        cells_dir = out / "cells"  # made by the first saved cell
        pending = [c for c in cells if not _saved(cells_dir / c.key, prints[c])]
        if on_skip is not None:
            on_skip((len(cells) - len(pending)) * replications)
        workers = cap_workers(workers, scheduler)
        parts = chunks(range(replications), workers)
        jobs = [(cell, scenarios[cell], seed, part) for cell in pending for part in parts]
        collectors = {cell: Collector(scenarios[cell], seed, replications) for cell in pending}
        with closing(execute(jobs, keep_events=keep_events, keep_timeseries=keep_timeseries,
                             workers=workers, scheduler=scheduler,
                             scheduler_timeout=scheduler_timeout)) as results:
            for cell, part, chunk in results:
                collectors[cell].add(part, chunk)
                if progress is not None:
                    progress(len(part))
                if len(collectors[cell].chunks) == len(parts):
                    _save_cell(cells_dir / cell.key, collectors.pop(cell).result(), prints[cell])
        return sweep_table(out, cells)


_HELD: set[Path] = set()  # sweep folders this process holds: the CLI's hold covers run_sweep's


@contextlib.contextmanager
def hold_sweep_folder(out: Path) -> Iterator[Path]:
    """Hold `out` for this sweep alone, or raise OutputError at once if another sweep does.

    Two sweeps writing one folder would replace each other's cells mid-write, and a folder
    another sweep is writing holds temporaries that no check from outside could tell from a
    stranger's files: so the folder is locked first and checked after. The lock is
    flock on the folder itself: no lock file to leave behind, and the kernel releases it
    when the process ends, however it ends. A folder made here and left empty is removed.
    """
    out = Path(out)
    if out.resolve() in _HELD:
        yield out
        return
    if out.exists() and not out.is_dir():
        check_output_dir(out)  # raises, naming the file
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot be made ({err.strerror}); expected a folder to "
                          "write to") from None
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"{out}: another vmss-sim sweep is writing to this folder; wait "
                              "for it to end, or choose another --out") from None
        try:  # what the folder holds is judged under the lock: a sweep mid-write is no stranger
            out = check_output_dir(out)
        except OutputError:
            if made:
                out.rmdir()
            raise
        _HELD.add(out.resolve())
        try:
            yield out
        finally:
            _HELD.discard(out.resolve())
            if made:  # while still held, so as never to remove a folder another sweep holds
                with contextlib.suppress(OSError):
                    out.rmdir()  # only if nothing was written
    finally:
        os.close(fd)


#: what a sweep writes next to cells/, all made from the cells at the end of a sweep
SWEEP_OUTPUTS = ("manifest.json", "summary.parquet", "scale_sets.parquet", "sweep.md",
                 "sweep-*.png")


def _claim(out: Path, cells: list[Cell]) -> None:
    """Make `out` hold this grid's results only, before any cell runs.

    A folder that another command wrote (a run, a comparison) is refused. Of an earlier
    sweep, the cells outside this grid go, and so do the summary, report and plots (remade
    at the end); saved cells of this grid stay, to be resumed or reused.
    """
    info = read_manifest(out) if (out / "manifest.json").exists() else {"command": "sweep"}
    command = info.get("command") if isinstance(info, dict) else None
    if command != "sweep":
        what = (f"the output of `vmss-sim {command}`" if isinstance(command, str)
                else "a manifest.json that vmss-sim did not write")
        raise OutputError(f"{out}: holds {what}; a sweep writes only into a new or empty folder "
                          "or an earlier sweep's: choose another --out, or delete it")
    for pattern in SWEEP_OUTPUTS:
        for path in out.glob(pattern):
            path.unlink()
    keys = {cell.key for cell in cells}
    cells_dir = out / "cells"
    for folder in cells_dir.iterdir() if cells_dir.is_dir() else ():
        if folder.name not in keys and (folder / "cell.json").is_file():
            shutil.rmtree(folder)
    remove_stale_temporaries(cells_dir)


def sweep_table(out: Path, cells: list[Cell], table: str = "summary") -> pd.DataFrame:
    """A table of every saved cell (`summary` fleet-wide, or `scale_sets`), grid values first."""
    return pd.concat([read_cell(Path(out) / "cells" / c.key, c, table) for c in cells],
                     ignore_index=True)


def _saved(folder: Path, print_: dict[str, Any]) -> bool:
    """True if the cell was saved with this fingerprint and its tables read back. A damaged
    cell (cell.json or a table missing, truncated or corrupt) is recomputed, with a warning."""
    if not folder.exists():
        return False
    try:
        saved = json.loads((folder / "cell.json").read_text())
        for table in ("summary", "scale_sets"):
            read_table(folder / f"{table}.parquet")
        return saved == print_
    except (OSError, ValueError, RecursionError) as err:  # OutputError is a ValueError
        warnings.warn(f"sweep cell {folder} is damaged ({clip(str(err), 160)}); recomputing "
                      "it", stacklevel=2)
        return False


def _save_cell(folder: Path, result, print_: dict[str, Any]) -> None:
    with atomic_dir(folder, own=is_own_cell) as tmp:
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
    frame = read_table(folder / f"{table}.parquet")
    for i, ((path, _), label) in enumerate(zip(cell.values, cell.labels)):
        frame.insert(i, path, label)
    frame.insert(len(cell.values), "cell", cell.key)
    return frame


def cell_count(grid: Grid) -> int:
    return math.prod(len(v) for v in grid.values())

"""Run folders on disk: written atomically, read back by `resiliency-view` and notebooks.

A run folder holds events.parquet, summary.csv, timeseries.parquet, manifest.json, report.md
and the plots. It is assembled in a hidden sibling folder and renamed into place only when
complete, so an error or Ctrl-C leaves either the previous folder or nothing. A kill leaves
the hidden folder too, named so that the next write to the same place removes it.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import socket
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from ..analysis.observed_log import event_column_problem
from ..engine.records import EVENT_COLUMNS, SAMPLE_COLUMNS
from ..engine.chunk import events_frame
from ..model.loading import parse_scenario
from ..model.schema import Scenario

DISTRIBUTION = "vmss-resilience-sim"  # the name pyproject.toml gives, for the version


class OutputError(ValueError):
    """An output path that vmss-sim must not write to (it would replace the user's files)."""


#: The files vmss-sim writes into a run, comparison or sweep folder; a sweep also writes a
#: `sweep-<key>.png` per swept key and its cells in `cells/<id>/`, and a gallery run holds its
#: comparison in `compare/` and, for a scenario with a `[sweep.grid]`, its policy matrix in
#: `matrix/`.
OUTPUT_FILES = frozenset({
    "manifest.json", "report.md", "summary.csv", "scale_sets.csv", "events.parquet",
    "timeseries.parquet", "capacity.png", "time_to_target.png", "failure_rates.png",
    "compare.md", "compare.csv", "compare_capacity.png", "summary_a.csv", "summary_b.csv",
    "summary.parquet", "scale_sets.parquet", "sweep.md", "cells.csv", "at.csv", "matrix.md",
    "matrix.csv", "matrix.png", "incidents.parquet", "incidents_a.parquet",
    "incidents_b.parquet", "plan.md", "plan.csv", "plan.json", "plan.png"})
#: The files of one sweep cell.
CELL_FILES = frozenset({"cell.json", "summary.parquet", "scale_sets.parquet", "bands.parquet",
                        "events.parquet"})
#: The `command` of every manifest vmss-sim writes.
COMMANDS = ("run", "compare", "sweep", "plan", "gallery", "gallery compare", "gallery matrix")
_SWEEP_PLOT = re.compile(r"sweep-[A-Za-z0-9-]*\.png")
_CELL_ID = re.compile(r"[0-9a-f]{12}")
_TEMPORARY = re.compile(r"\..+\.(tmp|old)(-.*)?")  # what atomic_dir and atomic_write leave


def is_own_output(folder: Path) -> bool:
    """True for a run, comparison or sweep folder that vmss-sim wrote and nothing else did:
    its manifest.json is one vmss-sim writes (or it is a sweep under way, with cells/), and
    every file in it is one vmss-sim writes. A name alone proves nothing."""
    entries = _entries(folder)
    marked = _own_manifest(folder / "manifest.json") or (folder / "cells").is_dir()
    return marked and all(_is_output(p) for p in entries)


def is_own_cell(folder: Path) -> bool:
    """A sweep's cell folder: only the files of a cell (a damaged one is recomputed)."""
    return all(p.is_file() and not p.is_symlink() and p.name in CELL_FILES
               for p in _entries(folder))


def is_own_gallery(folder: Path) -> bool:
    """The gallery folder: one vmss-sim run folder per scenario, nothing else."""
    return all(p.is_dir() and not p.is_symlink() and is_own_output(p) for p in _entries(folder))


def _is_output(p: Path) -> bool:
    if p.is_symlink():
        return False
    if p.is_dir() and p.name == "cells":
        return all(_CELL_ID.fullmatch(c.name) and c.is_dir() and is_own_cell(c)
                   for c in _entries(p))
    if p.is_dir():
        return p.name in ("compare", "matrix") and is_own_output(p)
    return p.name in OUTPUT_FILES or bool(_SWEEP_PLOT.fullmatch(p.name))


def _entries(folder: Path) -> list[Path]:
    """A folder's entries but vmss-sim's own temporaries (left by a killed run)."""
    return [p for p in folder.iterdir() if not _TEMPORARY.fullmatch(p.name)]


def _own_manifest(path: Path) -> bool:
    """A manifest.json as vmss-sim writes it: an object with its command, seed and replications."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return (isinstance(info, dict) and info.get("command") in COMMANDS
            and "seed" in info and "replications" in info)


def check_output_dir(target: Path, own: Callable[[Path], bool] = is_own_output) -> Path:
    """The folder to write to, refused (OutputError) unless it is new, empty, or an earlier
    output of vmss-sim that `own` recognises (it is then replaced). A symbolic link stands for
    the folder it points to. Checked before any work, so a refusal costs nothing."""
    target = _real(Path(target))
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is not a folder; expected a folder to write to")
    if target.is_dir() and any(target.iterdir()) and not own(target):
        raise OutputError(f"{target}: a folder with files vmss-sim did not write; expected a new "
                          "or empty folder, or an earlier output of vmss-sim (it is replaced)")
    if target.resolve() in (Path.cwd().resolve(), Path.home().resolve()):
        raise OutputError(f"{target}: expected a folder of its own, not the working or home folder")
    return target


def check_output_file(path: Path, signature: str) -> Path:
    """A file to write, refused (OutputError) unless it is new or an earlier output of vmss-sim:
    a file whose first 4,096 bytes hold `signature` (the header vmss-sim writes)."""
    path = _real(Path(path))
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; expected a file name")
    if path.exists():
        try:
            with path.open("rb") as fh:
                own = signature in fh.read(4096).decode("utf-8", "replace")
        except OSError:
            own = False
        if not own:
            raise OutputError(f"{path}: a file vmss-sim did not write; expected a new file, or "
                              "an earlier output of the same command (it is replaced)")
    return path


def _real(path: Path) -> Path:
    """The path to write to, checked before any work: a symbolic link stands for its target,
    and every folder on the way must be a folder that can be written in."""
    try:
        if path.is_symlink():
            path = path.resolve(strict=False)
    except (OSError, RuntimeError) as err:  # a loop of links
        raise OutputError(f"{path}: {err}; expected a file or folder path") from None
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{path}: {ancestor} is a file, not a folder; expected a path of folders")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write in {ancestor} (permission denied)")
    return path


@contextlib.contextmanager
def atomic_dir(target: Path, own: Callable[[Path], bool] = is_own_output) -> Iterator[Path]:
    """Yield a temporary folder that replaces `target` only if the block completes.

    Only a new or empty folder, or an earlier output of vmss-sim, is ever replaced; folders
    made on the way to it are removed again if the block fails."""
    target = check_output_dir(Path(target), own)
    made = [p for p in target.parents if not p.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent, target.name)
    tmp = own_temporary(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            old = own_temporary(target, "old")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in made if not target.exists() else ():
            with contextlib.suppress(OSError):
                folder.rmdir()


_HOST = socket.gethostname()


def own_temporary(target: Path, kind: str) -> Path:
    """A hidden name next to `target` for vmss-sim's temporary ("tmp") or replaced ("old")
    copy of it. It names the target, the host and the process, so that a later run can tell
    one that a killed process left (stale) from one being written, and from anything else."""
    return target.with_name(f".{target.name}.vmss-sim-{kind}-{_HOST}-{os.getpid()}-"
                            f"{secrets.token_hex(4)}")


def remove_stale_temporaries(folder: Path, name: str | None = None) -> None:
    """Remove what a vmss-sim process on this host, since killed (SIGKILL, a crash), left in
    `folder` for `name` (or for any name): names made by own_temporary whose process no
    longer runs. Nothing else is touched, nor a temporary of a process still running."""
    target = re.escape(name) if name is not None else ".+"
    own = re.compile(rf"\.{target}\.vmss-sim-(?:tmp|old)-{re.escape(_HOST)}-(\d+)-[0-9a-f]{{8}}")
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        match = own.fullmatch(entry.name)
        if match and not _running(int(match[1])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def scenario_record(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain data: trace rows are already in the timeline."""
    data = scenario.model_dump(mode="json", by_alias=True, exclude_none=True)
    data.pop("trace", None)
    if scenario.fleet:
        data.pop("scale_set", None)
        data.pop("timeline", None)
    return data


def manifest(scenario: Scenario, *, seed: int, replications: int, wall_time_s: float,
             **extra: Any) -> dict[str, Any]:
    return {
        "scenario": scenario_record(scenario),
        "seed": seed,
        "replications": replications,
        "package_version": version(DISTRIBUTION),
        "hypothetical": scenario.hypothetical,
        "platform_overrides": {k: v for k, v in scenario.platform.model_dump().items()
                               if v != type(scenario.platform)().model_dump()[k]},
        "wall_time_s": round(wall_time_s, 3),
        "python": platform.python_version(),
        **extra,
    }


def engine_record(*results) -> dict[str, Any]:
    """Which engine ran (one run, or each arm of a comparison) and why: the manifest's
    `engine` and `engine_note`."""
    engines = [r.engine for r in results]
    notes = [r.engine_note for r in results]
    if len(results) == 1:
        return {"engine": engines[0], "engine_note": notes[0]}
    return {"engine": dict(zip("AB", engines)), "engine_note": dict(zip("AB", notes))}


def write_run(result, out_dir: Path, info: dict[str, Any], *, parquet: bool = True,
              **report: Any) -> Path:
    """Write a run's files, its report and plots into `out_dir`, atomically.

    `parquet=False` leaves out the event log and samples (the gallery keeps only what reads);
    `report` goes to `report.write_report` (e.g. `at`, the `--at` minutes' table).
    """
    with atomic_dir(out_dir) as tmp:
        if parquet:
            result.events.to_parquet(tmp / "events.parquet", index=False)
        fill_run(result, tmp, info, samples=parquet, parquet=parquet, **report)
    return Path(out_dir)


def fill_run(result, folder: Path, info: dict[str, Any], *, samples: bool = True,
             parquet: bool = True, **report: Any) -> None:
    """Write all of a run's files but its event log into `folder`: that comes whole
    (write_run) or as the run goes (event_log, for `vmss-sim run`), and so do the samples
    (`samples=False`: sample_log wrote them); `parquet=False` leaves out incidents.parquet
    too (the gallery); `report` goes to `report.write_report` (e.g. `at`)."""
    from .report import write_report
    if samples:
        result.timeseries.to_parquet(folder / "timeseries.parquet", index=False)
    if parquet:
        result.incidents.to_parquet(folder / "incidents.parquet", index=False)
    result.summary.to_csv(folder / "summary.csv", index=False)
    if len(result.scale_sets) > len(result.summary):
        result.scale_sets.to_csv(folder / "scale_sets.csv", index=False)
    write_report(result, folder, **report)
    _write_json(folder / "manifest.json", info)


@contextlib.contextmanager
def parquet_log(path: Path, empty: pd.DataFrame) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A writer of a Parquet file that takes its rows a chunk at a time (a row group each),
    so that a run's memory does not grow with them (`simulate`'s on_events and on_samples).
    The file reads back as the frame kept whole would, and exists (as `empty`) even if no
    row came."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    writer: pq.ParquetWriter | None = None

    def write(frame: pd.DataFrame) -> None:
        nonlocal writer
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)

    try:
        yield write
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        empty.to_parquet(path, index=False)


def event_log(path: Path) -> contextlib.AbstractContextManager[Callable[[pd.DataFrame], None]]:
    """events.parquet, written as the run goes."""
    return parquet_log(path, events_frame([]))


def sample_log(path: Path) -> contextlib.AbstractContextManager[Callable[[pd.DataFrame], None]]:
    """timeseries.parquet, written as the run goes."""
    return parquet_log(path, pd.DataFrame(columns=list(SAMPLE_COLUMNS)))


def write_compare(a, b, labels: tuple[str, str], out_dir: Path, info: dict[str, Any], *,
                  parquet: bool = True, **report: Any) -> pd.DataFrame:
    """Write both arms' summaries, the paired comparison and its report, atomically
    (`parquet=False` leaves out the arms' incidents, as the gallery does; `report` goes to
    `compare_report.write_compare_report`, e.g. `at`)."""
    from .compare_report import results_table, write_compare_report
    with atomic_dir(out_dir) as tmp:
        a.summary.to_csv(tmp / "summary_a.csv", index=False)
        b.summary.to_csv(tmp / "summary_b.csv", index=False)
        for arm, r in (("a", a), ("b", b)) if parquet else ():
            r.incidents.to_parquet(tmp / f"incidents_{arm}.parquet", index=False)
        table = results_table(a, b)
        table.to_csv(tmp / "compare.csv", index=False)
        write_compare_report(a, b, labels, tmp, table=table, **report)
        _write_json(tmp / "manifest.json", info)
    return table


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")


def atomic_write(path: Path, content: str | Callable[[Path], Any]) -> Path:
    """Write a file (text, or by a function given the temporary path), then rename it into
    place, so a reader never sees half a file."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; expected a file name")
    remove_stale_temporaries(path.parent, path.name)
    tmp = own_temporary(path, "tmp")
    try:
        if callable(content):
            content(tmp)
        else:
            tmp.write_text(content)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise OutputError(f"{run_dir}: not a run folder (no manifest.json)")
    try:
        info = json.loads(path.read_text())
    except (ValueError, OSError, RecursionError) as err:
        raise OutputError(f"{path}: unreadable ({type(err).__name__}); expected the JSON "
                          "vmss-sim wrote") from None
    if not isinstance(info, dict):
        raise OutputError(f"{path}: a JSON {type(info).__name__}; expected the object vmss-sim "
                          "wrote")
    return info


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet file vmss-sim wrote, or OutputError if it is missing, truncated or corrupt."""
    try:
        return pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is a damaged file
        raise OutputError(f"{path}: unreadable ({type(err).__name__}); expected the Parquet "
                          "file vmss-sim wrote") from None


def read_run(run_dir: Path) -> tuple[Scenario, pd.DataFrame, dict[str, Any]]:
    """The scenario, the event log and the manifest of a `vmss-sim run` folder."""
    info = read_manifest(run_dir)
    events_path = Path(run_dir) / "events.parquet"
    if info.get("command") != "run" or "scenario" not in info or not events_path.is_file():
        raise OutputError(f"{run_dir}: not the folder of a `vmss-sim run` (it needs manifest.json "
                          "and events.parquet)")
    scenario = parse_scenario(info["scenario"], source=str(Path(run_dir) / "manifest.json"))
    events = read_table(events_path)
    problem = event_column_problem(events, EVENT_COLUMNS)
    if problem:
        raise OutputError(f"{events_path}: {problem}; expected the event log vmss-sim writes")
    return scenario, events, info

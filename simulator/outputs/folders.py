"""Run folders on disk: written atomically, read back by `resiliency-view` and notebooks.

A run folder holds events.parquet, summary.csv, timeseries.parquet, manifest.json, report.md
and the plots. It is assembled in a hidden sibling folder and renamed into place only when
complete, so an error or Ctrl-C leaves either the previous folder or nothing.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from ..model.loading import parse_scenario
from ..model.schema import Scenario

DISTRIBUTION = "vmss-resilience-sim"  # the name pyproject.toml gives, for the version


class OutputError(ValueError):
    """An output path that vmss-sim must not write to (it would replace the user's files)."""


#: Files that mark a folder as vmss-sim's own output, which a new run may replace.
OUTPUT_MARKERS = ("manifest.json", "cell.json", "cells")


def check_output_dir(target: Path) -> Path:
    """Refuse a target that is a file, or a folder with content vmss-sim did not write."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is not a folder; expected a folder to write to")
    if target.is_dir() and any(target.iterdir()) and not any(
            (target / m).exists() for m in OUTPUT_MARKERS):
        raise OutputError(f"{target}: a folder with files vmss-sim did not write; expected a new "
                          "or empty folder, or an earlier output of vmss-sim (it is replaced)")
    if target.resolve() == Path.cwd().resolve() or target.resolve() == Path.home().resolve():
        raise OutputError(f"{target}: expected a folder of its own, not the working or home folder")
    return target


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces `target` only if the block completes.

    Only a new or empty folder, or an earlier output of vmss-sim, is ever replaced."""
    target = check_output_dir(Path(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


def write_run(result, out_dir: Path, info: dict[str, Any], *, parquet: bool = True) -> Path:
    """Write a run's files, its report and plots into `out_dir`, atomically.

    `parquet=False` leaves out the event log and samples (the gallery keeps only what reads).
    """
    from .report import write_report
    with atomic_dir(out_dir) as tmp:
        if parquet:
            result.events.to_parquet(tmp / "events.parquet", index=False)
            result.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
            result.incidents.to_parquet(tmp / "incidents.parquet", index=False)
        result.summary.to_csv(tmp / "summary.csv", index=False)
        if len(result.scale_sets) > len(result.summary):
            result.scale_sets.to_csv(tmp / "scale_sets.csv", index=False)
        write_report(result, tmp)
        _write_json(tmp / "manifest.json", info)
    return Path(out_dir)


def write_compare(a, b, labels: tuple[str, str], out_dir: Path, info: dict[str, Any], *,
                  parquet: bool = True) -> pd.DataFrame:
    """Write both arms' summaries, the paired comparison and its report, atomically
    (`parquet=False` leaves out the arms' incidents, as the gallery does)."""
    from .compare_report import compare_table, write_compare_report
    with atomic_dir(out_dir) as tmp:
        a.summary.to_csv(tmp / "summary_a.csv", index=False)
        b.summary.to_csv(tmp / "summary_b.csv", index=False)
        for arm, r in (("a", a), ("b", b)) if parquet else ():
            r.incidents.to_parquet(tmp / f"incidents_{arm}.parquet", index=False)
        table = compare_table(a.summary, b.summary)
        table.to_csv(tmp / "compare.csv", index=False)
        write_compare_report(a, b, labels, tmp)
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
    tmp = path.with_name(f".{path.name}.tmp")
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
        return json.loads(path.read_text())
    except (ValueError, OSError) as err:
        raise OutputError(f"{path}: unreadable ({err}); expected the JSON vmss-sim wrote") from None


def read_run(run_dir: Path) -> tuple[Scenario, pd.DataFrame, dict[str, Any]]:
    """The scenario, the event log and the manifest of a `vmss-sim run` folder."""
    info = read_manifest(run_dir)
    events_path = Path(run_dir) / "events.parquet"
    if info.get("command") != "run" or "scenario" not in info or not events_path.is_file():
        raise OutputError(f"{run_dir}: not the folder of a `vmss-sim run` (it needs manifest.json "
                          "and events.parquet)")
    scenario = parse_scenario(info["scenario"], source=str(Path(run_dir) / "manifest.json"))
    return scenario, pd.read_parquet(events_path), info

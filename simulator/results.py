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
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from .scenario import Scenario, parse_scenario


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces `target` only if the block completes."""
    target = Path(target)
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
    from . import __version__
    return {
        "scenario": scenario_record(scenario),
        "seed": seed,
        "replications": replications,
        "package_version": __version__,
        "hypothetical": scenario.hypothetical,
        "platform_overrides": {k: v for k, v in scenario.platform.model_dump().items()
                               if v != type(scenario.platform)().model_dump()[k]},
        "wall_time_s": round(wall_time_s, 3),
        "python": platform.python_version(),
        **extra,
    }


def write_run(result, out_dir: Path, info: dict[str, Any],
              report: Callable[[Any, Path], Any] | None = None) -> Path:
    """Write a SimulationResult's files (and its report) into `out_dir`, atomically."""
    with atomic_dir(out_dir) as tmp:
        result.events.to_parquet(tmp / "events.parquet", index=False)
        result.timeseries.to_parquet(tmp / "timeseries.parquet", index=False)
        result.summary.to_csv(tmp / "summary.csv", index=False)
        if report is not None:
            report(result, tmp)
        (tmp / "manifest.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return Path(out_dir)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no manifest.json)")
    return json.loads(path.read_text())


def read_run(run_dir: Path) -> tuple[Scenario, pd.DataFrame, dict[str, Any]]:
    """The scenario, the event log and the manifest of a run folder."""
    info = read_manifest(run_dir)
    scenario = parse_scenario(info["scenario"], source=str(Path(run_dir) / "manifest.json"))
    events_path = Path(run_dir) / "events.parquet"
    if not events_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no events.parquet")
    return scenario, pd.read_parquet(events_path), info

"""The vmss-sim commands: parse, call, print. No logic of their own.

Every error a user can cause (a bad scenario, override, run folder or log) is printed as one
clear message with exit code 2, and nothing is written.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .analysis.observed_log import CalibrationError
from .engine.runner import SimulationResult, default_workers, simulate
from .model.loading import load_scenario
from .model.overrides import compare_arms
from .model.schema import ScenarioError
from .outputs.folders import OutputError, atomic_write, check_output_dir


class UsageError(Exception):
    """A bad argument the parser cannot see (a missing run folder, ...): exit code 2."""


def _count(text: str, least: int = 0) -> int:
    """An argparse type: a whole number >= least."""
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text}")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _positive(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


@contextmanager
def _progress(total: int, quiet: bool, desc: str) -> Iterator:
    """A tqdm bar on a terminal, shown only once a run has lasted a second."""
    from tqdm import tqdm
    with tqdm(total=total, desc=desc, unit="rep", delay=1.0, leave=False,
              disable=quiet or not sys.stderr.isatty()) as bar:
        yield bar.update


def _simulate(scenario, args: argparse.Namespace, desc: str) -> tuple[SimulationResult, float]:
    start = time.perf_counter()
    with _progress(args.replications, args.quiet, desc) as step:
        result = simulate(scenario, replications=args.replications, seed=args.seed,
                          workers=args.workers, scheduler=args.scheduler, progress=step)
    return result, time.perf_counter() - start


def _out(args: argparse.Namespace, default: Path) -> Path:
    """The output folder, checked before any work so a refusal costs nothing."""
    return check_output_dir(Path(args.out) if args.out else default)


def _cmd_validate(args: argparse.Namespace) -> int:
    from .outputs.sweep import grid_cells
    scenario = load_scenario(args.file, args.overrides)
    a_set, b_set, _ = compare_arms(scenario)  # the default arms and grid must load too
    for arm in (a_set, b_set):
        load_scenario(args.file, args.overrides + arm)
    if scenario.sweep is not None:
        for cell in grid_cells(dict(scenario.sweep.grid)):
            cell.scenario(args.file, args.overrides)
    members = scenario.members()
    actions = sum(len(m.timeline) for m in members)
    print(f"{args.file}: ok ({scenario.name}, {len(members)} scale set(s), {actions} timeline "
          f"actions, horizon {scenario.horizon_min:g} min"
          f"{', hypothetical' if scenario.hypothetical else ''})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .outputs.folders import manifest, write_run
    from .outputs.report import key_figures
    scenario = load_scenario(args.file, args.overrides)
    out = _out(args, Path("results") / scenario.name)
    result, wall = _simulate(scenario, args, scenario.name)
    info = manifest(scenario, seed=args.seed, replications=args.replications, wall_time_s=wall,
                    overrides=args.overrides, command="run")
    write_run(result, out, info)
    print(key_figures(result))
    print(f"\nwrote {out}/ (report.md, summary.csv, events.parquet, plots) in {wall:.1f} s")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from .outputs.folders import manifest, write_compare
    a_set, b_set, labels = compare_arms(load_scenario(args.file, args.overrides))
    if args.a or args.b:
        a_set, b_set, labels = args.a, args.b, ("A", "B")
    if args.labels:
        labels = tuple(args.labels.split(","))
        if len(labels) != 2:
            raise UsageError("--labels takes two labels separated by a comma")
    arm_a = load_scenario(args.file, args.overrides + a_set)
    arm_b = load_scenario(args.file, args.overrides + b_set)
    out = _out(args, Path("results") / f"{arm_a.name}-compare")
    a, wall_a = _simulate(arm_a, args, labels[0])
    b, wall_b = _simulate(arm_b, args, labels[1])
    info = manifest(arm_a, seed=args.seed, replications=args.replications,
                    wall_time_s=wall_a + wall_b, command="compare", labels=list(labels),
                    arm_a_overrides=args.overrides + a_set, arm_b_overrides=args.overrides + b_set)
    table = write_compare(a, b, labels, out, info)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"{labels[0]} (A) minus {labels[1]} (B), paired by replication "
              "(common random numbers), 95% CI:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nwrote {out}/")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .outputs.sweep import (
        cell_count,
        grid_cells,
        resolve_grid,
        run_sweep,
        sweep_table,
        write_sweep_outputs,
    )
    grid = resolve_grid(args.file, args.overrides, args.grid)
    scenario = load_scenario(args.file, args.overrides)
    out = _out(args, Path("results") / f"{scenario.name}-sweep")
    start = time.perf_counter()
    with _progress(cell_count(grid) * args.replications, args.quiet,
                   f"{cell_count(grid)} cells") as step:
        summary = run_sweep(args.file, grid, overrides=args.overrides,
                            replications=args.replications, seed=args.seed, out=out,
                            workers=args.workers, scheduler=args.scheduler,
                            keep_events=args.events, progress=step, on_skip=step)
    wall = time.perf_counter() - start
    cells = grid_cells(grid)
    info = {"command": "sweep", "scenario_name": scenario.name, "seed": args.seed,
            "replications": args.replications, "grid": grid, "overrides": args.overrides,
            "wall_time_s": round(wall, 3), "cells": [dict(c.values, cell=c.key) for c in cells]}
    scale_sets = sweep_table(out, cells, "scale_sets") if scenario.fleet else None
    write_sweep_outputs(summary, grid, out, info, scale_sets)
    atomic_write(out / "manifest.json", json.dumps(info, indent=2, default=str) + "\n")
    print(f"wrote {out}/ (summary.parquet, sweep.md, plots): {cell_count(grid)} cells x "
          f"{args.replications} replications in {wall:.1f} s")
    return 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    from .outputs.gallery import build_gallery
    files = sorted(Path(args.scenarios).glob("*.toml"))
    if not files:
        raise UsageError(f"{args.scenarios}: no scenario files (*.toml)")
    for path in files:  # every scenario must be valid before anything is rewritten
        load_scenario(path)
    start = time.perf_counter()
    with _progress(3 * len(files) * args.replications, args.quiet, "gallery") as step:
        index = build_gallery(Path(args.scenarios), Path(args.out), replications=args.replications,
                              seed=args.seed, workers=args.workers, progress=step)
    print(f"wrote {index} and {len(files)} scenarios' reports in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


def _cmd_validate_model(args: argparse.Namespace) -> int:
    from .analysis.validation import DEFAULT_SEED, format_table, run_validation
    table = run_validation(replications_scale=args.scale,
                           seed=DEFAULT_SEED if args.seed is None else args.seed)
    print(format_table(table))
    bad = int((table["verdict"] != "ok").sum())
    print(f"\n{len(table) - bad} of {len(table)} cases agree with their closed form "
          "(99% interval contains the exact value)")
    return 1 if bad else 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .analysis.calibrate import calibrate, to_toml
    from .analysis.observed_log import read_log
    fragment = to_toml(calibrate(read_log(args.log), incidents=args.incidents, alpha=args.alpha),
                       durations=args.durations)
    if args.out:
        print(f"wrote {atomic_write(Path(args.out), fragment)}")
    else:
        print(fragment, end="")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from .outputs.folders import read_run
    from .outputs.view import resiliency_view
    scenario, events, _ = read_run(Path(args.run_dir))
    if args.replication not in set(events["replication"].unique()):
        raise UsageError(f"{args.run_dir}: no replication {args.replication} in events.parquet")
    try:
        view = resiliency_view(events, scenario, args.at, args.replication, args.scale_set)
    except KeyError as err:
        raise UsageError(f"{args.run_dir}: {err.args[0]}; a fleet's view needs --scale-set") \
            from None
    print(json.dumps(view, indent=2))
    return 0


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. faults.create.OSProvisioningTimedOut=0.2")


def _add_repetition_args(p: argparse.ArgumentParser, replications: int, seed: int) -> None:
    p.add_argument("--replications", "-n", type=lambda t: _count(t, 1), default=replications,
                   help=f"default {replications}")
    p.add_argument("--seed", type=_count, default=seed, help=f"a whole number >= 0 (default {seed})")
    p.add_argument("--workers", "-w", type=lambda t: _count(t, 1), default=default_workers(),
                   help="local worker processes (default: all cores; 1 runs in-process)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    _add_repetition_args(p, replications=100, seed=0)
    p.add_argument("--out", help="output folder (default results/<scenario name>[-compare])")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed scheduler, e.g. tcp://127.0.0.1:8786")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmss-sim", description="Simulate Azure VM Scale Sets under Resilient create and "
                                     "delete: what-if runs, comparisons, sweeps and reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario; write events, summary, report and plots")
    _add_scenario_args(p)
    _add_run_args(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a scenario file (and --set overrides) and exit")
    _add_scenario_args(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("compare", help="two arms under common random numbers: paired differences")
    _add_scenario_args(p)
    _add_run_args(p)
    p.add_argument("--a", action="append", default=[], metavar="KEY=VALUE",
                   help="override for arm A (default: Resilient create and delete on)")
    p.add_argument("--b", action="append", default=[], metavar="KEY=VALUE",
                   help="override for arm B (default: Resilient create and delete off)")
    p.add_argument("--labels", help="two labels, comma-separated")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("sweep", help="run every cell of a grid of overrides (resumable)")
    _add_scenario_args(p)
    _add_run_args(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept key and its values (repeat for more keys); default: [sweep.grid]")
    p.add_argument("--events", action="store_true", help="keep every cell's full event log")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("validate-model",
                       help="compare the simulator with closed-form answers: a verdict per case")
    p.add_argument("--scale", type=_positive, default=1.0,
                   help="multiply every case's replications (default 1)")
    p.add_argument("--seed", type=_count, default=None)
    p.set_defaults(func=_cmd_validate_model)

    p = sub.add_parser("calibrate", help="estimate a fault model (TOML) from an observed log")
    p.add_argument("log", help="CSV or Parquet: one row per attempt, or an events.parquet")
    p.add_argument("--out", help="write the TOML fragment here (default: print it)")
    p.add_argument("--durations", choices=("lognormal", "empirical"), default="lognormal",
                   help="fitted lognormal (default) or the observed sample")
    p.add_argument("--no-incidents", dest="incidents", action="store_false",
                   help="do not look for incidents (periods of raised rates)")
    p.add_argument("--alpha", type=_probability, default=0.01,
                   help="chance of a false incident over the whole log (default 0.01)")
    p.set_defaults(func=_cmd_calibrate)

    from .outputs.gallery import GALLERY_REPLICATIONS, GALLERY_SEED
    p = sub.add_parser("gallery", help="regenerate results/: every bundled scenario's report, "
                                       "plots and policy comparison")
    p.add_argument("--scenarios", default="scenarios", help="folder of scenario files")
    p.add_argument("--out", default="results", help="results folder: writes gallery/ and README.md")
    _add_repetition_args(p, replications=GALLERY_REPLICATIONS, seed=GALLERY_SEED)
    p.set_defaults(func=_cmd_gallery)

    p = sub.add_parser("resiliency-view",
                       help="the VMs at a moment of a run, as GET ...?$expand=resiliencyView JSON")
    p.add_argument("run_dir", help="a folder written by vmss-sim run")
    p.add_argument("--at", type=_finite, required=True, metavar="MINUTE")
    p.add_argument("--replication", type=_count, default=0)
    p.add_argument("--scale-set", help="which scale set of a fleet (a single one needs none)")
    p.set_defaults(func=_cmd_view)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0), or a bad argument: argparse said why (2)
        return int(done.code or 0)
    try:
        return args.func(args)
    except (ScenarioError, UsageError, CalibrationError, OutputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a folder or file the OS refuses, a scheduler that does not answer
        where = f" (Dask scheduler {args.scheduler})" if getattr(args, "scheduler", None) else ""
        print(f"error{where}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

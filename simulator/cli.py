"""The vmss-sim commands: parse, call, print. No logic of their own.

Every error a user can cause (a bad scenario, override, run folder or log) is printed as one
clear message with exit code 2, and nothing is written. Only the standard library is imported
here: each command imports what it needs (pandas, matplotlib, simpy), so `vmss-sim --help`
answers at once. Output into a closed pipe (`vmss-sim ... | head`) ends quietly.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import arguments as A


class UsageError(Exception):
    """A bad argument the parser cannot see (a missing run folder, ...): exit code 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same cleanup runs (temporaries removed,
    workers stopped); the exit code is 128 + 15, as for a process the signal killed."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Handle SIGTERM by unwinding (main thread only: Python runs handlers there), then put
    back the caller's handler: main() may run inside a test or a notebook."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _progress(total: int | None, quiet: bool, desc: str) -> Iterator:
    """A tqdm bar on a terminal, shown only once a run has lasted a second."""
    from tqdm import tqdm
    with tqdm(total=total, desc=desc, unit="rep", delay=1.0, leave=False,
              disable=quiet or not sys.stderr.isatty()) as bar:
        yield bar.update


def _workers(args: argparse.Namespace) -> int:
    """--workers, at most one per core (said once on stderr); all cores by default."""
    from .engine.runner import default_workers
    cores = default_workers()
    if args.workers is None or getattr(args, "scheduler", None):
        return args.workers or cores
    if args.workers > cores:
        print(f"note: --workers {args.workers} is more than the {cores} cores available; "
              f"using {cores}", file=sys.stderr)
        args.workers = cores
    return args.workers


def _simulate(scenario, args: argparse.Namespace, desc: str, **options: Any):
    """(result, wall time of the simulation alone): the manifest records the latter."""
    from .engine.runner import simulate
    start = time.perf_counter()
    with _progress(args.replications, args.quiet, desc) as step:
        result = simulate(scenario, replications=args.replications, seed=args.seed,
                          workers=_workers(args), scheduler=args.scheduler,
                          scheduler_timeout=args.scheduler_timeout, progress=step,
                          engine=args.engine, **options)
    return result, time.perf_counter() - start


def _out(args: argparse.Namespace, default: Path) -> Path:
    """The output folder, checked before any work so a refusal costs nothing."""
    from .outputs.folders import check_output_dir
    return check_output_dir(Path(args.out) if args.out else default)


def _elapsed(args: argparse.Namespace) -> str:
    return f"{time.perf_counter() - args.started:.1f} s"  # the whole command, not just the run


def _base_overrides(args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """`--faults FILE` as overrides ahead of the `--set` ones, and what the manifest records."""
    if not getattr(args, "faults", None):
        return list(args.overrides), {}
    from .analysis.calibrate import read_fragment
    fragment, overrides = read_fragment(args.faults)
    return overrides + list(args.overrides), {"faults_file": args.faults, "faults": fragment}


def _check_at(args: argparse.Namespace, *scenarios) -> None:
    from .outputs.at_minutes import grid_problem
    problem = args.at is not None and grid_problem(scenarios, args.at)
    if problem:
        raise UsageError(problem)


def _check_engine(args: argparse.Namespace, *scenarios, keep_events: bool = True) -> dict:
    """Before any work: `--engine batch` on a scenario the batch engine does not cover is
    refused here (EngineError, exit 2), naming the feature. Returns the first scenario's
    `engine` and `engine_note` for its manifest."""
    from .engine.batch_coverage import EngineError, choose_engine
    try:
        chosen = [choose_engine(scenario, args.engine, keep_events) for scenario in scenarios]
    except EngineError as err:
        raise EngineError(f"{args.file}: {err}") from None
    return dict(zip(("engine", "engine_note"), chosen[0]))


def _print_at(at, lead: list[str] = (), names: list[str] | None = None) -> None:
    from .outputs.at_minutes import at_text
    print(f"\nCapacity at the minutes asked (means per run, 95% intervals):\n"
          f"{at_text(at, lead, names)}")


def _cmd_validate(args: argparse.Namespace) -> int:
    from .model.loading import load_scenario
    from .model.overrides import compare_arms
    from .outputs.sweep import grid_cells
    overrides, _ = _base_overrides(args)
    scenario = load_scenario(args.file, overrides)
    a_set, b_set, _ = compare_arms(scenario)  # the default arms and grid must load too
    for arm in (a_set, b_set):
        load_scenario(args.file, overrides + arm)
    if scenario.sweep is not None:
        for cell in grid_cells(dict(scenario.sweep.grid)):
            cell.scenario(args.file, overrides)
    members = scenario.members()
    actions = sum(len(m.timeline) for m in members)
    print(f"{args.file}: ok ({scenario.name}, {len(members)} scale set(s), {actions} timeline "
          f"actions, horizon {scenario.horizon_min:g} min"
          f"{', hypothetical' if scenario.hypothetical else ''}"
          f"{f', faults from {args.faults}' if args.faults else ''})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .model.loading import load_scenario
    from .outputs.at_minutes import report_minutes, result_at_table
    from .outputs.folders import atomic_dir, engine_record, event_log, fill_run, manifest
    from .outputs.folders import sample_log
    from .outputs.report import key_figures
    overrides, faults = _base_overrides(args)
    scenario = load_scenario(args.file, overrides)
    _check_at(args, scenario)
    _check_engine(args, scenario)
    out = _out(args, Path("results") / scenario.name)
    with atomic_dir(out) as tmp:
        # events and samples are written as the run goes and only the samples the report
        # reads are kept: memory does not grow with them
        with event_log(tmp / "events.parquet") as events, \
                sample_log(tmp / "timeseries.parquet") as samples:
            result, wall = _simulate(scenario, args, scenario.name, on_events=events,
                                     on_samples=samples,
                                     keep_timeseries=report_minutes(scenario, args.at))
        info = manifest(scenario, seed=args.seed, replications=args.replications,
                        wall_time_s=wall, overrides=args.overrides, command="run", **faults,
                        **engine_record(result))
        at = None if args.at is None else result_at_table(result, args.at, args.goal)
        fill_run(result, tmp, info, samples=False, at=at)
    print(key_figures(result))
    if at is not None:
        _print_at(at)
    print(f"\nwrote {out}/ (report.md, summary.csv, events.parquet, plots"
          f"{', at.csv' if at is not None else ''}) in {_elapsed(args)}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .model.loading import load_scenario
    from .model.overrides import compare_arms
    from .outputs.at_minutes import arms_at_table
    from .outputs.compare_report import compare_text
    from .outputs.folders import engine_record, manifest, write_compare
    overrides, faults = _base_overrides(args)
    a_set, b_set, labels = compare_arms(load_scenario(args.file, overrides))
    if args.a or args.b:
        a_set, b_set, labels = args.a, args.b, ("A", "B")
    if args.labels:
        labels = tuple(args.labels.split(","))
        if len(labels) != 2:
            raise UsageError("--labels takes two labels separated by a comma")
    arm_a = load_scenario(args.file, overrides + a_set)
    arm_b = load_scenario(args.file, overrides + b_set)
    _check_at(args, arm_a, arm_b)
    _check_engine(args, arm_a, arm_b, keep_events=False)
    out = _out(args, Path("results") / f"{arm_a.name}-compare")
    a, wall_a = _simulate(arm_a, args, labels[0], keep_events=False)  # a comparison writes none
    b, wall_b = _simulate(arm_b, args, labels[1], keep_events=False)
    info = manifest(arm_a, seed=args.seed, replications=args.replications,
                    wall_time_s=wall_a + wall_b, command="compare", labels=list(labels),
                    arm_a_overrides=args.overrides + a_set, arm_b_overrides=args.overrides + b_set,
                    **faults, **engine_record(a, b))
    at = None if args.at is None else arms_at_table((a, b), labels, args.at, args.goal)
    table = write_compare(a, b, labels, out, info, at=at)
    print(f"{labels[0]} (A) minus {labels[1]} (B), paired by replication "
          "(common random numbers), 95% CI:")
    print(compare_text(table))
    if at is not None:
        _print_at(at, ["arm"])
    print(f"\nwrote {out}/ in {_elapsed(args)}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .model.loading import load_scenario
    from .outputs.formatting import short_key
    from .outputs.sweep import cell_count, cell_record, grid_cells, hold_sweep_folder
    from .outputs.sweep import resolve_grid, run_sweep
    from .outputs.sweep_report import sweep_text, write_sweep_outputs
    overrides, faults = _base_overrides(args)
    grid = resolve_grid(args.file, overrides, args.grid)
    scenario = load_scenario(args.file, overrides)
    cells = grid_cells(grid)
    scenarios = {c.key: c.scenario(args.file, overrides) for c in cells}
    _check_at(args, *scenarios.values())
    _check_engine(args, *scenarios.values(), keep_events=args.events)
    out = Path(args.out) if args.out else Path("results") / f"{scenario.name}-sweep"
    start = time.perf_counter()
    with hold_sweep_folder(out) as out:  # checked under the lock, before any work
        with _progress(cell_count(grid) * args.replications, args.quiet,
                       f"{cell_count(grid)} cells") as step:
            summary = run_sweep(args.file, grid, overrides=overrides,
                                replications=args.replications, seed=args.seed, out=out,
                                workers=_workers(args), scheduler=args.scheduler,
                                scheduler_timeout=args.scheduler_timeout,
                                keep_events=args.events, keep_timeseries=args.at is not None,
                                progress=step, on_skip=step, engine=args.engine)
        info = {"command": "sweep", "scenario_name": scenario.name, "seed": args.seed,
                "replications": args.replications, "grid": grid, "overrides": args.overrides,
                **faults, "wall_time_s": round(time.perf_counter() - start, 3),
                "cells": [cell_record(c, scenarios[c.key], args.engine, args.events)
                          for c in cells]}
        table, at = write_sweep_outputs(summary, grid, out, info, cells,
                                        {k: s.horizon_min for k, s in scenarios.items()},
                                        fleet=bool(scenario.fleet), at=args.at, goal=args.goal)
    print(f"{scenario.name}: {cell_count(grid)} cells x {args.replications} replications, seed "
          f"{args.seed}; 95% intervals (time to 95% of target: median over all runs)")
    print(sweep_text(table, list(grid)))
    if at is not None:
        _print_at(at, list(grid), [short_key(k) for k in grid])
    print(f"\nwrote {out}/ (summary.parquet, cells.csv, sweep.md, plots"
          f"{', at.csv' if at is not None else ''}) in {_elapsed(args)}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from .analysis.planning import Goal, PlanError, plan
    from .model.loading import load_scenario
    from .outputs.folders import manifest
    from .outputs.plan_report import FILES, answer_lines, write_plan
    overrides, faults = _base_overrides(args)
    scenario = load_scenario(args.file, overrides)
    goal = Goal(capacity=args.capacity, by_min=args.by, confidence=args.confidence,
                scale_set=args.scale_set, action=args.action, scale_in_after=args.scale_in_after)
    out = _out(args, Path("results") / f"{scenario.name}-plan")
    engine = _check_engine(args, scenario, keep_events=False)
    options = {"workers": _workers(args), "scheduler": args.scheduler,
               "scheduler_timeout": args.scheduler_timeout, "engine": args.engine}
    start = time.perf_counter()
    with _progress(None, args.quiet, "plan") as step:
        try:
            result = plan(scenario, goal, replications=args.replications, seed=args.seed,
                          compare_policy=args.compare_policy, progress=step, **options)
        except PlanError as err:  # raised before anything runs
            raise UsageError(f"{args.file}: {err}") from None
    wall = time.perf_counter() - start
    info = manifest(scenario, seed=args.seed, replications=args.replications, wall_time_s=wall,
                    overrides=args.overrides, command="plan", goal=vars(goal), **faults,
                    compare_policy=args.compare_policy, **engine,
                    requests_evaluated=sum(len(a.points) for a in result.arms))
    write_plan(result, out, info)
    print("\n".join(line.replace("**", "") for line in answer_lines(result)))
    print(f"\nwrote {out}/ ({', '.join(FILES)}) in {_elapsed(args)}")
    return 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    from .model.loading import load_scenario
    from .model.overrides import compare_arms
    from .outputs.gallery import build_gallery
    from .outputs.sweep import cell_count
    files = sorted(Path(args.scenarios).glob("*.toml"))
    if not files:
        raise UsageError(f"{args.scenarios}: no scenario files (*.toml)")
    names: dict[str, Path] = {}
    runs = 0  # a run, the comparison's two arms, and a policy matrix's cells
    for path in files:  # every scenario and its arms must be valid before anything runs
        scenario = load_scenario(path)
        _check_engine(args, scenario, *(load_scenario(path, arm)
                                         for arm in compare_arms(scenario)[:2]))
        if scenario.name in names:
            raise UsageError(f"{path}: named {scenario.name!r} like {names[scenario.name]}; "
                             "expected one gallery folder per scenario")
        names[scenario.name] = path
        runs += 3 + (cell_count(dict(scenario.sweep.grid)) if scenario.sweep else 0)
    with _progress(runs * args.replications, args.quiet, "gallery") as step:
        index = build_gallery(Path(args.scenarios), Path(args.out), replications=args.replications,
                              seed=args.seed, workers=_workers(args), progress=step,
                              engine=args.engine)
    print(f"wrote {index} and {len(files)} scenarios' reports in {_elapsed(args)}")
    return 0


def _cmd_validate_model(args: argparse.Namespace) -> int:
    from .analysis.validation import DEFAULT_SEED, format_table, run_validation
    table = run_validation(replications_scale=args.scale,
                           seed=DEFAULT_SEED if args.seed is None else args.seed,
                           engine=args.engine)
    print(format_table(table))
    bad = int((table["verdict"] != "ok").sum())
    print(f"\n{len(table) - bad} of {len(table)} cases agree with their closed form "
          "(99% interval contains the exact value)")
    return 1 if bad else 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .analysis.calibrate import SIGNATURE, calibrate, only_scale_set, to_toml
    from .analysis.observed_log import read_log
    from .outputs.folders import atomic_write, check_output_file
    out = check_output_file(Path(args.out), SIGNATURE) if args.out else None
    log = read_log(args.log)
    log = only_scale_set(log, args.scale_set) if args.scale_set else log
    fragment = to_toml(calibrate(log, incidents=args.incidents, alpha=args.alpha),
                       durations=args.durations)
    if out:
        print(f"wrote {atomic_write(out, fragment)}")
    else:
        print(fragment, end="")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from .outputs.folders import read_run
    from .outputs.view import resiliency_view
    scenario, events, _ = read_run(Path(args.run_dir))
    if not 0 <= args.at <= scenario.horizon_min:
        raise UsageError(f"--at {args.at:g}: expected a minute within [0, "
                         f"{scenario.horizon_min:g}] (the run's horizon)")
    if args.replication not in set(events["replication"].unique()):
        raise UsageError(f"{args.run_dir}: no replication {args.replication} in events.parquet")
    try:
        view = resiliency_view(events, scenario, args.at, args.replication, args.scale_set)
    except KeyError as err:
        raise UsageError(f"{args.run_dir}: {err.args[0]}; a fleet's view needs --scale-set") \
            from None
    print(json.dumps(view, indent=2))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .model.loading import load_scenario
    from .serve.app import banner, bind, make_server
    from .serve.clock import ManualClock, SpeedClock
    from .serve.emulator import Emulator
    scenario = load_scenario(args.file, args.overrides) if args.file else None
    if args.overrides and scenario is None:
        raise UsageError("--set needs a scenario file")
    clock = ManualClock() if args.manual_clock else SpeedClock(args.speed)
    emulator = Emulator(scenario, seed=args.seed, clock=clock)
    sock = bind(args.host, args.port)
    print(banner(emulator, sock, f"scenario {scenario.name}" if scenario else
                 "defaults (Flexible, Linux, no faults)"), flush=True)  # says who can reach it
    make_server(emulator, quiet=args.quiet).run(sockets=[sock])
    return 0


#: every command's name and the function that runs it
COMMANDS = {
    "run": _cmd_run,
    "validate": _cmd_validate,
    "compare": _cmd_compare,
    "sweep": _cmd_sweep,
    "plan": _cmd_plan,
    "validate-model": _cmd_validate_model,
    "calibrate": _cmd_calibrate,
    "gallery": _cmd_gallery,
    "view": _cmd_view,
    "serve": _cmd_serve,
}


def build_parser() -> argparse.ArgumentParser:
    return A.build_parser(COMMANDS)


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning (e.g. a damaged sweep cell being recomputed) as one line, not a code listing."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    warnings.formatwarning = _warning_line
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0), or a bad argument: argparse said why (2)
        return int(done.code or 0)
    args.started = started
    try:
        with _sigterm_unwinds():
            code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as stop:
        print("interrupted: nothing written", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(stop, Terminated) else 130
    except Exception as err:
        # the user's errors; their classes are loaded by now if a command raised one
        from .analysis.observed_log import CalibrationError
        from .engine.batch_coverage import EngineError
        from .engine.runner import TooManyEvents
        from .model.schema import ScenarioError
        from .outputs.folders import OutputError
        if isinstance(err, OSError):  # a file the OS refuses, a scheduler that does not answer
            where = f" (Dask scheduler {args.scheduler})" if getattr(args, "scheduler", None) \
                else ""
            hint = "; --scheduler-timeout sets the wait" if where and isinstance(
                err, TimeoutError) else ""
            print(f"error{where}: {err}{hint}", file=sys.stderr)
        elif isinstance(err, (ScenarioError, UsageError, CalibrationError, OutputError,
                              TooManyEvents, EngineError)):
            print(f"error: {err}", file=sys.stderr)
        else:
            raise
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

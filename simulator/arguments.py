"""The command line's argument types: each says what it expected and what it got.

argparse turns their ArgumentTypeError into a usage message naming the option, with exit
code 2; the bounds here are resource bounds documented in the README.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable, Mapping

#: How long a Dask scheduler may take to answer, by default (the runner's own default, kept
#: here so that `--help` need not import the runner).
SCHEDULER_TIMEOUT_S = 10.0
#: The engines `--engine` offers (batch_coverage.ENGINES, kept here for the same reason).
ENGINES = ("auto", "simpy", "batch")


def clip(text: str, most: int) -> str:
    """`text`, cut to `most` characters: a message quotes what it got, never a whole file."""
    from .model.schema import clip as _clip
    return _clip(text, most)

#: Most replications a command runs (a resource bound: more is a typo, not a wish for a
#: narrower interval; 100,000 already make it 30 times narrower than 100 do).
MAX_REPLICATIONS = 100_000


def count(text: str, least: int = 0, most: int | None = None) -> int:
    """An argparse type: a whole number >= least (and <= most)."""
    expected = f"a whole number >= {least}" + ("" if most is None else f" and <= {most:,}")
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least or (most is not None and value > most):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {clip(repr(text), 40)}")
    return value


def replication_count(text: str) -> int:
    return count(text, 1, MAX_REPLICATIONS)


def port(text: str) -> int:
    return count(text, 0, 65535)


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {clip(repr(text), 40)}")
    return value


def positive(text: str) -> float:
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {clip(repr(text), 40)}")
    return value


#: Most validate-model --scale: its largest case (400 replications) runs 40,000 at most.
MAX_SCALE = 100


def scale(text: str) -> float:
    value = finite(text)
    if not 0 < value <= MAX_SCALE:
        raise argparse.ArgumentTypeError(f"expected a number > 0 and at most {MAX_SCALE}, "
                                         f"got {clip(repr(text), 40)}")
    return value


def scheduler(text: str) -> str:
    """An argparse type: a Dask scheduler address (checked for form only, before any work)."""
    from .engine.runner import scheduler_address
    try:
        return scheduler_address(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def minutes(text: str) -> list[float]:
    """`30,60` -> [30.0, 60.0]; the range is checked against the scenario's horizon later."""
    try:
        return [finite(part) for part in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(f"expected minutes separated by commas, e.g. 30,60; "
                                         f"got {clip(repr(text), 40)}") from None


def probability(text: str) -> float:
    value = finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got "
                                         f"{clip(repr(text), 40)}")
    return value


def share(text: str) -> float:
    value = finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], e.g. 0.95; got {text}")
    return value


def probability(text: str) -> float:
    """A probability strictly between 0 and 1 (a confidence)."""
    value = finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. faults.create.OSProvisioningTimedOut=0.2 "
                        "(repeatable)")
    p.add_argument("--faults", metavar="FILE",
                   help="a fault fragment such as `vmss-sim calibrate` writes: its [faults.*] "
                        "rate tables and [[faults.incidents]] replace the scenario's and its "
                        "[timing] keys are set (fixed fault windows and scripted faults stay); "
                        "applied before --set")


def add_repetition_args(p: argparse.ArgumentParser, replications: int, seed: int,
                         what: str = "") -> None:
    p.add_argument("--replications", "-n", type=replication_count, default=replications,
                   help=f"replications{what}, at most {MAX_REPLICATIONS:,} "
                        f"(default {replications})")
    p.add_argument("--seed", type=count, default=seed, help=f"a whole number >= 0 (default {seed})")
    p.add_argument("--workers", "-w", type=lambda t: count(t, 1), default=None,
                   help="local worker processes, at most one per core (default: all cores; "
                        "1 runs in-process)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_engine_arg(p)


def add_engine_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto (default): the batch engine when it covers the scenario, else "
                        "SimPy; simpy: the reference; batch: numpy arrays, the same numbers "
                        "(refused, exit 2, on a scenario it does not cover)")


def add_simulation_args(p: argparse.ArgumentParser, out: str, what: str,
                        replications: int = 100) -> None:
    """Replications, seed, workers, the output folder and the Dask scheduler."""
    add_repetition_args(p, replications=replications, seed=0, what=what)
    p.add_argument("--out", help=f"output folder (default {out})")
    p.add_argument("--scheduler", metavar="ADDRESS", type=scheduler,
                   help="run on a Dask distributed scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--scheduler-timeout", type=positive, default=SCHEDULER_TIMEOUT_S,
                   metavar="SECONDS", help="how long the scheduler may take to answer "
                                           f"(default {SCHEDULER_TIMEOUT_S:g})")


def add_run_args(p: argparse.ArgumentParser, out: str, what: str) -> None:
    add_simulation_args(p, out, what)
    p.add_argument("--at", type=minutes, metavar="MIN[,MIN...]",
                   help="also give capacity at these minutes (sampled instants within the "
                        "horizon): mean usable, Creating, Failed and Deleting VMs with 95%% "
                        "intervals and the share of runs meeting --goal; writes at.csv")
    p.add_argument("--goal", type=share, default=0.95, metavar="SHARE",
                   help="with --at: the share of capacity usable VMs must reach (default 0.95)")


def build_parser(commands: Mapping[str, Callable[[argparse.Namespace], int]]
                 ) -> argparse.ArgumentParser:
    """The vmss-sim parser; `commands` maps each command's name to the function that runs it."""
    from .outputs.gallery import GALLERY_REPLICATIONS, GALLERY_SEED
    parser = argparse.ArgumentParser(
        prog="vmss-sim", description="Simulate Azure VM Scale Sets under Resilient create and "
                                     "delete: what-if runs, comparisons, sweeps and reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario; write events, summary, report and plots")
    add_scenario_args(p)
    add_run_args(p, "results/<scenario name>", "")
    p.set_defaults(func=commands["run"])

    p = sub.add_parser("validate", help="check a scenario file (and --set, --faults) and exit")
    add_scenario_args(p)
    p.set_defaults(func=commands["validate"])

    p = sub.add_parser("compare", help="two arms under common random numbers: paired differences")
    add_scenario_args(p)
    add_run_args(p, "results/<scenario name>-compare", " per arm")
    p.add_argument("--a", action="append", default=[], metavar="KEY=VALUE",
                   help="override for arm A (default: the scenario's [compare] table, else "
                        "Resilient create and delete on)")
    p.add_argument("--b", action="append", default=[], metavar="KEY=VALUE",
                   help="override for arm B (default: the scenario's [compare] table, else "
                        "Resilient create and delete off)")
    p.add_argument("--labels", help="two labels, comma-separated (default: the [compare] "
                                    "table's, else 'resilient on,resilient off'; A,B with --a/--b)")
    p.set_defaults(func=commands["compare"])

    p = sub.add_parser("sweep", help="run every cell of a grid of overrides (resumable)")
    add_scenario_args(p)
    add_run_args(p, "results/<scenario name>-sweep", " per cell")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept key and its values, or a range start:stop:step (stop included "
                        "when on the step), e.g. faults.create.OSProvisioningTimedOut=0:0.2:0.05; "
                        "repeat for more keys (default: the scenario's [sweep.grid])")
    p.add_argument("--events", action="store_true", help="keep every cell's full event log")
    p.set_defaults(func=commands["sweep"])

    p = sub.add_parser("plan", help="the smallest request that meets a capacity goal with a "
                                    "stated probability, and what it costs")
    add_scenario_args(p)
    add_simulation_args(p, "results/<scenario name>-plan", " per request", replications=1000)
    p.add_argument("--capacity", type=lambda t: count(t, 1), required=True, metavar="N",
                   help="usable VMs needed")
    p.add_argument("--by", type=positive, required=True, metavar="MIN",
                   help="by this simulated minute (at most the horizon)")
    p.add_argument("--confidence", type=probability, default=0.99,
                   help="share of cases that must meet the goal (default 0.99)")
    p.add_argument("--scale-set", metavar="NAME", help="the scale set to plan (a fleet needs one)")
    p.add_argument("--action", type=count, metavar="INDEX",
                   help="timeline index of the create or scale_out to size (default: the first)")
    p.add_argument("--scale-in-after", type=finite, metavar="MIN",
                   help="when the buffer is scaled in, for its cost (default: the --by minute)")
    p.add_argument("--compare-policy", action="store_true",
                   help="plan with Resilient create on and off, side by side")
    p.set_defaults(func=commands["plan"])

    p = sub.add_parser("validate-model",
                       help="compare the simulator with closed-form answers: a verdict per case")
    p.add_argument("--scale", type=scale, default=1.0,
                   help="multiply every case's replications (default 1, at most 100)")
    p.add_argument("--seed", type=count, default=None,
                   help="a whole number >= 0 (default: the validation's recorded seed)")
    add_engine_arg(p)
    p.set_defaults(func=commands["validate-model"])

    p = sub.add_parser("calibrate", help="estimate a fault model (TOML) from an observed log")
    p.add_argument("log", help="CSV or Parquet: one row per attempt, or an events.parquet")
    p.add_argument("--out", help="write the TOML fragment here (default: print it; an existing "
                                 "file is replaced only if calibrate wrote it); use it with "
                                 "--faults FILE")
    p.add_argument("--durations", choices=("lognormal", "empirical"), default="lognormal",
                   help="fitted lognormal (default) or the observed sample")
    p.add_argument("--no-incidents", dest="incidents", action="store_false",
                   help="do not look for incidents (periods of raised rates)")
    p.add_argument("--alpha", type=probability, default=0.01,
                   help="chance of a false incident over the whole log (default 0.01)")
    p.add_argument("--scale-set", metavar="NAME",
                   help="only this scale set of a fleet's events.parquet (one fragment holds "
                        "one timeout: a fleet of Linux and Windows is calibrated set by set)")
    p.set_defaults(func=commands["calibrate"])

    p = sub.add_parser("gallery", help="regenerate results/: every bundled scenario's report, "
                                       "plots and policy comparison")
    p.add_argument("--scenarios", default="scenarios",
                   help="folder of scenario files (default scenarios)")
    p.add_argument("--out", default="results",
                   help="results folder: writes gallery/ and README.md (default results)")
    add_repetition_args(p, replications=GALLERY_REPLICATIONS, seed=GALLERY_SEED,
                         what=" per arm")
    p.set_defaults(func=commands["gallery"])

    p = sub.add_parser("resiliency-view",
                       help="the VMs at a moment of a run, as GET ...?$expand=resiliencyView JSON")
    p.add_argument("run_dir", help="a folder written by vmss-sim run")
    p.add_argument("--at", type=finite, required=True, metavar="MINUTE",
                   help="a minute within [0, horizon]")
    p.add_argument("--replication", type=count, default=0, help="which replication (default 0)")
    p.add_argument("--scale-set", help="which scale set of a fleet (a single one needs none)")
    p.set_defaults(func=commands["view"])

    p = sub.add_parser("serve", help="a local emulator of the scale-set REST API (Resilient "
                                     "create and delete), for testing automation")
    p.add_argument("file", nargs="?", help="scenario TOML file: faults, timing and limits "
                                           "(default: Flexible, Linux, no faults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the scenario file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                       "127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8765, help="default 8765; 0 picks a free port")
    p.add_argument("--seed", type=count, default=0, help="a whole number >= 0 (default 0)")
    clock = p.add_mutually_exclusive_group()
    clock.add_argument("--speed", type=positive, default=60.0,
                       help="simulated minutes per real second (default 60)")
    clock.add_argument("--manual-clock", action="store_true",
                       help="the clock moves only on POST /_emulator/advance?minutes=M")
    p.add_argument("--quiet", "-q", action="store_true", help="no log line per request")
    p.set_defaults(func=commands["serve"])
    return parser

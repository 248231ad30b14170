"""The vmss-sim commands: parse, call, print. No logic of their own."""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from .engine import CapacityLimitExceeded
from .runner import simulate
from .scenario import ScenarioError, load_scenario


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. faults.create.OSProvisioningTimedOut=0.2")


def _cmd_validate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file, args.overrides)
    print(f"{args.file}: ok ({scenario.name}, {len(scenario.timeline)} timeline actions, "
          f"horizon {scenario.horizon_min:g} min{', hypothetical' if scenario.hypothetical else ''})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.file, args.overrides)
    result = simulate(scenario, replications=args.replications, seed=args.seed)
    with pd.option_context("display.width", 120, "display.max_columns", 40):
        print(result.summary.drop(columns=["replication"]).describe().T
              [["mean", "std", "min", "max"]].to_string())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmss-sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a scenario and report")
    _add_scenario_args(p)
    p.add_argument("--replications", "-n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="check a scenario file and exit")
    _add_scenario_args(p)
    p.set_defaults(func=_cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, CapacityLimitExceeded) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

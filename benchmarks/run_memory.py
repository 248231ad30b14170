"""Peak memory of the whole `vmss-sim run` command (simulation, streamed events.parquet and
timeseries.parquet, report) at few and at many replications, each in a fresh process, and
the ratio between them.

    python benchmarks/run_memory.py                 # baseline.toml at 100, 1,000, 3,000 reps
    python benchmarks/run_memory.py --reps 100 10000 --workers 2 --file scenarios/X.toml

Peak RSS is the command's own maximum resident set (`os.wait4`): imports, simulation and
report writing alike. With --workers > 1 the pool's workers are processes of their own and
are not in it (section 3 of bench.py measures a whole process tree).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_of_run(file: str, reps: int, workers: int) -> dict:
    """Run `vmss-sim run` once in a fresh interpreter: its wall time and peak RSS (MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "run", file, "-n", str(reps), "-w",
             str(workers), "-q", "--out", str(Path(tmp) / "run")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"vmss-sim run -n {reps} failed")
    return {"reps": reps, "wall_s": wall, "peak_mib": usage.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", default="scenarios/baseline.toml")
    ap.add_argument("--reps", type=int, nargs="+", default=[100, 1000, 3000])
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    rows = []
    for reps in args.reps:
        r = peak_of_run(args.file, reps, args.workers)
        rows.append(r)
        print(f"  {args.file} x {reps:>6,} reps, -w {args.workers}: {r['wall_s']:6.1f} s, "
              f"peak RSS {r['peak_mib']:6.1f} MiB", flush=True)
    lo, hi = rows[0], rows[-1]
    print(f"peak RSS at {hi['reps']:,} / at {lo['reps']:,} replications = "
          f"{hi['peak_mib'] / lo['peak_mib']:.2f}x ({hi['reps'] // lo['reps']}x the "
          "replications)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

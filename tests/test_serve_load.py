"""A bounded load test on loopback: 20 concurrent clients poll and mutate ten scale sets.

The full 30 seconds of the issue runs with VMSS_SERVE_LOAD_SECONDS=30 (its figures are in
benchmarks/README.md, from `python benchmarks/serve_load.py`); CI runs 5 seconds. Besides the
clients' own checks (only intended errors, no VM listed twice or back after leaving, every
operation ends), the emulator is in this process, so its engine is checked too: every VM it
made was made once, has event rows, and is either listed or Deleted.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from simulator import load_scenario
from simulator.model import policy as P
from simulator.serve.clock import SpeedClock
from tests.serve_support import serving

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from serve_load import API, RG, SUB, run_load, settle  # noqa: E402  (benchmarks/)

SECONDS = float(os.environ.get("VMSS_SERVE_LOAD_SECONDS", "5"))


def test_twenty_clients_poll_and_mutate_with_only_intended_errors_and_no_lost_vm():
    with serving(load_scenario(ROOT / "scenarios" / "baseline.toml"), seed=3,
                 clock=SpeedClock(60)) as s:
        result = run_load(s.url, clients=20, seconds=SECONDS, seed=3)
        print(result.summary())
        assert result.errors == []
        assert result.requests > 20 * SECONDS  # every client kept going
        assert settle(s.url, result) == []
        for res in s.emulator.resources.values():
            engine = res.engine
            assert set(res.records) == set(range(engine.next_index))
            assert engine.counters.create_operations == engine.next_index
            live = {i for i, rec in res.records.items() if rec.state != P.DELETED}
            assert live == set(engine.vms)
            listed = s.call("GET", f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
                                   f"Microsoft.Compute/virtualMachineScaleSets/{res.name}/"
                                   f"virtualMachines?api-version={API}")[2]["value"]
            assert sorted(vm["name"] for vm in listed) == sorted(
                res.vm(i).name for i in engine.vms)

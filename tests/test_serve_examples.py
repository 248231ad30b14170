"""The example automation in examples/, tested as a user would test their own scripts: against
the emulator, with failures scripted to the minute (durations: tests.conftest.FIXED_TIMING).
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime

from tests.conftest import scenario, scripted
from tests.serve_support import EXAMPLES, RG, serving, ss_path  # puts examples/ on sys.path

from cleanup_runbook import clean_up  # noqa: E402  (examples/)
from stuck_watcher import stuck_vms  # noqa: E402

ALLOC, TF = "AllocationFailed", "TransientFailure"


def test_the_cleanup_runbook_deletes_failed_vms_and_restores_capacity():
    """VMs 1 and 2 fail to create at minute 1 (not retried). VM 3 is being deleted from minute
    5 and its first attempt fails: at minute 6, when the runbook runs, it is Failed with
    Resilient delete retrying it. VM 2's delete fails all six attempts."""
    faults = [scripted(1, "create", [1], ALLOC), scripted(2, "create", [1], ALLOC),
              scripted(2, "delete", [1, 2, 3, 4, 5, 6], TF), scripted(3, "delete", [1, 2, 3], TF)]
    with serving(scenario([], scripted_faults=faults)) as s:
        s.create("web", 4)
        s.advance_to(5)
        assert s.call("POST", ss_path("web", "/delete"), {"instanceIds": ["3"]})[0] == 202
        s.advance_to(6)
        client = s.client()
        report = s.run_while_ticking(lambda: clean_up(client, RG, "web"))
        assert (report.capacity, report.deleted, report.still_failed, report.skipped,
                report.restored) == (3, ["1"], ["2"], ["3"], True)
        vms = {v.instance_id: v.provisioning_state
               for v in client.virtual_machine_scale_set_vms.list(RG, "web")}
        assert vms == {"0": "Succeeded", "2": "Failed", "4": "Succeeded", "5": "Succeeded"}
        assert client.virtual_machine_scale_sets.get(RG, "web").sku.capacity == 3


def test_the_watcher_reports_vms_creating_past_30_minutes():
    """Resilient create off; VM 1's only create attempt takes 45 minutes (under a 60-minute
    OS provisioning timeout: no success outlives its timeout)."""
    faults = [scripted(1, "create", [1], "Succeeded", duration_min=45)]
    with serving(scenario([], create=False, scripted_faults=faults,
                          timing={"os_provisioning_timeout_min": 60})) as s:
        s.create("web", 3, create=False)
        client = s.client()

        def watch(minute: float) -> list[tuple[str, float]]:
            s.advance_to(minute)
            now = datetime.fromisoformat(s.call("GET", "/_emulator/clock")[2]["time"])
            return stuck_vms(client, RG, "web", now)

        assert watch(30) == []
        assert watch(31) == [("1", 31.0)]
        script = subprocess.run(
            [sys.executable, str(EXAMPLES / "stuck_watcher.py"), "--endpoint", s.url,
             "--resource-group", RG, "--scale-set", "web", "--now",
             s.call("GET", "/_emulator/clock")[2]["time"]], capture_output=True, text=True)
        assert script.returncode == 1, script.stderr
        assert script.stdout == "web/1: Creating for 31 minutes\n"
        assert watch(45) == []  # it succeeded at last


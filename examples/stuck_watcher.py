"""Watcher: report the VMs that have been Creating for more than 30 minutes.

    python examples/stuck_watcher.py --endpoint http://127.0.0.1:8765 \\
        --resource-group rg --scale-set web [--minutes 30] [--now 2026-01-01T00:31:00+00:00]

Resilient create gives up on a VM after 30 minutes (it is then Failed), so a VM still Creating
later is stuck: the policy is off and an attempt hangs, or something else is wrong. Exit code
1 when any VM is stuck, for a scheduler to alert on. `--now` defaults to the wall clock;
against `vmss-sim serve`, whose clock is simulated, pass the emulator's time
(`GET /_emulator/clock` answers it as "time").
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone

from azure.mgmt.compute import ComputeManagementClient

from emulator_client import compute_client


def stuck_vms(client: ComputeManagementClient, resource_group: str, scale_set: str,
              now: datetime, limit: timedelta = timedelta(minutes=30)) -> list[tuple[str, float]]:
    """(instance ID, minutes since it was created) of every VM Creating for longer than limit."""
    stuck = []
    for vm in client.virtual_machine_scale_set_vms.list(resource_group, scale_set):
        age = now - vm.time_created
        if vm.provisioning_state == "Creating" and age > limit:
            stuck.append((vm.instance_id, age.total_seconds() / 60))
    return stuck


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", default="https://management.azure.com")
    p.add_argument("--subscription", default="00000000-0000-0000-0000-000000000000")
    p.add_argument("--resource-group", required=True)
    p.add_argument("--scale-set", required=True)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--now", type=datetime.fromisoformat, default=None,
                   help="ISO 8601 time with a UTC offset (default: now)")
    args = p.parse_args(argv)
    client = compute_client(args.endpoint, args.subscription)
    now = args.now or datetime.now(timezone.utc)
    stuck = stuck_vms(client, args.resource_group, args.scale_set, now,
                      timedelta(minutes=args.minutes))
    for instance_id, minutes in stuck:
        print(f"{args.scale_set}/{instance_id}: Creating for {minutes:.0f} minutes")
    if not stuck:
        print(f"{args.scale_set}: no VM Creating for more than {args.minutes:g} minutes")
    return 1 if stuck else 0


if __name__ == "__main__":
    sys.exit(main())

"""Clean-up runbook: delete the scale set's Failed VMs, then restore its capacity.

    python examples/cleanup_runbook.py --endpoint http://127.0.0.1:8765 \\
        --resource-group rg --scale-set web

Failed VMs hold capacity without serving. This job lists the VMs with `$expand=resiliencyView`,
deletes the Failed ones, and scales back out to the capacity it found (deleting chosen
instances lowers the capacity by one each). It leaves alone a Failed VM whose
resilientVMDeletionStatus is `InProgress`: Resilient delete is retrying it, and shows it
Failed between attempts. The same code runs against Azure; run it against `vmss-sim serve` to
test it on failures produced on demand (tests/test_serve_examples.py does).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient

from emulator_client import compute_client


@dataclass
class CleanupReport:
    capacity: int  # found at the start, and asked for again at the end
    deleted: list[str] = field(default_factory=list)  # instance IDs whose delete succeeded
    still_failed: list[str] = field(default_factory=list)  # deletes that failed too
    skipped: list[str] = field(default_factory=list)  # Resilient delete is still retrying them
    restored: bool = True  # False if the scale-out back to `capacity` left VMs Failed


def clean_up(client: ComputeManagementClient, resource_group: str, scale_set: str
             ) -> CleanupReport:
    capacity = client.virtual_machine_scale_sets.get(resource_group, scale_set).sku.capacity
    report, targets = CleanupReport(capacity), []
    for vm in client.virtual_machine_scale_set_vms.list(resource_group, scale_set,
                                                        expand="resiliencyView"):
        if vm.provisioning_state == "Failed":
            retrying = vm.resilient_vm_deletion_status == "InProgress"
            (report.skipped if retrying else targets).append(vm.instance_id)
    if targets:
        try:
            client.virtual_machine_scale_sets.begin_delete_instances(
                resource_group, scale_set, {"instanceIds": targets}).result()
        except HttpResponseError:  # some deletes failed: those VMs are still there
            left = {vm.instance_id for vm in
                    client.virtual_machine_scale_set_vms.list(resource_group, scale_set)}
            report.still_failed = [i for i in targets if i in left]
    report.deleted = [i for i in targets if i not in report.still_failed]
    try:
        client.virtual_machine_scale_sets.begin_update(
            resource_group, scale_set, {"sku": {"capacity": capacity}}).result()
    except HttpResponseError:
        report.restored = False
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", default="https://management.azure.com")
    p.add_argument("--subscription", default="00000000-0000-0000-0000-000000000000")
    p.add_argument("--resource-group", required=True)
    p.add_argument("--scale-set", required=True)
    p.add_argument("--polling-interval", type=float, default=1.0, help="seconds between polls")
    args = p.parse_args(argv)
    client = compute_client(args.endpoint, args.subscription,
                            polling_interval=args.polling_interval)
    report = clean_up(client, args.resource_group, args.scale_set)
    print(f"deleted {report.deleted or 'none'}; delete failed {report.still_failed or 'none'}; "
          f"left to Resilient delete {report.skipped or 'none'}; capacity {report.capacity} "
          f"{'restored' if report.restored else 'asked for, but the scale-out left VMs Failed'}")
    return 0 if report.restored and not report.still_failed else 1


if __name__ == "__main__":
    sys.exit(main())

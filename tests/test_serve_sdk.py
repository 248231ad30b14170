"""The emulator driven by the official client, `azure-mgmt-compute`'s ComputeManagementClient,
with its pollers unchanged, on a manual clock: every state is checked at an exact minute.

Durations are `tests.conftest.FIXED_TIMING` (create 5 min, OS provisioning timeout 8 min,
retry delay 1 min, delete 1 min, delete backoff 1, 2, 4, 8, 10 min).
"""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from tests.conftest import scenario, scripted
from tests.serve_support import RG, serving

OSP = "OSProvisioningTimedOut"
TF = "TransientFailure"
BOTH_ON = {"resilientVMCreationPolicy": {"enabled": True},
           "resilientVMDeletionPolicy": {"enabled": True}}


def watch(s, client, name: str, minutes, instance: str | None = None) -> list[tuple]:
    """At each minute, what the SDK reads: (minute, instanceId, provisioningState,
    resilientVMDeletionStatus) for every VM (or one), with $expand=resiliencyView."""
    seen = []
    for minute in minutes:
        s.advance_to(minute)
        if instance is None:
            vms = list(client.virtual_machine_scale_set_vms.list(RG, name,
                                                                 expand="resiliencyView"))
        else:
            vms = [client.virtual_machine_scale_set_vms.get(RG, name, instance,
                                                            expand="resiliencyView")]
        seen += [(minute, v.instance_id, v.provisioning_state, v.resilient_vm_deletion_status)
                 for v in vms]
    return seen


def test_begin_update_enables_both_policies_and_a_patch_keeps_what_it_leaves_out():
    with serving(scenario([], create=False, delete=False)) as s:
        client = s.client()
        created = client.virtual_machine_scale_sets.begin_create_or_update(RG, "web", {
            "location": "westus", "sku": {"capacity": 0},
            "properties": {"orchestrationMode": "Uniform"}}).result()
        assert created.resiliency_policy.resilient_vm_creation_policy.enabled is False
        assert created.resiliency_policy.resilient_vm_deletion_policy.enabled is False

        updated = client.virtual_machine_scale_sets.begin_update(
            RG, "web", {"properties": {"resiliencyPolicy": BOTH_ON}}).result()
        assert updated.resiliency_policy.resilient_vm_creation_policy.enabled is True
        assert updated.resiliency_policy.resilient_vm_deletion_policy.enabled is True

        client.virtual_machine_scale_sets.begin_update(RG, "web", {"properties": {
            "resiliencyPolicy": {"resilientVMDeletionPolicy": {"enabled": False}}}}).result()
        got = client.virtual_machine_scale_sets.get(RG, "web")
        assert got.resiliency_policy.resilient_vm_creation_policy.enabled is True
        assert got.resiliency_policy.resilient_vm_deletion_policy.enabled is False
        assert got.provisioning_state == "Succeeded" and got.orchestration_mode == "Uniform"


def test_scale_out_through_capacity_watches_creating_become_succeeded_or_failed():
    """VM 0 succeeds at 5; VM 1 times out at 8, is retried at 9 and succeeds at 14; VM 2 times
    out at 8, 17 and 26, and its fourth attempt (27) is cut by the 30-minute window."""
    faults = [scripted(1, "create", [1], OSP), scripted(2, "create", [1, 2, 3, 4], OSP)]
    with serving(scenario([], scripted_faults=faults)) as s:
        s.create("web", 0)
        client = s.client()
        poller = client.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 3}})
        seen = watch(s, client, "web", [0, 4, 5, 8, 9, 13, 14, 29, 30])
        state = {(m, i): st for m, i, st, _ in seen}
        assert [state[(m, "0")] for m in (0, 4, 5, 30)] == ["Creating", "Creating", "Succeeded",
                                                            "Succeeded"]
        assert [state[(m, "1")] for m in (8, 9, 13, 14)] == ["Creating"] * 3 + ["Succeeded"]
        assert [state[(m, "2")] for m in (14, 29, 30)] == ["Creating", "Creating", "Failed"]
        assert {status for *_, status in seen} == {"Enabled"}

        vm = client.virtual_machine_scale_set_vms.get(RG, "web", "2", expand="instanceView")
        assert vm.instance_view.statuses[0].code == f"ProvisioningState/failed/{OSP}"
        assert vm.name == "web_2"
        with pytest.raises(HttpResponseError) as failed:  # the scale-out's operation failed
            poller.result()
        assert failed.value.error.code == OSP
        assert client.virtual_machine_scale_sets.get(RG, "web").sku.capacity == 3


def test_without_resilient_create_a_timeout_leaves_the_vm_failed_at_once():
    with serving(scenario([], create=False, scripted_faults=[scripted(0, "create", [1], OSP)])
                 ) as s:
        s.create("web", 1, create=False)
        seen = watch(s, s.client(), "web", [7, 8])
        assert [st for _, _, st, _ in seen] == ["Creating", "Failed"]


def test_delete_instances_alternates_deleting_and_failed_then_failed_after_the_last_retry():
    """Six attempts of a minute each, at 5, 7, 10, 15, 24 and 35 (backoff 1, 2, 4, 8, 10)."""
    faults = [scripted(1, "delete", [1, 2, 3, 4, 5, 6], TF)]
    with serving(scenario([], scripted_faults=faults)) as s:
        s.create("web", 2)
        client = s.client()
        s.advance_to(5)
        poller = client.virtual_machine_scale_sets.begin_delete_instances(
            RG, "web", {"instanceIds": ["1"]})
        seen = watch(s, client, "web", range(5, 38), instance="1")
        attempts = {5, 7, 10, 15, 24, 35}
        expected = [(m, "1", "Deleting" if m in attempts else "Failed",
                     "InProgress" if m < 36 else "Failed") for m in range(5, 38)]
        assert seen == expected
        with pytest.raises(HttpResponseError) as failed:
            poller.result()
        assert failed.value.error.code == TF
        vm = client.virtual_machine_scale_set_vms.get(RG, "web", "1", expand="instanceView")
        assert vm.instance_view.statuses[0].code == f"ProvisioningState/failed/{TF}"
        assert client.virtual_machine_scale_sets.get(RG, "web").sku.capacity == 1


def test_disabling_the_policy_mid_delete_lets_the_retries_in_flight_finish():
    """VM 0's delete fails twice (5-6, 7-8) and succeeds at its third attempt (10-11) although
    Resilient delete is turned off at minute 6; VM 1's later delete gets one attempt only."""
    faults = [scripted(0, "delete", [1, 2], TF), scripted(1, "delete", [1], TF)]
    with serving(scenario([], scripted_faults=faults)) as s:
        s.create("web", 2)
        client = s.client()
        s.advance_to(5)
        first = client.virtual_machine_scale_sets.begin_delete_instances(
            RG, "web", {"instanceIds": ["0"]})
        s.advance_to(6)
        client.virtual_machine_scale_sets.begin_update(RG, "web", {"properties": {
            "resiliencyPolicy": {"resilientVMDeletionPolicy": {"enabled": False}}}}).result()
        seen = watch(s, client, "web", [6, 7, 8, 10], instance="0")
        assert seen == [(6, "0", "Failed", "InProgress"), (7, "0", "Deleting", "InProgress"),
                        (8, "0", "Failed", "InProgress"), (10, "0", "Deleting", "InProgress")]
        s.advance_to(11)
        first.result()  # the in-flight retries finished: Succeeded
        with pytest.raises(ResourceNotFoundError):
            client.virtual_machine_scale_set_vms.get(RG, "web", "0")

        second = client.virtual_machine_scale_sets.begin_delete_instances(
            RG, "web", {"instanceIds": ["1"]})
        assert watch(s, client, "web", [11, 12]) == [(11, "1", "Deleting", "Disabled"),
                                                     (12, "1", "Failed", "Disabled")]
        with pytest.raises(HttpResponseError):
            second.result()


def test_flexible_vms_are_named_after_the_scale_set_and_deleted_by_name():
    with serving(scenario([])) as s:
        s.create("batch", 2, mode="Flexible")
        client = s.client()
        s.advance_to(5)
        names = [v.instance_id for v in client.virtual_machine_scale_set_vms.list(RG, "batch")]
        assert names == ["batch_00000000", "batch_00000001"]
        client.virtual_machine_scale_set_vms.begin_delete(RG, "batch", "batch_00000001")
        s.advance_to(6)
        assert [v.name for v in client.virtual_machine_scale_set_vms.list(RG, "batch")] == \
            ["batch_00000000"]


def test_sdk_errors_unknown_names_busy_vms_and_a_capacity_past_the_limit():
    with serving(scenario([])) as s:
        s.create("web", 1)  # Uniform, single placement group: 100 instances at most
        client = s.client()
        with pytest.raises(ResourceNotFoundError):
            client.virtual_machine_scale_sets.get(RG, "nope")
        with pytest.raises(ResourceNotFoundError):
            client.virtual_machine_scale_set_vms.get(RG, "web", "7")
        with pytest.raises(ResourceExistsError) as busy:  # 409: VM 0 is still Creating
            client.virtual_machine_scale_sets.begin_delete_instances(RG, "web",
                                                                     {"instanceIds": ["0"]})
        assert busy.value.error.code == "OperationNotAllowed"
        with pytest.raises(HttpResponseError) as over:
            client.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 101}})
        assert over.value.status_code == 400 and over.value.error.code == "InvalidParameter"
        assert client.virtual_machine_scale_sets.get(RG, "web").sku.capacity == 1

from simulator import simulate


def test_core_shape_runs():
    sc = {"horizon_min": 600, "scale_set": {"orchestration": "Flexible", "os": "Linux",
          "resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": True},
                               "resilientVMDeletionPolicy": {"enabled": True}}},
          "faults": {"create": {"OSProvisioningTimedOut": 0.05}, "delete": {"TransientFailure": 0.02}},
          "timeline": [{"at_min": 0, "action": "create", "count": 100},
                       {"at_min": 300, "action": "scale_in", "count": 40}]}
    r = simulate(sc, replications=3, seed=1)
    assert len(r.summary) == 3
    assert set(r.events["state"].unique()) <= {"Creating", "Succeeded", "Deleting", "Failed", "Deleted"}

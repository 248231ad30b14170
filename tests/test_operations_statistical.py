"""Repairs only, against a closed form: the long-run share of unhealthy VMs.

Each VM slot alternates healthy (exponential, rate `unhealthy_per_hour`) and unhealthy
(grace period + repair), an alternating renewal process, so the long-run unhealthy share is
rate x E[unhealthy] / (1 + rate x E[cycle extra]) (`analytic.unhealthy_share`), which depends
on the repair duration only through its mean, as M/G/inf does. 400 VMs keep the 5% batch
limit (20 repairs at once) far above the mean number in repair (about 4), so repairs never
queue, as the closed form assumes.

The share per replication is unhealthy VM-minutes / (VMs x horizon); the 99.9% Student t
interval over replications must contain the closed form, and must exclude the closed forms of
an engine that forgot the grace period or the repair time (power). The VMs start healthy at
minute 1, not in the stationary state: the expected deficit is about share x E[D^2]/(2 E[D])
VM-minutes per VM (under 1 VM-minute here against about 120 unhealthy ones), far inside the
interval. Seeds are fixed, so the outcome is deterministic.
"""
from __future__ import annotations

import pytest

from simulator import simulate
from simulator.analysis.analytic import unhealthy_share
from simulator.analysis.stats import mean_ci

CONFIDENCE = 0.999
VMS, HORIZON, REPLICATIONS = 400, 8_000.0, 8


def _share(action: str, grace: str, duration, per_hour: float, seed: int):
    sc = {"horizon_min": HORIZON, "sample_every_min": HORIZON / 20,
          "scale_set": {"automaticRepairsPolicy": {"enabled": True, "gracePeriod": grace,
                                                   "repairAction": action}},
          "faults": {"health": {"unhealthy_per_hour": per_hour}},
          "timing": {"create_duration": 1, "delete_duration": 1,
                     f"{action.lower()}_duration": duration} if action != "Replace" else
          {"create_duration": 1, "delete_duration": 1},
          "timeline": [{"at_min": 0, "action": "create", "count": VMS}]}
    s = simulate(sc, replications=REPLICATIONS, seed=seed, keep_events=False,
                 keep_timeseries=False).summary
    assert (s["repairs_started"] > 0).all()
    return mean_ci(s["unhealthy_vm_minutes"] / (VMS * HORIZON), CONFIDENCE)


@pytest.mark.parametrize("action, grace, duration, mean, per_hour, seed", [
    ("Restart", "PT10M", 5, 5.0, 0.06, 11),
    ("Reimage", "PT30M", {"kind": "exponential", "mean": 20}, 20.0, 0.03, 12),
    ("Reimage", "PT30M", {"kind": "lognormal", "median": 15, "sigma": 0.9}, 15 * 1.4993, 0.03, 13),
])
def test_long_run_unhealthy_share_matches_the_renewal_closed_form(action, grace, duration,
                                                                 mean, per_hour, seed):
    grace_min = {"PT10M": 10.0, "PT30M": 30.0}[grace]
    iv = _share(action, grace, duration, per_hour, seed)
    exact = unhealthy_share(per_hour, grace_min, mean)
    assert iv.low <= exact <= iv.high, (iv, exact)
    for wrong in (unhealthy_share(per_hour, 0.0, mean), unhealthy_share(per_hour, grace_min)):
        assert not iv.low <= wrong <= iv.high, (iv, wrong)


def test_replace_share_counts_the_grace_period_and_the_recreate():
    """Replace: the VM is unhealthy for the grace period only (then Deleting); its slot is
    Creating for the 1-minute create of the replacement before it is healthy again."""
    iv = _share("Replace", "PT10M", None, 0.06, 14)
    exact = unhealthy_share(0.06, 10.0, 0.0, recreate_mean_min=1.0)
    assert iv.low <= exact <= iv.high, (iv, exact)
    assert not iv.low <= unhealthy_share(0.06, 0.0, 1.0) <= iv.high

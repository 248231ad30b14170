"""The operations around resiliency as SimPy processes beside the scale set.

Health faults and automatic instance repairs, clean-up runbooks and autoscale act only
through the scale set's own operations (`scale_out`, `set_capacity`, `delete_instances`), so
every VM still leaves capacity once; each decision is a function of `model.operations`, and
each operation carries its cause (`ScaleSet.caused_by`). Periodic jobs (a clean-up, an
autoscale evaluation) run at the start of their minute, before anything else that happens
then, so they see the scale set as it stood just before it.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Generator

import numpy as np
import simpy
from simpy.events import URGENT

from ..model import policy as P
from ..model.operations import (
    UNHEALTHY,
    UPDATING,
    AutoscaleProfile,
    Cleanup,
    HealthDraws,
    autoscale_decision,
    cpu_percent,
    repair_batch_limit,
    time_to_unhealthy,
    window_statistic,
)

if TYPE_CHECKING:  # pragma: no cover
    from .discrete_event import VM, ScaleSet


def at_start_of(env: simpy.Environment, delay: float) -> simpy.Event:
    """An event `delay` minutes from now that fires before anything else at that minute."""
    event = simpy.Event(env)
    event._ok, event._value = True, None  # triggered now, processed at now + delay
    env.schedule(event, URGENT, delay)
    return event


class Repairs:
    """Unhealthy VMs of one scale set and, if the policy is enabled, their automatic repairs.

    A healthy Succeeded VM turns unhealthy after a keyed exponential time (or when scripted);
    once the grace period has passed it waits for a repair slot (at most
    `repair_batch_limit(capacity)` repairs under way), first come first served. `starts`
    records (minute, repairs under way, limit) at each repair start.
    """

    def __init__(self, ss: "ScaleSet", seed: np.random.SeedSequence):
        sc = ss.scenario
        self.ss, self.env = ss, ss.env
        self.rate = sc.faults.health.unhealthy_per_hour
        self.policy = sc.scale_set.automaticRepairsPolicy
        self.draws = HealthDraws(seed)
        self.durations = {"Reimage": sc.timing.reimage_duration,
                          "Restart": sc.timing.restart_duration}
        self.waiting: deque[tuple["VM", int]] = deque()
        self.in_flight = 0
        self.starts: list[tuple[float, int, int]] = []
        ss.on_healthy = self.healthy
        for s in sc.faults.health.scripted:
            self.env.timeout(s.at_min).callbacks.append(lambda _, i=s.vm: self._scripted(i))

    def healthy(self, vm: "VM") -> None:
        """`vm` has just become healthy Succeeded: a new spell, and its time to turn unhealthy."""
        vm.spell += 1
        if self.rate > 0:
            after = time_to_unhealthy(self.draws.uniforms(vm.index, vm.spell)[0], self.rate)
            if self.env.now + after < self.ss.scenario.horizon_min:
                self.env.timeout(after).callbacks.append(
                    lambda _, spell=vm.spell: self.onset(vm, spell))

    def _scripted(self, index: int) -> None:
        vm = self.ss.vms.get(index)
        if vm is not None:
            self.onset(vm, vm.spell)

    def onset(self, vm: "VM", spell: int) -> None:
        """The VM turns unhealthy, if it is still healthy, Succeeded and idle in that spell."""
        if vm.spell != spell or vm.bucket != P.SUCCEEDED or vm.busy:
            return
        ss = self.ss
        vm.unhealthy, vm.cause = True, None
        ss._record(vm, ss._operation_id(), "health", 1, P.SUCCEEDED, None, ss.idle_status)
        self._arm(vm, spell)

    def _arm(self, vm: "VM", spell: int) -> None:
        if self.policy.enabled:
            self.env.timeout(self.policy.grace_period_min).callbacks.append(
                lambda _: self._grace_over(vm, spell))

    def _repairable(self, vm: "VM", spell: int) -> bool:
        """Still unhealthy in that spell, idle, and still in the scale set: never a VM that
        failed provisioning (it never became healthy) or is being deleted."""
        return vm.spell == spell and vm.bucket == UNHEALTHY and not vm.busy

    def _grace_over(self, vm: "VM", spell: int) -> None:
        if self._repairable(vm, spell):
            self.waiting.append((vm, spell))
            self.start_repairs()

    def start_repairs(self) -> None:
        """Start waiting repairs while fewer than the batch limit are under way."""
        limit = repair_batch_limit(self.ss.capacity)
        while self.waiting and self.in_flight < limit:
            vm, spell = self.waiting.popleft()
            if self._repairable(vm, spell):
                self.in_flight += 1
                self.ss.counters.repairs_started += 1
                self.starts.append((self.env.now, self.in_flight, limit))
                self.env.process(self._repair(vm, spell))

    def _repair(self, vm: "VM", spell: int) -> Generator:
        ss, c, action = self.ss, self.ss.counters, self.policy.repairAction
        if action == "Replace":
            with ss.caused_by("repair"), ss.one_capacity_change():
                started = ss.scale_out(1, zone=vm.zone)  # rejected whole at the instance limit
                if started:
                    started += ss.delete_instances([vm])
            if started:
                yield simpy.AllOf(self.env, started)
            ok = bool(started) and all(p.value in (P.SUCCEEDED, P.DELETED) for p in started)
        else:
            duration = self.durations[action].ppf(self.draws.uniforms(vm.index, spell)[1])
            with ss.caused_by("repair"):
                yield ss._start(self._update(vm, action.lower(), duration), vm)
            ok = True
        self.in_flight -= 1
        if ok:
            c.repairs_done += 1
        else:
            c.repairs_failed += 1
            if not started:  # the replacement was refused: try again after another grace period
                self._arm(vm, spell)
        self.start_repairs()

    def _update(self, vm: "VM", operation: str, duration: float) -> Generator:
        """Reimage or Restart: `Updating` for `duration`, then healthy `Succeeded`."""
        ss = self.ss
        op_id = ss._operation_id()
        ss._record(vm, op_id, operation, 1, UPDATING, None, ss.idle_status)
        yield self.env.timeout(duration)
        vm.unhealthy = False
        ss._record(vm, op_id, operation, 1, P.SUCCEEDED, None, ss.idle_status)
        ss._done(vm)


def cleanup(ss: "ScaleSet", runbook: Cleanup) -> Generator:
    """Every period, delete the idle Failed VMs; with `replace`, scale out by the capacity that
    removed (orphaned VMs no longer counted, so they are not replaced)."""
    env, c = ss.env, ss.counters
    k = 0
    while (t := runbook.first_min + k * runbook.every_min) < ss.scenario.horizon_min:
        yield at_start_of(env, t - env.now)
        k += 1
        failed = ss.idle_failed()
        if not failed:
            continue
        with ss.caused_by("cleanup"), ss.one_capacity_change():
            before = ss.capacity
            ss.delete_instances(failed)
            c.cleanup_deletions += len(failed)
            if runbook.replace and before > ss.capacity:
                c.cleanup_replacements += len(ss.scale_out(before - ss.capacity))


def demand(ss: "ScaleSet", steps: list[tuple[float, float]]) -> Generator:
    """Play the demand trace (in VMs) into the tally: 0 before its first row."""
    ss.tally.demand = 0.0
    for t, vms in steps:
        if t >= ss.scenario.horizon_min:
            return
        if t > ss.env.now:
            yield ss.env.timeout(t - ss.env.now)
        ss.tally.set_demand(ss.env.now, vms)


class Autoscaler:
    """An Azure autoscale profile on the Percentage CPU of a demand trace.

    Every `evaluate_every_min` it samples the metric (the state just before that minute) and,
    outside a cooldown, applies `autoscale_decision` through `set_capacity`. `actions` records
    (minute, capacity before, after, cooldown, reason) of every action.
    """

    def __init__(self, ss: "ScaleSet", profile: AutoscaleProfile):
        self.ss, self.profile = ss, profile
        self.windows = [(r.window_min, r.statistic) for r in profile.rules]
        self.longest = max((w for w, _ in self.windows), default=0.0)
        self.samples: deque[tuple[float, float | None]] = deque()
        self.cooldown_until = 0.0
        self.actions: list[tuple[float, int, int, float, str]] = []

    def run(self) -> Generator:
        env, step, k = self.ss.env, self.profile.evaluate_every_min, 0
        while (t := k * step) < self.ss.scenario.horizon_min:
            if t > env.now:
                yield at_start_of(env, t - env.now)
            k += 1
            self.evaluate(t)

    def evaluate(self, now: float) -> None:
        ss, profile = self.ss, self.profile
        usable = ss.tally.counts[P.SUCCEEDED]
        value = cpu_percent(ss.tally.demand or 0.0, usable)
        self.samples.append((now, value))
        while self.samples and self.samples[0][0] <= now - self.longest:
            self.samples.popleft()
        if now < self.cooldown_until:
            return
        stats = [window_statistic([v for t, v in self.samples if t > now - window], statistic)
                 for window, statistic in self.windows]
        before = ss.capacity
        new, cooldown, reason = autoscale_decision(profile, before, usable, stats,
                                                   value is not None)
        if reason == "flapping":
            ss.counters.autoscale_flapping_skips += 1
        if new == before:
            return
        with ss.caused_by("autoscale"):
            ss.set_capacity(new)
        if new > before:
            ss.counters.autoscale_scale_outs += 1
        else:
            ss.counters.autoscale_scale_ins += 1
        self.cooldown_until = now + cooldown
        self.actions.append((now, before, new, cooldown, reason))


def start_operations(ss: "ScaleSet", seed: np.random.SeedSequence) -> dict[str, object]:
    """Start the scenario's operations on one scale set; return them by name (for tests)."""
    sc, env, started = ss.scenario, ss.env, {}
    if sc.faults.health.active:
        started["repairs"] = Repairs(ss, seed)
    if sc.demand is not None:
        env.process(demand(ss, sc.demand.steps()))
    if sc.autoscale is not None:
        started["autoscale"] = scaler = Autoscaler(ss, sc.autoscale)
        env.process(scaler.run())
    for runbook in sc.operations.cleanup:
        if runbook.enabled:
            env.process(cleanup(ss, runbook))
    return started
